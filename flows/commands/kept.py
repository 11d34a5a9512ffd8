"""The refusal of the ``--set`` values a resumed run keeps (its model, data, seed and batch
size: :func:`generators.train_plan.resumable`), beside the checkpoint of a run: each key named
with where its value came from and the fixes. Apart from :mod:`flows.commands.derive`, which
refuses them in a resumed derived config (as ``wxens train`` does in a config file), with the
helpers on ``--set`` values both read."""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from pathlib import Path


def value_text(value) -> str:
    """A config value as its YAML reads (``null``, ``[1, 3]``), a string as it is."""
    import yaml

    if isinstance(value, str):
        return value
    text = yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=1000)
    return text.removesuffix("...\n").strip()


def kept_by_a_run(path: Path, earlier, config, overrides: Sequence[str]):
    """The refusal of the ``--set`` ``overrides`` that made ``config`` of the config
    ``earlier`` read from ``path``, beside the checkpoint of a run, where they change what a
    resumed run keeps (:func:`kept_refusal`); None where they change none or no checkpoint is
    there."""
    from generators.config_io import to_mapping
    from generators.train import CHECKPOINT_NAME

    if not (path.parent / CHECKPOINT_NAME).is_file():
        return None
    trained = to_mapping(earlier)
    return kept_refusal(path, trained, trained, to_mapping(config), overrides, path)


def kept_refusal(where: Path, trained: dict, written, asked: dict, overrides, file: Path):
    """The refusal of a resumed run whose config ``asked`` (the config ``file``, ``written``
    as read, with the ``--set`` ``overrides``) changes what a resumed run keeps (its model,
    data, seed and batch size: :func:`generators.train_plan.resumable`) of the config
    ``trained`` (read from ``where``, in the run's folder), naming each key with where its
    value came from and the fixes: drop the ``--set`` that set it, or set the trained value
    in ``file`` (where ``file`` gives another: ``written`` None when it is unread), to
    resume; or train them from the start in another ``--out`` or with ``--no-resume``.
    None where it changes none. A key no ``--set`` names that ``file`` gives as trained
    (one ``--set model.kind`` brings) is put down to the ``--set`` of its section."""
    from generators.train_plan import RESUMED_KEYS, kept_differences
    from pipeline.errors import InputError

    changed = kept_differences(trained, asked)
    if not changed:
        return None
    in_file = None if written is None else {k for k, *_ in kept_differences(trained, written)}
    drop: list[str] = []  # the --set of the keys changed, each once, in the order given
    put_back, keys, brought = [], [], []
    for key, old, new in changed:
        setting = [o for o in overrides if sets(o, key)]
        from_file = not setting if in_file is None else key in in_file
        if not setting and not from_file:
            section = key.split(".")[0]
            setting = [o for o in overrides if sets(o, section)] or list(overrides)
        drop += [o for o in setting if o not in drop]
        by = " ".join(f"--set {shlex.quote(o)}" for o in setting) or str(file)
        named = f"{key} {value_text(old)} ({by} gives {value_text(new)})"
        (keys if from_file or names(overrides, key) else brought).append(named)
        if from_file:
            put_back.append((key, old))
    keys = keys or brought  # model.sample_nfe & co. only where model.kind is not named
    fixes = [f"drop {' '.join(f'--set {shlex.quote(o)}' for o in drop)}"] * bool(drop)
    fixes += [_put_back_fix(put_back, file)] * bool(put_back)
    many = len(drop) + len(put_back) > 1
    return InputError(
        f"{where.parent} holds a run that trained {'; '.join(keys)} ({where}), and a resumed "
        f"run keeps the {', '.join(RESUMED_KEYS[:-1])} and {RESUMED_KEYS[-1]} it trained "
        f"with: {' and '.join(fixes)} to resume it, or train with {'them' if many else 'it'} "
        "from the start, in another --out or with --no-resume"
    )


def _put_back_fix(values: Sequence[tuple[str, object]], file: Path) -> str:
    """The fix that puts the trained ``values`` (dotted key, value) back in the config
    ``file``, in its syntax: ``set data.history: 4 in c.yaml``, ``set history = 4 under
    [data] in c.toml`` (which "data.history: 4" would have made invalid TOML)."""
    from generators.config_io import is_toml, toml_text

    if not is_toml(file):
        return f"set {', '.join(f'{k}: {value_text(v)}' for k, v in values)} in {file}"
    fixes = []
    for key, value in values:
        *tables, name = key.split(".")
        where = f"under [{'.'.join(tables)}]" if tables else "before its first [table]"
        if value is None:  # no null in TOML: a key left out is
            fixes.append(f"leave {name} out {where}")
        else:
            fixes.append(f"set {name} = {toml_text(value)} {where}")
    return f"{', '.join(fixes)} in {file}"


def names(overrides: Sequence[str], key: str) -> bool:
    """Whether one of the ``--set`` ``overrides`` sets the dotted ``key`` (:func:`sets`)."""
    return any(sets(o, key) for o in overrides)


def sets(override: str, key: str) -> bool:
    """Whether the ``--set`` ``override`` (``data.train={...}``, ``data.train.end=...``) sets
    the dotted ``key`` of a config, a section above it or a key inside it."""
    given = override.split("=", 1)[0].strip()
    return f"{key}.".startswith(f"{given}.") or f"{given}.".startswith(f"{key}.")
