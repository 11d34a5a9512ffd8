"""What a plume at one point (``wxens plume``'s read, :func:`verification.plume.point_series`)
reads from a forecast store whose (initial time, lead) holds more than the chunk cap
(:data:`pipeline.chunking.MAX_CHUNK_BYTES`); results to benchmarks/results/plume_chunks.json.

A synthetic forecast store (``z`` on 4 levels and ``t2m``, 20 members, 2 initial times x 8
leads, 361 x 720: an (initial time, lead) of ``z`` is 83 MB as float32) is written with the
library's writer (:func:`pipeline.forecast_store.write_forecast`, from a lazy dataset, so
the generation holds a chunk or two); then a plume of ``z500`` and one of every channel at
London, each three times. Measured: the store's chunk shape, the chunks the plume touches and
their bytes uncompressed, the bytes the process read (``rchar`` of /proc/self/io: the
store's files, compressed) and the wall time. Run it with the library of another commit on
``PYTHONPATH`` (``PYTHONPATH=OTHER python benchmarks/plume_chunks.py --label before``) for
the layout before.

Run: ``python -m benchmarks.plume_chunks [--quick] [--out PATH] [--label WORDS]``.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import tempfile
import time
from pathlib import Path

import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr
import zarr

from pipeline.forecast_store import ForecastProvenance, write_forecast
from pipeline.transaction import reader
from verification.plume import nearest_point, point_series

RESULTS = Path(__file__).parent / "results" / "plume_chunks.json"
PROVENANCE = ForecastProvenance("flow_matching", "benchmark", "euler:nfe=2", 2, 0)
LEVELS = [300, 500, 700, 850]
LONDON = (51.5, -0.1)


def synthetic(members: int, n_lat: int, n_lon: int, leads: int = 8) -> xr.Dataset:
    """A lazy forecast of smooth fields plus member noise, one dask chunk an (init, lead)."""
    inits = pd.DatetimeIndex(["2019-01-05T00", "2019-01-05T12"])
    lat, lon = np.linspace(90, -90, n_lat), np.arange(n_lon) * 360 / n_lon
    rng = da.random.default_rng(0)
    shape = (inits.size, members, leads, len(LEVELS), n_lat, n_lon)
    chunks = (1, members, 1, len(LEVELS), n_lat, n_lon)
    base = 100.0 * np.cos(np.deg2rad(lat))[:, None] * np.sin(np.deg2rad(lon))[None, :]
    levels = 9000.0 - 10.0 * np.asarray(LEVELS, dtype="float64")[:, None, None]
    noise = rng.standard_normal(shape, chunks=chunks, dtype="float32")
    z = 5 * noise + (levels + base).astype("float32")
    t2m = 280 + noise[:, :, :, 0]
    dims = ("init_time", "member", "lead_time", "latitude", "longitude")
    coords = {
        "init_time": inits,
        "member": np.arange(members),
        "lead_time": pd.to_timedelta(np.arange(1, leads + 1) * 6, unit="h"),
        "level": LEVELS,
        "latitude": lat,
        "longitude": lon,
    }
    z = xr.DataArray(z, dims=dims[:3] + ("level",) + dims[3:], attrs={"units": "m2 s-2"})
    t2m = xr.DataArray(t2m, dims=dims, attrs={"units": "K"})
    return xr.Dataset({"z": z, "t2m": t2m}, coords=coords)


def read_chars() -> int:
    """Bytes this process has read through read(2) and kin so far (page cache or not)."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise RuntimeError("no rchar in /proc/self/io")


def touched(array: zarr.Array, at: dict[int, int], levels: int) -> tuple[int, int]:
    """Chunks of ``array`` a plume of ``levels`` levels at the axis indices ``at`` (axis ->
    index; the other axes whole, but for the first, one initial time) reads, and their
    bytes uncompressed."""
    count = 1
    for axis, (size, chunk) in enumerate(zip(array.shape, array.chunks, strict=True)):
        if axis == 0 or axis in at:
            continue  # one initial time; one latitude, one longitude
        extent = levels if array.ndim == 6 and axis == 3 else size
        count *= math.ceil(extent / chunk) if chunk < size else 1
    return count, count * math.prod(array.chunks) * array.dtype.itemsize


def plume(path: Path, channels: list[str] | None, repeats: int) -> dict[str, object]:
    walls, reads = [], []
    for _ in range(repeats):
        before, start = read_chars(), time.perf_counter()
        series = point_series(path, *LONDON, variables=channels)
        walls.append(time.perf_counter() - start)
        reads.append(read_chars() - before)
    group = zarr.open_group(reader(path), mode="r")
    lat, lon = nearest_point(group["latitude"][:], group["longitude"][:], *LONDON, path)
    names = list(series.data_vars)
    chunks, nbytes = 0, 0
    for name in {"z" if n.startswith("z") else n for n in names}:
        array = group[name]
        levels = sum(n.startswith("z") for n in names) if name == "z" else 1
        grid = {array.ndim - 2: lat, array.ndim - 1: lon}
        n, b = touched(array, grid, levels)
        chunks, nbytes = chunks + n, nbytes + b
    return {
        "channels": names,
        "chunks_touched": chunks,
        "bytes_of_chunks_touched_uncompressed": nbytes,
        "bytes_read_rchar": reads,
        "wall_s": [round(w, 3) for w in walls],
        "median_wall_s": round(statistics.median(walls), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a small store (checks the script)")
    parser.add_argument("--out", type=Path, default=None, help="the JSON written")
    parser.add_argument("--label", default="this commit", help="what library wrote the store")
    args = parser.parse_args()
    members, n_lat, n_lon = (3, 19, 36) if args.quick else (20, 361, 720)
    out = args.out or RESULTS.with_stem(RESULTS.stem + "-quick" * args.quick)
    forecast = synthetic(members, n_lat, n_lon)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "f.zarr"
        start = time.perf_counter()
        write_forecast(path, forecast, PROVENANCE)
        written = time.perf_counter() - start
        group = zarr.open_group(reader(path), mode="r")
        result = {
            "label": args.label,
            "store": {
                "members": members,
                "levels": len(LEVELS),
                "grid": [n_lat, n_lon],
                "init_times": 2,
                "leads": 8,
                "z_chunks": list(group["z"].chunks),
                "t2m_chunks": list(group["t2m"].chunks),
                "on_disk_bytes": sum(f.stat().st_size for f in path.rglob("*") if f.is_file()),
                "write_s": round(written, 2),
            },
            "plume_z500": plume(path, ["z500"], 3),
            "plume_every_channel": plume(path, None, 3),
        }
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
