"""``wxens verify --units``: the printed table and the report in other units, the scores file
untouched."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from matplotlib.collections import QuadMesh
from verification_cases import verify_command

import pipeline.forecast_store as forecast_store
import verification.run
from flows.cli import main as wxens
from pipeline.errors import InputError
from pipeline.forecast_store import ForecastProvenance, write_forecast
from pipeline.store import ingest
from verification.output import spectrum_units, unit_factors
from verification.report import report_figures

NOISE_PA, NOISE_K = 100.0, 1.0


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    """An analysis of msl (Pa) and t2m (K), and members = truth + Gaussian noise."""
    root = tmp_path_factory.mktemp("units")
    rng = np.random.default_rng(0)
    times = pd.date_range("2020-01-01", periods=12, freq="1h")
    dims = ("time", "latitude", "longitude")
    shape = (12, 4, 5)
    truth = xr.Dataset(
        {
            "msl": (dims, 101_000 + 500 * rng.standard_normal(shape), {"units": "Pa"}),
            "t2m": (dims, 280 + rng.standard_normal(shape), {"units": "K"}),
        },
        coords={"time": times, "latitude": np.linspace(50, 55, 4), "longitude": np.arange(5.0)},
    ).astype("float32")
    truth.to_netcdf(root / "truth.nc")
    ingest(root / "truth.nc", root / "truth.zarr", progress=False)
    leads = pd.to_timedelta([1, 2], unit="h")
    at = [
        xr.concat(
            [truth.sel(time=t + lead, drop=True) for lead in leads], dim=leads.rename("lead_time")
        )
        for t in times[:6]
    ]
    members = xr.concat(at, dim=times[:6].rename("init_time")).expand_dims(member=4)
    members = members.transpose("init_time", "member", "lead_time", ...)
    members["msl"] = members.msl + NOISE_PA * rng.standard_normal(members.msl.shape)
    members["t2m"] = members.t2m + NOISE_K * rng.standard_normal(members.t2m.shape)
    provenance = ForecastProvenance(
        generator="noise", checkpoint_digest="none", sampler="exact", nfe=0, seed=0
    )
    write_forecast(root / "forecast.zarr", members.astype("float32"), provenance)
    return root


def printed_crps(out: str) -> dict[tuple[str, str], float]:
    """(variable, lead in hours) -> the printed fair CRPS (the column after the lead)."""
    lines = out.splitlines()
    header = next(
        i for i, line in enumerate(lines) if line.split()[:3] == ["variable", "lead", "(h)"]
    )
    values = {}
    for line in lines[header + 1 :]:
        tokens = line.split()
        if len(tokens) < 3 or not tokens[1].replace(".", "", 1).isdigit():
            break
        values[tokens[0], tokens[1]] = float(tokens[2])
    return values


def verify(root, *extra, every_group: bool = False) -> list[str]:
    """``wxens verify`` of the module's stores into ``scores.nc``."""
    files = (root / "forecast.zarr", root / "truth.zarr", root / "scores.nc")
    return verify_command(*files, *extra, every_group=every_group)


@pytest.mark.parametrize("units", [["msl=hPa"], ["hPa"], ["msl=hPa", "t2m=degC"]])
def test_pressure_scores_print_in_hpa_and_are_stored_in_pa(stores, capsys, units):
    assert wxens(verify(stores, *[a for u in units for a in ("--units", u)])) == 0
    out = capsys.readouterr().out
    assert "msl: scores printed in hPa (x 0.01 of the stored values)" in out
    shown = printed_crps(out)
    rows = [line.split() for line in out.splitlines() if line.split()[:1] == ["msl"]]
    assert rows and all(row[-1] == "hPa" for row in rows)  # the unit column says so
    stored = xr.open_datatree(stores / "scores.nc")["scorecard"].to_dataset().fair_crps
    for lead in ("1", "2"):
        pa = float(stored.sel(variable="msl", lead_time=pd.Timedelta(hours=int(lead))))
        # members = truth + N(0, s^2): CRPS = s (2 phi(0) - 1/sqrt(pi)) = 0.234 s, in Pa
        assert 0.15 * NOISE_PA < pa < 0.35 * NOISE_PA
        assert shown["msl", lead] == pytest.approx(pa / 100, rel=1e-3)  # 4 digits printed
        kelvin = float(stored.sel(variable="t2m", lead_time=pd.Timedelta(hours=int(lead))))
        assert shown["t2m", lead] == pytest.approx(kelvin, rel=1e-3)  # K and degC: same CRPS


