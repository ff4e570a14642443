"""Helpers for the rollout e2e tests: models in the sandbox S3, credentials, an InferenceService, load."""

from __future__ import annotations

import contextlib
import io
import os
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tasks import kube
from tasks.rollout.isvc import ISVC_API, ISVC_KIND
from tasks.rollout.routing import ROUTE_API, ROUTE_KIND


def publish_models(bucket: str = "models", versions: tuple[str, ...] = ("v1", "v2", "v3")) -> None:
    """Upload a small scikit-learn iris model to s3://<bucket>/iris/<version>/model.joblib (idempotent)."""
    import boto3
    import joblib
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    s3 = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
    with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
        s3.create_bucket(Bucket=bucket)
    x, y = load_iris(return_X_y=True)
    buf = io.BytesIO()
    joblib.dump(LogisticRegression(max_iter=300).fit(x, y), buf)
    for v in versions:
        s3.put_object(Bucket=bucket, Key=f"iris/{v}/model.joblib", Body=buf.getvalue())


def create_isvc(dyn: Any, namespace: str, name: str, uri: str, *, raw: bool = False) -> dict[str, Any]:
    """Namespace, S3 Secret, ServiceAccount and an sklearn InferenceService serving ``uri``."""
    endpoint = os.environ["AWS_ENDPOINT_URL"].split("://", 1)[1]
    docs = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
        {"apiVersion": "v1", "kind": "Secret", "metadata": {
            "name": "s3creds", "namespace": namespace,
            "annotations": {"serving.kserve.io/s3-endpoint": endpoint, "serving.kserve.io/s3-usehttps": "0",
                            "serving.kserve.io/s3-region": "us-east-1"}},
         "type": "Opaque",
         "stringData": {"AWS_ACCESS_KEY_ID": os.environ["AWS_ACCESS_KEY_ID"],
                        "AWS_SECRET_ACCESS_KEY": os.environ["AWS_SECRET_ACCESS_KEY"]}},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "models", "namespace": namespace},
         "secrets": [{"name": "s3creds"}]},
    ]
    for doc in docs:
        kube.apply(dyn, doc)
    annotations = {"serving.kserve.io/deploymentMode": "RawDeployment"} if raw else {}
    kube.apply(dyn, {
        "apiVersion": ISVC_API, "kind": ISVC_KIND,
        "metadata": {"name": name, "namespace": namespace, "annotations": annotations},
        "spec": {"predictor": {"serviceAccountName": "models",
                               "model": {"modelFormat": {"name": "sklearn"}, "storageUri": uri}}},
    })
    return kube.wait_for(dyn, ISVC_API, ISVC_KIND, name,
                         lambda o: kube.condition_true(o, "Ready"), namespace=namespace, timeout=120)


class Load:
    """Background prediction load until :meth:`stop` (or the ``with`` block ends), at ``rps`` requests per second.

    ``url`` is a string or a callable re-read every second (the RawDeployment route appears mid-rollout).
    The load runs for as long as the rollout, not for a fixed duration: the first live run's load ended before
    its canary became ready, so no look ever saw canary traffic.
    """

    def __init__(self, url: str | Callable[[], str], model: str, rps: float = 20.0) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self.url_fn = url if callable(url) else (lambda: url)
        self.model, self.rps = model, rps
        self.by_revision: Counter = Counter()
        self.by_code: Counter = Counter()
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=12)
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _one(self, url: str, i: int) -> None:
        from sandbox.kserve import load

        code, revision, _ = load.predict_once(url, self.model, load.IRIS_ROWS[i % len(load.IRIS_ROWS)], timeout=10)
        self.by_code[code] += 1
        if revision:
            self.by_revision[revision] += 1

    def _run(self) -> None:
        began, i, url, resolved = time.monotonic(), 0, "", 0.0
        while not self._stop.is_set():
            if time.monotonic() - resolved > 1.0:
                with contextlib.suppress(Exception):
                    url = self.url_fn() or url
                resolved = time.monotonic()
            delay = began + i / self.rps - time.monotonic()
            if delay > 0:
                self._stop.wait(delay)
                continue
            if url:
                self._pool.submit(self._one, url, i)
            i += 1

    def __enter__(self) -> Load:
        self.thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self.thread.join(timeout=5)
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __exit__(self, *exc: object) -> None:
        self.stop()


def write_policy(path: Path, mode: str = "Serverless", **overrides: Any) -> Path:
    """A short test policy (steps 20/50/100, 8 s looks) from ``configs/canary/default.yaml``; returns the path."""
    import yaml

    raw = yaml.safe_load(Path("configs/canary/default.yaml").read_text())
    raw.update({"mode": mode, "steps": [20, 50, 100], "interval_seconds": 8, "warmup_seconds": 2,
                "min_requests_per_step": 20, "ready_deadline_seconds": 180, "lease_seconds": 20,
                "approval_timeout_seconds": 10, "latency_window_seconds": 4, "max_looks": 12})
    raw["analysis"].update({"query_failure_limit": 1, "inconclusive_step_limit": 2})
    latency = next(m for m in raw["metrics"] if m["name"] == "latency_p95")
    latency.update({"absolute_bound": 5.0, "baseline_bound": {"factor": 3.0, "margin": 0.25}})
    for key, value in overrides.items():
        raw[key] = value
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def delete_isvcs(dyn: Any, namespace: str, names: list[str], timeout: float = 60) -> None:
    """Delete InferenceServices (and HTTPRoutes) left by an earlier run and wait until they are gone."""
    resource = kube.resource_for(dyn, ISVC_API, ISVC_KIND)
    for name in names:
        kube.delete(dyn, ROUTE_API, ROUTE_KIND, f"{name}-rollout", namespace)
        kube.delete(dyn, ISVC_API, ISVC_KIND, name, namespace)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = {i["metadata"]["name"] for i in resource.get(namespace=namespace).to_dict()["items"]}
        if not left & set(names):
            return
        time.sleep(0.5)


def annotate(dyn: Any, namespace: str, name: str, annotations: dict[str, str | None]) -> None:
    """Merge-patch annotations (None removes one) as a person with kubectl would (not field manager kaiops)."""
    kube.resource_for(dyn, ISVC_API, ISVC_KIND).patch(
        body={"metadata": {"annotations": annotations}}, name=name, namespace=namespace,
        content_type="application/merge-patch+json")
