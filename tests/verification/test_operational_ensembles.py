"""Ensembles as other centres deliver them, verified end to end: an ECMWF ENS GRIB with
the control and the perturbed members in one file, on one pressure level (a scalar
level coordinate); NetCDF ensembles with a ``realization`` or ``number`` member dimension
in the layouts producers write; a hindcast of one file per start date, read from its name.

The files are written message by message with ecCodes; every member is the truth plus
``OFFSET * number``, so the fair CRPS has a closed form: for members ``y + OFFSET * k``,
k = k0..k1, it is ``OFFSET * (mean k - sum_{i<j} (k_j - k_i) / (M (M - 1)))``.
"""

from __future__ import annotations

import re

import eccodes
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from flows.cli import main
from pipeline.errors import InputError
from pipeline.members import perturbed_members
from pipeline.sources.synthetic import SyntheticConfig, synthetic_dataset
from pipeline.start_dates import start_date
from pipeline.store import ingest
from verification.config import VerifyConfig
from verification.run import open_forecast_any, verify_store

SETTINGS = VerifyConfig(physics_init_times=0, energy_score=False, progress=False)
CONFIG = SyntheticConfig(
    n_lat=5, n_lon=5, lat_min=40.0, lat_max=60.0, lon_min=-10.0, lon_max=10.0, n_times=8
)
OFFSET = 10.0
STEPS_H = (0, 6, 12)


def fair_crps_of_offsets(numbers) -> float:
    """The fair CRPS of members ``y + OFFSET * k`` for k in ``numbers``, in closed form."""
    k = np.asarray(numbers, dtype=float)
    m = k.size
    pairs = sum(abs(a - b) for a in k for b in k) / 2
    return OFFSET * (np.abs(k).mean() - pairs / (m * (m - 1)))


def write_ens_grib(path, truth, numbers, *, levels=(500,), steps_h=STEPS_H, extra=(), init_index=0):
    """An ECMWF ENS GRIB 2 of ``z``: control (``type=cf``) for number 0, perturbed
    (``pf``) for the others, initialised at the truth's time ``init_index``, each member the
    truth at the valid time plus ``OFFSET * number``; ``extra`` adds (shortName,
    typeOfLevel, level) messages of member 0."""
    init = pd.Timestamp(truth.time.values[init_index])
    grid = {
        "Ni": truth.longitude.size,
        "Nj": truth.latitude.size,
        "latitudeOfFirstGridPointInDegrees": float(truth.latitude.max()),
        "latitudeOfLastGridPointInDegrees": float(truth.latitude.min()),
        "longitudeOfFirstGridPointInDegrees": float(truth.longitude.min()) % 360,
        "longitudeOfLastGridPointInDegrees": float(truth.longitude.max()) % 360,
        "iDirectionIncrementInDegrees": float(truth.longitude.diff("longitude")[0]),
        "jDirectionIncrementInDegrees": float(truth.latitude.diff("latitude")[0]),
    }
    fields = [(n, "z", "isobaricInhPa", lev) for n in numbers for lev in levels]
    with open(path, "wb") as out:
        for number, name, level_type, level in [*fields, *((0, *e) for e in extra)]:
            for step in steps_h:
                valid = init + pd.Timedelta(hours=step)
                if level_type == "isobaricInhPa":
                    field = truth[name].sel(time=valid, level=level) + OFFSET * number
                else:
                    field = truth["t2m"].sel(time=valid)
                handle = eccodes.codes_grib_new_from_samples("regular_ll_pl_grib2")
                keys = {
                    "centre": "ecmf",
                    "setLocalDefinition": 1,
                    "localDefinitionNumber": 1,
                    "stream": "enfo",
                    "type": "cf" if number == 0 else "pf",
                    "productDefinitionTemplateNumber": 1,
                    "number": number,
                    "numberOfForecastsInEnsemble": 50,
                    "dataDate": int(init.strftime("%Y%m%d")),
                    "dataTime": int(init.strftime("%H%M")),
                    "stepRange": step,
                    "typeOfLevel": level_type,
                    "level": level,
                    "shortName": name,
                    "bitsPerValue": 24,
                    **grid,
                }
                for key, value in keys.items():
                    eccodes.codes_set(handle, key, value)
                # GRIB rows run north to south
                eccodes.codes_set_values(handle, field.values[::-1].astype(float).ravel())
                eccodes.codes_write(handle, out)
                eccodes.codes_release(handle)
    return path


