"""Which of the kinds kaiops backs up this cluster serves, found by API discovery.

A kind whose CRD is not installed is *reported* (``Discovery.missing``), never an error: a cluster
without KServe still gets its RayClusters backed up.

Reads go straight to the REST paths (``/apis``, ``/apis/<group>/<version>``) through the kubernetes
client's ``ApiClient`` and JSON, without the dynamic client's object wrapping: listing thousands of
objects is then as fast as ``kubectl get -o json``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson
from kubernetes.client import ApiClient

from tasks.errors import PermanentError
from tasks.kube.errors import API_ERRORS, translate


@dataclass(frozen=True)
class KindName:
    """A kind as a user names it: API group (``""`` for core) and kind."""

    group: str
    kind: str

    def __str__(self) -> str:
        return f"{self.kind}.{self.group}" if self.group else self.kind


# The custom resources a backup covers (issue 7), in the order they are reported.
CUSTOM_KINDS: tuple[KindName, ...] = (
    KindName("ray.io", "RayCluster"),
    KindName("ray.io", "RayJob"),
    KindName("ray.io", "RayService"),
    KindName("serving.kserve.io", "InferenceService"),
    KindName("serving.kserve.io", "ServingRuntime"),
    KindName("serving.kserve.io", "ClusterServingRuntime"),
    KindName("serving.kserve.io", "InferenceGraph"),
    KindName("serving.kserve.io", "TrainedModel"),
    KindName("serving.kserve.io", "LocalModelCache"),
    KindName("gateway.networking.k8s.io", "HTTPRoute"),
)
# Core kinds backed up only when a custom resource references them (plus the namespaces themselves).
REFERENCED_KINDS: tuple[KindName, ...] = (
    KindName("", "ConfigMap"),
    KindName("", "ServiceAccount"),
    KindName("", "Secret"),
)
NAMESPACE = KindName("", "Namespace")


@dataclass(frozen=True)
class KindInfo:
    """A kind the cluster serves.

    Attributes:
        group: API group (``""`` for core).
        version: the preferred version (what ``kubectl get`` uses).
        kind: the kind.
        plural: the resource name in URLs (``rayclusters``).
        namespaced: True for namespaced kinds.
    """

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def name(self) -> KindName:
        return KindName(self.group, self.kind)

    def path(self, namespace: str | None = None, name: str | None = None) -> str:
        """The REST path of the collection (or of one object when ``name`` is given)."""
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        return f"{base}/{name}" if name else base


@dataclass
class Discovery:
    """What discovery found: the kinds served (by :class:`KindName`) and the wanted kinds that are not."""

    served: dict[KindName, KindInfo] = field(default_factory=dict)
    missing: list[KindName] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        served = {str(k): asdict(v) for k, v in self.served.items()}
        return {"served": served, "missing": [str(m) for m in self.missing]}


def widen_pool(api: ApiClient, size: int) -> None:
    """Let ``api`` keep ``size`` connections per host (the client's default is 5 x CPUs, so parallel lists
    beyond that would open and drop a TLS connection per request). Call before the first request."""
    kw = api.rest_client.pool_manager.connection_pool_kw
    kw["maxsize"] = max(int(kw.get("maxsize") or 1), size)


METADATA_ONLY = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"


def get_json(api: ApiClient, path: str, query: Iterable[tuple[str, Any]] = (),
             accept: str = "application/json") -> dict[str, Any]:
    """GET ``path`` on the apiserver and return the JSON body (``accept``: e.g. :data:`METADATA_ONLY`).

    Raises:
        TemporaryError / PermanentError / NotFound: as :func:`tasks.kube.translate` maps the failure (the HTTP
            status is in ``.status``).
    """
    try:
        resp = api.call_api(
            path, "GET", query_params=list(query), header_params={"Accept": accept},
            auth_settings=["BearerToken"], _preload_content=False, _return_http_data_only=True,
        )
    except API_ERRORS as exc:
        raise translate(exc, f"GET {path}") from exc
    body: dict[str, Any] = orjson.loads(resp.data)  # several times faster than json on 500-object pages
    return body


def list_pages(api: ApiClient, info: KindInfo, *, namespace: str | None = None, label_selector: str | None = None,
               limit: int = 500) -> Iterator[dict[str, Any]]:
    """Yield every object of ``info`` (in ``namespace`` or all), page by page (``limit``/``continue``).

    Each item gets ``apiVersion``/``kind`` filled in (list responses leave them out).
    """
    for page in list_page_chunks(api, info, namespace=namespace, label_selector=label_selector, limit=limit):
        yield from page


def list_page_chunks(api: ApiClient, info: KindInfo, *, namespace: str | None = None,
                     label_selector: str | None = None, limit: int = 500) -> Iterator[list[dict[str, Any]]]:
    """Yield the pages of the list of ``info`` (in ``namespace`` or all): each a list of at most ``limit``
    objects with ``apiVersion``/``kind`` filled in; the next page is requested only when the caller asks for it.

    Raises:
        TemporaryError / PermanentError: a list request failed (an expired ``continue`` token is 410: permanent).
    """
    token: str | None = None
    while True:
        query: list[tuple[str, Any]] = [("limit", limit)]
        if label_selector:
            query.append(("labelSelector", label_selector))
        if token:
            query.append(("continue", token))
        page = get_json(api, info.path(namespace), query)
        items = page.get("items") or []
        for item in items:
            item["apiVersion"], item["kind"] = info.api_version, info.kind
        yield items
        token = (page.get("metadata") or {}).get("continue")
        if not token:
            return


def discover(api: ApiClient, wanted: Iterable[KindName]) -> Discovery:
    """Find the preferred version, plural and scope of each wanted kind.

    Args:
        api: the kubernetes ``ApiClient`` (``kube.connect(...).client``).
        wanted: kinds to look for.

    Returns:
        :class:`Discovery`; kinds not served land in ``missing`` (not an error).
    """
    wanted = list(dict.fromkeys(wanted))
    groups = {g["name"]: g for g in get_json(api, "/apis").get("groups", [])}
    result = Discovery()
    resources: dict[str, list[dict[str, Any]]] = {}
    for name in wanted:
        if name.group:
            group = groups.get(name.group)
            if group is None:
                result.missing.append(name)
                continue
            # The preferred version first, then the others: a group's kinds may live in different versions
            # (serving.kserve.io: InferenceService in v1beta1, ServingRuntime only in v1alpha1).
            preferred = group["preferredVersion"]["version"]
            versions = [preferred] + [v["version"] for v in group["versions"] if v["version"] != preferred]
            candidates = [(v, f"/apis/{name.group}/{v}") for v in versions]
        else:
            candidates = [("v1", "/api/v1")]
        for version, path in candidates:
            if path not in resources:
                resources[path] = get_json(api, path).get("resources", [])
            match = next((r for r in resources[path] if r["kind"] == name.kind and "/" not in r["name"]), None)
            if match is not None:
                result.served[name] = KindInfo(name.group, version, name.kind, match["name"], bool(match["namespaced"]))
                break
        else:
            result.missing.append(name)
    return result


def crd_versions(api: ApiClient, infos: Iterable[KindInfo]) -> dict[str, dict[str, Any]]:
    """Return ``{"Kind.group": {"served": [...], "preferred": "v1", "annotations": {...}}}`` for the custom
    kinds in ``infos``: served and preferred versions from the group's discovery document, the CRD's
    bundle/controller-gen version annotations from its metadata only (``as=PartialObjectMetadata``: KServe's
    CRD bodies are megabytes, and a nightly backup must not spend its time parsing schemas).
    """
    out: dict[str, dict[str, Any]] = {}
    wanted = [i for i in infos if i.name in CUSTOM_KINDS]

    def fetch(info: KindInfo) -> tuple[dict[str, Any], dict[str, Any]] | None:
        try:
            group = get_json(api, f"/apis/{info.group}")
            meta = get_json(api, f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{info.plural}.{info.group}",
                            accept=METADATA_ONLY)
        except PermanentError:
            return None
        return group, meta

    with ThreadPoolExecutor(max_workers=4) as pool:
        fetched = list(pool.map(fetch, wanted))
    for info, got in zip(wanted, fetched, strict=True):
        if got is None:
            continue
        group, meta = got
        out[str(info.name)] = {
            "served": [v["version"] for v in group.get("versions") or []],
            "preferred": (group.get("preferredVersion") or {}).get("version"),
            "annotations": {k: v for k, v in ((meta.get("metadata") or {}).get("annotations") or {}).items()
                            if k.endswith("bundle-version") or k.endswith("controller-gen.kubebuilder.io/version")},
        }
    return out


def server_version(api: ApiClient) -> str:
    """The apiserver's ``gitVersion`` (``v1.35.4``)."""
    return str(get_json(api, "/version").get("gitVersion"))
