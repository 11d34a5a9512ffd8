"""``wxens verify --physics`` prints which part failed, on which channel, and the fix: a
spectral row scored by its largest channel did not say which channel it was, and a
failing balance check did not say that the members were drawn without ``--balance``."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest
import xarray as xr
from verification_cases import at_leads, balanced_members, verify_command

from flows.cli import main as wxens
from pipeline.forecast_store import ForecastProvenance, write_forecast
from pipeline.sources.synthetic import SyntheticConfig, synthetic_dataset
from pipeline.store import ingest
from tests.global_upper_air import global_upper_air
from verification.physics_summary import BALANCE_CHECKS, balance_fixes, not_balanced

NOT_BALANCED = not_balanced(BALANCE_CHECKS)  # the line on a grid where both balances hold


@pytest.fixture(scope="module")
def upper_air_stores(tmp_path_factory):
    """An upper-air analysis store (synthetic, 16 x 24) and balanced members of other
    seeds (8 init times, leads 6 and 12 h): ``(root, analysis, members)``."""
    root = tmp_path_factory.mktemp("physics_printed")
    config = SyntheticConfig(n_lat=16, n_lon=24, n_times=24)
    ingest(config.to_spec(), root / "analysis.zarr", progress=False)
    members = balanced_members(config, synthetic_dataset(config).load(), 8, (6, 12), (11, 12, 13))
    return root, root / "analysis.zarr", members


def noisy_500(members: xr.Dataset, variable: str = "u", sd: float = 3.0) -> xr.Dataset:
    """``members`` with white noise of ``sd`` (3 m/s) on ``variable`` (u) at 500 hPa only."""
    out = members.copy(deep=True)
    field = out[variable].sel(level=500)
    noise = np.random.default_rng(0).normal(0.0, sd, field.shape).astype(field.dtype)
    out[variable].loc[{"level": 500}] = field + noise
    return out


def verified(root, analysis, members, name, *, balanced, extra=()):
    store = root / f"{name}.zarr"
    provenance = ForecastProvenance(
        generator="oracle", checkpoint_digest="none", sampler="exact", nfe=0, seed=1,
        balanced=balanced,
    )  # fmt: skip
    write_forecast(store, members, provenance)
    scores = root / f"{name}.nc"
    command = verify_command(store, analysis, scores, "--physics-init-times", "8", *extra)
    printed = io.StringIO()  # in this process (a module fixture has no capsys)
    with contextlib.redirect_stdout(printed):
        assert wxens(command) == 0
    return printed.getvalue(), scores


@pytest.fixture(scope="module")
def noisy_unbalanced(upper_air_stores):
    """The printed lines, scores file and report of ``verify`` of noisy members drawn
    without ``--balance`` (one verify serves both tests)."""
    root, analysis, members = upper_air_stores
    report = root / "report.html"
    out, scores = verified(
        root, analysis, noisy_500(members), "noisy", balanced=False,
        extra=("--report", str(report)),
    )  # fmt: skip
    return out, scores, report


def test_a_failing_spectral_row_names_its_worst_channel(noisy_unbalanced):
    out, scores, report = noisy_unbalanced
    line = next(x for x in out.splitlines() if x.startswith("physics spectral_ratio small"))
    assert "FAIL" in line and line.endswith("worst channel u500"), out
    physics = xr.open_dataset(scores, group="physics").load()
    row = physics.sel(check="spectral_ratio small scales")
    assert set(row["worst"].values.tolist()) == {"u500"}
    assert set(physics.sel(check="geostrophic 500 hPa")["worst"].values.tolist()) == {""}
    assert "members pass), worst channel u500" in report.read_text()  # the report says it too


def test_a_failing_balance_check_says_the_members_were_drawn_without_balance(
    upper_air_stores, noisy_unbalanced
):
    root, analysis, members = upper_air_stores
    out = noisy_unbalanced[0]
    assert "physics geostrophic 500 hPa: FAIL" in out
    assert out.count(NOT_BALANCED) == 1, out
    out, _ = verified(root, analysis, noisy_500(members), "balanced", balanced=True)
    assert "physics geostrophic 500 hPa: FAIL" in out and NOT_BALANCED not in out, out
    out, _ = verified(root, analysis, members, "passing", balanced=False)
    assert "physics: " in out and "geostrophic" not in out and "hypsometric" not in out, out
    assert NOT_BALANCED not in out, out


# members equal to the truth but for u500: z, t and v have no spread and no error, and their
# spread-skill ratio is 0 / 0 (NaN, as it should be; numpy warns in dask's tasks)
@pytest.mark.filterwarnings("ignore:invalid value encountered in divide:RuntimeWarning")
def test_a_global_grid_is_sent_to_balance_for_its_hypsometric_part_alone(tmp_path):
    """On a grid that crosses the equator (f = 0 there) ``--balance`` makes z and t
    hypsometric but keeps the winds: it is suggested for a failing hypsometric check, saying
    so, and not for a failing geostrophic one, which it would not fix."""
    from pipeline.store import open_store

    global_upper_air(tmp_path)
    truth = open_store(tmp_path / "global.zarr").dataset[["z", "t", "u", "v"]].load()
    inits = truth.time.values[:8]
    members = xr.concat(
        [at_leads(truth, inits, (6, 12)) for _ in range(3)], dim="member"
    ).transpose("init_time", "member", ...)
    out, _ = verified(tmp_path, tmp_path / "global.zarr", noisy_500(members), "g", balanced=False)
    assert "physics geostrophic 500 hPa: FAIL" in out, out
    assert NOT_BALANCED not in out, out
    assert "--balance" not in out, out
    noisy_z = noisy_500(members, "z", 3000.0)
    out, _ = verified(tmp_path, tmp_path / "global.zarr", noisy_z, "gz", balanced=False)
    hypsometric = [line for line in out.splitlines() if line.startswith("physics hypsometric")]
    assert hypsometric and all(": FAIL" in line for line in hypsometric), out
    global_lat = np.arange(-90.0, 90.1, 10.0)  # global_upper_air's
    assert not_balanced(("hypsometric",), global_lat) in out, out
    assert "onto hypsometric balance (" in out and "its winds are kept" in out, out


def test_a_grid_near_but_not_across_the_equator_says_why_its_winds_are_kept():
    """5-35° N holds no equator (f > 0 throughout), yet --balance keeps its winds (beyond
    10° only): the line said "f = 0 on the equator", a reason this grid does not have."""
    latitude = np.arange(5.0, 35.1, 2.5)
    line = not_balanced(balance_fixes(latitude), latitude)
    assert "onto hypsometric balance (its winds are kept:" in line, line
    assert "f = 0 on the equator" not in line, line
    assert "beyond 10 degrees; the grid spans 5..35" in line, line
    assert "its winds are kept" not in not_balanced(balance_fixes(latitude + 10), latitude + 10)