@pytest.fixture(scope="module")
def truth(tmp_path_factory):
    store = tmp_path_factory.mktemp("ens") / "analysis.zarr"
    ingest(CONFIG.to_spec(), store, progress=False)
    return store, synthetic_dataset(CONFIG).load()


@pytest.mark.parametrize("levels", [(500,), (500, 850)])
def test_control_and_perturbed_in_one_file_are_one_ensemble_control_first(truth, tmp_path, levels):
    store, fields = truth
    grib = write_ens_grib(tmp_path / "ens.grib", fields, range(5), levels=levels)
    opened = open_forecast_any(grib)
    assert opened["number"].values.tolist() == [0, 1, 2, 3, 4]
    control = xr.open_dataset(
        grib, engine="cfgrib", backend_kwargs={"indexpath": "", "filter_by_keys": {"type": "cf"}}
    )
    xr.testing.assert_equal(opened["z"].sel(number=0), control["z"].load())

    done = verify_store(grib, store, tmp_path / "scores.nc", config=SETTINGS)
    card = done.tree["scorecard"].to_dataset()
    assert done.tree.attrs["n_members"] == 5
    assert card["variable"].values.tolist() == [f"z{level}" for level in levels]
    assert card.sizes["lead_time"] == len(STEPS_H)
    np.testing.assert_allclose(card["fair_crps"], fair_crps_of_offsets(range(5)), rtol=1e-4)


def test_files_of_one_start_each_or_the_control_apart_are_one_ensemble(truth, tmp_path):
    """ENS as delivered: one file per start (their valid times overlap: 06 UTC is the first
    start's 6 h and the second's 0 h) or the control and the perturbed members in files
    apart. A glob of them was refused: "'z' has 3 duplicate time(s) across the inputs"."""
    store, fields = truth
    for start in (0, 1):
        write_ens_grib(tmp_path / f"start{start}.grib", fields, range(4), init_index=start)
    write_ens_grib(tmp_path / "ens_cf.grib", fields, [0])
    write_ens_grib(tmp_path / "ens_pf.grib", fields, range(1, 4))
    for glob, n_init in (("start*.grib", 2), ("ens_[cp]f.grib", 1)):
        done = verify_store(tmp_path / glob, store, tmp_path / f"{n_init}.nc", config=SETTINGS)
        assert (done.tree.attrs["n_members"], done.tree.attrs["n_init_times"]) == (4, n_init)
        card = done.tree["scorecard"].to_dataset()
        np.testing.assert_allclose(card["fair_crps"], fair_crps_of_offsets(range(4)), rtol=1e-4)


def test_members_perturbed_drops_the_control(truth, tmp_path, capsys):
    store, fields = truth
    grib = write_ens_grib(tmp_path / "ens.grib", fields, range(5))
    out = tmp_path / "scores.nc"
    code = main(
        ["verify", str(grib), "--truth", str(store), "--out", str(out), "--members", "perturbed"]
        + ["--physics-init-times", "0", "--no-energy-score", "--no-progress"]
    )
    assert code == 0, capsys.readouterr().err
    scores = xr.open_datatree(out)
    assert scores.attrs["n_members"] == 4
    np.testing.assert_allclose(
        scores["scorecard"]["fair_crps"], fair_crps_of_offsets(range(1, 5)), rtol=1e-4
    )


