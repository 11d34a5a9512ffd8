"""Durations of the derived config's options and notes: :func:`parse_duration` reads
``--lead`` and ``--budget``, :func:`duration_text` writes ``6h``, ``3d``."""

from __future__ import annotations

import re

import pandas as pd

from pipeline.errors import InputError
from pipeline.spec import to_timedelta


def duration_text(value: pd.Timedelta) -> str:
    """``1h``, ``6h``, ``3d``, ``30min``: the largest whole unit."""
    for unit, size in (("d", pd.Timedelta(days=1)), ("h", pd.Timedelta(hours=1))):
        if value % size == pd.Timedelta(0):
            return f"{value // size}{unit}"
    return f"{value / pd.Timedelta(minutes=1):g}min"


def parse_duration(text: str | pd.Timedelta, what: str) -> pd.Timedelta:
    """A positive duration from ``30min``, ``24h``, ``5d`` (a Timedelta; no bare number)."""
    positive = f"{what} must be a positive duration such as 30min, 24h or 5d, got {text!r}"
    try:
        value = to_timedelta(text)
    except ValueError as err:
        if re.fullmatch(r"\s*(-.*|[+]?[0.]+)\s*", str(text)):  # no unit makes 0 or -2 one
            raise InputError(positive) from None
        raise InputError(
            f"{what} {text!r} is not a duration such as 30min, 24h or 5d: {err}"
        ) from None
    if value <= pd.Timedelta(0):
        raise InputError(positive)
    return value
