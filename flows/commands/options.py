"""Options shared by the sub-commands: one flag vocabulary across the CLI.

Every command spells the same thing the same way (``--lead``, ``--out``,
``--bias-weight``/``--spread-weight``/``--rank-weight``). An old spelling is kept for one
release through :func:`deprecated_alias`: it still works and says what replaces it.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any


class _DeprecatedAlias(argparse.Action):
    """Stores into the new option's ``dest`` and warns once on stderr."""

    def __init__(self, option_strings: list[str], dest: str, replacement: str, **kwargs: Any):
        self.replacement = replacement
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        print(
            f"wxens: {option_string} is deprecated and will be removed in the next release; "
            f"use {self.replacement}",
            file=sys.stderr,
        )
        setattr(namespace, self.dest, values)


def deprecated_alias(
    parser: argparse.ArgumentParser, old: str, new: str, dest: str | None = None, **kwargs: Any
) -> None:
    """Accept ``old`` as a hidden, deprecated spelling of the option ``new``.

    ``dest`` is the new option's (derived from ``new`` by default); ``kwargs`` are its
    ``type``/``nargs``/``metavar`` so that the old spelling parses the same values.
    """
    dest = dest or new.lstrip("-").replace("-", "_")
    parser.add_argument(
        old, dest=dest, action=_DeprecatedAlias, replacement=new, help=argparse.SUPPRESS, **kwargs
    )