def test_unknown_units_and_variables_are_refused(stores, capsys):
    assert wxens(verify(stores, "--units", "msl=furlong")) == 2
    assert "msl is in 'Pa', which does not convert to 'furlong'" in capsys.readouterr().err
    assert wxens(verify(stores, "--units", "sp=hPa")) == 2
    assert "holds no variable 'sp'" in capsys.readouterr().err
    with pytest.raises(InputError, match="no variable of the truth"):
        unit_factors(["kg kg-1"], {"msl": "Pa", "t2m": "K"})
    assert unit_factors(["z500=m2 s-2", "Pa"], {"z": "m**2 s**-2", "msl": "hPa"}) == {
        "z": ("m2 s-2", 1.0),
        "msl": ("Pa", 100.0),
    }


def unit_read(card: xr.Dataset, name: str, channel: str) -> str | None:
    """The unit a reader of the file finds for ``name`` at ``channel``: the score's ``units``
    attribute, or where it names a coordinate of per-variable units, that coordinate's."""
    per_variable = card[name].attrs.get("units_per_variable")
    if per_variable is not None:
        return str(card[per_variable].sel(variable=channel).values)
    return card[name].attrs.get("units")


def test_the_scores_file_gives_every_score_a_real_unit_per_variable(stores):
    """The scores in the variable's units once read units="variable" in scores.nc, which no
    CF reader takes for a unit, and ratios, probabilities and counts had none."""
    assert wxens(verify(stores, "--interval-level", "0.9")) == 0
    card = xr.open_datatree(stores / "scores.nc")["scorecard"].to_dataset()
    assert card.variable_units.to_series().to_dict() == {"msl": "Pa", "t2m": "K"}
    crps = ("fair_crps", "fair_crps_low", "fair_crps_high", "ecdf_crps")
    in_variable_units = {*crps, "ensemble_mean_rmse", "ensemble_mean_error", "ensemble_spread"}
    assert in_variable_units <= set(card.data_vars)
    for name in card.data_vars:
        if name in in_variable_units:
            want = {"msl": "Pa", "t2m": "K"}
        else:  # ratios, skill, Brier scores, rank flatness, counts
            want = {"msl": "1", "t2m": "1"}
        got = {c: unit_read(card, name, c) for c in ("msl", "t2m")}
        assert got == want, name
        assert card[name].attrs.get("units") in ("1", None), name  # no unit of one variable
    assert wxens(verify(stores, "--variables", "t2m")) == 0  # one variable: its unit
    card = xr.open_datatree(stores / "scores.nc")["scorecard"].to_dataset()
    assert card.fair_crps.attrs["units"] == card.ensemble_spread.attrs["units"] == "K"
    assert card.spread_skill_ratio.attrs["units"] == "1"



def test_the_maps_and_the_other_groups_carry_real_units_too(stores):
    """The maps (members and truth in the variables' units) read units as the scorecard
    does; the energy score (of standardized channels) and the error floor are "1"."""
    extra = ("--physics-init-times", "1", "--error-surrogate-replicas", "4")
    assert wxens(verify(stores, *extra, every_group=True)) == 0
    tree = xr.open_datatree(stores / "scores.nc")
    maps = tree["maps"].to_dataset()
    for name in ("forecast", "truth"):
        assert {c: unit_read(maps, name, c) for c in ("msl", "t2m")} == {"msl": "Pa", "t2m": "K"}
    for group, name in (("multivariate", "energy_score"), ("rank_floor", None)):
        ds = tree[group].to_dataset()
        for da in [ds[name]] if name else ds.data_vars.values():
            assert da.attrs["units"] == "1", (group, da.name)


