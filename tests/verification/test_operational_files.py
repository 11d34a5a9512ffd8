"""Operational files of other producers as they arrive, through verify (the QA walkthrough)."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from test_operational_ensembles import (
    CONFIG,
    SETTINGS,
    fair_crps_of_offsets,
    weatherbench2_netcdf,
    write_ens_grib,
)

from pipeline.alignment import align_with_truth
from pipeline.errors import InputError, StoreError
from pipeline.sources.synthetic import synthetic_dataset
from pipeline.store import ingest
from verification.run import open_forecast_any, verify_store
from verification.scorecard import verify


@pytest.fixture(scope="module")
def fields():
    return synthetic_dataset(CONFIG).load()


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    path = tmp_path_factory.mktemp("truth") / "analysis.zarr"
    ingest(CONFIG.to_spec(), path, progress=False)
    return path


def test_a_grib_of_several_starts_verifies_against_a_truth_chunked_by_time(fields, tmp_path):
    """A GRIB of two starts has time and step dims, so its source marks the (time, step)
    cells a message holds; that mark stayed on the forecast and on the paired truth, whose
    init_time chunks (from the truth's time chunks) it did not share: every multi-start
    ENS GRIB failed with "inconsistent chunks along dimension init_time"."""
    grib = tmp_path / "two_starts.grib"
    with open(grib, "wb") as out:
        for start in (0, 1):
            part = write_ens_grib(tmp_path / f"{start}.grib", fields, range(4), init_index=start)
            out.write(part.read_bytes())
    forecast = open_forecast_any(grib)
    analysis = fields.chunk({"time": 1})
    paired = align_with_truth(forecast, analysis)
    assert set(paired.truth.coords) == {"init_time", "lead_time", "valid_time", "level"} | {
        "latitude",
        "longitude",
    }
    card = verify(forecast, analysis, SETTINGS)["scorecard"].to_dataset()
    np.testing.assert_allclose(card["fair_crps"], fair_crps_of_offsets(range(4)), rtol=1e-4)


def test_a_zarr_ensemble_whose_variables_are_chunked_apart_verifies(fields, store, tmp_path):
    """xarray writes each variable of a Zarr in chunks of its own size (a field with a level
    dim gets smaller ones): verify stopped every such ensemble with a traceback,
    "inconsistent chunks along dimension init_time", before scoring anything."""
    ensemble = weatherbench2_netcdf(fields)
    z = ensemble["2m_temperature"].expand_dims(level=[500.0], axis=3) * 0 + 5e4
    ensemble = ensemble.assign(geopotential=z.assign_attrs(units="m**2 s**-2"))
    path = tmp_path / "wb2.zarr"
    chunks = {"geopotential": {"chunks": (3, 1, 3, 1, 5, 5)}}  # t2m's: the whole array
    ensemble.to_zarr(path, consolidated=False, encoding=chunks)
    scores = verify_store(path, store, tmp_path / "scores.nc", config=SETTINGS)
    crps = scores.tree["scorecard"]["fair_crps"].sel(variable="t2m")
    np.testing.assert_allclose(crps, fair_crps_of_offsets(range(3)), rtol=1e-4)


def test_a_file_of_coordinates_only_is_refused_naming_it(store, tmp_path):
    """A NetCDF whose write failed after its coordinates (xarray cannot write float16 to
    NetCDF, say) holds no variables: it stopped verify with a KeyError on 'lead_time'."""
    empty = tmp_path / "empty.nc"
    coords = {"time": CONFIG.start, "step": np.timedelta64(0, "h"), "number": [0, 1]}
    xr.Dataset(coords={**coords, "latitude": [50.0], "longitude": [0.0]}).to_netcdf(empty)
    with pytest.raises(InputError, match=r"empty\.nc: .*no data variables"):
        verify_store(empty, store, tmp_path / "scores.nc", config=SETTINGS)
    assert not (tmp_path / "scores.nc").exists()


def test_a_forecast_or_reference_of_no_known_layout_is_named(fields, store, tmp_path):
    """With --reference either file may be the one wxens cannot read: the error named
    neither ("cannot tell the forecast layout of a dataset with dims ...")."""
    write_ens_grib(tmp_path / "ens.grib", fields, range(3))
    fields[["t2m"]].isel(time=[0, 1]).to_netcdf(tmp_path / "analysis_like.nc")
    for forecast, reference, named in (
        ("analysis_like.nc", None, "analysis_like.nc"),
        ("ens.grib", "analysis_like.nc", "the reference .*analysis_like.nc"),
    ):
        with pytest.raises(InputError, match=rf"{named}: cannot tell the forecast layout"):
            verify_store(
                tmp_path / forecast,
                store,
                tmp_path / "scores.nc",
                config=SETTINGS,
                reference=None if reference is None else tmp_path / reference,
            )


def test_a_truth_given_as_the_analyses_file_says_to_ingest_it(fields, tmp_path):
    """--truth era5.grib (the file, not a store of it) said "not a Zarr store (StoreError:
    ...: no Zarr store there)", without the way on."""
    grib = write_ens_grib(tmp_path / "ens.grib", fields, range(3))
    with pytest.raises(StoreError, match=r"ens\.grib: not a Zarr store but a file.*wxens ingest"):
        verify_store(grib, grib, tmp_path / "scores.nc", config=SETTINGS)
    assert not (tmp_path / "scores.nc").exists()
