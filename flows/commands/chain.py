"""What an interrupted chain of steps (``wxens run``, ``wxens demo``) kept and how to go on,
read back from disk after the interrupt: each step says it in the words of the command that
runs it alone (its ``kept``), and the same command skips the steps done."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from flows.commands import baseline, forecast, ingest, train, verify


@dataclass(frozen=True)
class Step:
    """A step as an interrupt left it on disk: ``done()``, its outputs complete, which the
    rerun skips, and ``kept()``, what it kept and how to go on. Both are called in order,
    and only while the steps before are done: a step reads what those wrote."""

    name: str
    done: Callable[[], bool]
    kept: Callable[[], str]


def chain_kept(steps: Sequence[Step]) -> str:
    """The steps done (the same command skips them), the first step not done (the one
    stopped) in its own words, then those after it, still to come."""
    done: list[str] = []
    for i, step in enumerate(steps):
        if not step.done():
            rest = ", ".join(s.name for s in steps[i + 1 :])
            return (
                (f"done, skipped by the rerun: {', '.join(done)}; " if done else "")
                + f"stopped in {step.name}: {step.kept()}"
                + (f"; still to come: {rest}" if rest else "")
            )
        done.append(step.name)
    return f"every step done ({', '.join(done)}); nothing to resume"


def ingest_step(store: str) -> Step:
    """The ingest into ``store``: done once the store is complete, as the ``ingest`` flow
    decides (:func:`flows.inputs.analysis_store_complete`)."""
    from flows.inputs import analysis_store_complete

    said = argparse.Namespace(store=store, overwrite=False)
    return Step(
        f"ingest ({store})", lambda: analysis_store_complete(store), lambda: ingest.kept(said)
    )


def train_step(config: str, overrides: Sequence[str], out: str) -> Step:
    """The training of ``config`` (with ``overrides``) into the directory ``out``: done once
    its checkpoint has every step, calibrated where the config asks. An interrupted
    training checkpoints the step it reached too, which the rerun resumes from."""
    from generators.checkpoint import load_checkpoint, resolve_checkpoint_path
    from generators.config import load_train_config

    def done() -> bool:
        if not resolve_checkpoint_path(out).is_file():
            return False
        wanted, written = load_train_config(config, list(overrides)), load_checkpoint(out)
        calibrated = wanted.calibration is None or written.calibration is not None
        return written.step >= wanted.total_steps and calibrated

    said = argparse.Namespace(out=out, no_resume=False)
    return Step(f"training ({out})", done, lambda: train.kept(said))


def forecast_steps(
    store: str,
    checkpoint: str,
    inits: Callable[[], list[str]],
    out: str,
    *,
    corrected: str | None,
    weights: tuple[float | None, float | None, float | None],
    baseline_store: str | None,
    scores: str,
    report: str | None,
) -> list[Step]:
    """The steps of :func:`flows.pipelines.ensemble_run` from the forecast on: done once the
    forecast store ``out``, the ``corrected`` store (unless no weight corrects it) and the
    ``baseline_store`` hold every initial time of ``inits()``; the verification into
    ``scores`` once no truth has arrived (nothing to verify) or its scores are current, as
    the ``verify`` flow decides. It writes only whole, at its end: stopped in it, it kept
    nothing."""
    import pandas as pd

    from flows.deployments import RUN_PARAMETER_NAMES
    from flows.inputs import truth_arrived, verify_record
    from flows.runtime import outputs_current
    from generators.correction.tuned import resolve_correction
    from pipeline.errors import counted
    from pipeline.forecast_store import complete_init_times

    def holds(path: str) -> Callable[[], bool]:
        return lambda: pd.DatetimeIndex(inits()).difference(complete_init_times(path)).empty

    def drawn(path: str, command=forecast) -> Callable[[], str]:  # or baseline's words
        return lambda: command.kept(argparse.Namespace(out=path, init=inits(), recompute=False))

    def corrects() -> bool:  # as the flow decides: the weights given, or those tuned
        names = RUN_PARAMETER_NAMES
        return (
            corrected is not None
            and resolve_correction(checkpoint, *weights, forecast=out, names=names).applies
        )

    def correction_kept() -> str:
        held = pd.DatetimeIndex(inits()).intersection(complete_init_times(corrected))
        return (
            f"{corrected}: {len(held)} of {counted(len(inits()), 'initial time')} corrected; "
            "rerun the same command to correct them all"
        )

    steps = [Step(f"forecast ({out})", holds(out), drawn(out))]
    if corrected:
        done = holds(corrected)
        steps.append(
            Step(
                f"bias correction ({corrected})", lambda: not corrects() or done(), correction_kept
            )
        )
    if baseline_store:
        steps.append(
            Step(
                f"baseline ({baseline_store})",
                holds(baseline_store),
                drawn(baseline_store, baseline),
            )
        )

    def verified() -> bool:  # as the flow decides: nothing arrived, or the scores current
        delivered = corrected if corrects() else out
        arrived = truth_arrived(delivered, store)
        record = verify_record(delivered, store, scores, report, arrived, baseline_store)
        return not arrived or outputs_current(*record)

    said = argparse.Namespace(out=scores, report=report)
    steps.append(Step(f"verification ({scores})", verified, lambda: verify.kept(said)))
    return steps
