"""``wxens compare``: the scores files of several experiments, each written by a real
``wxens verify`` against one truth, side by side; the printed values are each file's own,
the best is marked on the right column, and what cannot be compared is refused."""

from __future__ import annotations

import contextlib
import io
import re
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from verification_cases import verify_command

from flows.cli import main
from pipeline.analysis_store import STORE_ID, read_state
from pipeline.errors import InputError
from pipeline.forecast_store import ForecastProvenance, open_forecast, write_forecast
from verification.compare import compare_scorecards, default_names
from verification.compare_table import comparison_frame, table_in_units
from verification.output import VARIABLE_UNITS

BLOCKS = {
    "fair CRPS": "fair_crps",
    "spread/skill": "spread_skill_ratio",
    "ensemble-mean RMSE": "ensemble_mean_rmse",
}


def wxens(*argv: str) -> subprocess.CompletedProcess:
    """``wxens ARGV`` in this process (a subprocess each spent seconds importing), its
    printed output and its logging (the CLI's handlers write to ``sys.stderr`` as found)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return subprocess.CompletedProcess(argv, code, out.getvalue(), err.getvalue())


@pytest.fixture(scope="module")
def scored(stores, tmp_path_factory):
    """Scores files of the oracle forecast (``oracle.nc``), of its members shrunk halfway
    to their mean and 1 K warmer (``shrunk.nc``: under-dispersive and biased; with the
    oracle as its ``--reference``) and of the oracle at its first 3 initial times only
    (``first3.nc``), each by ``wxens verify`` against the same analysis."""
    forecast, analysis = stores
    root = tmp_path_factory.mktemp("compare")
    members = open_forecast(forecast)[["t2m"]].load()
    mean = members.mean("member")
    provenance = ForecastProvenance(
        generator="shrunk", checkpoint_digest="none", sampler="exact", nfe=0, seed=1
    )
    shrunk = (mean + 1.0 + 0.5 * (members - mean)).transpose(*members.t2m.dims)
    write_forecast(root / "shrunk.zarr", shrunk, provenance)
    first3 = [str(t) for t in members.init_time.values[:3]]
    runs = {
        "oracle": (forecast, ()),
        "shrunk": (root / "shrunk.zarr", ("--reference", str(forecast))),
        "first3": (forecast, ("--init", *first3)),
    }
    for name, (store, extra) in runs.items():
        done = wxens(*verify_command(store, analysis, root / f"{name}.nc", *extra))
        assert done.returncode == 0, done.stderr
    return root


def printed_blocks(stdout: str) -> dict[str, list[list[str]]]:
    """Each block's header -> its rows (the cells: variable, lead, one per experiment, unit)."""
    blocks = {}
    for block in stdout.strip().split("\n\n"):
        header, *lines = block.splitlines()
        rows = lines[1:]  # after the column names; the legend has none
        blocks[header] = [re.findall(r"\S+(?: \(\S+\)\*?)?", row) for row in rows]
    return blocks


def tree_of(path) -> xr.DataTree:
    """The scores file at ``path`` in memory, the file closed: netCDF4 handles left open
    across the module's reads of the same files crashed the process (a segfault in HDF5).
    Each node's dataset is loaded: ``DataTree.load()`` (xarray 2026.9) leaves the variable
    ``/rank_histogram/rank_histogram`` lazy, and writing the tree reopened the file,
    after which the next NetCDF write failed ("NetCDF: HDF error") or segfaulted."""
    with xr.open_datatree(path) as tree:
        return tree.map_over_datasets(lambda ds: ds.load())


def scorecard_of(path) -> xr.Dataset:
    return tree_of(path)["scorecard"].to_dataset()


