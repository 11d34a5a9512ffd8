"""Exceptions with messages meant for a person: what was wrong, where, and the fix.

The CLI prints a :class:`WxensError` without a traceback and exits with its
``exit_code``; anything else is a bug and keeps its traceback.

:func:`is_transient` tells a failure that trying again may fix (a timeout, a dropped
connection, an I/O error of a network file system) from one it cannot (a full disk, a
read-only file system, a bad input), even through the library's own wrapping: the
orchestration retries the first kind only. :func:`shell_word` and :func:`counted` word
what the messages and summaries name; :func:`nested_differences` finds what two configs or
records differ in.
"""

from __future__ import annotations

import datetime
import errno
import os
import shlex
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


class WxensError(Exception):
    """Base class of every error wxens raises on purpose."""

    exit_code = 2
    silent = False
    """Whether the CLI leaves it unsaid: another process of the run says it."""


def shell_word(value: str | Path) -> str:
    """``value`` (a path) as one shell word, for a command a message suggests: a name with
    a space or ``;``, ``$(...)`` pasted from it stays that name and runs nothing."""
    return shlex.quote(str(value))


def counted(n: int, noun: str) -> str:
    """``n`` and ``noun``, plural unless one: "1 lead", "4 leads" (summaries said "1 leads",
    "1 members")."""
    return f"{int(n)} {noun}{'' if int(n) == 1 else 's'}"


class InputError(WxensError, ValueError):
    """An input file, variable or value cannot be used as given."""


class StoreError(WxensError):
    """A Zarr store is missing, incomplete or does not match what was asked."""


def refuse_dangling_link(path: str | Path, error: type[WxensError] = StoreError) -> None:
    """Raise ``error`` if ``path`` is a symbolic link whose target does not exist (a store
    or checkpoint moved or deleted), naming the target: it was reported as "no such store",
    of a path ``ls`` lists. Anything else passes, for the caller's own checks."""
    path = Path(path)
    if path.is_symlink() and not path.exists():
        target = os.readlink(path)
        raise error(
            f"{path} is a symbolic link to {target}, which does not exist; restore {target}, "
            f"or point the link at what it should name (ln -sfn TARGET {shell_word(path)})"
        )


TRANSIENT_ERRNOS = frozenset(
    getattr(errno, name)
    for name in (
        "EIO",  # a read or write failed on a flaky disk or a dropped network mount
        "EAGAIN",
        "EWOULDBLOCK",
        "EINTR",
        "EBUSY",
        "ETIMEDOUT",
        "ECONNRESET",
        "ECONNABORTED",
        "ECONNREFUSED",
        "EPIPE",
        "ENETDOWN",
        "ENETUNREACH",
        "ENETRESET",
        "EHOSTDOWN",
        "EHOSTUNREACH",
        "ESTALE",  # an NFS file handle gone stale: reopening it works
        "ENOLINK",
        "EREMOTEIO",
        "ECOMM",
        "EPROTO",
    )
    if hasattr(errno, name)
)
"""``errno`` values of failures that waiting and trying again can fix: timeouts, dropped
connections, I/O errors of a remote or network file system."""

PERMANENT_ERRNOS = frozenset(
    getattr(errno, name)
    for name in (
        "ENOSPC",  # disk full
        "EROFS",  # read-only file system
        "EDQUOT",  # quota exceeded
        "EFBIG",
        "ENAMETOOLONG",
        "EINVAL",
        "EACCES",
        "EPERM",
        "ENOENT",
        "EEXIST",
        "EISDIR",
        "ENOTDIR",
        "ENOTEMPTY",
        "EXDEV",
        "EMFILE",
        "ENFILE",
    )
    if hasattr(errno, name)
)
"""``errno`` values of failures that trying again cannot fix: a person must act first (free
space, a writable place, a shorter name, a permission)."""

_TRANSIENT_TYPES = (TimeoutError, ConnectionError)
_PERMANENT_TYPES = (
    FileNotFoundError,
    FileExistsError,
    PermissionError,
    IsADirectoryError,
    NotADirectoryError,
)


def is_transient(error: BaseException) -> bool:
    """Whether trying again may succeed where ``error`` failed: a timeout, a dropped
    connection or an ``OSError`` whose ``errno`` is in :data:`TRANSIENT_ERRNOS`.

    The chain of causes is walked (``raise ... from err``, or the error being handled when
    it was raised), so an I/O error that the library wrapped into an :class:`InputError`
    or :class:`StoreError` (opening a Zarr source, reading a checkpoint) is still seen as
    transient. The first error of the chain that says either way decides: a permanent one
    (an ``errno`` in :data:`PERMANENT_ERRNOS`, a missing file, a denied permission) is
    never transient, whatever caused it. Anything else (a bad input, a bug, an ``OSError``
    without an ``errno``, such as a decoder's "not a NetCDF file") is not transient.
    """
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, _PERMANENT_TYPES):
            return False
        if isinstance(current, OSError) and current.errno is not None:
            if current.errno in PERMANENT_ERRNOS:
                return False
            if current.errno in TRANSIENT_ERRNOS:
                return True
        if isinstance(current, _TRANSIENT_TYPES):
            return True
        current = current.__cause__ or (
            None if current.__suppress_context__ else current.__context__
        )
    return False


def given(keyword: str, options: Mapping[str, str] | None, value: object = None) -> str:
    """How the caller names the argument ``keyword`` (given ``value``, where not None): as the
    option of ``options`` (``--folds 2``), else as the keyword argument (``folds=2``)."""
    if options:
        if isinstance(value, tuple | list):  # as typed: a comma list
            value = ",".join(f"{v:g}" for v in value)
        return options[keyword] if value is None else f"{options[keyword]} {value}"
    return f"{keyword}=" if value is None else f"{keyword}={value!r}"


#: What :func:`time_text` takes as a time (``datetime`` and ``pd.Timestamp`` are dates).
TIME_TYPES = (datetime.date, np.datetime64)


def time_text(time: object) -> str:
    """A time as every message and config shows it: ISO 8601 to the minute,
    ``2019-03-01T06:00``, the form ``wxens info`` prints and ``--init``/``--start`` take
    (messages mixed it with ``2019-03-01 06:00:00``); with seconds only where the time has
    them. A date (YAML's reading of ``2019-03-01``) stays a day, ``2019-03-01``, which a
    :class:`~pipeline.schema.Period` reads as the whole day, as it was written."""
    if isinstance(time, datetime.date) and not isinstance(time, datetime.datetime):
        return time.isoformat()
    t = pd.Timestamp(time)
    return t.isoformat(timespec="minutes" if t == t.floor("min") else "auto")


def times_text(times: Sequence[object]) -> str:
    """Times as :func:`time_text` shows them, comma-separated."""
    return ", ".join(time_text(t) for t in times)


def nested_differences(
    a: Mapping[str, Any], b: Mapping[str, Any], prefix: str = ""
) -> Iterator[tuple[str, Any, Any]]:
    """``(key, a's value, b's value)`` of each key whose value differs between the nested
    mappings ``a`` and ``b``, a nested one by its dotted path (``data.train.end``,
    ``spread.weight``), in the order of their keys (``a``'s first): what a message naming
    the differences of two configs or records lists."""
    for key in {**a, **b}:
        x, y = a.get(key), b.get(key)
        if isinstance(x, Mapping) and isinstance(y, Mapping):
            yield from nested_differences(x, y, f"{prefix}{key}.")
        elif x != y:
            yield f"{prefix}{key}", x, y
