"""Calibration against the synthetic oracle, the scorecard tree, the report and the CLI."""

from __future__ import annotations

import dataclasses
import logging
import re
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from verification_cases import balanced_members, oracle_forecast

from flows.cli import main
from pipeline.adapters import from_wxens_forecast
from pipeline.alignment import align_with_truth
from pipeline.errors import InputError
from pipeline.forecast_store import ForecastProvenance, write_forecast
from pipeline.sources.synthetic import SyntheticConfig, synthetic_dataset
from pipeline.store import ingest
from verification import ranks as vr
from verification import scores as vs
from verification.config import VerifyConfig
from verification.output import write_scores
from verification.report import render_report, report_figures, write_report
from verification.scorecard import verify

ALL = ("init_time", "lead_time", "latitude", "longitude")


@pytest.fixture(scope="module")
def long_synthetic():
    config = SyntheticConfig(n_lat=16, n_lon=24, n_times=301, seed=3)
    return config, synthetic_dataset(config)[["t2m"]].load()


def independent_points(da: xr.DataArray) -> xr.DataArray:
    """Every sixth grid point (~10° apart, far beyond the 500 km correlation length)."""
    return da.isel(latitude=slice(0, None, 6), longitude=slice(0, None, 6))


@pytest.mark.parametrize("factor", [1.0, 0.5])
def test_oracle_ensemble_is_calibrated_and_a_narrow_one_is_not(long_synthetic, factor):
    # One step ahead, the truth's deviations from its conditional mean are independent
    # from one init time to the next, so ranks at distant points are independent samples.
    config, truth = long_synthetic
    aligned = align_with_truth(
        oracle_forecast(config, truth, 300, (6,), 10, spread_factor=factor), truth
    )
    f, t = aligned.forecast["t2m"], aligned.truth["t2m"]
    ssr = float(vs.spread_skill_ratio(f, t, mean_over=ALL))
    counts = vr.rank_histogram(independent_points(f), independent_points(t), mean_over=ALL)
    flatness = vr.rank_flatness(counts)
    if factor == 1.0:
        assert ssr == pytest.approx(1.0, abs=0.05)
        assert float(flatness["p_value"]) > 0.01
    else:
        assert ssr < 0.95
        assert float(flatness["p_value"]) < 1e-6
        middle = float(counts[3:8].mean())
        assert counts[0] > 2 * middle and counts[-1] > 2 * middle  # U-shaped


@pytest.fixture(scope="module")
def case():
    """A small forecast: oracle t2m and balanced upper air, 3 members, 8 inits, 2 leads."""
    config = SyntheticConfig(n_lat=12, n_lon=16, n_times=16, levels=(500, 850))
    truth = synthetic_dataset(config).load()
    leads = (6, 12)
    t2m = oracle_forecast(config, truth, 8, leads, 3, seed=1)
    upper = balanced_members(config, truth, 8, leads, seeds=(21, 22, 23))[["z", "t"]]
    return config, truth, xr.merge([t2m, upper.assign_coords(member=t2m.member)])


def test_verify_builds_every_group_and_a_tidy_scorecard(case):
    _, truth, forecast = case
    tree = verify(forecast, truth, VerifyConfig(physics_init_times=4, progress=False))
    assert set(tree.children) >= {
        "scorecard",
        "rank_histogram",
        "reliability",
        "multivariate",
        "spectra",
        "physics",
        "maps",
    }
    card = tree["scorecard"].to_dataset()
    frame = card.to_dataframe()
    assert frame.index.names == ["variable", "lead_time"]
    assert len(frame) == 5 * 2  # t2m, t500, t850, z500, z850 at two leads
    assert {"fair_crps", "ecdf_crps", "spread_skill_ratio", "rank_delta", "brier_score_q90"} <= set(
        frame.columns
    )
    sel = {"variable": "t2m", "lead_time": pd.Timedelta(hours=6)}
    expected = vs.fair_crps(
        forecast["t2m"], align_with_truth(forecast, truth).truth["t2m"], mean_over=ALL[:1] + ALL[2:]
    )
    assert float(card["fair_crps"].sel(sel)) == pytest.approx(
        float(expected.sel(lead_time=sel["lead_time"]))
    )
    assert int(card["n_missing_truth"].sum()) == 0
    counts = tree["rank_histogram"].to_dataset()["rank_histogram"]
    assert (counts.sum("rank") == card["n_verified"]).all()
    physics = tree["physics"].to_dataset()
    assert {"hypsometric", "physical_bounds", "spectral_ratio"} <= set(
        physics.family.values.tolist()
    )
    assert "physical_bounds t2m" in physics.check.values.tolist()
    reasons = physics["reason"].to_series()
    assert reasons["geostrophic"].startswith("needs z, u and v")  # no winds in this forecast
    assert bool(physics["passed"].sel(check="hypsometric 850-500 hPa").all())


