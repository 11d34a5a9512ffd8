"""``wxens compare`` marks a best only where the files are comparable: the rank max/min of
ensembles of other sizes read against each file's own (error) floor, and files
verified on other points refused unless ``--allow-different-points``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from test_compare import printed_blocks, scorecard_of, wxens
from verification_cases import oracle_forecast, verify_command

from pipeline.errors import InputError
from pipeline.forecast_store import ForecastProvenance, open_forecast, write_forecast
from pipeline.sources.synthetic import SyntheticConfig, synthetic_dataset
from verification.compare import compare_scorecards

RANK_BLOCK = "rank max/min (error floor)"
PROVENANCE = ForecastProvenance(
    generator="test", checkpoint_digest="none", sampler="exact", nfe=0, seed=1
)


def verified(forecast: xr.Dataset, analysis, path) -> str:
    """``forecast`` written as a store beside ``path`` and verified into ``path``."""
    write_forecast(path.with_suffix(".zarr"), forecast, PROVENANCE)
    done = wxens(*verify_command(path.with_suffix(".zarr"), analysis, path))
    assert done.returncode == 0, done.stderr
    return str(path)


@pytest.fixture(scope="module")
def sized(stores, tmp_path_factory):
    """Scores files of the same law's 10 and 50 members (``calibrated10``, ``calibrated50``)
    and of 10 members shrunk to 0.4 of their spread (``narrow10``: U-shaped), on the
    analysis of ``stores`` (its synthetic config)."""
    _, analysis = stores
    root = tmp_path_factory.mktemp("sized")
    config = SyntheticConfig(n_lat=8, n_lon=12, n_times=12)
    truth = synthetic_dataset(config).load()
    runs = {"calibrated10": (10, 1.0), "calibrated50": (50, 1.0), "narrow10": (10, 0.4)}
    return {
        name: verified(
            oracle_forecast(config, truth, 6, (6, 12), n, seed=3, spread_factor=spread),
            analysis,
            root / f"{name}.nc",
        )
        for name, (n, spread) in runs.items()
    }


def test_rank_max_min_of_other_sizes_marks_the_nearest_its_own_floor(sized, tmp_path):
    """Across member counts none was marked (a histogram of fewer bins reads flatter by
    chance): each ratio is now read against its own floor, and the file whose ratio over
    floor is nearest 1 is marked, a calibrated one, never the under-dispersed."""
    names = list(sized)
    csv = tmp_path / "table.csv"
    done = wxens("compare", *sized.values(), "--out", str(csv))
    assert done.returncode == 0, done.stderr
    cards = [scorecard_of(sized[n]).sel(variable="t2m") for n in names]
    ratios = np.stack([c.rank_max_min.values for c in cards])  # (file, lead)
    floors = np.stack([c.rank_max_min_error_surrogate.values for c in cards])
    nearest = np.abs(ratios / floors - 1).argmin(0)
    assert (ratios[2] > 2 * floors[2]).all()  # arranged: the narrow ensemble is far off
    rows = printed_blocks(done.stdout.split("table:")[0])[RANK_BLOCK]
    assert len(rows) == 2
    for k, row in enumerate(rows):
        assert [cell.endswith("*") for cell in row[2:5]] == [i == nearest[k] for i in range(3)]
        assert not row[4].endswith("*")
    assert "rank max/min nearest its floor" in done.stdout
    table = pd.read_csv(csv, keep_default_na=False)
    assert table[table.score == "rank_max_min"].best.tolist() == [names[i] for i in nearest]


def test_files_verified_on_other_points_are_compared_only_when_allowed(stores, tmp_path):
    """A star across a domain and a region of it (every point against a quarter) was a
    best of other weather: refused naming each file's points and the fix; compared with
    ``--allow-different-points``, which is said above the table."""
    forecast, analysis = stores
    members = open_forecast(forecast)[["t2m"]].load()
    whole = verified(members, analysis, tmp_path / "whole.nc")
    region = members.isel(latitude=slice(0, 4), longitude=slice(0, 6))
    part = verified(region, analysis, tmp_path / "region.nc")
    with pytest.raises(InputError) as refused:
        compare_scorecards([whole, part])
    said = str(refused.value)
    assert "whole" in said and "region" in said
    assert "96 points per field" in said and "24 points per field" in said
    assert "same region" in said and "--allow-different-points" in said
    done = wxens("compare", whole, part, "--allow-different-points")
    assert done.returncode == 0, done.stderr
    said_lines, printed = done.stdout.split("\n", 2)[:2], done.stdout.split("\n", 2)[2]
    assert said_lines[1].startswith("different points (--allow-different-points): region")
    rows = printed_blocks(printed)["fair CRPS"]
    assert all(any(cell.endswith("*") for cell in row[2:4]) for row in rows)  # still marked
    refused_cli = wxens("compare", whole, part)
    assert refused_cli.returncode != 0 and "--allow-different-points" in refused_cli.stderr
