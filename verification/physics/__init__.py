"""Physical-consistency checks of ensemble members, each judged against the truth itself.

Every check returns :class:`~verification.base.CheckResult` s, one per part it judges
(a pressure level, a layer between adjacent levels, a variable, a wavenumber band): one
score per member, the same score of the truth at the same valid times, and a tolerance
derived from the truth by a documented rule, so that a check never demands more of the
members than the analysis itself achieves. Members are scored only where the truth exists.
A part that cannot be computed (no truth there, lead 0 only, a single sample) is a result
with a reason: "n/a", never a failure. Inputs: ``forecast`` in the wxens layout
(``member`` plus the truth's dims), ``truth`` aligned to it
(:func:`pipeline.alignment.align_with_truth`), and for the tendencies ``initial``.

- :mod:`~verification.physics.balance`: hypsometric thickness per layer, geostrophic
  wind per level;
- :mod:`~verification.physics.bounds`: physical bounds per variable;
- :mod:`~verification.physics.spectral`: power by wavenumber band per channel;
- :mod:`~verification.physics.tendency`: distributions of the change since the initial
  time per variable.

Importing this package registers every check in :data:`verification.base.CHECKS`.
"""

from __future__ import annotations

from verification.physics.balance import Geostrophic, Hypsometric, geostrophic_wind
from verification.physics.bounds import PhysicalBounds
from verification.physics.spectral import SpectralRatio
from verification.physics.tendency import TendencyDistribution, wasserstein_1

__all__ = [
    "Geostrophic",
    "Hypsometric",
    "PhysicalBounds",
    "SpectralRatio",
    "TendencyDistribution",
    "geostrophic_wind",
    "wasserstein_1",
]
