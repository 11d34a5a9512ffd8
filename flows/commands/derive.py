"""The config ``wxens train`` and ``wxens config`` derive from a store on the command line:
``--lead``, ``--budget``, ``--end`` and ``--set`` (:func:`generators.config_derive.derive_config`),
and the notes a derived config carries on what ``--set`` replaced, when derived or resumed."""

from __future__ import annotations

import argparse
import shlex
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path

from flows.commands.kept import kept_by_a_run, names, sets, value_text
from flows.commands.options import add_config_overrides


def add_derive_arguments(parser: argparse.ArgumentParser) -> None:
    """``--lead``, ``--budget``, ``--end`` and ``--set`` of a config derived from the store."""
    add_config_overrides(
        parser,
        "override a config value, e.g. --set optim.lr=1e-4 --set steps=500 (repeatable); a "
        "derived config's warm-up and cadences follow --set steps, in place of --budget "
        "(nothing timed)",
    )
    parser.add_argument(
        "--lead",
        help="derived config: the longest lead to train for, e.g. 24h or 5d (default: the "
        "history window, a day or three native steps); longer leads are rolled out",
    )
    parser.add_argument(
        "--budget",
        help="derived config: training time to size the step count to, e.g. 30min or 2h "
        "(default 30min), at most 40 passes over the training times; the per-step time is "
        "measured on the spot",
    )
    parser.add_argument(
        "--end",
        metavar="DATE",
        help="derived config: derive from the store's times up to DATE (a day: all of it; or "
        "a time, e.g. 2019-12-31T18:00); later times are neither trained, calibrated nor "
        "tuned on: forecast them to verify",
    )


def keep_overrides(path: Path, config, overrides: Sequence[str]) -> None:
    """Write ``config``, the resumed derived config with ``overrides`` (``--set``) applied,
    back to its ``path`` (``OUT/config.yaml``), its notes kept and one more saying what they
    changed (:func:`set_note`): it holds the config the checkpoint trained, which the next
    resume reads. Nothing is written when they change nothing."""
    from generators.config import load_train_config
    from generators.config_derive import DerivedConfig
    from generators.config_notes import read_notes

    note = set_note(overrides, load_train_config(path), config, "the earlier", "resumed with ")
    if not note:
        return
    DerivedConfig(config, (*read_notes(path.read_text()), *note)).write(path)


def set_note(
    overrides: Sequence[str], before, after, replaced: str, said: str = ""
) -> tuple[str, ...]:
    """The note lines of a derived config on the ``--set`` ``overrides`` that made ``after``
    of ``before``, after ``said`` ("resumed with "): the overrides, then one line per value
    they changed beside the one it replaces (``replaced``: "the derived", "the earlier"),
    which the notes above it may still describe (the training period, the steps, the batch),
    so that no note contradicts the config unremarked (each wrapped when written,
    :func:`generators.config_notes.wrap_note`). Empty when they changed nothing."""
    from generators.config_io import to_mapping
    from pipeline.errors import nested_differences

    was, now = to_mapping(before), to_mapping(after)
    changes = [  # a key of one objective only (--set model.kind) is in one of them
        f"  {key} {value_text(new)} (a key {replaced} config lacks)"
        if not _holds(was, key)
        else f"  {key} left out (replaces {replaced} {value_text(old)})"
        if not _holds(now, key)
        else f"  {key} {value_text(new)} (replaces {replaced} {value_text(old)})"
        for key, old, new in nested_differences(was, now)
    ]
    if not changes:
        return ()
    given = said + " ".join(f"--set {shlex.quote(o)}" for o in overrides) + ":"
    return (given, *changes)


def _holds(mapping: dict, key: str) -> bool:
    """Whether the nested ``mapping`` has the dotted ``key``."""
    *sections, name = key.split(".")
    for section in sections:
        mapping = mapping.get(section)
        if not isinstance(mapping, dict):
            return False
    return name in mapping


