"""The report reads at a glance: narrow scorecard tables, every lead's rank histogram,
member maps on one colour range over truth and members, every axis labelled and nothing
clipped or covered; in headless Chromium at 1,280 px nothing is cut off."""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import QuadMesh
from matplotlib.figure import Figure
from matplotlib.image import imread
from matplotlib.transforms import Bbox
from verification_cases import balanced_members, oracle_forecast

from pipeline.sources.synthetic import SyntheticConfig, synthetic_dataset
from verification.config import VerifyConfig
from verification.map_plots import plot_member_maps
from verification.plots import (
    MAX_RANK_PANELS,
    PAGE_WIDTH_INCHES,
    plot_rank_histograms,
    plot_scores_by_lead,
)
from verification.report import figure_png, report_figures, write_report
from verification.report_tables import physics_table, scorecard_tables
from verification.scorecard import verify

BROWSER_SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "report_browser.py"
LEADS = (6, 12, 18, 24, 30)  # five: the report used to show four without saying so


@pytest.fixture(scope="module")
def tree() -> xr.DataTree:
    """Every scorecard column there is: intervals, a reference, both rank floors, events."""
    config = SyntheticConfig(n_lat=10, n_lon=12, n_times=16, levels=(500, 850))
    truth = synthetic_dataset(config).load()
    t2m = oracle_forecast(config, truth, 6, LEADS, 4, seed=1)
    z = balanced_members(config, truth, 6, LEADS, seeds=(21, 22, 23, 24))[["z"]].sel(level=[500])
    forecast = xr.merge([t2m, z.assign_coords(member=t2m.member)])
    narrow = oracle_forecast(config, truth, 6, LEADS, 4, seed=7, spread_factor=0.5)
    settings = VerifyConfig(physics_init_times=2, error_surrogate_replicas=2, progress=False)
    return verify(forecast, truth, settings, reference=forecast.assign(t2m=narrow["t2m"]))


@pytest.fixture(scope="module")
def figures(tree):
    return {item.title: item for item in report_figures(tree)}


def test_the_scorecard_is_a_few_narrow_tables_holding_every_score(tree):
    card = tree["scorecard"].to_dataset()
    tables = list(scorecard_tables(card).values())
    assert len(tables) == 3  # skill, calibration, events
    for table in tables:
        header = re.search(r"<table class='scores'><tr>(.*?)</tr>", table, flags=re.S).group(1)
        assert header.count("<th") <= 10
        assert table.count("<tr>") == 1 + card.sizes["variable"] * len(LEADS)
    skill, calibration, events = tables
    first = card.sel(variable="t2m").isel(lead_time=0)
    crps = f"{float(first.fair_crps):.4g} <span class='interval'>[{float(first.fair_crps_low):.3g}"
    assert crps in skill and f"<td>{float(first.fair_crps_skill_score):.4g}</td>" in skill
    assert f"<td>{float(first.rank_max_min_error_surrogate):.4g}</td>" in calibration
    assert f"<td>{float(first.brier_score_q90):.4g}</td>" in events
    assert "t2m (K)" in skill and "z500 (m2 s-2)" in skill  # units beside the variable


def test_the_physics_table_shows_whatever_checks_it_gets_and_n_a_for_none_computed(tree):
    physics = tree["physics"].to_dataset().copy(deep=True)
    names = [f"made_up_check_{i}" for i in range(physics.sizes["check"])]
    physics = physics.assign_coords(check=names)
    physics["member_score"][0] = np.nan  # nothing computable for the first check
    table = physics_table(xr.DataTree.from_dict({"/physics": physics}))
    rows = re.findall(r"<tr><th class='row'>(.*?)</th>(.*?)</tr>", table, flags=re.S)
    unavailable = list(physics["not_computed"].values) if "reason" in physics else []
    assert [name for name, _ in rows] == names + unavailable  # n/a parts after the checks
    rows = rows[: len(names)]
    assert "n/a" in rows[0][1] and "FAIL" not in rows[0][1]
    assert all("PASS" in cells or "FAIL" in cells for _, cells in rows[1:])


