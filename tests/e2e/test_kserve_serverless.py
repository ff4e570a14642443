"""KServe v0.20.0 in Serverless mode on real Knative Serving v0.48.1, end to end, no emulation.

Service ``kserve-serverless`` (KServe's manager, started after service ``knative``: Knative's controller,
webhook, autoscaler and activator as Pods on the sandbox node), KServe's own ``kserve/storage-initializer`` and
``kserve/sklearnserver`` images and Knative's queue-proxy binary run by the node agent, the sandbox S3.
Everything an assertion reads was written by KServe or Knative: the Knative Service, Configuration, Revisions,
Route and KIngress; the traffic split of ``canaryTrafficPercent`` is Knative's Route status.

The tests of this module run in order on one InferenceService ``iris``: first revision, queue-proxy metrics,
a canary at 20 %, its promotion, a second canary right after the promotion, its rollback.

Run: ``KAIOPS_SANDBOX=<instance> .venv/bin/python -m pytest tests/e2e/test_kserve_serverless.py -x -q -s``
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.e2e

NS = "kserve-sls"
BUCKET = "kserve-sls"
ISVC_API, ISVC_KIND = "serving.kserve.io/v1beta1", "InferenceService"
KSVC_API = "serving.knative.dev/v1"
READY_TIMEOUT_S = 900.0  # a loaded 2-core machine: image start, model download, sklearnserver import
IRIS = [[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6]]
# the release's kserve-sklearnserver runtime asks for 1 CPU / 2Gi; the sandbox node has 2 CPUs for everything
RESOURCES = {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}}
QUEUE_IMAGE = "gcr.io/knative-releases/knative.dev/serving/cmd/queue:v0.48.1"
TIMINGS: dict[str, float] = {}
SEEN: dict[str, Any] = {}


@pytest.fixture(scope="module")
def env() -> Iterator[dict[str, str]]:
    from sandbox import launcher

    before = {s.name for s in launcher.status() if s.state == "healthy"}
    t0 = time.monotonic()
    launcher.up(("kserve-serverless",))
    TIMINGS["stack_up_s"] = time.monotonic() - t0
    values = launcher.env()
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    yield values
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    print(f"\nserverless timings: {json.dumps(TIMINGS)}")
    if os.environ.get("KAIOPS_KEEP_SANDBOX"):
        return
    with contextlib.suppress(Exception):
        from tasks import kube

        kube.resource_for(kube.connect(values["KUBECONFIG"]), "v1", "Namespace").delete(name=NS)
    stop = tuple(n for n in ("kserve-serverless", "knative") if n not in before)
    if stop:
        launcher.down(names=stop)
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
def model_uris(env: dict[str, str], tmp_path_factory) -> list[str]:
    """One iris model (scikit-learn of the sklearnserver image) uploaded under three versions' paths."""
    import boto3

    out = tmp_path_factory.mktemp("model") / "model.joblib"
    code = ("import joblib,sys; from sklearn.datasets import load_iris; from sklearn.linear_model import "
            "LogisticRegression; x,y=load_iris(return_X_y=True); "
            "joblib.dump(LogisticRegression(max_iter=300).fit(x,y), sys.argv[1])")
    subprocess.run([str(sklearnserver_python()), "-c", code, str(out)], check=True, timeout=600)
    s3 = boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"])
    with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
        s3.create_bucket(Bucket=BUCKET)
    uris = []
    for version in ("v1", "v2", "v3"):
        s3.upload_file(str(out), BUCKET, f"iris/{version}/model.joblib")
        uris.append(f"s3://{BUCKET}/iris/{version}")
    return uris


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


