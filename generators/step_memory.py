"""Memory of a training step, estimated before any step is taken: :func:`step_memory`, by
which :func:`generators.config_derive.derive_config` fits its batch to the machine and
:class:`generators.train.Trainer` refuses a batch that cannot fit (:func:`check_step_fits`).

A step holds the parameters :data:`PARAMETER_COPIES` times (the weights, their gradients,
AdamW's two moments and the EMA's copy) and, from the loss to its backward pass, the
tensors autograd saves for it. Those are counted by running the phase's loss on the meta
device (shapes only: no memory, no compute) under
:func:`torch.autograd.graph.saved_tensors_hooks`, each storage once. They grow linearly
with the batch, so two counts (batches 1 and 2) give them at any batch. The fine-tune's
fair-CRPS loss draws ``crps_members`` members through ``crps_nfe`` network evaluations
with gradients, so it holds about ``crps_members x crps_nfe`` times (8 by default) the
main phase's activations: it sets the batch on large grids.

The count is float32 (an upper bound under bf16 autocast); the activations are taken
:data:`ACTIVATION_MARGIN` times for what it leaves out (the backward pass's gradient
buffers, kernels' workspaces, the allocator's slack). ``benchmarks/train_memory.py`` sets
the estimate beside the peak resident memory of real CPU steps.

A forecast's network, run without gradients, holds far less: :func:`forward_bytes` counts
the peak of the bytes its tensors hold at once, again on the meta device.
"""

from __future__ import annotations

import dataclasses
import functools
import weakref
from dataclasses import dataclass

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from generators.base import BACKBONES, BaseBackboneConfig, Batch, Condition, backbone_kind
from generators.config import TrainConfig
from generators.data import ResidualDataset
from generators.device import available_memory
from generators.distributed import World, shard_size
from generators.models import GENERATORS
from pipeline.errors import InputError

PARAMETER_COPIES = 5
"""Copies of the parameters a step holds: weights, gradients, two AdamW moments, the EMA."""
ACTIVATION_MARGIN = 1.3
"""Factor on the counted activations. Real CPU steps on 1 and 2 degree global grids peaked
at 1.14 to 1.29 times the count (``benchmarks/train_memory.py``); on the UK sample's small
grid, whose many small tensors the allocator fragments, at 1.5 to 1.6 (below 2 GiB)."""
FORWARD_MARGIN = 2.5
"""Factor on a no-grad forward's counted peak (:func:`forward_bytes`), for what the count
leaves out: kernels' workspaces (oneDNN's reordered copies, cuDNN's) and the allocator's
slack. A real ``model.sample`` on the CPU, one thread, grew by 0.78 (64 x 96) to 1.24
(181 x 360) times the count a trajectory with glibc's mmap threshold fixed (freed blocks
given back at once), by 0.85 to 1.8 and 1.5 to 1.9 times with its default: 2.5 leaves a
third over the most seen, for the allocators and kernels not measured (CUDA's)."""
MEMORY_SHARE = 0.8
"""Share of the memory available a batch is fitted to (a derived config's, and the one a
refusal suggests); the rest is for what a step's estimate leaves out: the runtime, the
states read in, the validation and the calibration forecasts."""


@dataclass(frozen=True)
class PhaseMemory:
    """Bytes of a step of one phase: the parameters' copies, and the activations autograd
    saves, ``fixed + batch * per_sample`` (as counted, without the margin)."""

    name: str
    parameters: int
    fixed: int
    per_sample: int

    def counted(self, batch: int) -> int:
        return self.parameters + self.fixed + batch * self.per_sample

    def estimate(self, batch: int) -> int:
        """:meth:`counted` with the activations taken :data:`ACTIVATION_MARGIN` times."""
        return self.parameters + round(ACTIVATION_MARGIN * (self.fixed + batch * self.per_sample))