def test_printed_values_are_each_files_scores_with_the_best_marked(scored, tmp_path):
    files = [scored / "shrunk.nc", scored / "oracle.nc"]
    csv = tmp_path / "table.csv"
    done = wxens("compare", *map(str, files), "--name", "dm", "--name", "fm", "--out", str(csv))
    assert done.returncode == 0, done.stderr
    cards = [scorecard_of(f) for f in files]  # an independent read
    blocks = printed_blocks(done.stdout.split("table:")[0])
    for header, score in BLOCKS.items():
        values = np.stack([card[score].sel(variable="t2m").values for card in cards])  # (2, lead)
        best = np.abs(values - 1).argmin(0) if score == "spread_skill_ratio" else values.argmin(0)
        rows = blocks[header]
        assert [r[1] for r in rows] == ["6", "12"]
        for k, row in enumerate(rows):
            shown = [cell.rstrip("*") for cell in row[2:4]]
            assert shown == [f"{v:.4g}" for v in values[:, k]], (header, row)
            assert [cell.endswith("*") for cell in row[2:4]] == [i == best[k] for i in (0, 1)]
    floors = [
        f"{float(c.rank_max_min[0, 0]):.4g} ({float(c.rank_max_min_error_surrogate[0, 0]):.4g})"
        for c in cards
    ]  # the error floor: both files hold it
    ranks = blocks["rank max/min (error floor)"][0][2:4]
    assert [cell.rstrip("*") for cell in ranks] == floors
    # the oracle, second, is best on every score: the marks are in its column, not the first
    for header in BLOCKS:
        assert [row[3].endswith("*") and not row[2].endswith("*") for row in blocks[header]] == [
            True,
            True,
        ]
    table = pd.read_csv(csv)
    crps = table[table.score == "fair_crps"]
    assert crps.dm.tolist() == cards[0].fair_crps.sel(variable="t2m").values.tolist()
    assert crps.fm.tolist() == cards[1].fair_crps.sel(variable="t2m").values.tolist()


def test_the_rank_max_min_nearest_its_floor_is_marked_with_its_floor_kept(scored):
    """The rank max/min block marked nothing: the nearest its floor (over it, 1) now is."""
    files = [scored / "shrunk.nc", scored / "oracle.nc"]
    done = wxens("compare", *map(str, files))
    assert done.returncode == 0, done.stderr
    cards = [scorecard_of(f) for f in files]
    ratios = np.stack([c.rank_max_min.sel(variable="t2m").values for c in cards])  # (2, lead)
    floors = np.stack([c.rank_max_min_error_surrogate.sel(variable="t2m").values for c in cards])
    best = np.abs(ratios / floors - 1).argmin(0)
    assert (best == 1).all()  # arranged: the reliable histogram (the oracle's) is not first
    rows = printed_blocks(done.stdout)["rank max/min (error floor)"]
    for k, row in enumerate(rows):
        assert [cell.rstrip("*") for cell in row[2:4]] == [
            f"{ratios[i, k]:.4g} ({floors[i, k]:.4g})" for i in (0, 1)
        ]
        assert [cell.endswith("*") for cell in row[2:4]] == [False, True], row
    assert "rank max/min nearest its floor" in done.stdout.strip().split("\n\n")[-1]


def test_units_convert_crps_and_rmse_as_verify_does(scored, tmp_path):
    """Scores printed only in the store's units; --units converts CRPS and RMSE as verify's
    (a difference: K to degC keeps the value, no 273.15 offset), the ratios unchanged."""
    files = [scored / "shrunk.nc", scored / "oracle.nc"]
    csv = tmp_path / "t.csv"
    done = wxens("compare", *map(str, files), "--units", "t2m=degC", "--out", str(csv))
    assert done.returncode == 0, done.stderr
    said, table_text = done.stdout.split("table:")[0].split("\n", 1)
    assert said == "t2m: scores printed in degC (x 1 of the stored values)"
    cards = [scorecard_of(f) for f in files]
    blocks = printed_blocks(table_text)
    for header, score in BLOCKS.items():
        for k, row in enumerate(blocks[header]):
            stored = [f"{float(c[score].sel(variable='t2m')[k]):.4g}" for c in cards]
            assert [cell.rstrip("*") for cell in row[2:4]] == stored, (header, row)
            assert row[-1] == ("1" if score == "spread_skill_ratio" else "degC")
    table = pd.read_csv(csv)
    assert set(table[table.score == "fair_crps"].unit) == {"degC"}
    refused = wxens("compare", *map(str, files), "--units", "hPa")
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert "units= (--units 'hPa'): no variable of the truth" in refused.stderr
    assert "known conversions" in refused.stderr
    # a scale that is not 1: the same file's t2m relabelled Pa, shown in hPa
    tree = tree_of(scored / "oracle.nc")
    tree["scorecard"] = (
        tree["scorecard"].to_dataset().assign_coords({VARIABLE_UNITS: ("variable", ["Pa"])})
    )
    shown, factors = table_in_units(compare_scorecards([tree, tree], ["a", "b"]), ["hPa"])
    assert factors == {"t2m": ("hPa", 0.01)}
    rows = comparison_frame(shown).set_index(["score", "lead_hours"])
    card = tree["scorecard"].to_dataset()
    for score in ("fair_crps", "ensemble_mean_rmse", "spread_skill_ratio"):
        scale = 1.0 if score == "spread_skill_ratio" else 0.01
        expected = card[score].sel(variable="t2m").values * scale
        np.testing.assert_allclose(rows.loc[score, "a"].values, expected, rtol=1e-12)
        assert set(rows.loc[score, "unit"]) == {"1" if scale == 1.0 else "hPa"}


