"""Shared fixtures and the ``gpu`` marker's skip."""

from __future__ import annotations

import fcntl
import os
import pty
import signal
import struct
import subprocess
import sys
import termios
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
UK_SAMPLE = REPO / "data" / "era5-t2m-uk-2019-03.grib"


def pytest_configure(config: pytest.Config) -> None:
    import torch

    # The tests use tiny tensors: a second intra-op thread only spins, and on a busy
    # 2-core CI machine it made the generator tests 6x slower (282 s against 42 s).
    torch.set_num_threads(1)
    # A test run started in the background of a script (``pytest ... &``) has SIGINT ignored,
    # as a shell starts such a job, and each command a test starts inherits that and keeps
    # it ignored, as Python does: a test's Ctrl-C (SIGINT) to ``wxens`` was lost and the
    # command ran to its end, exit 0. The tests stand for a terminal, where it is not.
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


ONE_PROCESS_FILES = dict.fromkeys(
    [
        "tests/flows/test_flows_chain.py",
        "tests/flows/test_flows_faults.py",
        "tests/flows/test_flows_notebook.py",
        "tests/flows/test_flows_browser.py",
        "tests/flows/test_run_products.py",
        "tests/flows/test_flows_demo.py",
    ],
    "flows sharing the chain and the dask cluster",
)
"""Test files run in one test process, in turn (``--dist=loadfile`` gives each file to a
process of its own): the first five read the session's whole ``chain`` run and the demo's
tests draw on its ``dask_scheduler`` cluster, each a session fixture that was built, and
kept up, in both test processes where these files went to both."""