def test_spectra_compare_the_forecasts_that_have_their_truth(case):
    """Members equal to the truth have a spectral ratio of 1, also where the truth ends
    before the last forecasts' leads (their power entered the average; the truth's not)."""
    _, truth, forecast = case
    exact = align_with_truth(forecast, truth).truth.drop_vars("valid_time")
    members = xr.concat([exact] * 3, "member").transpose("init_time", "member", ...)
    short = truth.isel(time=slice(0, 8))  # the last forecasts' leads have no truth
    config = VerifyConfig(physics_init_times=8, energy_score=False, progress=False)
    ratio = verify(members, short, config)["spectra"].to_dataset()["spectral_ratio"]
    np.testing.assert_allclose(ratio.dropna("wavenumber", how="all"), 1.0, rtol=1e-5)


def test_missing_truth_is_skipped_and_counted(case):
    _, truth, forecast = case
    short = truth.isel(time=slice(0, 8))  # the last init's 12 h lead and more are missing
    tree = verify(
        forecast, short, VerifyConfig(physics_init_times=0, energy_score=False, progress=False)
    )
    card = tree["scorecard"].to_dataset()
    grid = 12 * 16
    missing = card["n_missing_truth"].sel(variable="t2m")
    assert missing.values.tolist() == [1 * grid, 2 * grid]
    assert np.isfinite(card["fair_crps"]).all()
    assert tree.to_dataset().attrs["missing_valid_times"]


def test_a_member_missing_everywhere_is_counted_and_named_not_silently_emptying_ranks(case, caplog):
    """A member all NaN in one variable (missing from one file): CRPS and the interval use
    the others; the rank histogram, which needs every member, is empty, and that is said
    and counted."""
    _, truth, forecast = case
    forecast = forecast.copy(deep=True)
    forecast["t2m"][:, 0] = np.nan
    config = VerifyConfig(physics_init_times=0, energy_score=False, progress=False)
    with caplog.at_level("WARNING", logger="verification.scorecard"):
        card = verify(forecast, truth, config)["scorecard"].to_dataset().sel(variable="t2m")
    assert "lack some members" in caplog.text
    assert (card["n_incomplete_ensemble"] == card["n_verified"]).all()
    assert (card["n_verified"] > 0).all() and np.isfinite(card["fair_crps"]).all()
    assert (card["fair_crps_low"] <= card["fair_crps"]).all()
    masked = forecast.drop_isel(member=0)
    masked["t2m"][..., :3, :4] = np.nan  # the forecast masked, the truth whole
    card = verify(masked, truth, config)["scorecard"].to_dataset().sel(variable="t2m")
    assert (card["n_verified"] == card["n_verified"].max()).all()
    assert int(card["n_verified"][0]) == forecast.sizes["init_time"] * (12 * 16 - 3 * 4)
    assert int(card["n_incomplete_ensemble"].sum()) == 0


def test_a_member_without_any_value_is_left_out_with_a_warning(case, caplog):
    """A member NaN in every variable (as cfgrib fills one missing from a GRIB) made every
    point incomplete: an empty rank histogram, and a spread-skill ratio 2 % low at 5
    members (its finite-ensemble factor took M = 5). It is now left out, named."""
    _, truth, forecast = case
    broken = forecast.copy(deep=True)
    for name in broken.data_vars:
        broken[name][:, 1] = np.nan
    config = VerifyConfig(physics_init_times=0, energy_score=False, progress=False)
    with caplog.at_level("WARNING", logger="verification.scorecard"):
        tree = verify(broken, truth, config)
    assert "member(s) [1] hold no value" in caplog.text and "lack some members" not in caplog.text
    want = verify(forecast.drop_isel(member=1), truth, config)
    assert tree.attrs["n_members"] == forecast.sizes["member"] - 1
    for group in ("scorecard", "rank_histogram"):
        xr.testing.assert_allclose(tree[group].to_dataset(), want[group].to_dataset())


