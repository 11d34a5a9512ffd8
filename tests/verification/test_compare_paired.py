"""``wxens compare`` judges a best against the noise by the paired block-bootstrap interval
of the fair-CRPS difference where both files hold verify's per-init CRPS (``/per_init``) of
the same initial times: two forecasts of the same days share the weather, so their errors
correlate, and unpaired intervals that overlap (``~``) can hide a difference every day
shows. An older file without the group keeps the unpaired rule, and the legend and the CSV
say which rule each mark used."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from verification.compare import compare_scorecards
from verification.compare_table import comparison_frame, comparison_table
from verification.config import VerifyConfig
from verification.output import write_scores
from verification.scorecard import verify

CONFIG = VerifyConfig(progress=False, physics_init_times=0, energy_score=False, seed=3)


def forecasts(shared: bool) -> tuple[xr.Dataset, xr.Dataset, xr.Dataset]:
    """The truth and two 4-member forecasts of 40 init times over 10 days whose error scale
    changes from day to day (so a CRPS mean over days is noisy): ``shared``: B's errors are
    A's, 8 % larger, plus a little noise of its own (a difference every day shows); else
    B's errors are drawn anew at the same scales (a difference that is noise)."""
    rng = np.random.default_rng(0)
    times = pd.date_range("2020-01-01", periods=48, freq="6h")
    grid = {"latitude": np.linspace(50, 60, 4), "longitude": np.linspace(-10, 2, 5)}
    truth = xr.Dataset(
        {"t2m": (("time", *grid), 280 + rng.normal(size=(48, 4, 5)), {"units": "K"})},
        coords={"time": times, **grid},
    )
    inits, leads = times[:40], pd.to_timedelta([6, 12], "h")
    at = xr.DataArray(inits.values[:, None] + leads.values[None, :], dims=("i", "l"))
    valid = truth.t2m.sel(time=at)
    scale = np.repeat(rng.uniform(0.3, 3.0, size=10), 4)[:, None, None, None, None]
    shape = (40, 4, 2, 4, 5)

    def ensemble(errors: np.ndarray) -> xr.Dataset:
        dims = ("init_time", "member", "lead_time", *grid)
        values = valid.values[:, None] + errors
        coords = {"init_time": inits, "lead_time": leads, **grid}
        return xr.Dataset({"t2m": (dims, values, {"units": "K"})}, coords=coords)

    errors = scale * (rng.normal(size=shape) + 0.5 * rng.normal(size=(40, 1, 2, 4, 5)))
    other = scale * (rng.normal(size=shape) + 0.5 * rng.normal(size=(40, 1, 2, 4, 5)))
    b = 1.08 * errors + 0.05 * rng.normal(size=shape) if shared else other
    return truth, ensemble(errors), ensemble(b)


def scores(shared: bool) -> list[xr.DataTree]:
    truth, a, b = forecasts(shared)
    return [verify(f, truth, CONFIG) for f in (a, b)]


def without_per_init(tree: xr.DataTree) -> xr.DataTree:
    """The tree as a wxens before ``/per_init`` wrote it."""
    return xr.DataTree.from_dict(
        {"/": tree.to_dataset(), "/scorecard": tree["scorecard"].to_dataset()}
    )


def crps_block(text: str) -> list[str]:
    return next(b for b in text.split("\n\n") if b.startswith("fair CRPS")).splitlines()[2:]


def numpy_paired_interval(a: xr.DataTree, b: xr.DataTree, lead: int) -> tuple[float, float]:
    """The 90 % block-bootstrap interval of mean CRPS(a) - CRPS(b) at ``lead`` (index), in
    numpy from the files' per-init parts: day blocks, the files' seed and draws."""
    parts = [t["per_init"].to_dataset().isel(variable=0, lead_time=lead) for t in (a, b)]
    difference = (parts[0].fair_crps - parts[1].fair_crps).values
    weight = parts[0].weight.values
    days = pd.DatetimeIndex(parts[0].init_time.values).floor("1D")
    _, block_of = np.unique(days, return_inverse=True)
    n = block_of.max() + 1
    picks = np.random.default_rng(CONFIG.seed).integers(n, size=(CONFIG.interval_draws, n))
    counts = np.stack([np.bincount(p, minlength=n) for p in picks])[:, block_of]
    means = (counts * weight) @ difference / ((counts * weight).sum(axis=1))
    low, high = np.quantile(means, [0.05, 0.95])
    return float(low), float(high)


def test_verify_writes_the_per_init_crps_and_weight_with_its_interval_settings(tmp_path):
    tree = scores(shared=True)[0]
    path = write_scores(tree, tmp_path / "a.nc")
    with xr.open_datatree(path) as read:
        group = read["per_init"].to_dataset()
        assert set(group.data_vars) == {"fair_crps", "weight"}
        assert group.fair_crps.sizes == {"variable": 1, "lead_time": 2, "init_time": 40}
        assert group.attrs["interval_block"] == "1D" and group.attrs["seed"] == 3
        mean = group.fair_crps.weighted(group.weight).mean("init_time")
        card = read["scorecard"].to_dataset().fair_crps
        np.testing.assert_allclose(mean.values, card.values, rtol=1e-10)


