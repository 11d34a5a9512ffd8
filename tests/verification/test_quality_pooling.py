"""The quality benchmark's cross-validation pooling equals scoring all folds at once."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.quality import pooled, scores


def test_pooled_folds_score_like_their_concatenation():
    rng = np.random.default_rng(0)
    latitude = np.linspace(50, 58, 4)
    sizes = (3, 5)  # initial times per fold
    members = [rng.normal(size=(n, 6, 4, 5)) * (1 + i) for i, n in enumerate(sizes)]
    truth = [rng.normal(size=(n, 4, 5)) for n in sizes]
    folds = [{"leads": {"1": scores(m, y, latitude)}} for m, y in zip(members, truth, strict=True)]
    whole = scores(np.concatenate(members), np.concatenate(truth), latitude)
    got = pooled(folds)["leads"]["1"]
    assert got["ssr"] == pytest.approx(whole["ssr"], rel=1e-6)
    assert got["fair_crps"] == pytest.approx(whole["fair_crps"], rel=1e-6)
    assert got["inits"] == 8
