"""Whether every process of a split forecast sees this machine's files at the same paths.

The workers of a dask cluster (``wxens forecast --dask-scheduler``) and the ranks of a
``torchrun`` launch open the checkpoint and the analysis store, and write the forecast
store, at the paths this process (the client, rank 0) was given. Where a worker lacked
the shared mount, it failed late, deep in a task, on a missing store; or, where the same
path existed on its own disk, it wrote its members there: the forecast ended well, its
summary named the initial times written, and the store this machine reads held none.

So, before any member is drawn, this process writes a marker holding a random token
beside the output store (in the nearest existing folder above it), each worker or rank
reads it back at the same path and checks that it sees the checkpoint and the analysis
store, in one round trip. URLs (``s3://...``) are not checked: an object store is the same
from everywhere. A ``torchrun`` rank whose checkpoint at the path was another file drew
members from another model: each rank also sends, in that round trip, the sha256 of the
checkpoint it loaded, and a rank whose differs from rank 0's is refused, on every rank
(:func:`check_ranks_see`).

A dask worker that connects after that check (a cluster scaled up mid-forecast) was never
checked, and one whose checkpoint at the path was another file drew members from another
model. So the marker is kept until the dask forecast ends, and each batch task checks its
worker before it draws: once a worker process for each forecast (cached by what it was
told, the marker's token in it), that it reads the token and sees the inputs; and each
batch, that the checkpoint it loads has the sha256 of the client's (:class:`Seen`,
:func:`check_this_worker`, :func:`check_same_checkpoint`; the refusal of another
checkpoint file, a rank's as a worker's, is :func:`another_checkpoint`'s). A refused task
raises the same refusal, naming the worker, before the worker reads or writes anything of
the store.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import secrets
import socket
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch.distributed as dist
from distributed import get_worker

from pipeline.errors import InputError

MARKER_PREFIX = ".wxens-shared-path-"
"""How a marker's file name begins; its token ends it, so that runs side by side each
read their own."""

SHARED_FIX = (
    "the processes must see the inputs and outputs at the same paths: mount one shared "
    "file system at the same path on every machine, or give URL stores (s3://...)"
)


CHECKPOINT = "checkpoint= (--checkpoint)"
"""What the messages call the checkpoint."""


@dataclasses.dataclass(frozen=True)
class Marker:
    """A marker file this process wrote, and the token it holds."""

    path: str
    token: str


@dataclasses.dataclass(frozen=True)
class Seen:
    """What the client of a dask forecast sees, which each batch task checks its worker sees
    too: the marker (None for a URL store), the inputs' paths (:func:`inputs_of`) and the
    sha256 (first 16 hex digits) of the checkpoint the client loaded ("": not checked)."""

    marker: Marker | None
    inputs: tuple[tuple[str, str], ...]
    digest: str


_SEEN_HERE: set[Seen] = set()
"""The forecasts whose files this process (a dask worker) was found to see as the client
does: each is checked once a process."""


def inputs_of(checkpoint: Any, store: Any) -> dict[str, str]:
    """The paths every process opens, by what the messages call them: the checkpoint's
    (a loaded :class:`~generators.checkpoint.Checkpoint`'s file) and the analysis
    store's (an ``AnalysisStore``'s)."""
    return {
        CHECKPOINT: str(getattr(checkpoint, "path", None) or checkpoint),
        "store= (--store)": str(getattr(store, "path", None) or store),
    }


@contextlib.contextmanager
def marker_for(out: str) -> Iterator[Marker | None]:
    """A marker written beside the store ``out`` (in the nearest existing folder above it,
    where its lock goes: not in the store, which a stray file there turns into a folder
    a transaction refuses to create a store in) for the block, then removed (a process
    killed with SIGKILL leaves it); None for a URL ``out``. InputError naming the marker
    where it cannot be written (a read-only folder)."""
    if "://" in str(out):
        yield None
        return
    path = Path(os.path.abspath(out))
    folder = next(p for p in path.parents if p.is_dir())
    token = secrets.token_hex(16)
    marker = folder / f"{MARKER_PREFIX}{token}"
    try:
        marker.write_text(token)
    except OSError as err:
        raise InputError(
            f"out= (--out): cannot write the marker {marker} ({err.strerror}) that the "
            "other processes read back; give an out= (--out) in a folder this user can "
            "write, on a file system every process sees at the same path"
        ) from None
    try:
        yield Marker(str(marker), token)
    finally:
        marker.unlink(missing_ok=True)


def what_is_amiss(marker: Marker | None, inputs: Mapping[str, str]) -> list[str]:
    """What this process (a worker, a rank) sees other than the process that wrote
    ``marker`` did: each of ``inputs`` (:func:`inputs_of`) absent, and the marker absent
    or holding another token. Empty where it sees the same files."""
    amiss = [
        f"{what} {path} does not exist"
        for what, path in inputs.items()
        if "://" not in path and not os.path.exists(path)
    ]
    if marker is None:
        return amiss
    try:
        held = Path(marker.path).read_text()
    except OSError as err:
        return [*amiss, f"out= (--out): the marker {marker.path} is not there ({err.strerror})"]
    if held != marker.token:
        amiss.append(f"out= (--out): the marker {marker.path} holds {held!r}, not the token")
    return amiss


@contextlib.contextmanager
def workers_checked(
    client: Any, checkpoint: Any, store: Any, out: str, digest: str
) -> Iterator[Seen]:
    """Refuse a dask forecast whose workers (every one connected to ``client``'s
    scheduler) do not see the checkpoint, the analysis store and the output store ``out``
    at this process's paths: an InputError naming each such worker's address. Then, for
    the block (the forecast), the marker is kept, and what each batch task checks its
    worker sees is yielded (``digest``: of the checkpoint this process loaded), for the
    workers that connect later and the checkpoint file each loads."""
    inputs = inputs_of(checkpoint, store)
    with marker_for(out) as marker:
        _refuse(client.run(what_is_amiss, marker, inputs))
        yield Seen(marker, tuple(inputs.items()), digest)


def check_this_worker(seen: Seen) -> None:
    """In a dask worker's batch task: the refusal of :func:`workers_checked` where this
    worker does not see the marker of ``seen`` (its token) or its inputs; checked once a
    worker process for each forecast."""
    if seen not in _SEEN_HERE:
        _refuse({get_worker().address: what_is_amiss(seen.marker, dict(seen.inputs))})
        _SEEN_HERE.add(seen)


def check_same_checkpoint(seen: Seen, digest: str) -> None:
    """In a dask worker's batch task: refuse a checkpoint loaded whose sha256 ``digest`` is
    not that of the client's (``seen``): another file at the same path, another model."""
    if amiss := another_checkpoint(dict(seen.inputs)[CHECKPOINT], digest, seen.digest):
        _refuse({get_worker().address: [amiss]})


