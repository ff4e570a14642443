"""Which schema validates which ``apiVersion``/``kind``: the pinned CRDs and Kubernetes' OpenAPI v3 documents.

CRDs come from :func:`tasks.crds.load_crds` (KubeRay v1.6.2 by default or another pinned release chosen
with :func:`tasks.crds.select_release`, KServe v0.20.0, Gateway API v1.4.1); core kinds
from :func:`tasks.crds.ensure_openapi` (``k8s.io/kubernetes`` v1.35.4, ``api/openapi-spec/v3``). Everything is
loaded and translated once per process (``functools.cache``); validators are built once per kind.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from functools import cache
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from tasks.crds import ensure_openapi, load_crds, selection_key
from tasks.manifests.structural import CORE_URI, ref_to, translate

OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"

_PROTOCOLS = ("TCP", "UDP", "SCTP")
# Enums the apiserver enforces in Go validation but the published OpenAPI v3 documents do not list.
# Source: kubernetes pkg/apis/core/validation/validation.go (supportedPortProtocols, supportedPullPolicies,
# supportedServiceType, validateRestartPolicy, validateDNSPolicy, supportedServiceIPFamilyPolicy) and
# pkg/apis/rbac/validation/validation.go (ValidateRoleBindingSubject, roleRef kinds).
CORE_ENUMS: dict[tuple[str, str], tuple[str, ...]] = {
    ("io.k8s.api.core.v1.ContainerPort", "protocol"): _PROTOCOLS,
    ("io.k8s.api.core.v1.ServicePort", "protocol"): _PROTOCOLS,
    ("io.k8s.api.core.v1.Container", "imagePullPolicy"): ("Always", "Never", "IfNotPresent"),
    ("io.k8s.api.core.v1.ServiceSpec", "type"): ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName"),
    ("io.k8s.api.core.v1.ServiceSpec", "externalTrafficPolicy"): ("Cluster", "Local"),
    ("io.k8s.api.core.v1.ServiceSpec", "ipFamilyPolicy"): ("SingleStack", "PreferDualStack", "RequireDualStack"),
    ("io.k8s.api.core.v1.PodSpec", "restartPolicy"): ("Always", "OnFailure", "Never"),
    ("io.k8s.api.core.v1.PodSpec", "dnsPolicy"): ("ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"),
    ("io.k8s.api.rbac.v1.RoleRef", "kind"): ("Role", "ClusterRole"),
    ("io.k8s.api.rbac.v1.Subject", "kind"): ("User", "Group", "ServiceAccount"),
}


@dataclass(frozen=True)
class KindInfo:
    """What kaiops knows about one ``(group, kind)``.

    Attributes:
        group: API group (``""`` for core).
        kind: the kind.
        versions: served versions, preferred first.
        namespaced: whether objects live in a namespace.
    """

    group: str
    kind: str
    versions: tuple[str, ...]
    namespaced: bool


@cache
def core_schemas() -> dict[str, dict[str, Any]]:
    """Return every core OpenAPI schema by name, merged over the pinned documents, enums overlaid.

    Returns:
        ``{"io.k8s.api.core.v1.Secret": {...OpenAPI v3 schema...}, ...}``
    """
    schemas: dict[str, dict[str, Any]] = {}
    for path in ensure_openapi():
        schemas.update(json.loads(path.read_text())["components"]["schemas"])
    for (name, field), values in CORE_ENUMS.items():
        prop = schemas.get(name, {}).get("properties", {}).get(field)
        if prop is not None:
            prop["enum"] = list(values)
    return schemas


@cache
def _core_kinds() -> dict[tuple[str, str], dict[str, str]]:
    """Return ``{(group, kind): {version: schema name}}`` for the core documents."""
    kinds: dict[tuple[str, str], dict[str, str]] = {}
    for name, schema in core_schemas().items():
        gvks = schema.get("x-kubernetes-group-version-kind", [])
        if len(gvks) == 1 and "metadata" in schema.get("properties", {}):
            gvk = gvks[0]
            kinds.setdefault((gvk["group"], gvk["kind"]), {})[gvk["version"]] = name
    return kinds


# Core kinds that live outside namespaces (the ones kaiops users write; others default to namespaced).
_CLUSTER_SCOPED_CORE = {
    ("", "Namespace"),
    ("", "Node"),
    ("", "PersistentVolume"),
    ("rbac.authorization.k8s.io", "ClusterRole"),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
    ("scheduling.k8s.io", "PriorityClass"),
}


def kind_info(group: str, kind: str) -> KindInfo | None:
    """Return what is known about ``(group, kind)``, or None when no pinned schema covers it."""
    crd = load_crds().get((group, kind))
    if crd is not None:
        versions = [v for v in crd["spec"]["versions"] if v.get("served", True)]
        versions.sort(key=lambda v: not v.get("storage", False))
        return KindInfo(group, kind, tuple(v["name"] for v in versions), crd["spec"]["scope"] == "Namespaced")
    core = _core_kinds().get((group, kind))
    if core is not None:
        return KindInfo(group, kind, tuple(core), (group, kind) not in _CLUSTER_SCOPED_CORE)
    return None


@cache
def registry() -> Registry[Any]:
    """Return a referencing registry holding every translated core schema under :data:`CORE_URI`."""
    translated = {name: translate(schema) for name, schema in core_schemas().items()}
    resource = Resource.from_contents({"components": {"schemas": translated}}, default_specification=DRAFT202012)
    reg: Registry[Any] = Registry().with_resource(CORE_URI, resource)
    return reg


def validator(group: str, version: str, kind: str) -> Draft202012Validator | None:
    """Return a cached JSON Schema validator for one served ``group/version, kind``, or None if unknown.

    For CRDs the root ``metadata`` (``type: object`` in every CRD) is validated as the apiserver does, with
    the core ``ObjectMeta`` schema. Cached per release selection (:func:`tasks.crds.select_release`).
    """
    return _validator(group, version, kind, selection_key())


@cache
def _validator(group: str, version: str, kind: str,
               key: tuple[tuple[str, str], ...]) -> Draft202012Validator | None:
    crd = load_crds().get((group, kind))
    if crd is not None:
        served = [v for v in crd["spec"]["versions"] if v["name"] == version and v.get("served", True)]
        if not served:
            return None
        schema = translate(copy.deepcopy(served[0]["schema"]["openAPIV3Schema"]))
        schema.setdefault("properties", {})["metadata"] = ref_to(OBJECT_META)
        return Draft202012Validator(schema, registry=registry())
    name = _core_kinds().get((group, kind), {}).get(version)
    if name is None:
        return None
    return Draft202012Validator(ref_to(name), registry=registry())