def test_the_physics_lines_open_the_forecast_store_once(stores, capsys, monkeypatch):
    """After scoring (one opening), the physics lines opened the forecast store for its
    provenance and again for its latitudes (is a --balance fix possible): one gives both."""
    opened = []
    real = forecast_store.open_forecast

    def open_forecast(path, **kwargs):
        opened.append(path)
        return real(path, **kwargs)

    for module in (forecast_store, verification.run):  # the physics lines', the scoring's
        monkeypatch.setattr(module, "open_forecast", open_forecast)
    assert wxens(verify(stores, "--physics-init-times", "1")) == 0
    assert "physics: " in capsys.readouterr().out
    assert [str(p) for p in opened] == [str(stores / "forecast.zarr")] * 2


@pytest.mark.parametrize(
    ("units", "per_metre", "power"),
    [
        ("K", True, "K2 m"),
        ("Pa", True, "Pa2 m"),
        ("m2 s-2", True, "m5 s-4"),
        ("m s-1", True, "m3 s-2"),
        ("1", True, "m"),
        ("K", False, "K2"),
        ("m2 s-2", False, "m4 s-4"),
        ("kg kg-1", False, "1"),
        ("%", True, None),
        ("kg m**-2", True, None),
        ("", True, None),
    ],
)
def test_a_spectrums_units_are_the_variables_squared_times_metres_on_a_zonal_one(
    units, per_metre, power
):
    assert spectrum_units(units, per_metre) == power


def test_the_spectra_in_the_scores_file_have_their_powers_units(stores):
    """The spectra's power had no units in scores.nc. On this regional grid (an isotropic
    spectrum: the variance in each wavenumber ring) they are the variable's squared."""
    assert wxens(verify(stores, "--no-energy-score", every_group=True)) == 0
    spectra = xr.open_datatree(stores / "scores.nc")["spectra"].to_dataset()
    assert spectra.power_units.to_series().to_dict() == {"msl": "Pa2", "t2m": "K2"}
    for name in ("forecast_power", "truth_power"):
        assert {c: unit_read(spectra, name, c) for c in ("msl", "t2m")} == {
            "msl": "Pa2",
            "t2m": "K2",
        }
        assert "units" not in spectra[name].attrs  # two units: none for the whole array
    assert spectra.spectral_ratio.attrs["units"] == "1"
    assert wxens(verify(stores, "--variables", "t2m", every_group=True)) == 0
    spectra = xr.open_datatree(stores / "scores.nc")["spectra"].to_dataset()
    assert spectra.forecast_power.attrs["units"] == "K2"


def report_of(root, *units: str) -> str:
    """The report of ``wxens verify`` (every group: maps and spectra too) with ``--units``
    ``units``, its time stamp taken out."""
    path = root / "report.html"
    asked = [a for u in units for a in ("--units", u)]
    assert wxens(verify(root, "--report", str(path), *asked, every_group=True)) == 0
    return re.sub(r"generated [^<]* by wxens", "generated by wxens", path.read_text())


def skill_crps(report: str) -> dict[tuple[str, str], float]:
    """(variable with its unit, lead in hours) -> the fair CRPS of the report's skill table."""
    table = re.search(r"<table class='scores'>(.*?)</table>", report).group(1)
    values, label = {}, ""
    for row in re.findall(r"<tr>(.*?)</tr>", table)[1:]:
        label = (re.findall(r"<th class='row'[^>]*>(.*?)</th>", row) or [label])[0]
        cells = re.findall(r"<td>(.*?)</td>", row)
        values[label, cells[0]] = float(cells[1])
    return values


def images(report: str) -> dict[str, str]:
    return dict(re.findall(r"<img alt='([^']+)' src='data:image/png;base64,([^']+)'", report))


@pytest.fixture(scope="module")
def report_without_units(stores) -> str:
    """:func:`report_of` the stores with no ``--units`` (two tests compare with it)."""
    return report_of(stores)


