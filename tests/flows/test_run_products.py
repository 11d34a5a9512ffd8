"""``ensemble_run``'s products step: each cycle's run writes ``wxens products`` of the store
it delivers, the same fields as the library call the command makes."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import xarray as xr
import yaml

from pipeline.errors import InputError
from pipeline.forecast_store import open_forecast
from pipeline.sources.synthetic import synthetic_dataset
from tests.flows.conftest import CHAIN_INIT_TIMES, in_directory
from tests.verification.test_operational_ensembles import (
    CONFIG,
    INITS_H,
    OFFSET,
    STEPS_H,
    start_file,
    write_ens_grib,
)
from verification.product_output import PRODUCTS_ATTR

pytestmark = pytest.mark.slow

ASKED = {"mean": True, "quantiles": "10,50,90", "probability": ["t2m<0degC"]}


def test_a_run_writes_the_products_of_its_delivered_store(
    chain, tmp_path, file_times, monkeypatch
):
    """The run's products equal :func:`write_products` of its forecast store; a rerun over
    the same forecast leaves them as they are, and a second run with other products replaces
    them (an earlier products output, as ``--overwrite``)."""
    from flows.pipelines import ensemble_run
    from verification.product_output import ProductRequest, write_products

    out = tmp_path / "products.nc"
    parameters = {**chain.parameters, "products": ASKED, "products_out": str(out)}
    monkeypatch.chdir(chain.workdir)
    summary = ensemble_run(**parameters)
    assert summary["products"] == str(out)
    expected, _ = write_products(chain.forecast, tmp_path / "lib.nc", ProductRequest.of(ASKED))
    with xr.open_dataset(out) as got, xr.open_dataset(expected) as want:
        assert "t2m_mean" in got and set(got.data_vars) == set(want.data_vars)
        xr.testing.assert_allclose(got.load(), want.load())

    before = file_times(out)
    assert ensemble_run(**parameters) == summary
    assert file_times(out) == before  # skipped: the forecast is unchanged
    ensemble_run(**{**parameters, "products": {"spread": True}})
    with xr.open_dataset(out) as got:
        assert list(got.data_vars) == ["t2m_spread"]


def test_each_cycles_run_writes_the_products_of_its_own_initial_times(chain, tmp_path, file_times):
    """Products of the whole store grew with every cycle it kept (120 after a month of
    6-hourly runs), each run recomputing them all: a run writes those of the initial times it
    forecast. The next cycle's run is not skipped over the same products asked; a rerun of
    it is."""
    from flows.pipelines import ensemble_run

    out = tmp_path / "products.nc"
    parameters = {
        **chain.parameters,
        "forecast_store": str(tmp_path / "forecast.zarr"),
        "scores": str(tmp_path / "scores.nc"),
        "report": None,
        "products": {"mean": True},
        "products_out": str(out),
    }
    first, second = CHAIN_INIT_TIMES[:2]
    with in_directory(chain.workdir):
        ensemble_run(**{**parameters, "init_times": [first]})
        with xr.open_dataset(out) as got:
            assert got["init_time"].values.tolist() == [pd.Timestamp(first).value]
        ensemble_run(**{**parameters, "init_times": [second]})
        with open_forecast(parameters["forecast_store"]) as store:
            assert store.sizes["init_time"] == 2  # the store keeps the first cycle's
        with xr.open_dataset(out) as got:
            assert got["init_time"].values.tolist() == [pd.Timestamp(second).value]
        before = file_times(out)
        ensemble_run(**{**parameters, "init_times": [second]})
        assert file_times(out) == before  # the same cycle's rerun: skipped


def test_a_rerun_rewrites_products_another_run_replaced(chain, tmp_path, file_times):
    """A rerun was skipped wherever ``out`` existed and its own cache matched, so products
    another run (other initial times) or a hand-run ``wxens products --overwrite`` (other
    products) had written since were left as if they were the rerun's. The file records
    what made it; a rerun writes again where that is not what it asks, and only there."""
    from flows.steps import products
    from verification.product_output import ProductRequest, write_products

    out = tmp_path / "products.nc"
    first, second = CHAIN_INIT_TIMES[:2]
    run = (str(chain.forecast), str(out), {"mean": True}, [first])

    def held() -> tuple[list[int], list[str]]:
        with xr.open_dataset(out) as got:
            return got["init_time"].values.tolist(), sorted(map(str, got.data_vars))

    with in_directory(chain.workdir):
        products(*run)
        own = held()
        assert own[0] == [pd.Timestamp(first).value]
        before = file_times(out)
        products(*run)
        assert file_times(out) == before  # its own products: skipped
        products(str(chain.forecast), str(out), {"mean": True}, [second])  # another run's
        assert held()[0] == [pd.Timestamp(second).value]
        products(*run)
        assert held() == own
        spread = ProductRequest(spread=True)
        write_products(chain.forecast, out, spread, init_times=[first], overwrite=True)
        assert held()[1] == ["t2m_spread"]
        products(*run)
        assert held() == own


def test_the_run_summary_says_which_initial_times_the_products_hold(chain):
    """``wxens run`` printed the products' path alone: each cycle's run rewrites the file
    with its own initial times, which the summary now names."""
    from flows.commands.run import describe

    text = describe({**chain.summary, "products": "products.nc"})
    held = "4 initial times 2000-01-08T00:00..2000-01-08T18:00"
    assert f"products         products.nc (this run's {held})" in text
    one = {**chain.summary, "products": "p.nc", "forecast_init_times": CHAIN_INIT_TIMES[:1]}
    assert "products         p.nc (this run's initial time 2000-01-08T00:00)" in describe(one)


def test_the_run_summary_says_how_many_forecasts_await_their_truth(chain):
    """Of the store's initial times, those without the truth of their last lead are not
    verified: the summary said "1 initial time of the store verified" of 3, not why the
    others were not, nor that a later run verifies them."""
    from flows.commands.run import describe

    verified = chain.summary["verified_init_times"]
    assert len(verified) == 4  # every one the store holds: nothing awaits
    assert "await" not in describe(chain.summary)
    text = describe({**chain.summary, "verified_init_times": verified[:1]})
    assert (
        "(1 initial time of the store verified; 3 await the truth of their last lead: a later "
        "run verifies them)"
    ) in text, text
    text = describe({**chain.summary, "verified_init_times": verified[:3]})
    assert "verified; 1 awaits the truth of its last lead: a later run verifies it)" in text


def test_a_products_template_keeps_each_cycles_products_in_a_file_of_its_own(
    chain, tmp_path, file_times
):
    """Each run replaced the last run's file, where a forecast office archives every cycle's
    and a downstream system picks up the newest by name: ``{init:FORMAT}`` in
    ``products_out`` gives each initial time its own file, which a rerun leaves as it is."""
    from flows.pipelines import ensemble_run

    parameters = {
        **chain.parameters,
        "forecast_store": str(tmp_path / "forecast.zarr"),
        "scores": str(tmp_path / "scores.nc"),
        "report": None,
        "products": {"mean": True},
        "products_out": str(tmp_path / "products" / "uk_{init:%Y%m%dT%H}.nc"),
    }
    first, second = CHAIN_INIT_TIMES[:2]
    files = {first: tmp_path / "products/uk_20000108T00.nc"}
    files[second] = tmp_path / "products/uk_20000108T06.nc"
    with in_directory(chain.workdir):
        ensemble_run(**{**parameters, "init_times": [first]})
        ensemble_run(**{**parameters, "init_times": [second]})
        assert sorted((tmp_path / "products").glob("*.nc")) == sorted(files.values())
        for init, path in files.items():
            with xr.open_dataset(path) as got:
                assert got["init_time"].values.tolist() == [pd.Timestamp(init).value]
        before = file_times(*files.values())
        ensemble_run(**{**parameters, "init_times": [second]})
        assert file_times(*files.values()) == before  # its file skipped, the other kept


def test_the_run_summary_names_the_files_a_products_template_gave(chain):
    """With a template the summary's products path was the template itself: it names the
    files this run's initial times gave."""
    from flows.commands.run import describe

    text = describe({**chain.summary, "products": "p/uk_{init:%Y%m%dT%H}.nc"})
    files = "4 files p/uk_20000108T00.nc .. p/uk_20000108T18.nc"
    assert f"products         {files} (this run's 4 initial times" in text
    one = {**chain.summary, "products": "uk_{init:%Y%m%d%H}.nc"}
    one["forecast_init_times"] = CHAIN_INIT_TIMES[:1]
    single = "products         uk_2000010800.nc (this run's initial time 2000-01-08T00:00)"
    assert single in describe(one)


