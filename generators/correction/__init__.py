"""Post-processing of ensemble forecasts in numpy and xarray, without torch.

- :mod:`.decaying_average`: the causal decaying average of verified forecasts that every
  stage below learns from;
- :mod:`.bias`: decaying-average bias correction and spread scaling of a forecast store
  (``wxens bias-correct``), the scaling's factor in :mod:`.spread_scaling`;
- :mod:`.ranks`: rank-histogram recalibration, applied after both;
- :mod:`.spread`: fixed spread factors per lead and channel (a checkpoint's spread
  calibration), their fit and their application;
- :mod:`.baselines`: climatology and persistence reference ensembles (``wxens baseline``);
- :mod:`.spec`: :class:`~.spec.CorrectionSpec`, the weights of the chain and their check;
- :mod:`.select_weights`: the weights chosen on cross-validation folds.

The package imports none of its modules (import them by name), so that reading
:class:`~.spec.CorrectionSpec`'s defaults loads no more than that light module.

The scores these use (spread-skill ratio, cos-latitude weights) come from
:mod:`verification` and :mod:`pipeline.schema`; nothing here imports torch or the models
of :mod:`generators`.
"""
