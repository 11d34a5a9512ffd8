"""``wxens train --store S --config C.yaml --out DIR``: train a generator on an analysis store.

``--nproc N`` trains data-parallel in N processes on this machine (one GPU each on CUDA):
it starts ``torchrun --standalone --nproc_per_node N -m flows.cli train ...`` with the other
options. Several machines: run ``torchrun`` with its rendezvous arguments on each (see
docs/generate.md); rank 0 alone calibrates and prints.
"""

from __future__ import annotations

import argparse

NAME = "train"
HELP = "train a flow-matching or EDM generator on an analysis store (resumes from DIR/last.pt)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", required=True, help="the analysis store to train on")
    parser.add_argument(
        "--config", required=True, help="training config (YAML or TOML), see configs/"
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set optim.lr=1e-4 --set steps=500 (repeatable)",
    )
    parser.add_argument("--out", required=True, help="output directory: last.pt, log.jsonl")
    parser.add_argument(
        "--no-resume", action="store_true", help="start over even if DIR/last.pt exists"
    )
    parser.add_argument(
        "--threads",
        type=int,
        help="CPU threads of this run (default: one per core); give runs side by side a "
        "share each, or they slow each other down many times over",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument(
        "--nproc",
        type=int,
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
    from generators.calibration import calibrate_checkpoint
    from generators.checkpoint import load_checkpoint
    from generators.config import load_train_config
    from generators.correction.spread import SpreadCalibration
    from generators.distributed import World, launch, shard_size, world_from_env
    from generators.train import train
    from pipeline.store import open_store

    if args.threads is not None:
        import torch

        from pipeline.errors import InputError

        if args.threads < 1:
            raise InputError(f"--threads must be at least 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    config = load_train_config(args.config, args.overrides)  # bad configs fail before launch
    if args.nproc is not None:  # refuse here what every process would refuse
        shard_size(config.batch_size, World(size=max(args.nproc, 1)))
        open_store(args.store)
        return launch(args.nproc, torchrun_command(args))
    result = train(
        args.store, config, args.out, resume=not args.no_resume, progress=not args.no_progress
    )
    if not world_from_env().is_main:
        return 0
    if config.calibration is not None:  # the config's spread calibration, fitted after training
        calibrate_checkpoint(
            result.checkpoint, args.store, config.calibration, progress=not args.no_progress
        )
    checkpoint = load_checkpoint(result.checkpoint)
    print(f"checkpoint {result.checkpoint} (digest {checkpoint.digest}) at step {result.step}")
    if result.train_loss is not None:
        print(f"last training loss {result.train_loss:.4f}")
    if result.validation_loss is not None:
        print(f"validation loss {result.validation_loss:.4f}")
    if checkpoint.calibration is not None:
        print(SpreadCalibration.from_dict(checkpoint.calibration).report())
    return 0
