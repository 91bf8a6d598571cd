"""Helpers shared by the security tests (imported as ``security_helpers``; ``tests/security`` is not a package).

``FIGURES`` collects what the fuzz and schema runs did (examples, accepted, rejected, errors); the conftest prints
it at the end of the run and writes it to ``$ARTIFACTS_DIR/fuzz.json`` so CI logs and the README can quote it.
"""

from __future__ import annotations

import os
from collections import Counter

# NETDASH_SOAK=1 (``make soak``) multiplies every fuzz size.
SCALE = 10 if os.environ.get("NETDASH_SOAK", "").strip() not in ("", "0") else 1

FIGURES: dict[str, Counter] = {}

# The headline figure ("well over 10,000 fuzz cases") is asserted by the conftest, not only printed: the record()
# names test_fuzz.py uses (schemathesis and the websocket tests count their own).
MIN_FUZZ_EXAMPLES = 10_000
FUZZ_FIGURE_GROUPS = ("validators.", "hostspecs", "services.", "forms.", "api.", "jobs.")


def fuzz_totals() -> dict[str, int]:
    """Examples and errors of test_fuzz.py so far in this run."""
    mine = [c for name, c in FIGURES.items() if name.startswith(FUZZ_FIGURE_GROUPS)]
    return {key: sum(c.get(key, 0) for c in mine) for key in ("examples", "errors")}


def size(base: int) -> int:
    """Examples for a fuzz test: ``base`` in CI, ``base * 10`` in a soak run."""
    return base * SCALE


def record(name: str, **counts: int) -> None:
    """Add ``counts`` to the figures of ``name`` (e.g. ``record("services", examples=1, accepted=1)``)."""
    FIGURES.setdefault(name, Counter()).update(counts)
