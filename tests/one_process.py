"""Several ``wxens`` commands in ONE new process, each in its own working directory: a
process of its own each spent seconds importing numpy, xarray, zarr and torch to be
refused within a second of work. For commands that must run in another process (as
another user: the keywords of the ``read_only`` fixture), not for tests about a process
itself (signals, exit, a Prefect server), whose state would carry from one to the next.

Run as a script (``python -P one_process.py``, the commands as JSON on stdin), it runs
each with ``flows.cli.main`` and prints each exit code, stdout and stderr as JSON."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import traceback
from pathlib import Path

_MARK = "--- wxens results ---"


class _Switch(io.TextIOBase):
    """A stream that writes to the buffer of the command now running: the CLI's log handler
    (``logging.basicConfig`` in its first command) keeps the stream it found, this one."""

    def __init__(self) -> None:
        self.to = io.StringIO()

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        return self.to.write(text)


def wxens_commands(
    commands: list[tuple[list[str], Path]], timeout: float = 300, **keywords
) -> list[subprocess.CompletedProcess]:
    """Each ``wxens argv`` of ``commands`` run in its folder ``cwd`` (made, writable by
    anyone: uid 65534's too) in one new process started with ``keywords``, in turn."""
    for _, cwd in commands:
        cwd.mkdir(mode=0o777)
        cwd.chmod(0o777)
        cwd.parent.chmod(0o755)
    asked = json.dumps([[argv, str(cwd)] for argv, cwd in commands])
    run = [sys.executable, "-P", __file__]
    done = subprocess.run(
        run, input=asked, capture_output=True, text=True, timeout=timeout, **keywords
    )
    assert done.returncode == 0 and _MARK in done.stdout, done.stderr[-3000:]
    results = json.loads(done.stdout.split(_MARK)[-1])
    return [subprocess.CompletedProcess(argv, *result) for (argv, _), result in
            zip(commands, results, strict=True)]  # fmt: skip


def _run_all() -> None:
    """The script: each command of stdin's JSON in turn, the results after :data:`_MARK`."""
    asked = json.load(sys.stdin)
    real_stdout = sys.stdout
    sys.stdout, sys.stderr = out, err = _Switch(), _Switch()
    from flows.cli import main  # after the switch: what it logs on import is caught too

    results = []
    for argv, cwd in asked:
        out.to, err.to = io.StringIO(), io.StringIO()
        os.chdir(cwd)
        try:
            code = main(argv)
        except SystemExit as exit:  # --help, a usage error
            code = exit.code if isinstance(exit.code, int) else int(exit.code is not None)
        except Exception:  # a bug: its traceback, as a process of its own shows it
            traceback.print_exc()
            code = 1
        results.append([code, out.to.getvalue(), err.to.getvalue()])
    real_stdout.write(f"{_MARK}\n{json.dumps(results)}\n")


if __name__ == "__main__":
    _run_all()