@dataclass(frozen=True)
class StepMemory:
    """The :class:`PhaseMemory` of the main phase and of the fine-tune (if any)."""

    phases: tuple[PhaseMemory, ...]

    def bytes_at(self, batch: int) -> int:
        """Peak bytes of a step at ``batch`` samples, over the phases."""
        return max(phase.estimate(batch) for phase in self.phases)

    def largest_batch(self, available: int, most: int) -> int:
        """The largest power of two up to ``most`` whose step fits in ``available`` bytes
        (0: not even one sample)."""
        batch = 1 << (most.bit_length() - 1)
        while batch >= 1 and self.bytes_at(batch) > available:
            batch //= 2
        return batch

    def text(self, batch: int) -> str:
        """``3.1 GiB (fine-tune; main 0.6 GiB)``: the step's bytes at ``batch``, by phase."""
        peak, *others = sorted(self.phases, key=lambda phase: -phase.estimate(batch))
        rest = ", ".join(f"{p.name} {gib(p.estimate(batch))}" for p in others)
        return f"{gib(peak.estimate(batch))} ({peak.name}" + (f"; {rest})" if rest else ")")


MORE_MEMORY = (
    "train on a machine or device with more memory, or ingest a coarser grid or a smaller region"
)
"""The fix for a step that does not fit at one sample."""


def gib(n: int | float) -> str:
    return f"{n / 2**30:.1f} GiB"


def step_memory(config: TrainConfig, model_config: object, grid: tuple[int, int]) -> StepMemory:
    """The :class:`StepMemory` of ``config``'s phases, its model sized by ``model_config``
    (the backbone's channels, history, static fields and calendar features set), on a
    (H, W) ``grid``. Counted once per model, phases and grid (about a second)."""
    kinds = [("main", model_config)]
    if config.fine_tune is not None:
        tuned = dataclasses.replace(model_config, **config.fine_tune.objective_overrides())
        kinds.append(("fine-tune", tuned))
    return _counted(config.model.kind, tuple(kinds), tuple(grid))


def forward_bytes(
    kind: str, model_config: object, grid: tuple[int, int], counted: int | None = None
) -> int:
    """Bytes per sample of one no-grad network evaluation of the ``kind`` model sized by
    ``model_config`` on a (H, W) ``grid``: its count (:func:`forward_count`; ``counted``
    when already known, as a checkpoint records it) taken :data:`FORWARD_MARGIN` times."""
    if counted is None:
        counted = forward_count(kind, model_config, grid)
    return round(FORWARD_MARGIN * counted)


@functools.lru_cache(maxsize=16)
def forward_count(kind: str, model_config: object, grid: tuple[int, int]) -> int:
    """Counted bytes per sample of one no-grad network evaluation of the ``kind`` model
    sized by ``model_config`` on a (H, W) ``grid``, as a forecast makes it: the condition
    encoded, then the network run on a float64 state (as the samplers hold it). Counted on
    the meta device (:class:`LiveBytes`: the peak of the bytes its tensors hold at once,
    with float32 weights: an upper bound under bf16) at batches 1 and 2. It takes about a
    second in a fresh process, nearly all of it the import of ``torch._dynamo`` that the
    meta kernels' first call makes (0.1 s after it), so a checkpoint records it when saved
    (:attr:`generators.checkpoint.Checkpoint.forward_count`). A no-grad forward frees each
    activation once used: on a 181 x 360 grid of 4 channels (a derived backbone, widths 16
    to 256) it counts 0.034 GiB a trajectory (0.086 with the margin) where a real
    ``model.sample`` grew by 0.050 to 0.065 GiB (one CPU thread, unsliced), and the
    activations a training loss saves for the backward pass (:func:`step_memory`) 0.19 GiB.
    Whatever objective ``model_config`` holds, one evaluation is counted (a fair-CRPS
    fine-tune draws its members with gradients only when training)."""
    with torch.device("meta"):
        model = GENERATORS[kind](model_config)
    one, two = (_forward_peak(model, grid, batch) for batch in (1, 2))
    return two - one


class LiveBytes(TorchDispatchMode):
    """Counts, under it, the bytes the tensors that operators make hold at once: each
    storage when first made (a view or an in-place result shares its input's, so adds
    nothing), until the last tensor on it is freed; :attr:`peak` is the most at once.
    Tensors made before it (the weights, say) are not counted."""

    def __init__(self) -> None:
        super().__init__()
        self.live: dict[int, list[int]] = {}  # by storage: [bytes, tensors on it]
        self.now = self.peak = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        given = {t.untyped_storage()._cdata for t in _tensors((args, kwargs))}
        for t in _tensors(out):
            storage = t.untyped_storage()
            key = storage._cdata
            if key not in self.live:
                if key in given:  # a view of, or written into, a tensor made before
                    continue
                self.live[key] = [storage.nbytes(), 0]
                self.now += storage.nbytes()
                self.peak = max(self.peak, self.now)
            self.live[key][1] += 1
            weakref.finalize(t, self._freed, key)
        return out

    def _freed(self, key: int) -> None:
        entry = self.live[key]
        entry[1] -= 1
        if entry[1] == 0:
            self.now -= entry[0]
            del self.live[key]


