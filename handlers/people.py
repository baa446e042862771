"""Who `@李娜`, `@lina` or `@zhangsan` means in one tenant's directory."""
from __future__ import annotations

import re
import time
import unicodedata
from bisect import bisect_left
from dataclasses import dataclass, field
from typing import Iterable, Literal

from rapidfuzz import fuzz, process
from rapidfuzz.distance import OSA
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from store.models import Employee
from store.pinyin import name_keys
from store.roster import roster_version

# Scores are rapidfuzz 0–100 similarities, per person the best over name, userid,
# pinyin and initials. A match is taken when the best score reaches ACCEPT and
# leads the runner-up by at least MARGIN; anyone within MARGIN of the best is a
# near tie and goes on the choice card. 75 lets one typo through in a pinyin of
# 8+ letters (`zhangsna` → zhangsan scores 87.5) but not a different short name
# (`lina` vs `liu` scores 57).
ACCEPT = 75.0
MARGIN = 8.0
# Typing the start of a pinyin or userid (`@wangq`) is how people @ colleagues;
# plain similarity punishes it (`wangq` vs `wangqiang` is only 71), so a prefix
# of at least PREFIX_MIN characters scores a flat PREFIX_SCORE: above ACCEPT,
# yet far enough below an exact 100 that `@wangqi` still means 王琦, not 王强.
PREFIX_SCORE = 85.0
PREFIX_MIN = 2
MAX_CANDIDATES = 5
# Enough people per key to fill a choice card and know that it is a tie,
# without expanding a common pinyin (there are many "zhangwei") in full.
_PER_KEY = MAX_CANDIDATES + 1
_FUZZY_KEYS = 10

_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


@dataclass(frozen=True)
class Person:
    userid: str
    name: str
    department: str = ""
    pinyin: str = ""
    initials: str = ""

    @classmethod
    def from_employee(cls, e: "Employee") -> "Person":
        pinyin, initials = e.pinyin, e.initials
        if not pinyin:
            pinyin, initials = name_keys(e.name)
        return cls(userid=e.userid, name=e.name, department=e.department or "",
                   pinyin=pinyin.lower(), initials=(initials or "").lower())


@dataclass
class Match:
    status: Literal["one", "choose", "none"]
    person: Person | None = None
    # "one": [person]; "choose": best first, at most MAX_CANDIDATES; "none": [].
    candidates: list[Person] = field(default_factory=list)
    # The best candidate was found only by typo tolerance (`@zhaolie` for zhaolei), not by
    # name, userid, sound, initials or a typed prefix: a caller about to act on it asks first.
    typo: bool = False


def typo_close(typed: str, key: str) -> bool:
    """Whether a person would call `typed` a typo of `key`: one slip (a wrong, missing, extra or
    swapped letter) in a short key, two in a key longer than six. `zhangsan` is not a typo of
    `huangyan` (similarity 75, but three slips)."""
    if _CJK.search(key):
        # In characters: the given name alone (小强 for 王小强), or one character wrong (赵烈 for 赵磊).
        # 王晓强 is not 王强 with a slip: it names somebody else.
        return given_name(typed, key) or (len(typed) == len(key) and OSA.distance(typed, key, score_cutoff=1) <= 1)
    allowed = 1 if len(key) <= 6 else 2
    return OSA.distance(typed, key, score_cutoff=allowed) <= allowed


def given_name(typed: str, name: str) -> bool:
    return len(typed) >= 2 and len(name) > len(typed) and name.endswith(typed)


def _clean(token: str) -> str:
    return unicodedata.normalize("NFKC", token).strip().lstrip("@").strip()


def normalize_token(token: str) -> str:
    """Fold full-width forms and case, drop a leading @: `＠ＬｉＮａ` → `lina`."""
    return _clean(token).casefold()


class _Index:
    """One field of the directory: key → people, plus the keys sorted for prefix lookups."""

    def __init__(self) -> None:
        self.people: dict[str, list[int]] = {}
        self.keys: list[str] = []
        self.sorted_keys: list[str] = []

    def add(self, key: str, idx: int) -> None:
        if key:
            self.people.setdefault(key, []).append(idx)

    def freeze(self) -> None:
        self.keys = list(self.people)
        self.sorted_keys = sorted(self.keys)

    def exact(self, key: str) -> list[int]:
        return self.people.get(key, [])

    def prefixed(self, prefix: str) -> Iterable[str]:
        """Keys that start with `prefix` (but are not it), stopping once enough people are seen."""
        i = bisect_left(self.sorted_keys, prefix)
        seen = 0
        while i < len(self.sorted_keys) and seen < _PER_KEY:
            key = self.sorted_keys[i]
            if not key.startswith(prefix):
                break
            if key != prefix:
                seen += len(self.people[key])
                yield key
            i += 1

    def similar(self, query: str, cutoff: float) -> list[tuple[str, float]]:
        found = process.extract(query, self.keys, scorer=fuzz.ratio, processor=None,
                                score_cutoff=cutoff, limit=_FUZZY_KEYS)
        return [(key, score) for key, score, _ in found]


