"""The fact brief's records and figures: what the store collects and the cards render.

Every figure keeps the anchors of the records it was counted from, so the document
can list them under it: a reader can check each number against its facts.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from zoneinfo import ZoneInfo

from cards import brief_texts  # noqa: F401  (the brief's texts join the catalogue)
from cards.texts import t

# -- the records -----------------------------------------------------------------------------

@dataclass
class ActionRecord:
    id: int
    week: str
    goal_code: str
    thing: str
    witness: str
    status: str  # as people see it, in the brief's locale: 已确认, 已完成, 待见证, 进行中, 未完成
    done: bool
    confirmed: bool

    @property
    def anchor(self) -> str:
        return f"a{self.id}"


@dataclass
class LeaveRecord:
    id: int
    start: date
    end: date
    reason: str

    @property
    def anchor(self) -> str:
        return f"l{self.id}"


@dataclass
class FeedbackRecord:
    id: int
    day: date
    giver: str
    tag: str
    polarity: str  # the stored value (praise | improve); the label comes from the texts when shown
    impact: str  # customer | team | process
    event: str
    ref: str

    @property
    def anchor(self) -> str:
        return f"f{self.id}"


@dataclass
class AdjustmentRecord:
    id: int
    goal_code: str
    day: date
    by: str
    field_name: str
    old: str
    new: str
    reason: str
    note: str
    event_date: date | None = None  # the day of the triggering event
    approver: str = ""
    counted: bool = False  # counts toward the calibration rate (市场/技术/政策, not a rename)

    @property
    def anchor(self) -> str:
        return f"g{self.id}"


@dataclass(frozen=True)
class CalibrationFigure:
    """The company's goal calibration of the period: key tasks, those adjusted, median event → approval days."""

    key_tasks: int
    adjusted: int
    median_lead_days: float | None

    def text(self, locale: str = "zh") -> str:
        if not self.key_tasks:
            return "—"
        pct = self.adjusted / self.key_tasks * 100
        lead = (t(locale, "brief.fig.calibration.lead", days=f"{self.median_lead_days:g}")
                if self.median_lead_days is not None else "")
        return t(locale, "brief.fig.calibration.value", pct=f"{pct:.0f}", adjusted=self.adjusted,
                 key_tasks=self.key_tasks, lead=lead)


@dataclass
class TaskRecord:
    id: int
    code: str
    title: str
    due: datetime
    completed: datetime | None
    status: str
    outcome: str  # the stored value (on_time | late | overdue | not_due); the label comes from the texts when shown

    @property
    def anchor(self) -> str:
        return f"t{self.id}"


@dataclass
class EscalationRecord:
    id: int
    task_code: str
    level: int
    episode: int
    at: datetime
    resolved: datetime | None

    @property
    def anchor(self) -> str:
        return f"e{self.id}"


@dataclass
class TraceLine:
    """留痕: one fact from a workflow (approval, webhook, file) in the person's period, linked to its source."""

    id: int
    day: date
    source: str
    title: str
    link: str
    effect: str  # trace | receivable | response
    detail: str = ""  # 回款: customer, amount and due date; 风险响应: working hours against the SLA

    @property
    def anchor(self) -> str:
        return f"x{self.id}"


@dataclass
class Figure:
    """One number of the brief and the anchors of the records it counts."""

    key: str
    label: str
    value: str
    records: list[str] = field(default_factory=list)
    definition: str = ""


@dataclass
class CompetencyRecord:
    """One competency of the period: both sides once both have submitted, the agreed level, the evidence."""

    code: str
    name: str
    self_level: int | None
    manager_level: int | None
    agreed_level: int | None
    evidence: list[str]  # anchors of the records attached (a12, f3, t7)
    calibration: str  # '' or the state's label in the brief's locale: 待对齐 | 已对齐

    @property
    def anchor(self) -> str:
        return f"c-{self.code}"


