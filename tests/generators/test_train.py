"""Training: a small model learns the synthetic law, resume is exact, phases, the CLI."""

from __future__ import annotations

import json
import logging
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr

from flows.cli import main as wxens
from generators import BackboneConfig, EulerSampler, FlowMatchingConfig
from generators.checkpoint import load_checkpoint
from generators.config import FineTuneConfig, ModelSpec, OptimConfig, TrainConfig
from generators.config_data import DataConfig
from generators.data import ResidualDataset
from generators.data.forecast import ForecastData
from generators.rollout import forecast_members
from generators.sampler_choice import SamplerChoice, SamplerSource, choose_sampler, default_sampler
from generators.train import Trainer, scale_changes, shift_levels, to_batch, train
from generators.train_data import read_training_data
from generators.train_plan import draw_items, lead_draw_weights
from pipeline.errors import InputError
from pipeline.schema import Period
from pipeline.store import ingest
from verification.scores import fair_crps

SYNTHETIC = "synthetic:n_lat=16,n_lon=16,n_times=480,step=6h,seed=5"
TRAIN_END = "2000-03-31"


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return ingest(
        SYNTHETIC, tmp_path_factory.mktemp("train") / "syn.zarr", variables=["t2m"], progress=False
    )


def tiny_config(steps: int, **changes) -> TrainConfig:
    model = FlowMatchingConfig(
        backbone=BackboneConfig(widths=(16, 32), attention_heads=0, embedding_dim=32), sample_nfe=4
    )
    base = {
        "model": ModelSpec("flow_matching", model),
        "data": DataConfig(channels=("t2m",), history=2, leads=(1,), train=Period(None, TRAIN_END)),
        "optim": OptimConfig(lr=2e-3, warmup_steps=20),
        "steps": steps,
        "batch_size": 16,
        "ema_decay": 0.99,
        "device": "cpu",
    }
    return TrainConfig(**(base | changes))


def pooled_fair_crps(members: np.ndarray, truth: np.ndarray, latitude: np.ndarray) -> float:
    """Fair CRPS (verification.scores) of members (N, M, C, H, W), cos-lat mean over all."""
    dims = ("init", "member", "channel", "latitude", "longitude")
    f = xr.DataArray(members, dims=dims, coords={"latitude": latitude})
    y = xr.DataArray(truth, dims=dims[:1] + dims[2:], coords={"latitude": latitude})
    return float(fair_crps(f, y, mean_over=("init", "channel", "latitude", "longitude")))


def test_a_small_model_beats_a_climatology_ensemble(store, tmp_path):
    """Fair CRPS of 6 h forecasts on held-out days: trained model < 0.85 x climatology
    (fields of the training period at the same hour of day), untrained model worse."""
    inits = pd.date_range("2000-04-05", periods=20, freq="18h")

    def scores(steps: int) -> float:
        result = train(
            store,
            tiny_config(steps, checkpoint_every=10_000, validate_every=10_000),
            tmp_path / f"s{steps}",
            progress=False,
        )
        checkpoint = load_checkpoint(result.checkpoint)
        data = ForecastData.from_store(checkpoint, store)
        members = forecast_members(
            checkpoint, data, inits, [6.0], 16, sampler=EulerSampler(nfe=4), progress=False
        )
        return pooled_fair_crps(
            members[:, :, 0], data.truth(inits, 6.0), data.dataset.latitude
        ), data

    trained, data = scores(80)
    untrained, _ = scores(1)
    t2m = store.dataset.t2m.sel(time=slice(None, TRAIN_END)).load()
    valid = inits + pd.Timedelta(hours=6)
    climatology = np.stack([t2m.sel(time=t2m.time.dt.hour == t.hour).values for t in valid])[
        :, :, None
    ]
    reference = pooled_fair_crps(climatology, data.truth(inits, 6.0), data.dataset.latitude)
    assert trained < 0.85 * reference, (trained, reference)
    assert untrained > trained * 1.2, (untrained, trained)


