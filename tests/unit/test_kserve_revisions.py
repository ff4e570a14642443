"""KServe/Knative status rules of the sandbox, on plain dicts (no processes)."""

from __future__ import annotations

import random

import pytest

from sandbox.kserve import faults
from sandbox.kserve.revisions import (
    DeploymentMode,
    Revision,
    RevisionPhase,
    compute_status,
    predictor_hash,
    referenced,
    traffic_weights,
)
from sandbox.kserve.router import Backend, QueueProxyMetrics, choose

pytestmark = pytest.mark.unit

URL = "http://127.0.0.1:1234"
R, L, F = RevisionPhase.READY, RevisionPhase.LOADING, RevisionPhase.FAILED


def isvc(uri: str = "s3://m/v1/", canary: int | None = None, annotations: dict | None = None, gen: int = 1) -> dict:
    pred: dict = {"model": {"modelFormat": {"name": "sklearn"}, "storageUri": uri}}
    if canary is not None:
        pred["canaryTrafficPercent"] = canary
    return {"metadata": {"name": "iris", "namespace": "ns", "generation": gen, "annotations": annotations or {}},
            "spec": {"predictor": pred}}


def revs(*phases: RevisionPhase) -> list[Revision]:
    return [Revision(f"iris-predictor-{i + 1:05d}", p) for i, p in enumerate(phases)]


def settle(obj: dict, revisions: list[Revision], status: dict | None = None) -> dict:
    """Reconcile until the status stops changing (the controller does this through the watch)."""
    status = status or {}
    for _ in range(5):
        status = compute_status(obj, revisions, status, URL, "t")
    return status


def pred(status: dict) -> dict:
    return status["components"]["predictor"]


def cond(status: dict, type_: str) -> dict:
    return next(c for c in status["conditions"] if c["type"] == type_)


def test_hash_ignores_canary_percent_but_not_storage_uri() -> None:
    assert predictor_hash(isvc(canary=10)) == predictor_hash(isvc())
    assert predictor_hash(isvc("s3://m/v2/")) != predictor_hash(isvc())


def test_first_revision_ready_gets_all_traffic_and_is_rolled_out() -> None:
    status = settle(isvc(), revs(R))
    assert pred(status)["traffic"] == [{"revisionName": "iris-predictor-00001", "latestRevision": True, "percent": 100}]
    assert pred(status)["latestRolledoutRevision"] == "iris-predictor-00001"
    assert cond(status, "Ready")["status"] == "True"
    assert status["url"] == URL and status["modelStatus"]["transitionStatus"] == "UpToDate"


def test_canary_splits_latest_ready_and_last_rolled_out_with_prev_tag() -> None:
    v1 = settle(isvc(), revs(R))
    status = settle(isvc("s3://m/v2/", canary=30, gen=2), revs(R, R), v1)
    assert pred(status)["traffic"] == [
        {"revisionName": "iris-predictor-00002", "latestRevision": True, "percent": 30},
        {"tag": "prev", "revisionName": "iris-predictor-00001", "latestRevision": False, "percent": 70},
    ]
    assert pred(status)["latestRolledoutRevision"] == "iris-predictor-00001"
    assert traffic_weights(status, revs(R, R), DeploymentMode.SERVERLESS) == {
        "iris-predictor-00002": 30, "iris-predictor-00001": 70}


def test_tag_latest_only_with_tag_routing_annotation() -> None:
    v1 = settle(isvc(), revs(R))
    tagged = isvc("s3://m/v2/", canary=30, annotations={"serving.kserve.io/enable-tag-routing": "true"})
    assert pred(settle(tagged, revs(R, R), v1))["traffic"][0]["tag"] == "latest"


def test_canary_not_ready_keeps_traffic_on_previous_revision() -> None:
    v1 = settle(isvc(), revs(R))
    status = settle(isvc("s3://m/v2/", canary=30), revs(R, L), v1)
    assert {t["revisionName"] for t in pred(status)["traffic"]} == {"iris-predictor-00001"}
    assert pred(status)["latestCreatedRevision"] == "iris-predictor-00002"
    assert cond(status, "PredictorReady")["status"] == "Unknown"
    assert status["modelStatus"]["transitionStatus"] == "InProgress"


def test_failed_canary_reports_model_load_failed_and_keeps_serving_previous() -> None:
    v1 = settle(isvc(), revs(R))
    failed = revs(R, F)
    failed[1].message, failed[1].exit_code = "Failed to fetch model. No model found in nothere/.", 1
    status = settle(isvc("s3://m/nothere/"), failed, v1)
    assert pred(status)["traffic"][0]["revisionName"] == "iris-predictor-00001"
    assert status["modelStatus"]["transitionStatus"] == "BlockedByFailedLoad"
    assert status["modelStatus"]["lastFailureInfo"]["reason"] == "ModelLoadFailed"
    assert status["modelStatus"]["states"] == {"activeModelState": "Loaded", "targetModelState": "FailedToLoad"}
    assert cond(status, "LatestDeploymentReady")["status"] == "False"
    assert cond(status, "PredictorConfigurationReady")["reason"] == "RevisionFailed"
    assert cond(status, "Ready")["status"] == "False"


