"""The embedded synthetic source: a surface field whose conditional law is known exactly,
and balanced upper-air fields.

- :mod:`~pipeline.sources.synthetic.config`: :class:`SyntheticConfig` and its spec
  ``synthetic:key=value,...``;
- :mod:`~pipeline.sources.synthetic.surface`: the advected AR(1) ``t2m`` process;
- :mod:`~pipeline.sources.synthetic.upper_air`: ``z, t, u, v`` in hypsometric and
  geostrophic balance by construction, of wave states that are deterministic or an
  Ornstein-Uhlenbeck process (``upper_air_phi < 1``);
- :mod:`~pipeline.sources.synthetic.oracle`: the exact conditional laws of ``t2m`` and of
  the wave states, and oracle ensembles drawn from them;
- :mod:`~pipeline.sources.synthetic.source`: the dataset and the registered source.

The source goes through the same ingest path as files::

    wxens ingest synthetic:n_lat=16,n_lon=24,n_times=120,step=6h,seed=3 --store store.zarr
"""

from __future__ import annotations

from pipeline.sources.synthetic.config import SCHEME, SyntheticConfig
from pipeline.sources.synthetic.oracle import (
    conditional_moments,
    lead_steps,
    oracle_ensemble,
    upper_air_oracle_ensemble,
)
from pipeline.sources.synthetic.source import SyntheticSource, synthetic_dataset
from pipeline.sources.synthetic.surface import t2m_climatology
from pipeline.sources.synthetic.upper_air import UPPER_AIR_VARIABLES, balanced_upper_air

__all__ = [
    "SCHEME",
    "UPPER_AIR_VARIABLES",
    "SyntheticConfig",
    "SyntheticSource",
    "balanced_upper_air",
    "conditional_moments",
    "lead_steps",
    "oracle_ensemble",
    "synthetic_dataset",
    "t2m_climatology",
    "upper_air_oracle_ensemble",
]
