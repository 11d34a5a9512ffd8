"""Pushforward training: items whose latest state the model drew itself.

A rollout feeds every drawn state back as the next step's "now", so from its second step
on the network is conditioned on states it never saw in training, and its errors compound.
The pushforward trick (Brandstetter, Worrall & Welling 2022, "Message passing neural PDE
solvers", sec. 2.3) trains on such inputs without back-propagating through the rollout.

An item (initial time t, lead l) whose history offsets are all multiples of l has a
*partner*: the item (t - l, l), whose target is this item's "now". The partner is drawn one
step with the current weights and no gradient, giving a residual r~ in place of its true
residual r, so the state at t becomes x~[t] = x[t] + (r~ - r) tendency_std(l) / std
(normalised). The item is then moved onto that state, keeping its true target x[t + l]:

    history[:, -1] <- history[:, -1] + (r~ - r) * tendency_std(l) / std
    target         <- target - (r~ - r)

(both residuals are of the same lead, so their scales agree; variability scaling, which
would rescale the target from the changed history, is refused by the config). The older
history states stay true, as in the second step of a rollout. Points a masked channel does
not cover are left as they are (their target is not scored).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from generators.base import Condition
from generators.config import TrainConfig
from generators.data import ResidualDataset
from generators.device import autocast
from generators.train_plan import trained_sampler


def partner_items(data: ResidualDataset) -> np.ndarray:
    """(len(data),) int64: for every item (initial time t, lead l) the index of the item
    (t - l, l) of ``data``, -1 where there is none (that time is not an item, or ``l`` does
    not divide every history offset)."""
    positions, lead_index = data.pairs[:, 0], data.pairs[:, 1]
    n_leads = len(data.spec.leads)
    keys = positions * n_leads + lead_index
    order = np.argsort(keys)
    partners = np.full(len(keys), -1, dtype=np.int64)
    for j, lead in enumerate(data.spec.leads):
        chosen = np.flatnonzero(lead_index == j)
        if not chosen.size or any(offset % lead for offset in data.spec.history):
            continue
        earlier = data.positions(positions[chosen], (-lead,))[:, 0]
        wanted = earlier * n_leads + j
        found = order[np.searchsorted(keys, wanted, sorter=order).clip(max=len(keys) - 1)]
        hit = (earlier >= 0) & (keys[found] == wanted)
        partners[chosen[hit]] = found[hit]
    return partners


@dataclass(frozen=True, eq=False)
class Pushforward:
    """Moves a ``fraction`` of a batch's items onto states drawn by the model (module
    docstring); items without a partner stay as they are."""

    data: ResidualDataset
    partners: np.ndarray
    fraction: float
    config: TrainConfig

    @classmethod
    def of(cls, data: ResidualDataset, config: TrainConfig) -> Pushforward:
        assert config.fine_tune is not None
        return cls(data, partner_items(data), config.fine_tune.pushforward, config)

    def __call__(
        self,
        model: torch.nn.Module,
        index: np.ndarray,
        items: dict[str, torch.Tensor],
        generator: torch.Generator,
        device: torch.device,
    ) -> dict[str, torch.Tensor]:
        """``items`` (``data[index]``) with the chosen ones pushed forward; the choice and the
        draw's noise come from ``generator``."""
        partner = self.partners[index]
        chosen = (torch.rand(len(index), generator=generator).numpy() < self.fraction) & (
            partner >= 0
        )
        if not chosen.any():
            return items
        earlier = self.data[partner[chosen]]
        condition = Condition(
            earlier["history"], earlier["static"], earlier["calendar"], earlier["lead"]
        ).to(device)
        was_training = model.training
        model.eval()
        with torch.no_grad(), autocast(device, self.config.bf16):
            sampler = trained_sampler(self.config, model)
            drawn = model.sample(condition, 1, sampler=sampler, generator=generator)[:, 0]
        model.train(was_training)
        delta = torch.where(earlier["valid"], drawn.float().cpu() - earlier["target"], 0.0)
        norm, leads_hours = self.data.normalization, self.data.leads_hours
        to_state = torch.from_numpy(
            np.stack(
                [norm.residual_to_state(leads_hours[j]) for j in self.data.pairs[index[chosen], 1]]
            )
        )
        rows = torch.from_numpy(np.flatnonzero(chosen))
        history, target = items["history"].clone(), items["target"].clone()
        history[rows, -1] += delta * to_state
        target[rows] = torch.where(items["valid"][rows], target[rows] - delta, 0.0)
        return {**items, "history": history, "target": target}
