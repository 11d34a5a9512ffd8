"""The markdown of the UK quality benchmark (``benchmarks/results/quality_uk.md``) from
its JSON payload: the score tables by lead, the cross-validated choices, the bias by
initial hour, and the block-bootstrap intervals of each row against the better baseline
(:func:`bootstrap_intervals`). Rendering only: every number comes from
:mod:`benchmarks.quality`'s evaluation (or :mod:`verification.resampling` for the
intervals)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import pandas as pd
import xarray as xr

from generators.correction.select_weights import NONE, choose_weights
from generators.correction.spec import CorrectionSpec
from verification.resampling import score_intervals

INTERVAL_LEVEL, INTERVAL_DRAWS = 0.9, 2000
RANK_TARGET = 1.5  # the rank max/min ratio that issue #5 asks for on the UK sample


def bootstrap_intervals(
    leads: dict, baseline: dict, inits: pd.DatetimeIndex
) -> dict[str, dict[str, tuple[float, float]]]:
    """90 % intervals by lead of a row's spread-skill ratio and of its fair CRPS minus
    ``baseline``'s (per lead, the same initial times), days of ``inits`` resampled whole
    (:func:`verification.resampling.score_intervals`; the difference is taken per initial
    time, so the model and the baseline share each resample). ``leads`` and ``baseline``
    map a lead to :func:`scores`."""
    kwargs = {"blocks": inits.normalize(), "level": INTERVAL_LEVEL, "draws": INTERVAL_DRAWS}
    out = {}
    for lead, row in leads.items():
        parts = {name: ("init", values) for name, values in row["per_init"].items()}
        # the CRPS part is the per-initial-time gain: its resampled mean is the paired gain
        gain = np.subtract(row["per_init"]["fair_crps"], baseline[lead]["per_init"]["fair_crps"])
        parts["fair_crps"] = ("init", gain)
        bounds = score_intervals(xr.Dataset(parts), row["members"], **kwargs)
        out[lead] = {
            "ssr": tuple(bounds["spread_skill_ratio"].values.tolist()),
            "fair_crps_minus_baseline": tuple(bounds["fair_crps"].values.tolist()),
        }
    return out


def short_sampler(spec: str) -> str:
    """``euler:nfe=2,noise_scale=1.5`` -> ``euler, noise x1.5`` (the noise scale only when not 1)."""
    name, _, params = spec.partition(":")
    scale = dict(p.split("=") for p in params.split(",") if "=" in p).get("noise_scale", "1.0")
    return name if float(scale) == 1.0 else f"{name}, noise x{float(scale):g}"


def _cell(fmt: str, scores_: dict, key: str) -> str:
    """A score, with its perfect-model reference in brackets for the rank ratio."""
    text = fmt.format(scores_[key])
    reference = scores_.get(f"{key}_perfect_model")
    return text if reference is None else f"{text} ({fmt.format(reference)})"


def better_baseline(baselines: dict, leads: Sequence[str]) -> dict[str, str]:
    """The name of the baseline of lower fair CRPS at each lead."""
    return {h: min(baselines, key=lambda name, h=h: baselines[name][h]["fair_crps"]) for h in leads}


def uk_markdown(p: dict) -> str:
    leads = [f"{h:g}" for h in p["leads_hours"]]
    better = better_baseline(p["baselines"], leads)
    best = [p["baselines"][better[h]][h]["fair_crps"] for h in leads]
    head = "| model | sampler (NFE) | " + " | ".join(f"{h} h" for h in leads) + " |"
    rule = "| --- | --- | " + " | ".join("---" for _ in leads) + " |"
    lines = [
        "# UK t2m sample: fair CRPS (K), spread-skill ratio, rank histogram",
        "",
        f"Train 1-21 March 2019 (see each checkpoint's config), test: {len(p['test_inits'])} initial times "
        "22-30 March every 6 h; cos-latitude-weighted means; members as listed. A row "
        "ending in +calibration applies the spread calibration its checkpoint holds (fitted "
        "on the period or the cross-validation folds its label names).",
        "",
        "## Fair CRPS (K)",
        "",
        head,
        rule,
        "| README: climatology | - | "
        + " | ".join(f"{v:.2f}" for v in p["readme_baselines"]["climatology"])
        + " |",
        "| README: persistence + past tendencies | - | "
        + " | ".join(f"{v:.2f}" for v in p["readme_baselines"]["persistence"])
        + " |",
    ]
    for name in ("climatology", "persistence"):
        lines.append(
            f"| ours: {name} (50 draws) | - | "
            + " | ".join(f"{p['baselines'][name][h]['fair_crps']:.3f}" for h in leads)
            + " |"
        )
    lines.append(
        "| **best baseline (ours)** | - | " + " | ".join(f"**{v:.3f}**" for v in best) + " |"
    )
    for name, row in p["models"].items():
        cells = []
        for h, b in zip(leads, best, strict=True):
            v = row["leads"][h]["fair_crps"]
            cells.append(f"{v:.3f}" + (" ✓" if v < b else ""))
        members = row["leads"][leads[0]]["members"]
        label = f"| {name} ({members} members) | {short_sampler(row['sampler'])} ({row['nfe']}) | "
        lines.append(label + " | ".join(cells) + " |")
    for title, key, fmt in (
        ("Spread-skill ratio", "ssr", "{:.2f}"),
        ("Rank histogram max/min bin ratio", "rank_max_min", "{:.2f}"),
    ):
        lines += ["", f"## {title}", "", head, rule]
        for name in ("climatology", "persistence"):
            lines.append(
                f"| {name} | - | "
                + " | ".join(fmt.format(p["baselines"][name][h][key]) for h in leads)
                + " |"
            )
        for name, row in p["models"].items():
            lines.append(
                f"| {name} | {short_sampler(row['sampler'])} ({row['nfe']}) | "
                + " | ".join(_cell(fmt, row["leads"][h], key) for h in leads)
                + " |"
            )
    lines += [
        "",
        "Rank cells read `model (perfect model)`: the second figure is the ratio a calibrated "
        "ensemble with the model's own dependence shows on these initial times (the median "
        "over 5 members standing in for the truth); it is the statistic's noise floor here.",
    ]
    lines += rank_floor_markdown(p, leads)
    lines += uncertainty_markdown(p, leads)
    lines += bias_markdown(p, leads)
    for name, selection in p.get("noise_selection", {}).items():
        by_scale = selection["scales"]
        mean_abs_log_ssr = {
            scale: np.mean([abs(np.log(row["leads"][h]["ssr"])) for h in leads])
            for scale, row in by_scale.items()
        }
        chosen = min(mean_abs_log_ssr, key=mean_abs_log_ssr.get)
        # a single fold keeps its rank histograms (pooled folds do not)
        ranked = all("rank_max_min" in row["leads"][leads[0]] for row in by_scale.values())
        rank_header = "".join(f" rank {h} h |" for h in leads) if ranked else ""
        lines += [
            "",
            f"## Initial-noise scale chosen on held-out days: {name}",
            "",
            selection["description"].format(inits=selection["inits"])
            + f", {by_scale[chosen]['leads'][leads[0]]['members']} members. "
            "The scale whose spread-skill ratio is nearest 1 over the leads (least mean "
            f"abs(log SSR)): **{chosen}**.",
            "",
            "| noise scale | "
            + " | ".join(f"SSR {h} h" for h in leads)
            + " | mean abs(log SSR) | "
            + " | ".join(f"CRPS {h} h" for h in leads)
            + " |"
            + rank_header,
            "| --- | "
            + " | ".join("---" for _ in leads)
            + " | --- | "
            + " | ".join("---" for _ in leads)
            + " |"
            + " --- |" * (len(leads) if ranked else 0),
        ]
        for scale, row in by_scale.items():
            ranks = (
                "".join(f" {_cell('{:.2f}', row['leads'][h], 'rank_max_min')} |" for h in leads)
                if ranked
                else ""
            )
            lines.append(
                f"| {scale} | "
                + " | ".join(f"{row['leads'][h]['ssr']:.2f}" for h in leads)
                + f" | {mean_abs_log_ssr[scale]:.3f} | "
                + " | ".join(f"{row['leads'][h]['fair_crps']:.3f}" for h in leads)
                + " |"
                + ranks
            )
    for name, cv in p.get("cv_calibration", {}).items():
        lines += cv_calibration_markdown(name, cv, leads)
    for name, cv in p.get("cv_bias", {}).items():
        lines += cv_bias_markdown(name, cv, leads)
    sweep = p["nfe_sweep"]
    if sweep["rows"]:
        lines += [
            "",
            f"## Fair CRPS (K) against NFE ({len(sweep['inits'])} initial times, {sweep['members']} members)",
            "",
            "| model | sampler | NFE | "
            + " | ".join(f"{h} h" for h in leads)
            + " | mean SSR | seconds |",
            "| --- | --- | --- | " + " | ".join("---" for _ in leads) + " | --- | --- |",
        ]
        for name in ("climatology", "persistence"):
            base = sweep["baselines"][name]
            cells = " | ".join(f"{base[h]['fair_crps']:.3f}" for h in leads)
            ssr = np.mean([base[h]["ssr"] for h in leads])
            lines.append(f"| {name} (50 draws) | - | - | {cells} | {ssr:.2f} | - |")
        for name, rows in sweep["rows"].items():
            for row in rows:
                ssr = np.mean([row["leads"][h]["ssr"] for h in leads])
                lines.append(
                    f"| {name} | `{row['sampler'].split(',')[0]}` | {row['nfe']} | "
                    + " | ".join(f"{row['leads'][h]['fair_crps']:.3f}" for h in leads)
                    + f" | {ssr:.2f} | {row['seconds']} |"
                )
    return "\n".join(lines) + "\n"


def rank_floor_markdown(p: dict, leads: Sequence[str]) -> list[str]:
    """The rows scored with the error-surrogate floor: each lead's rank max/min ratio beside
    the median of the replicas of a reliable ensemble with the errors' spatial correlation,
    the share of replicas at or above the ratio and the share above :data:`RANK_TARGET`."""
    key = "rank_max_min_error_surrogate"
    rows = {n: r for n, r in p["models"].items() if key in r["leads"][leads[0]]}
    if not rows:
        return []
    replicas = len(next(iter(rows.values()))["leads"][leads[0]][key])
    lines = [
        "",
        "## Rank max/min against a reliable ensemble with the errors' spatial correlation",
        "",
        "The perfect-model floor above has the members' own spatial dependence. Where the "
        "ensemble-mean error moves the whole domain together (a warm or cold night "
        "everywhere) and the members do not, a reliable ensemble must carry that coherence "
        "in its members too, and its histogram on these initial times is rougher. Each of "
        f"{replicas} replicas draws the truth and the members of every initial time as "
        "independent Gaussian fields with the empirical spatial covariance of the row's "
        "ensemble-mean errors (`verification.ranks.error_surrogate_rank_histogram`; initial "
        "times independent, so where errors persist the real floor is higher still). Cells "
        "read `model / floor (P(floor ≥ model); P(floor > "
        f"{RANK_TARGET:g}))`: the median replica, the share of replicas at least as uneven "
        f"as the model, and the share that would miss the target of {RANK_TARGET:g}.",
        "",
        "| model | " + " | ".join(f"{h} h" for h in leads) + " |",
        "| --- | " + " | ".join("---" for _ in leads) + " |",
    ]
    for name, row in rows.items():
        cells = []
        for h in leads:
            ratio, floor = row["leads"][h]["rank_max_min"], np.array(row["leads"][h][key])
            cells.append(
                f"{ratio:.2f} / {np.median(floor):.2f} ({np.mean(floor >= ratio):.2f}; "
                f"{np.mean(floor > RANK_TARGET):.2f})"
            )
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def uncertainty_markdown(p: dict, leads: Sequence[str]) -> list[str]:
    """The rows scored with per-initial-time means: 90 % block-bootstrap intervals of the
    spread-skill ratio and of the fair CRPS minus the better baseline at each lead."""
    baselines = p["baselines"]
    rows = {n: r for n, r in p["models"].items() if "per_init" in r["leads"][leads[0]]}
    if not rows or "per_init" not in baselines["persistence"][leads[0]]:
        return []
    better = better_baseline(baselines, leads)
    best = {h: baselines[better[h]][h] for h in leads}
    inits = pd.DatetimeIndex(p["test_inits"])
    lines = [
        "",
        f"## Sampling uncertainty on the test days ({INTERVAL_LEVEL:.0%} intervals)",
        "",
        f"The {len(inits)} initial times fall on {inits.normalize().nunique()} days, and "
        f"forecasts of one day share its weather. Each interval comes from {INTERVAL_DRAWS} resamples "
        "of whole days with replacement (block bootstrap); the model and the baseline share "
        "each resample. A CRPS interval below 0 beats the baseline beyond this sampling "
        "noise. Better baseline by lead: " + ", ".join(f"{h} h {better[h]}" for h in leads) + ".",
        "",
        "| model | "
        + " | ".join(f"SSR {h} h" for h in leads)
        + " | "
        + " | ".join(f"CRPS - baseline {h} h" for h in leads)
        + " |",
        "| --- | " + " | ".join("---" for _ in range(2 * len(leads))) + " |",
    ]
    for name, row in rows.items():
        got = bootstrap_intervals(row["leads"], best, inits)
        lines.append(
            f"| {name} | "
            + " | ".join(
                f"{row['leads'][h]['ssr']:.2f} [{got[h]['ssr'][0]:.2f}, {got[h]['ssr'][1]:.2f}]"
                for h in leads
            )
            + " | "
            + " | ".join(
                "{:+.3f} [{:+.3f}, {:+.3f}]".format(
                    row["leads"][h]["fair_crps"] - best[h]["fair_crps"],
                    *got[h]["fair_crps_minus_baseline"],
                )
                for h in leads
            )
            + " |"
        )
    return lines


def bias_by_init_hour(leads: dict, inits: pd.DatetimeIndex) -> dict[str, list[float]]:
    """Mean error of the ensemble mean by lead and initial hour (sorted hours), from the
    per-initial-time grid means of :func:`scores`."""
    hours = sorted(set(inits.hour))
    return {
        lead: [
            float(np.mean(np.asarray(row["per_init"]["mean_error"])[inits.hour == h]))
            for h in hours
        ]
        for lead, row in leads.items()
    }


def bias_markdown(p: dict, leads: Sequence[str]) -> list[str]:
    """Ensemble-mean error by initial hour: baselines and models on the test days, and the
    uncalibrated cross-validation forecasts of the training days (rows scored with it)."""
    test = pd.DatetimeIndex(p["test_inits"])
    rows = [(f"{name}, test days", r, test) for name, r in p["baselines"].items()]
    rows += [  # a calibrated or spread-scaled row has its twin's mean: scaling keeps it
        (f"{name}, test days", r["leads"], test)
        for name, r in p["models"].items()
        if not r["calibrated"] and ":" not in r.get("correction", "")
    ]
    rows += [
        (f"{name}, CV days", cv["raw"], pd.DatetimeIndex(cv["inits"]))
        for name, cv in p.get("cv_calibration", {}).items()
        if "inits" in cv
    ]
    rows = [(n, r, i) for n, r, i in rows if "mean_error" in r[leads[0]].get("per_init", {})]
    if not rows:
        return []
    hours = " / ".join(f"{h:02d}" for h in sorted(set(test.hour)))
    lines = [
        "",
        "## Ensemble-mean error (K) by initial hour",
        "",
        "Forecast minus truth, grid mean (cos-latitude weights), averaged over the initial "
        f"times of each hour ({hours} UTC); the spread calibration and the spread scaling "
        "leave it unchanged (their rows are left out). A "
        "bias of either sign piles the truth into one end of the rank histogram however "
        "well the spread matches the error. CV days: each fold model's forecasts of the "
        "days it held out of training (1-21 March), uncalibrated.",
        "",
        "| forecasts | " + " | ".join(f"{h} h: {hours}" for h in leads) + " |",
        "| --- | " + " | ".join("---" for _ in leads) + " |",
    ]
    for name, scored, inits in rows:
        by_hour = bias_by_init_hour({h: scored[h] for h in leads}, inits)
        lines.append(
            f"| {name} | "
            + " | ".join(" ".join(f"{b:+.2f}" for b in by_hour[h]) for h in leads)
            + " |"
        )
    return lines


def _spec_label(text: str) -> str:
    """A correction row's ``W[:S[:R]]`` (0: none) as :meth:`CorrectionSpec.label` writes it."""
    if text == NONE:
        return NONE
    weights = [float(part) if part else None for part in text.split(":")]
    return CorrectionSpec(*weights).label()