def test_a_difference_every_day_shows_is_starred_by_the_paired_rule_not_the_unpaired(
    tmp_path,
):
    a, b = scores(shared=True)
    paths = [write_scores(t, tmp_path / f"{n}.nc") for t, n in ((a, "a"), (b, "b"))]
    table = compare_scorecards(paths, ["a", "b"])
    for lead in range(2):  # the unpaired intervals overlap; the paired one keeps off 0
        at = {"variable": "t2m", "lead_time": table.lead_time[lead]}
        assert float(table.fair_crps_high.sel(at | {"experiment": "a"})) > float(
            table.fair_crps_low.sel(at | {"experiment": "b"})
        )
        low, high = numpy_paired_interval(a, b, lead)
        assert high < 0
        pair = at | {"experiment": "a", "rival": "b"}
        kept = table.fair_crps_paired_high.sel(pair)
        assert float(kept) == pytest.approx(high, rel=1e-9)
        paired_low = table.fair_crps_paired_low.sel(pair)
        assert float(paired_low) == pytest.approx(low, rel=1e-9)
    text = comparison_table(table)
    assert all(row.split()[4].endswith("]*") for row in crps_block(text))
    assert "fair CRPS judged paired (at every row)" in text.split("\n\n")[-1]
    rows = comparison_frame(table).query("score == 'fair_crps'")
    assert rows.within_noise.tolist() == ["", ""] and rows.noise_rule.tolist() == ["paired"] * 2

    old = comparison_table(compare_scorecards([without_per_init(a), b], ["a", "b"]))
    assert all(row.split()[4].endswith("]~") for row in crps_block(old))
    assert "judged paired" not in old.split("\n\n")[-1]
    old_rows = comparison_frame(compare_scorecards([without_per_init(a), b], ["a", "b"]))
    assert old_rows.query("score == 'fair_crps'").noise_rule.tolist() == ["unpaired"] * 2


def test_a_difference_that_is_noise_stays_within_the_noise_by_the_paired_rule():
    a, b = scores(shared=False)
    table = compare_scorecards([a, b], ["a", "b"])
    rows = comparison_frame(table).query("score == 'fair_crps'")
    assert rows.noise_rule.tolist() == ["paired"] * 2
    assert (rows.within_noise == rows.best).all() and (rows.best != "").all()
    for lead in range(2):
        best = rows.best.iloc[lead]
        rival = "b" if best == "a" else "a"
        low, high = numpy_paired_interval(*(a, b) if best == "a" else (b, a), lead)
        assert low < 0 <= high
        at = {"lead_time": table.lead_time[lead], "experiment": best, "rival": rival}
        assert float(table.fair_crps_paired_high.sel(at).item()) == pytest.approx(high)


@pytest.mark.parametrize("shared", [True, False])
def test_the_paired_interval_is_verify_references_of_the_same_forecasts(shared, tmp_path):
    """``wxens verify A --reference B`` and ``wxens compare A B`` draw the interval of A's
    fair CRPS minus B's from the same per-init parts, blocks, draws and seed: the same
    numbers, so a researcher reading both sees one judgement."""
    truth, a, b = forecasts(shared)
    against_b = verify(a, truth, CONFIG, reference=b)["scorecard"].to_dataset()
    paths = [
        write_scores(verify(f, truth, CONFIG), tmp_path / f"{n}.nc")
        for f, n in ((a, "a"), (b, "b"))
    ]
    table = compare_scorecards(paths, ["a", "b"])
    for side in ("low", "high"):
        paired = table[f"fair_crps_paired_{side}"].sel(experiment="a", rival="b")
        reference = against_b[f"fair_crps_minus_reference_{side}"]
        np.testing.assert_allclose(paired.values, reference.values, rtol=1e-9)


def test_the_legend_says_which_rule_judged_the_crps_and_why_a_file_did_not_pair():
    """A researcher reads the legend to learn what ``~`` and ``*`` meant for each score: a
    CRPS judged paired must not be listed under the unpaired rule, and where a file could
    not pair (no ``/per_init``: an older wxens) the legend names it and the fix."""
    a, b = scores(shared=True)
    legend = comparison_table(compare_scorecards([a, b], ["a", "b"])).split("\n\n")[-1]
    unpaired_line, paired_line = legend.splitlines()[1:3]
    assert "fair CRPS" not in unpaired_line and "spread/skill" in unpaired_line
    assert "wxens verify A --reference B" in paired_line
    old = compare_scorecards([without_per_init(a), b], ["a", "b"])
    old_legend = comparison_table(old).split("\n\n")[-1]
    assert "fair CRPS" in old_legend.splitlines()[1]
    assert "fair CRPS not paired: a (" in old_legend
    assert "no /per_init" in old_legend and "verify it again" in old_legend
