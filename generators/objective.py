"""What both generators share: the loss mix, the fair CRPS term, and drawing members.

A generator here is a network over the normalised residual plus an objective. The loss
is ``regression_weight * regression + crps_weight * fair_crps``:

- the regression term is the model's own (velocity regression for flow matching,
  weighted denoising for EDM);
- the fair-CRPS term draws ``crps_members`` members per sample through a short,
  differentiable sampler of at most ``crps_nfe`` network evaluations and scores them
  against the target (the calibration term of FGN / AIFS-ENS).
  After a fine-tune with it, sample with :attr:`ResidualGenerator.crps_sampler`: those
  are the steps it trained.

:meth:`ResidualGenerator.sample` encodes the condition once, repeats it over members
(members of one sample adjacent, as :meth:`Condition.repeat_members`) and runs one
batched sampler over all B*M members.
"""

from __future__ import annotations

import dataclasses
from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor, nn

from generators.backbone import repeat_encoded
from generators.base import BACKBONES, BaseBackboneConfig, Batch, Condition, backbone_kind
from generators.samplers import SAMPLERS, NetworkFn, Sampler
from pipeline.config_fields import settle_fields
from pipeline.errors import InputError

Encoded = tuple[Tensor, ...]
"""The backbone's encoded condition, batch first (:class:`~generators.base.Backbone`)."""

CPU_EVALUATION_BYTES = 16 * 2**20
"""On a CPU, :meth:`ResidualGenerator.sample` runs the network on at most this many bytes
of encoded condition at a time. Larger batches make activations beyond glibc's mmap
threshold (32 MiB), each then a fresh mapping whose pages fault in zeroed, which makes
one large batch slower than several slices of it. The noise is still drawn for the whole
batch, so the members do not depend on this split."""


def masked_mean(values: Tensor, valid: Tensor | None) -> Tensor:
    """Mean of ``values`` over the points where ``valid`` (same shape, bool) holds; the
    plain mean when ``valid`` is None."""
    if valid is None:
        return values.mean()
    return (values * valid).sum() / valid.sum().clamp(min=1)


def fair_crps(members: Tensor, target: Tensor) -> Tensor:
    """Pointwise fair CRPS of an ensemble: members (B, M, ...), target (B, ...) -> (B, ...).

    CRPS_fair = (1/M) sum_i |x_i - y| - 1/(2 M (M-1)) sum_i sum_j |x_i - x_j|,
    unbiased for the CRPS of the distribution the members are drawn from (Ferro 2014;
    Zamo & Naveau 2018). The double sum uses sorted members in O(M log M):
    sum_i sum_j |x_i - x_j| = 2 sum_k (2k - M - 1) x_(k), k = 1..M ascending.
    Differentiable (the sort passes gradients to the members). Needs M >= 2.
    """
    m = members.shape[1]
    if m < 2:
        raise InputError(f"the fair CRPS needs at least 2 members, got {m}")
    skill = (members - target.unsqueeze(1)).abs().mean(dim=1)
    ranks = torch.arange(1, m + 1, device=members.device, dtype=members.dtype)
    coefficients = (2 * ranks - m - 1).reshape((1, m) + (1,) * (members.dim() - 2))
    pair_sum = 2 * (members.sort(dim=1).values * coefficients).sum(dim=1)
    return skill - pair_sum / (2 * m * (m - 1))


@dataclass(frozen=True)
class ObjectiveConfig:
    """The loss mix shared by both generators (see the module docstring).

    regression_weight: weight of the model's own regression loss (0 for a pure CRPS fine-tune).
    crps_weight:       weight of the fair CRPS of drawn members (0: off).
    crps_members:      members drawn per sample for it (>= 2; FGN and AIFS-ENS use 2-4).
    crps_nfe:          network evaluations of the short sampler they are drawn through.
    """

    regression_weight: float = 1.0
    crps_weight: float = 0.0
    crps_members: int = 2
    crps_nfe: int = 2

    def __post_init__(self) -> None:
        settle_fields(self)
        if (
            self.regression_weight < 0
            or self.crps_weight < 0
            or self.regression_weight + self.crps_weight == 0
        ):
            raise InputError(
                f"loss weights must be >= 0 and not both 0, got regression_weight="
                f"{self.regression_weight}, crps_weight={self.crps_weight}"
            )
        if self.crps_members < 2:
            raise InputError(
                "crps_members must be at least 2 (the fair CRPS needs pairs), "
                f"got {self.crps_members}"
            )
        if self.crps_nfe < 1:
            raise InputError(f"crps_nfe must be at least 1, got {self.crps_nfe}")


