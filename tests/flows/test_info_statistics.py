"""What ``wxens info STORE`` prints of a store's statistics: the mean and std weighted by
area (cos latitude), as forecasters and wxens's scores average a field over a regular
latitude-longitude grid, where the store is small enough to read; else the stored ones (the
ingest's, the training's normalisation), said to be per point (unweighted)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import flows.commands.area_statistics as area_module
from flows.cli import main
from pipeline.analysis_store import open_store
from pipeline.store import ingest
from tests.conftest import on_a_terminal


@pytest.fixture(scope="module")
def poleward(tmp_path_factory):
    """A store of 6 times over 0-80 N whose field rises towards the pole: its plain mean
    over-weights the few high-latitude cells (far smaller than the equator's)."""
    root = tmp_path_factory.mktemp("poleward")
    lat = np.arange(0.0, 81.0, 10.0)
    times = pd.date_range("2000-01-01", periods=6, freq="6h")
    rng = np.random.default_rng(0)
    data = 250.0 + 0.5 * lat[None, :, None] + rng.normal(0, 1.0, (6, len(lat), 4))
    xr.Dataset(
        {"tas": (("time", "lat", "lon"), data.astype("float32"), {"units": "K"})},
        coords={"time": times, "lat": lat, "lon": [0.0, 10.0, 20.0, 30.0]},
    ).to_netcdf(root / "in.nc")
    ingest(root / "in.nc", root / "s.zarr", progress=False)
    return root / "s.zarr"


def row(out: str, name: str) -> list[float]:
    """The figures of the row of ``name`` in ``wxens info``'s table."""
    (line,) = [x for x in out.splitlines() if x.split()[:1] == [name]]
    return [float(v) for v in line.split()[2:]]


def test_info_prints_the_area_weighted_mean_and_std_of_the_data(poleward, capsys):
    """It printed the stored plain means with no word that they were unweighted."""
    assert main(["info", str(poleward)]) == 0
    out = capsys.readouterr().out
    x = open_store(poleward).dataset["t2m"].values.astype(np.float64)
    w = np.broadcast_to(np.cos(np.deg2rad(np.arange(0.0, 81.0, 10.0)))[None, :, None], x.shape)
    mean = (w * x).sum() / w.sum()
    std = np.sqrt((w * (x - mean) ** 2).sum() / w.sum())
    assert abs(x.mean() - mean) > 3  # plain and area means clearly differ on this field
    header = next(x for x in out.splitlines() if x.startswith("variable"))
    assert header.split()[2:] == ["area_mean", "area_std", "min", "max", "tendency_std"]
    figures = row(out, "t2m")
    np.testing.assert_allclose(figures[:2], [mean, std], rtol=1e-3)
    np.testing.assert_allclose(figures[2:4], [x.min(), x.max()], rtol=1e-3)  # as stored
    assert "(cos latitude)" in out and "per point (unweighted)" in out


def test_info_over_the_size_limit_prints_the_stored_figures_labelled(poleward, monkeypatch, capsys):
    """A store too large to read for a summary prints the stored figures, labelled per
    point, and names the flag that weighs them; the flag does, whatever the size."""
    monkeypatch.setattr(area_module, "WEIGHED_BYTES", 100)
    stored = open_store(poleward).statistics["t2m"]
    assert main(["info", str(poleward)]) == 0
    out = capsys.readouterr().out
    header = next(x for x in out.splitlines() if x.startswith("variable"))
    assert header.split()[2:] == ["mean", "std", "min", "max", "tendency_std"]
    np.testing.assert_allclose(row(out, "t2m"), stored.values, rtol=1e-3)
    assert "per point (unweighted)" in out and "--weighted" in out
    assert main(["info", "--weighted", str(poleward)]) == 0
    out = capsys.readouterr().out
    header = next(x for x in out.splitlines() if x.startswith("variable"))
    assert header.split()[2:4] == ["area_mean", "area_std"]
    assert row(out, "t2m")[0] < stored.sel(statistic="mean").item() - 3


def test_ingest_summary_prints_the_stored_figures_labelled(poleward, tmp_path, capsys):
    """``wxens ingest``'s closing summary is info's without reading back all it wrote: the
    stored figures, said to be per point, and where the area means are."""
    out_store = tmp_path / "again.zarr"
    assert main(["ingest", str(poleward.parent / "in.nc"), "--store", str(out_store)]) == 0
    out = capsys.readouterr().out
    header = next(x for x in out.splitlines() if x.startswith("variable"))
    assert header.split()[2:4] == ["mean", "std"]
    np.testing.assert_allclose(
        row(out, "t2m"), open_store(out_store).statistics["t2m"].values, rtol=1e-3
    )
    assert "per point (unweighted)" in out and f"`wxens info {out_store}` weighs" in out


def test_the_weighing_draws_a_bar_of_its_tasks_when_asked_with_the_same_figures(
    poleward, capsys
):
    """``wxens info --weighted`` read a large store in one silent dask compute, while every
    other long compute of the CLI draws a bar (:func:`pipeline.progress.dask_bar`)."""
    data = open_store(poleward).dataset[["t2m"]]
    quiet, _ = area_module.area_statistics(data)
    assert "area statistics" not in capsys.readouterr().err
    shown, _ = area_module.area_statistics(data, progress=True)
    err = capsys.readouterr().err
    assert "area statistics" in err and "task" in err, err
    xr.testing.assert_identical(shown, quiet)


def test_info_draws_the_weighings_bar_on_a_terminal_only(poleward, capsys):
    """As the other commands' bars: on a terminal, unless --no-progress; never in a pipe."""
    code, out, shown = on_a_terminal(["info", "--weighted", str(poleward)])
    assert code == 0 and "area_mean" in out and "area statistics" in shown, shown
    code, out, shown = on_a_terminal(["info", "--weighted", "--no-progress", str(poleward)])
    assert code == 0 and "area_mean" in out and "area statistics" not in shown, shown
    assert main(["info", "--weighted", str(poleward)]) == 0
    assert "area statistics" not in capsys.readouterr().err
