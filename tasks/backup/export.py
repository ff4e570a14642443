"""Export: list the selected objects, leave out what an operator owns, strip what the server set, and
follow references to the ConfigMaps, ServiceAccounts and Secrets the custom resources need.

The pure parts (:func:`strip`, :func:`operator_owned`, :func:`references`) are small per-concern units
with their own tests; :func:`export` is the one function that reads the cluster.

Operator-owned objects are left out because the operator makes them again from their owner: the
RayClusters a RayJob/RayService creates, the Services/Pods/ServiceAccounts KubeRay makes for a RayCluster
(ownerReference to it, label ``app.kubernetes.io/created-by=kuberay-operator``), and everything KServe
makes through Knative (ownerReference to an InferenceService/InferenceGraph or a ``*.knative.dev`` owner).
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from kubernetes.client import ApiClient

from tasks.backup.discovery import NAMESPACE, Discovery, KindName, list_pages
from tasks.backup.listing import ListJob, stream_pages
from tasks.backup.scratch import is_scratch

# metadata fields the apiserver sets; restoring them is meaningless or refused.
SERVER_SET_METADATA = (
    "managedFields", "uid", "resourceVersion", "generation", "creationTimestamp", "selfLink",
    "deletionTimestamp", "deletionGracePeriodSeconds",
)
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
# Owners whose children the operator re-creates (KubeRay: ray-operator/controllers/ray/*; KServe:
# pkg/controller/v1beta1/inferenceservice reconcilers create Knative Services / Deployments owned by the ISVC).
OPERATOR_OWNER_KINDS = frozenset({"RayCluster", "RayJob", "RayService", "InferenceService", "InferenceGraph"})
OPERATOR_CREATED_BY = {"app.kubernetes.io/created-by": "kuberay-operator"}
# Cluster-generated objects that exist in every namespace.
GENERATED_NAMES = {KindName("", "ConfigMap"): {"kube-root-ca.crt"}}


def strip(obj: dict[str, Any], *, keep_status: bool = False) -> dict[str, Any]:
    """Return a copy of ``obj`` without server-set fields (and without ``status`` unless ``keep_status``).

    Removed: ``metadata.{managedFields, uid, resourceVersion, generation, creationTimestamp, selfLink,
    deletionTimestamp, deletionGracePeriodSeconds}``, the ``kubectl.kubernetes.io/last-applied-configuration``
    annotation (and ``annotations`` when it becomes empty). Velero strips the same set on restore
    (``pkg/restore/restore.go``, ``resetMetadata``).
    """
    # Copy what changes (top level, metadata, annotations) and share the rest: a deep copy of every listed
    # object cost more than the listing itself. Callers treat objects as read-only (restore copies before editing).
    out = dict(obj)
    meta = out["metadata"] = dict(out.get("metadata") or {})
    for key in SERVER_SET_METADATA:
        meta.pop(key, None)
    annotations = meta.get("annotations")
    if annotations is not None:
        annotations = meta["annotations"] = {k: v for k, v in annotations.items() if k != LAST_APPLIED}
        if not annotations:
            meta.pop("annotations")
    if not keep_status:
        out.pop("status", None)
    return out


def operator_owned(obj: dict[str, Any]) -> bool:
    """True when an operator made ``obj`` from another object (so a backup leaves it out)."""
    meta = obj.get("metadata") or {}
    for ref in meta.get("ownerReferences") or []:
        if ref.get("kind") in OPERATOR_OWNER_KINDS or str(ref.get("apiVersion", "")).split("/")[0].endswith(
            "knative.dev"
        ):
            return True
    labels = meta.get("labels") or {}
    return any(labels.get(k) == v for k, v in OPERATOR_CREATED_BY.items())


@dataclass(frozen=True)
class Ref:
    """A namespaced object another object needs: kind (``ConfigMap``/``ServiceAccount``/``Secret``), name."""

    kind: str
    name: str


def _walk(node: Any, visit: Callable[[str, Any], None]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            visit(key, value)
            _walk(value, visit)
    elif isinstance(node, list):
        for item in node:
            _walk(item, visit)


def pod_spec_references(spec: Any) -> set[Ref]:
    """References found anywhere in a spec that embeds pod specs (RayCluster head/worker templates, the
    InferenceService predictor/transformer/explainer, ServingRuntime containers, RayJob/RayService cluster
    specs): ``serviceAccountName``, ``configMap``/``configMapRef``/``configMapKeyRef`` (volumes, projected
    volumes, ``envFrom``, ``env.valueFrom``) and ``secret.secretName``/``secretRef``/``secretKeyRef``.
    """
    found: set[Ref] = set()

    def visit(key: str, value: Any) -> None:
        if key == "serviceAccountName" and isinstance(value, str) and value:
            found.add(Ref("ServiceAccount", value))
        elif key in ("configMap", "configMapRef", "configMapKeyRef") and isinstance(value, dict) and value.get("name"):
            found.add(Ref("ConfigMap", value["name"]))
        elif key == "secret" and isinstance(value, dict) and value.get("secretName"):
            found.add(Ref("Secret", value["secretName"]))
        elif key in ("secretRef", "secretKeyRef") and isinstance(value, dict) and value.get("name"):
            found.add(Ref("Secret", value["name"]))

    _walk(spec, visit)
    return found


def service_account_references(obj: dict[str, Any]) -> set[Ref]:
    """A ServiceAccount's ``secrets[]`` and ``imagePullSecrets[]`` (KServe reads S3/GCS credentials from the
    predictor ServiceAccount's Secrets: ``pkg/credentials/service_account_credentials.go``)."""
    names = [s.get("name") for s in (obj.get("secrets") or []) + (obj.get("imagePullSecrets") or [])]
    return {Ref("Secret", n) for n in names if n}