def derive_for(args: argparse.Namespace, processes: int = 1):
    """The config derived from ``--store`` (its times up to ``--end``) for ``--lead`` and
    ``--budget``, or for the step count of ``--set steps=N`` (nothing timed; not with
    ``--budget``). The budget's steps are timed on the config with the ``--set`` overrides
    (:func:`with_overrides`): the model and objective trained, ``--set model.kind=edm``
    included."""
    from generators.config_derive import DerivedConfig, derive_config
    from pipeline.errors import InputError

    steps = fixed_steps(args.overrides)
    if steps is not None and args.budget:
        raise InputError(
            f"--set steps={steps} fixes the derived config's step count and --budget "
            f"{args.budget} sizes it: give one of them"
        )

    def trained(config):  # the --set applied before the budget's steps are timed
        made = with_overrides(DerivedConfig(config, ()), args.overrides, args.store).config
        refuse_an_asked_fine_tune(made, args.overrides)
        return made

    return derive_config(
        args.store,
        lead=args.lead,
        budget=args.budget,
        steps=steps,
        processes=processes,
        trained=trained,
        end=args.end,
    )


def refuse_an_asked_fine_tune(config, overrides: Sequence[str]) -> None:
    """Refuse the fair-CRPS fine-tune of ``config`` (the derived one as ``--set`` made it)
    that a ``--set fine_tune...`` in ``overrides`` asked for, where its generator's config
    has no loss mix for it to set: a derivation leaves out (with a note) only the fine-tune
    it gave itself (:func:`generators.config_overhead.without_fine_tune`), not one asked for."""
    from generators.config import missing_loss_mix
    from generators.models import GENERATORS
    from pipeline.errors import InputError

    asked = [o for o in overrides if sets(o, "fine_tune")]
    kind = config.model.kind
    missing = missing_loss_mix(kind) if config.fine_tune is not None and asked else []
    if not missing:
        return
    given = " ".join(f"--set {shlex.quote(o)}" for o in asked)
    mixed = ", ".join(k for k in GENERATORS if not missing_loss_mix(k))
    raise InputError(
        f"{given}: asks for a fair-CRPS fine-tune, and the {kind} generator's config has no "
        f"loss mix ({', '.join(missing)}) for one to set; drop {given} (the {kind} generator "
        f"trains without a fine-tune), or --set model.kind=KIND of a generator with one ({mixed})"
    )


def with_overrides(derived, overrides: Sequence[str], store: str | None = None):
    """``derived`` (from ``store``) with the ``--set`` overrides applied, checked as a
    written config's, and a note naming the derived values they replace (:func:`set_note`)."""
    from dataclasses import replace

    from generators.config import TrainConfig, apply_overrides
    from generators.config_io import from_mapping, to_mapping
    from pipeline.errors import InputError

    if not overrides:
        return derived
    mapping = apply_overrides(to_mapping(derived.config), list(overrides))
    _drop_keys_of_the_derived_kind(mapping, derived.config.model, overrides)
    try:
        config = from_mapping(TrainConfig, mapping, where="--set")
    except InputError as err:
        other_leads = weights_of_other_leads(derived.config, mapping, store)
        if other_leads is None:
            raise
        raise other_leads from err
    note = set_note(overrides, derived.config, config, "the derived")
    return replace(derived, config=config, notes=(*derived.notes, *note))


def _drop_keys_of_the_derived_kind(mapping: dict, model, overrides: Sequence[str]) -> None:
    """A ``--set model.kind=edm`` or ``model.backbone.kind=K`` on a derived config (``mapping``,
    as set) switches its objective or backbone: the keys only the derived one has (flow
    matching's ``sample_nfe``, the U-Net's ``widths``), which no ``--set`` names, are dropped,
    so the new kind takes its own defaults (they were refused, naming keys the user never
    wrote). Those a ``--set`` names are kept, for the config's check to refuse."""
    from generators.base import BACKBONES
    from generators.models import GENERATORS

    if not isinstance(section := mapping.get("model"), dict):
        return
    _drop_keys(section, GENERATORS, model.config, overrides, "model")
    if isinstance(backbone := section.get("backbone"), dict):
        _drop_keys(backbone, BACKBONES, model.config.backbone, overrides, "model.backbone")