@dataclass
class Brief:
    tenant: str
    userid: str
    name: str
    department: str
    period: str
    first: date
    last: date
    as_of: date
    generated_at: datetime
    tz: ZoneInfo
    weeks: list[str]
    skipped_weeks: list[str]
    actions: list[ActionRecord]
    leaves: list[LeaveRecord]
    goals: dict[str, str]  # code → title, of the goals the actions served
    feedback: list[FeedbackRecord]
    adjustments: list[AdjustmentRecord]
    tasks: list[TaskRecord]
    escalations: list[EscalationRecord]
    trace: list[TraceLine] = field(default_factory=list)
    # 风险响应及时率 of the period: (answered on time, answered), None when nothing was measured
    response_rate: tuple[int, int] | None = None
    competencies: list[CompetencyRecord] = field(default_factory=list)
    calibration: CalibrationFigure | None = None
    locale: str = "zh"  # the tenant's: the document and its figures are written in it

    # -- counts -------------------------------------------------------------------------
    @property
    def expected_weeks(self) -> list[str]:
        return [w for w in self.weeks if w not in self.skipped_weeks]

    @property
    def missed_weeks(self) -> list[str]:
        filled = {a.week for a in self.actions}
        return [w for w in self.expected_weeks if w not in filled]

    @property
    def done(self) -> list[ActionRecord]:
        return [a for a in self.actions if a.done]

    @property
    def confirmed(self) -> list[ActionRecord]:
        return [a for a in self.actions if a.confirmed]

    @property
    def linked(self) -> list[ActionRecord]:
        return [a for a in self.actions if a.goal_code]

    def served(self) -> list[tuple[str, str, list[ActionRecord]]]:
        """(code, title, actions) of each goal served, most served first."""
        out = [(code, title, [a for a in self.actions if a.goal_code == code]) for code, title in self.goals.items()]
        return sorted(out, key=lambda g: (-len(g[2]), g[0]))

    def feedback_groups(self) -> list[tuple[str, str, list[tuple[str, list[FeedbackRecord]]]]]:
        """(tag, polarity, [(impact, records)]) with the most frequent tag first."""
        tags: dict[tuple[str, str], dict[str, list[FeedbackRecord]]] = {}
        for f in self.feedback:
            tags.setdefault((f.tag, f.polarity), {}).setdefault(f.impact, []).append(f)
        order = {"customer": 0, "team": 1, "process": 2}
        groups = [(tag, pol, sorted(by.items(), key=lambda kv: order.get(kv[0], 9)))
                  for (tag, pol), by in tags.items()]
        return sorted(groups, key=lambda g: (g[1] != "praise", -sum(len(r) for _, r in g[2]), g[0]))

    @property
    def due_tasks(self) -> list[TaskRecord]:
        return [t for t in self.tasks if t.outcome != "not_due"]

    @property
    def on_time(self) -> list[TaskRecord]:
        return [t for t in self.tasks if t.outcome == "on_time"]

    def figures(self) -> list[Figure]:
        """The brief's numbers, each with the records it was counted from."""
        acts = [a.anchor for a in self.actions]
        praise = [f for f in self.feedback if f.polarity == "praise"]
        improve = [f for f in self.feedback if f.polarity == "improve"]
        episodes = {(e.task_code, e.episode) for e in self.escalations}
        loc = self.locale

        def fig(key: str, value: str, records: list[str], **kw: object) -> Figure:
            return Figure(key, t(loc, f"brief.fig.{key}"), value, records, t(loc, f"brief.fig.{key}.def", **kw))

        missed = t(loc, "list.sep").join(self.missed_weeks) or t(loc, "brief.fig.missed.nothing")
        figs = [
            fig("weeks", str(len(self.weeks)), [], period=self.period, as_of=self.as_of.isoformat()),
            fig("skipped", str(len(self.skipped_weeks)), [l.anchor for l in self.leaves]),
            fig("filled", t(loc, "brief.fig.filled.value", n=len(self.actions), weeks=len(self.expected_weeks)), acts),
            fig("missed", str(len(self.missed_weeks)), [], weeks=missed),
            fig("done", f"{len(self.done)}/{len(self.actions)}", [a.anchor for a in self.done]),
            fig("confirmed", f"{len(self.confirmed)}/{len(self.done)}", [a.anchor for a in self.confirmed]),
            fig("linked", f"{len(self.linked)}/{len(self.actions)}", [a.anchor for a in self.linked]),
            fig("goals", str(len(self.goals)), [a.anchor for a in self.linked]),
            fig("feedback", t(loc, "brief.fig.feedback.value", n=len(self.feedback), praise=len(praise),
                              improve=len(improve)), [f.anchor for f in self.feedback]),
            fig("adjustments", str(len(self.adjustments)), [g.anchor for g in self.adjustments]),
            *([fig("calibration", self.calibration.text(loc), [g.anchor for g in self.adjustments if g.counted])]
              if self.calibration is not None else []),
            fig("tasks", f"{len(self.on_time)}/{len(self.due_tasks)}", [k.anchor for k in self.due_tasks]),
            fig("escalations", str(len(episodes)), [e.anchor for e in self.escalations]),
        ]
        return figs
