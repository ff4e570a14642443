"""The sandbox KServe end to end: real apiserver, real S3 (moto), real model servers, real Prometheus.

Starts only the services it needs (``kserve`` and ``s3`` plus their dependencies) on the instance named by
``KAIOPS_SANDBOX``. The tests run in order and share one InferenceService through its rollout.
"""

from __future__ import annotations

import json
import math
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from tests.sandbox_env import services_fixture

pytestmark = pytest.mark.e2e

NS = "kserve-e2e"
ISVC = "serving.kserve.io/v1beta1"


env = services_fixture("kserve", "s3", stop=("kserve",), export=False)


@pytest.fixture(scope="module")
def kdyn(env: dict[str, str]):
    from tasks import kube

    return kube.connect(env["KUBECONFIG"])


@pytest.fixture(scope="module")
def models(env: dict[str, str], kdyn, tmp_path_factory) -> dict[str, str]:
    """Publish two iris models to the sandbox S3 and wire namespace, Secret and ServiceAccount like KServe wants."""
    import boto3
    import joblib
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.tree import DecisionTreeClassifier

    from tasks import kube

    x, y = load_iris(return_X_y=True)
    s3 = boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                      aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"], region_name="us-east-1")
    if "models" not in [b["Name"] for b in s3.list_buckets().get("Buckets", [])]:
        s3.create_bucket(Bucket="models")
    out = tmp_path_factory.mktemp("models")
    for version, est in (("v1", LogisticRegression(max_iter=500)), ("v2", DecisionTreeClassifier(max_depth=3))):
        path = out / f"{version}.joblib"
        joblib.dump(est.fit(x, y), path)
        s3.upload_file(str(path), "models", f"e2e-iris/{version}/model.joblib")
    endpoint = env["AWS_ENDPOINT_URL"].split("://", 1)[1]
    for obj in (
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}},
        {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
         "metadata": {"name": "s3-models", "namespace": NS, "annotations": {
             "serving.kserve.io/s3-endpoint": endpoint, "serving.kserve.io/s3-usehttps": "0",
             "serving.kserve.io/s3-region": "us-east-1"}},
         "stringData": {"AWS_ACCESS_KEY_ID": env["AWS_ACCESS_KEY_ID"],
                        "AWS_SECRET_ACCESS_KEY": env["AWS_SECRET_ACCESS_KEY"]}},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "models", "namespace": NS},
         "secrets": [{"name": "s3-models"}]},
    ):
        kube.apply(kdyn, obj)
    return {"v1": "s3://models/e2e-iris/v1/", "v2": "s3://models/e2e-iris/v2/"}


def _isvc(name: str, uri: str, canary: int | None = None, annotations: dict[str, str] | None = None,
          sa: str = "models") -> dict:
    predictor: dict = {"serviceAccountName": sa, "model": {"modelFormat": {"name": "sklearn"}, "storageUri": uri}}
    if canary is not None:
        predictor["canaryTrafficPercent"] = canary
    meta: dict = {"name": name, "namespace": NS}
    if annotations is not None:
        meta["annotations"] = annotations
    return {"apiVersion": ISVC, "kind": "InferenceService", "metadata": meta, "spec": {"predictor": predictor}}


def _apply(kdyn, obj: dict) -> dict:
    from tasks import kube

    return kube.apply(kdyn, obj, force=True)


def _wait(kdyn, name: str, predicate, timeout: float = 180.0) -> dict:
    from tasks import kube

    return kube.wait_for(kdyn, ISVC, "InferenceService", name, predicate, namespace=NS, timeout=timeout)


def _pred(obj: dict) -> dict:
    return ((obj.get("status") or {}).get("components") or {}).get("predictor") or {}


def _cond(obj: dict, type_: str) -> dict:
    from tasks import kube

    return kube.condition(obj, type_) or {}


def _ready_on(revision: str):
    def check(obj: dict) -> bool:
        return _cond(obj, "Ready").get("status") == "True" and _pred(obj).get("latestReadyRevision") == revision

    return check


def _prom(env: dict[str, str], query: str) -> list[dict]:
    url = f"{env['PROMETHEUS_URL']}/api/v1/query?" + urllib.parse.urlencode({"query": query})
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.loads(resp.read())["data"]["result"]