def test_scorecard_intervals_bracket_the_scores_and_survive_missing_truth(case):
    _, truth, forecast = case
    config = VerifyConfig(physics_init_times=0, energy_score=False, progress=False)
    card = verify(forecast, truth, config)["scorecard"].to_dataset()
    for score in ("fair_crps", "spread_skill_ratio"):
        low, high = card[f"{score}_low"], card[f"{score}_high"]
        assert (low <= card[score] + 1e-12).all() and (card[score] <= high + 1e-12).all()
        assert (low < high).all()  # 8 init times on 2 days: two blocks
        assert "block-bootstrap interval" in high.attrs["long_name"]
    short = verify(forecast, truth.isel(time=slice(0, 8)), config)["scorecard"].to_dataset()
    assert np.isfinite(short["fair_crps_high"]).all()
    off = VerifyConfig(physics_init_times=0, energy_score=False, progress=False, interval_level=0)
    assert "fair_crps_low" not in verify(forecast, truth, off)["scorecard"].to_dataset()


def test_scorecard_rank_max_min_and_its_perfect_model_floor(case):
    _, truth, forecast = case
    config = VerifyConfig(physics_init_times=0, energy_score=False, progress=False)
    tree = verify(forecast, truth, config)
    card = tree["scorecard"].to_dataset()
    counts = tree["rank_histogram"].to_dataset()["rank_histogram"]
    xr.testing.assert_allclose(
        card["rank_max_min"].drop_vars("variable_units"),
        (counts.max("rank") / counts.min("rank")).astype(float),
    )
    # the units of the scores in the variable's units, per variable (K beside m2 s-2: no
    # one unit for the whole array)
    units = card.variable_units.to_series()
    assert units["t2m"] == truth["t2m"].attrs["units"] == "K" and units["z500"] == "m2 s-2"
    assert card["fair_crps"].attrs["units_per_variable"] == "variable_units"
    assert "units" not in card["fair_crps"].attrs
    aligned = align_with_truth(forecast, truth)
    f, t = aligned.forecast["t2m"], aligned.truth["t2m"]
    over = ("init_time", "latitude", "longitude")
    direct = vr.rank_max_min_ratio(vr.perfect_model_rank_histogram(f, t, mean_over=over))
    assert card["rank_max_min_perfect_model"].sel(variable="t2m").values == pytest.approx(
        direct.median("stand_in").values
    )
    off = dataclasses.replace(config, perfect_model_stand_ins=0)
    assert "rank_max_min_perfect_model" not in verify(forecast, truth, off)["scorecard"]
    surrogate = card["rank_max_min_error_surrogate"]  # on by default: 20 replicas
    direct = vr.error_surrogate_rank_histogram(f.mean("member") - t, f.sizes["member"], replicas=20)
    assert surrogate.sel(variable="t2m").values == pytest.approx(
        vr.rank_max_min_ratio(direct).median("replica").values
    )
    skipped = dataclasses.replace(config, error_surrogate_replicas=0)
    assert "rank_max_min_error_surrogate" not in verify(forecast, truth, skipped)["scorecard"]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("interval_level", 1.0, "interval_level=1.0"),
        ("interval_block", "daily", "interval_block='daily' is not a pandas frequency"),
        # a week floors by calendar (a traceback from pandas at the end of scoring), and a
        # block of no or negative length resampled nonsense blocks without a word
        ("interval_block", "1W", "interval_block='1W' is a calendar frequency"),
        ("interval_block", "0h", "interval_block='0h' is not a positive length"),
        ("interval_block", "-1D", "interval_block='-1D' is not a positive length"),
        ("interval_draws", 0, "interval_draws=0"),
        ("perfect_model_stand_ins", -1, "perfect_model_stand_ins=-1"),
        ("error_surrogate_replicas", -2, "error_surrogate_replicas=-2"),
    ],
)
def test_bad_interval_settings_are_named(field, value, message):
    with pytest.raises(InputError, match=re.escape(message)):
        VerifyConfig(**{field: value})


def test_chunked_verification_equals_in_memory(case):
    _, truth, forecast = case
    config = VerifyConfig(physics_init_times=0, progress=False)
    eager = verify(forecast, truth, config)["scorecard"].to_dataset()
    lazy = verify(
        forecast.chunk({"init_time": 1, "lead_time": 1}), truth.chunk({"time": 1}), config
    )
    xr.testing.assert_allclose(lazy["scorecard"].to_dataset(), eager, rtol=1e-10)