def test_a_schedules_products_of_an_ens_file_leave_out_its_control(
    prefect_server, tmp_path, file_times, monkeypatch
):
    """``wxens products --members perturbed`` left an ENS file's control (number 0) out; a
    schedule's products deployment could not: ``members: perturbed`` loads, and its run's
    products are those of members 1..N. Member k is the truth plus ``OFFSET * k``, so their
    mean is ``OFFSET / 2`` above the mean of all of 0..N. Asking all members again is another
    request, not the file's own: written again, not skipped."""
    from flows.deployments import load_schedule
    from flows.steps import products

    monkeypatch.chdir(tmp_path)  # Prefect's results (.wxens) land here, not in the repository
    grib = write_ens_grib(tmp_path / "ens.grib", synthetic_dataset(CONFIG).load(), range(4))
    asked = {"forecast": str(grib), "products": {"mean": True}, "members": "perturbed"}
    run = {"name": "ens-products", "flow": "products", "cron": "0 */6 * * *"}
    schedule = tmp_path / "schedule.yaml"
    run["parameters"] = {**asked, "out": str(tmp_path / "perturbed.nc")}
    schedule.write_text(yaml.safe_dump({"deployments": [run]}))
    [spec] = load_schedule(schedule)
    perturbed = products(**spec.parameters)
    every = products(**{**spec.parameters, "out": str(tmp_path / "all.nc"), "members": "all"})
    with xr.open_dataset(perturbed) as got, xr.open_dataset(every) as whole:
        assert json.loads(got.attrs[PRODUCTS_ATTR])["members"] == "perturbed"
        xr.testing.assert_allclose(got["z_mean"], whole["z_mean"] + OFFSET / 2, atol=1e-2)
    before = file_times(Path(perturbed))
    products(**spec.parameters)
    assert file_times(Path(perturbed)) == before  # its own products of those members: skipped
    products(**{**spec.parameters, "members": "all"})
    with xr.open_dataset(perturbed) as got, xr.open_dataset(every) as whole:
        xr.testing.assert_allclose(got["z_mean"], whole["z_mean"])