@pytest.hookimpl(tryfirst=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """``--dist=loadfile``, but :data:`ONE_PROCESS_FILES` one unit of work."""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class FilesTogether(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = super()._split_scope(nodeid)
            return ONE_PROCESS_FILES.get(path, path)

    return FilesTogether(config, log)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def uk_sample() -> Path:
    """The shipped ERA5 t2m sample (744 hourly 33 x 49 fields)."""
    return UK_SAMPLE


def read_store_content(path: Path) -> dict[str, tuple]:
    """Every array of the store at ``path`` (its last commit): metadata (shape, chunks,
    codecs, attributes) and the raw bytes of its data; with the root attributes. What two
    stores must share to hold the same data bit for bit, whatever their file layout (a
    transactional store names its chunk files at random). The ingest state's identity of
    the store (made at random when it is created) is left out."""
    import zarr

    from pipeline.analysis_store import STATE_ATTR, STORE_ID
    from pipeline.transaction import reader

    group = zarr.open_group(reader(path), mode="r")
    attrs = group.attrs.asdict()
    if STATE_ATTR in attrs:
        attrs[STATE_ATTR] = {k: v for k, v in attrs[STATE_ATTR].items() if k != STORE_ID}
    content: dict[str, tuple] = {"/": (attrs,)}
    for name, array in group.arrays():
        meta = array.metadata.to_dict()
        meta.pop("attributes", None)
        content[name] = (meta, array.attrs.asdict(), array[...].tobytes())
    return content


@pytest.fixture
def store_content() -> Callable[[Path], dict[str, tuple]]:
    """:func:`read_store_content`, for the tests."""
    return read_store_content


@pytest.fixture
def openings(monkeypatch) -> Counter:
    """The store's openings by ``xr.open_zarr`` and by ``zarr.open_group`` (those xarray
    makes inside its own not counted again), counted as they go through to the real ones."""
    import xarray as xr
    import zarr

    counts: Counter = Counter()
    inside = []
    real_xarray, real_zarr = xr.open_zarr, zarr.open_group

    def open_zarr(*args, **kwargs):
        counts["xarray"] += 1
        inside.append(True)
        try:
            return real_xarray(*args, **kwargs)
        finally:
            inside.pop()

    def open_group(*args, **kwargs):
        counts["zarr"] += 0 if inside else 1
        return real_zarr(*args, **kwargs)

    monkeypatch.setattr(xr, "open_zarr", open_zarr)
    monkeypatch.setattr(zarr, "open_group", open_group)
    return counts


@pytest.fixture()
def monthly_store(tmp_path: Path):
    """An analysis store of 48 monthly means (t2m on a 4 x 4 grid, mid-month stamps from
    January 2000), at ``tmp_path / "m.zarr"``: its times are 28 to 31 days apart."""
    import numpy as np
    import pandas as pd
    import xarray as xr

    from pipeline.store import ingest

    times = pd.date_range("2000-01-01", periods=48, freq="MS") + pd.Timedelta(days=14)
    values = 280 + np.random.default_rng(0).normal(size=(48, 4, 4)).astype("float32")
    xr.Dataset(
        {"t2m": (("time", "latitude", "longitude"), values, {"units": "K"})},
        coords={"time": times, "latitude": np.arange(50.0, 54), "longitude": np.arange(4.0)},
    ).to_netcdf(tmp_path / "monthly.nc")
    return ingest(str(tmp_path / "monthly.nc"), tmp_path / "m.zarr", progress=False)


def on_a_terminal(argv: list[str]) -> tuple[int, str, str]:
    """``python -m flows.cli *argv`` with its stderr a terminal (a pseudo-terminal: wxens
    draws bars only on one): its return code, stdout and what the terminal showed."""
    leader, follower = pty.openpty()
    # 40 rows of 120 columns (a new pseudo-terminal has 0: a bar would be cut to nothing)
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with subprocess.Popen(
        [sys.executable, "-m", "flows.cli", *argv],
        stdout=subprocess.PIPE,
        stderr=follower,
        env=env,
        text=True,
    ) as run:
        os.close(follower)
        shown = bytearray()
        while True:  # read as it runs: a full terminal buffer would block the command
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the command closed the terminal
                break
            if not chunk:
                break
            shown += chunk
        out = run.stdout.read()
    os.close(leader)
    return run.wait(), out, shown.decode(errors="replace")


#: Linux capabilities that let root write what is not its own: chown, dac_override,
#: dac_read_search, fowner, fsetid (``man 7 capabilities``).
_WRITE_ANYWAY_CAPS = (0, 1, 2, 3, 4)
_PR_CAPBSET_DROP = 24


def _drop_write_anyway_caps() -> None:
    """In a child, before exec: root, after exec, keeps none of :data:`_WRITE_ANYWAY_CAPS`."""
    import ctypes

    prctl = ctypes.CDLL(None, use_errno=True).prctl
    for cap in _WRITE_ANYWAY_CAPS:
        if prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


@pytest.fixture
def read_only() -> Callable[[Path], dict]:
    """A function that makes a folder (with all below it) what a user finds where an
    administrator shared a store or a run: not theirs to write. It returns the keywords of
    a ``subprocess.run`` that runs a command as that user. As root, which ignores file
    modes, the folder is handed to uid 65534 and the command runs without the capabilities
    that would let root write it anyway (its interpreter under /root stays reachable, as it
    would not be for uid 65534); otherwise the write bits are cleared. Undone at teardown,
    so that pytest can remove the folder."""
    done: list[tuple[Path, int, int, int]] = []

    def make(folder: Path) -> dict:
        for at in [folder, *folder.rglob("*")]:
            stat = at.lstat()
            done.append((at, stat.st_uid, stat.st_gid, stat.st_mode))
            if os.geteuid() == 0:
                os.chown(at, 65534, 65534, follow_symlinks=False)
            if not at.is_symlink():
                at.chmod(stat.st_mode & ~0o222)
        return {"preexec_fn": _drop_write_anyway_caps} if os.geteuid() == 0 else {}

    yield make
    for at, uid, gid, mode in reversed(done):
        if os.geteuid() == 0:
            os.chown(at, uid, gid, follow_symlinks=False)
        if not at.is_symlink():
            at.chmod(mode)
