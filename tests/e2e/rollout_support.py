"""Helpers for the rollout e2e tests: models in the sandbox S3, credentials, an InferenceService, load."""

from __future__ import annotations

import contextlib
import io
import os
import threading
from typing import Any

from tasks import kube
from tasks.rollout import kube_ops


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
        "apiVersion": kube_ops.ISVC_API, "kind": kube_ops.ISVC_KIND,
        "metadata": {"name": name, "namespace": namespace, "annotations": annotations},
        "spec": {"predictor": {"serviceAccountName": "models",
                               "model": {"modelFormat": {"name": "sklearn"}, "storageUri": uri}}},
    })
    return kube.wait_for(dyn, kube_ops.ISVC_API, kube_ops.ISVC_KIND, name,
                         lambda o: kube.condition_true(o, "Ready"), namespace=namespace, timeout=120)


class Load:
    """Background load on the InferenceService's router (``sandbox.kserve.load``) for ``duration`` seconds."""

    def __init__(self, url: str, model: str, rps: float, duration: float) -> None:
        from sandbox.kserve import load

        self.thread = threading.Thread(target=load.run, args=(url, model, rps, duration), daemon=True)

    def __enter__(self) -> Load:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        pass
