"""Security tests: print and save the fuzz figures at the end of the run, and fail a run whose fuzz fell short."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import is_hypothesis_test
from security_helpers import FIGURES, MIN_FUZZ_EXAMPLES, SCALE, fuzz_totals


def fuzz_shortfall(session: pytest.Session) -> str | None:
    """Why this run's fuzzing falls short of its promise, or None.

    Judged only when every hypothesis test of test_fuzz.py was selected (a ``-k`` run of one property is fine)
    and nothing failed already. At session end rather than in a module fixture: pytest-django reorders tests by
    database use, so a module's tests do not run in one block and a module fixture is set up more than once.
    Hypothesis can run fewer examples than ``max_examples`` (a strategy that filters too much, a small search
    space): that is how a printed figure falls short unnoticed.
    """
    modules = {item.module for item in session.items if item.module.__name__.endswith("test_fuzz")}
    if len(modules) != 1 or session.testsfailed:
        return None
    module = modules.pop()
    defined = {name for name, fn in vars(module).items() if name.startswith("test_") and is_hypothesis_test(fn)}
    selected = {item.originalname for item in session.items if item.module is module}
    if not defined <= selected:
        return None
    totals = fuzz_totals()
    if totals["examples"] < MIN_FUZZ_EXAMPLES * SCALE:
        return f"only {totals['examples']} fuzz examples ran (at least {MIN_FUZZ_EXAMPLES * SCALE} promised)"
    if totals["errors"]:
        return f"{totals['errors']} fuzz examples answered with an error"
    return None


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if problem := fuzz_shortfall(session):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(f"FUZZ RUN FAILED: {problem}", red=True, bold=True)


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
