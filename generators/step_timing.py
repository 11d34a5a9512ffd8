"""Per-step times of a training config on a store and its device, measured on the spot:
:func:`measure_step_seconds`, which :func:`generators.config_derive.derive_config` sizes a
budget's step count by."""

from __future__ import annotations

import math
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from generators.config import TrainConfig
from generators.train import Trainer
from generators.train_data import TrainingData
from pipeline.store import AnalysisStore

MEASURED_TIMES = 3
"""Timings of each kind (after one untimed run), at most; the median is used."""
TIMING_SECONDS = 10.0
"""A kind's timings stop once they add up to this many seconds, after one at least: a
step of tens of seconds (a fine-tune step of a global grid on a CPU, 25-37 s a step) is
timed once, not three times, its run-to-run spread small beside it and beside the tenth
of the budget kept as slack; three such timings made `wxens config` a 3-minute wait."""


def timing_runs(seconds_each: float) -> int:
    """Runs of a step of ``seconds_each`` that :func:`measure_step_seconds` makes, its first,
    untimed, one included (:data:`MEASURED_TIMES`, :data:`TIMING_SECONDS`)."""
    timed = math.ceil(TIMING_SECONDS / seconds_each) if seconds_each > 0 else MEASURED_TIMES
    return 1 + min(MEASURED_TIMES, max(1, timed))


@dataclass(frozen=True)
class StepSeconds:
    """Measured seconds: an optimiser step of the main phase and of the fine-tune, a
    network evaluation of one sample without gradients (a validation or forecast), and
    what the first step of each phase takes beyond the others, together (on CUDA the
    network's compile, which the training pays again)."""

    main: float
    fine_tune: float
    forward: float
    first_steps: float = 0.0


def measure_step_seconds(
    store: AnalysisStore,
    config: TrainConfig,
    data: TrainingData | None = None,
    afford: Callable[[StepSeconds], None] | None = None,
) -> StepSeconds:
    """:class:`StepSeconds` of ``config`` on ``store`` and its device, on the datasets
    ``data`` (read from ``store`` for ``config``; None reads them): each the median of
    :data:`MEASURED_TIMES` timings (fewer of a slow step: :data:`TIMING_SECONDS`) after a
    first run (steps of the main phase and of the fine-tune; validation losses of one batch
    of the main objective, one network evaluation per sample), and the first steps' excess
    over those medians. The model and its optimiser are thrown away. ``afford`` sees the
    times without the fine-tune's (0) before the fine-tune, the slowest, is timed, to
    refuse a budget they already spend."""
    with tempfile.TemporaryDirectory() as tmp:
        timed = replace(config, validation_batches=1)
        trainer = Trainer(store, timed, tmp, resume=False, data=data)

        def seconds(run, argument: Callable[[int], tuple]) -> tuple[float, float]:
            """The median of the runs after the first (as many as :func:`timing_runs` gives
            a step of the first timed one's length), and the first's excess over it."""

            def timed(k: int) -> float:
                start = time.perf_counter()
                run(*argument(k))
                return time.perf_counter() - start

            times = [timed(0), timed(1)]
            times += [timed(k) for k in range(2, timing_runs(times[1]))]
            median = statistics.median(times[1:])
            return median, max(0.0, times[0] - median)

        main, first = seconds(trainer.train_step, lambda k: (k,))
        forward = seconds(trainer.validation_loss, lambda k: ())[0] / config.batch_size
        if afford is not None and config.fine_tune is not None:
            afford(StepSeconds(main, 0.0, forward, first))
        fine, first_fine = (
            seconds(trainer.train_step, lambda k: (config.steps + k,))
            if config.fine_tune is not None
            else (0.0, 0.0)
        )
    return StepSeconds(main, fine, forward, first + first_fine)