def _drop_keys(section: dict, registry, derived, overrides: Sequence[str], where: str) -> None:
    """Drop the ``derived`` keys that the kind ``section`` names in ``registry`` lacks."""
    kind = section.get("kind")
    if kind not in registry or registry[kind].config_class is type(derived):
        return
    new = {f.name for f in fields(registry[kind].config_class)}
    for key in [k for k in section if k != "kind" and k not in new]:
        if key in {f.name for f in fields(derived)} and not names(overrides, f"{where}.{key}"):
            del section[key]


def resumed_config(path: Path, overrides: Sequence[str], store: str | None):
    """The config an earlier derived run wrote to ``path`` (``OUT/config.yaml``), with the
    resumed run's ``--set`` ``overrides``. A ``--set data.leads`` of other leads is refused
    naming the fixes that work: once ``OUT`` holds a checkpoint, which trained the leads of
    ``path`` and resumes only with them (:func:`other_leads_of_a_run`); before, where they
    left its lead weights for other leads, as a new derivation's
    (:func:`weights_of_other_leads`), not with the general lead-weight message."""
    from generators.config import TrainConfig, apply_overrides, load_train_config
    from generators.config_io import from_mapping, to_mapping
    from generators.config_periods import check_periods
    from pipeline.errors import InputError

    earlier = load_train_config(path)
    if not overrides:
        return earlier
    mapping = apply_overrides(to_mapping(earlier), list(overrides))
    refused = other_leads_of_a_run(path, earlier, mapping, store)
    if refused is not None:
        raise refused
    try:  # the file read once: as load_train_config(path, overrides) builds and says it
        config = from_mapping(TrainConfig, mapping, where=str(path))
        check_periods(config, str(path))
    except InputError as err:
        other_leads = weights_of_other_leads(earlier, mapping, store, resumed=path)
        if other_leads is None:
            raise InputError(f"{err} (as --set {' --set '.join(overrides)} made it)") from None
        raise other_leads from err
    refuse_an_asked_fine_tune(config, overrides)
    refused = kept_by_a_run(path, earlier, config, overrides)
    if refused is not None:
        raise refused
    return config


def refuse_another_end(path: Path, config, store: str, end: str | None) -> None:
    """Refuse ``--end`` ``end`` on a run resumed with the config an earlier derivation wrote
    to ``path`` (``config``, as read), whose periods end elsewhere than at the store's last
    time up to ``end``, where a derivation for ``end`` ends them: the run trained, or is to
    train, on other days than ``end`` leaves out. The same ``end`` (or none) resumes."""
    import pandas as pd

    from pipeline.errors import InputError, time_text

    if end is None:
        return
    last = last_time_up_to(store, end, "--end")
    calibration = config.calibration.period if config.calibration is not None else None
    periods = (config.data.train, config.data.validation, calibration)
    ends = [pd.Timestamp(p.end) for p in periods if p is not None and p.end is not None]
    if ends and max(ends) == last:
        return
    kept = f"those up to {time_text(max(ends))}" if ends else "periods with no end"
    again = f"give --end {time_text(max(ends))} (or drop --end)" if ends else "drop --end"
    raise InputError(
        f"--end {end} keeps the times up to {time_text(last)} of {store}, and {path} was "
        f"derived from {kept}, which this run trains on: {again} to resume it, or derive for "
        f"--end {end} from the start, in another --out or with --no-resume"
    )


def last_time_up_to(store: str, end: str, option: str):
    """The last time of ``store`` up to ``end`` (given as ``option``), where a config derived
    for ``end`` ends its held-out days (:func:`generators.config_periods.times_up_to`)."""
    from generators.config_periods import times_up_to
    from pipeline.schema import TIME
    from pipeline.store import open_store

    opened = open_store(store)
    return times_up_to(opened.path, opened.dataset.indexes[TIME], end, option)[-1]


