"""The InferenceService as it will look with the candidate version: what warmup checks before a rollout.

Warmup proves that an InferenceService's storage initializer (its ServiceAccount, Secrets and storage
annotations) can fetch a model; before a release the model to prove is the *new* version, so the live
InferenceService is read and written to a manifest file with only ``predictor.model.storageUri`` changed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from prefect import task

from tasks.errors import PermanentError

ISVC_API = "serving.kserve.io/v1beta1"


def candidate_manifest(isvc: dict[str, Any], storage_uri: str) -> dict[str, Any]:
    """A copy of ``isvc`` (metadata name/namespace/labels/annotations and spec only) serving ``storage_uri``.

    Raises:
        PermanentError: the InferenceService has no ``spec.predictor.model`` (nothing to point elsewhere).
    """
    spec = yaml.safe_load(yaml.safe_dump(isvc.get("spec") or {}))
    model = (spec.get("predictor") or {}).get("model")
    if not isinstance(model, dict):
        raise PermanentError("the InferenceService has no spec.predictor.model: cannot release a model version to it")
    model["storageUri"] = storage_uri
    meta = isvc.get("metadata") or {}
    keep = {k: meta[k] for k in ("name", "namespace", "labels", "annotations") if meta.get(k)}
    return {"apiVersion": ISVC_API, "kind": "InferenceService", "metadata": keep, "spec": spec}


@task(name="write-candidate-manifest")
def write_candidate_manifest(namespace: str, name: str, storage_uri: str, path: str) -> str:
    """Read InferenceService ``namespace/name`` and write its candidate manifest (serving ``storage_uri``)
    to ``path``; return ``path``.

    Raises:
        NotFound: no such InferenceService.
    """
    from tasks import kube

    isvc = kube.get(kube.connect(), ISVC_API, "InferenceService", name, namespace)
    Path(path).write_text(yaml.safe_dump(candidate_manifest(isvc, storage_uri), sort_keys=False))
    return path
