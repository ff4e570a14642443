"""The demo's own setup steps on the sandbox: train the iris models, create the bucket, wire S3 credentials for
KServe, write the InferenceService manifest. Prefect tasks; :mod:`flows.demo` runs them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from prefect import task

from tasks import kube
from tasks.demo.models import train_iris_models
from tasks.errors import PermanentError, io_retries
from tasks.kserve.manifests import inference_service_manifest, s3_wiring_manifests
from tasks.manifests import validate_documents
from tasks.manifests.findings import has_errors
from tasks.storage.layout import parse_uri
from tasks.storage.stores import make_store

_IO = io_retries(2, 3)


@task(name="train-iris-models")
def train_iris_models_task(out_dir: str) -> list[dict[str, Any]]:
    """Train iris v1..v3 into ``out_dir``; ``[{version, path, accuracy, description}]``."""
    return [{"version": m.version, "path": str(m.path), "accuracy": round(m.accuracy, 3),
             "description": m.description} for m in train_iris_models(out_dir)]


@task(name="ensure-bucket", **_IO)
def ensure_bucket(uri: str) -> None:
    """Create the bucket of ``uri`` when missing (sandbox/demo only)."""
    store = make_store(uri)
    store.create_bucket(parse_uri(uri).bucket)


@task(name="wire-s3-credentials", **_IO)
def wire_s3_credentials(namespaces: list[str], service_account: str, secret: str) -> list[str]:
    """Apply Namespace + Secret (KServe key names and s3-* annotations for ``$AWS_ENDPOINT_URL``) + ServiceAccount
    in each namespace, from the standard AWS_* environment; returns the object refs applied (no values)."""
    dyn = kube.connect()
    applied = []
    for ns in namespaces:
        docs = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}]
        docs += s3_wiring_manifests(ns, service_account, secret, endpoint_url=os.environ["AWS_ENDPOINT_URL"],
                                    access_key_id=os.environ["AWS_ACCESS_KEY_ID"],
                                    secret_access_key=os.environ["AWS_SECRET_ACCESS_KEY"],
                                    region=os.environ.get("AWS_DEFAULT_REGION"))
        for doc in docs:
            kube.apply(dyn, doc)
            applied.append(kube.object_ref(doc))
    return applied


@task(name="write-isvc-manifest")
def write_isvc_manifest(path: str, name: str, namespace: str, storage_uri: str, service_account: str) -> str:
    """Write an InferenceService manifest for a published model to ``path`` (validated offline first)."""
    doc = inference_service_manifest(name, namespace, storage_uri, service_account)
    findings = validate_documents([doc], path)
    if has_errors(findings):
        raise PermanentError("; ".join(f.message for f in findings))
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(yaml.safe_dump(doc, sort_keys=False))
    return path