def other_leads_of_a_run(path: Path, earlier, mapping, store: str | None):
    """The refusal of a ``--set data.leads`` (``mapping``: the config as set) other than the
    leads of the config ``earlier`` read from ``path``, beside the checkpoint of a run that
    trained them (a resumed run keeps its data: :func:`generators.train_plan.resumable`),
    naming the fixes: the run resumed as it is, or these leads trained in another ``--out``
    or from the start; None where it sets no other leads or no checkpoint is there."""
    from generators.config_io import to_mapping
    from generators.durations import duration_text
    from generators.train import CHECKPOINT_NAME
    from pipeline.errors import InputError
    from pipeline.store import open_store

    data = mapping.get("data")
    leads = data.get("leads") if isinstance(data, dict) else None
    trained = to_mapping(earlier)["data"]["leads"]
    out = path.parent
    if leads is None or leads == trained or not (out / CHECKPOINT_NAME).is_file():
        return None
    given = f"--set data.leads={value_text(leads)}"
    fix = "train these leads from the start, in another --out or with --no-resume"
    if store is not None and _derived_up_to_a_lead(leads):
        lead = duration_text(max(leads) * open_store(store).native_step)
        fix += f": --lead {lead} in place of --set data.leads"
    return InputError(
        f"{given}: {out} holds a run that trained the leads {value_text(trained)} ({path}), "
        f"and a resumed run keeps the data it trained on: drop {given} to resume it, or {fix}"
    )


def _derived_up_to_a_lead(leads) -> bool:
    """Whether ``leads`` (a config's value, as set) are those a derivation gives up to their
    longest (:func:`generators.config_derive.derived_leads`)."""
    from generators.config_derive import derived_leads

    if not isinstance(leads, list) or not leads:
        return False
    if not all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in leads):
        return False
    return tuple(sorted(leads)) == derived_leads(max(leads))


def weights_of_other_leads(derived, mapping, store: str | None, resumed: Path | None = None):
    """The refusal of ``--set data.leads`` that left the ``derived`` config's lead weights
    for other leads (``mapping``: the config as set), naming the fixes: ``--lead`` where the
    leads set are those derived up to a lead, or their weights by the derivation's rule;
    None where the config set is refused for something else. ``resumed``: the config.yaml
    of an earlier derived run that ``derived`` was read from, where ``--lead`` is taken only
    by a derivation that starts over (``--no-resume``)."""
    from generators.config import TrainConfig
    from generators.config_derive import derived_lead_weights, derived_leads
    from generators.config_io import from_mapping
    from generators.durations import duration_text
    from pipeline.errors import InputError
    from pipeline.store import open_store

    weights = derived.data.lead_weights
    data = mapping.get("data")
    if weights is None or not isinstance(data, dict) or data.get("lead_weights") != list(weights):
        return None
    try:  # the config set, were the weights left to fit its leads
        unweighted = {**mapping, "data": {**data, "lead_weights": None}}
        leads = from_mapping(TrainConfig, unweighted, where="--set").data.sample_spec.leads
    except InputError:
        return None
    fit = derived_lead_weights(leads)
    fix = (
        f"give their weights too: --set 'data.lead_weights={value_text(list(fit))}' (the "
        "derivation's rule; or null: every initial time and lead equally likely)"
        if fit
        else "give its weight too: --set data.lead_weights=null (as derived for one lead)"
    )
    if store is not None and leads == derived_leads(max(leads)):
        lead = duration_text(max(leads) * open_store(store).native_step)
        fix = (
            f"{fix}; or start over, derived for them: --no-resume --lead {lead} in place of "
            "--set data.leads"
            if resumed
            else f"derive the config for them: --lead {lead} in place of --set data.leads; or {fix}"
        )
    held = (
        f"the data.lead_weights {value_text(list(weights))} of {resumed}, one per lead of its "
        if resumed
        else f"the derived data.lead_weights {value_text(list(weights))}, one per derived lead of "
    )
    return InputError(
        f"--set data.leads={value_text(list(leads))} left {held}"
        f"{value_text(list(derived.data.sample_spec.leads))}; {fix}"
    )


def fixed_steps(overrides: Sequence[str]) -> int | None:
    """The step count ``--set steps=N`` gives (read as the config reads it,
    :func:`generators.config_io.apply_overrides`), or None: a derived config takes it as its
    own (:func:`generators.config_derive.with_steps`), so the warm-up, validation and
    checkpoint cadences, EMA and fine-tune follow it rather than the budget's step count.
    A value that is no integer is left to the config's own check."""
    from generators.config import apply_overrides

    steps = apply_overrides({}, list(overrides)).get("steps")
    return steps if isinstance(steps, int) and not isinstance(steps, bool) else None