def test_perturbed_only_file_on_one_level_verifies(truth, tmp_path):
    store, fields = truth
    grib = write_ens_grib(tmp_path / "pf.grib", fields, range(1, 4), levels=(850,))
    done = verify_store(grib, store, tmp_path / "s.nc", config=SETTINGS)
    card = done.tree["scorecard"].to_dataset()
    assert card["variable"].values.tolist() == ["z850"]
    assert card["n_verified"].values.tolist() == [[CONFIG.n_lat * CONFIG.n_lon] * len(STEPS_H)]
    np.testing.assert_allclose(card["fair_crps"], fair_crps_of_offsets(range(1, 4)), rtol=1e-4)
    # no control to drop: every member stays
    assert perturbed_members(open_forecast_any(grib), grib).sizes["member"] == 3


def test_members_perturbed_refuses_a_file_that_does_not_name_its_control(truth, tmp_path):
    store, fields = truth
    members = xr.concat(
        [fields["z"].isel(time=slice(0, 3)) + OFFSET * k for k in range(3)], dim="realization"
    )
    ensemble = members.rename(time="valid").to_dataset(name="z")
    path = tmp_path / "ens.zarr"
    ensemble.expand_dims(time=fields.time.values[:1]).assign_coords(
        prediction_timedelta=("valid", pd.to_timedelta(STEPS_H, unit="h"))
    ).swap_dims(valid="prediction_timedelta").drop_vars("valid").to_zarr(path, consolidated=False)
    with pytest.raises(InputError, match="does not say which member is the control") as refused:
        verify_store(path, store, tmp_path / "s.nc", config=SETTINGS, members="perturbed")
    said = "verify all its members: members='all' (--members all)"
    assert str(refused.value).endswith(said)  # not unsaid


def test_members_perturbed_verifies_every_member_of_a_wxens_store(truth, tmp_path):
    """One verify schedule with ``members: perturbed`` (an ENS file's) refused a wxens
    store beside it ("does not say which member is the control"): a generator's members
    are all draws, none a control, so every one is verified."""
    store, fields = truth
    wxens_store(fields, tmp_path / "f.zarr")
    done = verify_store(
        tmp_path / "f.zarr", store, tmp_path / "s.nc", config=SETTINGS, members="perturbed"
    )
    assert done.tree.attrs["n_members"] == 4
    card = done.tree["scorecard"].to_dataset()
    np.testing.assert_allclose(card["fair_crps"], fair_crps_of_offsets(range(4)), rtol=1e-4)


def wxens_store(fields, path):
    """A wxens forecast store of ``z`` at 500 hPa: 4 members, the truth + OFFSET * k."""
    from pipeline.forecast_store import ForecastProvenance, write_forecast

    z = members_at_leads(fields, "z", 4, level=500)[:, :, :, None]
    inits = fields.time.values[0] + pd.to_timedelta(INITS_H, unit="h")
    dims = ("member", "init_time", "lead_time", "level", "latitude", "longitude")
    members = xr.Dataset(
        {"z": (dims, z.astype("float32"), {"units": "m2 s-2"})},
        coords={
            "member": np.arange(4),
            "init_time": inits,
            "lead_time": pd.to_timedelta(STEPS_H, unit="h"),
            "level": [500.0],
            "latitude": fields.latitude.values,
            "longitude": fields.longitude.values,
        },
    ).transpose("init_time", "member", "lead_time", "level", ...)
    made = ForecastProvenance(
        generator="noise", checkpoint_digest="none", sampler="exact", nfe=0, seed=0
    )
    write_forecast(path, members, made)
    return path


def test_a_grib_mixing_level_types_names_the_key_not_a_corrupt_download(truth, tmp_path):
    store, fields = truth
    grib = write_ens_grib(tmp_path / "mixed.grib", fields, [0], extra=[("z", "surface", 0)])
    with pytest.raises(InputError) as caught:
        open_forecast_any(grib)
    message = str(caught.value)
    assert "mixed.grib" in message and "typeOfLevel" in message and "grib_copy" in message
    assert "download" not in message


INITS_H = (0, 6)


