"""A forecast whose first write fails (a full disk, a file-size limit) leaves no store.
``--out new/f.zarr`` failed in its first write and left an empty repository; a failure
while the repository itself was created left a half-made one and a traceback. The folder
and its lock file stay (another run may be waiting on that lock). Real processes under a
real file-size limit (RLIMIT_FSIZE, SIGXFSZ ignored: a write past it fails with EFBIG)."""

from __future__ import annotations

import re
import resource
import signal
import subprocess

import pytest

from flows.cli import main as wxens
from pipeline.forecast_claims import claims_path
from pipeline.forecast_store import complete_init_times, open_forecast
from pipeline.transaction import lock_path
from tests.flows.test_interrupt_kept import command


def limited(limit: int):
    """A ``preexec_fn`` giving the child a file-size limit of ``limit`` bytes."""

    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))

    return apply


# 1000 bytes: Icechunk's first snapshot (~170 bytes) is written, a chunk (~2.5 kB) is not;
# 150 bytes: the repository's creation itself fails.
@pytest.mark.parametrize("limit", [1000, 150])
@pytest.mark.parametrize("folder_existed", [False, True])
def test_a_failed_first_write_leaves_no_store(tmp_path, tiny_model, limit, folder_existed):
    store, model = tiny_model
    folder = tmp_path / "new"
    out = folder / "f.zarr"
    if folder_existed:
        folder.mkdir()
    argv = ["forecast", "--checkpoint", str(model / "last.pt"), "--store", str(store)]
    argv += ["--init", "2000-01-06T00/2000-01-06T12/6h", "--members", "8", "--lead", "12h"]
    argv += ["--out", str(out)]
    args, env = command(argv, {"PYTHONDONTWRITEBYTECODE": "1"})  # no .pyc cut short
    done = subprocess.run(args, env=env, preexec_fn=limited(limit), capture_output=True, text=True)
    assert done.returncode == 2, done.stderr[-3000:]
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    # the store, or (150 bytes, the folder there) the claims file written before it
    named = rf"{re.escape(str(out))}|{re.escape(str(claims_path(out)))}\.\d+"
    assert re.fullmatch(
        rf"wxens forecast: error: \[Errno 27\] File too large: '({named})'; the file is "
        r"larger than that file system allows: write somewhere else",
        done.stderr.splitlines()[-1],
    ), done.stderr[-3000:]
    # no store; the lock file may stay: another process may be waiting on it
    assert {p.name for p in folder.iterdir()} <= {lock_path(out).name}
    # without the limit, in this process (what is left is under test, not the process)
    assert wxens([*argv, "--no-progress"]) == 0  # every member drawn
    assert len(complete_init_times(out)) == 3
    assert open_forecast(out).sizes["member"] == 8
