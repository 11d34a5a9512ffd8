"""The one xarray <-> torch boundary of wxens: analysis stores in, tensors out, and back.

- :mod:`~generators.data.spec`: what a sample holds (:class:`SampleSpec`).
- :mod:`~generators.data.normalization`: states and residuals normalised with the store
  statistics and the tendency std per lead (:class:`Normalization`).
- :mod:`~generators.data.fields`: calendar features and static fields.
- :mod:`~generators.data.dataset`: the torch dataset of (condition, target) pairs of a
  store period (:class:`ResidualDataset`) and the normalisation fitted on it.
- :mod:`generators.data.forecast`: a store read for a checkpoint (``ForecastData``: initial
  windows, known fields, truths) and drawn members back to a canonical forecast dataset
  (``to_dataset``). It is imported from its module: it builds on
  :mod:`generators.checkpoint`, which itself builds on the names below.

Tensors live only inside :mod:`generators`; everything that leaves it is an
``xarray.Dataset``.
"""

from generators.data.dataset import ResidualDataset
from generators.data.fields import (
    CALENDAR_FEATURES,
    GEOMETRY_STATICS,
    calendar_features,
    static_fields,
)
from generators.data.normalization import (
    TENDENCY_FLOOR,
    TENDENCY_SAMPLES,
    Normalization,
    fit_normalization,
    recent_variability,
)
from generators.data.spec import SampleSpec

__all__ = [
    "CALENDAR_FEATURES",
    "GEOMETRY_STATICS",
    "TENDENCY_FLOOR",
    "TENDENCY_SAMPLES",
    "Normalization",
    "ResidualDataset",
    "SampleSpec",
    "calendar_features",
    "fit_normalization",
    "recent_variability",
    "static_fields",
]
