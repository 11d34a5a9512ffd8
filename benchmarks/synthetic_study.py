"""What the synthetic quality studies share: the store ingested once, the model trained
(or a given checkpoint), forecasts and oracle members written as forecast stores keyed by
what they depend on, and scorecards read per variable. Every figure comes from the
library's own calls (:func:`generators.train.train`,
:func:`generators.rollout_store.forecast_to_store`,
:func:`pipeline.forecast_store.write_forecast`, :func:`verification.run.verify_store`)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd
import xarray as xr

from benchmarks.quality_tables import run_key, scorecard
from generators.calibration import calibrate_checkpoint
from generators.config import CalibrationConfig, load_train_config
from generators.correction.tuned import checkpoint_digest
from generators.rollout_store import forecast_to_store
from generators.train import train
from pipeline.analysis_store import AnalysisStore
from pipeline.forecast_store import FORECAST_DIMS, ForecastProvenance, write_forecast
from pipeline.schema import INIT_TIME, LEAD_TIME, TIME, Period
from pipeline.store import ingest, open_store
from verification.config import VerifyConfig
from verification.run import verify_store

ROOT = Path(__file__).resolve().parents[1]
SCORECARD = VerifyConfig(physics_init_times=0, energy_score=False, interval_level=0, progress=False)


def study_parser(doc: str | None) -> argparse.ArgumentParser:
    """The options every synthetic study takes: ``--workdir``, ``--checkpoint``,
    ``--members`` and ``--set``."""
    parser = argparse.ArgumentParser(
        description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workdir", required=True, type=Path)
    parser.add_argument("--checkpoint", help="score this checkpoint instead of training one")
    parser.add_argument("--members", type=int, default=50)
    parser.add_argument("--set", action="append", default=[], help="config override key=value")
    return parser


@dataclass(frozen=True)
class SyntheticStudy:
    """A work directory holding the synthetic store, a checkpoint and its forecasts.

    store_path: the analysis store of ``source``; checkpoint: the model scored;
    train_steps: the steps trained here (None for a given checkpoint); members: per
    forecast.
    """

    workdir: Path
    source: str
    store_path: Path
    store: AnalysisStore
    checkpoint: str
    train_steps: int | None
    members: int

    @classmethod
    def prepare(
        cls,
        workdir: Path,
        source: str,
        variables: Sequence[str],
        config: str,
        overrides: Sequence[str],
        members: int,
        checkpoint: str | None = None,
    ) -> SyntheticStudy:
        """Ingest ``source`` (once) and train ``config`` with ``overrides`` (resumed when
        interrupted) unless a ``checkpoint`` is given."""
        workdir.mkdir(parents=True, exist_ok=True)
        path = workdir / "synthetic.zarr"
        store = (
            open_store(path)
            if path.exists()
            else ingest(source, path, variables=list(variables), progress=False)
        )
        steps = None
        if checkpoint is None:
            run = workdir / Path(config).stem
            steps = train(store, load_train_config(ROOT / config, list(overrides)), run).step
            checkpoint = str(run / "last.pt")
        return cls(workdir, source, path, store, checkpoint, steps, members)

    def calibrated(
        self,
        period: Period,
        leads_hours: Sequence[float],
        sampler: str | None,
        balance: bool,
        members: int = 16,
    ) -> SyntheticStudy:
        """This study with its checkpoint's spread calibration fitted on the held-out
        ``period`` (``wxens calibrate``: ``members`` per forecast, every 6 h), for forecasts
        with ``sampler`` and ``balance``; the calibrated checkpoint is written once per key
        (the checkpoint's content, not its path: a retrained one is calibrated again)."""
        key = run_key(
            checkpoint_digest(self.checkpoint),
            str(period),
            tuple(leads_hours),
            sampler,
            balance,
            members,
        )
        out = self.workdir / f"calibrated-{key}.pt"
        if not out.exists():
            config = CalibrationConfig(
                period=period,
                leads_hours=tuple(leads_hours),
                members=members,
                sampler=sampler,
                balance=balance,
            )
            calibrate_checkpoint(self.checkpoint, self.store, config, out=out, device="cpu")
        return replace(self, checkpoint=str(out))

    def forecast(
        self,
        name: str,
        inits: pd.DatetimeIndex,
        leads_hours: Sequence[float],
        sampler: str | None = None,
        seed: int = 0,
        balance: bool = False,
        calibrate: bool = False,
    ) -> Path:
        """The model's forecast store of ``inits`` at ``leads_hours`` (made once per key);
        ``balance``: upper air made balanced at every step (``forecast_to_store``);
        ``calibrate``: the checkpoint's spread calibration applied. Keyed by the
        checkpoint's content, so a retrained one at the same path forecasts again."""
        flags = (("balance",) if balance else ()) + (("calibrate",) if calibrate else ())
        times = tuple(str(t) for t in inits)
        key = run_key(
            checkpoint_digest(self.checkpoint),
            sampler,
            self.members,
            seed,
            *flags,
            times,
            *leads_hours,
        )
        out = self.workdir / f"{name}-{key}.zarr"
        if not out.exists():
            forecast_to_store(
                self.checkpoint, self.store, inits, leads_hours, self.members, str(out),
                sampler=sampler, seed=seed, calibrate=calibrate, device="cpu", progress=False,
                balance=balance,
            )  # fmt: skip
        return out

    def scores(self, forecast: Path, variables: Sequence[str]) -> dict[str, dict]:
        """The scorecard of ``forecast`` as {variable: {lead hours: {score: value}}}."""
        out = forecast.with_suffix(".nc")
        tree = verify_store(forecast, self.store_path, out, config=SCORECARD).tree
        return {name: scorecard(tree, name) for name in variables}

    def write_oracle(self, out: Path, leads: Sequence[xr.Dataset]) -> None:
        """Oracle members, one dataset per lead (dims ``member, time, ...``, ``time`` the
        valid time with an ``init_time`` coord), into the forecast store ``out``."""
        by_init = [lead.swap_dims({TIME: INIT_TIME}).drop_vars(TIME) for lead in leads]
        ensemble = xr.concat(by_init, LEAD_TIME).transpose(*FORECAST_DIMS[:3], ...)
        provenance = ForecastProvenance("oracle", self.source, "exact law", 0, 0)
        write_forecast(out, ensemble, provenance)
