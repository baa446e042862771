"""The root router: every feature's router included once."""
from __future__ import annotations

from handlers.router import Router


def build_router() -> Router:
    from handlers import brief, feedback, tasks, weekly_action

    root = Router()
    root.include(weekly_action.router)
    root.include(feedback.router)
    root.include(brief.router)
    root.include(tasks.router)
    # The 反馈 button on witness cards (the witness may be the owner's manager), on briefs and on task details.
    feedback.route_feedback_button(root, "witness_invite", "action")
    feedback.route_feedback_button(root, "witness_confirm", "action")
    feedback.route_feedback_button(root, "brief")
    feedback.route_feedback_button(root, "task_view", "task")
    return root