def isvc(name: str, uri: str, canary: int | None = None) -> dict:
    predictor: dict[str, Any] = {"serviceAccountName": "models", "minReplicas": 1,
                                 "model": {"modelFormat": {"name": "sklearn"}, "storageUri": uri,
                                           "resources": RESOURCES}}
    if canary is not None:
        predictor["canaryTrafficPercent"] = canary
    return {"apiVersion": ISVC_API, "kind": ISVC_KIND,
            "metadata": {"name": name, "namespace": NS,
                         "annotations": {"serving.kserve.io/deploymentMode": "Serverless"}},
            "spec": {"predictor": predictor}}


def update_isvc(kdyn, uri: str, canary: int | None) -> None:
    """Replace the predictor spec (``canaryTrafficPercent`` removed when ``canary`` is None), as a user's
    ``kubectl apply`` of the whole manifest would."""
    from tasks import kube

    res = kube.resource_for(kdyn, ISVC_API, ISVC_KIND)
    for _ in range(5):
        cur = res.get(name="iris", namespace=NS).to_dict()
        cur["spec"]["predictor"] = isvc("iris", uri, canary)["spec"]["predictor"]
        try:
            res.replace(body=cur, namespace=NS)
            return
        except Exception as exc:  # 409: KServe wrote status in between
            if "Conflict" not in str(exc) and "409" not in str(exc):
                raise
            time.sleep(0.5)
    raise AssertionError("InferenceService iris: replace kept conflicting")


def revision_ready(kdyn, name: str, timeout: float = READY_TIMEOUT_S) -> dict:
    from tasks import kube

    t0 = time.monotonic()
    deadline = t0 + timeout
    while True:  # the Revision does not exist until Knative's Configuration reconciler made it
        try:
            obj = kube.wait_for(kdyn, KSVC_API, "Revision", name, lambda o: kube.condition_true(o, "Ready"),
                                namespace=NS, timeout=max(1.0, deadline - time.monotonic()), progress=None)
            TIMINGS[f"{name}_ready_s"] = round(time.monotonic() - t0, 1)
            return obj
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(2.0)


def ksvc_traffic(kdyn) -> list[dict]:
    from tasks import kube

    return (kube.get(kdyn, KSVC_API, "Service", "iris-predictor", NS).get("status") or {}).get("traffic") or []


def wait_traffic(kdyn, want: list[tuple[str, int, bool, str]], timeout: float = 300.0) -> list[dict]:
    """Wait until the Knative Service's ``status.traffic`` is ``want``: (revision, percent, latestRevision, tag)."""
    deadline = time.monotonic() + timeout
    got: list[tuple] = []
    while time.monotonic() < deadline:
        traffic = ksvc_traffic(kdyn)
        got = sorted((t.get("revisionName", ""), t.get("percent", 0), bool(t.get("latestRevision")), t.get("tag", ""))
                     for t in traffic)
        if got == sorted(want):
            return traffic
        time.sleep(1.0)
    raise AssertionError(f"Knative Service traffic {got}, expected {sorted(want)}")


def predictor(kdyn, cond: Any = None, timeout: float = 300.0) -> dict:
    """``status.components.predictor`` of iris, once ``cond(predictor)`` holds."""
    from tasks import kube

    deadline = time.monotonic() + timeout
    pred: dict = {}
    while time.monotonic() < deadline:
        obj = kube.get(kdyn, ISVC_API, ISVC_KIND, "iris", NS)
        pred = ((obj.get("status") or {}).get("components") or {}).get("predictor") or {}
        if cond is None or cond(pred):
            return pred
        time.sleep(1.0)
    raise AssertionError(f"predictor status never matched: {json.dumps(pred)[:1500]}")


def knative_ingress(kdyn, timeout: float = 120.0) -> dict:
    """The KIngress ``iris-predictor`` Knative's Route made (waited for: the Route makes it after a Ready revision)."""
    from tasks import kube

    deadline = time.monotonic() + timeout
    while True:
        try:
            return kube.get(kdyn, "networking.internal.knative.dev/v1alpha1", "Ingress", "iris-predictor", NS)
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(1.0)


