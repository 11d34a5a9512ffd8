"""Power spectra of gridded fields and the member/truth spectral ratio by wavenumber band.

Global grids (longitudes covering 360°) get **zonal** spectra along latitude circles;
regional grids **isotropic** 2-D spectra. Both are computed chunk by chunk (the whole
horizontal grid is one chunk in wxens stores; a field chunked across it is rechunked) and
reduce lazily. A ratio below 1 at high wavenumbers means members smoother than the truth
(blurring); above 1, noise.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from pipeline.schema import EARTH_RADIUS, INIT_TIME, LAT, LEAD_TIME, LON, MEMBER
from verification.aggregation import latitude_weights

ZONAL_WAVENUMBER = "zonal_wavenumber"
WAVENUMBER = "wavenumber"
BAND = "band"
BANDS = ("large", "medium", "small")
MASKED_TRUTH = (
    "the truth (or every member) has missing points inside the grid at every valid time "
    "(a masked field, such as land-only data): spectra need complete fields"
)
SPECTRUM_REASON = "no_spectrum"
"""The spectra group's coordinate along ``variable``: why a variable's power is NaN
(:data:`MASKED_TRUTH`), "" where it has a spectrum."""


def has_spectrum(field: xr.DataArray | xr.Dataset, min_points: int = 2) -> bool:
    """Whether ``field``'s grid has ``min_points`` latitudes and longitudes or more (a
    transect or a point has no spectrum)."""
    return field.sizes.get(LAT, 0) >= min_points and field.sizes.get(LON, 0) >= min_points


def complete_fields(
    forecast: xr.DataArray, truth: xr.DataArray
) -> tuple[xr.DataArray, xr.DataArray, xr.DataArray]:
    """``forecast`` (with ``member``) and ``truth`` only at the samples (initial time, lead
    and channel) whose truth is complete on the grid where some member holds a value, the
    samples the spectral check reads; and, per channel, whether it is masked: its truth
    holds values but no such sample (lazy where the fields are). A NaN point left every
    latitude circle through it out of a zonal spectrum (of the truth, not of members that
    fill land): such spectra contradicted the check's n/a (:data:`MASKED_TRUTH`)."""
    observed = truth.where(forecast.notnull().any(MEMBER))
    complete = observed.notnull().all([LAT, LON])
    samples = [d for d in (INIT_TIME, LEAD_TIME) if d in truth.dims]
    masked = truth.notnull().any([*samples, LAT, LON]) & ~complete.any(samples)
    return forecast.where(complete), truth.where(complete), masked


def with_reasons(spectra: xr.Dataset) -> xr.Dataset:
    """Computed ``spectra`` with ``masked`` (of :func:`complete_fields`) turned into the
    coordinate :data:`SPECTRUM_REASON`, which the report's figure and a reader of the file
    read."""
    masked = spectra["masked"]
    why = {"long_name": "why the variable has no spectrum (empty where it has one)"}
    reason = (masked.dims, np.where(masked.values, MASKED_TRUTH, ""), why)
    return spectra.drop_vars("masked").assign_coords({SPECTRUM_REASON: reason})


def is_global(longitude: xr.DataArray) -> bool:
    """Whether regular longitudes close the circle (n · Δλ = 360°)."""
    lon = np.sort(np.asarray(longitude, dtype=np.float64))
    if lon.size < 2:
        return False
    step = float(np.median(np.diff(lon)))
    return abs(lon.size * step - 360.0) < step / 2


