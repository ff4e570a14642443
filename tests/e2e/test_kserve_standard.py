"""The real KServe v0.20.0 manager in Standard (RawDeployment) mode, end to end, no emulation.

Service ``kserve-controller`` (KServe's own manager, webhooks and ClusterServingRuntimes from the release), the
node agent running KServe's own ``kserve/storage-initializer`` and ``kserve/sklearnserver`` images (environments
built from the module's python/ sources), the sandbox S3 and the sandbox gateway. Starting ``kserve-controller``
stops the emulated ``kserve`` service; the module puts it back at the end when it was running before, so the
modules that use the emulator run before or after this one alike.

Run: ``KAIOPS_SANDBOX=<instance> .venv/bin/python -m pytest tests/e2e/test_kserve_standard.py -x -q``
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

NS = "kserve-std"
BUCKET = "kserve-std"
ISVC_API, ISVC_KIND = "serving.kserve.io/v1beta1", "InferenceService"
READY_TIMEOUT_S = 900.0  # a loaded 2-core machine: image start, download, sklearnserver import (~1 min alone)
IRIS = [[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6]]
TIMINGS: dict[str, float] = {}
# the release's kserve-sklearnserver runtime requests 1 CPU / 2Gi (it wins over inferenceservice-config's
# defaults); the sandbox node has 2 CPUs, so each InferenceService here asks for less
RESOURCES = {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}}


@pytest.fixture(scope="module")
def env() -> Iterator[dict[str, str]]:
    from sandbox import launcher

    before = {s.name for s in launcher.status() if s.state == "healthy"}
    launcher.up(("kserve-controller",))
    values = launcher.env()
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    yield values
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    if os.environ.get("KAIOPS_KEEP_SANDBOX"):
        return
    with contextlib.suppress(Exception):
        from tasks import kube

        kube.resource_for(kube.connect(values["KUBECONFIG"]), "v1", "Namespace").delete(name=NS)
    if "kserve-controller" not in before:
        launcher.down(names=("kserve-controller",))
    if "kserve" in before:  # the emulator was running: put it back for the modules that need it
        launcher.up(("kserve",))


@pytest.fixture(scope="module")
def kdyn(env: dict[str, str]):
    from tasks import kube

    return kube.connect(env["KUBECONFIG"])


def sklearnserver_python() -> Path:
    """The interpreter of the kserve/sklearnserver image environment (scikit-learn as the server has it)."""
    from sandbox.paths import binary_version
    from tasks.crds import cache_root

    return cache_root() / "bin" / f"kserve-python-{binary_version('kserve-manager')}" / "sklearnserver" / "venv" / \
        "bin" / "python"


@pytest.fixture(scope="module")
def model_uri(env: dict[str, str], tmp_path_factory) -> str:
    """An iris model trained with the scikit-learn of KServe's sklearnserver image (1.5.x at v0.20.0: a pickle of
    another scikit-learn major/minor is not guaranteed to load), uploaded to the sandbox S3."""
    import boto3

    out = tmp_path_factory.mktemp("model") / "model.joblib"
    code = ("import joblib,sys; from sklearn.datasets import load_iris; from sklearn.linear_model import "
            "LogisticRegression; x,y=load_iris(return_X_y=True); "
            "joblib.dump(LogisticRegression(max_iter=300).fit(x,y), sys.argv[1])")
    subprocess.run([str(sklearnserver_python()), "-c", code, str(out)], check=True, timeout=600)
    s3 = boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"])
    with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
        s3.create_bucket(Bucket=BUCKET)
    s3.upload_file(str(out), BUCKET, "iris/v1/model.joblib")
    return f"s3://{BUCKET}/iris/v1"


@pytest.fixture(scope="module")
def namespace(kdyn, env: dict[str, str]) -> str:
    """Namespace, S3 Secret (KServe's annotations; the in-cluster S3 Service) and ServiceAccount ``models``."""
    from tasks import kube

    docs = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}},
        {"apiVersion": "v1", "kind": "Secret", "metadata": {
            "name": "s3creds", "namespace": NS,
            "annotations": {"serving.kserve.io/s3-endpoint": "s3.kaiops-sandbox.svc.cluster.local:80",
                            "serving.kserve.io/s3-usehttps": "0", "serving.kserve.io/s3-region": "us-east-1"}},
         "type": "Opaque",
         "stringData": {"AWS_ACCESS_KEY_ID": env["AWS_ACCESS_KEY_ID"],
                        "AWS_SECRET_ACCESS_KEY": env["AWS_SECRET_ACCESS_KEY"]}},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "models", "namespace": NS},
         "secrets": [{"name": "s3creds"}]},
    ]
    for doc in docs:
        kube.apply(kdyn, doc)
    return NS


