"""A source an extension registers is one ``wxens ingest`` reads, and one the message
"no source reads ..." lists, after the built-ins (it listed the built-ins only); sources
are asked in registration order, so a path a built-in claims stays the built-in's."""

from __future__ import annotations

from tests.verification.test_extensions import install, wxens

SOURCES_MODULE = '''
import numpy as np
import pandas as pd
import xarray as xr

from pipeline.sources.base import SOURCES, Source


@SOURCES.register("flat")
class FlatSource(Source):
    """``flat:N``: N 6-hourly times of a constant 280 K t2m field."""

    name = "flat"
    reads = "'flat:N' (N times of a flat t2m)"

    def __init__(self, n):
        self.n = n

    @classmethod
    def claims(cls, spec):
        return spec.startswith("flat:") or spec.endswith(".nc")

    @classmethod
    def from_spec(cls, spec):
        return cls(int(spec.partition(":")[2]))

    def open(self):
        times = pd.date_range("2000-01-01", periods=self.n, freq="6h")
        t2m = np.full((self.n, 4, 6), 280.0)
        return xr.Dataset(
            {"t2m": (("time", "latitude", "longitude"), t2m, {"units": "K"})},
            coords={"time": times, "latitude": np.linspace(60, 50, 4),
                    "longitude": np.linspace(-10, 2, 6)},
        )

    @property
    def description(self):
        return f"flat:{self.n}"


@SOURCES.register("plain")
class PlainSource(FlatSource):
    """The ``plain:N`` source, that says nothing of what it reads."""

    name = "plain"
    reads = ""

    @classmethod
    def claims(cls, spec):
        return spec.startswith("plain:")
'''


def test_no_source_reads_lists_an_extension_s_source_after_the_built_ins(tmp_path):
    install(tmp_path, "wxens-flat", "flat", "wxens_flat", SOURCES_MODULE)
    done = wxens(tmp_path, "ingest", "flatx", "--store", str(tmp_path / "a.zarr"))
    assert done.returncode == 2, done.stderr
    assert (
        "no source reads 'flatx': give a GRIB (.grib/.grb/.grib2) path or glob, a NetCDF "
        "(.nc/.nc4) path or glob, a Zarr path (.zarr) or fsspec URL (gs://...zarr), "
        "'synthetic' (or 'synthetic:key=value,...'), 'flat:N' (N times of a flat t2m), or a "
        "plain input (The ``plain:N`` source, that says nothing of what it reads)"
    ) in done.stderr, done.stderr

    read = wxens(tmp_path, "ingest", "flat:3", "--store", str(tmp_path / "a.zarr"))
    assert read.returncode == 0, read.stderr


def test_a_path_a_built_in_source_claims_is_the_built_in_s(tmp_path):
    """The extension's source claims ``.nc`` too, but NetCDF is asked first: the missing
    file is NetCDF's error, not the flat source's ``int('')``."""
    install(tmp_path, "wxens-flat", "flat", "wxens_flat", SOURCES_MODULE)
    done = wxens(tmp_path, "ingest", str(tmp_path / "b.nc"), "--store", str(tmp_path / "b.zarr"))
    assert done.returncode == 2, done.stderr
    assert f"{tmp_path / 'b.nc'}: no such file or directory" in done.stderr, done.stderr
