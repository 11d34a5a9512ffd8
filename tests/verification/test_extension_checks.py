"""A physics check an extension registers that returns something other than a list of
``CheckResult``s, or raises, ends ``wxens verify`` in one line naming the check and its
extension (a bare ``TypeError: 'float' object is not iterable`` named neither)."""

from __future__ import annotations

import pytest
import xarray as xr

from tests.verification.test_extensions import install, wxens
from tests.verification.verification_cases import verify_command

CHECK_MODULE = """
from typing import ClassVar

from verification.base import CheckResult, register_check


@register_check
class MeanOffset:
    name: ClassVar[str] = "mean_offset"
    description: ClassVar[str] = "distance of the members' mean from the truth's"
    units: ClassVar[str] = "K"
    requires: ClassVar[str] = "t2m"

    def applies(self, forecast):
        return "t2m" in forecast.data_vars

    def __call__(self, forecast, truth, initial=None):
        return BODY
"""

EXTENSION = "the extension 'offset' (wxens-offset 0.1, wxens_offset)"


def verify_with_check(stores, tmp_path, body: str):
    """``wxens verify`` (physics on one init time) with the check returning ``body``."""
    install(tmp_path, "wxens-offset", "offset", "wxens_offset", CHECK_MODULE.replace("BODY", body))
    out = tmp_path / "scores.nc"
    return wxens(tmp_path, *verify_command(*stores, out, "--physics-init-times", "1"))


RETURNS = "; a check returns a list of CheckResult"


@pytest.mark.parametrize(
    ("body", "said"),
    [
        ("1.5", "returned 1.5 (a float)" + RETURNS),
        ("[1.5]", "returned [1.5] (a list of float)" + RETURNS),
        ("forecast.t2m.sel(level=500)", "failed (KeyError: \"'level' is not a valid dimension"),
    ],
    ids=["float", "list of float", "raises"],
)
def test_a_bad_check_is_an_error_naming_it_its_extension_and_what_it_did(
    stores, tmp_path, body, said
):
    done = verify_with_check(stores, tmp_path, body)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    assert f"physics check 'mean_offset' of {EXTENSION} {said}" in done.stderr, done.stderr


def test_a_check_returning_a_list_of_results_is_in_the_physics_group(stores, tmp_path):
    """The guard lets a well-made extension check through, its result beside wxens' own."""
    body = (
        "[CheckResult(self.name, self.description, self.units, "
        "abs(forecast.t2m - truth.t2m).mean([d for d in forecast.t2m.dims if d != 'member']), "
        "0.0, 1.0, 'one kelvin')]"
    )
    done = verify_with_check(stores, tmp_path, body)
    assert done.returncode == 0, done.stderr
    physics = xr.open_datatree(tmp_path / "scores.nc")["physics"].to_dataset()
    assert {"mean_offset", "physical_bounds"} <= set(physics.family.values)
    offset = physics.member_score.sel(check=physics.family == "mean_offset")
    assert offset.sizes["member"] == 3 and bool(offset.notnull().all())
