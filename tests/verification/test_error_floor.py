"""The rank max/min read against its error-correlation floor by default: ``wxens verify``
computes the floor unless told ``--error-surrogate-replicas 0``, and the printed table and
the report say whether the ratio passes (at most 1.1 x the floor, the scorecard's median
over replicas)."""

from __future__ import annotations

import logging
import re

import numpy as np
import pytest
import xarray as xr
from verification_cases import verify_command

import verification.ranks
from flows.cli import main as wxens
from verification.config import VerifyConfig
from verification.report_tables import scorecard_tables


def printed_rows(out: str) -> tuple[list[str], list[list[str]]]:
    """The printed scorecard's header line and its t2m rows, split on runs of spaces."""
    lines = out.splitlines()
    at = next(i for i, line in enumerate(lines) if "rank max/min" in line)
    rows = [line.split() for line in lines[at + 1 :] if line.split()[:1] == ["t2m"]]
    return lines[at], rows


def test_verify_reads_the_rank_ratio_against_the_error_floor_by_default(stores, tmp_path, capsys):
    forecast, analysis = stores
    assert VerifyConfig().error_surrogate_replicas is None  # 20 where affordable, as here
    out = tmp_path / "scores.nc"
    assert wxens(verify_command(forecast, analysis, out)) == 0
    header, rows = printed_rows(capsys.readouterr().out)
    assert "error floor max/min" in header and "perfect-model max/min" in header
    tree = xr.open_datatree(out)
    assert tree["rank_floor"].sizes["replica"] == 20
    card = tree["scorecard"].to_dataset().sel(variable="t2m")
    passes = card.rank_max_min <= 1.1 * card.rank_max_min_error_surrogate
    assert [row[-2] for row in rows] == ["yes" if p else "no" for p in passes.values]
    assert re.search(r"passes \(<= 1\.1 x error floor\)\s+unit", header)


def test_no_error_floor_no_pass_mark(stores, tmp_path, capsys):
    forecast, analysis = stores
    out = tmp_path / "scores.nc"
    assert wxens(verify_command(forecast, analysis, out, "--error-surrogate-replicas", "0")) == 0
    header, _ = printed_rows(capsys.readouterr().out)
    assert "perfect-model max/min" in header
    assert "error floor" not in header and "passes" not in header
    card = xr.open_datatree(out)["scorecard"].to_dataset()
    assert "rank_max_min_error_surrogate" not in card
    assert "passes" not in scorecard_tables(card)["calibration"]


def test_the_report_marks_each_lead_that_passes_its_error_floor(stores, tmp_path):
    forecast, analysis = stores
    out = tmp_path / "scores.nc"
    assert wxens(verify_command(forecast, analysis, out)) == 0
    card = xr.open_datatree(out)["scorecard"].to_dataset()
    calibration = scorecard_tables(card)["calibration"]
    assert "<th title='rank_max_min at most 1.1 x rank_max_min_error_surrogate'>" in calibration
    passes = (card.rank_max_min <= 1.1 * card.rank_max_min_error_surrogate).values.ravel()
    marks = re.findall(r"<td>(yes|no)</td>", calibration)
    assert marks == ["yes" if p else "no" for p in passes] and len(marks) == passes.size
    assert np.isfinite(card.rank_max_min_perfect_model).all()  # kept beside it
    assert "rank max/min floor" in calibration


@pytest.mark.parametrize("asked", [None, 3])
def test_an_error_floor_too_costly_is_skipped_by_default_saying_so(
    stores, tmp_path, capsys, caplog, monkeypatch, asked
):
    """The floor costs replicas x N^2 x M x points: a season of global fields would take
    hours unasked. Past DEFAULT_ERROR_WORK the default skips it, warning with its cost and
    the option that asks for it; a number asked is drawn whatever it costs."""
    forecast, analysis = stores
    monkeypatch.setattr(verification.ranks, "DEFAULT_ERROR_WORK", 1.0)  # every floor costs more
    logger = logging.getLogger("verification.ranks")
    logger.addHandler(caplog.handler)
    out = tmp_path / "scores.nc"
    given = [] if asked is None else ["--error-surrogate-replicas", str(asked)]
    try:
        assert wxens([*verify_command(forecast, analysis, out), *given]) == 0
    finally:
        logger.removeHandler(caplog.handler)
    said = [r.getMessage() for r in dict.fromkeys(caplog.records) if r.name == logger.name]
    header, _ = printed_rows(capsys.readouterr().out)
    tree = xr.open_datatree(out)
    if asked is None:
        assert len(said) == 1 and "error floor is skipped" in said[0], said
        assert "--error-surrogate-replicas N" in said[0], said
        assert "rank_floor" not in tree.children and "error floor" not in header
    else:
        assert not said and tree["rank_floor"].sizes["replica"] == 3
