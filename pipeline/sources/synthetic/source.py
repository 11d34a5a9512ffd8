"""The synthetic source: :class:`SyntheticSource` opens :func:`synthetic_dataset`, the
surface process (:mod:`~pipeline.sources.synthetic.surface`) and the balanced upper air
(:mod:`~pipeline.sources.synthetic.upper_air`) as one canonical, dask-backed dataset."""

from __future__ import annotations

from typing import ClassVar

import dask.array as da
import numpy as np
import xarray as xr

from pipeline.schema import LAT, LEVEL, LON, SCHEMA_VERSION, TIME, variable_attrs
from pipeline.sources.base import SOURCES, Source
from pipeline.sources.synthetic.config import SCHEME, SyntheticConfig
from pipeline.sources.synthetic.surface import grid_coords, t2m_series
from pipeline.sources.synthetic.upper_air import (
    UPPER_AIR_VARIABLES,
    balanced_upper_air,
    wave_states,
)


def _upper_air_block(states: np.ndarray, config: SyntheticConfig) -> np.ndarray:
    """dask block: (time, wave) complex states -> (time, variable, level, lat, lon) float32."""
    fields = balanced_upper_air(config, states)
    return np.stack([fields[name] for name in UPPER_AIR_VARIABLES], axis=1)


def synthetic_dataset(config: SyntheticConfig) -> xr.Dataset:
    """The canonical dataset: ``t2m`` (time, lat, lon) and ``z, t, u, v`` (time, level, lat, lon).

    float32, CF attributes, dask-backed with one time step per chunk; t2m is generated
    in memory up front (cheap: batched FFTs), the upper air lazily per chunk.
    """
    times = config.times
    shape = (config.n_lat, config.n_lon)
    t2m = da.from_array(t2m_series(config), chunks=(1, *shape))
    states = da.from_array(wave_states(config), chunks=(1, config.n_waves))
    nlev = len(config.levels)
    upper = da.map_blocks(
        _upper_air_block,
        states,
        config=config,
        drop_axis=1,
        new_axis=[1, 2, 3, 4],
        chunks=(states.chunks[0], (len(UPPER_AIR_VARIABLES),), (nlev,), *((n,) for n in shape)),
        dtype=np.float32,
        meta=np.empty((0, 0, 0, 0, 0), dtype=np.float32),
    )
    coords = grid_coords(config) | {
        TIME: xr.DataArray(times, dims=TIME, attrs={"standard_name": "time"}),
        LEVEL: xr.DataArray(
            np.array(config.levels, dtype=np.int64),
            dims=LEVEL,
            attrs={"units": "hPa", "standard_name": "air_pressure", "long_name": "pressure level"},
        ),
    }
    data_vars = {"t2m": ((TIME, LAT, LON), t2m, variable_attrs("t2m"))} | {
        name: ((TIME, LEVEL, LAT, LON), upper[:, i], variable_attrs(name))
        for i, name in enumerate(UPPER_AIR_VARIABLES)
    }
    return xr.Dataset(
        data_vars,
        coords=coords,
        attrs={
            "title": "wxens synthetic fields",
            "source": "wxens synthetic: advected AR(1) t2m with an exact conditional law; "
            "balanced (hypsometric, geostrophic) z, t, u, v of wave states with an exact "
            "conditional law (deterministic when upper_air_phi=1)",
            "synthetic_spec": config.to_spec(),
            "schema_version": SCHEMA_VERSION,
            "Conventions": "CF-1.8",
        },
    )


@SOURCES.register(SCHEME)
class SyntheticSource(Source):
    """The ``synthetic`` / ``synthetic:key=value,...`` source (see :class:`SyntheticConfig`)."""

    name: ClassVar[str] = SCHEME
    reads: ClassVar[str] = f"'{SCHEME}' (or '{SCHEME}:key=value,...')"

    def __init__(self, config: SyntheticConfig | None = None) -> None:
        self.config = config if config is not None else SyntheticConfig()

    @classmethod
    def claims(cls, spec: str) -> bool:
        return spec == cls.name or spec.startswith(f"{cls.name}:")

    @classmethod
    def from_spec(cls, spec: str) -> SyntheticSource:
        return cls(SyntheticConfig.from_spec(spec))

    def open(self) -> xr.Dataset:
        return synthetic_dataset(self.config)

    @property
    def description(self) -> str:
        """The keys given (not every field): it labels refusals, which lead with it."""
        return self.config.to_spec(changed_only=True)
