"""What the flows compose, checked with spies in place of the tasks and library calls (no
Prefect server, checkpoint or store needed): the forecast flow's ``batch_members`` and
``compile`` reach :func:`forecast_sharded`, and a ``dask_scheduler`` makes it one task;
the train flow trains, then calibrates when the config has a calibration section
(training itself never calibrates); the verify and ingest flows take the options of their
commands for other centres' files.
"""

from __future__ import annotations

import types

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from flows import pipelines, steps, tasks
from pipeline.errors import InputError
from pipeline.store import open_store
from tests.pipeline.test_ingest import resent_copies, resent_day
from tests.pipeline.test_ingest_reads import APPEND_OPENINGS

INITS = ["2019-03-22T00:00:00", "2019-03-22T06:00:00", "2019-03-22T12:00:00"]


@pytest.fixture
def no_training_period_warning(monkeypatch):
    """The forecast flow's warning about its checkpoint's training period skipped: it reads
    the checkpoint, which these spies stand in for."""
    monkeypatch.setattr(steps, "warn_trained_on", lambda *args: None)


@pytest.mark.usefixtures("no_training_period_warning")
def test_the_forecast_flow_passes_batch_members_and_compile_to_its_tasks(tmp_path, monkeypatch):
    calls = []

    def spy_unless_done(task_, done):
        assert task_ is tasks.forecast_init_times

        def run(*args, **kwargs):
            calls.append((args, kwargs))
            return list(args[2])

        return run

    monkeypatch.setattr(steps, "unless_done", spy_unless_done)
    steps.forecast.fn(
        checkpoint="k.pt",
        store="analysis.zarr",
        init_times=INITS,
        out=str(tmp_path / "absent.zarr"),
        leads_hours=[6.0],
        members=2,
        batch_members=4,
        compile=False,
    )
    assert [len(args[2]) for args, _ in calls] == [2, 1]  # batch_members // members per task
    assert all(kw["batch_members"] == 4 and kw["compile"] is False for _, kw in calls)


@pytest.mark.usefixtures("no_training_period_warning")
def test_the_forecast_flow_on_a_cluster_is_one_task_split_there(tmp_path, monkeypatch):
    calls = []

    def spy_unless_done(task_, done):
        return lambda *args, **kwargs: calls.append((args, kwargs)) or list(args[2])

    monkeypatch.setattr(steps, "unless_done", spy_unless_done)
    steps.forecast.fn(
        checkpoint="k.pt",
        store="analysis.zarr",
        init_times=INITS,
        out=str(tmp_path / "absent.zarr"),
        leads_hours=[6.0],
        members=2,
        batch_members=4,
        dask_scheduler="tcp://10.0.0.5:8786",
    )
    assert [len(args[2]) for args, _ in calls] == [3]
    assert calls[0][1]["dask_scheduler"] == "tcp://10.0.0.5:8786"


def test_the_whole_run_forecasts_on_its_dask_cluster(monkeypatch):
    """``wxens run --dask-scheduler``: the forecast step gets the cluster too, not only
    ingestion and verification."""
    seen = {}
    monkeypatch.setattr(pipelines, "forecast", lambda *a, **kw: seen.update(kw) or list(a[2]))
    monkeypatch.setattr(pipelines, "truth_arrived", lambda *a: [])
    monkeypatch.setattr(pipelines, "get_run_logger", lambda: types.SimpleNamespace(info=print))
    pipelines.ensemble_run.fn(
        store="analysis.zarr",
        checkpoint="k.pt",
        forecast_store="f.zarr",
        scores="s.nc",
        init_times=INITS,
        dask_scheduler="tcp://10.0.0.5:8786",
    )
    assert seen["dask_scheduler"] == "tcp://10.0.0.5:8786"


