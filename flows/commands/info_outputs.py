"""The lines ``wxens info`` writes of a ``wxens export`` copy or a ``wxens products`` output
(plain Zarr or CF NetCDF-4): what made it from which store (for products, what was asked:
the flags, initial times, title and last history line), its dims and its fields with
their units, so a forecaster handed the file knows what it is (not "ingest it first").
Heavy imports are made inside the functions, so ``wxens --help`` stays fast."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

#: The first bytes of a NetCDF-4 (HDF5) file.
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


def describe_output(path: Path, *, fields: bool = True) -> str | None:
    """What the export or products output at ``path`` holds; None where ``path`` is neither
    (a transactional store, a GRIB file, a scores file: told apart elsewhere). Without
    ``fields``, only what made it and from which store: the lines a plain copy of a forecast
    store adds to that store's own description (its initial times, complete or not)."""
    import xarray as xr

    from pipeline.store_export import EXPORT_ATTR
    from verification.product_output import PRODUCTS_ATTR

    engine = _engine(path)
    if engine is None:
        return None
    try:
        # consolidated=False: another tool's Zarr v3 store has no consolidated metadata, and
        # xarray's RuntimeWarning of it led `wxens info` of such a store (WeatherBench 2's)
        kwargs = {"consolidated": False} if engine == "zarr" else {}
        ds = xr.open_dataset(path, engine=engine, decode_timedelta=True, **kwargs)
    except Exception:  # not a dataset at its root: taken for none of these
        return None
    with ds:
        marks = ((EXPORT_ATTR, "export"), (PRODUCTS_ATTR, "products"))
        found = next(((m, v) for m, v in marks if m in ds.attrs), None)
        if found is None:
            return None
        mark, verb = found
        record = ds.attrs[mark]
        record = json.loads(record) if isinstance(record, str) else record
        origin = record.get("store") or record.get("forecast")
        lines = [f"{path}: wxens {verb} of {origin}"]
        if verb == "products":
            lines += _asked(record, ds.attrs)
        if fields:
            lines += _fields(ds)
    if verb == "export":
        lines.append(f"the store's own record: `wxens info {origin}`")
    return "\n".join(line.rstrip() for line in lines)


def _asked(record: dict, attrs: dict) -> list[str]:
    """The lines of what a products output was asked for, as far as its ``record``
    (:func:`verification.product_output.products_record`) and CF ``attrs`` say it: its
    title, the request as the ``wxens products`` flags that remake it (with how the forecast
    was read: ``--init-from-filename``, ``--members``, where recorded), the initial times
    asked and the history's last line. An older wxens recorded only the forecast, and a
    newer one may record a request this one cannot read (shown as recorded)."""
    import pandas as pd

    from pipeline.errors import InputError
    from pipeline.forecast_times import span
    from verification.product_output import ProductRequest, reading_flags

    lines = [f"title      {attrs['title']}"] if "title" in attrs else []
    if "request" in record:
        try:
            flags = ProductRequest.of(record["request"]).flags()
            read = reading_flags(record.get("init_from_filename"), record.get("members"))
            asked = shlex.join([*flags, *read])
        except InputError:
            asked = f"{record['request']!r} (as recorded)"
        lines.append(f"asked      {asked}")
    if "init_times" in record:
        times = record["init_times"]
        said = (
            "all the forecast's initial times" if times is None else span(pd.DatetimeIndex(times))
        )
        lines.append(f"inits      {said}")
    history = str(attrs.get("history", "")).strip().splitlines()
    return lines + ([f"made       {history[-1]}"] if history else [])


def _fields(ds) -> list[str]:
    """A line of ``ds``'s dims, then one per field: its dims, units and long name."""
    lines = ["dims       " + ", ".join(f"{d} {n}" for d, n in ds.sizes.items())]
    width = max(map(len, map(str, ds.data_vars)))
    for name, da in ds.data_vars.items():
        dims = f"({', '.join(map(str, da.dims))})"
        units = da.attrs.get("units", "(no units)")
        lines.append(f"{name:<{width}}  {dims} {units}  {da.attrs.get('long_name', '')}")
    return lines


def _engine(path: Path) -> str | None:
    """The xarray engine of ``path``: netcdf4 for a NetCDF-4 file, zarr for a plain Zarr
    store (its root ``zarr.json``, which a transactional store lacks); None otherwise."""
    if path.is_dir():
        return "zarr" if (path / "zarr.json").is_file() else None
    try:
        with open(path, "rb") as f:
            return "netcdf4" if f.read(len(HDF5_MAGIC)) == HDF5_MAGIC else None
    except OSError:
        return None