def cv_bias_markdown(name: str, cv: dict, leads: Sequence[str]) -> list[str]:
    """The decaying-average corrections on the cross-validation days (:func:`cv_bias`): the
    bias weight of least mean CRPS, then with it the spread weight of least mean
    abs(log SSR) (the noise scale's rule), then with both the rank-recalibration weight of
    least mean rank max/min ratio."""
    by_weight = cv["weights"]
    mean_crps = {w: np.mean([row[h]["fair_crps"] for h in leads]) for w, row in by_weight.items()}
    log_ssr = {
        w: np.mean([abs(np.log(row[h]["ssr"])) for h in leads]) for w, row in by_weight.items()
    }
    mean_rank = {
        w: np.mean([row[h]["rank_max_min"] for h in leads]) for w, row in by_weight.items()
    }

    # the library's rule (generators.correction.select_weights) on the scored rows
    labels = {_spec_label(w): w for w in by_weight}

    def scored(spec: CorrectionSpec | None) -> dict[str, float] | None:
        w = labels.get(NONE if spec is None else spec.label())
        if w is None:
            return None
        return {
            "mean_fair_crps": mean_crps[w],
            "mean_abs_log_ssr": log_ssr[w],
            "mean_rank_max_min": mean_rank[w],
        }

    weights = [[float(x) if x else None for x in w.split(":")] for w in by_weight if w != NONE]
    stage_weights = [  # the bias, spread and rank weights tried
        list(dict.fromkeys(p[stage] for p in weights if len(p) == stage + 1 and p[stage]))
        for stage in range(3)
    ]
    selection = choose_weights(scored, *stage_weights)
    stages = set(selection.table.stage)
    spec = selection.spec
    chosen = NONE if spec is None else CorrectionSpec(spec.bias_weight).label()
    choice = f"The bias weight of least mean CRPS over the leads: **{labels[chosen]}**"
    if "spread" in stages:
        spread = labels[replace(spec, rank_weight=None).label()]
        choice += f"; with it, the spread weight of least mean abs(log SSR): **{spread}**"
    if "rank" in stages:
        rank = "none" if spec.rank_weight is None else labels[spec.label()].split(":")[2]
        choice += f"; with them, the rank weight of least mean rank max/min: **{rank}**"
    first = next(iter(by_weight.values()))[leads[0]]
    lines = [
        "",
        f"## Decaying-average bias correction chosen on held-out days: {name}",
        "",
        f"Each fold model's forecasts of the days it held out ({first['inits']} initial times "
        f"in all, {cv['members']} members, `{cv['sampler']}`), corrected by `wxens "
        "bias-correct` with weight w (0: none; w:s adds the spread scaling of weight s, "
        "`--spread-weight`; w:s:r the rank-histogram recalibration of weight r, "
        "`--rank-weight`) within each fold's days: only errors verified by an initial time "
        f"correct it, and each fold's first day goes uncorrected. {choice}. Rank cells read "
        "`model (perfect model)`.",
        "",
        f"| w | {_score_header(leads)} | mean CRPS | mean abs(log SSR) | mean rank max/min |",
        "| --- | " + " | ".join("---" for _ in range(3 * len(leads))) + " | --- | --- | --- |",
    ]
    for w, row in by_weight.items():
        lines.append(
            f"| {w} | {_score_cells(row, leads)} | {mean_crps[w]:.4f} | {log_ssr[w]:.3f} | "
            f"{mean_rank[w]:.2f} |"
        )
    return lines


