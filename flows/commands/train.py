"""``wxens train --store S [--config C.yaml] --out DIR``: train a generator on an analysis store.

Without ``--config`` the config is derived from the store for ``--lead`` and ``--budget``,
from its times up to ``--end`` (:func:`generators.config_derive.derive_config`), printed and
written to ``DIR/config.yaml``; a resumed run reuses that file (refusing another ``--end``).

``--nproc N`` trains data-parallel in N processes on this machine (one GPU each on CUDA):
it starts ``torchrun --standalone --nproc_per_node N -m flows.cli train ...`` with the other
options (and a derived config's file as ``--config``). Several machines: run ``torchrun``
with its rendezvous arguments on each (see docs/generate.md); rank 0 alone calibrates and
prints.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from flows.commands.derive import (
    add_derive_arguments,
    derive_for,
    keep_overrides,
    refuse_another_end,
    resumed_config,
    with_overrides,
)
from flows.commands.kept import kept_refusal
from flows.commands.options import (
    add_no_progress,
    add_threads,
    at_least,
    check_out_writable,
    quiet_other_ranks,
)
from flows.threads import set_threads

DERIVED_CONFIG = "config.yaml"
NAME = "train"
HELP = (
    "train the configured generator (built-in or an extension's) on an analysis store "
    "(resumes from DIR/last.pt)"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", required=True, help="the analysis store to train on")
    parser.add_argument(
        "--config",
        help="training config (YAML or TOML), see configs/; default: one derived from the "
        "store for --lead, --budget and --end, written to DIR/config.yaml",
    )
    add_derive_arguments(parser)
    parser.add_argument("--out", required=True, help="output directory: last.pt, log.jsonl")
    parser.add_argument(
        "--no-resume", action="store_true", help="start over even if DIR/last.pt exists"
    )
    add_threads(parser)
    add_no_progress(parser)
    parser.add_argument(
        "--nproc",
        type=at_least(1),
        help="train data-parallel in this many processes on this machine (torchrun; one GPU "
        "each on CUDA, gloo on CPU); batch_size is the global batch, split between them",
    )


def torchrun_command(args: argparse.Namespace) -> list[str]:
    """The ``-m flows.cli train ...`` command each torchrun process runs: ``args`` less
    ``--nproc``."""
    command = ["-m", "flows.cli", *(["-v"] if args.verbose else []), "train"]
    command += ["--store", str(args.store), "--config", str(args.config), "--out", str(args.out)]
    for override in args.overrides:
        command += ["--set", override]
    if args.threads is not None:
        command += ["--threads", str(args.threads)]
    command += ["--no-resume"] * args.no_resume + ["--no-progress"] * args.no_progress
    return command


def run(args: argparse.Namespace) -> int:
    """Train (and calibrate) into ``--out``, which no other run may write meanwhile: two at
    once removed each other's temporary checkpoints and both logged into ``log.jsonl``. A
    process torchrun started is covered by the lock of the command that started it, and one
    of ``--nproc`` (``--nproc 1`` too) by the lock its launcher holds."""
    from flows.inputs import check_output_dir
    from generators.distributed import LAUNCHER_PID, tell_launcher, world_from_env
    from pipeline.errors import WxensError
    from pipeline.transaction import held_alone

    check_output_dir(args.out, "--out", "the run (last.pt, log.jsonl)")
    check_out_writable(args.out, "--out", "wxens train writes its run (last.pt, log.jsonl)")
    if LAUNCHER_PID in os.environ:  # a process of --nproc: its launcher says its refusal
        try:
            return _train(args)
        except WxensError as error:
            tell_launcher(error)
            raise
    if world_from_env().size > 1:
        return _train(args)
    with held_alone(args.out):
        return _train(args)


def _train(args: argparse.Namespace) -> int:
    from generators.calibration import calibrate_checkpoint
    from generators.checkpoint import load_checkpoint
    from generators.config import load_train_config
    from generators.correction.spread import SpreadCalibration
    from generators.distributed import follow_launcher, launch, world_from_env
    from generators.train import CHECKPOINT_NAME, train
    from generators.train_plan import KeptByTheRun
    from pipeline.errors import InputError
    from pipeline.store import AnalysisStore, open_store

    follow_launcher()  # a process of --nproc dies with the command that started it
    quiet_other_ranks(getattr(args, "verbose", False))  # rank 0 says it, not every process
    set_threads(args.threads)
    derived_now = None  # a config.yaml derived by this command, which trained nothing yet
    store, read = args.store, None  # a derived config's store as opened, its timing's datasets
    if args.config is None:
        fresh = args.no_resume or not (Path(args.out) / DERIVED_CONFIG).exists()
        if fresh and args.nproc is not None:  # before the derivation times and writes it
            check_cores(args.nproc, derived_device(args.overrides))
        if fresh:
            check_one_derivation(world_from_env().size, args.store, args.out)
        config, store, read = derived_config(args)
        args.config = Path(args.out) / DERIVED_CONFIG  # what every process then loads
        derived_now = args.config if fresh else None
    elif args.lead or args.budget:
        raise InputError("--lead and --budget size a derived config; with --config, drop them")
    elif args.end:
        raise InputError(
            f"--end {args.end} derives a config's periods, and --config {args.config} has its "
            "own: drop --end, or end its data.train, data.validation and calibration.period "
            "by then (or drop --config, to derive one)"
        )
    else:
        config = load_train_config(args.config, args.overrides)  # bad configs fail before launch
    try:
        if args.nproc is not None and not isinstance(store, AnalysisStore):
            store = open_store(store)  # a missing store refused here, not in every process
        check_calibration_leads(store, "--set" if derived_now else args.config, config)
        if args.nproc is not None:  # refuse here what every process would refuse
            check_split(args, config)
            if derived_now is None:  # a config derived now: its cores checked before that
                check_cores(args.nproc, config.device)
            if args.threads is not None:  # torchrun's own default (1) and its banner saying so
                os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
            checkpoint = str(Path(args.out) / CHECKPOINT_NAME)  # none: no resume to advise
            return launch(args.nproc, torchrun_command(args), checkpoint)
        result = train(
            store, config, args.out, resume=not args.no_resume, progress=not args.no_progress,
            data=read,
        )  # fmt: skip
    except KeptByTheRun as refused:  # named with where each value came from, and the fix
        raise kept_by_the_checkpoint(refused, args, config) from None
    except InputError:  # refused before a checkpoint: no config.yaml a rerun takes as its own
        if derived_now is not None and not (Path(args.out) / CHECKPOINT_NAME).exists():
            derived_now.unlink(missing_ok=True)
        raise
    if not world_from_env().is_main:
        return 0
    derived_file = Path(args.config) == Path(args.out) / DERIVED_CONFIG
    if derived_file and args.overrides:
        keep_overrides(args.config, config, args.overrides)  # a resumed derived run's --set
    if result.train_loss is None and result.step >= config.total_steps:  # resumed, no step
        print(
            f"{args.out} had finished (step {result.step} of {config.total_steps}): nothing "
            "trained; --set steps=N (more main steps, before a fine-tune) or --set "
            "fine_tune.steps=N trains on, --no-resume starts over (a derived config then "
            "takes in the store's times as they are now)"
        )
    checkpoint = load_checkpoint(result.checkpoint)
    if checkpoint.calibration is not None:  # every training save drops it: nothing trained since
        print(
            f"{result.checkpoint} keeps its spread calibration (nothing trained since it was "
            "fitted; `wxens calibrate` refits it)"
        )
    elif config.calibration is not None:  # the config's spread calibration, after training
        try:
            calibrate_checkpoint(
                result.checkpoint, args.store, config.calibration, progress=not args.no_progress
            )
        except BaseException:  # refused, out of memory, interrupted: the training is kept
            from flows.commands.calibrate import uncalibrated

            sys.stderr.write(f"{uncalibrated(args.store, config.calibration, result)}\n")
            raise
        checkpoint = load_checkpoint(result.checkpoint)
    print(f"checkpoint {result.checkpoint} (digest {checkpoint.digest}) at step {result.step}")
    for line in result.report(config):
        print(line)
    if checkpoint.calibration is not None:
        print(SpreadCalibration.from_dict(checkpoint.calibration).report())
    return 0


def kept_by_the_checkpoint(refused, args: argparse.Namespace, config):
    """The refusal ``refused`` (:class:`generators.train_plan.KeptByTheRun`) of ``config``,
    which ``--config`` (a derived run's ``OUT/config.yaml`` too) and ``--set`` made, named
    with where each value that the checkpoint trained otherwise came from, and its fix
    (:func:`flows.commands.kept.kept_refusal`): it named the values, not which --set to drop
    or what to put back in the file."""
    from generators.config import load_train_config
    from generators.config_io import to_mapping
    from pipeline.errors import InputError

    try:  # the file alone: which of its values differ from those trained
        written = to_mapping(load_train_config(args.config))
    except InputError:  # it needs its --set to load: they are said to give every value set
        written = None
    trained, asked = to_mapping(refused.trained), to_mapping(config)
    path = Path(refused.checkpoint)
    named = kept_refusal(path, trained, written, asked, args.overrides, Path(args.config))
    return refused if named is None else named


def check_cores(nproc: int, device: str) -> None:
    """``--nproc`` on the CPU (config ``device``): refuse more processes than this process's
    cores (``--nproc 64`` on 2 cores started 64 trainers, each with its own model and copy of
    the states, half a gigabyte each, which then took turns on the 2 cores)."""
    from generators.device import resolve_device, usable_cores
    from pipeline.errors import InputError, counted

    if resolve_device(device).type != "cpu":
        return  # each process takes a GPU: a rank without one is refused
    cores = usable_cores()
    if nproc > cores:
        raise InputError(
            f"--nproc {nproc} on the CPU, but this machine gives wxens "
            f"{counted(cores, 'core')}: more processes than cores only slow each other down "
            f"(each holds its own model and states); use --nproc {cores} or fewer"
        )


def check_one_derivation(processes: int, store: str, out: str) -> None:
    """Refuse to derive a config in each process of a torchrun launch: each timed its own
    steps (112 in one, 134 in another), all wrote OUT/config.yaml, and the run hung."""
    from pipeline.errors import InputError

    if processes > 1:
        raise InputError(
            f"each of the {processes} processes of torchrun would derive a config of its own "
            "(each timing its steps, so their step counts differ); derive it once: "
            f"`wxens config --store {store} > config.yaml`, then --config config.yaml, or "
            f"run `wxens train --store {store} --out {out} --nproc {processes}`"
        )


def derived_device(overrides: Sequence[str]) -> str:
    """The device of a config derived with ``overrides`` (``--set device=...``, else the
    derived ``auto``); a value that is no name is left to the config's own check."""
    from generators.config import apply_overrides

    device = apply_overrides({}, list(overrides)).get("device", "auto")
    return device if isinstance(device, str) else "auto"


def check_calibration_leads(store, where, config) -> None:
    """Refuse, before any step, a ``calibration.leads_hours`` the trained model could not
    forecast (the calibration after training would fail on it); ``store``: its path or the
    store opened."""
    import pandas as pd

    from generators.rollout_plan import plan_rollout
    from pipeline.errors import InputError
    from pipeline.store import AnalysisStore, open_store

    if config.calibration is None or not config.calibration.leads_hours:
        return
    store = store if isinstance(store, AnalysisStore) else open_store(store)
    hours = store.native_step / pd.Timedelta(hours=1)
    spec = config.data.sample_spec
    try:
        plan_rollout(
            config.calibration.leads_hours,
            [lead * hours for lead in spec.leads],
            [offset * hours for offset in spec.history],
        )
    except InputError as error:
        raise InputError(
            f"calibration.leads_hours ({where}): {error}; give leads it can reach, or leave "
            "calibration.leads_hours out (the trained leads)"
        ) from None


def check_split(args: argparse.Namespace, config) -> None:
    """``--nproc``: refuse, before any process starts, a ``batch_size`` that does not split
    over the processes (each would refuse it)."""
    from generators.distributed import World, shard_size

    if args.nproc is not None:
        shard_size(config.batch_size, World(size=max(args.nproc, 1)))


def derived_config(args: argparse.Namespace):
    """The config derived from ``--store`` (printed, written to ``OUT/config.yaml``), or the
    one an earlier derived run wrote there when resuming; ``--set`` applies to either. With
    the store as the derivation opened it and the datasets its step timing read (for the
    training to take: each a full read of a store that fits in memory), else ``--store``
    and None."""
    from generators.config import load_train_config
    from pipeline.errors import InputError

    path = Path(args.out) / DERIVED_CONFIG
    if path.exists() and not args.no_resume:
        print(f"using {path}, derived for this run before (--no-resume derives a new one)")
        warning = other_store_warning(path, derived_from(path.read_text()), args.store)
        if warning:
            print(warning)
        if args.lead or args.budget:
            given = " and ".join(
                f"--{k} {getattr(args, k)}" for k in ("lead", "budget") if getattr(args, k)
            )
            print(f"{given}: not used, this run resumes with the config derived before")
        resumed = resumed_config(path, args.overrides, args.store)
        refuse_another_end(path, resumed, args.store, args.end)
        return resumed, args.store, None
    processes = max(1, args.nproc or 1)  # the derived batch splits over them
    derived = with_overrides(derive_for(args, processes), args.overrides, args.store)
    derived.write(path)  # the config trained, --set included, beside its checkpoint
    try:
        config = load_train_config(path, args.overrides)
        check_split(args, config)
    except InputError:  # a bad --set or --nproc: no config.yaml a rerun would take as its own
        path.unlink()
        raise
    print(derived.to_yaml(), end="")
    print(f"# written to {path}")
    return config, derived.store, derived.read


def other_store_warning(config_yaml: Path, source: Path | None, store: str) -> str | None:
    """The warning for a derived config resumed with ``--store`` other than its ``source``:
    another store's run, or the same store moved (the source is gone), which is no matter."""
    if source is None or source == Path(store).resolve():
        return None
    if not source.exists():
        return (
            f"note: {config_yaml} was derived from {source}, which is no longer there: if that "
            f"store moved to {store}, this run resumes on it as it should; if {store} is "
            "another store, give it its own --out (or --no-resume to start this one over)"
        )
    return (
        f"warning: {config_yaml} was derived from {source}, not --store {store}: "
        "give this store its own --out (or --no-resume to start this one over)"
    )


def derived_from(config_yaml: str) -> Path | None:
    """The store a derived config's YAML text was derived from (its first note), or None."""
    from generators.config_notes import DERIVED_FROM, read_notes

    first = next(iter(read_notes(config_yaml)), "")  # a long path's note is wrapped
    if not first.startswith(DERIVED_FROM):
        return None
    return Path(first.removeprefix(DERIVED_FROM).split(": channel", 1)[0])


def kept(args: argparse.Namespace) -> str | None:
    """How to go on after an interrupted training: the training checkpoints the step it
    reached (and says so just before), which the same command resumes from. None in a
    process of ``--nproc``: its launcher says it, once."""
    from generators.distributed import LAUNCHER_PID
    from generators.train import CHECKPOINT_NAME

    if LAUNCHER_PID in os.environ:
        return None
    checkpoint = Path(args.out) / CHECKPOINT_NAME
    if not checkpoint.exists():
        return f"no checkpoint in {args.out}; rerun the same command to train"
    again = "the command without --no-resume" if args.no_resume else "the same command"
    return f"rerun {again} to resume from {checkpoint}"