def test_files_of_other_initial_times_are_compared_only_when_allowed(scored):
    files = [str(scored / "oracle.nc"), str(scored / "first3.nc")]
    refused = wxens("compare", *files)
    assert refused.returncode == 2
    assert "Traceback" not in refused.stderr
    assert "verified different initial times" in refused.stderr
    assert "oracle (" in refused.stderr and "6 initial times" in refused.stderr
    assert "first3 (" in refused.stderr and "3 initial times" in refused.stderr
    assert "--allow-different-inits" in refused.stderr
    allowed = wxens("compare", *files, "--allow-different-inits")
    assert allowed.returncode == 0, allowed.stderr
    said = [line for line in allowed.stdout.splitlines() if "initial times" in line]
    assert len(said) == 2 and "first3" in said[1]
    assert "fair CRPS" in allowed.stdout


def test_a_file_that_is_not_a_scores_file_is_named(scored, stores, tmp_path):
    plain = tmp_path / "plain.nc"
    xr.Dataset({"a": ("x", [1.0])}).to_netcdf(plain)
    text = tmp_path / "notes.txt"
    text.write_text("not a scores file\n")
    forecast, _ = stores
    for other in (plain, text, forecast):
        done = wxens("compare", str(scored / "oracle.nc"), str(other))
        assert done.returncode == 2, done.stdout
        assert "Traceback" not in done.stderr
        assert f"{other} is " in done.stderr and "not a wxens scores file" in done.stderr


def test_other_units_no_common_lead_and_an_unheld_lead_are_refused(scored, tmp_path):
    tree = tree_of(scored / "oracle.nc")
    other = tree.copy(deep=True)
    other["scorecard"] = (
        other["scorecard"].to_dataset().assign_coords({VARIABLE_UNITS: ("variable", ["degC"])})
    )
    with pytest.raises(InputError, match="t2m is in K in a .* but in degC in b "):
        compare_scorecards([tree, other], ["a", "b"])
    # said of the files, without the truth compare's user never gave, and how to fix it
    celsius = tmp_path / "celsius.nc"
    other.to_netcdf(celsius)
    refused = wxens("compare", str(scored / "oracle.nc"), str(celsius))
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    said = f"t2m is in K in oracle ({scored / 'oracle.nc'}) but in degC in celsius ({celsius})"
    assert said in refused.stderr
    assert "run `wxens verify` of each forecast against the same analysis store" in refused.stderr
    assert "truth" not in refused.stderr
    later = tree.copy(deep=True)
    later["scorecard"] = (
        later["scorecard"]
        .to_dataset()
        .assign_coords(lead_time=tree["scorecard"].lead_time.values + np.timedelta64(48, "h"))
    )
    with pytest.raises(InputError, match=r"no lead in common \(a: 6h, 12h; b: 54h, 60h\)"):
        compare_scorecards([tree, later], ["a", "b"])
    with pytest.raises(InputError, match=r"\(--lead\) 24h .* choose from 6h, 12h"):
        compare_scorecards([tree, tree], ["a", "b"], leads_hours=[24])
    table = compare_scorecards([tree, tree], ["a", "b"], leads_hours=[12])
    assert dict(table.sizes) == {"experiment": 2, "variable": 1, "lead_time": 1}


def test_compared_files_are_closed_once_read(scored):
    """compare_scorecards read each file and left it open (a netCDF4 handle a file, for as
    long as the process ran: a notebook comparing many runs held them all)."""
    files = [scored / "oracle.nc", scored / "shrunk.nc"]
    compare_scorecards(files, ["a", "b"])
    fds = Path("/proc/self/fd")
    held = {str(p.readlink()) for p in fds.iterdir() if p.exists()}
    assert not held & {str(f) for f in files}


def test_default_names_are_the_stems_told_apart_by_their_folders():
    assert default_names(["runs/fm.nc", "dm.nc"]) == ["fm", "dm"]
    assert default_names(["fm/scores.nc", "dm/scores.nc"]) == ["fm/scores", "dm/scores"]