def another_checkpoint(path: str, digest: str, expected: str) -> str:
    """Why a process that loaded the checkpoint at ``path`` with the sha256 ``digest`` is
    refused where the client or rank 0 loaded one of ``expected``: another file at the same
    path, another model. Empty where they match, or where either was not checked ("")."""
    if not (digest and expected) or digest == expected:
        return ""
    return f"{CHECKPOINT} {path} is another file (sha256 {digest}, not {expected})"


def _refuse(seen: Mapping[str, list[str]]) -> None:
    """An InputError naming each dask worker of ``seen`` (address: what it sees amiss) that
    sees something amiss, and the fix; none where every one sees the same files."""
    refused = {address: amiss for address, amiss in seen.items() if amiss}
    if refused:
        raise InputError(
            "; ".join(
                f"dask worker {a} does not see this machine's files: {', '.join(amiss)}"
                for a, amiss in refused.items()
            )
            + f"; {SHARED_FIX}, or leave dask_scheduler= "
            "(--dask-scheduler) out to run on this machine"
        )


def check_ranks_see(checkpoint: Any, store: Any, out: str, digest: str) -> None:
    """Refuse a forecast whose torchrun ranks (this process one of them, its process group
    joined) do not all see rank 0's checkpoint, analysis store and output store ``out``
    at the same paths, or whose checkpoint, loaded with the sha256 ``digest`` ("": this
    rank could not load it, which its own error says), is another file than rank 0's: on
    every rank, an InputError naming each such rank and its host (and the digests). Where
    rank 0 cannot write the marker, every rank raises its InputError at once (the others
    waited at the broadcast until the group's timeout)."""
    rank, world = dist.get_rank(), dist.get_world_size()
    inputs = inputs_of(checkpoint, store)
    with contextlib.ExitStack() as stack:
        shared: list[Any] = [None, None]  # rank 0's marker, or why it has none
        if rank == 0:
            try:
                shared[0] = stack.enter_context(marker_for(out))
            except InputError as err:
                shared[1] = str(err)
        dist.broadcast_object_list(shared, src=0)
        if shared[1] is not None:
            raise InputError(shared[1])
        seen: list[Any] = [None] * world
        here = (socket.gethostname(), what_is_amiss(shared[0], inputs), digest)
        dist.all_gather_object(seen, here)
    refused = []
    for r, (host, amiss, theirs) in enumerate(seen):  # each rank's digest, against rank 0's
        other = another_checkpoint(inputs[CHECKPOINT], theirs, seen[0][2])
        if amiss or other:
            refused.append((r, host, [*amiss, other] if other else amiss))
    if refused:
        raise InputError(
            "; ".join(
                f"rank {r} on {host} does not see rank 0's files: {', '.join(amiss)}"
                for r, host, amiss in refused
            )
            + f"; {SHARED_FIX}, or run every rank on one machine"
        )
