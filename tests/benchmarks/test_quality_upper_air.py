"""The upper-air study's plumbing on a tiny store: a model trained a few steps and the
oracle scored per channel, the oracle's members and the balanced model's balanced as the
truth, the tables written."""

from __future__ import annotations

import json

import pandas as pd

from benchmarks.quality_tables import write_results
from benchmarks.quality_upper_air import markdown, run_study
from generators.checkpoint import load_checkpoint
from pipeline.forecast_store import provenance
from pipeline.schema import Period

TINY = "synthetic:n_lat=8,n_lon=12,n_times=120,step=6h,seed=7,levels=300/500/850,upper_air_phi=0.9"
OVERRIDES = (
    "steps=3", "fine_tune.steps=2", "validate_every=3", "checkpoint_every=3", "model.sample_nfe=2",
    "data.train.end=2000-01-20", "data.validation.start=2000-01-21",
    "data.validation.end=2000-01-24",
    "model.backbone.widths=[8,16]", "model.backbone.embedding_dim=16", "batch_size=4",
)  # fmt: skip
"""A few steps of the smallest network and batch: the study's plumbing, not its skill, is
under test, and the network's convolutions were most of its training, calibration and
forecasts."""


def test_the_study_scores_every_channel_and_the_balance_of_model_and_oracle(tmp_path):
    test = pd.date_range("2000-01-25", periods=3, freq="18h")
    validation = Period("2000-01-21", "2000-01-24")
    payload = run_study(
        tmp_path, source=TINY, overrides=OVERRIDES, test=test, validation=validation, members=3
    )
    assert payload["train_steps"] == 5  # 3 main steps and 2 of the config's fair-CRPS fine-tune
    names = payload["channels"]
    assert names[0] == "t2m" and len(names) == 13 and "v850" in names
    scored = payload["models"] | {"oracle": payload["oracle"]}
    for who, card in scored.items():
        for name in names:
            crps = [card[name][h]["fair_crps"] for h in ("6", "24")]
            assert all(c > 0 for c in crps), (who, name, crps)
    for name in names:  # the oracle's spread grows with the lead: its CRPS too
        assert (
            payload["oracle"][name]["24"]["fair_crps"] > payload["oracle"][name]["6"]["fair_crps"]
        )
    labels = set(payload["balance"]["oracle"]["6"])
    assert labels == {
        "hypsometric 850-500 hPa", "hypsometric 500-300 hPa",
        "geostrophic 300 hPa", "geostrophic 500 hPa", "geostrophic 850 hPa",
    }  # fmt: skip
    for lead in ("6", "24"):
        for row in payload["balance"]["oracle"][lead].values():
            assert row["fraction"] == 1.0 and row["truth"] <= row["tolerance"]
        network, balanced, calibrated = (
            payload["balance"][m][lead]
            for m in ("network", "network + balance", "network + balance + calibration")
        )
        for label in labels:  # three training steps cannot have learned balance; the
            assert network[label]["fraction"] < 1.0  # projection makes layers hypsometric
            assert balanced[label]["member_median"] < network[label]["member_median"] / 2
            if label.startswith("hypsometric"):  # and one calibration factor keeps them so
                assert balanced[label]["fraction"] == calibrated[label]["fraction"] == 1.0
    made = sorted(
        (provenance(path).balanced, bool(provenance(path).calibration))
        for path in tmp_path.glob("model-*.zarr")
    )
    assert made == [(False, False), (True, False), (True, True)]  # each store says so
    text = markdown(payload)
    write_results("upper", payload, text, tmp_path / "results")
    assert json.loads((tmp_path / "results" / "upper.json").read_text())["members"] == 3
    assert "| 6 h | geostrophic 500 hPa |" in text and "| z500 |" in text
    # a checkpoint retrained into the same path is calibrated and forecast anew: the
    # study's stores are keyed by the checkpoint's content, not its path
    path = next(tmp_path.glob("*/last.pt"))
    before = load_checkpoint(path)
    ema = {k: v + 1e-3 if v.is_floating_point() else v for k, v in before.ema_state.items()}
    before.replace(ema_state=ema).save(path)
    run_study(
        tmp_path, source=TINY, overrides=OVERRIDES, test=test, validation=validation, members=3,
        checkpoint=str(path),
    )  # fmt: skip
    assert len(list(tmp_path.glob("calibrated-*.pt"))) == 2
    assert len(list(tmp_path.glob("model-*.zarr"))) == 6
