"""mypy (strict, with the pydantic plugin) finds no error in the layers pyproject.toml lists (bot/core, cards, handlers).

The layers checked are `[tool.mypy] files`; a new error there fails the suite the way a
failing test does, so annotations stay true as the code changes.
"""
from __future__ import annotations

from pathlib import Path

from mypy import api

ROOT = Path(__file__).resolve().parent.parent


def test_mypy_is_clean_on_the_checked_layers(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(ROOT)
    # A fresh cache: a stale one from another checkout must not hide an error.
    out, err, status = api.run(["--config-file", str(ROOT / "pyproject.toml"), "--cache-dir", str(tmp_path)])
    assert status == 0, out + err
    assert "Success: no issues found" in out


def test_mypy_would_report_an_error_there(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The check above is not vacuous: the same configuration flags a wrong type."""
    monkeypatch.chdir(ROOT)
    bad = tmp_path / "bad.py"
    bad.write_text("from bot.core.calendar import WorkCalendar\n\ncalendar: WorkCalendar = 3\n", encoding="utf-8")
    out, _err, status = api.run(["--config-file", str(ROOT / "pyproject.toml"), "--cache-dir",
                                 str(tmp_path / "cache"), str(bad)])
    assert status == 1 and "Incompatible types in assignment" in out