def test_a_forecast_in_memory_verifies_against_a_lazy_truth(case):
    """A notebook's own ensemble in memory against an analysis store (dask): the rank
    histogram's point keys read the truth's chunks from its coordinates too, which its
    valid times (chunked whole) contradicted: a ValueError, 'inconsistent chunks'."""
    _, truth, forecast = case
    config = VerifyConfig(physics_init_times=0, progress=False)
    eager = verify(forecast, truth, config)["scorecard"].to_dataset()
    mixed = verify(forecast, truth.chunk({"time": 3}), config)["scorecard"].to_dataset()
    xr.testing.assert_allclose(mixed, eager, rtol=1e-10)


def test_a_forecast_large_for_the_memory_is_scored_one_result_at_a_time(case, monkeypatch, caplog):
    """Dask's local threads computing every score together held about the whole of a
    1° forecast in memory (1.96 GB for 12 initial times); one result at a time held 0.74
    GB. Past a share of the available memory verify computes them apart, to the same
    scores, and says so."""
    from verification import compute

    _, truth, forecast = case
    config = VerifyConfig(physics_init_times=2, progress=False)
    lazy = forecast.chunk({"init_time": 1, "lead_time": 1}), truth.chunk({"time": 1})
    together = verify(*lazy, config)
    assert "one at a time" not in caplog.text
    monkeypatch.setattr(compute, "LOCAL_MEMORY_SHARE", 0.0)
    with caplog.at_level("INFO", logger="verification.compute"):
        apart = verify(*lazy, config)
    assert "its scores are computed one at a time" in caplog.text
    for group in together.groups:
        xr.testing.assert_allclose(apart[group].to_dataset(), together[group].to_dataset())