def members_at_leads(fields, name, n_members, level=None):
    """``fields[name]`` + OFFSET * k as an array (member, init, lead, latitude, longitude)."""
    da = fields[name] if level is None else fields[name].sel(level=level)
    start = fields.time.values[0]
    rows = [
        da.sel(time=start + pd.to_timedelta(np.add(i, STEPS_H), unit="h")).values for i in INITS_H
    ]
    return np.stack(rows)[None] + OFFSET * np.arange(n_members)[:, None, None, None, None]


def cds_netcdf(fields):
    """The Copernicus data stores' NetCDF: number, forecast_reference_time, forecast_period
    (hours), pressure_level, valid_time(forecast_reference_time, forecast_period), and
    latitudes north to south."""
    z = members_at_leads(fields, "z", 4, level=500)[:, :, :, None, ::-1]
    dims = ("number", "forecast_reference_time", "forecast_period", "pressure_level")
    inits = fields.time.values[0] + pd.to_timedelta(INITS_H, unit="h")
    ds = xr.Dataset(
        {"z": ((*dims, "latitude", "longitude"), z.astype("float32"), {"units": "m**2 s**-2"})},
        coords={
            "number": np.arange(4),
            "forecast_reference_time": inits,
            "forecast_period": ("forecast_period", list(STEPS_H), {"units": "hours"}),
            "pressure_level": [500.0],
            "latitude": fields.latitude.values[::-1],
            "longitude": fields.longitude.values,
        },
    )
    valid = inits.values[:, None] + pd.to_timedelta(STEPS_H, unit="h").values[None]
    return ds.assign_coords(valid_time=(dims[1:3], valid))


def iris_netcdf(fields):
    """Iris / Met Office: realization, the valid time as the dimension with forecast_period
    along it, a scalar forecast_reference_time; one initial time."""
    t2m = members_at_leads(fields, "t2m", 3)[:, 0]
    valid = fields.time.values[0] + pd.to_timedelta(STEPS_H, unit="h")
    ds = xr.Dataset(
        {
            "air_temperature": (
                ("realization", "time", "latitude", "longitude"),
                t2m,
                {"units": "K"},
            )
        },
        coords={
            "realization": np.arange(3),
            "time": valid,
            "forecast_period": ("time", list(STEPS_H), {"units": "hours"}),
            "forecast_reference_time": fields.time.values[0],
            "latitude": fields.latitude.values,
            "longitude": fields.longitude.values,
        },
    )
    return ds.rename(air_temperature="t2m")


def weatherbench2_netcdf(fields):
    """WeatherBench 2 written to NetCDF: a realization dim without coordinate values and a
    numeric prediction_timedelta in hours."""
    dims = ("realization", "time", "prediction_timedelta", "latitude", "longitude")
    ds = xr.Dataset(
        {"2m_temperature": (dims, members_at_leads(fields, "t2m", 3), {"units": "K"})},
        coords={
            "time": fields.time.values[0] + pd.to_timedelta(INITS_H, unit="h"),
            "prediction_timedelta": ("prediction_timedelta", list(STEPS_H), {"units": "hours"}),
            "latitude": fields.latitude.values,
            "longitude": fields.longitude.values,
        },
    )
    return ds


def cfgrib_netcdf_with_realization(fields):
    """cfgrib's names, written to NetCDF by another tool: realization, time, step (hours)."""
    dims = ("realization", "time", "step", "latitude", "longitude")
    ds = xr.Dataset(
        {"t2m": (dims, members_at_leads(fields, "t2m", 3), {"units": "K"})},
        coords={
            "realization": np.arange(3),
            "time": fields.time.values[0] + pd.to_timedelta(INITS_H, unit="h"),
            "step": ("step", list(STEPS_H), {"units": "hours"}),
            "latitude": fields.latitude.values,
            "longitude": fields.longitude.values,
        },
    )
    return ds


