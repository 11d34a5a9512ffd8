"""A period written as text (``str(period)``, as a spread calibration records it) reads back."""

import pytest

from pipeline.schema import Period


@pytest.mark.parametrize(
    "period",
    [Period("2019-03-18", "2019-03-21"), Period(None, "2019-03-21"), Period("2019-03-18T06")],
)
def test_a_period_written_as_text_reads_back_as_itself(period):
    assert Period.from_str(str(period)) == period


@pytest.mark.parametrize(
    "text", ["the held-out periods of 4 cross-validation folds (...)", "", "soon to later"]
)
def test_other_text_reads_as_no_period(text):
    assert Period.from_str(text) is None
