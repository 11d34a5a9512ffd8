"""The tiny backbone and random conditions shared by the generator tests (imported as
``tiny``: pytest puts this folder on ``sys.path``)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import torch

from flows.cli import main as wxens
from generators import BackboneConfig, Condition
from pipeline.store import AnalysisStore, ingest

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


def two_step_run(root: Path, n_times: int = 40, sets: Sequence[str] = ()) -> AnalysisStore:
    """A synthetic 16 x 16 store of ``n_times`` six-hourly t2m states (``root/syn.zarr``) and a
    checkpoint of two training steps on it (``root/run``), trained through the CLI: the
    smallest real run a forecast test can draw from; ``sets``: ``--set`` overrides of its
    config (``fine_tune={steps: 1, crps_members: 2}``). Returns the store."""
    store = ingest(
        f"synthetic:n_lat=16,n_lon=16,n_times={n_times},step=6h,seed=2",
        root / "syn.zarr",
        variables=["t2m"],
        progress=False,
    )
    config = root / "c.yaml"
    config.write_text(
        "model: {kind: flow_matching, backbone: {widths: [8, 16], attention_heads: 0, "
        "embedding_dim: 16}}\ndata: {channels: [t2m], history: 2, leads: [1]}\nsteps: 2\n"
        "batch_size: 4\ndevice: cpu\n"
    )
    train = ["train", "--store", str(store.path), "--config", str(config)]
    train += [a for override in sets for a in ("--set", override)]
    assert wxens([*train, "--out", str(root / "run"), "--no-progress"]) == 0
    return store


def drawn_batches(log: str) -> int:
    """The batches a forecast's log says it drew: each one's write logs one line (created,
    appended, or found written by another run meanwhile and kept as it was)."""
    return len(re.findall(r"created forecast store|appended \d+ initial|kept as they are", log))