@pytest.mark.parametrize(
    ("build", "n_members", "n_inits"),
    [
        (cds_netcdf, 4, len(INITS_H)),
        (iris_netcdf, 3, 1),
        (weatherbench2_netcdf, 3, len(INITS_H)),
        (cfgrib_netcdf_with_realization, 3, len(INITS_H)),
    ],
)
def test_netcdf_ensembles_with_a_realization_or_number_dim(
    truth, tmp_path, build, n_members, n_inits
):
    store, fields = truth
    path = tmp_path / "ens.nc"
    build(fields).to_netcdf(path)
    done = verify_store(path, store, tmp_path / "s.nc", config=SETTINGS)
    card = done.tree["scorecard"].to_dataset()
    assert done.tree.attrs["n_members"] == n_members
    assert done.tree.attrs["n_init_times"] == n_inits
    assert card.sizes["lead_time"] == len(STEPS_H)
    assert (card["n_verified"] == n_inits * CONFIG.n_lat * CONFIG.n_lon).all()
    np.testing.assert_allclose(card["fair_crps"], fair_crps_of_offsets(range(n_members)), rtol=1e-5)


def start_file(fields, name, start, n_valid, step, n_members):
    """One forecast as a file without initial time or lead: dims realization, time (the
    valid times from ``start``, every ``step``, with CF bounds), latitude, longitude."""
    valid = pd.date_range(start, periods=n_valid, freq=step)
    members = (
        fields[name].sel(time=valid).values + OFFSET * np.arange(n_members)[:, None, None, None]
    )
    ds = xr.Dataset(
        {
            name: (("realization", "time", "latitude", "longitude"), members, {"units": "K"}),
            "time_bnds": (("time", "bnds"), np.stack([valid.values, valid.values], axis=1)),
        },
        coords={"time": valid, "latitude": fields.latitude, "longitude": fields.longitude},
    )
    ds["time"].attrs["bounds"] = "time_bnds"
    ds["time"].encoding["units"] = "hours since 1900-01-01"
    return ds


def test_files_one_per_start_date_take_it_from_their_names(truth, tmp_path, capsys):
    store, fields = truth
    for hours in INITS_H:
        start = fields.time.values[0] + pd.Timedelta(hours=hours)
        name = f"fc_{pd.Timestamp(start):%Y%m%d%H}_t2m.nc"
        start_file(fields, "t2m", start, len(STEPS_H), "6h", 3).to_netcdf(tmp_path / name)
    out = tmp_path / "scores.nc"
    code = main(
        ["verify", str(tmp_path / "fc_*.nc"), "--truth", str(store), "--out", str(out)]
        + ["--init-from-filename", "fc_%Y%m%d%H", "--physics-init-times", "0"]
        + ["--no-energy-score", "--no-progress"]
    )
    assert code == 0, capsys.readouterr().err
    scores = xr.open_datatree(out)
    card = scores["scorecard"].to_dataset()
    assert scores.attrs["n_init_times"] == len(INITS_H) and scores.attrs["n_members"] == 3
    assert (card["lead_time"].values == pd.to_timedelta(STEPS_H, unit="h").values).all()
    assert (card["n_verified"] == len(INITS_H) * CONFIG.n_lat * CONFIG.n_lon).all()
    np.testing.assert_allclose(card["fair_crps"], fair_crps_of_offsets(range(3)), rtol=1e-5)


def test_overlapping_files_of_one_start_each_without_the_flag_name_it(truth, tmp_path, capsys):
    """Starts 6 h apart with leads to 12 h share valid times: without the flag, the glob was
    refused as duplicate times ("do two files overlap?"), naming no way to read them."""
    store, fields = truth
    for hours in INITS_H:
        start = fields.time.values[0] + pd.Timedelta(hours=hours)
        name = f"fc_{pd.Timestamp(start):%Y%m%d%H}_t2m.nc"
        start_file(fields, "t2m", start, len(STEPS_H), "6h", 3).to_netcdf(tmp_path / name)
    code = main(["verify", str(tmp_path / "fc_*.nc"), "--truth", str(store), "--out", "s.nc"])
    err = capsys.readouterr().err
    assert code == 2 and "duplicate time(s) across the inputs" in err, err
    assert "(init_from_filename= (--init-from-filename PATTERN))" in err, err


