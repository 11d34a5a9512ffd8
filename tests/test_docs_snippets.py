"""The Python examples of README.md and docs/*.md run as written.

A reader copies a ```python block into a notebook in a directory holding what the pages'
commands make (``stores/uk.zarr`` from the shipped sample, ``forecasts/uk_fm.zarr``,
``scores.nc``; ``stores/synth.zarr`` and ``forecasts/synth.zarr``, the synthetic upper air)
and the files an example names (``slp.2019.nc``, ``air.2m.2019.nc``). Here
the forecast store is a small persistence baseline (no model to train), which is a forecast
store like any other. Each block runs on its own, in a fresh namespace: one that uses a
name it does not define fails.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
PYTHON_BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)


def python_blocks() -> list[tuple[str, str]]:
    """(page:index, code) of every ```python block of the user documentation."""
    blocks = []
    for page in PAGES:
        for index, code in enumerate(PYTHON_BLOCK.findall(page.read_text(encoding="utf-8"))):
            blocks.append((f"{page.relative_to(ROOT)}:{index}", code))
    return blocks


BLOCKS = python_blocks()


def ncep_like(path: Path, name: str, attrs: dict, base: float) -> None:
    """A small NCEP-reanalysis-like NetCDF file: ``name(time, lat, lon)`` every 6 h."""
    times = pd.date_range("2019-01-01", periods=8, freq="6h")
    lat, lon = np.arange(40.0, 50.1, 2.5), np.arange(0.0, 10.1, 2.5)
    rng = np.random.default_rng(0)
    data = (base + rng.standard_normal((times.size, lat.size, lon.size))).astype("float32")
    xr.Dataset(
        {name: (("time", "lat", "lon"), data, attrs)},
        coords={"time": times, "lat": lat, "lon": lon},
    ).to_netcdf(path)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, uk_sample) -> Path:
    """A directory holding what the documented commands make, as the examples name it."""
    from generators.correction.baseline_store import baseline_to_store
    from generators.correction.baselines import BaselineConfig
    from pipeline.store import ingest
    from verification import verify_store
    from verification.config import VerifyConfig

    work = tmp_path_factory.mktemp("docs")
    (work / "data").mkdir()
    (work / "data" / uk_sample.name).symlink_to(uk_sample)
    ingest(str(work / "data" / uk_sample.name), work / "stores" / "uk.zarr", progress=False)
    inits = pd.date_range("2019-03-22T00", "2019-03-23T12", freq="12h")
    baseline_to_store(
        "persistence",
        work / "stores" / "uk.zarr",
        BaselineConfig("2019-03-01", "2019-03-21", members=8),
        inits,
        [1, 6],
        work / "forecasts" / "uk_fm.zarr",
        progress=False,
    )
    verify_store(
        work / "forecasts" / "uk_fm.zarr",
        work / "stores" / "uk.zarr",
        work / "scores.nc",
        config=VerifyConfig(progress=False, physics_init_times=0),
    )
    synth = "synthetic:n_lat=16,n_lon=24,n_times=40,levels=500/700/850"  # upper air
    ingest(synth, work / "stores" / "synth.zarr", progress=False)
    baseline_to_store(
        "persistence",
        work / "stores" / "synth.zarr",
        BaselineConfig("2000-01-01", "2000-01-07", members=4),
        pd.date_range("2000-01-08T00", "2000-01-09T00", freq="12h"),
        [6, 12],
        work / "forecasts" / "synth.zarr",
        progress=False,
    )
    ncep_like(work / "slp.2019.nc", "slp", {"long_name": "Sea Level Pressure"}, 1013.0)
    ncep_like(work / "air.2m.2019.nc", "air", {"units": "degK"}, 280.0)
    return work


def test_the_pages_have_python_examples():
    assert len(BLOCKS) >= 5, [name for name, _ in BLOCKS]


@pytest.mark.parametrize("name, code", BLOCKS, ids=[name for name, _ in BLOCKS])
def test_python_example_runs(name, code, workdir, monkeypatch):
    monkeypatch.chdir(workdir)
    # dont_inherit: a notebook's block has not this module's `from __future__ import annotations`
    # (under which a block's dataclass looked its string annotations up in no module)
    exec(compile(code, name, "exec", dont_inherit=True), {"__name__": "__docs__"})  # noqa: S102
