"""The ``serving`` section of ``make demo``: iris v1 served from the sandbox S3, predictions through the
router, per-revision series in Prometheus.

If ``s3://models/iris/v1/`` is not published yet (the ``models`` section does that), it publishes a freshly
trained iris model there itself. Credentials are wired as KServe wants them: a Secret with the S3 keys and
``serving.kserve.io/s3-*`` annotations, listed by the predictor's ServiceAccount.
"""

from __future__ import annotations

import json
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

NAMESPACE = "demo"
ISVC_NAME = "iris"
API_VERSION = "serving.kserve.io/v1beta1"
STORAGE_URI = "s3://models/iris/v1/"
SERVICE_ACCOUNT = "kserve-serving"
SECRET = "kserve-serving-s3"


def _publish_iris_if_missing(s3: Any) -> bool:
    """Upload a trained iris model to ``s3://models/iris/v1/model.joblib`` unless something is there."""
    if "models" not in [b["Name"] for b in s3.list_buckets().get("Buckets", [])]:
        s3.create_bucket(Bucket="models")
    if s3.list_objects_v2(Bucket="models", Prefix="iris/v1/").get("KeyCount", 0):
        return False
    import joblib
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    x, y = load_iris(return_X_y=True)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.joblib"
        joblib.dump(LogisticRegression(max_iter=500).fit(x, y), path)
        s3.upload_file(str(path), "models", "iris/v1/model.joblib")
    return True


def serve_iris(env: dict[str, str], rps: float = 20.0, duration: float = 5.0) -> dict[str, Any]:
    """Serve iris v1 and show it working.

    Args:
        env: the sandbox environment (``KUBECONFIG``, ``AWS_*``, ``PROMETHEUS_URL``).
        rps: requests per second of the demo load; duration: its length in seconds.

    Returns:
        ``{"url", "revision", "load": {...}, "prometheus": {revision: requests}, "published": bool, "ok": bool}``;
        ok = every prediction answered 200 and Prometheus has a queue-proxy
        ``kn_serving_invocation_duration_seconds_count`` series for it.
        Failures are reported in ``reason`` with ok False, not raised.
    """
    import boto3

    from sandbox.kserve.load import run
    from tasks import kube

    out: dict[str, Any] = {"ok": False}
    try:
        s3 = boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                          aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"], region_name="us-east-1")
        out["published"] = _publish_iris_if_missing(s3)
        dyn = kube.connect(env["KUBECONFIG"])
        endpoint = env["AWS_ENDPOINT_URL"].split("://", 1)[1]
        for obj in (
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
            {"apiVersion": "v1", "kind": "Secret", "type": "Opaque", "metadata": {
                "name": SECRET, "namespace": NAMESPACE, "annotations": {
                    "serving.kserve.io/s3-endpoint": endpoint, "serving.kserve.io/s3-usehttps": "0",
                    "serving.kserve.io/s3-region": "us-east-1"}},
             "stringData": {"AWS_ACCESS_KEY_ID": env["AWS_ACCESS_KEY_ID"],
                            "AWS_SECRET_ACCESS_KEY": env["AWS_SECRET_ACCESS_KEY"]}},
            {"apiVersion": "v1", "kind": "ServiceAccount",
             "metadata": {"name": SERVICE_ACCOUNT, "namespace": NAMESPACE}, "secrets": [{"name": SECRET}]},
            {"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
             "metadata": {"name": ISVC_NAME, "namespace": NAMESPACE},
             "spec": {"predictor": {"serviceAccountName": SERVICE_ACCOUNT, "model": {
                 "modelFormat": {"name": "sklearn"}, "storageUri": STORAGE_URI}}}},
        ):
            kube.apply(dyn, obj)
        ready = kube.wait_for(dyn, "serving.kserve.io/v1beta1", "InferenceService", ISVC_NAME,
                              lambda o: kube.condition_true(o, "Ready"), namespace=NAMESPACE, timeout=300)
        url = ready["status"]["url"]
        revision = ready["status"]["components"]["predictor"]["latestReadyRevision"]
        out.update(url=url, revision=revision)
        report = run(url, ISVC_NAME, rps, duration)
        out["load"] = report.summary()
        # the real queue-proxy's series carry no revision: its OTel resource (target_info) does
        query = ("sum by (kn_revision_name) (kn_serving_invocation_duration_seconds_count * on (job, instance) "
                 f'group_left (kn_revision_name) target_info{{k8s_namespace_name="{NAMESPACE}",'
                 f'kn_configuration_name="{ISVC_NAME}-predictor"}})')
        series: dict[str, float] = {}
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and series.get(revision, 0) < report.sent:
            api = f"{env['PROMETHEUS_URL']}/api/v1/query?" + urllib.parse.urlencode({"query": query})
            with urllib.request.urlopen(api, timeout=10) as resp:
                result = json.loads(resp.read())["data"]["result"]
            series = {r["metric"]["kn_revision_name"]: float(r["value"][1]) for r in result}
            time.sleep(2)
        out["prometheus"] = series
        out["ok"] = report.ok == report.sent > 0 and series.get(revision, 0) > 0
    except Exception as exc:  # a failed section, not a crashed demo
        out["reason"] = f"{exc.__class__.__name__}: {exc}"
    return out


def isvc_url(namespace: str, name: str) -> str:
    """``status.url`` of an InferenceService (its sandbox router)."""
    from tasks import kube

    return kube.get(kube.connect(), API_VERSION, "InferenceService", name, namespace)["status"]["url"]


def set_error_rate(namespace: str, name: str, rate: float | None) -> None:
    """Set (or with None remove) annotation ``sandbox.kaiops.io/fault-error-rate`` on an InferenceService: that
    fraction of its newest revision's requests answer 500 (a merge patch, as a person with kubectl would)."""
    from sandbox.kserve import faults
    from tasks import kube

    dyn = kube.connect()
    kube.resource_for(dyn, API_VERSION, "InferenceService").patch(
        body={"metadata": {"annotations": {faults.ERROR_RATE: None if rate is None else str(rate)}}},
        name=name, namespace=namespace, content_type="application/merge-patch+json")
