"""Standard-mode canary ways, as pure logic: the way picked from the installed KServe release (and refused where
the release would ignore it), kaiops's HTTPRoute, the spec.canary[] spec changes and the readiness verdicts."""

from __future__ import annotations

import copy

import pytest
import yaml

from tasks.crds import cache_root
from tasks.errors import InputError
from tasks.rollout.isvc import crd_has_canary_list
from tasks.rollout.readiness import deployment_rolled, pod_failure
from tasks.rollout.routing import CanaryListRouting, choose_way
from tasks.rollout.routing.raw import rollout_route, route_host

pytestmark = pytest.mark.unit


def released_crd() -> dict:
    """KServe v0.20.0's InferenceService CRD as ``make crds`` downloaded it."""
    path = cache_root() / "crds" / "kserve-v0.20.0" / "serving.kserve.io_inferenceservices.yaml"
    if not path.exists():
        pytest.fail(f"{path} missing: run `make crds`")
    return yaml.safe_load(path.read_text())


def without_canary(crd: dict) -> dict:
    """The same CRD as a release before v0.20.0 had it: no ``spec.canary``."""
    old = copy.deepcopy(crd)
    for v in old["spec"]["versions"]:
        v["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"].pop("canary", None)
    return old


def test_the_v0_20_crd_has_spec_canary_and_an_older_schema_has_not() -> None:
    crd = released_crd()
    assert crd_has_canary_list(crd) is True
    assert crd_has_canary_list(without_canary(crd)) is False
    assert crd_has_canary_list({"spec": {"versions": [{"name": "v1alpha1"}]}}) is False


@pytest.mark.parametrize(("way", "live", "has", "want"), [
    ("auto", None, True, "spec-canary"),
    (None, None, True, "spec-canary"),
    ("auto", None, False, "second-inferenceservice"),
    ("second-inferenceservice", None, True, "second-inferenceservice"),
    ("spec-canary", None, True, "spec-canary"),
    ("auto", "second-inferenceservice", True, "second-inferenceservice"),  # a rollout under way decides
    ("second-inferenceservice", "spec-canary", True, "spec-canary"),
])
def test_choose_way(way, live, has, want) -> None:
    assert choose_way(way, live, has, "p.yaml") == want


def test_spec_canary_on_a_release_without_it_is_refused() -> None:
    with pytest.raises(InputError) as err:
        choose_way("spec-canary", None, False, "policy.yaml")
    text = str(err.value)
    assert "policy.yaml" in text and "gateway.way" in text and "v0.20.0" in text and "second-inferenceservice" in text
    with pytest.raises(InputError, match="unknown way"):
        choose_way("both", None, True, "policy.yaml")


def test_route_takes_the_isvc_host_with_model_path_prefixes() -> None:
    route = rollout_route("ns", "m-rollout", ("gw", "gwns"), "m-ns.example.com", ("m-predictor", "m-canary-predictor"),
                          20)
    spec = route["spec"]
    assert spec["hostnames"] == ["m-ns.example.com"]
    assert spec["parentRefs"] == [{"name": "gw", "namespace": "gwns"}]
    (rule,) = spec["rules"]
    assert [m["path"] for m in rule["matches"]] == [{"type": "PathPrefix", "value": "/v1/models"},
                                                   {"type": "PathPrefix", "value": "/v2/models"}]
    assert [(b["name"], b["weight"]) for b in rule["backendRefs"]] == [("m-predictor", 80), ("m-canary-predictor", 20)]
    bare = rollout_route("ns", "m-rollout", ("gw", "gwns"), "", ("a", "b"), 0)["spec"]
    assert "hostnames" not in bare and "matches" not in bare["rules"][0]


@pytest.mark.parametrize(("url", "want"), [
    ("http://m-ns.example.com", "m-ns.example.com"), ("http://127.0.0.1:8080", ""), (None, ""),
    ("http://[::1]:80/x", ""),
])
def test_route_host(url, want) -> None:
    assert route_host({"status": {"url": url}} if url else {}) == want


def test_spec_canary_changes() -> None:
    spec = {"predictor": {"serviceAccountName": "sa", "model": {"modelFormat": {"name": "sklearn"},
                                                                "storageUri": "s3://b/v1", "resources": {"x": 1}}}}
    CanaryListRouting.start_spec("s3://b/v2", 20)(spec)
    (entry,) = spec["canary"]
    assert entry["trafficPercent"] == 20 and entry["predictor"]["name"] == "canary"
    assert entry["predictor"]["model"]["storageUri"] == "s3://b/v2"
    assert spec["predictor"]["model"]["storageUri"] == "s3://b/v1"  # the stable predictor is untouched
    CanaryListRouting.traffic_spec(50)(spec)
    assert spec["canary"][0]["trafficPercent"] == 50
    CanaryListRouting.rollback_spec("s3://b/v1")(spec)
    assert "canary" not in spec
    CanaryListRouting.start_spec("s3://b/v2", 20)(spec)
    CanaryListRouting.promote_spec()(spec)
    assert "canary" not in spec


def dep(generation=2, observed=2, replicas=1, updated=1, total=1, available=1) -> dict:
    return {"metadata": {"generation": generation}, "spec": {"replicas": replicas},
            "status": {"observedGeneration": observed, "updatedReplicas": updated, "replicas": total,
                       "availableReplicas": available}}


