"""Every job the bot has, gathered from the feature modules that declare them."""
from __future__ import annotations

from schedules import briefs, competencies, contributions, morning, pulse, tasks_scan, trace
from schedules.registry import JobRegistry


def all_jobs() -> JobRegistry:
    """A fresh registry holding every built-in job (include more before handing it to the Runtime)."""
    registry = JobRegistry()
    for module in (morning, pulse, tasks_scan, briefs, trace, competencies, contributions):
        registry.include(module.jobs)
    return registry
