"""What produced a forecast store (:class:`ForecastProvenance`): recorded in its attrs and
checked on every write (:func:`pipeline.forecast_store.write_forecast`), so a store never
mixes models, samplers, seeds, calibrations or corrections."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from pipeline.errors import nested_differences


@dataclass(frozen=True)
class ForecastProvenance:
    """What produced a forecast store; recorded in its attrs and checked on every write.

    calibration: ``{}`` when members are uncalibrated, else the applied spread factors per
                 channel and lead with the SSR before/after on the fit period.
    bias_correction: ``{}`` for the generator's own members, else the correction applied
                 after it (:mod:`generators.correction.bias`, ``wxens bias-correct``).
    balanced:    every step's upper air was made hypsometric, and its winds geostrophic
                 where the grid allows (:mod:`generators.balance`, ``wxens forecast
                 --balance``); not on a grid across the equator, as the store's latitudes
                 tell (:func:`pipeline.grid.balance_grid_problem`), so not recorded apart.
    """

    generator: str
    checkpoint_digest: str
    sampler: str
    nfe: int
    seed: int
    calibration: dict[str, Any] = field(default_factory=dict)
    bias_correction: dict[str, Any] = field(default_factory=dict)
    balanced: bool = False

    def to_attrs(self) -> dict[str, Any]:
        attrs = {f"wxens_{k}": v for k, v in asdict(self).items() if k not in _JSON_FIELDS}
        attrs["wxens_balanced"] = int(self.balanced)  # netCDF attributes hold no booleans
        for name in _JSON_FIELDS:
            attrs[f"wxens_{name}"] = json.dumps(getattr(self, name), sort_keys=True)
        return attrs

    def production(self, wxens: str = "wxens") -> str:
        """CF's ``source`` of a file of these forecasts (2.6.2: the method of production of
        the original data), from this record alone: ``"wxens 0.1.0 flow_matching generator,
        checkpoint sha256 0123..., sampler euler:nfe=10 (NFE 10), seed 0, spread-calibrated,
        not bias-corrected"`` (a baseline: its name and config digest). ``wxens``:
        the wxens that drew them, as the store records it (none: just "wxens")."""
        name = self.generator.removeprefix("baseline:")
        made = (
            f"{name} baseline, config sha256 {self.checkpoint_digest}"
            if name != self.generator
            else f"{name} generator, checkpoint sha256 {self.checkpoint_digest}"
        )
        parts = [
            f"{wxens} {made}",
            f"sampler {self.sampler} (NFE {self.nfe})",
            f"seed {self.seed}",
            "spread-calibrated" if self.calibration else "uncalibrated",
            "bias-corrected" if self.bias_correction else "not bias-corrected",
            *(["balanced (hypsometric, geostrophic)"] if self.balanced else []),
        ]
        return ", ".join(parts)

    def differences(self, other: ForecastProvenance) -> str:
        """The fields in which ``other`` differs, each as this value then the other's (of a
        calibration or correction, the entries that differ: :func:`_differing`)."""
        parts = []
        for name, mine in asdict(self).items():
            theirs = getattr(other, name)
            if mine == theirs:
                continue
            if isinstance(mine, dict) and not (mine and theirs):  # one side has none
                parts.append(
                    f"{name} {'there, none' if mine else 'none there, one'} in this forecast"
                )
            elif isinstance(mine, dict):
                parts.append(f"{name} differs in {_differing(mine, theirs)}")
            else:
                parts.append(f"{name} {mine!r} there, {theirs!r} in this forecast")
        return "; ".join(parts)

    def refusal(self, new: ForecastProvenance) -> str:
        """Why a store of this provenance takes no forecast of ``new``'s, and the fix. A
        baseline drawn by an older wxens, whose sampler text recorded no member count
        (``members=``), never equals this wxens's drawing of it: that is said, not that the
        user asked for another baseline."""
        differences = self.differences(new)
        name = self.generator.removeprefix("baseline:")
        if new.generator == self.generator != name and "members=" not in self.sampler:
            return (
                f"holds a {name} baseline drawn by an older wxens, whose provenance this "
                f"wxens's never matches, even of the same settings ({differences}): write the "
                "new forecasts to another store, or draw the baseline whole again with this "
                "wxens (into another store, or after deleting this one)"
            )
        return (
            f"holds forecasts of another provenance: {differences}. One store holds "
            "forecasts of one model, sampler, seed, calibration and correction: write to "
            "another store, or delete this one first"
        )

    @classmethod
    def from_attrs(cls, attrs: dict[str, Any]) -> ForecastProvenance:
        return cls(
            generator=attrs["wxens_generator"],
            checkpoint_digest=attrs["wxens_checkpoint_digest"],
            sampler=attrs["wxens_sampler"],
            nfe=int(attrs["wxens_nfe"]),
            seed=int(attrs["wxens_seed"]),
            calibration=json.loads(attrs["wxens_calibration"]),
            bias_correction=json.loads(attrs.get("wxens_bias_correction", "{}")),
            balanced=bool(attrs.get("wxens_balanced", False)),
        )


_JSON_FIELDS = ("calibration", "bias_correction")


def _differing(mine: dict, theirs: dict) -> str:
    """The keys in which two records differ (``spread.weight`` inside a nested record),
    with both values where they are scalars (a correction's weights), the key alone where
    not (a calibration's factors are lists)."""
    return ", ".join(
        key
        if any(isinstance(v, list | dict) for v in (a, b))
        else f"{key} ({a!r} there, {b!r} in this forecast)"
        for key, a, b in sorted(nested_differences(mine, theirs))
    )