# Per-kind reference finders; a kind not listed uses the pod-spec walk over its spec.
REFERENCE_RULES: dict[str, Callable[[dict[str, Any]], set[Ref]]] = {
    "ServiceAccount": service_account_references,
    "ConfigMap": lambda obj: set(),
    "Secret": lambda obj: set(),
}


def references(obj: dict[str, Any]) -> set[Ref]:
    """The ConfigMaps, ServiceAccounts and Secrets ``obj`` refers to (same namespace)."""
    rule = REFERENCE_RULES.get(obj.get("kind", ""))
    return rule(obj) if rule else pod_spec_references(obj.get("spec"))


@dataclass
class Selection:
    """What to export.

    Attributes:
        namespaces: namespaces to read; empty means all.
        include_cluster_resources: export cluster-scoped kinds; None means only when ``namespaces`` is empty
            (Velero's default: a backup of some namespaces does not sweep up the whole cluster's objects).
        label_selector: Kubernetes label selector applied to the custom kinds (not to referenced objects).
        keep_status: keep ``status`` in the backup.
        include_secrets: include referenced Secrets (only when they will be encrypted).
        page_size: objects per list request.
        parallelism: concurrent list requests.
    """

    namespaces: list[str] = field(default_factory=list)
    include_cluster_resources: bool | None = None
    label_selector: str | None = None
    keep_status: bool = False
    include_secrets: bool = False
    page_size: int = 500
    parallelism: int = 8

    def cluster_scoped(self) -> bool:
        """Whether cluster-scoped kinds are exported (explicit setting, else only for all namespaces)."""
        if self.include_cluster_resources is not None:
            return self.include_cluster_resources
        return not self.namespaces


@dataclass
class Export:
    """The result of :func:`export`.

    Attributes:
        objects: stripped objects, custom kinds first, then referenced objects and namespaces.
        left_out: ``{"operator-owned": n, "secrets-not-encrypted": n, "drill-scratch": n, ...}`` (drill-scratch:
            objects in a restore drill's scratch namespace, :func:`tasks.backup.scratch.is_scratch`).
        warnings: human-readable notes (a referenced object that does not exist, ...).
    """

    objects: list[dict[str, Any]] = field(default_factory=list)
    left_out: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    warnings: list[str] = field(default_factory=list)