def at_least(least: int, most: int | None = None) -> Any:
    """An argparse ``type``: a whole number of at least ``least`` (``--members 0`` is
    refused by the parser, before any store is opened, naming the bound), and of at most
    ``most`` if given."""

    def whole(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < least:
            raise argparse.ArgumentTypeError(f"must be at least {least}, got {value}")
        if most is not None and value > most:
            raise argparse.ArgumentTypeError(f"must be at most {most}, got {value}")
        return value

    whole.__name__ = f"whole number >= {least}"
    return whole


def positive_hours(whole: bool = False) -> Any:
    """An argparse ``type``: a positive time span in hours, as a bare number of hours
    (``6``) or a duration as ``--lead`` takes it (``6h``, ``90min``, ``1d``); with
    ``whole``, a whole number of hours (an ``int``). Zero, a negative span or a unit-less
    typo are refused by the parser, naming the value."""

    def hours(text: str) -> float | int:
        try:
            value = float(text)
        except ValueError:
            from pipeline.spec import to_timedelta

            try:
                value = to_timedelta(text).total_seconds() / 3600
            except ValueError:
                raise argparse.ArgumentTypeError(
                    f"{text!r} is not a time span such as 6h, 1d or 6 (hours)"
                ) from None
        if not 0 < value < float("inf"):
            raise argparse.ArgumentTypeError(f"must be a positive time span, got {text!r}")
        if whole:
            if value != int(value):
                raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of hours")
            return int(value)
        return value

    hours.__name__ = "time span in hours"
    return hours


def add_config_overrides(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    help: str,
    dest: str = "overrides",
) -> None:
    """``--set KEY=VALUE`` (repeatable) into ``dest``: training config overrides, read as
    :func:`generators.config_io.apply_overrides` reads them."""
    parser.add_argument(
        "--set", dest=dest, action="append", default=[], metavar="KEY=VALUE", help=help
    )


def add_batch_members(parser: argparse.ArgumentParser) -> None:
    """``--batch-members N``: initial times x members a forecast draws together."""
    parser.add_argument(
        "--batch-members",
        type=at_least(1),
        default=512,
        help="initial times x members drawn together on the device (default 512; fewer "
        "initial times where they would not fit in the memory available)",
    )


def add_device(parser: argparse.ArgumentParser) -> None:
    """``--device``: where the networks run (:func:`check_device` refuses one missing here)."""
    parser.add_argument(
        "--device",
        default="auto",
        help="auto (CUDA if present), cpu, cuda or cuda:N; one this machine lacks is refused "
        "before anything is read",
    )


def check_device(device: str, dask_scheduler: str | None = None) -> None:
    """Refuse a ``--device`` this machine lacks (``cuda`` without CUDA) in the words of the
    command line, before any store or checkpoint is read: the refusal came from the model's
    loading, after the reads, and said ``use device: auto or cpu``, a config's spelling.
    Not with ``dask_scheduler``: the cluster's workers run the networks, on their devices."""
    if dask_scheduler is None:
        from generators.device import resolve_device

        resolve_device(device, "--device")


def check_out_writable(path: str, flag: str, writes: str) -> None:
    """Refuse, before any input is read, a store given by ``flag`` that this user may not
    write (in a folder an administrator shared read-only), naming ``path`` and the fix:
    another ``flag``. ``writes``: what the command writes there and beside it. The refusal
    came after the inputs were read (a run's after Prefect started and its ingest), as
    [Errno 13] on a lock or claim file and the CLI's line for any permission error."""
    from pipeline.writable import check_can_write

    check_can_write(path, f"{writes}: give another {flag} in a folder you can write")


def add_threads(
    parser: argparse.ArgumentParser,
    help: str = "at most N CPU threads for each pool the command starts: torch's, Zarr's "
    "codec pool, dask's local threads, and a local dask cluster of 1 worker x N threads "
    "(default: one per core each; a local cluster of 2 workers x 1 thread); give runs side "
    "by side a share each, or they slow each other down many times over",
) -> None:
    """``--threads N`` (N >= 1), which :func:`flows.threads.set_threads` applies."""
    parser.add_argument("--threads", type=at_least(1), metavar="N", help=help)


def add_forecast(parser: argparse.ArgumentParser) -> None:
    """The positional FORECAST of a command that reads any ensemble ``wxens verify`` reads
    (:func:`verification.run.open_forecast_any`)."""
    parser.add_argument(
        "forecast",
        metavar="FORECAST",
        help="wxens forecast store, or an ECMWF GRIB / WeatherBench 2 Zarr / NetCDF ensemble",
    )


def add_init_from_filename(parser: argparse.ArgumentParser) -> None:
    """``--init-from-filename PATTERN`` of a command that reads FORECAST as ``wxens verify``
    reads it (:func:`verification.run.open_forecast_any`'s ``init_from_filename``)."""
    parser.add_argument(
        "--init-from-filename",
        metavar="PATTERN",
        help="FORECAST is files (a glob), one per start date, without initial times or "
        "leads in them: read each start date from the file name with this strptime pattern "
        "(e.g. '%%Y%%m%%d' for hindcast_19931101.nc); their valid times give the leads",
    )


def add_members(parser: argparse.ArgumentParser) -> None:
    """``--members all|perturbed`` of a command that reads FORECAST as ``wxens verify``
    reads it: :func:`pipeline.members.chosen_members`' ``members`` (its ``MEMBER_CHOICES``;
    not imported, to keep the CLI's parser free of xarray)."""
    parser.add_argument(
        "--members",
        choices=("all", "perturbed"),
        default="all",
        help="members of FORECAST to use: all (default; an ECMWF GRIB's control is member 0) "
        "or perturbed (leaves out the control forecast)",
    )


def add_no_progress(parser: argparse.ArgumentParser) -> None:
    """``--no-progress``; without it a bar is drawn only on a terminal (:mod:`flows.cli`)."""
    parser.add_argument(
        "--no-progress",
        action="store_true",
        help="no progress bar (there is none when stderr is not a terminal)",
    )


def sampler_spec(text: str) -> str:
    """An argparse ``type``: a sampler spec (``euler:nfe=10``) as typed, once its name,
    keys and their types read (:func:`generators.sampler_spec.read_sampler_spec`, without
    torch): ``--sampler eulr`` is refused by the parser, at once, naming the samplers."""
    from generators.sampler_spec import read_sampler_spec  # pandas: only with a --sampler
    from pipeline.errors import InputError

    try:
        read_sampler_spec(text)
    except InputError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return text


SEED = at_least(0, 2**63 - 1)  # --seed: numpy's seeds are not negative, stores' attrs int64


#: The ``dest`` of every option (or positional) that names a file or folder; the parser
#: gives each the :func:`a_path` type (:func:`path_arguments`). Sources are not among them:
#: they may be URLs or ``synthetic:...`` specs.
PATH_DESTS = frozenset(
    {
        "baseline_store", "checkpoint", "config", "fold", "forecast", "out", "reference",
        "report", "sample", "schedule", "scores", "store", "train_config", "truth", "workdir",
    }
)  # fmt: skip


def a_path(text: str) -> str:
    """An argparse ``type``: a file or folder path, ``~`` expanded (no shell expands it
    after ``--out=``, and a folder named "~" would be made); an empty one is refused (it
    would be the working directory: ``train --out ""`` wrote its run among its files)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty path; give a file or folder path")
    path = os.path.expanduser(text)
    missing = missing_before_parent(path)
    if missing is not None:
        what = "is not a folder" if os.path.lexists(missing) else "does not exist"
        raise argparse.ArgumentTypeError(
            f"{text}: the folder {missing} {what}, so the '..' after it leads nowhere (as for "
            "ls or cp); give the path without it"
        )
    return path


def missing_before_parent(path: str) -> str | None:
    """The part of ``path`` before a ``..`` that is not a folder (``nosuch`` of
    ``nosuch/../f.zarr``), None if every one is: the system does not resolve such a path,
    but a writer that makes parent folders made ``nosuch`` and wrote ``f.zarr`` beside it."""
    parts = path.split(os.sep)
    last = max((i for i, part in enumerate(parts) if part == os.pardir), default=0)
    for i in range(1, last + 1):  # each part up to the last '..' must be a folder
        before = os.sep.join(parts[:i])
        if before and not os.path.isdir(before):
            return before
    return None


a_path.__name__ = "path"


def path_arguments(parser: argparse.ArgumentParser) -> None:
    """Give every path option of ``parser`` (:data:`PATH_DESTS`, those without a type of
    their own) the :func:`a_path` type."""
    for action in parser._actions:
        if action.dest in PATH_DESTS and action.type is None and action.nargs != 0:
            action.type = a_path


def quiet_other_ranks(verbose: bool) -> None:
    """In a process of a launch of several (torchrun, ``wxens train --nproc``) other than
    rank 0, unless ``verbose`` (``-v``): keep wxens's errors only, and its warnings about
    the initial times of its own shard (:data:`~generators.data.forecast.OWN_SHARD_LOGGER`).
    Its INFO lines (the states read, "resuming at step", a forecast's batches and stores)
    and its warnings (the training period's, a store's or a checkpoint's) came once per
    process, repeating rank 0's, which says them of every rank's initial times; its error
    line is printed by the CLI, not logged."""
    from flows.cli import WXENS_LOGGERS
    from generators.data.forecast import OWN_SHARD_LOGGER
    from generators.distributed import world_from_env

    if verbose or world_from_env().is_main:
        return
    for name in WXENS_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    logging.getLogger(OWN_SHARD_LOGGER).setLevel(logging.WARNING)