def revision_pod(kdyn, revision: str) -> dict:
    from tasks import kube

    pods = kube.resource_for(kdyn, "v1", "Pod").get(
        namespace=NS, label_selector=f"serving.knative.dev/revision={revision}").to_dict()["items"]
    running = [p for p in pods if (p.get("status") or {}).get("phase") == "Running"]
    assert running, f"no Running Pod of revision {revision}: {[p['metadata']['name'] for p in pods]}"
    return running[0]


def test_serverless_isvc_becomes_a_knative_service_and_a_ready_revision(kdyn, namespace: str,
                                                                       model_uris: list[str]) -> None:
    from tasks import kube

    t0 = time.monotonic()
    kube.apply(kdyn, isvc("iris", model_uris[0]))
    rev = revision_ready(kdyn, "iris-predictor-00001")
    TIMINGS["isvc_create_to_first_revision_ready_s"] = round(time.monotonic() - t0, 1)
    print(f"\nInferenceService create -> Revision Ready: {TIMINGS['isvc_create_to_first_revision_ready_s']} s")
    ksvc = kube.get(kdyn, KSVC_API, "Service", "iris-predictor", NS)
    assert ksvc["metadata"]["ownerReferences"][0]["kind"] == ISVC_KIND
    # Knative's own objects: Configuration -> Revision (Knative's labels), Route, KIngress of the sandbox class
    assert rev["metadata"]["labels"]["serving.knative.dev/configuration"] == "iris-predictor"
    assert rev["metadata"]["ownerReferences"][0]["kind"] == "Configuration"
    ing = knative_ingress(kdyn)  # the Route makes it once a revision is Ready
    assert ing["metadata"]["annotations"]["networking.knative.dev/ingress.class"] == "gateway.sandbox.kaiops.io"
    hosts = {h for r in ing["spec"]["rules"] for h in r["hosts"]}
    assert f"iris-predictor.{NS}.example.com" in hosts, hosts  # config-domain example.com
    # no tag was resolved to a digest (registries-skipping-tag-resolving): nothing asked a registry
    statuses = rev["status"].get("containerStatuses") or []
    assert statuses and all(not s.get("imageDigest") for s in statuses), statuses
    pod = revision_pod(kdyn, "iris-predictor-00001")
    containers = {c["name"]: c for c in pod["spec"]["containers"]}
    assert set(containers) == {"kserve-container", "queue-proxy"}, set(containers)
    assert containers["queue-proxy"]["image"] == QUEUE_IMAGE
    assert containers["kserve-container"]["image"].startswith("kserve/sklearnserver:")
    assert "storage-initializer" in {c["name"] for c in pod["spec"].get("initContainers") or []}
    ready = {c["name"]: c.get("ready") for c in pod["status"]["containerStatuses"]}
    assert ready == {"kserve-container": True, "queue-proxy": True}, ready
    # KServe: the fully routed latest revision is the rolled-out one
    pred = predictor(kdyn, lambda p: p.get("latestRolledoutRevision") == "iris-predictor-00001")
    assert pred["latestCreatedRevision"] == pred["latestReadyRevision"] == "iris-predictor-00001"
    wait_traffic(kdyn, [("iris-predictor-00001", 100, True, "")])
    SEEN["pod_ip"] = pod["status"]["podIP"]


