"""The InferenceService as a rollout reads it: where it is, its deployment mode, its model URI and the
traffic split its status reports (KServe ``serving.kserve.io/v1beta1``)."""

from __future__ import annotations

import json
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


KSERVE_CONFIG = "inferenceservice-config"


def propagated_record_keys(config_data: dict[str, str], keys: list[str]) -> list[str]:
    """Which of ``keys`` KServe would copy from the InferenceService into its predictor's Pod template.

    KServe v0.20.0 copies every InferenceService annotation into the predictor's Deployment Pod template (Standard
    mode) or Knative revision template (Serverless), the stable and the ``spec.canary[]`` ones alike
    (``buildPredictorResources`` in ``pkg/controller/v1beta1/inferenceservice/components/predictor.go``), except
    the keys listed in ``inferenceService.serviceAnnotationDisallowedList`` of ``inferenceservice-config``
    (exact keys, added to KServe's built-in list; ``pkg/apis/serving/v1beta1/configmap.go``). A record key that
    is copied changes the Pod template at every record write (each look, each lease renewal): the Deployment
    rolls its Pods each time and the canary never stays up.

    Args:
        config_data: the ConfigMap's ``data``.
        keys: annotation keys kaiops writes (:func:`tasks.rollout.state.record_annotation_keys`).

    Raises:
        ValueError: ``inferenceService`` is not JSON.
    """
    raw = config_data.get("inferenceService") or "{}"
    try:
        disallowed = set((json.loads(raw) or {}).get("serviceAnnotationDisallowedList") or [])
    except json.JSONDecodeError as exc:
        raise ValueError(f"inferenceService is not JSON: {exc}") from exc
    return [k for k in keys if k not in disallowed]


def check_record_not_propagated(dyn: DynamicClient, kserve_namespace: str = "kserve") -> None:
    """Refuse a rollout when KServe would copy kaiops's record annotations into the predictor Pods
    (:func:`propagated_record_keys`). No ``inferenceservice-config`` in ``kserve_namespace`` (no KServe
    manager reads one there): nothing to check.

    Raises:
        InputError: naming the ConfigMap, the field, the keys missing and the fix.
    """
    from tasks.errors import InputError
    from tasks.rollout.state import record_annotation_keys

    try:
        cm = kube.get(dyn, "v1", "ConfigMap", KSERVE_CONFIG, kserve_namespace)
    except kube.NotFound:
        return
    where = f"ConfigMap {kserve_namespace}/{KSERVE_CONFIG}"
    try:
        missing = propagated_record_keys(cm.get("data") or {}, record_annotation_keys())
    except ValueError as exc:
        raise InputError(where, "data.inferenceService", str(exc), "fix the JSON") from exc
    if missing:
        raise InputError(
            where, "data.inferenceService.serviceAnnotationDisallowedList",
            f"lacks {len(missing)} rollout.kaiops.io/* keys ({', '.join(missing[:3])}, ...): KServe copies "
            "InferenceService annotations into the predictor Pod template, so every rollout record write would "
            "restart the predictor and canary Pods",
            f"add these keys to the list: {json.dumps(record_annotation_keys())}")