def _prom_until(env: dict[str, str], query: str, check, timeout: float = 60.0) -> list[dict]:
    deadline = time.monotonic() + timeout
    result: list[dict] = []
    while time.monotonic() < deadline:
        result = _prom(env, query)
        if check(result):
            return result
        time.sleep(2.0)
    raise AssertionError(f"Prometheus never satisfied the check for {query!r}; last result {result}")


def _by_revision(result: list[dict]) -> dict[str, float]:
    return {r["metric"].get("revision_name", r["metric"].get("kn_revision_name", "")): float(r["value"][1])
            for r in result}


def _per_revision(series: str, ns: str, by: str = "kn_revision_name") -> str:
    """``series`` (a queue-proxy metric, which has no revision label) summed ``by`` with the revision of its
    target: the real queue-proxy's OTel resource is in ``target_info``, joined on ``(job, instance)``."""
    return (f"sum by ({by}) ({series} * on (job, instance) group_left (kn_revision_name) "
            f'target_info{{k8s_namespace_name="{ns}"}})')


def _targets_dir(env: dict[str, str]) -> Path:
    return Path(env["KUBECONFIG"]).parent / "prometheus" / "targets"


def test_isvc_becomes_ready_and_answers_predictions(env, kdyn, models) -> None:
    from sandbox.kserve.load import predict_once

    _apply(kdyn, _isvc("iris", models["v1"]))
    obj = _wait(kdyn, "iris", _ready_on("iris-predictor-00001"))
    status = obj["status"]
    assert status["url"].startswith("http://127.0.0.1:")
    assert status["modelStatus"]["transitionStatus"] == "UpToDate"
    assert status["modelStatus"]["states"]["activeModelState"] == "Loaded"
    assert _pred(obj)["traffic"] == [{"revisionName": "iris-predictor-00001", "latestRevision": True, "percent": 100}]
    assert _pred(obj)["latestRolledoutRevision"] == "iris-predictor-00001"
    for type_ in ("PredictorReady", "IngressReady", "LatestDeploymentReady", "PredictorConfigurationReady",
                  "PredictorRouteReady"):
        assert _cond(obj, type_).get("status") == "True", type_
    code, revision, body = predict_once(status["url"], "iris", [6.3, 3.3, 6.0, 2.5])
    assert (code, revision) == (200, "iris-predictor-00001")
    assert body["predictions"] == [2]  # virginica


def test_canary_splits_traffic_30_70_and_prometheus_sees_both_revisions(env, kdyn, models) -> None:
    from sandbox.kserve.load import run

    _apply(kdyn, _isvc("iris", models["v2"], canary=30))
    obj = _wait(kdyn, "iris", _ready_on("iris-predictor-00002"))
    pred = _pred(obj)
    assert pred["latestCreatedRevision"] == "iris-predictor-00002"
    assert pred["latestRolledoutRevision"] == "iris-predictor-00001"
    assert sorted(pred["traffic"], key=lambda t: t["percent"]) == [
        {"revisionName": "iris-predictor-00002", "latestRevision": True, "percent": 30},
        {"revisionName": "iris-predictor-00001", "latestRevision": False, "percent": 70, "tag": "prev"},
    ]
    n = 300
    report = run(obj["status"]["url"], "iris", rps=60, duration=n / 60)
    assert report.ok == n
    canary = report.by_revision["iris-predictor-00002"]
    sd = math.sqrt(n * 0.3 * 0.7)  # binomial; 4.5 sd keeps a false failure below 1e-5
    assert abs(canary - 0.3 * n) < 4.5 * sd, report.by_revision

    counts = _prom_until(env, _per_revision("kn_serving_invocation_duration_seconds_count", NS),
                         lambda r: sum(_by_revision(r).values()) >= n and len(r) == 2)
    assert set(_by_revision(counts)) == {"iris-predictor-00001", "iris-predictor-00002"}
    buckets = _per_revision("rate(kn_serving_invocation_duration_seconds_bucket[1m])", NS, "le, kn_revision_name")
    p95 = _prom(env, f"histogram_quantile(0.95, {buckets})")
    latency = _by_revision(p95)
    assert set(latency) == {"iris-predictor-00001", "iris-predictor-00002"}
    assert all(0 < v <= 10 for v in latency.values())  # seconds, within queue-proxy's buckets
    # the model server's own metric carries revision_name, as configs/canary/model-server.yaml selects on
    predict = _prom(env, f'sum by (revision_name) (request_predict_seconds_count{{namespace="{NS}"}})')
    assert {r["metric"]["revision_name"] for r in predict} >= {"iris-predictor-00002"}