def test_promotion_and_rollback_bookkeeping() -> None:
    v1 = settle(isvc(), revs(R))
    canary = settle(isvc("s3://m/v2/", canary=30), revs(R, R), v1)
    rollback = settle(isvc("s3://m/v2/", canary=0), revs(R, R), canary)
    assert [t["percent"] for t in pred(rollback)["traffic"]] == [0, 100]
    assert pred(rollback)["traffic"][1]["revisionName"] == "iris-predictor-00001"
    promoted = settle(isvc("s3://m/v2/"), revs(R, R), canary)
    assert pred(promoted)["latestRolledoutRevision"] == "iris-predictor-00002"
    assert pred(promoted)["previousRolledoutRevision"] == "iris-predictor-00001"
    assert referenced(promoted, revs(R, R), DeploymentMode.SERVERLESS) == {"iris-predictor-00002"}
    assert "iris-predictor-00001" in referenced(canary, revs(R, R), DeploymentMode.SERVERLESS)


def test_raw_deployment_ignores_canary_and_uses_deployment_conditions() -> None:
    raw = {"serving.kserve.io/deploymentMode": "RawDeployment"}
    status = settle(isvc("s3://m/v2/", canary=30, annotations=raw), revs(R, R))
    assert status["deploymentMode"] == "RawDeployment"
    assert "traffic" not in pred(status)
    assert cond(status, "PredictorReady")["reason"] == "NewReplicaSetAvailable"
    assert {c["type"] for c in status["conditions"]} == {"PredictorReady", "IngressReady", "Ready"}
    assert traffic_weights(status, revs(R, R), DeploymentMode.RAW) == {"iris-predictor-00002": 100}


def test_unsupported_format_is_invalid_spec() -> None:
    rev = [Revision("iris-predictor-00001", RevisionPhase.INVALID, "No runtime found")]
    status = settle(isvc(), rev)
    assert status["modelStatus"]["transitionStatus"] == "InvalidSpec"
    assert status["modelStatus"]["lastFailureInfo"]["reason"] == "NoSupportingRuntime"


def test_condition_times_only_change_with_status() -> None:
    first = compute_status(isvc(), revs(R), {}, URL, "t1")
    again = compute_status(isvc(), revs(R), first, URL, "t2")
    assert {c["lastTransitionTime"] for c in again["conditions"]} == {"t1"}


def test_fault_annotations_parse_and_reject_bad_values() -> None:
    ok = faults.parse({"metadata": {"annotations": {faults.ERROR_RATE: "0.2", faults.LATENCY_MS: "300",
                                                    faults.NEVER_READY: "true"}}})
    assert (ok.error_rate, ok.latency_ms, ok.never_ready, ok.problems) == (0.2, 300, True, ())
    bad = faults.parse({"metadata": {"annotations": {faults.ERROR_RATE: "20%"}}})
    assert bad.error_rate == 0.0 and bad.problems


def test_router_choice_follows_weights() -> None:
    rng = random.Random(7)
    backends = [Backend("a", "", 30), Backend("b", "", 70), Backend("c", "", 0)]
    picks = [choose(backends, rng).revision for _ in range(2000)]
    assert 0.26 < picks.count("a") / 2000 < 0.34 and "c" not in picks
    assert choose([Backend("a", "", 0)], rng) is None


def test_queue_proxy_metrics_are_the_real_queue_proxys_names_labels_and_second_buckets() -> None:
    """Knative Serving v0.48.1's queue-proxy (OTel): kn_serving_invocation_duration_seconds with only
    http_response_status_code (+ otel_scope_*), the revision in target_info; one target per revision."""
    m = QueueProxyMetrics()
    seen: list[tuple[str, str]] = []
    m.watch_targets(lambda key, resource: seen.append(key))
    resource = {"k8s_namespace_name": "ns", "kn_revision_name": "r1", "k8s_pod_name": "r1-pod"}
    m.register(resource)
    assert seen == [("ns", "r1")]
    before = m.render(("ns", "r1"))
    assert 'target_info{k8s_namespace_name="ns",k8s_pod_name="r1-pod",kn_revision_name="r1"} 1' in before
    assert "kn_serving_invocation_duration_seconds_count" not in before  # no series before the first request
    m.observe(resource, 503, 0.042)
    m.observe({**resource, "kn_revision_name": "r2"}, 200, 0.001)
    assert seen == [("ns", "r1"), ("ns", "r2")]
    text = m.render(("ns", "r1"))
    base = ('http_response_status_code="503",otel_scope_name="knative.dev/serving/pkg/queue",'
            'otel_scope_schema_url="",otel_scope_version=""')
    assert f'kn_serving_invocation_duration_seconds_bucket{{{base},le="0.025"}} 0' in text
    assert f'kn_serving_invocation_duration_seconds_bucket{{{base},le="0.05"}} 1' in text
    assert f"kn_serving_invocation_duration_seconds_count{{{base}}} 1" in text
    assert "r2" not in text  # each revision is its own target
    assert m.render(("ns", "nope")) is None
    everything = m.render()
    assert 'kn_revision_name="r2"' in everything and everything.count("target_info{") == 2
