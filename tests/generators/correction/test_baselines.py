"""Reference ensembles: climatology and persistence + past tendencies
(generators.correction.baselines)."""

from __future__ import annotations

import math
import shutil
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from flows.cli import main
from generators.correction.baseline_store import baseline_to_store, without_repeats
from generators.correction.baselines import (
    BASELINES,
    BaselineConfig,
    ClimatologyEnsemble,
    PersistenceEnsemble,
)
from pipeline.errors import InputError, StoreError
from pipeline.forecast_store import open_forecast, provenance, write_forecast
from pipeline.store import ingest, open_store
from pipeline.transaction import commits
from verification.scores import fair_crps

TRAIN = BaselineConfig("2000-01-01", "2000-01-10", members=40, seed=1)
INITS = pd.date_range("2000-01-11T00", periods=6, freq="6h")
LEADS = [pd.Timedelta(hours=h) for h in (6, 12, 24)]


@pytest.fixture(scope="module")
def analysis(tmp_path_factory):
    path = tmp_path_factory.mktemp("baselines") / "truth.zarr"
    spec = "synthetic:n_lat=4,n_lon=4,n_times=72,step=6h,seed=5"
    return ingest(spec, path, variables=["t2m", "z"], progress=False)


def flat(ds: xr.Dataset, dim: str) -> np.ndarray:
    """Every variable and level of each ``dim`` entry as one row."""
    return np.concatenate(
        [ds[v].transpose(dim, ...).values.reshape(ds.sizes[dim], -1) for v in sorted(ds)], axis=1
    )


