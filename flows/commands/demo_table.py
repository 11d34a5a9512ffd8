"""The table ``wxens demo`` prints when it is done (:func:`scores_by_lead`): the scores of
each variable by lead beside the persistence baseline's and the rank histogram's floor, read
back from the scores file. Kept apart from the demo's steps, which it only reads the result
of; its imports wait for the call, as the CLI loads the demo's module at start."""

from __future__ import annotations


def scores_by_lead(scores: str) -> str:
    """Fair CRPS, the persistence baseline's and the skill score against it, the
    spread-skill ratio and the rank max/min ratio of each variable by lead, as a text table:
    the ratio beside the floor ``wxens verify`` reads it against (the error-correlation one
    where the scores hold it, else the perfect-model one: :func:`verification.compare.floor_of`)
    and, with the former, whether it passes (:func:`verification.ranks.with_rank_pass`)."""
    import numpy as np
    import xarray as xr

    from pipeline.schema import VARIABLES, split_channel
    from verification.compare import FLOORS, floor_of
    from verification.ranks import PASS_FACTOR, PASSES, pass_text, with_rank_pass

    with xr.open_datatree(scores) as tree:  # read, then the file closed
        card = with_rank_pass(tree["scorecard"].to_dataset().load())
    floor, passes = floor_of(card), PASSES in card
    rank = f"rank max/min ({FLOORS[floor]} floor)"
    header = f"{'variable':<10} {'lead':>5}   {'fair CRPS':>11} {'persistence':>11}"
    header += f" {'skill':>7} {'spread/skill':>12} {rank}" + " passes" * passes
    columns = (
        "fair_crps",
        "reference_fair_crps",
        "fair_crps_skill_score",
        "spread_skill_ratio",
        "rank_max_min",
        floor,
        PASSES,
    )
    nan = xr.full_like(card["fair_crps"], np.nan)  # a floor or pass the scores lack
    lines = ["", header]
    for variable in card["variable"].values:
        row = card.sel(variable=variable)
        units = VARIABLES[split_channel(str(variable))[0]].units
        hours = row["lead_time"].values / np.timedelta64(1, "h")
        values = zip(*(row.get(c, nan.sel(variable=variable)).values for c in columns), strict=True)
        for lead, (crps, reference, skill, ssr, ratio, low, ok) in zip(hours, values, strict=True):
            low = f"({low:.2f})".replace("nan", "n/a")  # n/a: too few initial times for it
            lines.append(
                f"{variable:<10} {lead:>3g} h   {crps:7.3f} {units:<3} {reference:7.3f} {units:<3}"
                f" {skill:+7.2f} {ssr:12.2f} {ratio:{len(rank) - 7}.2f} {low:>6}"
                + f" {pass_text(ok):>6}"
                * passes
            )
    said = (
        f"; it passes at most {PASS_FACTOR:g} x the error floor, what a perfectly reliable "
        "ensemble shows here with errors correlated in space as the forecast's are"
        if passes
        else "; the floor what a perfectly reliable ensemble shows here, its members standing "
        "in for the truth"
    )
    lines.append(
        "(cos-latitude-weighted means; skill 1 - CRPS/CRPS_persistence, > 0 beats persistence "
        "+ past tendencies; the climatology baseline is in data/README.md; rank max/min is 1 "
        f"for a flat histogram{said})"
    )
    return "\n".join(lines)