def test_injected_error_rate_shows_in_the_5xx_series_of_the_newest_revision(env, kdyn, models) -> None:
    from sandbox.kserve.load import run

    obj = _apply(kdyn, _isvc("iris", models["v2"], canary=30,
                             annotations={"sandbox.kaiops.io/fault-error-rate": "0.2"}))
    time.sleep(1.0)  # the controller reacts to the watch event; nothing in status changes to wait on
    report = run(obj["status"]["url"], "iris", rps=60, duration=5)
    assert report.by_code.get(500, 0) > 0
    result = _prom_until(
        env, _per_revision('kn_serving_invocation_duration_seconds_count{http_response_status_code=~"5.."}', NS),
        lambda r: _by_revision(r).get("iris-predictor-00002", 0) > 0)
    assert set(_by_revision(result)) == {"iris-predictor-00002"}  # the old revision served no errors
    _apply(kdyn, _isvc("iris", models["v2"], canary=30, annotations={}))


def test_promotion_moves_all_traffic_and_stops_the_old_revision(env, kdyn, models) -> None:
    old_target = _targets_dir(env) / f"kserve-{NS}-iris-predictor-00001.json"
    address = json.loads(old_target.read_text())[0]["targets"][0]
    _apply(kdyn, _isvc("iris", models["v2"]))
    obj = _wait(kdyn, "iris", lambda o: _pred(o).get("latestRolledoutRevision") == "iris-predictor-00002")
    assert _pred(obj)["previousRolledoutRevision"] == "iris-predictor-00001"
    assert _pred(obj)["traffic"] == [{"revisionName": "iris-predictor-00002", "latestRevision": True, "percent": 100}]
    from sandbox.procs import port_open, wait_until

    wait_until(lambda: not port_open(int(address.split(":")[1])), 30, "old revision's model server stopped")
    assert not old_target.exists()


def test_bad_storage_uri_and_missing_credentials_show_as_model_load_failure(env, kdyn, models) -> None:
    def failed(obj: dict) -> bool:
        return (obj.get("status") or {}).get("modelStatus", {}).get("transitionStatus") == "BlockedByFailedLoad"

    _apply(kdyn, _isvc("wrong-uri", "s3://models/e2e-iris/nothere/"))
    _apply(kdyn, _isvc("no-creds", models["v1"], sa="no-such-sa"))
    for name in ("wrong-uri", "no-creds"):
        obj = _wait(kdyn, name, failed, timeout=120)
        model_status = obj["status"]["modelStatus"]
        assert model_status["states"]["targetModelState"] == "FailedToLoad"
        assert model_status["lastFailureInfo"]["reason"] == "ModelLoadFailed"
        assert model_status["lastFailureInfo"]["message"]
        assert _cond(obj, "Ready")["status"] == "False"
        assert _cond(obj, "PredictorConfigurationReady")["reason"] == "RevisionFailed"
    _delete(kdyn, "wrong-uri")
    _delete(kdyn, "no-creds")


def test_raw_deployment_ignores_canary_traffic_percent(env, kdyn, models) -> None:
    from sandbox.kserve.load import run

    raw = {"serving.kserve.io/deploymentMode": "RawDeployment"}
    _apply(kdyn, _isvc("raw", models["v1"], annotations=raw))
    _wait(kdyn, "raw", lambda o: _cond(o, "Ready").get("status") == "True")
    _apply(kdyn, _isvc("raw", models["v2"], canary=30, annotations=raw))
    obj = _wait(kdyn, "raw", lambda o: _cond(o, "PredictorReady").get("reason") == "NewReplicaSetAvailable"
                and o["status"].get("observedGeneration") == o["metadata"]["generation"]
                and o["status"]["modelStatus"]["transitionStatus"] == "UpToDate")
    assert obj["status"]["deploymentMode"] == "RawDeployment"
    assert "traffic" not in _pred(obj)
    report = run(obj["status"]["url"], "raw", rps=40, duration=2)
    assert report.ok == report.sent
    assert list(report.by_revision) == ["raw-predictor-00002"]  # all traffic on the new spec, no 30 % split
    _delete(kdyn, "raw")


def _delete(kdyn, name: str) -> None:
    from tasks import kube

    kube.resource_for(kdyn, ISVC, "InferenceService").delete(name=name, namespace=NS)