def test_score_chunks_group_leads_then_init_times_up_to_the_target(monkeypatch):
    import verification.scorecard as scorecard

    dims = ("init_time", "member", "lead_time", "variable", "latitude", "longitude")
    f = xr.DataArray(np.zeros((10, 4, 3, 2, 5, 5), np.float32), dims=dims)
    cell = 4 * 5 * 5 * 4  # bytes of one (init, lead, variable): members x grid x float32
    monkeypatch.setattr(scorecard, "SCORE_CHUNK_BYTES", 7 * cell)
    assert scorecard.score_chunks(f) == {"init_time": 2, "lead_time": 3}  # 2 x 3 leads fit
    monkeypatch.setattr(scorecard, "SCORE_CHUNK_BYTES", 2 * cell)
    assert scorecard.score_chunks(f) == {"init_time": 1, "lead_time": 2}  # leads split
    monkeypatch.setattr(scorecard, "SCORE_CHUNK_BYTES", cell // 2)
    assert scorecard.score_chunks(f) == {"init_time": 1, "lead_time": 1}  # never below one
    monkeypatch.setattr(scorecard, "SCORE_CHUNK_BYTES", 1000 * cell)
    assert scorecard.score_chunks(f) == {"init_time": 10, "lead_time": 3}


def test_the_energy_score_runs_on_blocks_of_the_target_size_with_every_variable(case, monkeypatch):
    """The energy score needs every variable in one block, and took the score chunks
    (SCORE_CHUNK_BYTES a variable) whole: blocks as many times the target as there are
    channels, each several times that again in the kernel's float64 temporaries. A 0.28 GB
    forecast of 9 channels peaked 1.35 GB higher with it than without on dask's threads,
    and killed every 1 GB worker of a LocalCluster (KilledWorker). Its blocks keep to the
    target with all variables in them, and give the same score."""
    import verification.scorecard as scorecard
    from verification import kernels

    _, truth, forecast = case
    config = VerifyConfig(physics_init_times=0, interval_level=0, progress=False)
    whole = verify(forecast, truth, config)["multivariate"].to_dataset()
    lazy = forecast.chunk({"init_time": 1, "lead_time": 1})
    per_variable = lazy.t2m.isel(init_time=0, lead_time=0).nbytes  # one chunk of one channel
    monkeypatch.setattr(scorecard, "SCORE_CHUNK_BYTES", 2 * per_variable)
    blocks = []
    kernel = kernels.energy_score

    def recorded(members, truth, **kwargs):
        blocks.append(members.size * members.dtype.itemsize)
        return kernel(members, truth, **kwargs)

    monkeypatch.setattr(kernels, "energy_score", recorded)
    tree = verify(lazy, truth, config)
    assert tree["scorecard"].sizes["variable"] == 5 and blocks
    assert max(blocks) <= 2 * scorecard.SCORE_CHUNK_BYTES * 2  # float64 at most
    xr.testing.assert_allclose(tree["multivariate"].to_dataset(), whole)


def test_the_physics_checks_read_their_sample_in_one_pass(case):
    """Each check computed its scores from the lazy sample by itself, two passes a check
    and a channel: on a dask LocalCluster (2 workers), where each pass costs a round of
    scheduling, a 15-init forecast of 9 channels took 58-67 s to verify against 10 s on
    threads, most of it in the physics checks; with the sample read once, 17 s. The same
    results, in one pass."""
    from dask.callbacks import Callback

    from pipeline.alignment import align_with_truth
    from verification.physics_group import physics_group

    _, truth, forecast = case
    aligned = align_with_truth(forecast.chunk({"init_time": 1}), truth.chunk({"time": 4}))
    subset = {"init_time": [0, 3, 7]}
    eager = physics_group(align_with_truth(forecast, truth), subset, ())
    passes = []

    class Passes(Callback):
        def _start(self, dsk):
            passes.append(len(dsk))

    with Passes():
        lazy = physics_group(aligned, subset, ())
    assert len(passes) == 1, passes
    xr.testing.assert_allclose(lazy, eager)


def test_scores_file_round_trip_and_report_shows_every_figure(case, tmp_path):
    _, truth, forecast = case
    tree = verify(forecast[["t2m", "z"]], truth, VerifyConfig(physics_init_times=4, progress=False))
    path = write_scores(tree, tmp_path / "scores.nc")
    reopened = xr.open_datatree(path)
    xr.testing.assert_allclose(reopened["scorecard"].to_dataset(), tree["scorecard"].to_dataset())
    assert not list(tmp_path.glob(".scores.nc.*"))  # no temporary file left behind
    html = render_report(reopened, sources="test")
    images = re.findall(r"<img alt='([^']+)' src='data:image/png;base64,([A-Za-z0-9+/=]+)'", html)
    assert [title for title, _ in images] == [item.title for item in report_figures(reopened)]
    assert len(images) == 7 and all(len(data) > 1000 for _, data in images)
    assert "<table" in html and "fair CRPS" in html and "hypsometric" in html
    assert "PASS" in html or "FAIL" in html
    energy = reopened["multivariate"].to_dataset()["energy_score"]  # was in no table
    assert "<th>energy score</th>" in html and f"<td>{float(energy[0]):.4g}</td>" in html
    card = reopened["scorecard"].to_dataset()
    ranks = next(item for item in report_figures(reopened) if item.title == "Rank histograms")
    first = card.isel(variable=0, lead_time=0)
    expected = (
        f"max/min {float(first['rank_max_min']):.2f} "
        f"(floor {float(first['rank_max_min_perfect_model']):.2f})"
    )
    assert [t.get_text() for t in ranks.figure.axes[0].texts] == [expected]
    assert "src='http" not in html and "<script" not in html  # self-contained


def test_report_write_is_atomic(case, tmp_path, monkeypatch):
    _, truth, forecast = case
    tree = verify(
        forecast[["t2m"]],
        truth,
        VerifyConfig(physics_init_times=0, energy_score=False, progress=False),
    )
    target = tmp_path / "report.html"
    target.write_text("previous")

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr("verification.report.render_report", lambda *a, **k: broken())
    with pytest.raises(RuntimeError):
        write_report(tree, target)
    assert target.read_text() == "previous"


def test_cli_verifies_a_forecast_store_and_a_weatherbench2_zarr(case, tmp_path, capsys):
    config, _, forecast = case
    store = tmp_path / "analysis.zarr"
    ingest(f"synthetic:{config.to_spec().partition(':')[2]}", store, progress=False)
    provenance = ForecastProvenance(
        generator="oracle", checkpoint_digest="none", sampler="exact", nfe=0, seed=1
    )
    forecast_store = tmp_path / "forecast.zarr"
    write_forecast(forecast_store, forecast, provenance)
    args = [
        "verify",
        str(forecast_store),
        "--truth",
        str(store),
        "--variables",
        "t2m",
        "z",
        "--no-progress",
    ]
    args += ["--physics-init-times", "2", "--error-surrogate-replicas", "2"]
    out, report = tmp_path / "scores.nc", tmp_path / "report.html"
    assert main([*args, "--out", str(out), "--report", str(report)]) == 0
    assert out.is_file() and report.stat().st_size > 10_000
    printed = capsys.readouterr().out
    assert "spread/skill" in printed and "perfect-model max/min" in printed
    t2m = [line for line in printed.splitlines() if line.split()[:1] == ["t2m"]]
    assert t2m and all(re.search(r"[-0-9.e]+ \[[-0-9.e]+, [-0-9.e]+\]", row) for row in t2m)
    text = report.read_text()
    assert re.search(r"<td>[-0-9.e]+ <span class='interval'>\[[-0-9.e]+, [-0-9.e]+\]</span>", text)
    assert "spread/skill" in text and "rank max/min floor" in text
    assert "error floor max/min" in printed
    assert "floor (error correlation)" in text
    wb2 = tmp_path / "wb2.zarr"
    from_wxens_forecast(forecast[["t2m"]], "weatherbench2").to_zarr(
        wb2, zarr_format=2
    )  # as WB2 ships
    wb2_out = tmp_path / "wb2.nc"
    assert (
        main(
            [
                "verify",
                str(wb2),
                "--truth",
                str(store),
                "--out",
                str(wb2_out),
                "--physics-init-times",
                "0",
                "--perfect-model-stand-ins",
                "0",
                "--no-progress",
            ]
        )
        == 0
    )
    from_store = xr.open_datatree(out)["scorecard"].to_dataset().sel(variable="t2m")
    from_wb2 = xr.open_datatree(wb2_out)["scorecard"].to_dataset().sel(variable="t2m")
    np.testing.assert_allclose(from_wb2["fair_crps"], from_store["fair_crps"], rtol=1e-5)
    assert "rank_max_min_perfect_model" not in from_wb2


def test_cli_bad_truth_is_a_clear_error(case, tmp_path, capsys):
    _, _, forecast = case
    nc = tmp_path / "forecast.nc"
    forecast[["t2m"]].to_netcdf(nc)
    code = main(
        [
            "verify",
            str(nc),
            "--truth",
            str(tmp_path / "missing.zarr"),
            "--out",
            str(tmp_path / "s.nc"),
        ]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "missing.zarr" in err and "Traceback" not in err
    assert not (tmp_path / "s.nc").exists()


def test_a_reference_adds_its_crps_the_skill_score_and_the_paired_interval(case):
    config, truth, forecast = case
    forecast = forecast[["t2m"]]
    # a worse reference, with more init times and members than the forecast
    reference = oracle_forecast(config, truth, 10, (6, 12), 5, seed=7, spread_factor=0.2)
    settings = VerifyConfig(physics_init_times=0, energy_score=False, progress=False)
    tree = verify(forecast, truth, settings, reference=reference)
    html = render_report(tree)
    assert "CRPS skill" in html and "reference CRPS" in html
    card = tree["scorecard"].to_dataset()
    alone = verify(reference.isel(init_time=slice(0, 8)), truth, settings)["scorecard"]
    np.testing.assert_allclose(card.reference_fair_crps, alone.fair_crps, rtol=1e-6)
    np.testing.assert_allclose(
        card.fair_crps_skill_score, 1 - card.fair_crps / card.reference_fair_crps, rtol=1e-6
    )
    assert (card.fair_crps_skill_score > 0).all()  # the oracle beats a too-narrow ensemble
    difference = card.fair_crps - card.reference_fair_crps
    assert (card.fair_crps_minus_reference_low <= difference + 1e-9).all()
    assert (difference <= card.fair_crps_minus_reference_high + 1e-9).all()
    assert (card.fair_crps_minus_reference_high < 0).all()

    itself = verify(forecast, truth, settings, reference=forecast)["scorecard"].to_dataset()
    np.testing.assert_allclose(itself.fair_crps_skill_score, 0.0, atol=1e-7)
    np.testing.assert_allclose(itself.fair_crps_minus_reference_low, 0.0, atol=1e-7)
    np.testing.assert_allclose(itself.fair_crps_minus_reference_high, 0.0, atol=1e-7)


def test_a_reference_without_the_forecasts_init_times_or_grid_is_refused(case):
    _, truth, forecast = case
    forecast = forecast[["t2m"]]
    settings = VerifyConfig(physics_init_times=0, energy_score=False, progress=False)
    first = pd.Timestamp(forecast.init_time.values[0]).strftime("%Y-%m-%dT%H:%M")
    with pytest.raises(InputError, match=f"reference lacks 2 init_time value.*\\({first}, "):
        verify(forecast, truth, settings, reference=forecast.isel(init_time=slice(2, None)))
    with pytest.raises(
        InputError, match=r"reference lacks 1 lead_time value\(s\) of the forecast \(12 h\)"
    ):
        verify(forecast, truth, settings, reference=forecast.isel(lead_time=[0]))
    with pytest.raises(InputError, match="the reference ensemble: .*grid does not hold"):
        verify(forecast, truth, settings, reference=forecast.isel(longitude=slice(0, 8)))


def test_a_regional_forecast_is_compared_with_a_wider_reference_on_its_points(case):
    """A forecast on part of the truth's grid is scored on its points; a reference drawn on
    the whole grid is taken at those points, not refused."""
    _, truth, forecast = case
    settings = VerifyConfig(physics_init_times=0, energy_score=False, progress=False)
    part = forecast.isel(longitude=slice(0, 8))
    card = verify(part, truth, settings, reference=forecast)["scorecard"].to_dataset()
    alone = verify(forecast.isel(longitude=slice(0, 8)), truth, settings)["scorecard"]
    xr.testing.assert_allclose(card["reference_fair_crps"], alone.to_dataset()["fair_crps"])


def test_verification_loads_without_torch():
    code = (
        "import sys, verification.scorecard, verification.report, verification.plots, "
        "pipeline.adapters; "
        "assert 'torch' not in sys.modules, "
        "sorted(m for m in sys.modules if m.startswith('torch'))[:3]"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_latest_forecasts_with_partial_truth_verify_what_has_truth(case):
    # Truth ends at the last init time: its leads, and the one before's 12 h lead, have none.
    _, truth, forecast = case
    short = truth.isel(time=slice(0, 8))
    tree = verify(forecast, short, VerifyConfig(physics_init_times=8, progress=False))
    card = tree["scorecard"].to_dataset().sel(variable="t2m")
    grid = 12 * 16
    assert card["n_missing_truth"].values.tolist() == [1 * grid, 2 * grid]
    assert card["n_verified"].values.tolist() == [7 * grid, 6 * grid]
    assert np.isfinite(card["fair_crps"]).all()
    physics = tree["physics"].to_dataset()
    assert "tendency_distribution t2m" in physics.check.values.tolist()
    html = render_report(tree)
    assert "geostrophic" in html and "n/a" in html


def test_lead_zero_forecasts_report_the_tendency_check_as_not_applicable(case):
    _, truth, forecast = case
    lead0 = forecast.isel(lead_time=[0]).assign_coords(lead_time=[pd.Timedelta(0)])
    tree = verify(lead0[["t2m"]], truth, VerifyConfig(physics_init_times=8, progress=False))
    physics = tree["physics"].to_dataset()
    reason = str(physics["reason"].sel(not_computed="tendency_distribution t2m").values)
    assert "lead 0" in reason
    html = render_report(tree)
    row = html.split("<th class='row'>tendency_distribution t2m</th>")[1].split("</tr>")[0]
    assert "lead 0" in row and ">n/a</td>" in row and "FAIL" not in row


def test_no_overlapping_truth_is_a_clear_error(case, tmp_path, capsys):
    config, truth, forecast = case
    later = truth.assign_coords(time=truth.time + pd.Timedelta(days=365))
    with pytest.raises(InputError, match="the truth holds none of the forecast's 9 valid times"):
        verify(forecast, later, VerifyConfig(progress=False))
    store = tmp_path / "analysis.zarr"
    ingest(
        dataclasses.replace(config, start=pd.Timestamp("2001-01-01")).to_spec(),
        store,
        progress=False,
    )
    nc = tmp_path / "forecast.nc"
    forecast[["t2m"]].to_netcdf(nc)
    out = tmp_path / "s.nc"
    code = main(["verify", str(nc), "--truth", str(store), "--out", str(out), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and "holds none of the forecast's" in err and "Traceback" not in err
    assert not out.exists()


def test_cli_prints_what_verified_and_what_did_not_per_lead(case, tmp_path, capsys):
    config, _, forecast = case
    store = tmp_path / "analysis.zarr"
    ingest(dataclasses.replace(config, n_times=9).to_spec(), store, progress=False)
    nc = tmp_path / "forecast.nc"
    forecast[["t2m"]].to_netcdf(nc)
    args = ["verify", str(nc), "--truth", str(store), "--out", str(tmp_path / "s.nc")]
    assert main([*args, "--no-progress", "--physics-init-times", "2"]) == 0
    printed = capsys.readouterr().out
    assert "verified" in printed and "no truth" in printed
    rows = [line.split() for line in printed.splitlines() if line.split()[:1] == ["t2m"]]
    assert [row[-2] for row in rows] == ["0", str(12 * 16)]  # the last init's 12 h lead


def test_a_config_given_one_name_as_a_string_reads_it_as_one_name(case):
    """VerifyConfig(mean_over="init_time") was split into its letters ('i', 'n', ...)."""
    _, truth, forecast = case
    config = VerifyConfig(
        mean_over="init_time", scores="fair_crps", physics_init_times=0, progress=False
    )
    assert (config.mean_over, config.scores) == (("init_time",), ("fair_crps",))
    card = verify(forecast[["t2m"]], truth, config)["scorecard"].to_dataset()
    assert {"latitude", "longitude"} <= set(card["fair_crps"].dims)  # kept: not averaged
    assert VerifyConfig(mean_over=["init_time"]) == config.__class__(mean_over=("init_time",))


def test_a_forecast_of_one_member_is_said_to_be_deterministic(case, caplog):
    """Scored as one member without a word: NaN spread-skill and numpy's warnings (the
    log line now, and no All-NaN RuntimeWarning from the spread's undefined interval)."""
    _, truth, forecast = case
    single = forecast[["t2m"]].isel(member=0, drop=True)  # no member dim at all
    config = VerifyConfig(physics_init_times=0, energy_score=False, progress=False)
    with caplog.at_level("WARNING", logger="verification.scorecard"), warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        card = verify(single, truth, config)["scorecard"].to_dataset()
    assert "one member (a deterministic forecast)" in caplog.text
    mae = abs(
        align_with_truth(single, truth).forecast.t2m - align_with_truth(single, truth).truth.t2m
    )
    np.testing.assert_allclose(
        card.fair_crps.sel(variable="t2m").values[0],
        float(mae.isel(lead_time=0).weighted(np.cos(np.deg2rad(mae.latitude))).mean()),
        rtol=1e-5,
    )


def test_a_forecast_of_two_members_says_why_it_has_no_perfect_model_floor(case, caplog):
    """With 2 members the rank max/min's perfect-model floor (on by default) left the
    scorecard and the printed table without a word; docs/verification.md promised a message
    naming the need of 3 members and the fix. Now a warning says so; asked for none
    (perfect_model_stand_ins=0), nothing is said."""
    _, truth, forecast = case
    pair = forecast[["t2m"]].isel(member=[0, 1])
    config = VerifyConfig(physics_init_times=0, energy_score=False, progress=False)
    with caplog.at_level("WARNING"):
        card = verify(pair, truth, config)["scorecard"].to_dataset()
    assert "rank_max_min_perfect_model" not in card
    said = [r.getMessage() for r in caplog.records if "perfect-model" in r.getMessage()]
    assert len(said) == 1 and "at least 3 members" in said[0]
    assert "--perfect-model-stand-ins 0" in said[0]
    caplog.clear()
    with caplog.at_level("WARNING"):
        verify(pair, truth, dataclasses.replace(config, perfect_model_stand_ins=0))
    assert not [r for r in caplog.records if "perfect-model" in r.getMessage()]


def test_a_reference_of_more_init_times_than_verified_warns_of_no_missing_truth(case, caplog):
    # the operational cycle: the baseline store holds the newest cycles too, whose truth has
    # not arrived; only the forecast's (arrived) initial times are scored, so the truth
    # those newer cycles lack is no warning (it said they were 'scored as missing')
    _, truth, forecast = case
    forecast = forecast[["t2m"]]
    arrived = forecast.isel(init_time=slice(0, 4))
    last_valid = arrived.init_time.values[-1] + arrived.lead_time.values[-1]
    truth = truth.sel(time=slice(None, last_valid))
    settings = VerifyConfig(physics_init_times=0, energy_score=False, progress=False)
    with caplog.at_level(logging.WARNING, logger="pipeline.alignment"):
        card = verify(arrived, truth, settings, reference=forecast)["scorecard"].to_dataset()
    assert not [r.getMessage() for r in caplog.records if r.name == "pipeline.alignment"]
    np.testing.assert_allclose(card.fair_crps_skill_score, 0.0, atol=1e-7)


def test_no_overlapping_truth_is_not_also_warned_as_scored_missing(case, caplog):
    """With no valid time in the truth, ``wxens verify`` warned "the truth lacks 6 of the 6
    valid times ...; those are scored as missing" and then stopped with the error that it
    holds none: the warning promised scores that never came. The error alone is said."""
    _, truth, forecast = case
    later = truth.assign_coords(time=truth.time + pd.Timedelta(days=365))
    with pytest.raises(InputError, match="holds none"):
        verify(forecast, later, VerifyConfig(progress=False))
    assert "scored as missing" not in caplog.text
    valid = np.unique(align_with_truth(forecast, truth).forecast.valid_time.values)
    partial = truth.drop_sel(time=valid[:1])  # the warning stays when some are held
    verify(forecast, partial, VerifyConfig(progress=False))
    assert caplog.text.count("scored as missing") == 1
