"""The datasets a training reads from its store (:class:`TrainingData`), read once for a
derived run: its step timing reads them and its training takes them, where both read the
whole store into memory before (:func:`generators.config_derive.derive_config`)."""

from __future__ import annotations

from dataclasses import dataclass

from generators.config import TrainConfig
from generators.config_data import DataConfig
from generators.data import Normalization, ResidualDataset
from pipeline.schema import Period
from pipeline.store import AnalysisStore


@dataclass(frozen=True)
class TrainingData:
    """The training, validation and fine-tune datasets of ``store`` for the data config
    ``data`` and the fine-tune ``period`` they were read for (the fine-tune's is the
    training one where ``period`` is None; no validation without a validation period)."""

    store: AnalysisStore
    data: DataConfig
    period: Period | None
    train: ResidualDataset
    validation: ResidualDataset | None
    fine_tune: ResidualDataset

    def serves(self, store: AnalysisStore, config: TrainConfig) -> bool:
        """Whether these are the datasets ``config`` reads from ``store`` afresh (with the
        normalisation fitted on its training period, not a resumed checkpoint's)."""
        return store is self.store and (self.data, self.period) == (config.data, _period(config))


def _period(config: TrainConfig) -> Period | None:
    return config.fine_tune.period if config.fine_tune is not None else None


def read_training_data(
    store: AnalysisStore, config: TrainConfig, normalization: Normalization | None = None
) -> TrainingData:
    """The datasets ``config`` trains and validates on, read from ``store``; normalised with
    ``normalization`` (a resumed checkpoint's), else with the one fitted on the training
    period. The validation and fine-tune parts index the training part's states in memory:
    one copy of the store, not one a part."""
    d, spec, period = config.data, config.data.sample_spec, _period(config)
    train = ResidualDataset.from_store(
        store,
        spec,
        period=d.train,
        name=f"{store.path} (training part)",
        exclude=d.exclude,
        channels=d.channels,
        max_memory_bytes=d.max_memory_bytes,
        normalization=normalization,
    )

    def part(period: Period, name: str, exclude=()) -> ResidualDataset:
        return ResidualDataset.from_store(
            store,
            spec,
            period=period,
            name=f"{store.path} ({name} part)",
            exclude=exclude,
            channels=d.channels,
            normalization=train.normalization,
            max_memory_bytes=d.max_memory_bytes,
            masked_channels=train.masked_channels,
            states_of=train,
        )

    validation = part(d.validation, "validation") if d.validation is not None else None
    fine_tune = part(period, "fine-tune", d.exclude) if period is not None else train
    return TrainingData(store, d, period, train, validation, fine_tune)
