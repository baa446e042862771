"""Fixed budgets for the property and fuzz tests, and how many inputs each target was given.

Every property test runs with `budget(n)`: at most n examples, derandomized (the
seed is derived from the test itself, so CI and a developer see the same inputs)
and without Hypothesis' example database, so a run never depends on an earlier
one. Each test calls `tried(target)` once per input; the counts are printed at
the end of the run and written to test-artifacts/fuzz-counts.json.
"""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any, Iterator

import pytest
from hypothesis import HealthCheck, settings

ARTIFACT = Path(__file__).resolve().parent.parent / "test-artifacts" / "fuzz-counts.json"
COUNTS: Counter[str] = Counter()
_PLUGIN = "dongxian-fuzz-counts"


def budget(max_examples: int, **extra: Any) -> settings:
    """Hypothesis settings for a fixed, reproducible budget."""
    return settings(max_examples=max_examples, derandomize=True, database=None, deadline=None,
                    print_blob=False,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                           HealthCheck.data_too_large, HealthCheck.filter_too_much],
                    **extra)


def tried(target: str, n: int = 1) -> None:
    """Count `n` more inputs given to `target`."""
    COUNTS[target] += n


def write_counts() -> dict[str, int]:
    """Merge this run's counts into the artifact (targets not run keep their last figure)."""
    ARTIFACT.parent.mkdir(parents=True, exist_ok=True)
    try:
        old = json.loads(ARTIFACT.read_text(encoding="utf-8")).get("inputs_per_target", {})
    except (OSError, ValueError, AttributeError):
        old = {}
    merged = {**old, **COUNTS}
    ARTIFACT.write_text(json.dumps({
        "settings": {"derandomize": True, "database": None},
        "inputs_per_target": dict(sorted(merged.items())),
    }, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return merged


class _Summary:
    @pytest.hookimpl(trylast=True)
    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not COUNTS:
            return
        terminalreporter.write_sep("-", "fuzz/property inputs per target")
        for target, n in sorted(COUNTS.items()):
            terminalreporter.write_line(f"{n:8d}  {target}")
        terminalreporter.write_line(f"{sum(COUNTS.values()):8d}  total (also in {ARTIFACT.name})")


@pytest.fixture(scope="session", autouse=True)
def fuzz_counts_report(request: pytest.FixtureRequest) -> Iterator[None]:
    """Import into a test module: prints and saves the counts when the run ends."""
    manager = request.config.pluginmanager
    if not manager.has_plugin(_PLUGIN):
        manager.register(_Summary(), _PLUGIN)
    yield
    write_counts()
