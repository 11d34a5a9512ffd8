"""Ingests into one store append in the order of their times, whichever takes its lock first.

A store only grows at its end (:mod:`pipeline.ingest_report`): of two ingests of consecutive
days started together (cron jobs that overlap), the later day's taking the lock first left
the earlier day in a gap of the store for good. So an ingest announces the times it will
append (:func:`announced`: a claim ``.NAME.ingest-ID.claim`` beside the store's lock, made
once its input is open, before it waits for the lock), and one that holds the lock and would
append after another live ingest's announced times still beyond the store's end lets that
one append first (:meth:`Turn.ahead`): it releases the lock and waits (:meth:`Turn.wait`),
saying once whom for, then takes the lock again. Ordered by the first time each would
append, no two ingests wait for each other. An ingest removes its claim once it has grown
the time axis, and however it ends.

A claim of a process that has ended counts for nothing (:func:`pipeline.claims.is_alive`),
and is removed by the ingest that finds it; a live claimant is waited for at most
:data:`WAIT_S` in all, after which the later ingest goes on (the earlier one, if it comes,
is refused as a late one). A claim made before the other ingest took the lock is what
orders them: an earlier period whose input opens only after the later one has grown the
store still falls in its gap. No claim is made while the folder the store goes in does not
exist: the claim would make it, and a run stopped before it wrote would leave it behind.
"""

from __future__ import annotations

import glob
import logging
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from pipeline.claims import is_alive, read_json, this_process, write_json
from pipeline.errors import time_text
from pipeline.transaction import lock_path

log = logging.getLogger(__name__)

WAIT_S = 600.0
"""Seconds in all an ingest waits for earlier ones to append: an earlier ingest that holds
a live claim this long has not taken the lock it needs for a moment (stuck, or behind a
long writer such as an ``--overwrite`` rebuild); the later one then goes on."""
#: Seconds between two looks at the claim waited for.
POLL_S = 0.1


def claim_file(path: str | Path, ingest: str) -> Path:
    """The claim of the ingest ``ingest`` (an id) into the store at ``path``."""
    lock = lock_path(path)
    return lock.with_name(f"{lock.stem}.ingest-{ingest}.claim")


@dataclass
class Turn:
    """An ingest's place among the ingests into the store ``path``: the ``times`` it may
    append (those its input has and the store did not hold written when it opened it), its
    claim ``file`` (None where none was made), and its wait so far."""

    path: Path
    times: pd.DatetimeIndex
    file: Path | None = None
    #: The claim waited for now, the claims already named in a log line, when waiting began.
    waits_for: Path | None = None
    said: set[Path] = field(default_factory=set)
    since: float | None = None

    def ahead(self, store_times: pd.DatetimeIndex) -> bool:
        """Whether another live ingest is to append first, the store's axis being
        ``store_times`` (called under the store's lock): its announced times beyond the
        store's end begin before this one's. False once :data:`WAIT_S` is spent (warned)."""
        mine = _beyond(self.times, store_times)
        earlier = []
        for file, claim in self._others() if mine.size else ():
            theirs = _beyond(pd.DatetimeIndex(claim.get("times", [])), store_times)
            if theirs.size and theirs[0] < mine[0]:
                earlier.append((theirs[0], file, claim))
        if not earlier:
            return False
        first, self.waits_for, claim = min(earlier, key=lambda e: e[0])
        whom = f"the ingest of pid {claim['pid']} on {claim['host']}, first time {time_text(first)}"
        if self.since is not None and time.monotonic() - self.since >= WAIT_S:
            log.warning(
                "%s: waited %.0f s for %s, to append first; going on: its times will fall in "
                "a gap of the store (WAIT_S in pipeline/ingest_turns.py)", self.path, WAIT_S,
                whom,
            )  # fmt: skip
            return False
        if self.waits_for not in self.said:
            self.said.add(self.waits_for)
            log.info("%s: waiting for %s, to append its earlier times first", self.path, whom)
        self.since = time.monotonic() if self.since is None else self.since
        return True

    def wait(self) -> None:
        """Wait, not holding the store's lock, until the claim :meth:`ahead` found is gone
        (its ingest grew the store, or ended), its process ended, or :data:`WAIT_S` is
        spent."""
        while self.waits_for and self.since and time.monotonic() - self.since < WAIT_S:
            claim = read_json(self.waits_for)
            if not claim or not is_alive(claim):
                return
            time.sleep(POLL_S)

    def done(self) -> None:
        """Remove this ingest's claim: its times are on the store's axis (or never will be)."""
        if self.file is not None:
            self.file.unlink(missing_ok=True)

    def _others(self) -> Iterator[tuple[Path, dict]]:
        """The claims of other live ingests into the store; those of ended ones removed."""
        lock = lock_path(self.path)
        for file in lock.parent.glob(f"{glob.escape(lock.stem)}.ingest-*.claim"):
            claim = read_json(file)
            if file == self.file or not claim:
                continue
            if is_alive(claim):
                yield file, claim
            else:
                file.unlink(missing_ok=True)


@contextmanager
def announced(path: str | Path, times: pd.DatetimeIndex) -> Iterator[Turn]:
    """Announce that an ingest may append ``times`` to the store at ``path`` (a claim beside
    it, none for no times or where the store's folder is missing) for the block, removed
    after it however it ends; yield the ingest's :class:`Turn`."""
    path = Path(path)
    turn = Turn(path, pd.DatetimeIndex(times).sort_values())
    if turn.times.size and lock_path(path).parent.is_dir():
        turn.file = claim_file(path, uuid.uuid4().hex)
        claim = {**this_process(), "taken": time.time()}
        write_json(turn.file, {**claim, "times": [t.isoformat() for t in turn.times]})
    try:
        yield turn
    finally:
        turn.done()


def _beyond(times: pd.DatetimeIndex, store_times: pd.DatetimeIndex) -> pd.DatetimeIndex:
    """Those of the sorted ``times`` an ingest could still append: after the store's end."""
    return times[times > store_times.max()] if store_times.size else times
