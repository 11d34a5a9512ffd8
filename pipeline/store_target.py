"""What is at the path an ingest writes (its ``--store``): :func:`check_replaceable` lets
through an absent path, an empty folder or a wxens analysis store, and names anything else,
with its fix, before any input is read or anything is written or deleted: a regular file,
another folder, a forecast or foreign Zarr store, a plain-Zarr export (``wxens export``)
or an analysis store an older wxens wrote as plain Zarr.
"""

from __future__ import annotations

import os
from pathlib import Path

from pipeline.analysis_store import STATE_ATTR, replaced_path
from pipeline.errors import InputError, shell_word
from pipeline.store_export import EXPORT_ATTR
from pipeline.transaction import is_empty_repository, is_plain_zarr, is_repository, read_attrs


def check_replaceable(path: Path, overwrite: bool) -> None:
    """Refuse a ``store`` path that holds something other than a wxens analysis store.

    An absent path or an empty folder is created; an analysis store is appended to, or
    replaced with ``overwrite`` (not through a symbolic link). Anything else is named in an
    InputError before any input is read or anything is written or deleted.
    """
    if overwrite and path.is_symlink():
        _refuse_replacing_link(path, path.exists() and describe_path(path.resolve()) is None)
    what = describe_path(path)
    if what is None:
        if overwrite:
            check_deletable(path)
        return
    action = "replace" if overwrite else "ingest into"
    elsewhere = "give another --store (or move it away yourself if it really is to go)"
    attrs = _plain_attrs(path) if what == "a Zarr store" else {}
    analysis = STATE_ATTR in attrs
    if EXPORT_ATTR in attrs:  # a copy for other tools: the store it came from is written
        origin = attrs[EXPORT_ATTR].get("store", "?")
        kind = "analysis " if analysis else "forecast " if attrs.get("kind") == "forecast" else ""
        raise InputError(
            f"{path} is a plain-Zarr export (wxens export) of the {kind}store {origin}; wxens "
            f"will not {action} it (an export is a copy for other tools): "
            + (
                f"ingest into {shell_word(origin)} (and export it again), or copy this one "
                f"into a new store with `wxens ingest {shell_word(path)} --store NEW.zarr`"
                if analysis and not overwrite
                else elsewhere
            )
        )
    if analysis:
        raise InputError(
            f"{path} is an analysis store of an older wxens, plain Zarr (stores are "
            f"transactional now); wxens will not {action} it: "
            + (
                elsewhere
                if overwrite
                else f"copy it into a new store with `wxens ingest {shell_word(path)} --store "
                "NEW.zarr`, then ingest into NEW.zarr"
            )
        )
    raise InputError(
        f"{path} is {what}, not a wxens analysis store; wxens will not {action} it: "
        "choose another store= (--store) (or move it away yourself if it really is to go)"
    )


def _refuse_replacing_link(path: Path, to_a_store: bool) -> None:
    """The InputError for ``--overwrite`` of a ``--store`` that is a symbolic link (nothing
    is replaced through one), naming its target and, when that is a store, how to replace it."""
    target = path.resolve()
    replace = f"give the store itself, `--store {shell_word(target)} --overwrite`, or " * to_a_store
    raise InputError(
        f"{path} is a symbolic link to {target}{', an analysis store' * to_a_store}; wxens "
        f"replaces nothing through a link: {replace}choose another store= (--store)"
    )


def check_deletable(path: Path) -> None:
    """InputError if ``--overwrite`` could not delete the store at ``path`` (or the
    ``.replaced-tmp`` an interrupted replacement left beside it): a folder in it without
    write permission (a store made read-only) would be renamed aside and left there, and
    the next replacement would fail after building a whole new store."""
    for top in (path, replaced_path(path)):
        if not top.is_dir():
            continue
        for folder, _, _ in os.walk(top):
            if not os.access(folder, os.W_OK | os.X_OK):
                raise InputError(
                    f"{top} cannot be deleted ({folder} is read-only), so overwrite=True "
                    f"(--overwrite) cannot replace {path}; make it writable "
                    f"(chmod -R u+w '{top}') if it really is to go, or choose another "
                    "store= (--store)"
                )


def _plain_attrs(path: Path) -> dict:
    """The root attributes of the plain Zarr store at ``path`` (what says whether wxens
    wrote it: an export's mark, an older wxens's ingest state); none if it is not one or
    cannot be read (then named as a Zarr store, as before)."""
    try:
        return read_attrs(path) if is_plain_zarr(path) else {}
    except Exception:
        return {}


def describe_path(path: Path) -> str | None:
    """What is at ``path`` if it is neither absent, an empty folder nor an analysis store."""
    if not path.exists():
        return None
    if not path.is_dir():
        return "a regular file" if path.is_file() else "not a folder"
    if is_empty_repository(path):
        return None  # its creation was interrupted: created again
    if is_plain_zarr(path) and not is_repository(path):
        return "a Zarr store"
    if not is_repository(path):
        entries = sum(1 for _ in path.iterdir())
        return f"a folder of {entries} entries that is not a Zarr v3 store" if entries else None
    try:
        attrs = read_attrs(path)
    except Exception as err:
        return f"an unreadable Zarr store ({type(err).__name__})"
    if STATE_ATTR in attrs:
        return None
    if attrs.get("kind") == "forecast":
        return "a wxens forecast store"
    return "a Zarr store"