@pytest.mark.parametrize(("d", "want"), [
    (dep(), True),
    (dep(observed=1), False),  # the controller has not seen the new template yet
    (dep(total=2), False),  # the old Pod still runs (and serves the old model)
    (dep(updated=0), False),
    (dep(available=0), False),
])
def test_deployment_rolled(d, want) -> None:
    assert deployment_rolled(d) is want


def test_pod_failure_reads_init_and_crashlooping_containers() -> None:
    init_failed = {"metadata": {"name": "p"}, "status": {"initContainerStatuses": [{
        "name": "storage-initializer", "state": {"waiting": {"reason": "CrashLoopBackOff"}},
        "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "message": "a\nb\nRuntimeError: no creds"}}}]}}
    assert pod_failure(init_failed) == "p: storage-initializer Error (exit 1): a | b | RuntimeError: no creds"
    loading = {"metadata": {"name": "p"}, "status": {
        "initContainerStatuses": [{"name": "storage-initializer", "state": {"terminated": {"exitCode": 0}}}],
        "containerStatuses": [{"name": "kserve-container", "state": {"running": {}}}]}}
    assert pod_failure(loading) is None
    crash = {"metadata": {"name": "p"}, "status": {"containerStatuses": [{
        "name": "kserve-container", "state": {"waiting": {"reason": "CrashLoopBackOff"}},
        "lastState": {"terminated": {"exitCode": 2, "reason": "Error", "message": "bad pickle"}}}]}}
    assert pod_failure(crash) == "p: kserve-container Error (exit 2): bad pickle"


def test_canary_ready_and_deployment_serving() -> None:
    from tasks.rollout.readiness import SOURCE_URI_ANNOTATION, canary_entry_ready, deployment_serving

    isvc = {"metadata": {"generation": 3},  # KServe's observedGeneration is the Deployment's: not compared
            "status": {"observedGeneration": 1, "canaryStatuses": [{"name": "canary", "ready": True}]}}
    assert canary_entry_ready(isvc, "canary") and not canary_entry_ready(isvc, "other")
    d = dep()
    d["spec"]["template"] = {"metadata": {"annotations": {SOURCE_URI_ANNOTATION: "s3://b/v2"}}}
    assert deployment_serving(d, "s3://b/v2") and not deployment_serving(d, "s3://b/v1")
    d["status"]["replicas"] = 2  # the old Pod still serves
    assert not deployment_serving(d, "s3://b/v2")


def test_record_keys_kserve_would_copy_into_the_pod_template() -> None:
    """KServe copies InferenceService annotations into the predictor Pod template except the listed keys."""
    import json

    from tasks.rollout.isvc import propagated_record_keys
    from tasks.rollout.state import record_annotation_keys

    keys = record_annotation_keys()
    assert "rollout.kaiops.io/lease-expires" in keys and all(k.startswith("rollout.kaiops.io/") for k in keys)
    released = {"inferenceService": json.dumps({"resource": {"cpuRequest": "1"}})}  # the release's config
    assert propagated_record_keys(released, keys) == keys
    assert propagated_record_keys({}, keys) == keys
    listed = {"inferenceService": json.dumps({"serviceAnnotationDisallowedList": keys[1:]})}
    assert propagated_record_keys(listed, keys) == keys[:1]
    with pytest.raises(ValueError, match="not JSON"):
        propagated_record_keys({"inferenceService": "{"}, keys)


def test_the_sandbox_kserve_config_lists_every_record_key() -> None:
    import json

    from sandbox.kserve_upstream.release import patch_config
    from tasks.rollout.isvc import propagated_record_keys
    from tasks.rollout.state import record_annotation_keys

    data = {"ingress": "{}", "inferenceService": json.dumps({"serviceAnnotationDisallowedList": ["x"]})}
    out = patch_config(data)
    assert propagated_record_keys(out, record_annotation_keys()) == []
    assert json.loads(out["inferenceService"])["serviceAnnotationDisallowedList"][0] == "x"  # kept


def test_config_errors_and_refused_pods_are_failures() -> None:
    from tasks.rollout.readiness import replicaset_failure

    waiting = {"metadata": {"name": "p"}, "status": {"initContainerStatuses": [{
        "name": "storage-initializer", "state": {"waiting": {
            "reason": "CreateContainerConfigError",
            "message": "couldn't find key AWS_ACCESS_KEY_ID in Secret ns/s"}}}]}}
    assert pod_failure(waiting) == ("p: storage-initializer CreateContainerConfigError: couldn't find key "
                                    "AWS_ACCESS_KEY_ID in Secret ns/s")
    pulling = {"metadata": {"name": "p"}, "status": {"initContainerStatuses": [{
        "name": "storage-initializer", "state": {"waiting": {"reason": "PodInitializing"}}}]}}
    assert pod_failure(pulling) is None
    refused = {"metadata": {"name": "rs1"}, "status": {"conditions": [{
        "type": "ReplicaFailure", "status": "True", "reason": "FailedCreate",
        "message": 'admission webhook "x" denied the request: secrets "s" not found'}]}}
    assert replicaset_failure(refused) == ('ReplicaSet rs1: FailedCreate: admission webhook "x" denied the request: '
                                           'secrets "s" not found')
    assert replicaset_failure({"metadata": {"name": "rs1"}, "status": {}}) is None
