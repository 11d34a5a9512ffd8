"""The memory of a training step, estimated before any step: its count against limit cases
(linear in the batch, growing with the grid, the fine-tune's members and evaluations), a
derived config's batch fitted to the memory available, and a config that cannot fit
refused before anything is written (the 1 degree global store of the "bigger data"
walkthrough trained at batch 16 into an out-of-memory kill)."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys

import pytest
import torch

import generators.config_derive
import generators.step_memory
from flows.cli import main as wxens
from generators.backbone import BackboneConfig
from generators.config import FineTuneConfig, ModelSpec, TrainConfig
from generators.config_data import DataConfig
from generators.config_derive import derive_config
from generators.models import GENERATORS, FlowMatchingConfig
from generators.step_memory import LiveBytes, _saved_bytes, forward_bytes, step_memory
from pipeline.store import ingest

from tiny import TINY

FLOW = FlowMatchingConfig(backbone=dataclasses.replace(TINY, attention_heads=0))
CONFIG = TrainConfig(
    model=ModelSpec("flow_matching", FLOW),
    data=DataConfig(channels=("t2m",)),
    fine_tune=FineTuneConfig(crps_members=4, crps_nfe=2),
)


def phase(memory, name):
    (found,) = [p for p in memory.phases if p.name == name]
    return found


def test_the_count_is_linear_in_the_batch_and_grows_with_the_grid_and_the_members():
    memory = step_memory(CONFIG, FLOW, (32, 48))
    main, tuned = phase(memory, "main"), phase(memory, "fine-tune")
    with torch.device("meta"):
        model = GENERATORS["flow_matching"](FLOW)
    # a third batch, counted on its own, on the line through batches 1 and 2
    assert _saved_bytes(model, (32, 48), 5) == main.counted(5) - main.parameters
    # four times the points, about four times the activations of a sample
    bigger = phase(step_memory(CONFIG, FLOW, (64, 96)), "main")
    assert 3.5 < bigger.per_sample / main.per_sample < 4.5
    # 4 members x 2 evaluations, each keeping its activations for the backward pass
    assert 6 < tuned.per_sample / main.per_sample < 10
    assert memory.bytes_at(8) == tuned.estimate(8) > main.estimate(8)
    # the parameters: weights, gradients, two AdamW moments and the EMA
    n = sum(p.numel() for p in model.parameters())
    assert main.parameters == 5 * 4 * n
    assert memory.largest_batch(memory.bytes_at(4), 16) == 4
    assert memory.largest_batch(memory.bytes_at(4) - 1, 16) == 2
    assert memory.largest_batch(memory.bytes_at(1) - 1, 16) == 0


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    path = tmp_path_factory.mktemp("memory") / "global.zarr"
    spec = "synthetic:n_lat=16,n_lon=32,lon_min=0,lon_max=348.75,n_times=200,step=6h,seed=4"
    return ingest(spec, path, variables=["t2m"], progress=False)


def room(monkeypatch, gib_free: float) -> None:
    free = int(gib_free * 2**30)
    monkeypatch.setattr(generators.step_memory, "available_memory", lambda device: (0, free))


def recorded(monkeypatch, module) -> list:
    """The step memories ``module`` counts from now on (its ``step_memory`` recorded)."""
    seen = []
    real = module.step_memory

    def record(*args):
        seen.append(real(*args))
        return seen[-1]

    monkeypatch.setattr(module, "step_memory", record)
    return seen


def test_a_derived_batch_fits_the_memory_available(store, monkeypatch):
    seen = recorded(monkeypatch, generators.config_derive)
    assert derive_config(store, steps=20, device="cpu").config.batch_size == 16
    memory = seen[-1]
    # room for batch 4 (and the states, read into memory by the training and validation
    # datasets, each the whole store) within 80 %, not for 8
    states = 2 * 200 * 16 * 32 * 4
    room(monkeypatch, (memory.bytes_at(4) / 0.8 + states + 1) / 2**30)
    derived = derive_config(store, steps=20, device="cpu")
    assert derived.config.batch_size == 4
    assert any("batch 4: a step needs about" in n and "16 would need" in n for n in derived.notes)
    # split over 2 processes, each with half of the host: 2 + 2
    room(monkeypatch, (2 * memory.bytes_at(2) / 0.8 + states + 1) / 2**30)
    assert derive_config(store, steps=20, device="cpu", processes=2).config.batch_size == 4


def test_a_store_too_large_for_one_sample_is_refused_before_any_config(
    store, tmp_path, monkeypatch, capsys
):
    room(monkeypatch, 0.001)
    run = tmp_path / "run"
    argv = ["train", "--store", str(store.path), "--out", str(run), "--set", "steps=20"]
    assert wxens([*argv, "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "a training step of one sample needs about" in err
    assert "ingest a coarser grid or a smaller region" in err
    assert not (run / "config.yaml").exists()


def test_a_written_config_too_large_is_refused_with_the_batch_that_fits(
    store, tmp_path, monkeypatch, capsys
):
    run = tmp_path / "run"
    argv = ["train", "--store", str(store.path), "--out", str(run), "--no-progress"]
    argv += ["--set", "steps=2", "--threads", "1"]
    seen = recorded(monkeypatch, generators.step_memory)
    assert wxens(argv) == 0  # derives config.yaml, at batch 16, and trains it
    config, memory = run / "config.yaml", seen[-1]  # as the training counted it
    room(monkeypatch, (memory.bytes_at(2) / 0.8 + 1) / 2**30)  # batch 2 within 80 %
    other = tmp_path / "other"
    argv = ["train", "--store", str(store.path), "--config", str(config), "--out", str(other)]
    assert wxens([*argv, "--no-progress", "--threads", "1"]) == 2
    err = capsys.readouterr().err
    assert "a training step of 16 sample(s) needs about" in err
    assert "lower batch_size to 2 (--set batch_size=2)" in err
    assert not (other / "last.pt").exists()
    # the advice taken, it trains
    assert wxens([*argv, "--no-progress", "--threads", "1", "--set", "batch_size=2"]) == 0
    assert (other / "last.pt").exists()


def test_the_batch_a_refusal_suggests_fits_the_share_a_derived_batch_takes():
    """A step refused for 64 samples suggests the batch whose step fits in 80 % of the
    memory available, as a derived config's does: the 1 degree walkthrough's written config
    at batch 64 was told batch 16, whose estimate (19.7 GiB) filled 94 % of the host's
    20.9 GiB and left nothing for the runtime, the states, the validation or the forecasts."""
    memory = step_memory(CONFIG, FLOW, (32, 48))
    available = memory.bytes_at(4) + 1  # 4 fits, barely; 2 within 80 %
    with pytest.raises(generators.step_memory.InputError, match="lower batch_size to 2 "):
        generators.step_memory.check_step_fits(memory, 64, (available, "the host"))
    # too tight for 1 within 80 % but one sample fits: 1 is the batch to try
    with pytest.raises(generators.step_memory.InputError, match="lower batch_size to 1 "):
        generators.step_memory.check_step_fits(memory, 64, (memory.bytes_at(1) + 1, "the host"))


def test_a_derived_batch_leaves_room_for_the_one_copy_of_the_states(store, monkeypatch):
    """The training reads the whole store into memory (the 61 x 360 walkthrough logged
    "reading 226.2 MB of states into memory"), once for all its parts: room for batch 4 and
    one copy is room for batch 4 (two copies were reserved, one a part), not less."""
    seen = recorded(monkeypatch, generators.config_derive)
    derive_config(store, steps=20, device="cpu")
    memory, states = seen[-1], 200 * 16 * 32 * 4
    room(monkeypatch, (memory.bytes_at(4) / 0.8 + states + 1) / 2**30)
    assert derive_config(store, steps=20, device="cpu").config.batch_size == 4
    room(monkeypatch, (memory.bytes_at(4) / 0.8 + states - 2**10) / 2**30)
    assert derive_config(store, steps=20, device="cpu").config.batch_size == 2


def test_a_refusal_over_processes_names_the_batch_given_and_the_share_of_each():
    """``--nproc 2`` at batch_size 64 was refused as "a training step of 32 sample(s)",
    a number the user never gave; it names the global batch and each process's share."""
    memory = step_memory(CONFIG, FLOW, (32, 48))
    room = (memory.bytes_at(2) + 1, "the host (a share of 2 processes)")
    with pytest.raises(generators.step_memory.InputError) as refused:
        generators.step_memory.check_step_fits(memory, 32, room, ranks=2)
    message = str(refused.value)
    assert "batch_size 64, 32 sample(s) a process, needs about" in message
    assert "lower batch_size to 2 (--set batch_size=2), whose step needs about" in message
    assert "a process" in message.split("whose step needs about")[1]