def _tensors(tree: object) -> list[torch.Tensor]:
    return [t for t in tree_flatten(tree)[0] if isinstance(t, torch.Tensor)]


def _forward_peak(model: torch.nn.Module, grid: tuple[int, int], batch: int) -> int:
    """Peak bytes of one no-grad network evaluation of a meta ``model`` on ``batch``
    samples, its inputs included (:class:`LiveBytes`)."""
    c = model.backbone.config
    with torch.no_grad(), torch.device("meta"), LiveBytes() as counter:
        condition = meta_condition(c, batch, grid)
        state = torch.zeros(batch, c.channels, *grid, dtype=torch.float64)
        noise = torch.full((batch,), 0.5, dtype=torch.float64)
        model.network_fn(model.backbone.encode(condition))(state, noise)
    return counter.peak


@functools.lru_cache(maxsize=16)
def _counted(kind: str, kinds: tuple, grid: tuple[int, int]) -> StepMemory:
    with torch.device("meta"):
        model = GENERATORS[kind](kinds[0][1])
    check_network(kind, model, grid)
    parameters = PARAMETER_COPIES * sum(p.numel() * p.element_size() for p in model.parameters())
    phases = []
    for name, objective in kinds:
        model.config = objective
        one, two = (_saved_bytes(model, grid, batch) for batch in (1, 2))
        phases.append(PhaseMemory(name, parameters, 2 * one - two, two - one))
    return StepMemory(tuple(phases))


def _saved_bytes(model: torch.nn.Module, grid: tuple[int, int], batch: int) -> int:
    """Bytes autograd saves for the backward pass of ``model``'s loss on a meta batch, and
    the batch itself, each storage counted once."""
    c = model.backbone.config
    h, w = grid
    with torch.device("meta"):
        condition = meta_condition(c, batch, grid)
        inputs = Batch(condition, target=torch.zeros(batch, c.channels, h, w))
    saved: dict[int, torch.Tensor] = {}  # by id of the base tensor, which it keeps alive

    def pack(t: torch.Tensor) -> torch.Tensor:
        base = t if t._base is None else t._base
        saved[id(base)] = base
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model.loss(inputs)
    tensors = list(saved.values()) + [condition.history, condition.static, inputs.target]
    return sum(
        t.numel() * t.element_size() for t in tensors if not isinstance(t, torch.nn.Parameter)
    )


def meta_condition(c: BaseBackboneConfig, batch: int, grid: tuple[int, int]) -> Condition:
    """A condition of ``batch`` samples on a (H, W) ``grid`` for a backbone sized by ``c``,
    of zeros on the meta device (shapes only)."""
    with torch.device("meta"):
        return Condition(
            history=torch.zeros(batch, c.history, c.channels, *grid),
            static=torch.zeros(batch, c.static_channels, *grid),
            calendar=torch.zeros(batch, c.calendar_features),
            lead=torch.ones(batch),
        )


def check_network(kind: str, model: torch.nn.Module, grid: tuple[int, int]) -> None:
    """Refuse, before any step, the ``kind`` model whose network fails on one meta sample,
    or returns a field of another shape than the state it is given. An extension's network
    (a generator's or a backbone's of its own) would fail deep in torch, or, returning fewer
    channels, be broadcast in the loss and train silently; the refusal names the generator,
    the backbone and the extension of each."""
    c = model.backbone.config
    backbone = backbone_kind(c)
    who = (
        f"the generator {kind!r} of {GENERATORS.extension_of(kind) or 'wxens'}, backbone "
        f"{backbone!r} of {BACKBONES.extension_of(backbone) or 'wxens'},"
    )
    where = (
        f"on a state of {c.channels} channel(s) on the {grid[0]} x {grid[1]} grid (on the meta "
        "device, where wxens sizes a training step before taking one): fix its network, or "
        "choose another model.kind or model.backbone.kind"
    )
    with torch.no_grad(), torch.device("meta"):
        state = torch.zeros(1, c.channels, *grid)
        try:
            encoded = model.backbone.encode(meta_condition(c, 1, grid))
            out = model.network_fn(encoded)(state, torch.full((1,), 0.5))
        except Exception as err:  # third-party code: whatever it raises
            raise InputError(f"{who} failed ({type(err).__name__}: {err}) {where}") from err
    if out.shape != state.shape:
        raise InputError(
            f"{who} returned a field of shape {tuple(out.shape)} "
            f"for one of {tuple(state.shape)} {where}"
        )


