"""A forecast's memory count (:func:`generators.step_memory.forward_bytes`): recorded in the
checkpoint when saved, so a forecast reads it rather than counting again (a second, nearly
all of it the import of ``torch._dynamo`` that the meta kernels' first call makes), equal
to the count by the unchanged method; and, on CUDA, a bound on a real batch's growth."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from generators import EulerSampler
from generators.backbone import BackboneConfig
from generators.base import Condition
from generators.checkpoint import load_checkpoint
from generators.models import GENERATORS, FlowMatchingConfig
from generators.step_memory import FORWARD_MARGIN, _forward_peak, forward_bytes

from tiny import two_step_run

BACKBONE = BackboneConfig(
    channels=2, history=2, static_channels=3, calendar_features=4, widths=(32, 64, 128)
)
"""The backbone whose count ``test_step_memory`` sets beside a real CPU forward."""
GRIDS = [(64, 96), (181, 360)]
"""The CUDA check's grids: the CPU measurement's, and the 1 degree global one."""


def counted(kind: str, model_config: object, grid: tuple[int, int]) -> int:
    """The count by the method of before it was recorded: a fresh meta model's peaks at
    batches 1 and 2, the difference taken :data:`FORWARD_MARGIN` times."""
    with torch.device("meta"):
        model = GENERATORS[kind](model_config)
    one, two = (_forward_peak(model, grid, batch) for batch in (1, 2))
    return round(FORWARD_MARGIN * (two - one))


READ = """
import sys
from generators.checkpoint import load_checkpoint
for path in sys.argv[1:]:
    checkpoint = load_checkpoint(path)
    print(checkpoint.forward_bytes(checkpoint.grid), "torch._dynamo" in sys.modules)
"""
"""A fresh process's forecast count from each checkpoint in turn, and whether it had run
the meta count by then (whose first kernel imports ``torch._dynamo``): one process for
them all, as a count run for one would show on its own line and every line after."""


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
    read = [(tmp_path / "run", trained.model_config, (16, 16)), (saved.path, other, (32, 48))]
    done = subprocess.run(
        [sys.executable, "-c", READ, *(str(path) for path, _, _ in read)],
        capture_output=True,
        text=True,
        check=True,
    )
    lines = done.stdout.splitlines()
    assert len(lines) == len(read), done.stdout
    for line, (_, model_config, grid) in zip(lines, read, strict=True):
        assert line.split() == [str(counted("flow_matching", model_config, grid)), "False"]


def test_the_cuda_check_s_counts_grow_with_the_grid():
    # what test_a_forecast_batch_on_cuda_grows_within_its_count compares with, on the CPU:
    # more than the points' ratio, as the coarsest level's attention grows with their square
    small, large = (
        forward_bytes("flow_matching", FlowMatchingConfig(backbone=BACKBONE), g) for g in GRIDS
    )
    points = (181 * 360) / (64 * 96)
    assert large / small > points


def cuda_growth(model: torch.nn.Module, grid: tuple[int, int], k: int) -> float:
    """Bytes a trajectory adds to the peak CUDA memory of a no-grad ``model.sample`` of one
    network evaluation, from 1 to ``k`` trajectories (after a warm-up at ``k``): the
    conditions made within, as the count has its inputs."""
    c = model.backbone.config

    def peak(n: int) -> int:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        cuda = torch.device("cuda")
        condition = Condition(
            torch.randn(n, c.history, c.channels, *grid, device=cuda),
            torch.randn(n, c.static_channels, *grid, device=cuda),
            torch.randn(n, c.calendar_features, device=cuda),
            torch.ones(n, device=cuda),
        )
        with torch.no_grad():
            model.sample(condition, 1, sampler=EulerSampler(nfe=1), generator=torch.Generator())
        del condition
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - before

    peak(k)  # warm-up: cuDNN's choice of kernels, the allocator's first blocks
    return (peak(k) - peak(1)) / (k - 1)


@pytest.mark.gpu
@pytest.mark.parametrize("grid", GRIDS)
def test_a_forecast_batch_on_cuda_grows_within_its_count(grid):
    """FORWARD_MARGIN is to cover what the CPU could not measure: CUDA's caching allocator
    and cuDNN's workspaces. A real batch's growth a trajectory stays within the count."""
    config = FlowMatchingConfig(backbone=BACKBONE)
    model = GENERATORS["flow_matching"](config).cuda().eval()
    grown = cuda_growth(model, grid, 8)
    estimate = forward_bytes("flow_matching", config, grid)
    print(f"{grid}: {grown / 2**20:.1f} MiB a trajectory on CUDA, {estimate / 2**20:.1f} counted")
    assert 0 < grown <= estimate
