"""Security tests: print and save the fuzz figures at the end of the run."""

from __future__ import annotations

import json
import os
from pathlib import Path

from security_helpers import FIGURES, SCALE


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    if not FIGURES:
        return
    totals = {key: sum(c.get(key, 0) for c in FIGURES.values()) for key in ("examples", "errors")}
    report = {"scale": SCALE, "totals": totals, "tests": {name: dict(c) for name, c in sorted(FIGURES.items())}}
    terminalreporter.section("bad input and security figures")
    for name, counts in sorted(FIGURES.items()):
        terminalreporter.write_line(f"{name:<28} " + "  ".join(f"{k}={v}" for k, v in sorted(counts.items())))
    terminalreporter.write_line(f"{'TOTAL':<28} examples={totals['examples']}  errors={totals['errors']}")
    artifacts = Path(os.environ.get("ARTIFACTS_DIR", "artifacts"))
    artifacts.mkdir(parents=True, exist_ok=True)
    (artifacts / "fuzz.json").write_text(json.dumps(report, indent=2) + "\n")
    terminalreporter.write_line(f"written to {artifacts / 'fuzz.json'}")