@pytest.fixture(scope="module")
def other_truth(scored, stores):
    """``other.nc``: the oracle forecast verified by ``wxens verify`` against another
    analysis store (``other.zarr``: the same grid and units, another synthetic seed), made
    by ``wxens ingest``."""
    forecast, _ = stores
    store = scored / "other.zarr"
    made = wxens(
        "ingest", "synthetic:n_lat=8,n_lon=12,n_times=12,seed=5", "--store", str(store),
        "--no-progress",
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    done = wxens(*verify_command(forecast, store, scored / "other.nc"))
    assert done.returncode == 0, done.stderr
    return scored / "other.nc"


def test_files_verified_against_other_truth_stores_are_refused_naming_both(
    scored, stores, other_truth
):
    """The units matched, so two truths were compared without a word: now refused."""
    _, analysis = stores
    files = [str(scored / "oracle.nc"), str(other_truth)]
    refused = wxens("compare", *files)
    assert refused.returncode == 2, refused.stdout
    assert "Traceback" not in refused.stderr
    assert "different truth stores" in refused.stderr
    assert f"truth {analysis}, store id " in refused.stderr
    assert f"truth {scored / 'other.zarr'}, store id " in refused.stderr
    assert (
        "the same truth store (--truth)" in refused.stderr
        and "--allow-different-truths" in refused.stderr
    )
    allowed = wxens("compare", *files, "--allow-different-truths")
    assert allowed.returncode == 0, allowed.stderr
    said = [line for line in allowed.stdout.splitlines() if line.startswith("different truths")]
    assert len(said) == 2 and "other.zarr" in said[1]
    assert "fair CRPS" in allowed.stdout


def test_files_of_one_truth_compare_and_info_shows_what_was_verified(scored, stores):
    forecast, analysis = stores
    done = wxens("compare", str(scored / "oracle.nc"), str(scored / "shrunk.nc"))
    assert done.returncode == 0, done.stderr
    assert "truth" not in done.stdout and "fair CRPS" in done.stdout
    store_id = read_state(analysis)[STORE_ID]
    info = wxens("info", str(scored / "oracle.nc"))
    assert info.returncode == 0, info.stderr
    assert f"forecast   {forecast}\n" in info.stdout
    assert f"truth      {analysis} (store id {store_id}, 12 times " in info.stdout
    assert "reference  " not in info.stdout  # verified without one: none recorded
    assert "reference_path" not in tree_of(scored / "oracle.nc").attrs


def test_the_reference_a_file_was_compared_with_is_recorded_and_shown(scored, stores):
    """A scores file of ``wxens verify --reference`` held the reference's CRPS and skill
    but not which reference: its path is recorded beside the forecast's and shown."""
    forecast, _ = stores
    shrunk = scored / "shrunk.nc"
    attrs = tree_of(shrunk).attrs
    assert attrs["reference_path"] == str(forecast)
    assert attrs["forecast_path"] == str(scored / "shrunk.zarr")
    info = wxens("info", str(shrunk))
    assert info.returncode == 0, info.stderr
    assert f"forecast   {scored / 'shrunk.zarr'}\nreference  {forecast}\ntruth " in info.stdout
    done = wxens("compare", str(scored / "oracle.nc"), str(shrunk))
    assert done.returncode == 0, done.stderr
    assert "reference" not in done.stdout and "fair CRPS" in done.stdout


def test_a_file_written_before_the_truth_was_recorded_compares_with_a_line(scored, tmp_path):
    tree = tree_of(scored / "oracle.nc")
    tree.attrs = {k: v for k, v in tree.attrs.items() if not k.startswith(("truth", "forecast"))}
    old = tmp_path / "old.nc"
    tree.to_netcdf(old)
    done = wxens("compare", str(old), str(scored / "shrunk.nc"))
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stdout.splitlines() if "truth is not recorded" in line]
    assert lines == [lines[0]] and lines[0].startswith(f"old ({old}): its truth is not recorded")
    assert "fair CRPS" in done.stdout
    info = wxens("info", str(old))
    assert "truth      not recorded" in info.stdout


def test_a_file_written_before_units_were_recorded_compares_in_the_others_units(scored, tmp_path):
    """A scores file of an older wxens records neither its truth nor its variables' units
    (no ``variable_units``, each score's units the marker ``variable``): compare refused it
    beside a new file as 't2m is in no unit', and its fix (verify against the same store)
    was what the user had done. Its units are unknown, not none: compared, with a line."""
    tree = tree_of(scored / "oracle.nc")
    tree.attrs = {k: v for k, v in tree.attrs.items() if not k.startswith(("truth", "forecast"))}
    card = tree["scorecard"].to_dataset().drop_vars(VARIABLE_UNITS)
    tree["scorecard"] = card.assign({n: card[n].assign_attrs(units="variable") for n in card})
    old = tmp_path / "old.nc"
    tree.to_netcdf(old)
    table = compare_scorecards([tree, tree_of(scored / "shrunk.nc")], ["old", "new"])
    assert table[VARIABLE_UNITS].values.tolist() == ["K"]
    done = wxens("compare", str(old), str(scored / "shrunk.nc"))
    assert done.returncode == 0, done.stderr
    said = f"old ({old}): its truth and units are not recorded (written by an older wxens)"
    assert said in done.stdout
    assert "fair CRPS" in done.stdout and " K" in done.stdout


