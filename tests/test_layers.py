"""The layers hold: bot.core ← cards ← store ← handlers ← schedules ← bot, and no import cycles.

The contracts live in pyproject.toml ([tool.importlinter]); this runs them, so an import
against the layers fails the suite, not a reviewer's memory.
"""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAYERS_BELOW_BOT = ("bot/core", "cards", "store", "handlers", "schedules")
OURS = ("bot", "cards", "store", "handlers", "schedules")


def test_import_contracts_are_kept() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout


def test_no_function_local_imports_of_our_modules_below_bot() -> None:
    """A local import of one of our modules is how a cycle hides; below bot/ there are none."""
    hidden = []
    for folder in LAYERS_BELOW_BOT:
        for path in sorted((ROOT / folder).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    for inner in ast.walk(node):
                        names = ([inner.module or ""] if isinstance(inner, ast.ImportFrom)
                                 else [a.name for a in inner.names] if isinstance(inner, ast.Import) else [])
                        hidden += [f"{path.relative_to(ROOT)}:{inner.lineno} {n}" for n in names
                                   if n.split(".")[0] in OURS]
    assert not hidden, "function-local imports of project modules:\n" + "\n".join(hidden)
