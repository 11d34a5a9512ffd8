"""What a sample holds: the history offsets and leads, in native time steps of the store,
and the optional scalings of its target (:class:`SampleSpec`)."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.errors import InputError

MAX_STEPS = 100_000
"""The most native steps a history offset or a lead may span (11 years of an hourly store):
a config asking more is a typo or a hostile file, refused before offsets are built."""


@dataclass(frozen=True)
class SampleSpec:
    """What a sample holds, in native time steps of the store.

    history: offsets of the conditioning states, oldest first, ending with 0 (now); at least
             two. An integer ``n`` means the last ``n`` states, e.g. ``24`` on an hourly store
             is every state of the last day.
    leads:   lead times of the target. Several leads make a lead-conditioned, direct model.
    variability_scaling: divide each sample's target by ``s``, the recent variability of its
             own history relative to the training period's
             (:meth:`generators.data.Normalization.variability_scale`), so that a generator's
             unit-variance residuals carry a flow-dependent spread.
    tendency_per_grid_point: normalise residuals by each grid point's own tendency std
             rather than the channel's: a unit-variance residual then fits calm places (sea)
             and lively ones (land) alike, and so does any noise inflation of a sampler.
    solar_forcing: add the TOA insolation at the initial and valid times and its mean over
             the interval to the static fields (:func:`pipeline.solar.solar_forcing`): the
             sun's strength and timing on days outside the training period, which sin/cos
             of the day of year cannot extrapolate to.
    """

    history: tuple[int, ...] = (-1, 0)
    leads: tuple[int, ...] = (1,)
    variability_scaling: bool = False
    tendency_per_grid_point: bool = False
    solar_forcing: bool = False

    def __post_init__(self) -> None:
        history = self.history
        if isinstance(history, int):
            _check_span(history, "history")
            history = tuple(range(1 - history, 1))
        history = tuple(int(o) for o in history)
        leads = (self.leads,) if isinstance(self.leads, int) else self.leads
        leads = tuple(sorted({int(lead) for lead in leads}))
        _check_span(max((-o for o in history), default=0), "history offset")
        _check_span(max(leads, default=0), "lead")
        if len(history) < 2 or history[-1] != 0 or list(history) != sorted(set(history)):
            raise InputError(
                f"history offsets {history} must be at least two distinct native steps, "
                "ascending and ending with 0 (now), e.g. [-1, 0] or 24 for the last 24 states"
            )
        if not leads or leads[0] < 1:
            raise InputError(f"leads {leads} must be positive numbers of native steps, e.g. [1]")
        object.__setattr__(self, "history", history)
        object.__setattr__(self, "leads", leads)


def _check_span(steps: int, what: str) -> None:
    """InputError unless ``steps`` is at most :data:`MAX_STEPS`."""
    if steps > MAX_STEPS:
        raise InputError(
            f"a {what} of {steps} native steps is too long: at most {MAX_STEPS} (data.history "
            "and data.leads count native steps of the store, e.g. history 24 and leads [1, 24] "
            "on an hourly store)"
        )
