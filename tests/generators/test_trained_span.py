"""The span of times a checkpoint trained on: recorded by training, it bounds an open
training period, so the times appended to a store after training are not taken for
training times (a model trained on a whole store was warned of forecasting the next days'
analyses, appended since, as its training period)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

# the AR(1) stub checkpoint and its truth store (pytest puts this directory on sys.path)
from test_calibration import ar1_truth_store
from test_rollout import ar1_checkpoint

from flows.cli import main as wxens
from generators.checkpoint import Checkpoint, load_checkpoint
from generators.in_sample import trained_on
from pipeline.errors import time_text
from pipeline.schema import Period
from pipeline.store import ingest

SYNTHETIC = "synthetic:n_lat=16,n_lon=16,n_times=80,step=6h,seed=2"  # 2000-01-01 to 20th 18 h
TRAINED_TO = "2000-01-12"


def between(times: pd.DatetimeIndex, start: str, end: str) -> np.ndarray:
    return np.asarray((times >= pd.Timestamp(start)) & (times <= pd.Timestamp(end)))


def training(checkpoint: Checkpoint, train: Period, exclude: tuple[Period, ...] = ()) -> Checkpoint:
    """``checkpoint`` as if trained with ``data.train = train`` and ``data.exclude``."""
    config = checkpoint.train_config
    data = replace(config.data, train=train, exclude=exclude)
    return checkpoint.replace(train_config=replace(config, data=data))


def test_trained_on_bounds_the_open_sides_of_the_training_period_by_the_recorded_span():
    times = pd.date_range("2019-03-01", "2019-03-30T18", freq="6h")
    older = ar1_checkpoint(ar1_truth_store(), leads=(1,))  # no span: written before it
    assert older.trained_span is None and older.train_config.data.train == Period()
    assert trained_on(older, times).all()  # every time of any store, as before
    assert (
        trained_on(training(older, Period("2019-03-05")), times) == (times >= "2019-03-05")
    ).all()

    span = Period("2019-03-02T06:00", "2019-03-10T18:00")
    recorded = older.replace(trained_span=span)
    inside = between(times, span.start, span.end)
    np.testing.assert_array_equal(trained_on(recorded, times), inside)
    np.testing.assert_array_equal(  # a half-open period: the span bounds its open side
        trained_on(training(recorded, Period(end="2019-03-05")), times),
        between(times, span.start, "2019-03-05T23:59"),
    )
    np.testing.assert_array_equal(
        trained_on(training(recorded, Period(start="2019-03-05")), times),
        between(times, "2019-03-05", span.end),
    )
    held_out = Period("2019-03-04", "2019-03-05")  # still not trained on
    np.testing.assert_array_equal(
        trained_on(training(recorded, Period(), (held_out,)), times),
        inside & ~between(times, "2019-03-04", "2019-03-05T23:59"),
    )


def train(store: Path, config: Path, out: Path, *overrides: str) -> int:
    args = ["train", "--store", str(store), "--config", str(config), "--out", str(out)]
    return wxens(args + ["--no-progress", *(a for o in overrides for a in ("--set", o))])


def forecast(run: Path, store: Path, init: str, out: Path) -> int:
    args = ["forecast", "--checkpoint", str(run), "--store", str(store), "--init", init]
    return wxens(args + ["--members", "2", "--lead", "12h", "--out", str(out), "--no-progress"])


def test_forecasts_of_times_appended_after_training_on_a_whole_store_are_not_warned(
    tmp_path, caplog
):
    store, run = tmp_path / "s.zarr", tmp_path / "run"
    times = ingest(
        SYNTHETIC, store, variables=["t2m"], time=slice(None, TRAINED_TO), progress=False
    )
    first, last = times.dataset.time.values[[0, -1]]
    (tmp_path / "c.yaml").write_text(  # no data.train: every time of the store
        "model: {kind: flow_matching, backbone: {widths: [8, 16], attention_heads: 0, "
        "embedding_dim: 16}}\n"
        "data: {channels: [t2m], history: 2, leads: [1]}\nsteps: 2\nbatch_size: 4\ndevice: cpu\n"
    )
    assert train(store, tmp_path / "c.yaml", run) == 0
    # history 2 and lead 1 read every time of the store: its first to its last
    span = Period(time_text(first), time_text(last))
    assert (
        load_checkpoint(run).trained_span == span == Period("2000-01-01T00:00", "2000-01-12T18:00")
    )
    assert train(store, tmp_path / "c.yaml", run, "steps=3") == 0  # resumed, same store
    assert load_checkpoint(run).step == 3 and load_checkpoint(run).trained_span == span

    ingest(SYNTHETIC, store, variables=["t2m"], progress=False)  # the next days appended
    caplog.clear()
    with caplog.at_level("WARNING", logger="generators.in_sample"):
        assert forecast(run, store, "2000-01-16", tmp_path / "new.zarr") == 0
        assert "training period" not in caplog.text
        assert forecast(run, store, "2000-01-08", tmp_path / "seen.zarr") == 0
    assert (
        "1 of 1 initial time (2000-01-08T00:00 to 2000-01-08T00:00) forecast weather of the "
        "training period 2000-01-01T00:00 to 2000-01-12T18:00 of "
    ) in caplog.text
    # resumed on the grown store, it trains on the appended times too: its span grows
    assert train(store, tmp_path / "c.yaml", run, "steps=4") == 0
    assert load_checkpoint(run).trained_span == Period(span.start, "2000-01-20T18:00")


def test_info_of_a_checkpoint_names_the_span_it_trained_on(tmp_path, capsys):
    """``wxens info`` printed an open training period, "(start) .. (end)", and nothing of
    which times that was."""
    checkpoint = ar1_checkpoint(ar1_truth_store(), leads=(1,))
    span = Period("2019-03-02T06:00", "2019-03-10T18:00")
    checkpoint.replace(trained_span=span).save(tmp_path / "last.pt")
    assert wxens(["info", str(tmp_path / "last.pt")]) == 0
    out = capsys.readouterr().out
    assert "periods    train (start) .. (end)\n" in out
    assert "trained on 2019-03-02T06:00 to 2019-03-10T18:00 (its first history" in out


def test_a_finished_run_resumed_after_appends_says_it_trained_nothing(tmp_path, capsys):
    """`wxens train` into the --out of a finished run, after the next days were appended,
    resumed it, trained no step and printed the checkpoint as if trained: nothing said that
    the appended days were not trained on, nor how to train on them."""
    store, run = tmp_path / "s.zarr", tmp_path / "run"
    ingest(SYNTHETIC, store, variables=["t2m"], time=slice(None, TRAINED_TO), progress=False)
    (tmp_path / "c.yaml").write_text(
        "model: {kind: flow_matching, backbone: {widths: [8, 16], attention_heads: 0, "
        "embedding_dim: 16}}\n"
        "data: {channels: [t2m], history: 2, leads: [1]}\nsteps: 2\nbatch_size: 4\ndevice: cpu\n"
    )
    assert train(store, tmp_path / "c.yaml", run) == 0
    assert "nothing trained" not in capsys.readouterr().out
    ingest(SYNTHETIC, store, variables=["t2m"], progress=False)
    assert train(store, tmp_path / "c.yaml", run) == 0
    out = capsys.readouterr().out
    assert f"{run} had finished (step 2 of 2): nothing trained" in out
    assert "--no-resume" in out and "--set steps=N" in out
    assert load_checkpoint(run).trained_span.end == "2000-01-12T18:00"


def test_a_derived_run_resumed_with_set_keeps_it_in_its_config_yaml(tmp_path, capsys):
    """config.yaml "holds the --set overrides: it is the config the checkpoint trained", but
    a resumed run's --set (more fine-tune steps) was not written there: the next resume
    read the old step count and said "step 4 of 3"."""
    store, run = tmp_path / "s.zarr", tmp_path / "run"
    ingest(SYNTHETIC, store, variables=["t2m"], progress=False)
    args = ["train", "--store", str(store), "--out", str(run), "--no-progress"]
    fixed = ["--set", "steps=2", "--set", "calibration=null"]
    assert wxens([*args, *fixed]) == 0
    assert "resumed with" not in (run / "config.yaml").read_text()  # --set there already
    steps = load_checkpoint(run).train_config.fine_tune.steps
    assert wxens([*args, "--set", f"fine_tune.steps={steps + 1}"]) == 0
    assert load_checkpoint(run).train_config.fine_tune.steps == steps + 1
    text = (run / "config.yaml").read_text()
    assert text.startswith("# derived from ")
    assert (  # as a fresh run's --set is noted: what it replaced
        f"# resumed with --set fine_tune.steps={steps + 1}:\n"
        f"#   fine_tune.steps {steps + 1} (replaces the earlier {steps})\n" in text
    )
    capsys.readouterr()
    assert wxens(args) == 0
    assert f"had finished (step {2 + steps + 1} of {2 + steps + 1})" in capsys.readouterr().out
