"""The tiny backbone and random conditions shared by the generator tests (imported as
``tiny``: pytest puts this folder on ``sys.path``)."""

from __future__ import annotations

import torch

from generators import BackboneConfig, Condition

TINY = BackboneConfig(
    channels=1,
    history=2,
    static_channels=2,
    calendar_features=2,
    widths=(8, 16),
    embedding_dim=16,
    norm_groups=4,
    attention_heads=2,
)


def random_condition(
    batch: int,
    height: int,
    width: int,
    *,
    config: BackboneConfig = TINY,
    seed: int = 0,
    generator: torch.Generator | None = None,
    lead: float | None = 6.0,
) -> Condition:
    """N(0, 1) history, static and calendar inputs shaped for ``config``; the lead is
    ``lead`` hours, or random whole hours in [1, 48) when None. Draws from ``generator``
    (a fresh one seeded with ``seed`` when None)."""
    g = torch.Generator().manual_seed(seed) if generator is None else generator
    c = config
    return Condition(
        history=torch.randn(batch, c.history, c.channels, height, width, generator=g),
        static=torch.randn(batch, c.static_channels, height, width, generator=g),
        calendar=torch.randn(batch, c.calendar_features, generator=g),
        lead=(
            torch.randint(1, 48, (batch,), generator=g).float()
            if lead is None
            else torch.full((batch,), lead)
        ),
    )
