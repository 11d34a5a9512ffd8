"""Verification of ensemble forecasts: scores, physical consistency, scorecards, reports.

- :mod:`verification.kernels` — numpy kernels (sorted-member CRPS, ranks, Brier, energy).
- :mod:`verification.scores` — their lazy xarray wrappers with named, cos-latitude
  weighted aggregation (:mod:`verification.aggregation`).
- :mod:`verification.resampling` — sampling uncertainty of scores: the block bootstrap of
  means over initial times (whole days resampled).
- :mod:`verification.physics`, :mod:`verification.spectra` — physical-consistency checks
  judged against the truth's own score.
- :mod:`verification.scorecard` — :func:`~verification.scorecard.verify`: everything for
  one forecast as an ``xr.DataTree``; :mod:`verification.plots`, :mod:`verification.report`
  — figures and the self-contained HTML report.

Registries (:mod:`verification.base`, each a :class:`pipeline.registry.Registry`): add a
score with ``@register_score``, a physics check with ``@register_check``. Nothing here
imports torch.
"""
