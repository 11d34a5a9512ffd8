"""Claims on a forecast store's initial times, so that two forecasts into one store started
together (a scheduled ``wxens run`` and a forecast by hand of the same cycle, a retried
Prefect run beside its stuck predecessor) share its batches instead of drawing each of them
side by side, one of the two discarded at the write.

Before it draws a batch, a run claims its initial times in a small file beside the store
(``.NAME.claims``, next to its lock ``.NAME.lock``), under the store's lock
(:func:`pipeline.transaction.locked`); a batch holding a time another live run has claimed
is put off until the run's other batches are drawn, and drawn then if it is still not
written: the claimer may have died, or be stuck, and a run never waits for another. A claim
of a process that has ended on this host counts for nothing, as does one whose pid a later
process has taken (each claim records its process's start time). The process of a claim made
on another host (nodes of a cluster writing a store on a shared file system) cannot be
asked: each claim records when its run last took a batch, and another host's claim not
taken again for :data:`~pipeline.claims.OTHER_HOST_CLAIM_S` counts for nothing (its run
crashed; a batch never takes that long). A run removes its claims when it ends, however it
ends (:meth:`Claims.release` in a ``finally``: Ctrl-C and SIGTERM raise
``KeyboardInterrupt``). A run drawn in parts (the forecast flow, a task a batch) claims each
batch itself and gives its parts its run id: a part takes at once what its run holds, and
the run removes the claims. Claims only decide who draws what first: the members of an
initial time depend on the seed and the time alone, so the store is the same whichever run
draws it. No claim is made while the folder the store goes in does not exist (``--out
new/f.zarr``): it and the lock file would be left behind by a run stopped before it wrote
(a lock file is never removed, as another process may be waiting on it), so two runs into
a folder neither has made may both draw their first batch.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from pipeline.claims import age_s, age_text, is_alive, read_json, this_process, write_json
from pipeline.forecast_times import span
from pipeline.transaction import lock_path, locked

log = logging.getLogger(__name__)


def in_turn(
    times: pd.DatetimeIndex,
    per_batch: int,
    to_draw: Callable[[pd.DatetimeIndex], pd.DatetimeIndex | None],
) -> Iterator[tuple[pd.DatetimeIndex, pd.DatetimeIndex]]:
    """``(batch, its times to draw now)`` for the batches of ``per_batch`` of ``times``, in
    order, asking ``to_draw(batch)`` just before each (e.g. :meth:`Claims.take` after a read
    of what the store holds): a batch it answers None for (another run draws it now) is
    asked again after the others. ``to_draw`` answers None at most once a batch."""
    queue = deque(times[start : start + per_batch] for start in range(0, len(times), per_batch))
    while queue:
        batch = queue.popleft()
        if (left := to_draw(batch)) is None:
            queue.append(batch)
        else:
            yield batch, left


def claims_path(path: str | Path) -> Path:
    """The claims file of the forecast store at ``path``: ``.NAME.claims`` beside its lock."""
    return lock_path(path).with_suffix(".claims")


def read_claims(path: str | Path) -> dict[str, dict]:
    """The claims on the store at ``path``: each run's ``{"host", "pid", "started",
    "taken", "init_times"}`` by its id (``taken``: when it last took a batch); none if the
    file is absent or unreadable (a claim only saves work: a run without one draws the time
    itself)."""
    return read_json(claims_path(path))


def _write_claims(path: str | Path, claims: dict[str, dict]) -> None:
    """Replace the claims file of ``path`` by ``claims`` at once (a reader never sees half of
    it), or remove it when none is left."""
    file = claims_path(path)
    if not claims:
        file.unlink(missing_ok=True)
        return
    write_json(file, claims)


@dataclass(frozen=True)
class Claims:
    """This run's claims on the initial times of the forecast store ``out``."""

    out: str
    run: str = field(default_factory=lambda: uuid.uuid4().hex)
    #: The batches put off once because another run had claimed them: drawn when asked again.
    put_off: set[tuple[pd.Timestamp, ...]] = field(default_factory=set, compare=False)

    def take(self, times: pd.DatetimeIndex, batch: pd.DatetimeIndex) -> bool:
        """Claim ``times`` (those of ``batch`` left to draw) for this run: False, nothing
        claimed, if another live run has claimed one of them and ``batch`` was not put off
        before; otherwise True, ``times`` claimed even where another run claimed them (it
        may be dead or stuck). True at once when this run holds every one of ``times``
        already: the forecast flow claims a batch, then its task draws it under the same
        run id, the choice made. True, nothing claimed, while the folder the store goes in
        does not exist: claiming would make it, and its lock file, which a run stopped
        before its first write would leave behind (a lock file is never removed: another
        process may be waiting on it); the first write makes them."""
        if not lock_path(self.out).parent.is_dir():
            return True
        with locked(self.out):
            claims = {run: c for run, c in read_claims(self.out).items() if is_alive(c)}
            held = claims.get(self.run, {}).get("init_times", [])
            if {t.isoformat() for t in times} <= set(held):
                return True
            others = [c for run, c in claims.items() if run != self.run]
            taken = [c for c in others if times.isin(pd.DatetimeIndex(c["init_times"])).any()]
            if taken and tuple(batch) not in self.put_off:
                self.put_off.add(tuple(batch))
                log.info(
                    "%s: %s claimed by another run (pid %s on %s, %s ago); drawing this "
                    "run's other batches first", self.out, span(times), taken[0]["pid"],
                    taken[0]["host"], age_text(age_s(taken[0])),
                )  # fmt: skip
                return False
            if taken:
                log.info(
                    "%s: %s still claimed by another run and not written; drawing it here "
                    "too (that run may have died or be stuck)", self.out, span(times),
                )  # fmt: skip
            mine = claims.setdefault(self.run, {**this_process(), "init_times": []})
            mine["init_times"] = sorted({*mine["init_times"], *(t.isoformat() for t in times)})
            mine["taken"] = time.time()  # alive, for a run on another host (is_alive)
            _write_claims(self.out, claims)
        return True

    def release(self) -> None:
        """Remove this run's claims (and those of runs that ended without removing theirs).
        A failure is logged, never raised over the run's own end (a claim left only costs
        a later run some order)."""
        if not claims_path(self.out).exists():
            return
        try:
            with locked(self.out):
                claims = read_claims(self.out).items()
                _write_claims(self.out, {r: c for r, c in claims if r != self.run and is_alive(c)})
        except OSError as err:
            log.warning("%s: could not remove this run's claims: %s", claims_path(self.out), err)
