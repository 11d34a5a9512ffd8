"""Reading a checkpoint file's payload (:func:`read_payload`): ``torch.load`` with
``weights_only=True``, refusing a torn, foreign or other-format file, or one holding a
pickled object (loading it could run code), each with the fix; and the weights checked
against the sha256 stored with them (:func:`weights_sha256`), so a flipped bit is a
StoreError naming the file instead of a silently different forecast."""

from __future__ import annotations

import hashlib
import logging
import warnings
from pathlib import Path
from typing import Any

import torch

from generators.checkpoint_values import REFUSED, refused_part
from pipeline.errors import StoreError

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
WEIGHTS_DIGEST = "weights_sha256"


def read_payload(path: Path, map_location: str | torch.device) -> dict[str, Any]:
    """The payload of the checkpoint file at ``path`` (an existing file), its format and
    weights checked; StoreError naming the file and the fix where it cannot be trusted."""
    try:
        with warnings.catch_warnings():  # another pickle protocol: refused just below
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # a torn or foreign file: say which, and how to fix it
        head = b"" if isinstance(err, OSError) else _head(path)
        if head and not head.startswith((b"PK\x03\x04", b"\x80")):  # neither zip nor pickle
            raise StoreError(
                f"{path} is not a wxens checkpoint: torch.save did not write it (it begins "
                f"{head!r}); give the last.pt that `wxens train --out DIR` writes, or DIR"
            ) from err
        if str(err).startswith(REFUSED):  # never torch's advice to load it unsafely
            raise StoreError(
                f"{path} is not a wxens checkpoint: it holds a pickled Python object or call "
                f"({refused_part(str(err))}) where a checkpoint holds only tensors and plain "
                "values; refused unread, as loading it could run code. Use a checkpoint that "
                "`wxens train --out DIR` wrote (ask its sender for one)"
            ) from None
        first = str(err).strip().split("\n", 1)[0]  # torch's advice below it is not for us
        raise StoreError(
            f"{path} is not a readable wxens checkpoint ({type(err).__name__}: {first}); restore "
            "it from a backup (or copy it again), or train it again (`wxens train --no-resume`)"
        ) from err  # kept: a transient read error (a network mount) is retried
    if not isinstance(payload, dict) or payload.get("format") != FORMAT_VERSION:
        raise StoreError(
            f"{path} is not a wxens checkpoint of format {FORMAT_VERSION}; "
            "retrain it with this version"
        )
    check_weights(path, payload)
    return payload


def weights_sha256(*states: dict[str, torch.Tensor]) -> str:
    """sha256 of the weights: for every tensor of each state dict in order, its name,
    dtype, shape and raw bytes (device-independent: read on the CPU)."""
    h = hashlib.sha256()
    for state in states:
        for name in sorted(state):
            tensor = state[name].detach().cpu().contiguous()
            h.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
            h.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def check_weights(path: Path, payload: dict[str, Any]) -> None:
    """StoreError if the weights of ``payload`` do not match the sha256 stored with them;
    a warning if the checkpoint predates the digest."""
    stored = payload.get(WEIGHTS_DIGEST)
    if stored is None:
        log.warning(
            "%s holds no sha256 of its weights (written by an older wxens), so its integrity "
            "cannot be checked; save it again (e.g. `wxens calibrate`) or retrain to add one",
            path,
        )
        return
    actual = weights_sha256(payload["model_state"], payload["ema_state"])
    if actual != stored:
        raise StoreError(
            f"{path}: the weights do not match the sha256 stored with them (the file is "
            f"corrupt: stored {stored[:16]}..., read {actual[:16]}...); restore it from a "
            "backup or retrain it"
        )


def _head(path: Path) -> bytes:
    """The first bytes of a file, to tell a torn checkpoint from another file."""
    with open(path, "rb") as f:
        return f.read(8)