def match(members: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """Index of the candidate row equal to each member row (-1 if none is)."""
    close = np.isclose(members[:, None], candidates[None], rtol=1e-5, atol=1e-3).all(-1)
    return np.where(close.any(1), close.argmax(1), -1)


def test_climatology_members_are_training_fields_valid_at_the_same_time_of_day(analysis):
    ds = analysis.dataset.load()
    baseline = ClimatologyEnsemble(ds, TRAIN)
    train = ds.sel(time=slice("2000-01-01", "2000-01-10"))
    times = pd.DatetimeIndex(train.time.values)
    for init in INITS[:3]:
        ensemble = baseline.ensemble(init, LEADS)
        assert ensemble.sizes["member"] == 40
        for lead in LEADS:
            index = match(flat(ensemble.sel(lead_time=lead), "member"), flat(train, "time"))
            assert (index >= 0).all(), "a member is not a training field"
            hours = times[index].hour
            assert (hours == (init + lead).hour).all()
            # 10 training fields at that hour, drawn 40 times with replacement: most appear
            assert len(set(index)) >= 7


def test_persistence_members_are_the_initial_state_plus_training_tendencies(analysis):
    ds = analysis.dataset.load()
    baseline = PersistenceEnsemble(ds, TRAIN)
    train = ds.sel(time=slice("2000-01-01", "2000-01-10"))
    init = INITS[1]
    ensemble = baseline.ensemble(init, LEADS)
    for lead in LEADS:
        times = pd.DatetimeIndex(train.time.values)
        starts = times[(times.hour == init.hour) & (times + lead).isin(times)]
        tendencies = ds.sel(time=starts + lead).drop_vars("time") - ds.sel(time=starts).drop_vars(
            "time"
        )
        changes = ensemble.sel(lead_time=lead) - ds.sel(time=init, drop=True)
        index = match(flat(changes, "member"), flat(tendencies, "time"))
        assert (index >= 0).all(), "a member's change is not a training tendency of its lead"
        assert len(set(index)) >= min(len(starts), 10) * 0.6


def test_members_depend_on_the_seed_only_not_on_how_the_store_was_written(analysis, tmp_path):
    whole, pieces, other = (tmp_path / n for n in ("whole.zarr", "pieces.zarr", "other.zarr"))
    leads = [6.0, 24.0]
    baseline_to_store("persistence", analysis.path, TRAIN, INITS, leads, whole, progress=False)
    for init in INITS[::-1]:  # one at a time, in reverse
        baseline_to_store(
            "persistence", analysis.path, TRAIN, [init], leads, pieces, progress=False
        )
    a, b = open_forecast(whole), open_forecast(pieces)
    xr.testing.assert_equal(a.t2m.load(), b.t2m.load())
    in_memory = PersistenceEnsemble(analysis.dataset.load(), TRAIN).ensemble(
        INITS[2], [pd.Timedelta(hours=h) for h in leads]
    )
    np.testing.assert_array_equal(a.z.sel(init_time=INITS[2]), in_memory.z)
    reseeded = BaselineConfig(TRAIN.train_start, TRAIN.train_end, TRAIN.members, seed=2)
    baseline_to_store("persistence", analysis.path, reseeded, INITS, leads, other, progress=False)
    assert not np.allclose(open_forecast(other).t2m, a.t2m)
    assert provenance(whole).generator == "baseline:persistence"
    assert provenance(whole).checkpoint_digest != provenance(other).checkpoint_digest


def test_window_keeps_the_pool_near_the_day_of_the_year(tmp_path):
    years = ingest(
        "synthetic:n_lat=4,n_lon=4,n_times=800,step=24h,seed=1",
        tmp_path / "years.zarr",
        variables=["t2m"],
        progress=False,
    )
    config = BaselineConfig("2000-01-01", "2001-12-31", window_days=10)
    valid = pd.Timestamp("2002-01-05")
    pool = ClimatologyEnsemble(years.dataset, config).pool(
        valid - pd.Timedelta("1D"), pd.Timedelta("1D")
    )
    in_window = ((pool.month == 12) & (pool.day >= 25)) | ((pool.month == 1) & (pool.day <= 15))
    assert in_window.all(), pool
    assert set(pool.year) == {2000, 2001}  # across the new year, in both years
    assert 40 <= len(pool) <= 42  # 20-21 days a year (late Dec .. Jan 15), two years
    everything = BaselineConfig("2000-01-01", "2001-12-31", window_days=math.inf)
    whole = ClimatologyEnsemble(years.dataset, everything)
    assert len(whole.pool(valid - pd.Timedelta("1D"), pd.Timedelta("1D"))) == 366 + 365


def test_window_counts_calendar_days_across_29_february_and_the_new_year(tmp_path):
    """Days of the year were compared by number: after 28 February of a leap year each date
    was a day off (1 March 2002 took 29 February 2000, not 1 March), and 31 December of a
    common year lay 1.25 days from 1 January, outside a window of one day."""
    years = ingest(
        "synthetic:n_lat=4,n_lon=4,n_times=800,step=24h,seed=1",
        tmp_path / "years.zarr",
        variables=["t2m"],
        progress=False,
    )
    one_day = pd.Timedelta("1D")

    def pool(window, valid):
        config = BaselineConfig("2000-01-01", "2001-12-31", window_days=window)
        return ClimatologyEnsemble(years.dataset, config).pool(
            pd.Timestamp(valid) - one_day, one_day
        )

    assert list(pool(0, "2002-03-01")) == list(pd.DatetimeIndex(["2000-03-01", "2001-03-01"]))
    assert {"2000-12-31", "2001-12-31"} <= {str(t.date()) for t in pool(1, "2002-01-01")}


def test_uk_sample_baselines_reproduce_the_shared_table(tmp_path, uk_sample):
    """shared/data/README.md: climatology 0.93 0.93 0.94 0.94 0.95, persistence + past
    tendencies 0.20 0.55 0.80 1.25 0.91 K at 1, 3, 6, 12, 24 h (fair CRPS, 36 inits, 50
    members). Other draws than the table's move these by up to about 0.03 K."""
    sample = tmp_path / uk_sample.name
    shutil.copy(uk_sample, sample)
    ds = ingest(sample, tmp_path / "uk.zarr", progress=False).dataset.t2m.load().to_dataset()
    inits = pd.date_range("2019-03-22T00", "2019-03-30T18", freq="6h")
    leads = [pd.Timedelta(hours=h) for h in (1, 3, 6, 12, 24)]
    config = BaselineConfig("2019-03-01", "2019-03-21")
    table = {
        "climatology": [0.93, 0.93, 0.94, 0.94, 0.95],
        "persistence": [0.20, 0.55, 0.80, 1.25, 0.91],
    }
    for name, expected in table.items():
        baseline = BASELINES[name](ds, config)
        members = xr.concat(
            [baseline.ensemble(t, leads) for t in inits], pd.Index(inits, name="init_time")
        )
        truth = ds.t2m.sel(time=members.init_time + members.lead_time)
        crps = fair_crps(members.t2m, truth, mean_over=("init_time", "latitude", "longitude"))
        np.testing.assert_allclose(crps.values, expected, atol=0.04)


def test_bad_input_is_refused_before_anything_is_written(analysis, tmp_path):
    out = tmp_path / "f.zarr"

    def refused(match: str, name="climatology", config=TRAIN, inits=INITS, leads=(6.0,)):
        with pytest.raises(InputError, match=match):
            baseline_to_store(name, analysis.path, config, inits, leads, out, progress=False)
        assert not out.exists()

    refused("no time in the training period", config=BaselineConfig("1999-01-01", "1999-02-01"))
    no_fit = "no training time fits .* and lead 3 h .*time of day 03:00, .*the whole period"
    refused(no_fit, leads=(3.0,))
    refused("persistence starts from it", "persistence", inits=[pd.Timestamp("2000-03-01")])
    off_step = [pd.Timestamp("2000-01-11T03")]  # a 6-hourly store: no state, no time of day
    for name in ("climatology", "persistence"):  # not "ingest" nor "widen the training period"
        off = r"2000-01-11T03:00 are not on the store's 6 h step .*\(--init\)"
        refused(off, name, inits=off_step)
    refused("unknown baseline 'analogues'", "analogues")
    with pytest.raises(InputError, match="starts .* after it ends"):
        BaselineConfig("2000-02-01", "2000-01-01")
    with pytest.raises(InputError, match="'2019-13-01' is not a time"):
        BaselineConfig("2019-13-01", "2020-01-01")
    with pytest.raises(InputError, match="members must be at least 1"):
        BaselineConfig("2000-01-01", "2000-01-10", members=0)


def test_cli_draws_baselines_that_info_and_verify_read(analysis, tmp_path, capsys):
    """The persistence baseline verified with the climatology one as its reference."""
    clim, pers, scores = tmp_path / "clim.zarr", tmp_path / "pers.zarr", tmp_path / "scores.nc"
    store = str(analysis.path)
    common = ["--store", store, "--train", "2000-01-01/2000-01-10", "--members", "8"]
    common += ["--init", "2000-01-11T00/2000-01-12T18/6h", "--lead", "24h", "--every", "6h"]
    assert main(["baseline", "climatology", *common, "--out", str(clim), "--no-progress"]) == 0
    assert "8 initial times x 8 members x 4 leads" in capsys.readouterr().out
    assert main(["baseline", "persistence", *common, "--out", str(pers), "--no-progress"]) == 0
    assert main(["info", str(pers)]) == 0
    assert "baseline:persistence" in capsys.readouterr().out
    verify = ["verify", str(pers), "--truth", store, "--out", str(scores), "--no-progress"]
    assert main([*verify, "--physics-init-times", "0", "--reference", str(clim)]) == 0
    header = capsys.readouterr().out.splitlines()[1]  # after the line naming the scores file
    assert "reference CRPS" in header and "skill" in header
    tree = xr.open_datatree(scores)
    card = tree["scorecard"].to_dataset()
    assert card.fair_crps.sizes["lead_time"] == 4 and np.isfinite(card.fair_crps).all()
    # persistence is far better than climatology a few hours ahead on the synthetic source
    assert (card.fair_crps_skill_score.isel(lead_time=0) > 0.2).all()
    assert tree.attrs["reference_wxens_generator"] == "baseline:climatology"

    short = tmp_path / "short.zarr"
    assert main(["baseline", "climatology", *common[:-4], "--lead", "6h", "--out", str(short)]) == 0
    assert main([*verify, "--reference", str(short)]) == 2
    assert "the reference lacks 3 lead_time" in capsys.readouterr().err
    bad_period = ["baseline", "climatology", "--store", store, "--train", "2000-01-10"]
    assert main([*bad_period, "--init", "2000-01-11", "--lead", "6h", "--out", "x"]) == 2
    assert "give START/END" in capsys.readouterr().err
    assert open_store(store).dataset.sizes["time"] == 72  # the analysis is left as it was


def test_a_store_of_monthly_means_is_refused_naming_it_before_anything_is_written(
    tmp_path, capsys, monthly_store
):
    """A lead is a duration and a month is not one: a baseline of a monthly store was refused
    with 'no training time fits ... widen the training period' (a lead of the mean month) or
    told to give leads of 730.485 h, neither of which any input fixes."""
    config = BaselineConfig("2000-01-15", "2002-12-15", 4, 0)
    with pytest.raises(InputError, match=r"m\.zarr: its times are 1 calendar month apart"):
        baseline_to_store(
            "climatology",
            tmp_path / "m.zarr",
            config,
            ["2003-03-15"],
            [730.485],
            tmp_path / "b.zarr",
            progress=False,
        )
    args = [
        "baseline",
        "persistence",
        "--store",
        str(tmp_path / "m.zarr"),
        "--train",
        "2000-01-15/2002-12-15",
        "--init",
        "2003-03-15",
        "--lead",
        "60D",
        "--every",
        "30D",
        "--members",
        "4",
        "--out",
        str(tmp_path / "b.zarr"),
        "--no-progress",
    ]
    assert main(args) == 2
    assert "calendar month apart" in capsys.readouterr().err
    assert not (tmp_path / "b.zarr").exists()


def test_members_are_distinct_while_the_pool_holds_enough_of_them(analysis):
    """With replacement, M members from a pool of K repeat some (8 of 10 here: 98 % of the
    draws hold a repeat): the rank histogram of even a perfectly calibrated pool is then
    U-shaped and its fair CRPS too high by about 1/K, so the baseline a model is measured
    against is handicapped.
    Drawn without replacement while M <= K, every member is another training time."""
    config = BaselineConfig("2000-01-01", "2000-01-10", members=8, seed=1)
    for cls in (ClimatologyEnsemble, PersistenceEnsemble):
        baseline = cls(analysis.dataset, config)
        for init in INITS:
            for lead in LEADS:
                picks = baseline.picks(init, lead)
                assert len(baseline.pool(init, lead)) >= 8
                assert not picks.duplicated().any(), f"{cls.name} {init} {lead}: {picks}"


def test_a_baseline_beside_a_model_draws_only_as_many_members_as_its_pools_hold(analysis, caplog):
    """`wxens run` draws its baseline with the forecast's member count (40 here), fewer
    where the training period holds fewer distinct times: 10 days of 6-hourly times give
    climatology 10 per time of day, and persistence 9 (a 24 h tendency must end in the
    period too). Then no member of any initial time repeats; 5 members are kept."""
    leads = [6.0, 12.0, 24.0]
    for name, distinct in (("climatology", 10), ("persistence", 9)):
        with caplog.at_level("INFO", logger="generators.correction.baseline_store"):
            config = without_repeats(name, analysis, TRAIN, leads)
        assert config == replace(TRAIN, members=distinct)
        assert f"{distinct} members, not 40" in caplog.text
        baseline = BASELINES[name](analysis.dataset, config)
        for init in INITS:
            for lead in LEADS:
                assert not baseline.picks(init, lead).duplicated().any(), (name, init, lead)
        few = replace(TRAIN, members=5)
        assert without_repeats(name, analysis, few, leads) == few


def test_more_members_than_the_pool_holds_is_warned_of_naming_the_fix(analysis, tmp_path, caplog):
    config = BaselineConfig("2000-01-01", "2000-01-03", members=5)  # 3 days: 3 times an hour
    with caplog.at_level("WARNING", logger="generators.correction.baseline_store"):
        baseline_to_store(
            "climatology",
            analysis.path,
            config,
            INITS[:2],
            [6.0],
            tmp_path / "f.zarr",
            progress=False,
        )
    warned = [r.getMessage() for r in caplog.records if "repeat" in r.getMessage()]
    assert len(warned) == 1, caplog.text
    assert "5 members" in warned[0] and "3 training times" in warned[0]
    assert "draw 3 members or fewer, members= (--members)" in warned[0]
    assert "window_days= (--window-days)" in warned[0]


def test_extending_a_store_with_another_member_count_names_the_members(analysis, tmp_path):
    out = tmp_path / "f.zarr"
    baseline_to_store("climatology", analysis.path, TRAIN, INITS[:1], [6.0], out, progress=False)
    fewer = BaselineConfig("2000-01-01", "2000-01-10", members=20, seed=1)
    with pytest.raises(StoreError, match="members=40.* there, .*members=20.* in this forecast"):
        baseline_to_store(
            "climatology", analysis.path, fewer, INITS[1:2], [6.0], out, progress=False
        )


def test_a_training_period_reaching_beyond_the_store_is_warned_of(analysis, caplog):
    """The store covers 2000-01-01 to 2000-01-18T18: a period from December drew from
    January only, while the CLI's summary and the provenance said December."""
    with caplog.at_level("WARNING", logger="generators.correction.baselines"):
        ClimatologyEnsemble(analysis.dataset, TRAIN)
        PersistenceEnsemble(analysis.dataset, BaselineConfig("2000-01-01", "2000-01-18"))
        assert not caplog.records, caplog.text
        ClimatologyEnsemble(analysis.dataset, BaselineConfig("1999-12-01", "2000-01-10"))
        PersistenceEnsemble(analysis.dataset, BaselineConfig("2000-01-05", "2000-02-01"))
    first, second = (r.getMessage() for r in caplog.records)
    assert "1999-12-01 to 2000-01-10 reaches beyond" in first
    assert "drawn from 2000-01-01T00:00 to 2000-01-10T18:00 only" in first
    assert "drawn from 2000-01-05T00:00 to 2000-01-18T18:00 only" in second


def test_cli_summary_counts_one_member_and_one_lead_in_the_singular(analysis, tmp_path, capsys):
    """``wxens baseline`` (and ``wxens forecast``) summed up one lead as "x 1 leads"."""
    argv = ["baseline", "persistence", "--store", str(analysis.path), "--members", "1"]
    argv += ["--train", "2000-01-01/2000-01-10", "--init", "2000-01-11T00", "--lead", "6h"]
    assert main([*argv, "--every", "6h", "--out", str(tmp_path / "p.zarr"), "--no-progress"]) == 0
    assert "1 initial time x 1 member x 1 lead," in capsys.readouterr().out


def draw_persistence(analysis, out, inits: str, *more: str) -> int:
    """``wxens baseline persistence`` of 8 members at 6 and 24 h for ``inits`` into ``out``."""
    argv = ["baseline", "persistence", "--store", str(analysis.path), "--members", "8"]
    argv += ["--train", "2000-01-01/2000-01-10", "--lead", "6h,24h", "--init", inits]
    return main([*argv, "--out", str(out), "--no-progress", *more])


def test_a_rerun_draws_only_the_initial_times_the_store_lacks(analysis, tmp_path, capsys):
    """A rerun with the same settings over initial times the store held drew and wrote
    them all again ("overwrote 4"), identical, the store's history growing by a full
    rewrite each day; ``wxens forecast`` skips them (``--recompute`` draws them again)."""
    out, six = tmp_path / "p.zarr", "2000-01-11T00/2000-01-12T06/6h"
    assert draw_persistence(analysis, out, "2000-01-11T00/2000-01-11T18/6h") == 0
    held, before = open_forecast(out).load(), len(commits(out))
    capsys.readouterr()
    assert draw_persistence(analysis, out, six) == 0
    said = capsys.readouterr().out
    assert "2 initial times x 8 members" in said
    assert "4 already in the store, kept (--recompute draws them again)" in said
    assert len(commits(out)) == before + 1  # one commit: the two new initial times
    extended = open_forecast(out).load()
    assert extended.sizes["init_time"] == 6
    xr.testing.assert_identical(extended.isel(init_time=slice(0, 4)), held)  # bit for bit
    # the two new ones are those of a store drawn at once (each its own stream of the seed)
    assert draw_persistence(analysis, tmp_path / "whole.zarr", six) == 0
    xr.testing.assert_identical(open_forecast(tmp_path / "whole.zarr").load(), extended)

    capsys.readouterr()
    assert draw_persistence(analysis, out, six, "--recompute") == 0
    assert "6 initial times x 8 members" in capsys.readouterr().out
    assert len(commits(out)) == before + 2
    xr.testing.assert_identical(open_forecast(out).load(), extended)  # the same draws


def test_a_rerun_with_other_settings_is_refused_naming_both(
    analysis, tmp_path, capsys
):
    """Another training period into a store of these initial times: what a rerun would
    skip as held is another baseline's, so it is refused, naming both settings."""
    out = tmp_path / "c.zarr"
    argv = ["baseline", "climatology", "--store", str(analysis.path), "--out", str(out)]
    argv += ["--lead", "6h", "--init", "2000-01-11T00/2000-01-11T18/6h", "--no-progress"]
    assert main([*argv, "--train", "2000-01-01/2000-01-10"]) == 0
    before = len(commits(out))
    assert main([*argv, "--train", "2000-01-02/2000-01-10"]) == 2
    err = capsys.readouterr().err
    assert "train=2000-01-01/2000-01-10" in err and "train=2000-01-02/2000-01-10" in err
    assert "write to another store, or delete this one first" in err
    assert len(commits(out)) == before


def test_info_names_the_analysis_store_and_training_period_a_baseline_was_drawn_from(
    analysis, tmp_path, capsys, monkeypatch
):
    """A baseline store recorded neither, so its scores could not be traced to the analyses
    and period its members came from; the path is recorded resolved, as a forecast's is."""
    monkeypatch.chdir(analysis.path.parent)  # a relative --store, as a user types it
    out = tmp_path / "clim.zarr"
    argv = ["baseline", "climatology", "--store", analysis.path.name, "--members", "4"]
    argv += ["--train", "2000-01-01/2000-01-10", "--init", "2000-01-11", "--lead", "12h"]
    assert main([*argv, "--out", str(out), "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["info", str(out)]) == 0
    shown = capsys.readouterr().out
    assert f"analysis   {analysis.path.resolve()} (of the first forecast)" in shown
    assert "training   2000-01-01 to 2000-01-10 (the period the members are drawn from)" in shown


def test_a_store_of_an_older_wxens_is_refused_as_such_not_as_another_baseline(analysis, tmp_path):
    """A baseline drawn before its sampler recorded the member count (``members=``) differs
    from this wxens's in that text alone: the refusal says the store is an older wxens's and
    the fix, not that the user asked for another baseline."""
    drawn = tmp_path / "drawn.zarr"
    baseline_to_store("climatology", analysis.path, TRAIN, INITS[:1], [6.0], drawn, progress=False)
    made = provenance(drawn)
    older = replace(made, sampler=made.sampler.split(",members=")[0])  # as it was recorded
    out = tmp_path / "older.zarr"
    write_forecast(out, open_forecast(drawn).load(), older)
    with pytest.raises(StoreError) as refused:
        baseline_to_store(
            "climatology", analysis.path, TRAIN, INITS[1:2], [6.0], out, progress=False
        )
    said = str(refused.value)
    assert f"{out} holds a climatology baseline drawn by an older wxens" in said
    assert "'climatology:train=2000-01-01/2000-01-10,window_days=None' there" in said
    assert "write the new forecasts to another store, or draw the baseline whole again" in said