def predict_via_gateway(gateway: str, host: str) -> tuple[int, dict]:
    req = urllib.request.Request(f"{gateway}/v1/models/iris:predict", data=json.dumps({"instances": IRIS}).encode(),
                                 headers={"Host": host, "Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, {"body": exc.read().decode(errors="replace")}


def test_isvc_ready_with_the_routes_url_and_predicts_through_the_gateway(kdyn, env: dict[str, str]) -> None:
    """KIngress Ready (the sandbox gateway probed it) -> Knative Route and Service Ready -> KServe's Ready, with
    the Route's URL (``disableIstioVirtualHost``); a prediction through the gateway goes Knative's way
    (KIngress split -> the revision's public Service -> activator or Pod -> queue-proxy -> sklearnserver)."""
    from tasks import kube

    t0 = time.monotonic()
    obj = kube.wait_for(kdyn, ISVC_API, ISVC_KIND, "iris", lambda o: kube.condition_true(o, "Ready"),
                        namespace=NS, timeout=300, progress=None)
    TIMINGS["revision_ready_to_isvc_ready_s"] = round(time.monotonic() - t0, 1)
    host = f"iris-predictor.{NS}.example.com"
    assert obj["status"]["url"] == f"http://{host}", obj["status"].get("url")
    conds = {c["type"]: c["status"] for c in obj["status"]["conditions"]}
    assert conds["IngressReady"] == conds["PredictorReady"] == conds["LatestDeploymentReady"] == "True", conds
    # v0.20 records the mode as "Knative" (the annotation's "Serverless" is the legacy name); kaiops maps both
    from tasks.rollout.isvc import deployment_mode

    assert obj["status"]["deploymentMode"] == "Knative"
    assert deployment_mode(obj) == "Serverless"
    code, body = predict_via_gateway(env["KAIOPS_GATEWAY_URL"], host)
    assert code == 200, body
    assert body["predictions"] == [1, 1]


def predict_direct(pod_ip: str, port: int = 8012) -> tuple[int, dict]:
    """A prediction sent to the revision Pod's queue-proxy (port 8012, Knative's ``http`` queue port)."""
    req = urllib.request.Request(f"http://{pod_ip}:{port}/v1/models/iris:predict",
                                 data=json.dumps({"instances": IRIS}).encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, {"body": exc.read().decode(errors="replace")}


def metric_names(text: str) -> set[str]:
    names = set()
    for line in text.splitlines():
        if line and not line.startswith("#"):
            names.add(line.split("{", 1)[0].split(" ", 1)[0])
    return names


def test_queue_proxy_serves_predictions_and_exports_request_metrics_to_prometheus(env: dict[str, str],
                                                                                  kdyn) -> None:
    pod_ip = SEEN["pod_ip"]
    for _ in range(20):
        code, body = predict_direct(pod_ip)
        assert code == 200, body
    assert body["predictions"] == [1, 1]
    with urllib.request.urlopen(f"http://{pod_ip}:9091/metrics", timeout=10) as resp:
        text = resp.read().decode()
    names = metric_names(text)
    SEEN["queue_proxy_metrics"] = sorted(names)
    print("\nqueue-proxy :9091 metric names:", sorted(names))
    request_lines = [line for line in text.splitlines() if line.startswith("kn_serving_invocation_duration")]
    print("\n".join(request_lines[:6]))
    assert any(n.startswith("kn_serving_invocation_duration_seconds") for n in names), sorted(names)
    assert not any(n.startswith("revision_request_count") for n in names), "OpenCensus-era names exported"
    # Prometheus scrapes it (file-SD target written by the knative service for each revision Pod)
    prom = env["PROMETHEUS_URL"]
    query = 'sum(kn_serving_invocation_duration_seconds_count{revision="iris-predictor-00001"})'
    deadline = time.monotonic() + 120
    value = None
    while time.monotonic() < deadline:
        with urllib.request.urlopen(f"{prom}/api/v1/query?query={urllib.parse.quote(query)}", timeout=10) as resp:
            result = json.loads(resp.read())["data"]["result"]
        if result and float(result[0]["value"][1]) >= 20:
            value = float(result[0]["value"][1])
            break
        time.sleep(2.0)
    assert value is not None and value >= 20, f"Prometheus has no queue-proxy series for the revision: {query}"
    with urllib.request.urlopen(f"{prom}/api/v1/series?match[]=kn_serving_invocation_duration_seconds_count",
                                timeout=10) as resp:
        series = json.loads(resp.read())["data"]
    SEEN["series_labels"] = sorted(series[0])
    print("\nseries labels:", series[0])


def new_revision(kdyn, before: str) -> str:
    """The revision Knative creates for the InferenceService's latest spec change (after ``before``), once Ready."""
    pred = predictor(kdyn, lambda p: p.get("latestCreatedRevision", before) != before, timeout=300)
    name = pred["latestCreatedRevision"]
    revision_ready(kdyn, name)
    return name


def test_canary_traffic_percent_splits_by_knatives_route(kdyn, model_uris: list[str]) -> None:
    update_isvc(kdyn, model_uris[1], 20)
    assert new_revision(kdyn, "iris-predictor-00001") == "iris-predictor-00002"
    # KServe: N % to the latest revision (no tag unless serving.kserve.io/enable-tag-routing), the rest to
    # latestRolledoutRevision with tag "prev"; Knative's Route writes it into the Service's status
    wait_traffic(kdyn, [("iris-predictor-00002", 20, True, ""), ("iris-predictor-00001", 80, False, "prev")])
    pred = predictor(kdyn, lambda p: p.get("latestReadyRevision") == "iris-predictor-00002")
    assert pred["latestRolledoutRevision"] == "iris-predictor-00001"
    assert pred["latestCreatedRevision"] == "iris-predictor-00002"
    got = sorted((t["revisionName"], t["percent"], t.get("tag", "")) for t in pred.get("traffic") or [])
    assert got == [("iris-predictor-00001", 80, "prev"), ("iris-predictor-00002", 20, "")], got
    # the KIngress Knative made: one split 80/20 over the two revisions' Services, and a "prev-" tag host
    ing = knative_ingress(kdyn)
    splits = sorted((s["serviceName"], s["percent"]) for r in ing["spec"]["rules"]
                    if f"iris-predictor.{NS}.example.com" in r["hosts"]
                    for p in r["http"]["paths"] for s in p["splits"])
    assert splits == [("iris-predictor-00001", 80), ("iris-predictor-00002", 20)], splits
    hosts = {h for r in ing["spec"]["rules"] for h in r["hosts"]}
    assert f"prev-iris-predictor.{NS}.example.com" in hosts, hosts


def test_promotion_removes_the_field_and_rolls_the_canary_out(kdyn, model_uris: list[str]) -> None:
    update_isvc(kdyn, model_uris[1], None)
    wait_traffic(kdyn, [("iris-predictor-00002", 100, True, "")])
    pred = predictor(kdyn, lambda p: p.get("latestRolledoutRevision") == "iris-predictor-00002")
    assert pred["previousRolledoutRevision"] == "iris-predictor-00001"


def test_second_canary_right_after_promotion_splits_against_the_promoted_revision(kdyn,
                                                                                  model_uris: list[str]) -> None:
    promoted = predictor(kdyn)["latestRolledoutRevision"]
    update_isvc(kdyn, model_uris[2], 30)
    canary = new_revision(kdyn, promoted)
    SEEN["second_canary"] = canary
    wait_traffic(kdyn, [(canary, 30, True, ""), (promoted, 70, False, "prev")])
    pred = predictor(kdyn, lambda p: p.get("latestReadyRevision") == canary)
    assert pred["latestRolledoutRevision"] == promoted


def test_rollback_to_zero_percent_sends_everything_back_to_the_rolled_out_revision(kdyn,
                                                                                   model_uris: list[str]) -> None:
    canary = SEEN["second_canary"]
    promoted = predictor(kdyn)["latestRolledoutRevision"]
    update_isvc(kdyn, model_uris[2], 0)
    # canaryTrafficPercent 0: the latest revision stays in the Route at 0 %, "prev" takes 100 %
    wait_traffic(kdyn, [(canary, 0, True, ""), (promoted, 100, False, "prev")])
    pred = predictor(kdyn, lambda p: p.get("latestReadyRevision") == canary)
    assert pred["latestRolledoutRevision"] == promoted
    assert pred["latestCreatedRevision"] == canary  # the rollback wrote no new revision
    print(f"\nserverless timings: {json.dumps(TIMINGS)}")