class Directory:
    """The active people of one tenant, indexed for resolving @mentions."""

    def __init__(self, people: Iterable[Person]) -> None:
        self.people: list[Person] = list(people)
        self._name, self._userid, self._pinyin, self._initials = _Index(), _Index(), _Index(), _Index()
        self._userid_exact: dict[str, int] = {}
        for idx, p in enumerate(self.people):
            self._name.add(normalize_token(p.name), idx)
            self._userid.add(p.userid.casefold(), idx)
            self._pinyin.add(p.pinyin.lower(), idx)
            self._initials.add(p.initials.lower(), idx)
            self._userid_exact.setdefault(p.userid, idx)
        for index in (self._name, self._userid, self._pinyin, self._initials):
            index.freeze()

    def __len__(self) -> int:
        return len(self.people)

    def get(self, userid: str) -> Person | None:
        """The person with exactly this userid (platform-resolved mentions arrive as userids)."""
        idx = self._userid_exact.get(userid)
        return None if idx is None else self.people[idx]

    def resolve(self, token: str) -> Match:
        """Resolve what followed `@` to one person, a short list to choose from, or nobody."""
        query = normalize_token(token)
        if not query:
            return Match("none")

        exact = self._exact(_clean(token), query)
        if exact:
            return self._decide({idx: 100.0 for idx in exact}, exact_only=True)

        scores: dict[int, float] = {}
        has_cjk = bool(_CJK.search(query))
        # A Chinese token is also compared by sound, so 王晓强 finds 王小强 and 李那 finds 李娜.
        sound = name_keys(query)[0] if has_cjk else re.sub(r"[\s._\-']", "", query)
        # Initials are only ever typed on purpose (`@wq`), so they get no typo tolerance:
        # similarity on 2–3 letters would tie half the company.
        lookups: list[tuple[_Index, str, bool]] = [
            (self._name, query, True), (self._userid, query, True), (self._pinyin, sound, True),
        ]
        if not has_cjk:
            lookups.append((self._initials, query, False))

        sure: set[int] = set()  # found by exact key, sound, initials or prefix
        for index, q, fuzzy in lookups:
            if not q:
                continue
            for idx in index.exact(q)[:_PER_KEY]:
                _raise(scores, idx, 100.0)
                sure.add(idx)
            if len(q) >= PREFIX_MIN:
                for key in index.prefixed(q):
                    for idx in index.people[key][:_PER_KEY]:
                        _raise(scores, idx, PREFIX_SCORE)
                        sure.add(idx)
            if fuzzy:
                for key, score in index.similar(q, ACCEPT - MARGIN):
                    if not typo_close(q, key):
                        continue  # similar letters, but not a slip anyone would make
                    for idx in index.people[key][:_PER_KEY]:
                        _raise(scores, idx, score)
                        if given_name(q, key):
                            sure.add(idx)
        match = self._decide(scores, exact_only=False)
        if match.candidates:
            first = self.people.index(match.candidates[0]) if match.status == "one" else None
            match.typo = first is not None and first not in sure
        return match

    def _exact(self, raw: str, query: str) -> list[int]:
        """People whose name or userid is exactly the token; an exact-case userid beats a case-folded one."""
        idx = self._userid_exact.get(raw)
        if idx is not None and not self._name.exact(query):
            return [idx]
        found = self._name.exact(query) + self._userid.exact(query)
        return list(dict.fromkeys(found))

    def _decide(self, scores: dict[int, float], *, exact_only: bool) -> Match:
        if not scores:
            return Match("none")
        ranked = sorted(scores.items(), key=lambda item: (-item[1], item[0]))
        best = ranked[0][1]
        if best < ACCEPT:
            return Match("none")
        close = [idx for idx, score in ranked if best - score < MARGIN]
        if len(close) == 1:
            person = self.people[close[0]]
            return Match("one", person, [person])
        if exact_only:
            # 同名: the card tells them apart by department, so keep a stable, readable order.
            close.sort(key=lambda i: (self.people[i].department, self.people[i].userid))
        return Match("choose", None, [self.people[i] for i in close[:MAX_CANDIDATES]])


def _raise(scores: dict[int, float], idx: int, score: float) -> None:
    if score > scores.get(idx, -1.0):
        scores[idx] = score


# -- the tenant's directory, kept between messages -----------------------------------------
# Building a Directory means reading every active person (3 s of CPU at 100,000
# people), far too slow for each `@name` reply. It is rebuilt at once when this process
# wrote the roster (import, directory sync: store.roster.roster_version), when the roster's
# fingerprint changes (a person added or deactivated in any process), or after DIRECTORY_TTL
# seconds (renames and department moves made by another process). The fingerprint itself is
# a count over the tenant's people, so it is looked at most every FINGERPRINT_EVERY seconds.
DIRECTORY_TTL = 300.0
FINGERPRINT_EVERY = 1.0


@dataclass
class _Kept:
    fingerprint: tuple[int, int]
    version: int
    built: float
    checked: float
    directory: "Directory"


_directories: dict[str, _Kept] = {}


async def tenant_directory(session: "AsyncSession", tenant: str) -> "Directory":
    """The active people of `tenant` as a Directory, cached per tenant."""
    now = time.monotonic()
    version = roster_version(tenant)
    kept = _directories.get(tenant)
    if kept is not None and kept.version == version and now - kept.built < DIRECTORY_TTL:
        if now - kept.checked < FINGERPRINT_EVERY:
            return kept.directory
    active = (col(Employee.tenant) == tenant) & col(Employee.active).is_(True)
    count, top = (await session.execute(select(func.count(), func.max(Employee.id)).where(active))).one()
    fingerprint = (int(count or 0), int(top or 0))
    if kept is not None and kept.version == version and kept.fingerprint == fingerprint \
            and now - kept.built < DIRECTORY_TTL:
        kept.checked = now
        return kept.directory
    rows = await session.execute(select(col(Employee.userid), col(Employee.name), col(Employee.department),
                                        col(Employee.pinyin), col(Employee.initials)).where(active))
    people = []
    for userid, name, department, pinyin, initials in rows:
        if not pinyin:
            pinyin, initials = name_keys(name)
        people.append(Person(userid=userid, name=name, department=department or "",
                             pinyin=pinyin.lower(), initials=(initials or "").lower()))
    directory = Directory(people)
    _directories[tenant] = _Kept(fingerprint, version, now, now, directory)
    return directory