SCORE_COLUMNS = (("SSR", "ssr", "{:.2f}"), ("CRPS", "fair_crps", "{:.3f}"))


def _score_header(leads: Sequence[str]) -> str:
    """Column titles of :func:`_score_cells`."""
    titles = [title for title, _, _ in SCORE_COLUMNS] + ["rank"]
    return " | ".join(f"{title} {h} h" for title in titles for h in leads)


def _score_cells(row: dict, leads: Sequence[str]) -> str:
    """SSR, fair CRPS and rank ratio (with its perfect-model reference) of a
    :func:`score_leads` row at every lead, as table cells."""
    cells = [fmt.format(row[h][key]) for _, key, fmt in SCORE_COLUMNS for h in leads]
    cells += [_cell("{:.2f}", row[h], "rank_max_min") for h in leads]
    return " | ".join(cells)


def cv_calibration_markdown(name: str, cv: dict, leads: Sequence[str]) -> list[str]:
    """The leave-one-fold-out calibration check (:func:`cv_calibration`) as a section."""
    rows = {"uncalibrated": cv["raw"], "calibrated by the other folds' factors": cv["calibrated"]}
    n = cv["raw"][leads[0]]["inits"]
    lines = [
        "",
        f"## Per-lead spread calibration, one fold left out: {name}",
        "",
        f"Each fold's forecasts of the days it held out ({n} initial times in all, "
        f"{cv['members']} members, `{cv['sampler']}`), scaled by the per-lead factors fitted "
        "on the other folds' forecasts of theirs (as `wxens calibrate --fold` fits them for "
        "the model trained on all the days), scored together: does a factor fitted on some "
        "days hold on others? Rank cells read `model (perfect model)` as above.",
        "",
        f"| forecasts | {_score_header(leads)} |",
        "| --- | " + " | ".join("---" for _ in range(3 * len(leads))) + " |",
    ]
    for label, row in rows.items():
        lines.append(f"| {label} | {_score_cells(row, leads)} |")
    lines += [
        "",
        "| fold left out | " + " | ".join(f"factor {h} h" for h in leads) + " |",
        "| --- | " + " | ".join("---" for _ in leads) + " |",
    ]
    for period, factors in zip(cv["held_out"], cv["factors"], strict=True):
        lines.append(f"| {period} | " + " | ".join(f"{k:.3f}" for k in factors) + " |")
    return lines
