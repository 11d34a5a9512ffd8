"""What :func:`verification.scorecard.verify` computes: :class:`VerifyConfig`, checked
when it is made (unknown score or check names, quantiles, intervals), and the names of
the scorecard's dims.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pandas as pd

from pipeline.config_fields import settle_fields
from pipeline.errors import InputError, given
from pipeline.schema import INIT_TIME, LAT, LEAD_TIME, LON, MEMBER
from verification import physics as _physics_checks  # noqa: F401  (registers the checks)
from verification import scores as _scores  # noqa: F401  (registers the scores)
from verification.base import CHECKS, SCORES

VARIABLE = "variable"
"""The scorecard's dim of verified variables (channels: ``z500``, ``t2m``)."""
EVENT = "event"
"""The dim of the Brier and reliability events (``q10``, ``q90``: the truth's quantiles)."""


@dataclass(frozen=True)
class VerifyConfig:
    """What :func:`verification.scorecard.verify` computes.

    scores:           registered score names (default: all of :data:`verification.base.SCORES`).
    mean_over:        dims every score is averaged over (cos-latitude weighted); the
                      scorecard keeps the others (lead time, variable).
    seed:             seed of the rank histograms' tie-breaking, the block-bootstrap
                      intervals and the error surrogates.
    event_quantiles:  Brier/reliability events ``value > threshold``, the threshold the
                      given quantile of the truth per variable (pooled over the physics
                      init times, lead times and the grid).
    checks:           physics checks to run (default: all registered that apply).
    physics_init_times: how many init times (evenly spaced) the physics checks, spectra,
                      thresholds and energy-score scaling use; 0 turns physics off.
    energy_score:     compute the multivariate energy score (O(M²) per point).
    map_members:      members kept in ``/maps`` for the member-map figure.
    interval_level:   coverage of the intervals of fair CRPS and spread-skill ratio
                      (``*_low``, ``*_high`` in the scorecard; 0 turns them off), from the
                      block bootstrap of init times (:mod:`verification.resampling`).
    interval_block:   the blocks resampled whole: init times that share this floor
                      (a pandas frequency; ``1D``: the init times of one day).
    interval_draws:   bootstrap resamples.
    perfect_model_stand_ins: members that in turn stand in for the truth against the
                      others (:func:`verification.ranks.perfect_model_rank_histogram`)
                      for ``rank_max_min_perfect_model``, the noise floor of the rank
                      max/min ratio; 0 skips it (needs at least 3 members).
    error_surrogate_replicas: replicas of the rank histogram of a reliable ensemble whose
                      fields correlate in space as the ensemble-mean errors do
                      (:func:`verification.ranks.error_surrogate_rank_histogram`), for
                      ``rank_max_min_error_surrogate``, the floor of the rank max/min
                      ratio where errors are coherent over the domain, which the pass
                      rule reads it against (``rank_max_min`` at most 1.1 x it:
                      :func:`verification.ranks.with_rank_pass`); 0 skips it. None (the
                      default): 20 where they cost at most
                      :data:`verification.ranks.DEFAULT_ERROR_WORK` multiply-adds, else
                      skipped, saying so (:func:`verification.ranks.error_floor_replicas`).
                      They cost replicas · N² · M · points for N init times, measured by
                      ``benchmarks/verify_error_floor.py`` on 2 shared cores at +7.2 s CPU
                      (5.5 -> 12.7 s) on a 40 x 60 grid of 16 inits, 50 members, 5 leads
                      and +4.4 s (12.0 -> 16.4 s) on a 1° global one of 10 inits, 20
                      members, 2 leads; as N², a season of global fields would take hours.
    """

    scores: tuple[str, ...] = ()
    mean_over: tuple[str, ...] = (INIT_TIME, LAT, LON)
    seed: int = 0
    event_quantiles: tuple[float, ...] = (0.1, 0.9)
    checks: tuple[str, ...] = ()
    physics_init_times: int = 8
    energy_score: bool = True
    map_members: int = 3
    interval_level: float = 0.9
    interval_block: str = "1D"
    interval_draws: int = 1000
    perfect_model_stand_ins: int = 5
    error_surrogate_replicas: int | None = None
    progress: bool = field(default=True, compare=False)

    def __post_init__(self) -> None:
        for name in ("scores", "mean_over", "checks", "event_quantiles"):
            value = getattr(self, name)  # "init_time" is one name, not its letters
            object.__setattr__(self, name, (value,) if isinstance(value, str) else value)
        settle_fields(self)
        for name in self.scores:
            SCORES[name]  # an unknown name is an InputError listing the known ones
        for name in self.checks:
            CHECKS[name]
        if any(not 0 < q < 1 for q in self.event_quantiles):
            raise InputError(
                f"event_quantiles {self.event_quantiles} must lie strictly between 0 and 1"
            )
        if LEAD_TIME in self.mean_over or MEMBER in self.mean_over:
            raise InputError(
                f"mean_over={self.mean_over}: the scorecard is by lead time and scores reduce "
                f"members themselves; average over init_time and the grid only"
            )
        if self.physics_init_times < 0:
            raise InputError(f"physics_init_times={self.physics_init_times} must be >= 0")
        check_interval_level(self.interval_level)
        check_interval_block(self.interval_block)
        if self.interval_draws < 1:
            raise InputError(f"interval_draws={self.interval_draws} must be >= 1")
        if self.perfect_model_stand_ins < 0:
            raise InputError(
                f"perfect_model_stand_ins={self.perfect_model_stand_ins} must be >= 0 "
                "(0 skips the perfect-model floor of the rank max/min ratio)"
            )
        if self.error_surrogate_replicas is not None and self.error_surrogate_replicas < 0:
            raise InputError(
                f"error_surrogate_replicas={self.error_surrogate_replicas} must be >= 0 "
                "(0 skips the error-surrogate floor of the rank max/min ratio)"
            )


#: The options of ``wxens verify`` that give the interval fields of :class:`VerifyConfig`:
#: the checks name them so where the command passes these (``options=OPTIONS``).
OPTIONS = {"interval_level": "--interval-level", "interval_block": "--interval-block"}


def check_interval_level(level: float, options: Mapping[str, str] | None = None) -> None:
    """An InputError unless ``level`` is a coverage in (0, 1) or 0 (no intervals), naming
    it by its option in ``options`` where given (``--interval-level``), else as the field."""
    if not 0 <= level < 1:
        raise InputError(
            f"{given('interval_level', options, level)}: give a coverage in (0, 1), or 0 for "
            "no intervals"
        )


def check_interval_block(block: str, options: Mapping[str, str] | None = None) -> None:
    """An InputError unless ``block`` is a fixed, positive pandas frequency: init times are
    floored to it, which a calendar one (a week, a month) cannot do and one of no or
    negative length does to nonsense blocks. Named by its option in ``options`` where given
    (``--interval-block``), else as the field."""
    said = given("interval_block", options, block)
    try:
        offset = pd.tseries.frequencies.to_offset(block)
    except ValueError as error:
        raise InputError(
            f"{said} is not a pandas frequency ({error}); "
            "use e.g. '1D' (init times of one day) or '6h'"
        ) from None
    try:
        length = pd.Timedelta(offset)
    except ValueError:
        raise InputError(
            f"{said} is a calendar frequency, of no fixed length, which init times cannot be "
            "floored to; give it in days or hours (e.g. '7D' for a week)"
        ) from None
    if length <= pd.Timedelta(0):
        raise InputError(
            f"{said} is not a positive length; give the span of the init times resampled "
            "together, e.g. '1D' (those of one day) or '6h'"
        )
