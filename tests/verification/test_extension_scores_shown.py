"""A score an extension registers is shown where the built-ins are: in the table ``wxens
verify`` prints, in the report's skill table and in ``wxens compare`` (its ``--out`` CSV
too), after the built-ins, with the best marked by the score's ``best``."""

from __future__ import annotations

import pandas as pd
import xarray as xr

from tests.verification.test_extensions import MAE_MODULE, install, wxens
from tests.verification.verification_cases import verify_command


def test_an_extension_score_is_printed_reported_and_compared(stores, tmp_path):
    """``mean_abs_error`` was in the scores file's scorecard only."""
    install(tmp_path, "wxens-mae", "mae", "wxens_mae", MAE_MODULE)
    a, report = tmp_path / "a.nc", tmp_path / "report.html"
    done = wxens(tmp_path, *verify_command(*stores, a, "--report", str(report)))
    assert done.returncode == 0, done.stderr
    header = next(line for line in done.stdout.splitlines() if line.lstrip().startswith("var"))
    assert header.split()[-2:] == ["mean_abs_error", "unit"], header
    assert header.index("fair CRPS") < header.index("rank max/min") < header.index("mean_abs")
    assert "<th title='mean absolute error of the ensemble mean'>mean_abs_error</th>" in (
        report.read_text()
    )

    with xr.open_datatree(a) as tree:  # b: the same forecast, but twice the error
        b = tree.load().copy()
    b["scorecard"]["mean_abs_error"] = b["scorecard"]["mean_abs_error"] * 2
    b.to_netcdf(tmp_path / "b.nc")
    compared = wxens(
        tmp_path, "compare", str(a), str(tmp_path / "b.nc"), "--out", str(tmp_path / "t.csv")
    )
    assert compared.returncode == 0, compared.stderr
    blocks = compared.stdout.split("\n\n")
    assert blocks[-2].startswith("mean_abs_error\n"), compared.stdout  # after the built-ins
    assert blocks[0].startswith("fair CRPS\n")
    table = pd.read_csv(tmp_path / "t.csv")
    rows = table[table.score == "mean_abs_error"]
    assert len(rows) == 2 and (rows.best == "a").all() and (rows.unit == "K").all()
    assert (rows.b == 2 * rows.a).all()
