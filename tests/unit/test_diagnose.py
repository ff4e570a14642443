"""Failures name their objects: conditions, likely cause, and the drill's reason per object (pure parts)."""

from __future__ import annotations

import pytest

from tasks.backup.drill import ObjectResult, summarise
from tasks.diagnose import conditions_text, likely_cause

ISVC = {
    "apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
    "metadata": {"name": "iris", "namespace": "d-demo-1a2b3c"},
    "spec": {"predictor": {"serviceAccountName": "iris-storage"}},
    "status": {"conditions": [
        {"type": "IngressReady", "status": "True"},
        {"type": "PredictorReady", "status": "False", "reason": "RevisionFailed",
         "message": "storage initializer: NoCredentialsError"},
        {"type": "Ready", "status": "False", "reason": "RevisionFailed"}],
        "modelStatus": {"lastFailureInfo": {"reason": "ModelLoadFailed", "message": "no credentials"}}},
}


@pytest.mark.unit
def test_conditions_text_lists_what_is_not_true_and_the_model_failure() -> None:
    assert conditions_text(ISVC) == ("PredictorReady False (RevisionFailed: storage initializer: NoCredentialsError)"
                                     "; Ready False (RevisionFailed); model ModelLoadFailed: no credentials")
    assert conditions_text({"kind": "RayCluster", "status": {"state": "failed"}}) == "state failed"
    assert "no controller" in conditions_text({"kind": "RayCluster"})


@pytest.mark.unit
def test_likely_cause_names_the_secret_the_backup_left_out() -> None:
    cause = likely_cause(ISVC, ["Secret d-demo-1a2b3c/iris-s3"], secrets_left_out=True)
    assert cause.startswith("Secret d-demo-1a2b3c/iris-s3 missing: the backup left Secrets out because no "
                            "encryption key is configured")
    assert "encryption_key_env" in cause
    assert likely_cause(ISVC, ["ServiceAccount d-demo-1a2b3c/iris-storage"], secrets_left_out=False).startswith(
        "ServiceAccount d-demo-1a2b3c/iris-storage missing")
    assert likely_cause(ISVC, [], secrets_left_out=False) == "the model failed to load (ModelLoadFailed)"
    assert "operator" in likely_cause({"kind": "RayCluster"}, [], secrets_left_out=False)


@pytest.mark.unit
def test_drill_reason_names_each_object_that_is_not_ready() -> None:
    results = [
        ObjectResult("InferenceService d-demo-1a2b3c/iris", restored=True,
                     reason="InferenceService d-demo-1a2b3c/iris: not ready after 300s: Ready False; likely cause: "
                            "Secret d-demo-1a2b3c/iris-s3 missing"),
        ObjectResult("RayCluster d-ray-1a2b3c/train", restored=True, reason=""),
        ObjectResult("ConfigMap d-demo-1a2b3c/cfg", restored=True, ready=True, equal=True),
    ]
    out = summarise(results, rto=300.0, max_rto=None, failed_applies=0, cluster_checked=0, cluster_failed=0)
    assert out["verdict"] == "failed"
    assert out["reason"] == ("2 object(s) not ready: InferenceService d-demo-1a2b3c/iris: not ready after 300s: "
                             "Ready False; likely cause: Secret d-demo-1a2b3c/iris-s3 missing; "
                             "RayCluster d-ray-1a2b3c/train: not ready")
