"""What every file import (roster, goals, tasks) reports back: all or nothing, dry run or not."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ImportReport:
    errors: list[str] = field(default_factory=list)
    dry_run: bool = False

    @property
    def ok(self) -> bool:
        return not self.errors

    def refused(self, what: str) -> str:
        """The summary of a file with errors: nothing was written."""
        return "\n".join([f"{what}有 {len(self.errors)} 处错误，未做任何修改：", *self.errors])

    @property
    def prefix(self) -> str:
        return "（试运行，未写入）" if self.dry_run else ""

    @property
    def verb(self) -> str:
        """将 (would) in a dry run, 已 (did) otherwise."""
        return "将" if self.dry_run else "已"