def test_every_lead_has_its_rank_histogram(tree, figures):
    item = figures["Rank histograms"]
    titles = {ax.get_title() for ax in item.figure.axes if ax.get_visible()}
    variables = tree["scorecard"]["variable"].values
    assert titles == {f"{v}, {h} h" for v in variables for h in LEADS}
    assert f"all {len(LEADS)} leads" in item.caption


def rank_counts(per_lead: list[list[int]], variables: int = 1) -> xr.DataArray:
    counts = np.array([per_lead] * variables)
    return xr.DataArray(
        counts,
        dims=("variable", "lead_time", "rank"),
        coords={
            "variable": [f"v{i}" for i in range(variables)],
            "lead_time": pd.to_timedelta(np.arange(len(per_lead)) + 1, unit="h"),
            "rank": np.arange(counts.shape[-1]),
        },
    )


def panel_meshes(fig) -> list[QuadMesh]:
    """The images of a figure's panels (not of its colour bars)."""
    panels = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    return [c for ax in panels for c in ax.collections if isinstance(c, QuadMesh)]


def test_rank_bars_are_frequency_times_ranks_and_many_leads_become_one_image_each():
    fig = plot_rank_histograms(rank_counts([[3, 1, 0, 4], [2, 2, 2, 2]]))
    heights = [[p.get_height() for p in ax.patches] for ax in fig.axes]
    assert heights == [[1.5, 0.5, 0.0, 2.0], [1.0, 1.0, 1.0, 1.0]]  # 4 ranks, 8 cases
    many = rank_counts([[5, 5, 5, 5]] * 20, variables=3)
    assert 3 * 20 > MAX_RANK_PANELS
    fig = plot_rank_histograms(many)
    meshes = panel_meshes(fig)
    assert len(meshes) == 3  # one image per variable
    assert all(m.get_array().shape == (20, 4) for m in meshes)  # every lead, every rank
    assert all(np.allclose(m.get_array(), 1.0) for m in meshes)  # flat: 1 everywhere


def test_member_maps_share_one_colour_range_over_truth_and_members_with_units():
    lat, lon = np.linspace(30, 60, 12), np.linspace(-20, 20, 16)
    ramp = np.add.outer(np.linspace(0, 1, 12), np.linspace(0, 1, 16)) / 2
    truth = 270 + 10 * ramp
    members = np.stack([260 + 40 * ramp, truth.copy()])
    members[1, 5, 5] = 400.0  # one wild value
    maps = xr.Dataset(
        {
            "truth": (("variable", "latitude", "longitude"), truth[None]),
            "forecast": (("variable", "member", "latitude", "longitude"), members[None]),
        },
        coords={"variable": ["t2m"], "member": [0, 1], "latitude": lat, "longitude": lon},
    )
    fig = plot_member_maps(maps)
    meshes = panel_meshes(fig)
    limits = {m.get_clim() for m in meshes}
    assert len(meshes) == 3 and len(limits) == 1  # truth and both members, one scale
    lo, hi = limits.pop()
    values = np.concatenate([truth.ravel(), members.ravel()])
    assert np.mean((values >= lo) & (values <= hi)) >= 0.98  # covers nearly all values
    assert lo < 265 and 295 < hi < 400  # the members' range, not the truth's 270-280
    (bar,) = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
    assert bar.get_ylabel() == "t2m (K)"
    (colorbar,) = [m.colorbar for m in meshes if m.colorbar is not None]
    assert colorbar.extend in ("max", "both")  # the wild value is beyond the range


def overlap(a: Bbox, b: Bbox, slack: float = 1.0) -> bool:
    """Whether two display boxes share more than ``slack`` pixels each way."""
    return min(a.x1, b.x1) - max(a.x0, b.x0) > slack and min(a.y1, b.y1) - max(a.y0, b.y0) > slack


def shows_tick_labels(labels) -> bool:
    return any(t.get_visible() and t.get_text() for t in labels)


