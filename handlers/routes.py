"""The root router: every feature's router included once."""
from __future__ import annotations

from functools import lru_cache

from handlers import (brief, competencies, contributions, deliverable_intake, feedback, goal_changes, profiles,
                      tasks, trace, usage, weekly_action)
from handlers.deliverables import settings as _deliverable_settings  # noqa: F401  ([tenants.deliverables])
from handlers.router import Router


def build_router() -> Router:
    root = Router()
    root.add_engine_commands()
    root.include(weekly_action.router)
    root.include(feedback.router)
    root.include(brief.router)
    root.include(tasks.router)
    root.include(trace.router)
    root.include(competencies.router)
    root.include(goal_changes.router)
    root.include(contributions.router)
    root.include(profiles.router)
    root.include(usage.router)
    root.include(deliverable_intake.router)
    return root


@lru_cache(maxsize=1)
def _built_in() -> Router:
    return build_router()


def classify_command(text: str) -> tuple[str, str]:
    """(command, rest) for the built-in commands; ('', text) when the text is not one."""
    return _built_in().classify(text)