def test_seasonal_hindcast_of_calendar_months_pairs_each_month_with_its_own_truth(tmp_path):
    """Monthly means from 1 November of three years, the last across a leap February, so
    its leads (0, 30, 61, 92, 121 days) differ from the others' (.., 120 days)."""
    months = pd.date_range("1993-01-01", "1996-12-01", freq="MS")
    rng = np.random.default_rng(0)
    monthly = xr.Dataset(
        {"t2m": (("time", "latitude", "longitude"), 280 + rng.normal(size=(months.size, 3, 4)))},
        coords={"time": months, "latitude": [50.0, 51.0, 52.0], "longitude": [0.0, 1.0, 2.0, 3.0]},
    )
    monthly["t2m"].attrs["units"] = "K"
    monthly.astype("float32").to_netcdf(tmp_path / "monthly.nc")
    store = tmp_path / "monthly.zarr"
    ingest(str(tmp_path / "monthly.nc"), store, progress=False)
    for year in (1993, 1994, 1995):
        hindcast = start_file(monthly, "t2m", f"{year}-11-01", 5, "MS", 4)
        hindcast.to_netcdf(tmp_path / f"hindcast_{year}11.nc")
    done = verify_store(
        tmp_path / "hindcast_*.nc",
        store,
        tmp_path / "s.nc",
        config=SETTINGS,
        init_from_filename="hindcast_%Y%m",
    )
    card = done.tree["scorecard"].to_dataset()
    assert done.tree.attrs["n_init_times"] == 3 and not done.tree.attrs["missing_valid_times"]
    assert card["lead_time"].dt.days.values.tolist() == [0, 30, 61, 92, 120]
    assert (card["n_verified"] == 3 * 12).all()
    np.testing.assert_allclose(card["fair_crps"], fair_crps_of_offsets(range(4)), rtol=1e-5)


@pytest.mark.parametrize(
    ("name", "pattern", "start"),
    [
        ("sys5_19931101_t2m.nc", "%Y%m%d", "1993-11-01"),
        ("t2m_199311.nc", "t2m_%Y%m", "1993-11-01"),
        ("fc_2000-01-01T06.grib", "%Y-%m-%dT%H", "2000-01-01 06:00"),
        ("hindcast_Nov1993.nc", "%b%Y", "1993-11-01"),
        ("/data/2019/sys5_19931101.nc", "%Y%m%d", "1993-11-01"),
    ],
)
def test_start_date_is_read_anywhere_in_the_name(name, pattern, start):
    assert start_date(name, pattern) == pd.Timestamp(start)


@pytest.mark.parametrize(
    ("pattern", "message"),
    [("t2m_%Q", "cannot use ['%Q']"), ("t2m_", "holds no date directive")],
)
def test_a_start_date_pattern_it_cannot_read_is_refused(pattern, message):
    with pytest.raises(InputError, match=re.escape(message)):
        start_date("t2m_199311.nc", pattern)
    with pytest.raises(InputError, match="its name holds no start date"):
        start_date("t2m_199313.nc", "t2m_%Y%m")  # no month 13


def test_a_file_name_without_the_start_date_is_named(truth, tmp_path, capsys):
    store, fields = truth
    start_file(fields, "t2m", fields.time.values[0], 2, "6h", 2).to_netcdf(tmp_path / "fc_x.nc")
    code = main(
        ["verify", str(tmp_path / "fc_*.nc"), "--truth", str(store), "--out", "s.nc"]
        + ["--init-from-filename", "fc_%Y%m%d%H"]
    )
    err = capsys.readouterr().err
    assert code == 2 and "fc_x.nc: its name holds no start date of the form 'fc_%Y%m%d%H'" in err
