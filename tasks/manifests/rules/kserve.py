"""KServe rules: guessed field names, canary settings the deployment mode ignores, storage URIs, formats.

Sources: KServe v0.20.0 CRD ``serving.kserve.io_inferenceservices.yaml`` (the real field names),
pkg/apis/serving/v1beta1/inference_service_validation.go (storage URI prefixes, deployment modes),
python/storage/kserve_storage/kserve_storage.py (``Storage.download``: the schemes the storage initializer
reads) and pkg/credentials/s3/s3_secret.go (the S3 annotations KServe reads).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator
from typing import Any

from tasks.manifests.findings import Rule, Severity
from tasks.manifests.paths import child, get, mapping, sequence
from tasks.manifests.rules.base import (
    CLUSTER_SERVING_RUNTIME,
    ISVC,
    LOCAL_MODEL_CACHE,
    SECRET,
    SERVICE_ACCOUNT,
    SERVING_RUNTIME,
    TRAINED_MODEL,
    Hit,
    Manifest,
    rule,
)

_AUTOSCALING = (
    "spec.predictor.minReplicas / maxReplicas / scaleTarget / scaleMetric "
    "(or spec.predictor.autoScaling for KEDA metrics, capital S)"
)
_CACHE = "a cluster-scoped LocalModelCache whose spec.sourceModelUri equals the storageUri"
_INIT = "a ClusterStorageContainer, or the storageInitializer section of the inferenceservice-config ConfigMap"
_ROUTE = (
    "spec.predictor.canaryTrafficPercent (Serverless), spec.canary[] (v0.20), or a Gateway API HTTPRoute "
    "with weighted backendRefs"
)
# (parent path, wrong key) -> the field that does exist.
WRONG_FIELDS: dict[tuple[str, str], str] = {
    ("spec", "modelUri"): "spec.predictor.model.storageUri",
    ("spec.predictor", "modelUri"): "spec.predictor.model.storageUri",
    ("spec.predictor", "storageUri"): "spec.predictor.model.storageUri",
    ("spec.predictor.model", "modelUri"): "spec.predictor.model.storageUri",
    ("spec.predictor.model", "uri"): "spec.predictor.model.storageUri",
    ("spec.predictor.model", "format"): "spec.predictor.model.modelFormat.name",
    ("spec", "autoscaling"): _AUTOSCALING,
    ("spec.predictor", "autoscaling"): _AUTOSCALING,
    ("spec", "replicas"): "spec.predictor.minReplicas / maxReplicas",
    ("spec.predictor", "replicas"): "spec.predictor.minReplicas / maxReplicas",
    ("spec", "cache"): _CACHE,
    ("spec.predictor", "cache"): _CACHE,
    ("spec.predictor.model", "cache"): _CACHE,
    ("spec", "storageInitializer"): _INIT,
    ("spec.predictor", "storageInitializer"): _INIT,
    ("spec", "route"): _ROUTE,
    ("spec.predictor", "route"): _ROUTE,
    ("spec", "traffic"): _ROUTE,
    ("spec", "serviceAccountName"): "spec.predictor.serviceAccountName",
}


@rule(Rule.KSERVE_FIELD, ISVC)
def nonexistent_field(manifest: Manifest) -> Iterator[Hit]:
    """Fields people guess for an InferenceService that KServe does not have, with the field that exists.

    Source: KServe v0.20.0 InferenceService CRD (spec.predictor has ``model.storageUri``, ``minReplicas``,
    ``maxReplicas``, ``scaleTarget``, ``scaleMetric``, ``autoScaling``, ``serviceAccountName``; no
    ``modelUri``, ``autoscaling``, ``cache``, ``storageInitializer`` or ``route``).
    """
    for (parent, key), instead in WRONG_FIELDS.items():
        holder = get(manifest.doc, *parent.split("."))
        if isinstance(holder, dict) and key in holder:
            yield Hit(
                Severity.error,
                child(parent, key),
                f"InferenceService has no field {parent}.{key}",
                f"use {instead}",
            )


FRAMEWORKS = (
    "sklearn", "xgboost", "lightgbm", "tensorflow", "pytorch", "onnx", "triton", "pmml", "paddle",
    "huggingface",
)  # fmt: skip


@rule(Rule.KSERVE_LEGACY_FRAMEWORK, ISVC)
def legacy_framework(manifest: Manifest) -> Iterator[Hit]:
    """``predictor.<framework>.storageUri`` is legal but the old style; ``predictor.model`` is current.

    Source: KServe docs "Model Serving Runtimes" (the ``model`` spec with ``modelFormat`` selects a
    ServingRuntime; framework-specific predictors are kept for compatibility).
    """
    predictor = mapping(manifest.spec.get("predictor"))
    for framework in FRAMEWORKS:
        spec = predictor.get(framework)
        if isinstance(spec, dict) and "storageUri" in spec:
            yield Hit(
                Severity.info,
                f"spec.predictor.{framework}",
                f"predictor.{framework} is the old framework-specific form",
                f"predictor.model: {{modelFormat: {{name: {framework}}}, storageUri: {spec['storageUri']}}}",
            )


@rule(Rule.KSERVE_MODEL_FORMAT, ISVC)
def model_format_missing(manifest: Manifest) -> Iterator[Hit]:
    """``predictor.model`` needs ``modelFormat.name`` so a ServingRuntime can be selected.

    Source: KServe pkg/apis/serving/v1beta1/predictor_model.go (``GetSupportingRuntimes`` matches on
    ``ModelFormat.Name``) and the webhook error "modelFormat must be specified".
    """
    predictors = [("spec.predictor", manifest.spec.get("predictor"))]
    predictors += [
        (f"spec.canary[{i}].predictor", mapping(c).get("predictor"))
        for i, c in enumerate(sequence(manifest.spec.get("canary")))
    ]
    for path, predictor in predictors:
        model = mapping(predictor).get("model")
        if isinstance(model, dict) and not mapping(model.get("modelFormat")).get("name"):
            yield Hit(
                Severity.error,
                f"{path}.model.modelFormat",
                "predictor.model has no modelFormat.name, so no ServingRuntime can be chosen",
                "add `modelFormat: {name: sklearn}` under it, naming the model's framework (sklearn, xgboost, "
                "onnx, ...)",
            )


RAW_MODES = ("RawDeployment", "Standard")
DEPLOYMENT_MODE_ANNOTATION = "serving.kserve.io/deploymentMode"


@rule(Rule.KSERVE_CANARY_IGNORED, ISVC)
def canary_ignored(manifest: Manifest) -> Iterator[Hit]:
    """``canaryTrafficPercent`` only splits traffic in Serverless (Knative) mode.

    Source: KServe docs "Canary rollout" (Serverless only) and pkg/controller/v1beta1/inferenceservice
    (raw-deployment reconcilers never read ``CanaryTrafficPercent`` before v0.20); v0.20.0's CRD adds
    ``spec.canary[]`` (``trafficPercent``, ``predictor``) for progressive delivery in Standard mode.
    """
    mode = manifest.annotations.get(DEPLOYMENT_MODE_ANNOTATION)
    percent = mapping(manifest.spec.get("predictor")).get("canaryTrafficPercent")
    if mode in RAW_MODES and percent is not None:
        yield Hit(
            Severity.error,
            "spec.predictor.canaryTrafficPercent",
            f"canaryTrafficPercent is ignored in {mode} mode: all traffic would go to the new model",
            "use spec.canary: [{trafficPercent: N, predictor: {...}}] (KServe v0.20), or two "
            "InferenceServices behind an HTTPRoute with weighted backendRefs, or Serverless mode",
        )


# Storage URI forms KServe accepts: the webhook's prefixes plus what kserve_storage.Storage.download reads
# (gs, s3, hdfs, webhdfs, hf, http(s) incl. Azure blob/file and git, file://, /mnt/models); pvc:// is mounted
# by the controller and oci:// served by the modelcar sidecar.
SUPPORTED_PREFIXES = (
    "s3://", "gs://", "pvc://", "oci://", "hf://", "https://", "http://", "hdfs://", "webhdfs://", "file://",
    "/mnt/models",
)  # fmt: skip
SCHEME_FIXES: dict[str, str] = {
    "s3a": "s3://<bucket>/<path>",
    "s3n": "s3://<bucket>/<path>",
    "gcs": "gs://<bucket>/<path>",
    "gcp": "gs://<bucket>/<path>",
    "azure": "https://<account>.blob.core.windows.net/<container>/<path>",
    "wasb": "https://<account>.blob.core.windows.net/<container>/<path>",
    "wasbs": "https://<account>.blob.core.windows.net/<container>/<path>",
    "abfs": "https://<account>.blob.core.windows.net/<container>/<path>",
    "abfss": "https://<account>.blob.core.windows.net/<container>/<path>",
    "minio": "s3://<bucket>/<path> with the serving.kserve.io/s3-endpoint annotation",
    "huggingface": "hf://<org>/<model>",
    "docker": "oci://<registry>/<image>:<tag>",
}
_URI_KEYS = {"storageUri", "sourceModelUri"}
_MISTYPED_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9]*)(?::/?|//|:/{3,})(?!/)(.+)$")  # s3//b, s3:/b, s3:b, s3:///b


def _retyped(uri: str) -> str | None:
    """Return ``uri`` with a mistyped scheme separator repaired (``s3//b/m`` -> ``s3://b/m``), or None."""
    match = _MISTYPED_SCHEME.match(uri)
    if not match:
        return None
    scheme, rest = match.group(1).lower(), match.group(2)
    if f"{scheme}://" in SUPPORTED_PREFIXES:
        return f"{scheme}://{rest}"
    fixed = SCHEME_FIXES.get(scheme, "")
    return fixed.split("://", 1)[0] + "://" + rest if fixed.startswith(("s3://", "gs://", "hf://")) else None


def _uris(node: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        for key, value in node.items():
            here = child(path, key)
            if key in _URI_KEYS and isinstance(value, str):
                yield here, value
            elif key == "storageUris":
                for i, item in enumerate(sequence(value)):
                    uri = mapping(item).get("uri")
                    if isinstance(uri, str):
                        yield f"{here}[{i}].uri", uri
            else:
                yield from _uris(value, here)
    elif isinstance(node, list):
        for i, item in enumerate(node):
            yield from _uris(item, f"{path}[{i}]")


@rule(Rule.KSERVE_URI_SCHEME, ISVC, LOCAL_MODEL_CACHE, TRAINED_MODEL)
def storage_uri_scheme(manifest: Manifest) -> Iterator[Hit]:
    """Storage URIs must use a scheme the storage initializer (or the controller) can read.

    Source: kserve-storage 0.20.0 ``kserve_storage.Storage.download`` (gs://, s3://, hdfs://, webhdfs://,
    hf://, http(s):// incl. Azure ``https://<account>.blob.core.windows.net``, file://, /mnt/models) and the
    KServe webhook's ``SupportedStorageURIPrefixList`` (adds pvc:// and oci://); anything else fails with
    "Cannot recognize storage type".
    """
    for path, uri in _uris(manifest.spec, "spec"):
        if uri.startswith(SUPPORTED_PREFIXES) or "{{" in uri:
            continue
        scheme = uri.split("://", 1)[0].lower() if "://" in uri else ""
        retyped = _retyped(uri) if not scheme else None
        if retyped:
            yield Hit(Severity.error, path, f"{uri!r}: the scheme separator is mistyped (it must be '://'); "
                      "the storage initializer cannot read it", f"{path.rsplit('.', 1)[-1]}: {retyped}")
            continue
        fix = SCHEME_FIXES.get(scheme)
        if fix is None:
            fix = "pvc://<claim>/<path>" if not scheme else "one of " + ", ".join(SUPPORTED_PREFIXES[:8])
        yield Hit(
            Severity.error,
            path,
            f"{uri!r}: the storage initializer cannot read "
            + (f"the {scheme}:// scheme" if scheme else "a URI without a scheme"),
            f"write it as {fix}",
        )


@rule(Rule.KSERVE_RUNTIME_FORMATS, SERVING_RUNTIME, CLUSTER_SERVING_RUNTIME)
def runtime_formats(manifest: Manifest) -> Iterator[Hit]:
    """A ServingRuntime without ``supportedModelFormats`` is never chosen for a model.

    Source: KServe pkg/apis/serving/v1beta1/predictor_model.go (``GetSupportingRuntimes`` filters runtimes on
    ``SupportedModelFormats``; an explicit ``runtime:`` is also rejected when the format is not listed).
    """
    if not sequence(manifest.spec.get("supportedModelFormats")):
        yield Hit(
            Severity.warning,
            "spec.supportedModelFormats",
            "the runtime lists no supportedModelFormats, so no InferenceService can use it",
            "supportedModelFormats: [{name: sklearn, version: '1', autoSelect: true}]",
        )


S3_ANNOTATIONS = frozenset(
    f"serving.kserve.io/s3-{suffix}"
    for suffix in (
        "endpoint", "region", "verifyssl", "usehttps", "usevirtualbucket", "useaccelerate",
        "useanoncredential", "cabundle-configmap", "cabundle",
    )
)  # fmt: skip
_S3_PREFIX = re.compile(r"^serving\.kserve\.io/s3[-_]")


@rule(Rule.KSERVE_S3_ANNOTATION, SECRET, SERVICE_ACCOUNT)
def s3_annotation(manifest: Manifest) -> Iterator[Hit]:
    """``serving.kserve.io/s3-*`` annotations KServe does not read are silently ignored.

    Source: KServe pkg/credentials/s3/s3_secret.go (``InferenceServiceS3*Annotation``: s3-endpoint,
    s3-region, s3-verifyssl, s3-usehttps, s3-usevirtualbucket, s3-useaccelerate, s3-useanoncredential,
    s3-cabundle-configmap, s3-cabundle).
    """
    for key in manifest.annotations:
        if _S3_PREFIX.match(key) and key not in S3_ANNOTATIONS:
            close = difflib.get_close_matches(key, sorted(S3_ANNOTATIONS), n=1, cutoff=0.6)
            yield Hit(
                Severity.warning,
                f"metadata.annotations.{key}",
                f"KServe never reads the annotation {key!r}",
                f"use {close[0]!r}" if close else f"use one of {', '.join(sorted(S3_ANNOTATIONS))}",
            )
