"""The lines ``wxens info`` writes of what produced a forecast or trained a checkpoint: a
checkpoint's digest, model, grid, channels, periods, default sampler and tuned correction
(:func:`describe_checkpoint`), and a spread calibration's or a bias correction's record in a
line each (:func:`calibration_text`, :func:`bias_correction_text`). Heavy imports are made
inside the functions, so ``wxens --help`` stays fast."""

from __future__ import annotations


def describe_checkpoint(path) -> str:
    """A few lines a person can read about a checkpoint: the digest forecast stores record,
    the model, and the grid, channels, step, periods and statistics it was trained on (what
    a store must match to forecast with it)."""
    from generators.base import backbone_kind
    from generators.checkpoint import load_checkpoint
    from generators.checkpoint_extension import parts_text
    from generators.correction.tuned import read_tuned, tuned_path
    from pipeline.timeaxis import describe_step, hours_text

    c = load_checkpoint(path)
    t, d = c.train_config, c.train_config.data
    fine = t.fine_tune.steps if t.fine_tune is not None else 0
    history = [f"{o:+d}" if o else "0" for o in c.spec.history]
    periods = [
        f"{name} {p.start or '(start)'} .. {p.end or '(end)'}"
        for name, p in (
            ("train", d.train),
            ("validation", d.validation),
            *[("exclude", e) for e in d.exclude],
        )
        if p is not None
    ]
    lines = [
        f"checkpoint {c.path}  digest {c.digest} (what forecast stores made with it record)",
        f"model      {parts_text(c.kind, backbone_kind(c.model_config.backbone), c.extensions)}"
        f", step {c.step} of {t.steps + fine} "
        f"({t.steps} main, {fine} fine-tune), seed {t.seed}",
        f"grid       {len(c.latitude)} x {len(c.longitude)}  "
        f"lat {c.latitude.min():g}..{c.latitude.max():g}  "
        f"lon {c.longitude.min():g}..{c.longitude.max():g}",
        f"step       {describe_step(c.native_step)}, history {len(history)} states "
        f"({history[0]} .. {history[-1]} steps), leads {hours_text(c.leads_hours)} h",
        "channels   "
        + ", ".join(
            f"{ch} (mean {m:.4g}, std {sd:.4g})"
            for ch, m, sd in zip(c.channels, c.normalization.mean, c.normalization.std, strict=True)
        ),
        f"periods    {'; '.join(periods) or 'the whole store'}",
        *(
            [f"trained on {span.start} to {span.end} (its first history state to last target)"]
            if (span := c.trained_span) is not None
            else []
        ),
        f"sampler    {default_sampler_text(c)}",
        f"calibration {calibration_text(c.calibration or {})}",
    ]
    if tuned_path(c.path).is_file():
        tuned, digest = read_tuned(tuned_path(c.path))
        chosen = tuned.describe() if tuned.applies else "none chosen (weight 0)"
        if digest != c.digest:  # the weights still correct that checkpoint's stores only
            chosen += (
                f", tuned for the checkpoint {digest} (this one trained or calibrated since): "
                "only that checkpoint's stores use it; run `wxens tune` for this one"
            )
        lines.append(f"correction {tuned_path(c.path)}: {chosen}")
    return "\n".join(lines)


def default_sampler_text(checkpoint) -> str:
    """The sampler a checkpoint forecasts with unless told otherwise, in a line."""
    import torch

    from generators.base import GENERATORS
    from generators.config import sampler_spec
    from generators.sampler_choice import SamplerSource, choose_sampler

    with torch.device("meta"):  # the sampler needs the config only, not the weights
        model = GENERATORS[checkpoint.kind](checkpoint.model_config)
    chosen = choose_sampler(checkpoint, model)
    sampler = chosen.sampler
    line = f"{sampler_spec(sampler)} (NFE {sampler.nfe}), the forecasts' default"
    if chosen.source is SamplerSource.CALIBRATION:
        line += "; the calibration's: another needs --no-calibration or wxens calibrate --sampler"
    return line


def calibration_text(c: dict) -> str:
    """The spread calibration recorded in a forecast store, in a line."""
    import json

    import numpy as np

    from generators.correction.spread import far_factors

    if not c:
        return "none (members as drawn)"
    if not {"channels", "leads_hours", "factors", "period"} <= c.keys():
        return json.dumps(c, sort_keys=True)  # as recorded
    factors = np.asarray(c["factors"])  # (L, C)
    by_lead = ", ".join(
        f"{h:g} h " + "/".join(f"{k:.2f}" for k in row)
        for h, row in zip(c["leads_hours"], factors, strict=True)
    )
    seed = f", fit seed {c['seed']}" if "seed" in c else ""
    far = far_factors(c["leads_hours"], factors, c["channels"])
    return (
        f"spread factors ({'/'.join(c['channels'])}) fitted on {c['period']}: {by_lead}{seed}"
        + (f"\n  {far}" if far else "")
    )


def bias_correction_text(b: dict) -> str:
    """The decaying-average correction recorded in a forecast store, in a line."""
    if not b:
        return "none (the generator's own members)"
    from generators.correction.raw import NONE_CHOSEN

    if "by_variable" in b:  # each variable its own chain, as `wxens tune` chose them
        return "by variable: " + "; ".join(
            f"{name} {bias_correction_text(one)}" for name, one in b["by_variable"].items()
        )
    if b.get("method") == NONE_CHOSEN and "chosen_in" not in b:  # one variable's of several
        return "none (the members as they are)"
    if b.get("method") == NONE_CHOSEN:
        return f"none: the members as they are, `wxens tune` chose none ({b['chosen_in']})"
    line = f"decaying average, weight {b['weight']:g}, by {b['by']}"
    if "spread" in b:
        line += (
            f"; spread scaled by the recent spread-skill ratio, weight {b['spread']['weight']:g}"
        )
    if "ranks" in b:
        line += f"; members remapped by the recent rank histogram, weight {b['ranks']['weight']:g}"
    return line
