"""Verification of ensemble forecasts: scores, physical consistency, scorecards, reports.

- :mod:`verification.kernels` — numpy kernels (sorted-member CRPS, ranks, Brier, energy).
- :mod:`verification.scores` — their lazy xarray wrappers with named, cos-latitude
  weighted aggregation (:mod:`verification.aggregation`): CRPS, the ensemble mean's
  error, spread, spread-skill ratio, energy score; :mod:`verification.ranks` — rank
  histograms, their flatness and noise floors; :mod:`verification.events` — Brier score
  and reliability of threshold events.
- :mod:`verification.resampling` — sampling uncertainty of scores: the block bootstrap of
  means over init times (whole days resampled).
- :mod:`verification.physics`, :mod:`verification.spectra` — physical-consistency checks
  judged against the truth's own score.
- :mod:`verification.scorecard` — :func:`~verification.scorecard.verify`: everything for
  one forecast as an ``xr.DataTree``, as a :class:`~verification.config.VerifyConfig`
  asks; :mod:`verification.comparison` — its intervals and the comparison with a
  reference; :mod:`verification.plots`, :mod:`verification.report_tables`,
  :mod:`verification.report` — figures, tables and the self-contained HTML report;
  :mod:`verification.output` — atomic writes.
- :mod:`verification.run` — :func:`~verification.run.verify_store`: open a forecast and
  the truth from files, verify, write the scores and the report.

Registries (:mod:`verification.base`, each a :class:`pipeline.registry.Registry`): add a
score with ``@register_score``, a physics check with ``@register_check``. Nothing here
imports torch.

``verification.verify``, ``verification.VerifyConfig`` and ``verification.verify_store``
are loaded on first use, so that importing one kernel module does not load the report's
plotting.
"""

from __future__ import annotations

from pipeline.lazy import lazy_exports

_LAZY = {
    "VerifyConfig": "verification.config",
    "verify": "verification.scorecard",
    "verify_store": "verification.run",
}

__all__ = sorted(_LAZY)
__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