def step_room(device: torch.device, processes: int = 1, reserved: int = 0) -> tuple[int, str]:
    """Bytes one process's training step may take now, and where: the free memory of a
    CUDA device (one a process), else the host's available memory less ``reserved`` (what
    is yet to be read into it), shared by ``processes`` processes."""
    on_device, on_host = available_memory(device)
    if device.type == "cuda":
        return on_device, str(device)
    room = max(0, on_host - reserved) // processes
    return room, "the host" + (f" (a share of {processes} processes)" if processes > 1 else "")


def check_training_fits(
    config: TrainConfig,
    model_config: object,
    data: ResidualDataset,
    device: torch.device,
    world: World,
) -> None:
    """Refuse, before any step, a ``config`` whose training step on the grid of ``data``
    needs more memory than this rank has (:func:`check_step_fits`); on the CPU the ranks
    share the host's."""
    sharing = 1 if device.type == "cuda" else world.size
    memory = step_memory(config, model_config, tuple(data.static.shape[-2:]))
    check_step_fits(
        memory, shard_size(config.batch_size, world), step_room(device, sharing), world.size
    )


def check_step_fits(memory: StepMemory, shard: int, room: tuple[int, str], ranks: int = 1) -> None:
    """Refuse a step of ``shard`` samples on each of ``ranks`` ranks that needs more than the
    ``room`` of a rank (:func:`step_room`): an :class:`InputError` with the estimate and the
    batch size whose step fits in :data:`MEMORY_SHARE` of it (else the largest that fits)."""
    available, where = room
    if memory.bytes_at(shard) <= available:
        return
    fits = memory.largest_batch(round(MEMORY_SHARE * available), shard) or (
        memory.largest_batch(available, shard)
    )
    each = " a process" if ranks > 1 else ""
    fix = (
        f"lower batch_size to {fits * ranks} (--set batch_size={fits * ranks}), whose step "
        f"needs about {gib(memory.bytes_at(fits))}{each}"
        if fits
        else MORE_MEMORY
    )
    step = f"{shard} sample(s)"
    if ranks > 1:  # the batch the user gave, and each process's share
        step = f"batch_size {shard * ranks}, {shard} sample(s){each},"
    raise InputError(
        f"a training step of {step} needs about {memory.text(shard)} on {where}, "
        f"but {gib(available)} is available; {fix}"
    )


def fitted_batch(
    config: TrainConfig, memory: StepMemory, room: tuple[int, str], processes: int
) -> tuple[TrainConfig, str]:
    """``config`` with the largest batch (a power of two a process, at most its own batch
    in all) whose step fits in :data:`MEMORY_SHARE` of the ``room`` of a process
    (:func:`step_room`), and a note saying so; an :class:`InputError` when one sample does
    not fit."""
    available, where = room
    share = MEMORY_SHARE
    most = max(1, config.batch_size // processes)
    shard = memory.largest_batch(round(share * available), most)
    if shard == 0:
        raise InputError(
            f"a training step of one sample needs about {memory.text(1)}, more than "
            f"{share:.0%} of the {gib(available)} available on {where}; {MORE_MEMORY}"
        )
    note = (
        f"batch {shard * processes}: a step needs about {memory.text(shard)}, within {share:.0%} "
        f"of the {gib(available)} available on {where}"
    )
    if shard < most:
        note += f" ({most * processes} would need {gib(memory.bytes_at(most))})"
    return dataclasses.replace(config, batch_size=shard * processes), note
