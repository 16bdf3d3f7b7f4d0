"""The shared delegation-coverage record (pocketgan.core.coverage): counts, one-line description, JSON round trip."""

from __future__ import annotations

import json

import pytest

from pocketgan.core.coverage import DelegationCoverage, coverage_of
from pocketgan.core.errors import ManifestError


def test_describe_names_the_backend_the_share_the_islands_and_the_fallback_ops():
    record = DelegationCoverage("XNNPACK", 118, 2, "ops", islands=3, by_op={"aten.reflection_pad2d": 2},
                                source="executorch get_delegation_info")  # fmt: skip
    assert record.total == 120 and record.fraction == pytest.approx(118 / 120)
    assert record.short() == "118/120 ops"
    assert record.describe() == "XNNPACK 118/120 ops in 3 islands, 2 fallback: aten.reflection_pad2d ×2"


def test_describe_ranks_fallback_ops_and_says_when_nothing_fell_back():
    record = DelegationCoverage("XNNPACK", 10, 9, by_op={"b": 2, "a": 2, "c": 4, "d": 1})
    assert record.describe() == "XNNPACK 10/19 ops, 9 fallback: c ×4, a ×2, b ×2, +1 more"
    assert DelegationCoverage("ncnn", 57, 0, "layers", islands=1).describe() == "ncnn 57/57 layers in 1 island, no fallback"


def test_the_json_form_round_trips_through_a_sidecar_extra():
    record = DelegationCoverage("ncnn", 40, 1, "layers", by_op={"pnnx.Expression": 1}, source="ncnn .param layers")
    extra = json.loads(json.dumps({"coverage": record.to_dict()}))
    assert extra["coverage"]["fraction"] == pytest.approx(40 / 41, abs=1e-4)
    assert coverage_of(extra) == record
    assert coverage_of({"input_size": [32, 32]}) is None


@pytest.mark.parametrize("kwargs", [
    {"delegated": -1, "fallback": 0}, {"delegated": 1, "fallback": 1, "unit": "kernels"},
    {"delegated": 1, "fallback": 1, "by_op": {"x": 2}}, {"delegated": 1.5, "fallback": 0},
])  # fmt: skip
def test_impossible_counts_are_refused(kwargs):
    with pytest.raises(ValueError):
        DelegationCoverage("XNNPACK", **kwargs)


def test_a_malformed_record_is_one_line():
    with pytest.raises(ManifestError, match="missing 'fallback'"):
        coverage_of({"coverage": {"backend": "XNNPACK", "delegated": 3}})
    with pytest.raises(ManifestError, match="non-negative integers"):
        DelegationCoverage.from_dict({"backend": "XNNPACK", "delegated": "3", "fallback": 0})