def test_a_schedules_products_of_files_of_one_forecast_each_read_their_names(
    prefect_server, tmp_path, file_times, capsys, monkeypatch
):
    """``wxens products --init-from-filename`` read a folder of files of one forecast each,
    their start dates in their names; a schedule's products deployment could not. Its
    ``init_from_filename`` loads, and its run writes each start's file (``out`` a template)
    as the command writes that start; a rerun is skipped, another pattern is another
    request (written again), and a pattern without a date is refused as the file loads,
    naming the deployment and the parameter."""
    from flows.cli import main
    from flows.deployments import load_schedule
    from flows.steps import products

    monkeypatch.chdir(tmp_path)  # Prefect's results (.wxens) land here, not in the repository
    fields, starts = synthetic_dataset(CONFIG).load(), []
    for hours in INITS_H:
        starts.append(pd.Timestamp(fields.time.values[0]) + pd.Timedelta(hours=hours))
        path = tmp_path / f"fc_{starts[-1]:%Y%m%d%H}_t2m.nc"
        start_file(fields, "t2m", starts[-1], len(STEPS_H), "6h", 3).to_netcdf(path)
    glob, pattern = str(tmp_path / "fc_*.nc"), "fc_%Y%m%d%H"
    parameters = {"forecast": glob, "out": str(tmp_path / "p_{init:%Y%m%d%H}.nc")}
    parameters |= {"products": {"mean": True, "quantiles": "10,50,90"}}
    parameters |= {"init_from_filename": pattern}
    run = {"name": "hindcast-products", "flow": "products", "cron": "0 9 * * *"}
    schedule = tmp_path / "schedule.yaml"
    schedule.write_text(yaml.safe_dump({"deployments": [{**run, "parameters": parameters}]}))
    [spec] = load_schedule(schedule)
    products(**spec.parameters)

    lib = tmp_path / "lib.nc"
    argv = ["products", glob, "--out", str(lib), "--mean", "--quantiles", "10,50,90"]
    argv += ["--init-from-filename", pattern, "--no-progress"]
    assert main(argv) == 0, capsys.readouterr().err
    files = [tmp_path / f"p_{start:%Y%m%d%H}.nc" for start in starts]
    assert sorted(tmp_path.glob("p_*.nc")) == sorted(files)
    with xr.open_dataset(lib) as want:
        for start, path in zip(starts, files, strict=True):
            with xr.open_dataset(path) as got:
                assert set(got.data_vars) == set(want.data_vars) == {"t2m_mean", "t2m_quantiles"}
                xr.testing.assert_allclose(got.load(), want.sel(init_time=[start]).load())
                assert json.loads(got.attrs[PRODUCTS_ATTR])["init_from_filename"] == pattern
    before = file_times(*files)
    products(**spec.parameters)
    assert file_times(*files) == before  # the same files, products and pattern: skipped
    other = "fc_%Y%m%d%H_t2m"  # the same start dates, but another request: written again
    products(**{**spec.parameters, "init_from_filename": other})
    after = file_times(*files)
    assert all(after[path] != before[path] for path in files), (before, after)
    for path in files:
        with xr.open_dataset(path) as got:
            assert json.loads(got.attrs[PRODUCTS_ATTR])["init_from_filename"] == other

    verify = {"forecast": glob, "truth": "truth.zarr", "scores": str(tmp_path / "s.nc")}
    for deployment in ({**run, "parameters": parameters}, {**run, "flow": "verify"}):
        deployment["parameters"] = {**deployment.get("parameters", verify)}
        deployment["parameters"]["init_from_filename"] = "fc_"  # no date in it
        schedule.write_text(yaml.safe_dump({"deployments": [deployment]}))
        with pytest.raises(InputError) as err:
            load_schedule(schedule)
        said = str(err.value)
        assert f"{schedule}: deployment 1" in said and "init_from_filename='fc_'" in said, said
        assert "(--init-from-filename)" in said and "holds no date directive" in said, said