def test_the_forecast_task_passes_batch_members_and_compile_to_the_library(monkeypatch):
    import generators.rollout_shard

    seen = {}

    def spy_forecast_sharded(checkpoint, store, inits, leads_hours, n_members, out, **kwargs):
        seen.update(kwargs)
        return types.SimpleNamespace(init_times=tuple(pd.DatetimeIndex(inits)))

    monkeypatch.setattr(generators.rollout_shard, "forecast_sharded", spy_forecast_sharded)
    written = tasks.forecast_init_times.fn(
        "k.pt",
        "analysis.zarr",
        INITS,
        [6.0],
        2,
        "out.zarr",
        None,
        0,
        True,
        "cpu",
        False,
        batch_members=6,
        compile=False,
    )
    assert written == INITS
    assert seen["batch_members"] == 6 and seen["compile"] is False
    assert seen["client"] is None  # no dask scheduler: this process (or torchrun's ranks)


CONFIG = """
model: {kind: flow_matching, backbone: {widths: [8]}}
data: {train: {start: 2019-03-01, end: 2019-03-10}}
steps: 10
"""
CALIBRATION = "calibration: {period: {start: 2019-03-11, end: 2019-03-14}, members: 4}\n"


def test_the_train_flow_calibrates_after_training_when_the_config_asks(tmp_path, monkeypatch):
    calls = []

    def spy_unless_done(task_, done):
        def run(*args, **kwargs):
            calls.append((task_, args))
            return str(tmp_path / "run" / "last.pt")

        return run

    monkeypatch.setattr(steps, "unless_done", spy_unless_done)
    plain, calibrated = tmp_path / "plain.yaml", tmp_path / "calibrated.yaml"
    plain.write_text(CONFIG)
    calibrated.write_text(CONFIG + CALIBRATION)

    steps.train.fn("analysis.zarr", str(plain), str(tmp_path / "run"))
    assert [task_ for task_, _ in calls] == [tasks.train_generator]

    calls.clear()
    checkpoint = steps.train.fn("analysis.zarr", str(calibrated), str(tmp_path / "run"))
    assert [task_ for task_, _ in calls] == [tasks.train_generator, tasks.calibrate_generator]
    assert calls[1][1][:3] == (checkpoint, "analysis.zarr", str(calibrated))


def test_the_calibrate_task_fits_the_configs_calibration(tmp_path, monkeypatch):
    import generators.calibration

    seen = []
    monkeypatch.setattr(
        generators.calibration,
        "calibrate_checkpoint",
        lambda checkpoint, store, config, **kwargs: seen.append((checkpoint, store, config)),
    )
    config = tmp_path / "calibrated.yaml"
    config.write_text(CONFIG + CALIBRATION)
    out = tasks.calibrate_generator.fn("run/last.pt", "analysis.zarr", str(config), [], False)
    assert out == "run/last.pt"
    [(checkpoint, store, calibration)] = seen
    assert (checkpoint, store) == ("run/last.pt", "analysis.zarr")
    assert calibration.members == 4 and str(calibration.period.start) == "2019-03-11"


def test_the_verify_flow_passes_the_member_choice_and_start_dates_to_its_task(
    monkeypatch, tmp_path
):
    monkeypatch.chdir(tmp_path)  # its record of the outputs (.wxens) lands here, not in the repo
    calls = []

    def spy_unless_done(task_, done):
        assert task_ is tasks.verify_forecast
        return lambda *args, **kwargs: calls.append(kwargs) or args[3]

    monkeypatch.setattr(steps, "unless_done", spy_unless_done)
    steps.verify.fn(
        forecast="fc_*.nc",
        truth="analysis.zarr",
        scores="scores.nc",
        members="perturbed",
        init_from_filename="fc_%Y%m%d%H",
    )
    assert calls[0]["members"] == "perturbed"
    assert calls[0]["init_from_filename"] == "fc_%Y%m%d%H"