def test_every_axis_is_labelled_and_nothing_is_clipped_or_covered(figures):
    assert len(figures) == 7
    for title, item in figures.items():
        fig = item.figure
        assert fig.get_figwidth() <= PAGE_WIDTH_INCHES, title
        canvas = FigureCanvasAgg(fig)
        fig.savefig(io.BytesIO(), format="png", dpi=90)  # lays the figure out as the report does
        renderer = canvas.get_renderer()
        inside = fig.get_tightbbox(renderer)  # inches, every artist
        width, height = fig.get_size_inches()
        assert inside.x0 >= -0.02 and inside.y0 >= -0.02, title
        assert inside.x1 <= width + 0.02 and inside.y1 <= height + 0.02, title
        axes = [ax for ax in fig.axes if ax.get_visible()]
        boxes = [ax.get_tightbbox(renderer) for ax in axes]  # with labels and tick labels
        for ax, box in zip(axes, boxes, strict=True):
            assert not any(overlap(box, other.bbox) for other in axes if other is not ax), title
            if ax.get_label() == "<colorbar>":
                assert ax.get_ylabel() or ax.get_xlabel(), f"{title}: colour bar without label"
                continue
            if shows_tick_labels(ax.get_xticklabels()):
                assert ax.get_xlabel(), f"{title}: {ax.get_title()} has no x label"
            if shows_tick_labels(ax.get_yticklabels()):
                assert ax.get_ylabel(), f"{title}: {ax.get_title()} has no y label"
        legends = list(fig.legends) + [ax.get_legend() for ax in axes if ax.get_legend()]
        for legend in legends:
            box = legend.get_window_extent(renderer)
            assert not any(overlap(box, ax.bbox) for ax in axes), f"{title}: legend on data"


def lines_scorecard(variables=("t2m",)) -> xr.Dataset:
    """``variables`` verified beside a reference: four score lines, a 3.2 in panel each."""
    scores = ("fair_crps", "reference_fair_crps", "ensemble_mean_rmse", "ensemble_spread")
    return xr.Dataset(
        {name: (("variable", "lead_time"), [[1.0, 2.0]] * len(variables)) for name in scores},
        coords={"variable": list(variables), "lead_time": pd.to_timedelta([6, 12], unit="h")},
    )


def legend_box(fig, dpi: float = 90) -> Bbox:
    """The figure's one legend's extent at ``dpi`` (text extents do not scale exactly)."""
    fig.set_dpi(dpi)
    (legend,) = fig.legends
    return legend.get_window_extent(FigureCanvasAgg(fig).get_renderer())


def test_a_legend_wider_than_its_figure_is_kept_whole_in_the_report_image():
    """A legend above the panels wider than its figure, which constrained layout cannot
    widen: a plain ``savefig`` cut it off at both sides. The report's image holds it."""
    fig = Figure(figsize=(3.2, 2.8), layout="constrained")
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], label="a label far longer than the 3.2 inches of its figure is wide")
    fig.legend(loc="outside upper center", fontsize="small")
    height, width, _ = imread(io.BytesIO(base64.b64decode(figure_png(fig, dpi=90)))).shape
    box = legend_box(fig)
    assert box.width > fig.get_figwidth() * 90  # the case: wider than the figure
    assert box.width <= width and box.height <= height, (box, width, height)


def test_a_one_variable_scores_legend_takes_the_columns_its_figure_holds():
    """Its four entries in one row were 510 px wide over a 288 px panel: the image was
    widened to hold them, the panel left small in a wide white margin."""
    fig = plot_scores_by_lead(lines_scorecard())
    box = legend_box(fig)
    assert box.width <= fig.get_figwidth() * 90, box
    assert len(fig.legends[0].get_texts()) == 4  # every entry kept
    wide = plot_scores_by_lead(lines_scorecard(("t2m", "msl", "z500")))
    assert legend_box(wide).height < box.height  # a wider figure: fewer rows


