"""Pure parts of the streamed backup and the faster restore: canonical encoding, the restore's copies, and the
drill's comparison of the apply answers."""

from __future__ import annotations

import json

import pytest

from tasks.backup.drill import compare_applied
from tasks.backup.restore import prepare
from tasks.backup.store import encode

pytestmark = pytest.mark.unit


def isvc(ns: str = "a", **spec) -> dict:
    return {"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
            "metadata": {"name": "m", "namespace": ns, "labels": {"team": "x"}, "ownerReferences": [{"uid": "u"}]},
            "spec": {"predictor": {"minReplicas": 1, **spec}}, "status": {"url": "http://m"}}


def test_encoding_is_canonical_utf8_json_whatever_the_key_order() -> None:
    a = {"b": [1, {"y": True, "x": None}], "a": "é"}
    b = {"a": "é", "b": [1, {"x": None, "y": True}]}
    assert encode(a) == encode(b)
    assert encode(a) == json.dumps(a, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def test_prepare_maps_and_strips_without_touching_the_backup_objects() -> None:
    original = isvc()
    before = json.dumps(original, sort_keys=True)
    (out,) = prepare([original], {"a": "b"})
    assert out["metadata"]["namespace"] == "b" and "status" not in out and "ownerReferences" not in out["metadata"]
    assert json.dumps(original, sort_keys=True) == before  # a drill compares with the untouched original


def test_compare_applied_names_each_difference_and_passes_equal_objects() -> None:
    backup = isvc()
    applied = prepare([backup], {"a": "d-1-a"})[0]
    same = {**applied, "metadata": {**applied["metadata"], "uid": "new", "resourceVersion": "9"}}
    changed = {**same, "spec": {"predictor": {"minReplicas": 2}}}
    ok, bad = compare_applied([(backup, applied, same), (backup, applied, changed)])
    assert ok.restored and ok.ready and ok.equal and not ok.reason
    assert not bad.equal and "spec.predictor.minReplicas" in bad.reason