def zonal_power_spectrum(field: xr.DataArray, *, max_abs_latitude: float = 60.0) -> xr.DataArray:
    """Zonal power spectrum along latitude circles, averaged (cos-lat weighted) over |φ| ≤ 60°.

    Per latitude, ``F_k = rfft(f)_k / N``, ``S_0 = C|F_0|²``, ``S_k = 2C|F_k|²`` (k ≥ 1),
    with ``C = 2πR cos φ`` the circle length, so that ``Σ_k S_k / C`` is the mean square
    of ``f`` along the circle (Parseval) and the wavelength of ``k`` is ``C/k``
    (WeatherBench 2 ``ZonalEnergySpectrum``). Dims: ``latitude, longitude`` replaced by
    ``zonal_wavenumber`` (0..N/2). Units: those of ``f`` squared times metres.
    """
    band = _grid_in_one_chunk(field).where(np.abs(field[LAT]) <= max_abs_latitude, drop=True)
    n = band.sizes[LON]
    circumference = 2 * np.pi * EARTH_RADIUS * np.cos(np.deg2rad(band[LAT]))

    def power(values: np.ndarray) -> np.ndarray:
        spectrum = np.abs(np.fft.rfft(values, axis=-1) / n) ** 2
        spectrum[..., 1 : (n + 1) // 2] *= 2.0  # both signs of k, except 0 and Nyquist
        return spectrum

    spectrum = xr.apply_ufunc(
        power,
        band,
        input_core_dims=[[LON]],
        output_core_dims=[[ZONAL_WAVENUMBER]],
        dask="parallelized",
        output_dtypes=[float],
        dask_gufunc_kwargs={"output_sizes": {ZONAL_WAVENUMBER: n // 2 + 1}},
    )
    spectrum = (spectrum * circumference).weighted(latitude_weights(band[LAT])).mean(LAT)
    return spectrum.assign_coords({ZONAL_WAVENUMBER: np.arange(n // 2 + 1)}).rename("power")


def isotropic_power_spectrum(field: xr.DataArray) -> xr.DataArray:
    """Isotropic 2-D power spectrum of a regional field, binned by |k| (cycles per km).

    The least-squares plane ``a + b·x + c·y`` is removed and the field Hann-windowed in
    both directions (a regional field is not periodic, and a large-scale gradient would
    leak through the edges to every wavenumber); ``|FFT2|² / (N Σw²)``
    is summed in rings of width ``Δk = max(1/L_x, 1/L_y)`` up to the smaller Nyquist
    wavenumber: the rings hold the window-weighted variance of the field except the
    corners of the spectral plane beyond that radius. Grid
    spacing from the central latitude: ``dx = R cos φ_c Δλ``, ``dy = R Δφ``. Dims:
    ``latitude, longitude`` replaced by ``wavenumber`` (ring centres, cycles per km).
    """
    lat = np.asarray(field[LAT], dtype=np.float64)
    lon = np.asarray(field[LON], dtype=np.float64)
    ny, nx = lat.size, lon.size
    dy = EARTH_RADIUS * np.deg2rad(abs(lat[-1] - lat[0]) / (ny - 1)) / 1000.0
    dx = (
        EARTH_RADIUS
        * np.cos(np.deg2rad(lat.mean()))
        * np.deg2rad(abs(lon[-1] - lon[0]) / (nx - 1))
        / 1000.0
    )
    window = np.outer(np.hanning(ny + 2)[1:-1], np.hanning(nx + 2)[1:-1])
    ky = np.fft.fftfreq(ny, d=dy)[:, None]
    kx = np.fft.fftfreq(nx, d=dx)[None, :]
    k = np.hypot(kx, ky)
    step = max(1.0 / (nx * dx), 1.0 / (ny * dy))
    n_bins = max(1, int(min(0.5 / dx, 0.5 / dy) // step))  # a narrow box: its one ring
    ring = np.rint(k / step).astype(int)
    norm = ny * nx * (window**2).sum()
    yy, xx = np.meshgrid(np.linspace(-1, 1, ny), np.linspace(-1, 1, nx), indexing="ij")
    plane = np.stack([np.ones(ny * nx), xx.ravel(), yy.ravel()], axis=1)  # (N, 3)
    fit = np.linalg.pinv(plane)  # (3, N): least-squares plane coefficients of a field

    def power(values: np.ndarray) -> np.ndarray:
        flat = values.reshape(*values.shape[:-2], ny * nx)
        anomaly = (flat - (flat @ fit.T) @ plane.T).reshape(values.shape)
        spectrum = np.abs(np.fft.fft2(anomaly * window)) ** 2 / norm
        flat = spectrum.reshape(-1, ny * nx)
        out = np.stack(
            [flat[:, ring.ravel() == b].sum(axis=-1) for b in range(1, n_bins + 1)], axis=-1
        )
        return out.reshape(*values.shape[:-2], n_bins)

    spectrum = xr.apply_ufunc(
        power,
        _grid_in_one_chunk(field),
        input_core_dims=[[LAT, LON]],
        output_core_dims=[[WAVENUMBER]],
        dask="parallelized",
        output_dtypes=[float],
        dask_gufunc_kwargs={"output_sizes": {WAVENUMBER: n_bins}},
    )
    return spectrum.assign_coords({WAVENUMBER: np.arange(1, n_bins + 1) * step}).rename("power")


def _grid_in_one_chunk(field: xr.DataArray) -> xr.DataArray:
    """``field`` with its horizontal grid in one dask chunk, as the transforms take it (a
    field opened with chunks across the grid, say); unchanged in memory."""
    return field if field.chunks is None else field.chunk({LAT: -1, LON: -1})


def power_spectrum(field: xr.DataArray) -> xr.DataArray:
    """Zonal spectrum on a global grid, isotropic on a regional one (see both)."""
    return zonal_power_spectrum(field) if is_global(field[LON]) else isotropic_power_spectrum(field)


def wavenumber_dim(spectrum: xr.DataArray) -> str:
    """The wavenumber dim of a spectrum: ``zonal_wavenumber`` or ``wavenumber``."""
    return ZONAL_WAVENUMBER if ZONAL_WAVENUMBER in spectrum.dims else WAVENUMBER


def band_edges(spectrum: xr.DataArray) -> np.ndarray:
    """Edges of three log-equal bands of the non-zero wavenumbers: split at equal ratios
    (k_max/k_min)^(1/3), the last edge just above k_max."""
    k = spectrum[wavenumber_dim(spectrum)].values.astype(float)
    positive = k[k > 0]
    edges = np.geomspace(positive.min(), positive.max(), len(BANDS) + 1)
    edges[-1] = np.nextafter(edges[-1], np.inf)
    return edges


def band_power(spectrum: xr.DataArray) -> xr.DataArray:
    """Power summed in three log-equal wavenumber bands, ``large``/``medium``/``small`` scales
    (:func:`band_edges`); the edges are kept as ``k_low``/``k_high`` coordinates of the
    ``band`` dim."""
    return _by_band(spectrum, "sum").rename("band_power")


def band_mean(spectrum: xr.DataArray) -> xr.DataArray:
    """The mean over the wavenumbers of each of the three bands of :func:`band_power` (of a
    log power ratio, say: the log of the geometric-mean ratio, where every wavenumber counts
    alike rather than the band's most energetic ones)."""
    return _by_band(spectrum, "mean")


def _by_band(spectrum: xr.DataArray, how: str) -> xr.DataArray:
    dim = wavenumber_dim(spectrum)
    edges = band_edges(spectrum)
    parts = [
        getattr(spectrum.where((spectrum[dim] >= lo) & (spectrum[dim] < hi)), how)(dim)
        for lo, hi in zip(edges[:-1], edges[1:], strict=True)
    ]
    return xr.concat(parts, dim=BAND).assign_coords(
        {BAND: list(BANDS), "k_low": (BAND, edges[:-1]), "k_high": (BAND, edges[1:])}
    )
