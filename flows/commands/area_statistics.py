"""The statistics ``wxens info`` prints of an analysis store, and what they are.

A store keeps the mean, std, min, max and tendency std of each variable over time and every
grid point, unweighted (:attr:`pipeline.analysis_store.AnalysisStore.statistics`, from the
ingest): the training normalises with them, so they stay as they are. On a regular
latitude-longitude grid such a mean over-weights the poles, whose cells cover a fraction of
the area of the equator's; a forecaster reads an area mean, weighted by cos(latitude) as
WeatherBench 2 and wxens's scores weigh (:func:`verification.aggregation.latitude_weights`).
So info prints the mean and std weighted so, computed from the data in one dask compute,
beside the stored min, max and tendency std; a store too large to read for a summary
(:data:`WEIGHED_BYTES`) gets the stored figures, labelled per point, and the way to weigh
them (``wxens info --weighted``)."""

from __future__ import annotations

import dask
import xarray as xr

from pipeline.analysis_store import AnalysisStore
from pipeline.disk_space import size_text
from pipeline.progress import dask_bar
from pipeline.schema import LAT, LON, TIME
from verification.aggregation import latitude_weights

#: Bytes of data (as read, uncompressed) above which ``wxens info`` prints the stored,
#: unweighted statistics rather than reading the whole store to weigh its mean and std: it
#: reads about 90 MiB/s (1.1 GiB in 12 s on 2 cores), so 256 MiB takes about 3 s, while a
#: month of hourly global 0.25° 2 m temperature (3 GB) would take every info half a minute.
WEIGHED_BYTES = 256 * 2**20
#: The statistics weighed by area, each as the stored one it stands for.
WEIGHED = {"area_mean": "mean", "area_std": "std"}
#: The counts of NaN points :func:`area_statistics` returns: at every time, at some time.
NAN_POINTS = ["always", "ever"]


def shown_statistics(
    store: AnalysisStore, weigh: bool | None = None, progress: bool = False
) -> tuple[xr.Dataset, str, xr.Dataset | None]:
    """The statistics info prints of ``store`` (dims ``statistic[, level]``, as
    ``store.statistics``) and the lines saying what they are: the mean and std weighted by
    area where ``weigh`` (``--weighted``), or where it is None and the store's data is at
    most :data:`WEIGHED_BYTES`; else the stored ones alone (``wxens ingest``'s summary, which
    would read back all it wrote). ``progress``: a bar of the weighing's tasks on stderr.
    Third: the NaN points of :func:`area_statistics` where the data was read, else None."""
    stored = store.statistics
    data = store.dataset[list(stored.data_vars)]
    size = sum(v.nbytes for v in data.data_vars.values())
    if weigh is False or (weigh is None and size > WEIGHED_BYTES):
        how = f"`wxens info {store.path}`"
        if size > WEIGHED_BYTES:
            how = (
                f"the store's {size_text(size)} of data are more than info reads unasked "
                f"({size_text(WEIGHED_BYTES)}):\n           `wxens info --weighted {store.path}`"
            )
        what = (
            "statistics per point (unweighted), over all times: the ingest's, the training's "
            f"normalisation;\n           {how} weighs the mean and std by area (cos latitude)"
        )
        return stored, what, None
    weighed, nan_points = area_statistics(data, progress)
    shown = xr.concat([weighed, stored.drop_sel(statistic=list(WEIGHED.values()))], dim="statistic")
    what = (
        "statistics area_mean, area_std: weighted by area (cos latitude), over all times, from "
        "the data;\n           min, max, tendency_std: per point (unweighted), the ingest's"
    )
    return shown, what, nan_points


def area_statistics(data: xr.Dataset, progress: bool = False) -> tuple[xr.Dataset, xr.Dataset]:
    """The mean and std of each variable of ``data`` over time and the grid (per level),
    each point weighted by the area of its cell (cos latitude), NaNs skipped; dims
    ``statistic[, level]``, the statistics named as in :data:`WEIGHED`. Second, of each
    variable, how many grid points (of every level) are NaN at every time and at some time
    (dim ``nan`` of :data:`NAN_POINTS`): equal, a fixed mask such as land, which the stored
    count of NaN values does not tell. All in one dask compute, so each chunk is read once
    (the counts add a fraction of a second to a store's 2 s); where ``progress``, with a bar of its
    tasks on stderr (:func:`pipeline.progress.dask_bar`; a store past :data:`WEIGHED_BYTES`
    takes seconds a GiB), cleared once done so that it leaves the table alone."""
    weighted = data.weighted(latitude_weights(data[LAT]))
    nan = data.isnull()
    with dask_bar(progress, desc="area statistics", leave=False):
        mean, std, always, ever = dask.compute(
            weighted.mean((TIME, LAT, LON)),
            weighted.std((TIME, LAT, LON)),
            nan.all(TIME).sum(),
            nan.any(TIME).sum(),
        )
    statistics = xr.concat([mean, std], dim="statistic").assign_coords(statistic=list(WEIGHED))
    return statistics, xr.concat([always, ever], dim="nan").assign_coords(nan=NAN_POINTS)
