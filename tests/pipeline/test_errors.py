"""Which failures are worth another try (:func:`pipeline.errors.is_transient`): transient I/O
is, even wrapped by the library; a full disk, a read-only file system, a bad name or
permission never are, whatever wraps them."""

from __future__ import annotations

import errno

import pytest

from pipeline.errors import InputError, StoreError, is_transient

TRANSIENT = ["EIO", "EAGAIN", "ETIMEDOUT", "ECONNRESET", "ECONNABORTED", "ESTALE", "ENETUNREACH"]
PERMANENT = [
    "ENOSPC",
    "EROFS",
    "EDQUOT",
    "ENAMETOOLONG",
    "EINVAL",
    "EACCES",
    "EPERM",
    "ENOENT",
    "EISDIR",
]


@pytest.mark.parametrize(
    ("name", "retried"), [(n, True) for n in TRANSIENT] + [(n, False) for n in PERMANENT]
)
def test_an_os_error_is_retried_by_its_errno(name, retried):
    code = getattr(errno, name)
    error = OSError(code, f"{name} (simulated)", "/mnt/nfs/era5.zarr")
    assert is_transient(error) is retried  # OSError() picks FileNotFoundError etc. by errno


@pytest.mark.parametrize(
    ("error", "retried"),
    [
        (TimeoutError("read timed out"), True),
        (ConnectionResetError("connection reset by peer"), True),
        (BrokenPipeError(), True),
        (FileNotFoundError("era5.zarr"), False),
        (PermissionError("denied"), False),
        (OSError("NetCDF: Unknown file format"), False),  # a decoder's OSError, no errno
        (InputError("unknown variable 't2mm'"), False),
        (StoreError("x.zarr: no such store"), False),
        (ValueError("a bug"), False),
        (KeyError("latitude"), False),
    ],
)
def test_timeouts_and_dropped_connections_are_retried_bad_input_never(error, retried):
    assert is_transient(error) is retried


def wrapped(cause: BaseException, wrapper: type[Exception] = InputError) -> Exception:
    """``cause`` wrapped as the library wraps it: ``raise wrapper(...) from cause``."""
    try:
        try:
            raise cause
        except BaseException as err:
            raise wrapper(f"era5.zarr: cannot be opened ({err})") from err
    except Exception as outer:
        return outer


@pytest.mark.parametrize("wrapper", [InputError, StoreError])
def test_a_transient_error_wrapped_by_the_library_is_still_retried(wrapper):
    assert is_transient(wrapped(OSError(errno.EIO, "Input/output error"), wrapper))
    assert is_transient(wrapped(TimeoutError("timed out"), wrapper))
    # two levels deep: a decoder's error caused by the network
    assert is_transient(wrapped(wrapped(ConnectionResetError(), RuntimeError), wrapper))


@pytest.mark.parametrize("wrapper", [InputError, StoreError])
def test_a_permanent_error_wrapped_by_the_library_fails_at_once(wrapper):
    assert not is_transient(wrapped(OSError(errno.ENOSPC, "No space left on device"), wrapper))
    assert not is_transient(wrapped(OSError(errno.EROFS, "Read-only file system"), wrapper))
    # the first error of the chain that says either way decides
    assert not is_transient(wrapped(wrapped(OSError(errno.EIO, "I/O"), PermissionError), wrapper))


def test_the_error_being_handled_counts_unless_suppressed():
    try:
        try:
            raise OSError(errno.EAGAIN, "Resource temporarily unavailable")
        except OSError:
            raise StoreError("checkpoint.pt: cannot be read")  # noqa: B904 (the test's point)
    except StoreError as err:
        implicit = err
    assert is_transient(implicit)
    try:
        try:
            raise OSError(errno.EAGAIN, "Resource temporarily unavailable")
        except OSError:
            raise StoreError("checkpoint.pt: cannot be read") from None
    except StoreError as err:
        suppressed = err
    assert not is_transient(suppressed)


def test_a_cycle_in_the_chain_ends():
    a, b = InputError("a"), InputError("b")
    a.__cause__, b.__cause__ = b, a
    assert not is_transient(a)


@pytest.mark.parametrize(
    ("code", "retried"), [(errno.EIO, True), (errno.ETIMEDOUT, True), (errno.EACCES, False)]
)
def test_opening_a_zarr_source_keeps_the_io_error_as_its_cause(
    tmp_path, monkeypatch, code, retried
):
    import xarray as xr

    from pipeline.sources.files import ZarrSource

    def dropped_mount(*args, **kwargs):
        raise OSError(code, "simulated", str(tmp_path / "era5.zarr"))

    monkeypatch.setattr(xr, "open_zarr", dropped_mount)
    with pytest.raises(InputError, match="cannot be opened as a Zarr store") as caught:
        ZarrSource("gs://bucket/era5.zarr").open()
    assert is_transient(caught.value) is retried


def test_suggested_commands_quote_the_paths_they_name(tmp_path):
    """A path with a space or shell metacharacters (a file name someone chose) is quoted in
    the command a message suggests, so pasting it runs that command and nothing else."""
    import shlex

    from pipeline.analysis_store import open_store
    from pipeline.errors import StoreError
    from pipeline.forecast_store import open_forecast

    odd = tmp_path / "my store;touch x.zarr"
    with pytest.raises(StoreError) as err:
        open_store(odd)
    assert f"`wxens ingest SOURCE --store {shlex.quote(str(odd))}`" in str(err.value)
    with pytest.raises(StoreError) as err:
        open_forecast(odd)
    assert f"`wxens forecast --out {shlex.quote(str(odd))}`" in str(err.value)
    sent = tmp_path / "t2m $(id).grib"
    sent.write_bytes(b"GRIB")
    with pytest.raises(StoreError) as err:
        open_store(sent)
    assert f"`wxens ingest {shlex.quote(str(sent))} --store STORE.zarr`" in str(err.value)


def test_a_forecast_store_without_its_completion_record_is_named_so(tmp_path):
    """A Zarr store someone sent with ``kind: forecast`` but no per-init completion record
    (written by another tool) is not said to lack the attribute it has."""
    import numpy as np
    import pandas as pd
    import xarray as xr

    from pipeline.forecast_store import open_forecast

    dims = ("init_time", "member", "lead_time", "latitude", "longitude")
    xr.Dataset(
        {"t2m": (dims, np.zeros((1, 2, 1, 3, 4), "f4"))},
        coords={
            "init_time": pd.to_datetime(["2019-03-22"]),
            "lead_time": pd.to_timedelta([6], "h"),
        },
        attrs={"kind": "forecast"},
    ).to_zarr(tmp_path / "sent.zarr", zarr_format=3, consolidated=False)
    with pytest.raises(StoreError, match="not a wxens forecast store") as err:
        open_forecast(tmp_path / "sent.zarr")
    assert "no 'kind: forecast'" not in str(err.value) and "complete" in str(err.value)