def isvc(name: str, uri: str) -> dict:
    return {"apiVersion": ISVC_API, "kind": ISVC_KIND,
            "metadata": {"name": name, "namespace": NS,
                         "annotations": {"serving.kserve.io/deploymentMode": "Standard"}},
            "spec": {"predictor": {"serviceAccountName": "models",
                                   "model": {"modelFormat": {"name": "sklearn"}, "storageUri": uri,
                                             "resources": RESOURCES}}}}


def predict_via_gateway(gateway: str, host: str, model: str) -> tuple[int, dict]:
    req = urllib.request.Request(f"{gateway}/v1/models/{model}:predict", data=json.dumps({"instances": IRIS}).encode(),
                                 headers={"Host": host, "Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, {"body": exc.read().decode(errors="replace")}


def test_kserves_validating_webhook_refuses_a_canary_outside_standard_mode(kdyn, namespace: str) -> None:
    """KServe's own validator (not the CRD schema) refuses ``spec.canary[]`` on a Serverless InferenceService."""
    from kubernetes.dynamic.exceptions import DynamicApiError

    from tasks import kube

    bad = isvc("bad-canary", "s3://nowhere/x")
    bad["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] = "Serverless"
    bad["spec"]["canary"] = [{"trafficPercent": 10, "predictor": {
        "name": "next", "model": {"modelFormat": {"name": "sklearn"}, "storageUri": "s3://nowhere/y"}}}]
    with pytest.raises(DynamicApiError) as err:
        kube.resource_for(kdyn, ISVC_API, ISVC_KIND).create(body=bad, namespace=NS)
    text = str(err.value)
    assert "inferenceservice.kserve-webhook-server.validator" in text, text
    assert "canary is only supported in Standard deployment mode" in text, text


def test_standard_mode_ready_and_predicts_through_the_gateway(kdyn, env: dict[str, str], namespace: str,
                                                             model_uri: str) -> None:
    from tasks import kube

    t0 = time.monotonic()
    kube.apply(kdyn, isvc("iris", model_uri))
    obj = kube.wait_for(kdyn, ISVC_API, ISVC_KIND, "iris", lambda o: kube.condition_true(o, "Ready"),
                        namespace=NS, timeout=READY_TIMEOUT_S)
    TIMINGS["time_to_ready_s"] = time.monotonic() - t0
    print(f"\ntime to Ready (create -> Ready=True): {TIMINGS['time_to_ready_s']:.1f} s")
    status = obj["status"]
    assert status["url"] == f"http://iris-{NS}.example.com"
    assert {c["type"] for c in status["conditions"]} >= {"Ready", "PredictorReady", "IngressReady"}
    # KServe writes Ready=True one reconcile before modelStatus says the model is loaded
    obj = kube.wait_for(kdyn, ISVC_API, ISVC_KIND, "iris",
                        lambda o: (o["status"].get("modelStatus") or {}).get("transitionStatus") == "UpToDate",
                        namespace=NS, timeout=120)
    assert obj["status"]["modelStatus"]["states"]["activeModelState"] == "Loaded"
    assert obj["status"]["deploymentMode"] == "Standard"
    # what KServe made: Deployment + Service <name>-predictor, HTTPRoutes accepted by the sandbox gateway
    dep = kube.resource_for(kdyn, "apps/v1", "Deployment").get(name="iris-predictor", namespace=NS).to_dict()
    assert dep["metadata"]["ownerReferences"][0]["kind"] == ISVC_KIND
    pods = kube.resource_for(kdyn, "v1", "Pod").get(
        namespace=NS, label_selector="serving.kserve.io/inferenceservice=iris").to_dict()["items"]
    assert pods, "no predictor Pod"
    init = {c["name"]: c for c in pods[0]["spec"].get("initContainers") or []}
    assert "storage-initializer" in init, "KServe's pod mutator did not inject the storage initializer"
    si = init["storage-initializer"]
    assert si["args"] == [model_uri, "/mnt/models"]
    env_names = {e["name"]: e for e in si.get("env") or []}
    assert env_names["AWS_ACCESS_KEY_ID"]["valueFrom"]["secretKeyRef"] == {"name": "s3creds",
                                                                           "key": "AWS_ACCESS_KEY_ID"}
    assert env_names["AWS_ENDPOINT_URL"]["value"] == "http://s3.kaiops-sandbox.svc.cluster.local:80"
    for name in ("iris", "iris-predictor"):
        route = kube.resource_for(kdyn, "gateway.networking.k8s.io/v1", "HTTPRoute").get(
            name=name, namespace=NS).to_dict()
        conds = {c["type"]: c["status"] for p in route["status"]["parents"] for c in p["conditions"]}
        assert conds == {"Accepted": "True", "ResolvedRefs": "True"}
    code, body = predict_via_gateway(env["KAIOPS_GATEWAY_URL"], f"iris-{NS}.example.com", "iris")
    assert code == 200, body
    assert body["predictions"] == [1, 1]


def test_wrong_storage_uri_fails_the_init_container_with_kserves_reason(kdyn, namespace: str,
                                                                        model_uri: str) -> None:
    from tasks import kube
    from tasks.rollout import readiness

    kube.apply(kdyn, isvc("broken", f"s3://{BUCKET}/no-such-model/v9"))
    obj = kube.wait_for(kdyn, ISVC_API, ISVC_KIND, "broken",
                        lambda o: ((o.get("status") or {}).get("modelStatus") or {}).get("lastFailureInfo"),
                        namespace=NS, timeout=READY_TIMEOUT_S)
    failure = obj["status"]["modelStatus"]["lastFailureInfo"]
    assert obj["status"]["modelStatus"]["transitionStatus"] == "BlockedByFailedLoad"
    assert failure["reason"] == "ModelLoadFailed" and failure["exitCode"] == 1
    assert "no-such-model" in failure["message"] or "Failed to fetch model" in failure["message"], failure
    verdict = readiness.revision_verdict(obj, "", None)
    assert verdict is not None and verdict.startswith("broken failed: ModelLoadFailed"), verdict


def _pod_env(kdyn, pod_env: list[dict], namespace: str) -> dict[str, str]:
    """A container's env as values: literal values, and secretKeyRef values read from the Secret."""
    import base64

    from tasks import kube

    out = {}
    for e in pod_env:
        if "value" in e:
            out[e["name"]] = e["value"]
            continue
        ref = (e.get("valueFrom") or {}).get("secretKeyRef")
        if ref:
            secret = kube.get(kdyn, "v1", "Secret", ref["name"], namespace)
            out[e["name"]] = base64.b64decode(secret["data"][ref["key"]]).decode()
    return out


def test_warmup_credentials_agree_with_the_pod_kserve_created(kdyn, namespace: str) -> None:
    """kaiops's credential resolution (what ``kaiops warmup`` downloads with) against the env KServe's Pod mutator
    really injected into the storage-initializer of the Ready InferenceService: every variable kaiops resolves is
    in the Pod with the same value, and the Pod has no storage variable kaiops misses."""
    from tasks import kube
    from tasks.kserve.resolve import read_and_resolve

    _, creds = read_and_resolve(kdyn, "iris", namespace=NS)
    assert creds.ok, creds.problems
    pod = kube.resource_for(kdyn, "v1", "Pod").get(
        namespace=NS, label_selector="serving.kserve.io/inferenceservice=iris").to_dict()["items"][0]
    init = next(c for c in pod["spec"]["initContainers"] if c["name"] == "storage-initializer")
    injected = _pod_env(kdyn, init.get("env") or [], NS)
    differences = {k: (v if k not in ("AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID") else "***", injected.get(k))
                   for k, v in creds.env.items() if injected.get(k) != v}
    assert not differences, f"kaiops resolved differently from KServe's Pod mutator: {differences}"
    # KServe also injects Hugging Face download tuning into every storage initializer (pkg/utils/storage.go),
    # not credentials: kaiops's warmup does not set them (they change hf:// download speed only)
    missed = sorted(set(injected) - set(creds.env))
    assert missed == ["HF_HUB_ENABLE_HF_TRANSFER", "HF_XET_HIGH_PERFORMANCE", "HF_XET_NUM_CONCURRENT_RANGE_GETS"], \
        f"KServe injected variables kaiops does not resolve: {missed}"
    # S3 credentials come as env only: no secret volume in the Pod beyond the model volume and the API token
    mounts = {m["mountPath"] for m in init.get("volumeMounts") or []}
    mounts -= {"/mnt/models", "/var/run/secrets/kubernetes.io/serviceaccount"}
    assert mounts == set(creds.files) == set(), (mounts, sorted(creds.files))


def test_spec_canary_makes_a_second_deployment_and_status_but_no_weighted_route(kdyn, namespace: str,
                                                                                 model_uri: str) -> None:
    """What KServe v0.20.0 really does with ``spec.canary[]`` in Standard mode (``components/predictor.go``
    ``reconcileCanaryDeployments``): a Deployment and Service ``<isvc>-<canary name>-predictor`` with
    ``ceil(stable replicas * trafficPercent / 100)`` replicas, ``status.canaryStatuses[]`` and condition
    ``CanaryPredictorReady``; KServe's HTTPRoutes keep sending every request to the stable predictor (no
    backendRef to the canary, no weights): ``trafficPercent`` sizes the canary, it does not split traffic."""
    from tasks import kube

    obj = isvc("iris", model_uri)
    obj["spec"]["canary"] = [{"trafficPercent": 20, "predictor": {
        "name": "next", "model": {"modelFormat": {"name": "sklearn"}, "storageUri": model_uri,
                                  "resources": RESOURCES}}}]
    kube.apply(kdyn, obj)
    got = kube.wait_for(kdyn, ISVC_API, ISVC_KIND, "iris", lambda o: kube.condition_true(o, "CanaryPredictorReady"),
                        namespace=NS, timeout=READY_TIMEOUT_S)
    (canary,) = got["status"]["canaryStatuses"]
    assert (canary["name"], canary["ready"], canary["trafficPercent"]) == ("next", True, 20), canary
    dep = kube.resource_for(kdyn, "apps/v1", "Deployment").get(name="iris-next-predictor", namespace=NS).to_dict()
    assert dep["spec"]["replicas"] == 1
    kube.resource_for(kdyn, "v1", "Service").get(name="iris-next-predictor", namespace=NS)
    route = kube.resource_for(kdyn, "gateway.networking.k8s.io/v1", "HTTPRoute").get(name="iris", namespace=NS)
    backends = {b["name"] for r in route.to_dict()["spec"]["rules"] for b in r.get("backendRefs") or []}
    assert backends == {"iris-predictor"}, backends


def _until_problem(kdyn, name: str, timeout: float = 300) -> str:
    from tasks.rollout.readiness import deployment_problem

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        problem = deployment_problem(kdyn, NS, f"{name}-predictor")
        if problem:
            return problem
        time.sleep(2)
    raise AssertionError(f"no problem found on {name}-predictor within {timeout:.0f}s")


def test_service_account_naming_a_missing_secret_is_refused_by_kserves_pod_mutator(kdyn, namespace: str,
                                                                                     model_uri: str) -> None:
    """Not an init-container failure: KServe's Pod mutator refuses the predictor Pod (the ReplicaSet's
    ``ReplicaFailure``), and KServe's own status says nothing about it (model status stays ``InProgress``).
    kaiops finds the webhook's reason on the ReplicaSet, and its warmup check predicted it."""
    from tasks import kube
    from tasks.kserve.resolve import read_and_resolve

    kube.apply(kdyn, {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "ghost", "namespace": NS},
                      "secrets": [{"name": "no-such-secret"}]})
    obj = isvc("ghost", model_uri)
    obj["spec"]["predictor"]["serviceAccountName"] = "ghost"
    kube.apply(kdyn, obj)
    problem = _until_problem(kdyn, "ghost")
    assert 'admission webhook "inferenceservice.kserve-webhook-server.pod-mutator" denied the request: ' \
           'secrets "no-such-secret" not found' in problem, problem
    got = kube.get(kdyn, ISVC_API, ISVC_KIND, "ghost", NS)
    model = got["status"].get("modelStatus") or {}
    assert "lastFailureInfo" not in model and model.get("transitionStatus") == "InProgress", model
    assert not kube.condition_true(got, "Ready")
    _, creds = read_and_resolve(kdyn, "ghost", namespace=NS)
    assert any(p.kind.value == "SecretMissing" and "no-such-secret" in p.obj for p in creds.problems), creds.problems
    kube.delete(kdyn, ISVC_API, ISVC_KIND, "ghost", NS)


def test_secret_with_the_access_key_under_another_name_stops_the_init_container(kdyn, env: dict[str, str],
                                                                                namespace: str, model_uri: str) -> None:
    """KServe recognises an S3 Secret by ``AWS_SECRET_ACCESS_KEY`` and then injects a ``secretKeyRef`` to key
    ``AWS_ACCESS_KEY_ID`` whether or not the Secret has it: the storage initializer waits in
    ``CreateContainerConfigError`` and KServe reports nothing (``PropagateModelStatus`` reads only terminated and
    CrashLoopBackOff states). kaiops reports the kubelet's reason, and its warmup check predicted it."""
    from tasks import kube
    from tasks.kserve.resolve import read_and_resolve

    kube.apply(kdyn, {"apiVersion": "v1", "kind": "Secret", "metadata": {
        "name": "wrongkeys", "namespace": NS,
        "annotations": {"serving.kserve.io/s3-endpoint": "s3.kaiops-sandbox.svc.cluster.local:80",
                        "serving.kserve.io/s3-usehttps": "0"}},
        "type": "Opaque", "stringData": {"aws_access_key_id": env["AWS_ACCESS_KEY_ID"],
                                         "AWS_SECRET_ACCESS_KEY": env["AWS_SECRET_ACCESS_KEY"]}})
    kube.apply(kdyn, {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "wrongkeys", "namespace": NS},
                      "secrets": [{"name": "wrongkeys"}]})
    obj = isvc("wrongkeys", model_uri)
    obj["spec"]["predictor"]["serviceAccountName"] = "wrongkeys"
    kube.apply(kdyn, obj)
    problem = _until_problem(kdyn, "wrongkeys")
    assert "storage-initializer CreateContainerConfigError: couldn't find key AWS_ACCESS_KEY_ID in Secret " \
           f"{NS}/wrongkeys" in problem, problem
    model = kube.get(kdyn, ISVC_API, ISVC_KIND, "wrongkeys", NS)["status"].get("modelStatus") or {}
    assert "lastFailureInfo" not in model, model
    _, creds = read_and_resolve(kdyn, "wrongkeys", namespace=NS)
    assert [p.kind.value for p in creds.problems] == ["MissingKey"], creds.problems
    kube.delete(kdyn, ISVC_API, ISVC_KIND, "wrongkeys", NS)