_GC_LOCK = threading.Lock()
_GC_STATE = {"pauses": 0, "was_enabled": False}


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while JSON pages are parsed.

    Parsed JSON holds no reference cycles, so the collector finds nothing there; but every few thousand new
    dicts it scans the whole heap (Prefect, the Kubernetes client, boto3...), and a full collection during
    a 5,000-object export measured 0.3-0.6 s. Reference counting still frees everything; the collector is
    re-enabled (if it was on) when the last pause ends. Nested and concurrent pauses are counted.
    """
    with _GC_LOCK:
        if _GC_STATE["pauses"] == 0:
            _GC_STATE["was_enabled"] = gc.isenabled()
            gc.disable()
        _GC_STATE["pauses"] += 1
    try:
        yield
    finally:
        with _GC_LOCK:
            _GC_STATE["pauses"] -= 1
            if _GC_STATE["pauses"] == 0 and _GC_STATE["was_enabled"]:
                gc.enable()


def export(api: ApiClient, discovery: Discovery, kinds: Iterable[KindName], selection: Selection) -> Export:
    """Read the selected objects of ``kinds`` plus the objects they reference, all in memory (small
    selections, tests and previews; a backup streams them with :class:`ExportStream`)."""
    stream = ExportStream(api, discovery, kinds, selection)
    objects = list(stream)
    return Export(objects=objects, left_out=stream.left_out, warnings=stream.warnings)


# A referenced kind is listed across all namespaces (one paged list) instead of once per namespace when more than
# this many namespaces need it: 500 namespaces' ConfigMaps are then one or two requests, not 500.
CLUSTER_WIDE_REFERENCE_LIST = 8


class ExportStream:
    """The selected objects of ``kinds`` and the objects they reference, yielded one at a time as their pages
    arrive (iterate once): custom kinds first (lists in parallel, paged with ``limit``/``continue``, at most a
    few pages in memory: :func:`tasks.backup.listing.stream_pages`), then the referenced ConfigMaps,
    ServiceAccounts and Secrets, then the namespaces that hold any of them.

    ``left_out`` and ``warnings`` (as in :class:`Export`) are complete once the iteration ends. What the
    stream keeps besides the pages in flight: the names of referenced objects per namespace and the namespace
    objects (small, bounded by the cluster's namespaces and references, not by its objects).

    Raises (while iterating):
        TemporaryError / PermanentError: from the list requests.
    """

    def __init__(self, api: ApiClient, discovery: Discovery, kinds: Iterable[KindName], selection: Selection) -> None:
        self.api, self.discovery, self.kinds, self.selection = api, discovery, list(kinds), selection
        self.left_out: dict[str, int] = defaultdict(int)
        self.warnings: list[str] = []

    def __iter__(self) -> Iterator[dict[str, Any]]:
        with gc_paused():
            yield from self._objects()

    def _jobs(self) -> list[ListJob]:
        sel = self.selection
        jobs: list[ListJob] = []
        for name in self.kinds:
            info = self.discovery.served.get(name)
            if info is None:
                continue
            if info.namespaced and sel.namespaces:
                jobs += [ListJob(info, ns, sel.label_selector) for ns in sel.namespaces]
            elif not info.namespaced and not sel.cluster_scoped():
                self.warnings.append(f"{info.kind}: cluster-scoped, left out of a backup of selected namespaces "
                                     "(set include_cluster_resources: true to include it)")
            else:
                jobs.append(ListJob(info, None, sel.label_selector))
        return jobs

    def _objects(self) -> Iterator[dict[str, Any]]:
        sel = self.selection
        ns_info = self.discovery.served[NAMESPACE]
        by_name = {n["metadata"]["name"]: n for n in list_pages(self.api, ns_info, limit=sel.page_size)}
        scratch = {name for name, ns in by_name.items() if is_scratch(ns)}  # restore drills' scratch namespaces
        wanted: dict[str, set[Ref]] = defaultdict(set)
        holding: set[str] = set()
        for _, page in stream_pages(self.api, self._jobs(), parallelism=sel.parallelism, limit=sel.page_size):
            for obj in page:
                ns = obj["metadata"].get("namespace")
                if ns in scratch:
                    self.left_out["drill-scratch"] += 1
                    continue
                if operator_owned(obj):
                    self.left_out["operator-owned"] += 1
                    continue
                yield strip(obj, keep_status=sel.keep_status)
                if ns:
                    holding.add(ns)
                    wanted[ns] |= references(obj)
        seen: set[tuple[str, str, str]] = set()
        for obj in self._referenced(wanted):
            key = (obj["kind"], obj["metadata"]["namespace"], obj["metadata"]["name"])
            if key not in seen:
                seen.add(key)
                holding.add(key[1])
                yield strip(obj)
        for name in sorted(holding):
            if name in by_name:
                yield strip(by_name[name])

    def _referenced(self, wanted: dict[str, set[Ref]]) -> Iterator[dict[str, Any]]:
        """Referenced objects (unstripped), following ServiceAccount -> Secret references one level; a kind
        needed in more than :data:`CLUSTER_WIDE_REFERENCE_LIST` namespaces is one list across all namespaces."""
        for round_ in range(2):  # round 0: ConfigMaps/ServiceAccounts/Secrets; round 1: Secrets of those SAs
            names: dict[tuple[str, str], set[str]] = defaultdict(set)  # (kind, namespace) -> names
            for ns, refs in sorted(wanted.items()):
                for kind in sorted({r.kind for r in refs}):
                    picked = {r.name for r in refs if r.kind == kind}
                    if kind == "Secret" and not self.selection.include_secrets:
                        self.left_out["secrets-not-encrypted"] += len(picked)
                        self.warnings.append(
                            f"Secret {', '.join(f'{ns}/{n}' for n in sorted(picked))} left out: no encryption key is "
                            "configured (the policy's encryption_key_env); a restore will lack it, so what uses it (an "
                            "InferenceService's storage credentials) will not become ready")
                        continue
                    names[(kind, ns)] |= picked
            jobs: list[ListJob] = []
            for kind in sorted({k for k, _ in names}):
                info = self.discovery.served[KindName("", kind)]
                spaces = sorted(ns for k, ns in names if k == kind)
                if len(spaces) > CLUSTER_WIDE_REFERENCE_LIST:
                    jobs.append(ListJob(info, None, None, kind))
                else:
                    jobs += [ListJob(info, ns, None, kind) for ns in spaces]
            found: set[tuple[str, str, str]] = set()
            next_wanted: dict[str, set[Ref]] = defaultdict(set)
            for job, page in stream_pages(self.api, jobs, parallelism=self.selection.parallelism,
                                          limit=self.selection.page_size):
                for obj in page:
                    ns, name = obj["metadata"].get("namespace") or "", obj["metadata"]["name"]
                    if name not in names.get((job.tag, ns), ()):
                        continue
                    found.add((job.tag, ns, name))
                    if operator_owned(obj) or name in GENERATED_NAMES.get(KindName("", job.tag), set()):
                        self.left_out["operator-owned"] += 1
                        continue
                    yield obj
                    if round_ == 0:
                        next_wanted[ns] |= {r for r in references(obj) if r.kind == "Secret"}
            for (kind, ns), picked in sorted(names.items()):
                for name in sorted(picked):
                    if (kind, ns, name) not in found:
                        self.warnings.append(f"{kind} {ns}/{name} is referenced but does not exist")
            wanted = next_wanted
            if not wanted:
                break
