"""Whether this user may write where a command would write, found before its work. Where an
administrator shares a store or a training run read-only, a command that writes there read
the store and drew forecasts, then failed on Permission denied, naming a lock file."""

from __future__ import annotations

import errno
import os
from pathlib import Path

from pipeline.errors import InputError
from pipeline.transaction import lock_path


def check_can_write(path: str | Path, fix: str | None = None, *, lock: bool = True) -> None:
    """PermissionError naming the folder or lock file that keeps a writer from the store or
    folder at ``path``: its lock beside it (unless not ``lock``: a run's folder, whose files
    take locks inside it), ``path`` itself and the folders in it. With ``fix``, an
    InputError naming ``path`` and ``fix``, the command's own way out (the CLI's line for a
    bare permission error says only to write elsewhere or change the permissions). An
    absent ``path`` passes if the nearest existing folder above it is writable."""
    path = Path(path)
    first = lock_path(path) if lock else path.absolute()
    near = next(p for p in (first, *first.parents) if p.exists())
    folders = [p for p in (path, *path.iterdir()) if p.is_dir()] if path.is_dir() else []
    for at in (near, *folders):
        if not os.access(at, os.W_OK | (0 if at.is_file() else os.X_OK)):
            if fix is None:
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(at))
            raise InputError(f"{path}: permission denied ({at} is not yours to write); {fix}")
