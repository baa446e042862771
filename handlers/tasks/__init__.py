"""Cross-functional tasks in chat: create them, report progress, and answer task and escalation cards.

Grammar (one line each; full-width punctuation and spaces are fine):

    任务                                   list my open tasks
    任务 T12                               show a task and its history
    任务 <项目> <编号> <标题> @负责人 [@协作人 …] <截止> [交付:<交付物要求>]
        e.g. 任务 发布会 T12 直播系统压测 @唐凯 12-01 12:00 交付:压测报告
        <截止> is `12-01 12:00`, `2026-12-01 12:00`, `12月1日 12点` or `明天 18:00`;
        without a time it means the end of the working day.
    任务 T12 [新标题] [@负责人 [@协作人 …]] [<截止>] [交付:…] [原因:…]   change an existing task
    进度 T12 进行中 | 进度 T12 阻塞 <原因> | 进度 T12 完成 <交付物文字或链接>
        (the code may be left out by someone with exactly one open task)

A 阻塞 needs a reason and a 完成 needs the deliverable when the task names one:
when missing, the bot asks for it and keeps the question open.

The package's modules, each named for what it holds: `settings` ([tenants.tasks]), `grammar` (the
task line, due times and progress words), `permissions`, `formatting`, `lookups`, `cards` (the cards
the chat and the scan send), `sends` (what makes a scheduled card go once), `questions` (asking and
resuming), `updates` (status, due time and assignment changes), `chat` (the 任务/进度 commands and the
feature's Router) and `answers` (answers to questions and card presses). Jobs import the services;
only handlers/routes.py takes the router.
"""
from __future__ import annotations

from handlers.tasks import answers  # noqa: F401  (its conversations and cards join the router)
from handlers.tasks.chat import router
from handlers.tasks.settings import TaskSettings

__all__ = ["TaskSettings", "router"]
