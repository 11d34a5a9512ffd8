"""Swapping a store built aside (``--overwrite``) in for the one at its path, so that a
reader always finds a store there: the old one or the new one.

Two renames (old aside, then new in) leave the path empty between them: a forecast,
verify or training run opening the store at that moment was told there is no such store,
and a kill between them left no store at all, the new one as ``NAME.ingest-tmp`` (the next
ingest then started another store at the path, from its inputs alone). On Linux the two
folders are exchanged in one step, ``renameat2(RENAME_EXCHANGE)``; where that call is
missing or the file system refuses it, the two renames remain, and
:func:`finish_interrupted_swap` completes the swap a kill interrupted.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import logging
import os
import shutil
import sys
from pathlib import Path

from pipeline.analysis_store import replaced_path, stranded_replacement
from pipeline.transaction import locked

log = logging.getLogger(__name__)

#: renameat2's arguments (linux/fcntl.h): paths relative to the working directory, and
#: the flag that exchanges two existing paths atomically.
AT_FDCWD = -100
RENAME_EXCHANGE = 2
#: Errors saying the call or the flag is not there (an old kernel, a file system without
#: the exchange, seccomp): the two renames are used instead.
UNSUPPORTED = {errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EPERM}


@functools.cache
def _renameat2() -> ctypes._CFuncPtr | None:
    """glibc's renameat2 (2.28 and later), or None where there is none."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        call = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return None
    call.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    call.restype = ctypes.c_int
    return call


def exchange(a: Path, b: Path) -> bool:
    """Exchange the existing paths ``a`` and ``b`` in one atomic step; False (nothing done)
    where the system cannot, OSError for any other failure."""
    call = _renameat2()
    if call is None:
        return False
    if call(AT_FDCWD, os.fsencode(a), AT_FDCWD, os.fsencode(b), RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in UNSUPPORTED:
        return False
    raise OSError(code, os.strerror(code), str(a), None, str(b))


def swap_in(aside: Path, path: Path) -> None:
    """Put the complete store ``aside`` at ``path`` and delete the store that was there
    (the caller holds the lock of ``path``): exchanged in one step where the system can,
    else moved away (as ``NAME.replaced-tmp``) and replaced."""
    old = replaced_path(path)
    shutil.rmtree(old, ignore_errors=True)
    if path.exists() and exchange(aside, path):
        aside.rename(old)  # the old store, now at the aside path
    else:
        if path.exists():
            path.rename(old)
        aside.rename(path)
    shutil.rmtree(old, ignore_errors=True)


def finish_interrupted_swap(path: Path) -> None:
    """Finish the swap of an ``--overwrite`` killed between its two renames: no store at
    ``path``, the complete new one beside it as ``NAME.ingest-tmp`` (its ingest state says
    so). What that ingest would have done next, under the store's lock: an ingest into
    ``path`` appends to the new store rather than start another one from its inputs."""
    if stranded_replacement(path) is None:
        return
    with locked(path):  # an --overwrite holds it throughout: then the swap is not stranded
        aside = stranded_replacement(path)
        if aside is None:
            return
        log.warning(
            "%s: an overwrite=True (--overwrite) was interrupted before its new store (%s, "
            "complete) was swapped in; swapping it in now, as that ingest would have",
            path,
            aside,
        )
        swap_in(aside, path)
