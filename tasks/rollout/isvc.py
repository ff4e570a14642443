"""The InferenceService as a rollout reads it: where it is, its deployment mode, its model URI and the
traffic split its status reports (KServe ``serving.kserve.io/v1beta1``)."""

from __future__ import annotations

from typing import Any

from kubernetes.dynamic import DynamicClient

from tasks import kube

ISVC_API, ISVC_KIND = "serving.kserve.io/v1beta1", "InferenceService"
MODE_ANNOTATION = "serving.kserve.io/deploymentMode"


def get_isvc(dyn: DynamicClient, namespace: str, name: str) -> dict[str, Any]:
    """Return the InferenceService. Raises :class:`tasks.kube.NotFound`."""
    return kube.get(dyn, ISVC_API, ISVC_KIND, name, namespace)


def deployment_mode(isvc: dict[str, Any]) -> str:
    """``Serverless`` or ``RawDeployment``, decided as KServe v0.20 decides it (``GetDeploymentMode`` in
    ``pkg/controller/v1beta1/inferenceservice/utils``): ``status.deploymentMode`` first (recorded at the first
    reconcile; a later annotation change does not switch modes), then annotation
    ``serving.kserve.io/deploymentMode``, else Serverless (the release's ``inferenceservice-config`` default).
    ``Standard`` is v0.20's name for RawDeployment, ``Knative`` for Serverless; KServe's defaulting webhook
    rewrites ``RawDeployment``/``Serverless`` to those and writes the annotation when the configured default is
    ``Standard``."""
    value = (isvc.get("status") or {}).get("deploymentMode") or \
        ((isvc.get("metadata") or {}).get("annotations") or {}).get(MODE_ANNOTATION, "Serverless")
    return "RawDeployment" if value in ("RawDeployment", "Standard") else "Serverless"


def storage_uri(isvc: dict[str, Any]) -> str:
    """``spec.predictor.model.storageUri`` ('' when absent)."""
    return str((((isvc.get("spec") or {}).get("predictor") or {}).get("model") or {}).get("storageUri", ""))


def predictor_status(isvc: dict[str, Any]) -> dict[str, Any]:
    """``status.components.predictor`` ({} when absent)."""
    return ((isvc.get("status") or {}).get("components") or {}).get("predictor") or {}


def traffic(isvc: dict[str, Any]) -> dict[str, int]:
    """Percent per revision name from ``status.components.predictor.traffic``."""
    out: dict[str, int] = {}
    for t in predictor_status(isvc).get("traffic") or []:
        out[t.get("revisionName", "")] = out.get(t.get("revisionName", ""), 0) + int(t.get("percent", 0) or 0)
    return out


def list_isvcs(dyn: DynamicClient, namespace: str | None = None) -> list[dict[str, Any]]:
    """Every InferenceService (all namespaces unless ``namespace``)."""
    return kube.list_objects(dyn, ISVC_API, ISVC_KIND, namespace)


ISVC_CRD = "inferenceservices.serving.kserve.io"


def crd_has_canary_list(crd: dict[str, Any]) -> bool:
    """True when an InferenceService CRD's ``v1beta1`` schema has ``spec.canary`` (KServe v0.20.0 added
    ``spec.canary[]``, ``CanarySpec`` in ``pkg/apis/serving/v1beta1/inference_service.go``). Older releases'
    schemas lack it, and the apiserver prunes a field the schema does not declare, so a ``spec.canary`` sent to
    them is dropped without an error."""
    for version in (crd.get("spec") or {}).get("versions") or []:
        if version.get("name") != "v1beta1":
            continue
        spec = ((((version.get("schema") or {}).get("openAPIV3Schema") or {}).get("properties") or {})
                .get("spec") or {})
        return "canary" in (spec.get("properties") or {})
    return False


def installed_canary_list(dyn: DynamicClient) -> bool:
    """Does the installed KServe release know ``spec.canary[]``? Read from the cluster's InferenceService CRD
    (:func:`crd_has_canary_list`). Raises :class:`tasks.kube.NotFound` when KServe's CRD is not installed."""
    return crd_has_canary_list(kube.get(dyn, "apiextensions.k8s.io/v1", "CustomResourceDefinition", ISVC_CRD))
