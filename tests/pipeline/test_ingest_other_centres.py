"""Ingest of other centres' files: CF standard names, the user's --rename, --units and
--select, messages naming the file's own variables, kept NaNs reported, monthly means,
overlapping globs and NetCDF chunking. Each file is built here with xarray or eccodes."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import eccodes
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from flows.cli import main
from pipeline import normalize
from pipeline.errors import InputError
from pipeline.schema import channels
from pipeline.sources import Adjustments, adjust_sources, adjusted, files, resolve_source
from pipeline.store import ingest, open_store
from pipeline.timeaxis import MEAN_MONTH

LAT = [50.0, 51.0, 52.0]
LON = [-2.0, -1.0, 0.0, 1.0]
HOURS = pd.date_range("2021-01-01", periods=6, freq="h")


def field(n_times: int, *extra: int, seed: int = 0, mean: float = 280.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(mean, 3.0, (n_times, *extra, len(LAT), len(LON))).astype("float32")


def write(path: Path, name: str, data: np.ndarray, attrs: dict, **coords) -> xr.Dataset:
    dims = ("time", *coords.pop("extra_dims", ()), "lat", "lon")
    ds = xr.Dataset(
        {name: (dims, data, attrs)},
        coords={"time": coords.pop("time", HOURS), "lat": LAT, "lon": LON, **coords},
    )
    ds.to_netcdf(path)
    return ds


def cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["ingest", *args, "--no-progress"])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def stored(path: Path, name: str) -> np.ndarray:
    return open_store(path).dataset[name].values


# CF standard names


def test_standard_name_at_two_metres_is_t2m(tmp_path, capsys):
    data = field(6)
    write(
        tmp_path / "forcing.nc",
        "Tair",
        data,
        {"standard_name": "air_temperature", "units": "K"},
        height=((), 2.0, {"standard_name": "height", "units": "m"}),
    )
    code, _, err = cli(capsys, str(tmp_path / "forcing.nc"), "--store", str(tmp_path / "s.zarr"))
    assert code == 0, err  # was: none of its variables ['Tair'] is one wxens knows
    np.testing.assert_array_equal(stored(tmp_path / "s.zarr", "t2m"), data)


def test_standard_names_on_pressure_levels(tmp_path):
    data = field(6, 2)
    write(
        tmp_path / "upper.nc",
        "TT",
        data,
        {"standard_name": "air_temperature", "units": "K"},
        extra_dims=("p",),
        p=("p", [85000.0, 50000.0], {"standard_name": "air_pressure", "units": "Pa"}),
    )
    store = ingest(tmp_path / "upper.nc", tmp_path / "s.zarr", progress=False)
    assert store.dataset["t"].dims == ("time", "level", "latitude", "longitude")
    assert store.dataset["level"].values.tolist() == [500.0, 850.0]
    np.testing.assert_array_equal(store.dataset["t"].sel(level=850).values, data[:, 0])


def test_standard_name_without_a_height_is_left_to_the_user(tmp_path, capsys, caplog):
    data = field(6)
    write(tmp_path / "f.nc", "Tair", data, {"standard_name": "air_temperature", "units": "K"})
    code, _, err = cli(capsys, str(tmp_path / "f.nc"), "--store", str(tmp_path / "s.zarr"))
    assert code == 2 and "['Tair']" in err and "--rename OLD=NEW" in err
    assert (
        "f.nc: Tair, standard_name air_temperature without a pressure level or height, is none "
        "of ['t', 't2m']; if it is one, say which with rename= (--rename Tair=NAME)" in caplog.text
    )
    code, _, err = cli(
        capsys, str(tmp_path / "f.nc"), "--rename", "Tair=t2m", "--store", str(tmp_path / "s.zarr")
    )
    assert code == 0, err
    np.testing.assert_array_equal(stored(tmp_path / "s.zarr", "t2m"), data)


def test_a_daily_maximum_is_not_taken_for_the_temperature(tmp_path):
    attrs = {"standard_name": "air_temperature", "units": "K", "cell_methods": "time: maximum"}
    write(tmp_path / "tmax.nc", "tasmax", field(6), attrs, height=2.0)
    write(tmp_path / "tmp.nc", "TMP_2m", field(6, seed=1), {"units": "K"})
    with pytest.raises(InputError, match="none of its variables"):
        ingest(tmp_path / "tmax.nc", tmp_path / "s.zarr", progress=False)


# --rename, --units, --select


def test_missing_units_named_by_the_files_own_variable_then_declared(tmp_path, capsys):
    hpa = field(6, mean=1013.0)
    write(tmp_path / "slp.nc", "slp", hpa, {})
    code, _, err = cli(capsys, str(tmp_path / "slp.nc"), "--store", str(tmp_path / "s.zarr"))
    # was: variable 'msl' has no 'units' attribute; set it (expected 'Pa')
    assert code == 2 and "variable 'slp' (wxens 'msl') has no 'units'" in err
    assert "--units slp=UNITS" in err
    code, _, err = cli(
        capsys, str(tmp_path / "slp.nc"), "--units", "slp=hPa", "--store", str(tmp_path / "s.zarr")
    )
    assert code == 0, err
    np.testing.assert_allclose(stored(tmp_path / "s.zarr", "msl"), hpa * 100.0, rtol=1e-6)


def test_rename_and_units_together_by_either_name(tmp_path, capsys):
    celsius = field(6, mean=10.0)
    write(tmp_path / "x.nc", "T2", celsius, {})
    code, _, err = cli(
        capsys,
        str(tmp_path / "x.nc"),
        "--rename",
        "T2=t2m",
        "--units",
        "t2m=degC",
        "--store",
        str(tmp_path / "s.zarr"),
    )
    assert code == 0, err
    np.testing.assert_allclose(stored(tmp_path / "s.zarr", "t2m"), celsius + 273.15, rtol=1e-6)
    assert "[units t2m=degC; rename T2=t2m]" in open_store(tmp_path / "s.zarr").dataset.attrs[
        "source"
    ].replace("\n", " ")


def test_units_by_the_canonical_name_of_one_variable(tmp_path, capsys, caplog):
    """``--units t2m=degC`` on a file whose ``2m_temperature`` is read as ``t2m`` was refused
    with "no variable 't2m'": the canonical name, as ``wxens info`` shows it, names the one
    variable read as it (the log line names that variable)."""
    celsius = field(6, mean=10.0)
    write(tmp_path / "wb.nc", "2m_temperature", celsius, {"units": "K"})
    caplog.set_level(logging.INFO, logger=adjusted.__name__)
    logging.getLogger(adjusted.__name__).addHandler(caplog.handler)
    try:
        code, _, err = cli(
            capsys, str(tmp_path / "wb.nc"), "--units", "t2m=degC", "--store", str(tmp_path / "s")
        )
    finally:
        logging.getLogger(adjusted.__name__).removeHandler(caplog.handler)
    assert code == 0, err
    np.testing.assert_allclose(stored(tmp_path / "s", "t2m"), celsius + 273.15, rtol=1e-6)
    assert "2m_temperature (--units t2m) in degC, not 'K'" in caplog.text, caplog.text


def test_units_by_a_canonical_name_several_variables_share_is_refused(tmp_path):
    """Two variables read as t2m: ``--units t2m`` names neither, and the refusal says so."""
    ds = xr.Dataset(
        {name: (("time", "lat", "lon"), field(6)[:, :, :], {}) for name in ("2t", "tas")},
        coords={"time": HOURS, "lat": LAT, "lon": LON},
    )
    ds.to_netcdf(tmp_path / "two.nc")
    with pytest.raises(InputError, match=r"'t2m' is the canonical name of \['2t', 'tas'\]"):
        adjust_sources([tmp_path / "two.nc"], Adjustments(units={"t2m": "K"}))


def test_misspelt_or_malformed_adjustments_are_refused(tmp_path, capsys):
    write(tmp_path / "slp.nc", "slp", field(6, mean=1013.0), {})
    cases = {
        (
            "--units",
            "sl=hPa",
        ): "units= (--units sl=...): it has no variable 'sl' (units= takes ['msl', 'slp']:",
        ("--rename", "slp"): "--rename: 'slp' is not OLD=NEW",
        ("--select", "number=1"): "select= (--select number=...): it has no dimension 'number'",
    }
    for args, message in cases.items():
        code, _, err = cli(capsys, str(tmp_path / "slp.nc"), *args, "--store", str(tmp_path / "s"))
        assert code == 2 and message in err, err
    assert not (tmp_path / "s").exists()


def test_a_rename_to_a_name_outside_the_vocabulary_is_refused(tmp_path, capsys):
    """``--rename geopotential=zz`` on a file whose ``geopotential`` has long_name
    "Geopotential" stored it as ``z`` and said nothing: the long name mapped it past the
    rename. A store holds canonical names only, so the rename is refused, naming it, why and
    the names it may take; a rename of what the file lacks is refused naming its variables."""
    data = field(6, 2, mean=5.5e4)
    attrs = {"long_name": "Geopotential", "units": "m2 s-2"}
    write(tmp_path / "g.nc", "geopotential", data, attrs, extra_dims=("level",), level=[500, 850])
    store = str(tmp_path / "s.zarr")
    code, _, err = cli(
        capsys, str(tmp_path / "g.nc"), "--rename", "geopotential=zz", "--store", store
    )
    assert code == 2, err
    assert "rename= (--rename geopotential=zz): 'zz' is no canonical name" in err, err
    assert "surface t2m, d2m, sst, msl, sp, u10, v10, tp, tcwv;" in err, err
    assert "on pressure levels z, gh, t, u, v, w, q, r" in err, err
    assert not Path(store).exists()
    code, _, err = cli(capsys, str(tmp_path / "g.nc"), "--rename", "geo=z", "--store", store)
    assert code == 2, err
    assert "rename= (--rename geo=...): it has no variable 'geo'" in err, err
    assert "['geopotential', 'lat', 'level', 'lon', 'time']" in err, err
    assert not Path(store).exists()
    for target in ("z", "geopotential"):  # a canonical name or a producer's: read as z
        code, _, err = cli(
            capsys,
            str(tmp_path / "g.nc"),
            "--rename",
            f"geopotential={target}",
            "--store",
            store,
            "--overwrite",
        )
        assert code == 0, err
        assert channels(open_store(store).dataset) == ["z500", "z850"]


def test_an_adjustment_may_name_what_only_one_source_holds(tmp_path):
    write(tmp_path / "slp.nc", "slp", field(6, mean=1013.0), {})
    write(tmp_path / "t.nc", "t2m", field(6), {"units": "K"})
    sources = adjust_sources(
        [tmp_path / "slp.nc", tmp_path / "t.nc"], Adjustments(units={"slp": "hPa"})
    )
    store = ingest(sources, tmp_path / "s.zarr", progress=False)
    assert set(store.dataset.data_vars) == {"msl", "t2m"}
    with pytest.raises(InputError, match="none of the inputs has a variable 'ps'") as refused:
        adjust_sources([tmp_path / "slp.nc", tmp_path / "t.nc"], Adjustments(units={"ps": "Pa"}))
    # the names each input holds: the first's alone were listed, t.nc's t2m left out
    slp, t = (f"netcdf:{tmp_path / name}" for name in ("slp.nc", "t.nc"))
    takes = f"units= takes ['msl', 'slp'] in {slp}, ['t2m'] in {t}:"
    assert takes in str(refused.value), refused.value


def test_select_one_member_of_a_netcdf_ensemble(tmp_path, capsys):
    data = field(6, 3)
    write(
        tmp_path / "ens.nc",
        "t2m",
        data,
        {"units": "K"},
        extra_dims=("realization",),
        realization=[0, 1, 2],
    )
    code, _, err = cli(capsys, str(tmp_path / "ens.nc"), "--store", str(tmp_path / "s.zarr"))
    assert code == 2 and "--select realization=VALUE" in err
    code, _, err = cli(
        capsys,
        str(tmp_path / "ens.nc"),
        "--select",
        "realization=2",
        "--store",
        str(tmp_path / "s.zarr"),
    )
    assert code == 0, err
    np.testing.assert_array_equal(stored(tmp_path / "s.zarr", "t2m"), data[:, 2])
    code, _, err = cli(
        capsys, str(tmp_path / "ens.nc"), "--select", "realization=5", "--store", "t.zarr"
    )
    assert code == 2 and "no such realization; it has 0, 1, 2" in err


def test_select_one_level_keeps_it_as_the_fields_level(tmp_path, capsys):
    """--select level=500 dropped the level: z on 500 and 850 hPa went in as a surface z."""
    data = field(6, 2, mean=5.5e4)
    attrs = {"units": "m2 s-2"}
    write(tmp_path / "z.nc", "z", data, attrs, extra_dims=("level",), level=[500.0, 850.0])
    args = ["--select", "level=500", "--store", str(tmp_path / "s.zarr")]
    code, _, err = cli(capsys, str(tmp_path / "z.nc"), *args)
    assert code == 0, err
    store = open_store(tmp_path / "s.zarr")
    assert channels(store.dataset) == ["z500"]
    np.testing.assert_array_equal(stored(tmp_path / "s.zarr", "z")[:, 0], data[:, 0])


def test_a_grib_file_of_one_pressure_level_keeps_it(tmp_path, uk_sample):
    """Geopotential at 500 hPa as the CDS gives it: cfgrib makes isobaricInhPa a scalar."""
    path = tmp_path / "z500.grib"
    with uk_sample.open("rb") as f, path.open("wb") as out:
        for _ in range(3):
            message = eccodes.codes_grib_new_from_file(f)
            for key, value in (("typeOfLevel", "isobaricInhPa"), ("level", 500), ("paramId", 129)):
                eccodes.codes_set(message, key, value)
            eccodes.codes_write(message, out)
            eccodes.codes_release(message)
    store = ingest(path, tmp_path / "s.zarr", progress=False)
    assert channels(store.dataset) == ["z500"]  # was: ['z'], a surface field
    assert store.dataset["z"].dims == ("time", "level", "latitude", "longitude")


def test_select_one_member_of_a_grib_ensemble(tmp_path, uk_sample):
    """Perturbed members 1..3 written with eccodes from the shipped sample's messages,
    member n offset by n K; cfgrib reads them with a ``number`` dimension."""
    path = tmp_path / "ens.grib"
    with uk_sample.open("rb") as f, path.open("wb") as out:
        for _ in range(3):
            message = eccodes.codes_grib_new_from_file(f)
            for number in (1, 2, 3):
                member = eccodes.codes_clone(message)
                eccodes.codes_set(member, "type", "pf")
                eccodes.codes_set(member, "number", number)
                values = eccodes.codes_get_values(member)
                eccodes.codes_set_values(member, values + number)
                eccodes.codes_write(member, out)
                eccodes.codes_release(member)
            eccodes.codes_release(message)
    source = adjust_sources([path], Adjustments(select={"number": 2}))
    store = ingest(source, tmp_path / "s.zarr", progress=False)
    member2 = ingest(uk_sample, tmp_path / "uk.zarr", time=slice(None, "2019-03-01T02"))
    np.testing.assert_allclose(
        store.dataset["t2m"].values, member2.dataset["t2m"].values + 2.0, atol=2e-3
    )


# what the user is told


def test_a_conversion_of_units_is_said(tmp_path, capsys, caplog):
    """A file in degC was stored in K without a word: info, the forecasts and the scores
    then spoke of K to a user who had given degC. The ingest names the conversion."""
    write(tmp_path / "c.nc", "t2m", field(6, mean=10.0), {"units": "degC"})
    logger = logging.getLogger(normalize.__name__)
    caplog.set_level(logging.INFO, logger=normalize.__name__)
    logger.addHandler(caplog.handler)
    try:
        code, _, err = cli(capsys, str(tmp_path / "c.nc"), "--store", str(tmp_path / "s.zarr"))
    finally:
        logger.removeHandler(caplog.handler)
    assert code == 0, err
    assert "'t2m' in 'degC', stored in K (+ 273.15)" in caplog.text, caplog.text


def test_kept_nan_count_is_printed(tmp_path, capsys):
    data = field(6)
    data[2, 1, 1] = data[4, 0, 0] = np.nan
    write(tmp_path / "nan.nc", "t2m", data, {"units": "K"})
    code, out, err = cli(
        capsys, str(tmp_path / "nan.nc"), "--allow-nan", "--store", str(tmp_path / "s.zarr")
    )
    assert code == 0, err
    assert "2 value(s) kept (--allow-nan): t2m 2" in out  # was: nothing said
    assert main(["info", str(tmp_path / "s.zarr")]) == 0
    assert "2 value(s) kept (--allow-nan): t2m 2" in capsys.readouterr().out  # was: not said


def info_of_nan_field(tmp_path: Path, capsys, name: str, data: np.ndarray) -> str:
    """What ``wxens info`` prints of a store ingested with ``--allow-nan`` from ``data``."""
    write(tmp_path / f"{name}.nc", "t2m", data, {"units": "K"})
    store = str(tmp_path / f"{name}.zarr")
    code, _, err = cli(capsys, str(tmp_path / f"{name}.nc"), "--allow-nan", "--store", store)
    assert code == 0, err
    assert main(["info", store]) == 0
    return capsys.readouterr().out


def test_info_tells_a_fixed_mask_from_scattered_nans(tmp_path, capsys):
    """A land mask (NaN at the same points at every time) read as a bare count of NaN
    values; info, which reads a small store to weigh its statistics, names the mask."""
    masked = field(6)
    masked[:, 0, :2] = np.nan  # 2 of the 12 points, at all 6 times
    out = info_of_nan_field(tmp_path, capsys, "mask", masked)
    assert "t2m NaN at the same 2 of 12 points (16.7 %) at every time (a mask" in out, out
    scattered = field(6)
    scattered[:, 0, 0] = np.nan
    scattered[2, 1, 1] = np.nan
    out = info_of_nan_field(tmp_path, capsys, "some", scattered)
    assert "t2m NaN at 2 of 12 points at some time, 1 at every time" in out, out


def test_monthly_means_have_a_calendar_month_step_and_only_true_gaps(tmp_path, capsys):
    months = pd.date_range("2018-01-01", periods=24, freq="MS").delete([6, 7])
    write(tmp_path / "monthly.nc", "t2m", field(22), {"units": "K"}, time=months)
    code, out, err = cli(capsys, str(tmp_path / "monthly.nc"), "--store", str(tmp_path / "s.zarr"))
    assert code == 0, err
    store = open_store(tmp_path / "s.zarr")
    assert store.native_step == MEAN_MONTH  # was 31 days, with 21 "missing" times
    assert store.missing_times == (pd.Timestamp("2018-07-01"), pd.Timestamp("2018-08-01"))
    assert "step 1 calendar month, 2 missing" in out


def test_overlapping_glob_gets_the_precise_duplicate_times_message(tmp_path, capsys):
    write(tmp_path / "a1.nc", "t2m", field(6), {"units": "K"})
    write(tmp_path / "a2.nc", "t2m", field(6), {"units": "K"}, time=HOURS + pd.Timedelta("4h"))
    precise = (
        "'t2m' has 2 duplicate time(s) across the inputs, first 2021-01-01T04:00, 2021-01-01T05:00"
    )
    code, _, err = cli(capsys, str(tmp_path / "a?.nc"), "--store", str(tmp_path / "s.zarr"))
    # was: the files of '.../a?.nc' do not combine into one dataset (Resulting object does
    # not have monotonic global indexes along dimension time)
    assert code == 2 and precise in err, err
    assert f"(in {tmp_path / 'a1.nc'} and {tmp_path / 'a2.nc'})" in err
    code, _, err = cli(
        capsys, str(tmp_path / "a1.nc"), str(tmp_path / "a2.nc"), "--store", str(tmp_path / "s")
    )
    assert code == 2 and precise in err, err


@pytest.mark.parametrize("stored_steps", [7, None])  # None: netCDF's default, whole variable
def test_netcdf_dask_chunks_hold_whole_stored_chunks(tmp_path, monkeypatch, stored_steps):
    monkeypatch.setattr(files, "CHUNK_BYTES", 24 * field(1).nbytes)  # 24 steps
    times = pd.date_range("2021-01-01", periods=60, freq="h")
    encoding = {"zlib": True}
    if stored_steps:
        encoding["chunksizes"] = (stored_steps, len(LAT), len(LON))
    ds = xr.Dataset(
        {"t2m": (("time", "lat", "lon"), field(60), {"units": "K"})},
        coords={"time": times, "lat": LAT, "lon": LON},
    )
    ds.to_netcdf(tmp_path / "c.nc", encoding={"t2m": encoding})
    opened = resolve_source(str(tmp_path / "c.nc")).open()
    stored = opened["t2m"].encoding["preferred_chunks"]["time"]
    edges = np.cumsum(opened["t2m"].chunks[0])[:-1]
    assert (edges % stored == 0).all(), (stored, opened["t2m"].chunks[0])
    assert len(opened["t2m"].chunks[0]) == (1 if stored == 60 else 3)  # 21 + 21 + 18 steps
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ingest(tmp_path / "c.nc", tmp_path / "s.zarr", progress=False)


def test_grib_dask_chunks_follow_bytes_not_steps(monkeypatch, uk_sample):
    """A GRIB file is split into chunks of about CHUNK_BYTES (cfgrib walks every message of
    the file for each chunk, so the sample's 4.8 MB stay one chunk, not 31 of 24 steps),
    and the chunked read gives cfgrib's own values."""
    one = resolve_source(str(uk_sample)).open()
    assert one["t2m"].chunks[0] == (744,)
    step_bytes = one["t2m"].nbytes // 744
    monkeypatch.setattr(files, "CHUNK_BYTES", 100 * step_bytes)
    split = resolve_source(str(uk_sample)).open()
    assert split["t2m"].chunks[0] == (100,) * 7 + (44,)
    bare = xr.open_dataset(uk_sample, engine="cfgrib", backend_kwargs={"indexpath": ""})
    np.testing.assert_array_equal(split["t2m"].values, bare["t2m"].values)