SAMPLE_PEAK = """
import re, sys, torch
from generators import EulerSampler
from generators.base import Condition
from generators.models import GENERATORS, FlowMatchingConfig
from generators.backbone import BackboneConfig
torch.set_num_threads(1)
model = GENERATORS["flow_matching"](FlowMatchingConfig(backbone=eval(sys.argv[1]))).eval()
peaks = []
for n in (8, 24):
    cond = Condition(torch.randn(n, 2, 2, 64, 96), torch.randn(n, 3, 64, 96),
                     torch.randn(n, 4), torch.ones(n))
    with torch.no_grad():
        model.sample(cond, 1, sampler=EulerSampler(nfe=1), generator=torch.Generator())
    status = open("/proc/self/status").read()  # VmHWM: peak resident kB (not kept over exec)
    peaks.append(int(re.search(r"VmHWM:\\s+(\\d+) kB", status).group(1)) * 1024)
print((peaks[1] - peaks[0]) // 16)
"""
"""Peak resident bytes a trajectory of a no-grad ``model.sample`` adds (from 8 to 24
trajectories, each batch's memory freed and reused by the next), one thread. Linux:
``ru_maxrss`` would keep the parent's peak over ``exec``, ``VmHWM`` starts afresh."""


def sample_peak(backbone: BackboneConfig, **env: str) -> int:
    """:data:`SAMPLE_PEAK`'s bytes a trajectory, run with ``env`` added to the environment."""
    done = subprocess.run(
        [sys.executable, "-c", SAMPLE_PEAK, repr(backbone)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **env},
    )
    return int(done.stdout.split()[-1])