def test_the_report_follows_the_units_asked(stores, report_without_units):
    """--units t2m=degC printed the scorecard in degC while the report stayed in K: its
    table and figures now show the units asked, the scores file keeps the store's."""
    kept = report_without_units
    shown = report_of(stores, "t2m=degC", "msl=hPa")
    before, after = skill_crps(kept), skill_crps(shown)
    for lead in ("1", "2"):
        assert after["t2m (degC)", lead] == before["t2m (K)", lead]  # a difference: same
        assert after["msl (hPa)", lead] == pytest.approx(before["msl (Pa)", lead] / 100, 1e-3)
    card = xr.open_datatree(stores / "scores.nc")["scorecard"].to_dataset()
    assert card.variable_units.to_series().to_dict() == {"msl": "Pa", "t2m": "K"}
    old, new = images(kept), images(shown)
    assert old["Rank histograms"] == new["Rank histograms"]  # nothing in units
    for title in ("Scores by lead time", "Power spectra", "Members beside the truth"):
        assert old[title] != new[title], title


def test_the_report_is_unchanged_where_the_units_asked_are_the_stores(
    stores, report_without_units
):
    """Byte for byte, figures included: --units naming the store's own units converts
    nothing, as no --units (whose report is the one written before the report had units)."""
    assert report_of(stores, "t2m=K", "msl=Pa") == report_without_units


def panels(figure) -> dict[str, object]:
    """The axes of a figure by their title, colour bars by their label's first word."""
    return {ax.get_title() or ax.get_ylabel().split(" (")[0]: ax for ax in figure.axes}


def test_the_reports_figures_convert_scores_fields_and_powers(stores):
    """Scores by lead scale by the factor (no offset), the maps convert in full (K -> degC
    is 273.15 lower), the spectra's power scales by the factor squared; labels follow."""
    assert wxens(verify(stores, every_group=True)) == 0
    tree = xr.open_datatree(stores / "scores.nc")
    factors = unit_factors(["t2m=degC", "msl=hPa"], {"msl": "Pa", "t2m": "K"})
    kept = {item.title: panels(item.figure) for item in report_figures(tree)}
    shown = {item.title: panels(item.figure) for item in report_figures(tree, factors)}
    scores, new_scores = kept["Scores by lead time"], shown["Scores by lead time"]
    spectra, new_spectra = kept["Power spectra"], shown["Power spectra"]
    for name, unit, scale in (("t2m", "degC", 1.0), ("msl", "hPa", 0.01)):
        assert new_scores[name].get_ylabel() == f"score ({unit})"
        for line, new in zip(scores[name].lines, new_scores[name].lines, strict=True):
            np.testing.assert_allclose(new.get_ydata(), scale * line.get_ydata())
        assert new_spectra[name].get_ylabel() == f"power ({unit}²)"
        for line, new in zip(spectra[name].lines, new_spectra[name].lines, strict=True):
            np.testing.assert_allclose(new.get_ydata(), scale**2 * line.get_ydata(), rtol=1e-6)
    maps, new_maps = kept["Members beside the truth"], shown["Members beside the truth"]
    for name, unit, convert in (
        ("t2m", "degC", lambda k: k - 273.15),
        ("msl", "hPa", lambda pa: pa / 100),
    ):
        assert maps[name].get_ylabel() == label_in_store(name)
        assert new_maps[name].get_ylabel() == f"{name} ({unit})"  # the colour bar
        for panel in ("truth", "member 0"):
            mesh, new = (
                next(c for c in m[f"{name}: {panel}"].collections if isinstance(c, QuadMesh))
                for m in (maps, new_maps)
            )
            np.testing.assert_allclose(new.get_clim(), [convert(v) for v in mesh.get_clim()])
            np.testing.assert_allclose(new.get_array(), convert(mesh.get_array()), rtol=1e-6)


def label_in_store(name: str) -> str:
    return {"t2m": "t2m (K)", "msl": "msl (Pa)"}[name]
