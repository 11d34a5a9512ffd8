"""Lazy package exports: a name loads its module on first use, an unknown name is an
AttributeError, and the package lists what it exports."""

import sys

import pytest

from pipeline.lazy import lazy_exports


def test_a_name_loads_from_its_module_and_an_unknown_one_fails():
    getattr_, dir_ = lazy_exports("pkg", {"Period": "pipeline.schema"})
    assert getattr_("Period") is sys.modules["pipeline.schema"].Period
    assert dir_() == ["Period"]
    with pytest.raises(AttributeError, match="module 'pkg' has no attribute 'Nope'"):
        getattr_("Nope")
