"""What a checkpoint file may hold: tensors and the plain values that ``torch.load(...,
weights_only=True)`` reads, the only reader :func:`~generators.checkpoint.load_checkpoint`
uses (unpickling an object could run code). The entries made from objects a user may build
in Python (a config, a calibration) are checked before a checkpoint is written: a
``pd.Timestamp`` or numpy scalar there was written, and the loader then refused the file,
the trained model with it (calibration rewrites the checkpoint in place)."""

from __future__ import annotations

import io
import pickle
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import serialization

from pipeline.errors import InputError

REFUSED = "Weights only load failed"
"""How the message of torch's weights-only unpickler begins when it refuses a pickle."""

BUILT_IN_PYTHON = ("model_config", "train_config", "calibration", "trained_span")
"""The entries of a checkpoint's payload made from objects a user may build in Python; the
others are torch's state dicts and lists that ``tolist()`` made."""


def refused_part(message: str) -> str:
    """What torch's weights-only unpickler refused: the global (class or function) named in
    its ``message``, else its reason (``Unsupported operand 149``: another pickle)."""
    found = re.search(r"GLOBAL ([\w.]+)", message) or re.search(r"(Unsupported [^\n.]*)", message)
    return found.group(1).strip() if found else "not torch.save's"


def check_loadable(payload: Mapping[str, Any], path: Path) -> None:
    """InputError naming the first value of ``payload``'s :data:`BUILT_IN_PYTHON` entries
    that the weights-only reader refuses (``calibration.factors[0][0]``, a numpy.float64),
    before ``path`` is written: a round trip through ``torch.save`` and that reader."""
    for key in BUILT_IN_PYTHON:
        found = _refused_at(payload.get(key), key)
        if found is not None:
            place, value = found
            kind = f"{type(value).__module__.split('.')[0]}.{type(value).__qualname__}"
            raise InputError(
                f"its {place} holds a {kind} ({value!r}), which load_checkpoint would refuse: "
                f"{path} not written. A checkpoint holds tensors and plain values only (str, "
                "int, float, bool, None, lists and dicts of them): give times as text "
                "('2019-03-18T00:00') and numbers as int(...) or float(...)"
            )


def _refused_at(value: Any, place: str) -> tuple[str, Any] | None:
    """``(where, what)`` of the innermost part of ``value`` (at ``place``) that the reader
    refuses; None if it reads ``value``. Containers are searched only where refused."""
    if _reads(value):
        return None
    if isinstance(value, dict):
        parts = ((f"{place}.{key}", part) for key, part in value.items())
    elif isinstance(value, (list, tuple)):
        parts = ((f"{place}[{k}]", part) for k, part in enumerate(value))
    else:
        return place, value
    return next((found for at, part in parts if (found := _refused_at(part, at))), (place, value))


def _reads(value: Any) -> bool:
    """Whether the weights-only reader reads back ``value`` as ``torch.save`` writes it (in
    memory: :mod:`torch.serialization`'s own, not the ``torch.save`` that writes the file)."""
    buffer = io.BytesIO()
    serialization.save(value, buffer)
    buffer.seek(0)
    try:
        serialization.load(buffer, weights_only=True)
    except pickle.UnpicklingError as err:
        if str(err).startswith(REFUSED):
            return False
        raise
    return True