class ResidualGenerator(nn.Module):
    """Base of the generators: a backbone (:class:`~generators.base.Backbone`, the one
    its config's ``kind`` names in :data:`~generators.base.BACKBONES`), a regression loss,
    samplers.

    Subclasses give :meth:`network_fn` (the function a sampler drives),
    :meth:`regression_error`, the sampler family they accept and :attr:`crps_sampler`.
    Implements the :class:`~generators.base.Generator` protocol; ``loss`` and ``sample``
    also accept an explicit ``generator`` for the training noise.
    """

    name: ClassVar[str]
    sampler_family: ClassVar[type[Sampler]]

    def __init__(self, config: ObjectiveConfig, backbone: BaseBackboneConfig):
        super().__init__()
        self.config = config
        self.backbone = BACKBONES[backbone_kind(backbone)](backbone)

    @property
    @abstractmethod
    def crps_sampler(self) -> Sampler:
        """The short sampler of the fair-CRPS term (at most ``crps_nfe`` evaluations)."""

    @abstractmethod
    def default_sampler(self) -> Sampler:
        """A sensible sampler for forecasting."""

    @abstractmethod
    def network_fn(self, encoded: Encoded) -> NetworkFn:
        """The function the sampler integrates, for a batch of encoded conditions."""

    @abstractmethod
    def regression_error(
        self, target: Tensor, encoded: Encoded, generator: torch.Generator | None
    ) -> Tensor:
        """The model's own loss at each point of (B, C, H, W) targets (its mean is the loss)."""

    def loss(self, batch: Batch, *, generator: torch.Generator | None = None) -> Tensor:
        """regression_weight * regression + crps_weight * mean fair CRPS (scalar).

        Both terms are averaged over samples, channels and grid points (a constant times
        their sum), so their weights do not depend on the grid size; over the valid points
        only when the batch has a mask (:class:`~generators.base.Batch`).
        """
        config = self.config
        encoded = self.backbone.encode(batch.condition)
        total = batch.target.new_zeros(())
        if config.regression_weight:
            total = total + config.regression_weight * masked_mean(
                self.regression_error(batch.target, encoded, generator), batch.valid
            )
        if config.crps_weight:
            members = self._draw(
                encoded, batch.target.shape, config.crps_members, self.crps_sampler, generator
            )
            crps = fair_crps(members, batch.target)
            total = total + config.crps_weight * masked_mean(crps, batch.valid)
        return total

    @classmethod
    def check_sampler(cls, sampler: Sampler) -> None:
        """Refuse a sampler of another family (a diffusion sampler for flow matching, ...)."""
        if not isinstance(sampler, cls.sampler_family):
            names = sorted(n for n, c in SAMPLERS.items() if issubclass(c, cls.sampler_family))
            first = dataclasses.fields(SAMPLERS[names[-1]])[0]
            raise InputError(
                f"{cls.name} cannot sample with the "
                f"{getattr(sampler, 'name', type(sampler).__name__)!r} "
                f"sampler; use {' or '.join(names)} (e.g. {names[-1]}:{first.name}={first.default})"
            )

    @torch.no_grad()
    def sample(
        self,
        condition: Condition,
        n_members: int,
        *,
        sampler: Sampler | None = None,
        generator: torch.Generator,
    ) -> Tensor:
        """Draw members of the normalised residual: (B, M, C, H, W), in the condition's dtype.

        All B * M members run as one batch through ``sampler`` (default:
        :meth:`default_sampler`); the same ``generator`` state gives the same members.
        On a CPU the network evaluates them in slices of :data:`CPU_EVALUATION_BYTES`.
        Put the model in ``eval()`` mode first (dropout).
        """
        if n_members < 1:
            raise InputError(f"n_members must be at least 1, got {n_members}")
        sampler = self.default_sampler() if sampler is None else sampler
        self.check_sampler(sampler)
        history = condition.history
        shape = (history.shape[0],) + tuple(history.shape[2:])
        encoded = self.backbone.encode(condition)
        rows = None
        if history.device.type == "cpu":
            row_bytes = encoded[0][0].numel() * encoded[0].element_size()
            rows = max(1, CPU_EVALUATION_BYTES // row_bytes)
        members = self._draw(encoded, shape, n_members, sampler, generator, rows=rows)
        return members.to(history.dtype)

    def _draw(
        self,
        encoded: Encoded,
        shape: Sequence[int],
        n_members: int,
        sampler: Sampler,
        generator: torch.Generator | None,
        *,
        rows: int | None = None,
    ) -> Tensor:
        """(B, M, C, H, W) float32 members through ``sampler`` (keeps autograd); the
        network evaluates ``rows`` of the B*M members at a time (None: all at once)."""
        b = shape[0]
        flat = (b * n_members,) + tuple(shape[1:])
        fn = self._network_in_slices(repeat_encoded(encoded, n_members), rows)
        x = sampler(fn, flat, generator=generator, device=encoded[0].device)
        return x.to(torch.float32).reshape((b, n_members) + tuple(shape[1:]))

    def _network_in_slices(self, encoded: Encoded, rows: int | None) -> NetworkFn:
        """:meth:`network_fn` evaluated on consecutive slices of ``rows`` rows, concatenated."""
        n = encoded[0].shape[0]
        if rows is None or rows >= n:
            return self.network_fn(encoded)
        starts = range(0, n, rows)
        slices = [self.network_fn(tuple(e[a : a + rows] for e in encoded)) for a in starts]

        def fn(x: Tensor, s: Tensor) -> Tensor:
            return torch.cat(
                [f(x[a : a + rows], s[a : a + rows]) for f, a in zip(slices, starts, strict=True)]
            )

        return fn