def test_the_ingest_task_reads_its_sources_with_the_adjustments(tmp_path):
    """A file whose ``slp`` has no units: refused as it is, ingested with units=slp=hPa."""
    values = 1000.0 + np.arange(2 * 3 * 4, dtype="f4").reshape(2, 3, 4)
    xr.Dataset(
        {"slp": (("time", "latitude", "longitude"), values)},
        coords={
            "time": pd.date_range("2021-01-01", periods=2, freq="6h"),
            "latitude": [50.0, 51.0, 52.0],
            "longitude": [0.0, 1.0, 2.0, 3.0],
        },
    ).to_netcdf(tmp_path / "slp.nc")
    source, out = [str(tmp_path / "slp.nc")], str(tmp_path / "s.zarr")
    args = (None, None, None, False, False, None, False)
    with pytest.raises(InputError, match="--units slp="):
        tasks.ingest_store.fn(source, out, *args)
    tasks.ingest_store.fn(source, out, *args, adjustments=([], ["slp=hPa"], []))
    stored = open_store(out).dataset["msl"].values
    np.testing.assert_allclose(stored, 100 * values.astype("f8"), rtol=1e-6)


def test_the_ingest_task_with_adjustments_accepts_and_compares_a_resent_day(
    tmp_path, capsys, caplog
):
    """The task checked its adjustments by opening the sources before the store's times
    were known: a day resent under another name failed ("'tas' has 3 duplicate time(s)
    across the inputs"). Now accepted, and the corrected copy warned about once."""
    incoming, store, times, day1 = resent_day(tmp_path, capsys)
    before = open_store(store).dataset["t2m"].values
    resent_copies(incoming, times, day1)
    args = (None, None, None, False, False, None, False)
    with caplog.at_level("WARNING", logger="pipeline.resent"):
        tasks.ingest_store.fn([str(incoming / "*.nc")], str(store), *args, ([], ["tas=degC"], []))
    assert caplog.text.count("differ from the store") == 1, caplog.text
    assert f"1 resent input(s) ({incoming / 'day1_v2.nc'}) differ" in caplog.text
    ds = open_store(store).dataset
    assert list(ds["time"].values) == list(times.values)
    assert ds["t2m"].values[:3].tobytes() == before.tobytes()


@pytest.mark.parametrize("units", [[], ["tas=degC"]], ids=["plain", "units"])
def test_the_ingest_task_reads_the_stores_held_times_once(
    tmp_path, capsys, caplog, openings, units
):
    """The task read the held times to check its sources, and ingest read them again."""
    incoming, store, times, day1 = resent_day(tmp_path, capsys)
    resent_copies(incoming, times, day1)
    openings.clear()
    args = (None, None, None, False, False, None, False)
    with caplog.at_level("WARNING", logger="pipeline.resent"):
        tasks.ingest_store.fn([str(incoming / "*.nc")], str(store), *args, ([], units, []))
    assert caplog.text.count("differ from the store") == 1, caplog.text
    assert dict(openings) == APPEND_OPENINGS


@pytest.mark.usefixtures("no_training_period_warning")
def test_the_run_says_how_to_draw_the_initial_times_its_store_holds_again(tmp_path, monkeypatch):
    """A rerun of ``wxens run`` skips what its store holds, and said nothing of how to draw
    it again (its task told a run's user "wxens forecast --recompute", an option run has
    not, with none of the settings that command must repeat to write into the store)."""
    from pipeline.forecast_store import write_forecast
    from tests.flows.test_cli_options import redraw_options
    from tests.pipeline.test_forecast_store import PROVENANCE, ensemble

    out = tmp_path / "forecast.zarr"
    write_forecast(out, ensemble(INITS[:2], 280.0), PROVENANCE)
    said = []
    logger = types.SimpleNamespace(info=lambda text, *args: said.append(text % args))
    monkeypatch.setattr("prefect.get_run_logger", lambda: logger)  # flows.inputs logs it
    monkeypatch.setattr(steps, "unless_done", lambda task_, done: None)  # nothing to draw
    done = steps.forecast.fn("k.pt", "analysis.zarr", INITS[:2], str(out), [1, 6], members=3)
    assert done == INITS[:2]
    (line,) = said
    assert "2 of 2 initial time(s) already complete, skipped" in line
    named = redraw_options(line, "run")
    # another command writes into the run's store only with the run's settings
    if set(named) - {"run"}:
        assert {"--checkpoint", "--members", "--lead", "--sampler", "--seed"} <= named["forecast"]