@pytest.mark.slow
@pytest.mark.skipif(
    shutil.which("chromium") is None,
    reason="Chromium is not installed: apt-get install -y chromium (scripts/install.sh)",
)
def test_nothing_is_cut_off_in_a_1280_px_window(tree, tmp_path):
    physics = tree["physics"].to_dataset().copy(deep=True)
    physics["member_score"][0] = np.nan  # the longest verdict: n/a
    tree = tree.copy()
    tree["physics"] = physics
    report = write_report(tree, tmp_path / "report.html", sources="test")
    result = tmp_path / "browser.json"
    run = subprocess.run(
        [
            sys.executable,
            str(BROWSER_SCRIPT),
            str(report),
            "--screenshot",
            str(tmp_path / "shot.png"),
            "--json",
            str(result),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    layout = json.loads(result.read_text())["layout"]
    assert layout["viewport"] == 1280
    assert layout["scroll_width"] <= 1280, layout  # no horizontal scroll
    assert layout["wider_than_viewport"] == []  # no table or figure reaches past the window
    assert layout["images_scaled_down"] == []  # every figure at the size it was drawn


def test_a_tiny_p_value_is_escaped_in_the_report_table():
    """``< 0.0001`` went into the HTML unescaped (an opening tag to a parser)."""
    from verification.report_tables import p_value

    assert p_value(1e-6) == "&lt; 0.0001" and p_value(0.25) == "0.25"


def test_a_reference_of_fewer_points_says_so_in_the_skill_table():
    """A reference lacking some runs (NaN) is compared on the points both hold: the report
    put its CRPS (4 of 7 initial times) and the skill score on those beside the forecast's
    CRPS on all 7 and "points 2688", so 1 - CRPS/reference CRPS read 0.005 where the table
    said 0.156, and nothing in the report said why (a log warning only). The table gives
    the points compared with the reference, and its note says what covers which."""
    from verification.report_tables import scorecard_section

    leads = pd.to_timedelta([6, 12], unit="h")
    card = xr.Dataset(
        {
            name: (("variable", "lead_time"), np.full((1, 2), value))
            for name, value in (
                ("fair_crps", 0.17),
                ("reference_fair_crps", 0.17),
                ("fair_crps_skill_score", 0.16),
                ("n_verified", 2688.0),
                ("n_verified_with_reference", 1536.0),
            )
        },
        coords={"variable": ["t2m"], "lead_time": leads},
    )
    text = re.sub(r"<[^>]+>", " ", scorecard_section(card))
    assert "points with reference" in text and "1536" in text
    assert "on the points both hold" in text
    whole = scorecard_section(card.assign(n_verified_with_reference=card.n_verified))
    assert "points with reference" not in whole  # every point paired: nothing to say


def overlapping_tick_labels(fig) -> list[str]:
    """The x tick labels of any panel of ``fig`` that overlap a neighbour's."""
    renderer = FigureCanvasAgg(fig).get_renderer()
    fig.draw(renderer)
    found = []
    for ax in fig.axes:
        labels = [t for t in ax.get_xticklabels() if t.get_visible() and t.get_text()]
        pairs = [(t.get_text(), t.get_window_extent(renderer)) for t in labels]
        found += [
            f"{ax.get_title()}: {a!r} on {b!r}"
            for (a, box_a), (b, box_b) in zip(pairs, pairs[1:], strict=False)
            if overlap(box_a, box_b, slack=0.0)
        ]
    return found


def test_rank_tick_labels_of_a_large_ensemble_do_not_run_together():
    """With 50 members (51 ranks) the bars' x ticks read '0 6 121824303642 48'."""
    fig = plot_rank_histograms(rank_counts([[1] * 51] * 5))
    assert overlapping_tick_labels(fig) == []


def test_rank_images_have_a_row_per_lead_labelled_in_hours_and_integer_ranks():
    """Uneven leads (6, 12, 24, 48 h) on a linear axis gave the 48 h row 36-60 h and an axis
    to 60 h; ranks were ticked 0.0, 2.5, 5.0, ..."""
    counts = rank_counts([[5] * 11] * 4, variables=13).assign_coords(
        lead_time=pd.to_timedelta([6, 12, 24, 48], unit="h")
    )
    assert 13 * 4 > MAX_RANK_PANELS
    fig = plot_rank_histograms(counts)
    FigureCanvasAgg(fig).draw()
    panels = [ax for ax in fig.axes if ax.get_label() != "<colorbar>" and ax.get_visible()]
    for ax in panels:
        rows = [t.get_text() for t in ax.get_yticklabels() if t.get_text()]
        assert rows == ["6", "12", "24", "48"], rows
        ranks = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
        assert ranks and all(r.lstrip("−-").isdigit() for r in ranks), ranks
        low, high = ax.get_ylim()
        assert high - low == pytest.approx(4.0)  # four rows of equal height, nothing beyond
    assert overlapping_tick_labels(fig) == []


def test_an_interval_that_could_not_be_computed_is_not_shown_as_nan():
    """A one-member forecast's spread/skill read '– [nan, nan]' in the calibration table."""
    card = xr.Dataset(
        {
            name: (("variable", "lead_time"), [[value]])
            for name, value in {
                "ensemble_spread": np.nan,
                "spread_skill_ratio": np.nan,
                "spread_skill_ratio_low": np.nan,
                "spread_skill_ratio_high": np.nan,
                "fair_crps": 1.5,
                "fair_crps_low": 1.25,
                "fair_crps_high": 1.75,
            }.items()
        },
        coords={"variable": ["t2m"], "lead_time": pd.to_timedelta([6], unit="h")},
    )
    tables = scorecard_tables(card)
    assert "nan" not in "".join(tables.values()).lower()
    assert "1.5 <span class='interval'>[1.25, 1.75]</span>" in tables["skill"]


def test_an_infinite_rank_ratio_reads_as_infinite_not_as_missing():
    """A rank the truth never took (over-dispersion, a bias) makes rank max/min infinite: the
    report showed '–' (nothing to score) and the printed table 'n/a'."""
    from verification.output import printable_card

    card = xr.Dataset(
        {"rank_max_min": (("variable", "lead_time"), [[np.inf, np.nan]])},
        coords={"variable": ["t2m"], "lead_time": pd.to_timedelta([6, 12], unit="h")},
    )
    calibration = scorecard_tables(card)["calibration"]
    assert "<td>∞</td>" in calibration and "<td>–</td>" in calibration
    printed = printable_card(card, ["rank_max_min"], {"t2m": "K"}).splitlines()
    assert printed[1].split()[2] == "inf" and printed[2].split()[2] == "n/a"


def test_point_counts_are_shown_in_full():
    """58212 verified points read '5.821e+04' in the report and the printed table."""
    from verification.output import printable_card

    card = xr.Dataset(
        {
            "n_verified": (("variable", "lead_time"), [[58212.0]]),
            "n_missing_truth": (("variable", "lead_time"), [[29160.0]]),
        },
        coords={"variable": ["t2m"], "lead_time": pd.to_timedelta([6], unit="h")},
    )
    skill = scorecard_tables(card)["skill"]
    assert "<td>58212</td>" in skill and "<td>29160</td>" in skill
    printed = printable_card(card, ["n_verified", "n_missing_truth"], {"t2m": "K"})
    assert printed.splitlines()[1].split()[2:4] == ["58212", "29160"]


def spectra_of(power: float, k_dim: str = "wavenumber") -> xr.Dataset:
    k = np.arange(1, 6) * (1.0 if k_dim == "zonal_wavenumber" else 1e-3)
    values = np.full((1, 2, k.size), power)
    dims = ("variable", "lead_time", k_dim)
    return xr.Dataset(
        {name: (dims, values) for name in ("forecast_power", "truth_power", "spectral_ratio")},
        coords={"variable": ["t2m"], "lead_time": pd.to_timedelta([6, 12], unit="h"), k_dim: k},
    )


def panel_texts(fig) -> list[str]:
    return [t.get_text() for ax in fig.axes for t in ax.texts]


def test_a_figure_with_nothing_to_draw_says_n_a_rather_than_showing_empty_axes():
    """A one-member forecast's spread-skill ratio (NaN) drew empty axes from -0.04 to 0.04 h
    with a legend of lines; a masked truth's spectra (NaN) empty log axes with a legend."""
    from verification.plots import plot_spectra, plot_spread_skill_ratio

    card = xr.Dataset(
        {"spread_skill_ratio": (("variable", "lead_time"), [[np.nan, np.nan]])},
        coords={"variable": ["t2m"], "lead_time": pd.to_timedelta([6, 12], unit="h")},
    )
    fig = plot_spread_skill_ratio(card)
    assert any(t.startswith("n/a") for t in panel_texts(fig)) and not fig.legends
    assert fig.axes[0].get_xlim()[0] < 6 < 12 < fig.axes[0].get_xlim()[1]
    assert any(t.startswith("n/a") for t in panel_texts(plot_spectra(spectra_of(np.nan))))
    assert not any(t.startswith("n/a") for t in panel_texts(plot_spectra(spectra_of(1.0))))


def test_zonal_spectra_are_labelled_in_their_units_of_power_per_wavenumber():
    """Zonal spectra are in the field's units squared times metres (C|F_k|², C the circle
    length); the axis read K², the isotropic spectra's units."""
    from verification.plots import plot_spectra

    zonal = plot_spectra(spectra_of(1.0, "zonal_wavenumber"))
    isotropic = plot_spectra(spectra_of(1.0))
    assert "power (K² m)" in [ax.get_ylabel() for ax in zonal.axes]
    assert "power (K²)" in [ax.get_ylabel() for ax in isotropic.axes]


def test_every_variable_of_the_spread_skill_figure_has_a_line_style_of_its_own():
    """Thirteen channels (z, t, u, v on three levels and t2m) drew z300 and v500, z500 and
    v850, z850 and t2m in one colour and marker, under 13 overlapping shaded bands."""
    from verification.plots import plot_spread_skill_ratio

    names = [f"{v}{p}" for v in "ztuv" for p in (300, 500, 850)] + ["t2m"]
    ratio = np.linspace(0.8, 1.2, 2 * len(names)).reshape(len(names), 2)
    card = xr.Dataset(
        {
            "spread_skill_ratio": (("variable", "lead_time"), ratio),
            "spread_skill_ratio_low": (("variable", "lead_time"), ratio - 0.1),
            "spread_skill_ratio_high": (("variable", "lead_time"), ratio + 0.1),
        },
        coords={"variable": names, "lead_time": pd.to_timedelta([6, 12], unit="h")},
    )
    (ax,) = plot_spread_skill_ratio(card).axes
    lines = [line for line in ax.lines if line.get_label() in names]
    styles = {(str(ln.get_color()), ln.get_marker(), ln.get_linestyle()) for ln in lines}
    assert len(lines) == len(styles) == len(names)
    assert not ax.collections  # no band over the lines of so many variables


def test_spectra_over_a_small_grid_label_several_wavenumbers():
    """A small grid's zonal wavenumbers 1-12 span about a decade: its log axis labelled 10¹
    alone. Under two decades the ticks are 1-2-5 in plain numbers; over more, decades."""
    from verification.plots import plot_spectra

    def labelled(spectra: xr.Dataset) -> list[str]:
        ax = plot_spectra(spectra).axes[0]
        ax.figure.canvas.draw()
        low, high = ax.get_xlim()
        return [
            t.get_text()
            for t, x in zip(ax.get_xticklabels(), ax.get_xticks(), strict=True)
            if low <= x <= high and t.get_text()
        ]

    small = spectra_of(1.0, "zonal_wavenumber")
    small = small.reindex(zonal_wavenumber=np.arange(1.0, 13.0), fill_value=1.0)
    assert labelled(small) == ["1", "2", "5", "10"]
    wide = small.reindex(zonal_wavenumber=np.geomspace(1.0, 1000.0, 20), fill_value=1.0)
    assert len(labelled(wide)) == 4  # 10^0 ... 10^3