def test_a_forward_s_estimate_bounds_a_measured_no_grad_forward_closely_from_above():
    # 2 channels, 2 history states, 3 static fields, 4 calendar features, on 64 x 96:
    # few enough rows that the CPU runs them in one slice (no slicing caps the peak)
    backbone = BackboneConfig(
        channels=2, history=2, static_channels=3, calendar_features=4, widths=(32, 64, 128)
    )
    counted = forward_bytes("flow_matching", FlowMatchingConfig(backbone=backbone), (64, 96))
    measured = sample_peak(backbone)  # glibc's default: freed blocks kept for reuse
    assert measured > 2**20  # the measurement saw the activations (several MiB a trajectory)
    assert measured <= counted  # 6.8 to 14.5 MB measured, 20.3 MB counted when written
    # with the mmap threshold fixed, each freed block goes back at once: the real peak,
    # 6.3 MB when written (3.2 times); the activations a training step saves, 36.5 MB,
    # were 5.8 times
    assert counted <= 4 * sample_peak(backbone, MALLOC_MMAP_THRESHOLD_="131072")


def test_the_live_bytes_of_a_chain_of_convolutions_peak_at_two_and_a_skip_adds_one():
    """Peaks worked out by hand: in a chain, only a convolution's input and output are
    alive at once; a skip connection keeps one activation more alive."""
    convs = [torch.nn.Conv2d(4, 4, 3, padding=1, device="meta") for _ in range(4)]
    one = 4 * 10 * 12 * 4  # an activation's bytes: 4 channels on 10 x 12, float32

    def count(forward) -> LiveBytes:
        with torch.no_grad(), torch.device("meta"), LiveBytes() as counter:
            forward(torch.zeros(1, 4, 10, 12))
        return counter

    def chain(x):
        for conv in convs:
            x = conv(x)

    def skip(x):
        x = convs[0](x)
        h = convs[1](x)
        h = convs[2](h)  # x kept for the skip, with the convolution's input and output
        return h + x

    def in_place(x):  # views and in-place results share their input's storage
        view = x.view(4, 120)
        view.mul_(2)
        view.add_(1).t_()
        torch.relu_(x.transpose(2, 3))

    assert count(chain).peak == 2 * one
    assert count(skip).peak == 3 * one
    assert count(in_place).peak == one
    assert count(chain).now == count(skip).now == 0  # each freed tensor taken off
    # the input alone: the weights, made before, are not counted when written into
    assert count(lambda x: convs[0].weight.mul_(1)).peak == one


def test_a_forward_is_counted_alike_whatever_objective_the_checkpoint_was_trained_with():
    # a checkpoint saved after a fair-CRPS fine-tune holds the tuned objective (4 members x
    # 2 evaluations with gradients); one no-grad forward is one network evaluation all the same
    tuned = dataclasses.replace(FLOW, **CONFIG.fine_tune.objective_overrides())
    plain = forward_bytes("flow_matching", FLOW, (32, 48))
    assert forward_bytes("flow_matching", tuned, (32, 48)) == plain
