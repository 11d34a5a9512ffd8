"""A forecast's memory count (:func:`generators.step_memory.forward_bytes`): recorded in the
checkpoint when saved, so a forecast reads it rather than counting again (a second, nearly
all of it the import of ``torch._dynamo`` that the meta kernels' first call makes), equal
to the count by the unchanged method."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import torch

from generators.backbone import BackboneConfig
from generators.checkpoint import load_checkpoint
from generators.models import GENERATORS, FlowMatchingConfig
from generators.step_memory import FORWARD_MARGIN, _forward_peak, forward_bytes

from tiny import two_step_run


def counted(kind: str, model_config: object, grid: tuple[int, int]) -> int:
    """The count by the method of before it was recorded: a fresh meta model's peaks at
    batches 1 and 2, the difference taken :data:`FORWARD_MARGIN` times."""
    with torch.device("meta"):
        model = GENERATORS[kind](model_config)
    one, two = (_forward_peak(model, grid, batch) for batch in (1, 2))
    return round(FORWARD_MARGIN * (two - one))


READ = """
import sys
from generators.backbone import BackboneConfig
from generators.checkpoint import load_checkpoint
checkpoint = load_checkpoint(sys.argv[1])
print(checkpoint.forward_bytes(checkpoint.grid), "torch._dynamo" in sys.modules)
"""
"""A fresh process's forecast count from a checkpoint, and whether it ran the meta count
(whose first kernel imports ``torch._dynamo``)."""


def test_a_checkpoint_records_the_forward_count_a_forecast_reads_without_counting(tmp_path):
    two_step_run(tmp_path)
    trained = load_checkpoint(tmp_path / "run")
    assert trained.grid == (16, 16)
    assert trained.forward_bytes((16, 16)) == counted(trained.kind, trained.model_config, (16, 16))
    # another model and grid, saved without a count: the save counts and records it
    other = FlowMatchingConfig(backbone=BackboneConfig(channels=2, history=2, widths=(32, 64)))
    saved = trained.replace(
        model_config=other,
        latitude=np.linspace(60, 40, 32),
        longitude=np.linspace(-10, 20, 48),
        forward_count=None,
    ).save(tmp_path / "other.pt")
    reloaded = load_checkpoint(saved.path)
    assert reloaded.forward_count is not None
    assert reloaded.forward_bytes((32, 48)) == counted("flow_matching", other, (32, 48))
    assert reloaded.forward_bytes((32, 48)) == forward_bytes("flow_matching", other, (32, 48))
    # another grid than its own (or a checkpoint written before the count): counted now
    assert reloaded.forward_bytes((16, 16)) == counted("flow_matching", other, (16, 16))
    assert reloaded.replace(forward_count=None).forward_bytes((32, 48)) == (
        reloaded.forward_bytes((32, 48))
    )
    # a fresh process reads the count: no meta kernel runs, torch._dynamo is not imported
    for path, model_config, grid in [
        (tmp_path / "run", trained.model_config, (16, 16)),
        (saved.path, other, (32, 48)),
    ]:
        done = subprocess.run(
            [sys.executable, "-c", READ, str(path)], capture_output=True, text=True, check=True
        )
        assert done.stdout.split() == [str(counted("flow_matching", model_config, grid)), "False"]