def test_resume_after_an_interrupt_gives_the_uninterrupted_weights(store, tmp_path, monkeypatch):
    config = tiny_config(
        6,
        checkpoint_every=3,
        validate_every=2,
        data=DataConfig(
            channels=("t2m",),
            history=2,
            leads=(1,),
            train=Period(None, TRAIN_END),
            validation=Period("2000-04-01", "2000-04-10"),
        ),
    )
    whole = train(store, config, tmp_path / "whole", progress=False)

    original = Trainer.train_step

    def interrupt_at_4(self, step):
        if step == 4:
            raise KeyboardInterrupt
        return original(self, step)

    monkeypatch.setattr(Trainer, "train_step", interrupt_at_4)
    with pytest.raises(KeyboardInterrupt):
        train(store, config, tmp_path / "split", progress=False)
    assert load_checkpoint(tmp_path / "split").step == 4
    monkeypatch.setattr(Trainer, "train_step", original)
    resumed = train(store, config, tmp_path / "split", progress=False)

    a, b = load_checkpoint(whole.checkpoint), load_checkpoint(resumed.checkpoint)
    assert a.step == b.step == 6
    for key in a.model_state:
        torch.testing.assert_close(a.model_state[key], b.model_state[key], rtol=0, atol=0)
        torch.testing.assert_close(a.ema_state[key], b.ema_state[key], rtol=0, atol=0)
    assert whole.validation_loss == pytest.approx(resumed.validation_loss, rel=1e-6)
    log = [json.loads(line) for line in (tmp_path / "whole" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [2, 4, 6] and all(
        r["validation_loss"] is not None for r in log
    )


def test_the_log_holds_the_steps_of_the_weights_after_a_kill_and_after_no_resume(
    store, tmp_path, monkeypatch
):
    """A run killed after logging step 3 but checkpointing step 2 logged step 3 twice once
    resumed, and --no-resume appended the new run's records to the old run's log."""
    config = tiny_config(4, checkpoint_every=2, validate_every=1)
    original = Trainer.train_step

    def killed_at_3(self, step):
        if step == 3:
            raise SystemExit("killed")  # no checkpoint written, unlike Ctrl-C
        return original(self, step)

    monkeypatch.setattr(Trainer, "train_step", killed_at_3)
    with pytest.raises(SystemExit):
        train(store, config, tmp_path / "run", progress=False)
    log_path = tmp_path / "run" / "log.jsonl"

    def steps() -> list[int]:
        return [json.loads(line)["step"] for line in log_path.read_text().splitlines()]

    assert load_checkpoint(tmp_path / "run").step == 2 and steps() == [1, 2, 3]
    with log_path.open("a") as log:
        log.write('{"step": 4, "lo')  # a record cut off by the kill
    monkeypatch.setattr(Trainer, "train_step", original)
    train(store, config, tmp_path / "run", progress=False)
    assert steps() == [1, 2, 3, 4]
    train(store, config, tmp_path / "run", resume=False, progress=False)
    assert steps() == [1, 2, 3, 4]


@pytest.mark.parametrize("max_memory_bytes", [2**31, 0], ids=["in_memory", "read_from_store"])
def test_items_built_ahead_by_workers_train_the_same_weights(
    store, tmp_path, monkeypatch, max_memory_bytes
):
    """Worker processes building the coming steps' items (as on CUDA) give the weights of
    items built in process, across the jump to the fine-tune and with lead weights, whether
    the states are in memory (forked workers) or read from the store item by item (workers
    from a fork server: a forked one would hang on the store's first read)."""
    config = tiny_config(
        4,
        checkpoint_every=100,
        validate_every=100,
        fine_tune=FineTuneConfig(steps=2, lr=1e-3),
        data=DataConfig(
            channels=("t2m",),
            history=2,
            leads=(1, 2),
            lead_weights=(1.0, 0.5),
            train=Period(None, TRAIN_END),
            max_memory_bytes=max_memory_bytes,
        ),
    )
    in_process = train(store, config, tmp_path / "in_process", progress=False)
    monkeypatch.setattr("generators.train.loader_workers", lambda device, world: 2)
    trainer = Trainer(store, config, tmp_path / "ahead")
    assert trainer.items.workers == 2
    assert trainer.train_data.in_memory == (max_memory_bytes > 0)
    ahead = trainer.run(progress=False)
    a, b = load_checkpoint(in_process.checkpoint), load_checkpoint(ahead.checkpoint)
    assert a.step == b.step == 6
    for key in a.model_state:
        torch.testing.assert_close(a.model_state[key], b.model_state[key], rtol=0, atol=0)


def test_resume_refuses_a_directory_of_another_run(store, tmp_path):
    train(store, tiny_config(2), tmp_path / "run", progress=False)
    other = tiny_config(
        2, data=DataConfig(channels=("t2m",), history=3, leads=(1,), train=Period(None, TRAIN_END))
    )
    with pytest.raises(InputError, match="another 'data'") as refused:
        train(store, other, tmp_path / "run", progress=False)
    # the key that differs, not a dump of both sections (channels, periods, weights...)
    assert "(data.history: 2 there, 3 in this config)" in str(refused.value)
    train(store, other, tmp_path / "run", resume=False, progress=False)  # --no-resume starts over


def test_a_run_resumes_with_its_store_read_item_by_item(store, tmp_path):
    """A run trained with its store read into memory, resumed with ``data.max_memory_bytes``
    0 (a machine with less memory), was refused as 'a run with another 'data''; how the store
    is read does not change the batches: it resumes to the weights of an unchanged resume."""
    for name in ("kept", "item_by_item"):
        train(store, tiny_config(2), tmp_path / name, progress=False)
    kept = train(store, tiny_config(4), tmp_path / "kept", progress=False)
    lazy = tiny_config(4, data=replace(tiny_config(4).data, max_memory_bytes=0))
    item_by_item = train(store, lazy, tmp_path / "item_by_item", progress=False)
    a, b = load_checkpoint(kept.checkpoint), load_checkpoint(item_by_item.checkpoint)
    assert a.step == b.step == 4
    for key in a.model_state:
        torch.testing.assert_close(a.model_state[key], b.model_state[key], rtol=0, atol=0)


def test_more_main_steps_cannot_resume_a_fine_tuned_run(store, tmp_path):
    """A run that finished its fine-tune, resumed with more main steps, went back to the
    main objective from its fine-tuned weights (steps 3-4 of 4 main, after 2 + 1)."""
    tune = FineTuneConfig(steps=1, crps_members=2, crps_nfe=1)
    train(store, tiny_config(2, fine_tune=tune), tmp_path / "run", progress=False)
    with pytest.raises(InputError, match="fine-tuned after its 2 main steps .* at step 3"):
        train(store, tiny_config(4, fine_tune=tune), tmp_path / "run", progress=False)
    more = FineTuneConfig(steps=2, crps_members=2, crps_nfe=1)  # more fine-tune: goes on
    assert train(store, tiny_config(2, fine_tune=more), tmp_path / "run", progress=False).step == 4


@pytest.mark.parametrize("spec", ["n_lat=16,n_lon=16,n_times=960,step=3h", "n_lat=12,n_lon=16"])
def test_resume_refuses_a_store_of_another_step_or_grid(store, tmp_path, spec):
    """The same config on another store (twice as many 3-hourly times, or another grid)
    resumed the run's weights, trained for the 6 h step and grid, without a word: a
    convolutional network loads on any grid and step. It is refused naming both."""
    train(store, tiny_config(2), tmp_path / "run", progress=False)
    other = ingest(f"synthetic:{spec},seed=5", tmp_path / "other.zarr", progress=False)
    with pytest.raises(
        InputError, match=r"native step 6 h; .*other.zarr has .*pass another out_dir= \(--out\)"
    ):
        train(other, tiny_config(4), tmp_path / "run", progress=False)
    train(other, tiny_config(2), tmp_path / "run", resume=False, progress=False)


def test_a_resumed_run_keeps_the_statistics_it_trained_with(store, tmp_path):
    """Appending times to a store changes its statistics; a run resumed on it went on with
    states normalised by the new ones, inputs its weights were not trained on. It keeps the
    checkpoint's normalisation."""
    train(store, tiny_config(2), tmp_path / "run", progress=False)
    first = load_checkpoint(tmp_path / "run")
    grown = ingest(
        SYNTHETIC.replace("n_times=480", "n_times=600"),
        tmp_path / "grown.zarr",
        variables=["t2m"],
        progress=False,
    )
    assert float(grown.statistics["t2m"].sel(statistic="std")) != pytest.approx(
        float(first.normalization.std[0])
    )
    resumed = Trainer(grown, tiny_config(4), tmp_path / "run")
    assert resumed.step == 2
    kept = resumed.train_data.normalization
    np.testing.assert_array_equal(kept.mean, first.normalization.mean)
    np.testing.assert_array_equal(kept.std, first.normalization.std)
    np.testing.assert_array_equal(kept.tendency_std, first.normalization.tendency_std)
    np.testing.assert_array_equal(resumed.train_data.std, first.normalization.std)


def test_fine_tune_phase_switches_to_the_fair_crps_and_its_sampler(store, tmp_path, caplog):
    config = tiny_config(3, fine_tune=FineTuneConfig(steps=2, crps_members=2, crps_nfe=2))
    logger = logging.getLogger("generators.train")
    logger.addHandler(caplog.handler)
    caplog.set_level(logging.INFO, logger=logger.name)
    try:
        train(store, config, tmp_path / "ft", progress=False)
    finally:
        logger.removeHandler(caplog.handler)
    records = dict.fromkeys(caplog.records)  # the root's handler may pass them on too
    said = [r.getMessage() for r in records if "main phase done" in r.getMessage()]
    # said once as the slower phase starts (a walk waited minutes with no line)
    assert len(said) == 1 and said[0].startswith("main phase done at step 3 (validation "), said
    assert said[0].endswith(
        "fine-tune: 2 steps of the fair CRPS, 2 members x 2 sampler steps a sample"
    )
    log = [json.loads(line) for line in (tmp_path / "ft" / "log.jsonl").read_text().splitlines()]
    assert log[-1]["phase"] == "fine_tune" and log[-1]["step"] == 5
    checkpoint = load_checkpoint(tmp_path / "ft")
    assert (
        checkpoint.model_config.crps_weight == 1.0
        and checkpoint.model_config.regression_weight == 0.0
    )
    sampler = default_sampler(checkpoint, checkpoint.build_model())
    assert sampler.nfe == 2


def test_the_fine_tune_log_never_shows_the_main_phases_validation(store, tmp_path):
    """Logged every 50 steps, validated at each phase's end: the fine-tune's line at step
    100 has no validation of its own yet, and the main phase's (another objective) is not
    shown."""
    fine_tune = FineTuneConfig(steps=50, crps_members=2, crps_nfe=1)
    config = tiny_config(52, fine_tune=fine_tune, validate_every=120, batch_size=2)
    config = replace(config, data=replace(config.data, validation=Period("2000-04-01", None)))
    train(store, config, tmp_path / "ft", progress=False)
    log = [json.loads(line) for line in (tmp_path / "ft" / "log.jsonl").read_text().splitlines()]
    by_step = {r["step"]: r for r in log}
    assert by_step[52]["phase"] == "main" and by_step[52]["validation_loss"] is not None
    assert by_step[100]["phase"] == "fine_tune" and by_step[100]["validation_loss"] is None
    assert by_step[102]["validation_loss"] is not None


def test_an_excluded_fold_is_held_out_of_both_phases_and_kept_in_the_checkpoint(store, tmp_path):
    fold = Period("2000-02-01", "2000-02-10")
    data = DataConfig(
        channels=("t2m",), history=2, leads=(1, 2), train=Period(None, TRAIN_END), exclude=(fold,)
    )
    config = tiny_config(
        2, data=data, fine_tune=FineTuneConfig(steps=1, period=Period("2000-01-15", TRAIN_END))
    )
    trainer = Trainer(store, config, tmp_path / "cv")
    for dataset in (trainer.train_data, trainer.fine_tune_data):
        init = dataset.times[dataset.pairs[:, 0]]
        valid = init + dataset.native_step * np.asarray(data.leads)[dataset.pairs[:, 1]]
        assert not (fold.contains(init) | fold.contains(valid)).any()
        assert init.max() > pd.Timestamp("2000-02-10")  # the rest of the period is kept
    train(store, config, tmp_path / "cv", progress=False)
    assert load_checkpoint(tmp_path / "cv").train_config.data.exclude == (fold,)


def test_the_train_command_runs_and_reports_bad_configs(store, tmp_path, capsys):
    config = tmp_path / "c.yaml"
    config.write_text(
        "model: {kind: edm, backbone: {widths: [8, 16], attention_heads: 0, embedding_dim: 16}}\n"
        f"data: {{channels: [t2m], train: {{end: {TRAIN_END}}}}}\nsteps: 2\nbatch_size: 4\n"
    )
    args = [
        "train",
        "--store",
        str(store.path),
        "--config",
        str(config),
        "--out",
        str(tmp_path / "cli"),
        "--no-progress",
    ]
    assert wxens(args + ["--set", "device=cpu"]) == 0
    assert "at step 2" in capsys.readouterr().out
    assert load_checkpoint(tmp_path / "cli").kind == "edm"
    assert wxens(args + ["--set", "optim.learning_rate=1"]) == 2
    assert "unknown key(s) ['learning_rate']" in capsys.readouterr().err
    with pytest.raises(SystemExit) as refused:  # by the parser, before any work
        wxens(args + ["--threads", "0"])
    assert refused.value.code == 2
    assert "argument --threads: must be at least 1, got 0" in capsys.readouterr().err
    threads = torch.get_num_threads()
    try:
        assert wxens(args + ["--set", "device=cpu", "--threads", "1", "--no-resume"]) == 0
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(threads)


def test_amplitude_augmentation_scales_every_change_about_the_current_state(store):
    spec = DataConfig(history=3, leads=(1, 2), train=Period(None, TRAIN_END)).sample_spec
    data = ResidualDataset.from_store(store, spec)
    batch = to_batch(data[np.arange(0, 64, 4)])
    scaled = scale_changes(batch, 1.5, torch.Generator().manual_seed(0))
    history, target = batch.condition.history, batch.target
    new = scaled.condition.history
    torch.testing.assert_close(new[:, -1], history[:, -1])  # the current state is kept
    a = (scaled.target / target).flatten(1)
    factor = a[:, 0]
    torch.testing.assert_close(a, factor[:, None].expand_as(a))  # one factor per sample
    assert factor.min() >= 1 / 1.5 - 1e-6 and factor.max() <= 1.5 + 1e-6
    assert factor.min() < 0.9 and factor.max() > 1.1  # drawn, not constant
    torch.testing.assert_close(
        new - new[:, -1:], factor[:, None, None, None, None] * (history - history[:, -1:])
    )
    assert torch.equal(scaled.condition.static, batch.condition.static)
    same = scale_changes(batch, 1.0, torch.Generator().manual_seed(0))
    torch.testing.assert_close(same.target, target)
    with pytest.raises(InputError, match="amplitude_augmentation must be at least 1"):
        DataConfig(amplitude_augmentation=0.5)
    with pytest.raises(InputError, match="cannot be combined"):
        DataConfig(amplitude_augmentation=1.5, variability_scaling=True)


def test_level_augmentation_shifts_each_history_by_one_constant_per_channel(store):
    spec = DataConfig(history=3, leads=(1, 2), train=Period(None, TRAIN_END)).sample_spec
    data = ResidualDataset.from_store(store, spec)
    batch = to_batch(data[np.arange(0, 400, 2)])
    shifted = shift_levels(batch, 0.5, torch.Generator().manual_seed(0))
    shift = shifted.condition.history - batch.condition.history  # (B, K, C, H, W)
    c = shift[:, :1, :, :1, :1]
    torch.testing.assert_close(shift, c.expand_as(shift), rtol=0, atol=1e-5)
    assert torch.equal(shifted.target, batch.target)  # the change to learn is kept
    assert c.std().item() == pytest.approx(0.5, rel=0.15)  # N(0, 0.5^2) over 200 samples
    assert abs(c.mean().item()) < 0.1
    with pytest.raises(InputError, match="level_augmentation is a std"):
        DataConfig(level_augmentation=-0.1)


def test_lead_weights_set_each_leads_share_of_the_draws(store):
    # leads 1 and 8 steps: a lead-8 pair needs 7 more valid times, so the counts differ
    spec = DataConfig(history=2, leads=(1, 8), train=Period(None, TRAIN_END)).sample_spec
    data = ResidualDataset.from_store(store, spec)
    lead_of = data.pairs[:, 1]
    n = np.bincount(lead_of)
    assert n[0] > n[1]
    draws = 40_000
    equal = draw_items(len(data), draws, None, torch.Generator().manual_seed(0))
    assert np.bincount(lead_of[equal]) / draws == pytest.approx(n / n.sum(), abs=0.01)
    weights = lead_draw_weights(data, (3.0, 1.0))
    weighted = draw_items(len(data), draws, weights, torch.Generator().manual_seed(0))
    assert np.bincount(lead_of[weighted]) / draws == pytest.approx([0.75, 0.25], abs=0.01)
    # within a lead the initial times stay uniform: every pair of lead 8 drawn about as often
    per_pair = np.bincount(weighted[lead_of[weighted] == 1], minlength=len(data))[lead_of == 1]
    expected = 0.25 * draws / n[1]
    assert per_pair.mean() == pytest.approx(expected, rel=0.01)
    assert per_pair.std() < 3 * np.sqrt(expected)  # binomial spread, no favoured times
    same = draw_items(len(data), draws, weights, torch.Generator().manual_seed(0))
    assert np.array_equal(same, weighted)  # the generator decides
    with pytest.raises(InputError, match="one positive weight per lead of \\[1, 8\\]"):
        DataConfig(leads=(8, 1), lead_weights=(1.0,))
    with pytest.raises(InputError, match="data.lead_weights"):
        DataConfig(leads=(1, 8), lead_weights=(1.0, 0.0))


def test_past_multinomials_limit_the_weighted_draw_keeps_its_law(store, monkeypatch):
    """More items than torch.multinomial takes (2^24) are drawn by inverting the cumulative
    weights: lead shares as asked, uniform within a lead, items of weight 0 never drawn."""
    spec = DataConfig(history=2, leads=(1, 8), train=Period(None, TRAIN_END)).sample_spec
    data = ResidualDataset.from_store(store, spec)
    lead_of, draws = data.pairs[:, 1], 40_000
    weights = lead_draw_weights(data, (3.0, 1.0))
    monkeypatch.setattr("generators.train_plan.MULTINOMIAL_CATEGORIES", 16)
    drawn = draw_items(len(data), draws, weights, torch.Generator().manual_seed(0))
    assert np.bincount(lead_of[drawn]) / draws == pytest.approx([0.75, 0.25], abs=0.01)
    per_pair = np.bincount(drawn[lead_of[drawn] == 0], minlength=len(data))[lead_of == 0]
    assert per_pair.std() < 3 * np.sqrt(per_pair.mean())
    monkeypatch.undo()
    many = torch.zeros(2**24 + 1, dtype=torch.float64)
    many[[0, -1]] = torch.tensor([1.0, 3.0], dtype=torch.float64)
    with pytest.raises(RuntimeError, match="categories"):
        torch.multinomial(many, 1, generator=torch.Generator().manual_seed(0))
    drawn = draw_items(len(many), draws, many, torch.Generator().manual_seed(0))
    assert set(np.unique(drawn)) == {0, 2**24}
    assert np.mean(drawn == 2**24) == pytest.approx(0.75, abs=0.01)


def test_the_configs_sampler_is_the_forecasts_default(store, tmp_path):
    chosen = train(
        store, tiny_config(2, sampler="euler:nfe=3,noise_scale=1.3"), tmp_path / "a", progress=False
    )
    checkpoint = load_checkpoint(chosen.checkpoint)
    assert choose_sampler(checkpoint, checkpoint.build_model()) == SamplerChoice(
        EulerSampler(nfe=3, noise_scale=1.3), SamplerSource.CONFIG
    )
    plain = load_checkpoint(train(store, tiny_config(2), tmp_path / "b", progress=False).checkpoint)
    assert choose_sampler(plain, plain.build_model()) == SamplerChoice(
        EulerSampler(nfe=4),
        SamplerSource.MODEL,  # sample_nfe
    )
    given = EulerSampler(nfe=2)
    assert choose_sampler(plain, plain.build_model(), given).source is SamplerSource.GIVEN
    with pytest.raises(InputError, match="nfe must be at least 1"):
        tiny_config(2, sampler="euler:nfe=0")
    with pytest.raises(InputError, match="flow_matching cannot sample with the 'edm_heun'"):
        tiny_config(2, sampler="edm_heun:num_steps=5")


def test_without_a_bar_each_logged_step_is_a_log_line(store, tmp_path, caplog):
    # What a Prefect run shows of a training task (flows.runtime forwards "generators").
    caplog.set_level(logging.INFO, logger="generators.train")
    train(store, tiny_config(4, validate_every=2), tmp_path / "quiet", progress=False)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("step ")]
    assert [line.split(":")[0] for line in lines] == ["step 2/4 (main)", "step 4/4 (main)"]
    assert all("loss " in line for line in lines)
    caplog.clear()
    train(store, tiny_config(6, validate_every=2), tmp_path / "bar", progress=True)
    assert not any(r.getMessage().startswith("step ") for r in caplog.records)


def test_the_parts_of_a_training_share_one_read_of_the_states(store, caplog):
    """The training, validation and fine-tune datasets each read the whole store into
    memory, normalised alike ("(training part): reading ... MiB", then the same for the
    validation part): twice the memory a training needs. They index one read of it, said
    once, and give the items each gave alone."""
    logger = logging.getLogger("generators.data.dataset")
    logger.addHandler(caplog.handler)
    caplog.set_level(logging.INFO, logger=logger.name)
    config = tiny_config(2, fine_tune=FineTuneConfig(steps=1, period=Period("2000-02-01", None)))
    data = replace(config.data, validation=Period("2000-04-01", None))
    try:
        read = read_training_data(store, replace(config, data=data))
    finally:
        logger.removeHandler(caplog.handler)
    records = {id(r): r for r in caplog.records}.values()  # the root may pass them on too
    reads = [r.getMessage() for r in records if "states into memory" in r.getMessage()]
    said = "(training part): reading 0.5 MiB of states into memory"
    assert [line.endswith(said) for line in reads] == [True], reads
    assert np.shares_memory(read.train._states, read.validation._states)
    assert np.shares_memory(read.train._states, read.fine_tune._states)
    alone = ResidualDataset.from_store(
        store,
        data.sample_spec,
        period=data.validation,
        channels=data.channels,
        normalization=read.train.normalization,
        masked_channels=(),
    )
    items = np.arange(0, len(alone), 7)
    for key, value in alone[items].items():
        assert torch.equal(read.validation[items][key], value), key


@pytest.mark.gpu
def test_training_runs_under_bf16_autocast_on_cuda(store, tmp_path):
    result = train(
        store, tiny_config(3, device="cuda", bf16=True), tmp_path / "gpu", progress=False
    )
    checkpoint = load_checkpoint(result.checkpoint)
    assert all(torch.isfinite(t).all() for t in checkpoint.ema_state.values())


@pytest.mark.gpu
def test_the_compiled_network_trains_as_the_eager_one_on_cuda(store, tmp_path):
    """torch.compile of the network (the CUDA default) changes no loss beyond kernel
    rounding over the first steps of both phases, and keeps the checkpoint's keys."""
    losses, keys = {}, {}
    for compiled in (True, False):
        config = tiny_config(
            3, device="cuda", compile_network=compiled, fine_tune=FineTuneConfig(steps=2)
        )
        trainer = Trainer(store, config, tmp_path / str(compiled))
        assert (trainer.model.backbone._compiled_call_impl is not None) == compiled
        losses[compiled] = [trainer.train_step(step) for step in range(config.total_steps)]
        keys[compiled] = list(trainer.checkpoint().model_state)
    np.testing.assert_allclose(losses[True], losses[False], rtol=0.05)
    assert keys[True] == keys[False]


def test_the_fine_tune_validation_loss_is_labelled_as_its_own_objective(store, tmp_path):
    """The main phase's last validation loss is kept apart (it equals a run without the
    fine-tune's), the final one is named as the fine-tune's fair CRPS objective."""
    validation = Period("2000-04-01", "2000-04-10")
    data = DataConfig(
        channels=("t2m",),
        history=2,
        leads=(1,),
        train=Period(None, TRAIN_END),
        validation=validation,
    )
    ft = FineTuneConfig(steps=2, crps_members=2, crps_nfe=2)
    config = tiny_config(3, data=data, fine_tune=ft, validate_every=100, validation_batches=2)
    result = train(store, config, tmp_path / "ft", progress=False)
    plain = train(store, tiny_config(3, data=data, validation_batches=2), tmp_path / "main")
    assert result.phase == "fine_tune" and plain.phase == "main"
    assert result.main_validation_loss == pytest.approx(plain.validation_loss, rel=1e-6)
    assert result.validation_loss != pytest.approx(result.main_validation_loss, rel=1e-3)
    lines = result.report(config)
    assert lines[0].startswith(
        f"validation loss {plain.validation_loss:.4f} at the end of the main"
    )
    assert lines[-1] == (
        f"validation loss {result.validation_loss:.4f} (the fine-tune's objective, fair CRPS "
        "of 2 members of the normalised fields, not in K: not comparable with the main "
        "phase's)"
    )
    assert plain.report(tiny_config(3))[-1].endswith("(the flow_matching loss)")


def test_a_second_train_into_a_directory_being_trained_is_refused_at_once(store, tmp_path, capsys):
    """Two `wxens train --out DIR` at once: each save removed the other's temporary
    checkpoint (one died with a FileNotFoundError traceback) and both appended to
    log.jsonl (steps 3 and 6 twice). The second is refused, naming the directory."""
    from filelock import FileLock

    from pipeline.transaction import lock_path

    config = tmp_path / "c.yaml"
    config.write_text(
        "model: {kind: edm, backbone: {widths: [8, 16], attention_heads: 0, embedding_dim: 16}}\n"
        f"data: {{channels: [t2m], train: {{end: {TRAIN_END}}}}}\nsteps: 2\nbatch_size: 4\n"
    )
    out = tmp_path / "run"
    args = ["train", "--store", str(store.path), "--config", str(config), "--out", str(out)]
    with FileLock(lock_path(out)):  # what the first run holds
        assert wxens(args + ["--no-progress", "--set", "device=cpu"]) == 2
    err = capsys.readouterr().err
    assert f"{out}: another process is writing it" in err
    assert not (out / "last.pt").exists()
    assert wxens(args + ["--no-progress", "--set", "device=cpu"]) == 0  # lock released


def test_a_calibration_of_a_run_being_trained_is_refused_at_once(store, tmp_path, capsys):
    """`wxens calibrate` while `wxens train` went on in the directory loaded the older
    checkpoint and wrote it, calibrated, over the run's newer one when it finished."""
    from filelock import FileLock

    from pipeline.transaction import lock_path

    out = tmp_path / "run"
    train(store, tiny_config(2), out, progress=False)
    before = (out / "last.pt").read_bytes()
    args = ["calibrate", "--checkpoint", str(out), "--store", str(store.path)]
    with FileLock(lock_path(out)):  # what a training run in it holds
        assert wxens(args + ["--start", "2000-04-01", "--end", "2000-04-10", "--no-progress"]) == 2
    assert f"{out}: another process is writing it" in capsys.readouterr().err
    assert (out / "last.pt").read_bytes() == before


def test_info_on_a_run_stopped_before_its_first_checkpoint_says_so(tmp_path, capsys):
    """A `wxens train` killed before its first checkpoint leaves config.yaml; `wxens info`
    of it said 'not a Zarr store (StoreError: ... no Zarr store there)'."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text("steps: 2\n")
    assert wxens(["info", str(run)]) == 2
    err = capsys.readouterr().err
    assert "a training directory without a checkpoint yet" in err and "Zarr" not in err
    assert f"`wxens train --out {run}`" in err


def test_a_seed_too_large_for_the_step_generators_is_refused_with_the_config():
    """seed=2e13 built the model, then ended in torch's 'Overflow when unpacking long long'
    at the first step's draw (seed x 1000003 + step passes 2**63)."""
    with pytest.raises(InputError, match=r"seed must be between -2\*\*40 and 2\*\*40"):
        tiny_config(2, seed=20_000_000_000_000)
    tiny_config(2, seed=2**40 - 1)  # the largest accepted, and negative ones as before
    tiny_config(2, seed=-3)


def test_calibration_leads_the_model_cannot_reach_are_refused_before_training(
    store, tmp_path, capsys
):
    """A config whose calibration.leads_hours the trained model cannot forecast (7 h from a
    model of 6 h steps) trained every step and failed only in the calibration after it."""
    config = tmp_path / "c.yaml"
    config.write_text(
        "model: {kind: flow_matching, backbone: {widths: [8, 16], attention_heads: 0, "
        "embedding_dim: 16}}\ndata: {channels: [t2m], history: 2, leads: [1], train: {end: "
        f"{TRAIN_END}}}}}\nsteps: 2\nbatch_size: 4\ndevice: cpu\ncalibration: {{leads_hours: "
        "[6, 7], members: 2, period: {start: 2000-04-01, end: 2000-04-10}}\n"
    )
    out = tmp_path / "run"
    args = ["train", "--store", str(store.path), "--config", str(config), "--out", str(out)]
    assert wxens([*args, "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert f"calibration.leads_hours ({config})" in err and "lead 7 h cannot be reached" in err
    assert "leave calibration.leads_hours out" in err
    assert not (out / "last.pt").exists()


def test_each_checkpoint_written_is_a_log_line_naming_its_step_and_path(store, tmp_path, caplog):
    logger = logging.getLogger("generators.train")
    logger.addHandler(caplog.handler)
    caplog.set_level(logging.INFO, logger=logger.name)
    try:
        train(store, tiny_config(5, checkpoint_every=2, validate_every=10), tmp_path / "o")
    finally:
        logger.removeHandler(caplog.handler)
    path = tmp_path / "o" / "last.pt"
    records = {id(r): r for r in caplog.records}.values()  # the root may pass them on too
    said = [r.getMessage() for r in records if "checkpoint" in r.getMessage()]
    assert said == [f"checkpoint of step {k} written to {path}" for k in (2, 4, 5)]