def test_rank_max_min_beside_a_file_without_floor_marks_no_best(scored, stores, tmp_path):
    """A rank histogram of fewer bins reads flatter by sampling alone (a deterministic
    forecast's two bins were marked the flattest beside an ensemble's): where a file has no
    floor to read its ratio against, no rank max/min is marked best, and a line says why."""
    forecast, analysis = stores
    one = open_forecast(forecast)[["t2m"]].isel(member=[0]).load()
    provenance = ForecastProvenance(
        generator="one", checkpoint_digest="none", sampler="exact", nfe=0, seed=1
    )
    write_forecast(tmp_path / "one.zarr", one, provenance)
    # without its error floor: the files are read against the perfect-model one, which a
    # single member has none of
    skip = ["--error-surrogate-replicas", "0"]
    done = wxens(*verify_command(tmp_path / "one.zarr", analysis, tmp_path / "one.nc"), *skip)
    assert done.returncode == 0, done.stderr
    csv = tmp_path / "table.csv"
    files = [scored / "oracle.nc", tmp_path / "one.nc"]
    done = wxens("compare", *map(str, files), "--out", str(csv))
    assert done.returncode == 0, done.stderr
    rows = printed_blocks(done.stdout.split("table:")[0])["rank max/min (perfect-model floor)"]
    assert rows and not any(cell.endswith("*") for row in rows for cell in row[2:4]), rows
    assert "none marked where a file has no floor (one:" in done.stdout
    table = pd.read_csv(csv, keep_default_na=False)
    assert (table[table.score == "rank_max_min"].best == "").all()
    assert (table[table.score == "fair_crps"].best != "").all()  # the others still marked


def test_the_same_scores_to_their_last_bits_are_a_tie_both_marked(scored, tmp_path):
    """The same forecast verified twice (another --lead or --variables: other float sums)
    differs in the last bits of its scores; one file was starred the best, alone."""
    tree = tree_of(scored / "oracle.nc")
    card = tree["scorecard"].to_dataset()
    bits = {n: card[n] * (1 + 4e-16) for n in ("fair_crps", "ensemble_mean_rmse")}
    tree["scorecard"] = xr.DataTree(card.assign(bits))
    tree.to_netcdf(tmp_path / "again.nc")
    csv = tmp_path / "table.csv"
    files = [str(scored / "oracle.nc"), str(tmp_path / "again.nc")]
    done = wxens("compare", *files, "--out", str(csv))
    assert done.returncode == 0, done.stderr
    table = pd.read_csv(csv, keep_default_na=False)
    for score in ("fair_crps", "ensemble_mean_rmse"):
        rows = table[table.score == score]
        assert (rows.oracle != rows.again).all()  # not equal: the last bits differ
        assert (rows.best == "oracle;again").all(), rows


def test_a_python_caller_is_told_the_keyword_before_the_cli_flag(scored):
    """compare_scorecards told a Python caller to give one --name per file and to pass
    --allow-different-truths, flags of a command it never ran."""
    tree = tree_of(scored / "oracle.nc")
    with pytest.raises(InputError, match=r"one name per file in names= \(--name\)"):
        compare_scorecards([tree, tree], ["a"])
    with pytest.raises(InputError, match=r"leads_hours= \(--lead\) 999h is not a lead"):
        compare_scorecards([tree, tree], ["a", "b"], leads_hours=[999])


def test_names_given_as_a_comma_list_are_told_to_repeat_the_flag(scored):
    """`--name bc,raw` (as --lead takes a comma list) was refused as "1 names for 2 scores
    files" without saying that --name is repeated, once per file."""
    done = wxens("compare", str(scored / "oracle.nc"), str(scored / "shrunk.nc"), "--name", "a,b")
    assert done.returncode == 2
    assert "1 names for 2 scores files" in done.stderr
    assert "a comma list is one name: the flag is repeated, once per file" in done.stderr
    done = wxens("compare", str(scored / "oracle.nc"), str(scored / "shrunk.nc"), "--name", "a")
    assert done.returncode == 2 and "comma list" not in done.stderr
