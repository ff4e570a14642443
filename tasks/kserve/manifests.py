"""The KServe objects kaiops writes and reads around model storage (pure: dicts in, dicts out).

Written: an InferenceService for a published model, the S3 Secret + ServiceAccount wiring its storage
initializer needs, a LocalModelCache and a LocalModelNodeGroup (serving.kserve.io/v1alpha1). Read: an
InferenceService's storage URI and kind, and a LocalModelCache's download status. LocalModelCache handling copies
KServe v0.20's localmodel controller: download Jobs run in ``kserve-localmodel-jobs`` (``localModel.jobNamespace``)
with the cache's ``spec.serviceAccountName`` from that namespace; node status values are ``NodeDownloadPending``,
``NodeDownloading``, ``NodeDownloaded``, ``NodeDownloadError`` and ``copies`` is ``{total, available, failed}``.

Not here: the canary rollout's reads and writes of an InferenceService (``tasks/rollout/``).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

from tasks.kserve.credentials import StorageKind

LOCALMODEL_JOB_NAMESPACE = "kserve-localmodel-jobs"  # KServe localModel.jobNamespace default


def storage_uri_of(isvc: dict[str, Any]) -> str:
    """``spec.predictor.model.storageUri``, else the legacy ``spec.predictor.<framework>.storageUri``."""
    predictor = (isvc.get("spec") or {}).get("predictor") or {}
    model = predictor.get("model") or {}
    if model.get("storageUri"):
        return str(model["storageUri"])
    for value in predictor.values():
        if isinstance(value, dict) and value.get("storageUri"):
            return str(value["storageUri"])
    return ""


def uri_kind(uri: str) -> StorageKind:
    """The storage kind of a URI (``s3://`` -> S3, ``gs://`` -> GCS, else OTHER; empty -> NONE)."""
    if not uri:
        return StorageKind.NONE
    scheme = urlparse(uri).scheme
    return {"s3": StorageKind.S3, "gs": StorageKind.GCS}.get(scheme, StorageKind.OTHER)


def local_model_cache_manifest(name: str, storage_uri: str, model_bytes: int, node_groups: list[str],
                               service_account: str | None) -> dict[str, Any]:
    """A LocalModelCache (cluster-scoped, serving.kserve.io/v1alpha1) for ``storage_uri``; ``modelSize`` is the
    published size rounded up to whole MiB (at least 1Mi)."""
    spec: dict[str, Any] = {"sourceModelUri": storage_uri, "modelSize": f"{max(1, -(-model_bytes // (1 << 20)))}Mi",
                            "nodeGroups": node_groups}
    if service_account:
        spec["serviceAccountName"] = service_account
    return {"apiVersion": "serving.kserve.io/v1alpha1", "kind": "LocalModelCache", "metadata": {"name": name},
            "spec": spec}


def local_model_node_group_manifest(name: str = "sandbox") -> dict[str, Any]:
    """A LocalModelNodeGroup for the sandbox's one node (a hostPath-like local PV is not emulated)."""
    return {
        "apiVersion": "serving.kserve.io/v1alpha1", "kind": "LocalModelNodeGroup", "metadata": {"name": name},
        "spec": {
            "storageLimit": "10Gi",
            "persistentVolumeClaimSpec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests":
                                          {"storage": "10Gi"}}, "storageClassName": "local-storage"},
            "persistentVolumeSpec": {"accessModes": ["ReadWriteOnce"], "capacity": {"storage": "10Gi"},
                                     "local": {"path": "/models"}, "storageClassName": "local-storage",
                                     "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                                         {"key": "kubernetes.io/hostname", "operator": "In",
                                          "values": ["sandbox-node"]}]}]}}},
        },
    }


def cache_downloaded(obj: dict[str, Any]) -> bool:
    """True when every node copy of a LocalModelCache reports ``NodeDownloaded`` (and there is one)."""
    status = obj.get("status") or {}
    copies = status.get("copies") or {}
    nodes = status.get("nodeStatus") or {}
    return bool(nodes) and all(v == "NodeDownloaded" for v in nodes.values()) and \
        copies.get("available", 0) == copies.get("total", -1)


def cache_failed(obj: dict[str, Any]) -> bool:
    """True when any node copy of a LocalModelCache reports ``NodeDownloadError``."""
    return any(v == "NodeDownloadError" for v in ((obj.get("status") or {}).get("nodeStatus") or {}).values())


def s3_wiring_manifests(namespace: str, service_account: str, secret: str, *, endpoint_url: str,
                        access_key_id: str, secret_access_key: str, region: str | None = None) -> list[dict[str, Any]]:
    """A Secret (KServe's key names, ``serving.kserve.io/s3-*`` annotations derived from ``endpoint_url``) and a
    ServiceAccount listing it: the wiring an InferenceService's storage initializer needs for S3."""
    parsed = urlparse(endpoint_url)
    annotations = {"serving.kserve.io/s3-endpoint": parsed.netloc,
                   "serving.kserve.io/s3-usehttps": "1" if parsed.scheme == "https" else "0"}
    if region:
        annotations["serving.kserve.io/s3-region"] = region
    return [
        {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
         "metadata": {"name": secret, "namespace": namespace, "annotations": annotations},
         "stringData": {"AWS_ACCESS_KEY_ID": access_key_id, "AWS_SECRET_ACCESS_KEY": secret_access_key}},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": service_account, "namespace": namespace},
         "secrets": [{"name": secret}]},
    ]


def inference_service_manifest(name: str, namespace: str, storage_uri: str, service_account: str,
                               model_format: str = "sklearn") -> dict[str, Any]:
    """A minimal InferenceService (serving.kserve.io/v1beta1) for a published model."""
    return {"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"predictor": {"serviceAccountName": service_account,
                                   "model": {"modelFormat": {"name": model_format}, "storageUri": storage_uri}}}}
