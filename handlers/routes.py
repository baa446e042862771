"""The root router: every feature's router included once."""
from __future__ import annotations

from handlers.router import Router


def build_router() -> Router:
    from handlers import weekly_action

    root = Router()
    root.include(weekly_action.router)
    return root
