"""Replay protection for signed callbacks: a signature seen once may come back only with its own body.

Platforms re-send a request they got no 200 for, byte for byte, so a key
(timestamp, nonce or sign) seen again with the *same* body is a retry: it is let
through and the inbox drops the duplicate. The same key with a *different* body
is a captured signature put on another message, and is refused. Keys are kept
only while their timestamp is inside the replay window, since outside it the
timestamp check refuses the request anyway; the number kept is bounded, so a
flood of valid callbacks cannot grow memory without limit.

The memory is per process: two instances behind one URL each know only what
they saw.
"""
from __future__ import annotations

import hashlib
import heapq
from typing import Hashable

DEFAULT_MAX_ENTRIES = 100_000


def body_digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


class ReplayGuard:
    """Which body each signed key was first seen with, until the key's timestamp leaves the window."""

    def __init__(self, max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        self.max_entries = max_entries
        self._seen: dict[Hashable, str] = {}
        self._expiry: list[tuple[float, int, Hashable]] = []
        self._order = 0
        self.refused = 0

    def __len__(self) -> int:
        return len(self._seen)

    def admit(self, key: Hashable, digest: str, *, expires_at: float, now: float) -> bool:
        """True for a first sighting or a retry of the same body; False for the key on another body."""
        self._forget(now)
        known = self._seen.get(key)
        if known is not None:
            if known == digest:
                return True
            self.refused += 1
            return False
        self._seen[key] = digest
        self._order += 1
        heapq.heappush(self._expiry, (expires_at, self._order, key))
        while len(self._seen) > self.max_entries:
            self._pop_oldest()
        return True

    def _forget(self, now: float) -> None:
        while self._expiry and self._expiry[0][0] < now:
            self._pop_oldest()

    def _pop_oldest(self) -> None:
        _, _, key = heapq.heappop(self._expiry)  # each key is pushed once, on its first sighting
        self._seen.pop(key, None)
