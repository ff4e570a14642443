"""Pure logic of the sandbox gateway's Knative Ingress ("KIngress") support: no processes, no API calls.

The contract is ``networking.internal.knative.dev/v1alpha1`` Ingress of ``knative.dev/networking`` at the
revision ``knative.dev/serving`` v0.48.1 requires (v0.0.0-20260120131110-a7cdca238a0d):
``pkg/apis/networking/v1alpha1/ingress_types.go`` (the spec), ``ingress_defaults.go`` (visibility defaults to
``ExternalIP``; a path with one split and no percent gets 100), ``ingress_lifecycle.go`` (the living condition
set ``Ready`` <- ``NetworkConfigured`` + ``LoadBalancerReady``), ``pkg/ingress/ingress.go`` (``InsertProbe``:
every path is duplicated in front of itself, matching header ``K-Network-Hash: override`` and appending
``K-Network-Hash: <hash of the spec>``), and ``pkg/status/status.go`` (the prober's verdict on one answer).
What an implementation does beyond the types follows net-kourier (``pkg/generator/ingress_translator.go``,
``pkg/reconciler/ingress/ingress.go``): an Ingress is only programmed once every split's Service has ready
endpoints (until then its previous programming, if any, stays), ``ExternalIP`` rules are served by the public
listener and every rule by the cluster-local one, appended headers overwrite (Envoy
``OVERWRITE_IF_EXISTS_OR_ADD``), paths match as literal prefixes in their order, the first match wins.

:func:`translate` turns one Ingress (a dict as the API returns it) into :class:`Route` entries;
:func:`choose`, :func:`request_headers` and :func:`match` are the data plane's decisions; :func:`status`
is what the gateway writes back.
"""

from __future__ import annotations

import copy
import hashlib
import json
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

GROUP = "networking.internal.knative.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
PLURAL = "ingresses"
# knative.dev/networking pkg/apis/networking/register.go: IngressClassAnnotationKey, then the Alt key.
CLASS_ANNOTATIONS = ("networking.knative.dev/ingress.class", "networking.knative.dev/ingress-class")
INGRESS_CLASS = "gateway.sandbox.kaiops.io"
# pkg/http/header/header.go
HASH_HEADER = "K-Network-Hash"
HASH_OVERRIDE = "override"
PROBE_HEADER = "K-Network-Probe"
PROBE_VALUE = "probe"
PROBE_USER_AGENT = "Knative-Ingress-Probe"
PROBE_PATH = "/healthz"  # pkg/http/constants.go HealthCheckPath


class Visibility(StrEnum):
    """Who can reach a rule's hosts (``IngressVisibility``)."""

    EXTERNAL = "ExternalIP"  # the public listener and the cluster-local one
    CLUSTER_LOCAL = "ClusterLocal"  # only the cluster-local listener (``domainInternal`` of the private LB)


class Reason(StrEnum):
    """Condition reasons the gateway writes (upstream's own strings where upstream has one)."""

    UNINITIALIZED = "Uninitialized"  # LoadBalancerReady Unknown: probes not answered yet (MarkLoadBalancerNotReady)
    NOT_RECONCILED = "ReconcileIngressFailed"  # the spec cannot be programmed (net-kourier notReconciledReason)
    DOMAIN_CONFLICT = "DomainConflict"  # a host already served by an older Ingress (net-kourier conflictReason)


class SpecError(ValueError):
    """The Ingress spec cannot be programmed (e.g. a rule without ``http``); the message names the field."""


# ----------------------------------------------------------------------------------------------- routes

@dataclass(frozen=True)
class Split:
    """One ``splits[]`` entry: a Service port, its share in percent, headers appended when chosen."""

    namespace: str
    name: str
    port: int | str  # servicePort: the Service port's number or its name
    percent: int
    append_headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Route:
    """One path of one rule (after ``InsertProbe``): matched in order, first match wins."""

    ingress: tuple[str, str]  # (namespace, name)
    hosts: tuple[str, ...]  # lower case; ``("*",)`` when the rule names none
    visibility: Visibility
    prefix: str  # literal path prefix; "/" when unset
    headers: tuple[tuple[str, str], ...]  # (lower-case name, exact value), all must match
    splits: tuple[Split, ...]
    append_headers: tuple[tuple[str, str], ...] = ()
    rewrite_host: str = ""


def ingress_class(obj: Mapping[str, Any]) -> str:
    """The Ingress class named by the object's annotations (``ingress.class`` first, then ``ingress-class``),
    "" when none (``networking.GetIngressClass``)."""
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    return next((annotations[k] for k in CLASS_ANNOTATIONS if k in annotations), "")


def is_ours(obj: Mapping[str, Any], cls: str = INGRESS_CLASS) -> bool:
    """True when the Ingress names our class (exact match, as net-kourier's ``isKourierIngress``)."""
    return ingress_class(obj) == cls


def defaulted_spec(obj: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of ``spec`` with upstream's defaults (``ingress_defaults.go``): ``visibility`` ExternalIP,
    a path's only split at 100 percent when it gives none."""
    spec = copy.deepcopy(dict(obj.get("spec") or {}))
    for rule in spec.get("rules") or []:
        rule.setdefault("visibility", Visibility.EXTERNAL.value)
        for path in (rule.get("http") or {}).get("paths") or []:
            splits = path.get("splits") or []
            if len(splits) == 1 and not splits[0].get("percent"):
                splits[0]["percent"] = 100
    return spec


def spec_hash(obj: Mapping[str, Any]) -> str:
    """sha256 (hex) of the defaulted spec, the namespace and the name (``ingress.ComputeHash``'s inputs).

    Upstream hashes Go's ``json.Marshal`` of the typed spec; this hashes canonical JSON of the dict, so the
    value differs from a Go implementation's but changes exactly when the spec, namespace or name do. Only
    its echo through a backend is compared, so no reader depends on the exact bytes.
    """
    meta = obj.get("metadata") or {}
    raw = json.dumps(defaulted_spec(obj), sort_keys=True, separators=(",", ":"))
    raw += meta.get("namespace", "") + meta.get("name", "")
    return hashlib.sha256(raw.encode()).hexdigest()


def _headers(value: Any) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((str(k), str(v)) for k, v in (value or {}).items()))


def translate(obj: Mapping[str, Any]) -> tuple[list[Route], str]:
    """The routes of one Ingress and its hash, probe routes first (``InsertProbe``).

    Args:
        obj: an Ingress as the API returns it (``metadata``, ``spec``).

    Returns:
        ``(routes, hash)``: routes in the order they are matched (per rule: its probe copies, then its paths).

    Raises:
        SpecError: a rule without ``http`` (upstream's ``rule is missing HTTP block``), a split without
            ``serviceName``/``serviceNamespace``/``servicePort``, or a path not starting with ``/``.
    """
    meta = obj.get("metadata") or {}
    key = (meta.get("namespace", "default"), meta.get("name", ""))
    digest = spec_hash(obj)
    out: list[Route] = []
    for i, rule in enumerate(defaulted_spec(obj).get("rules") or []):
        where = f"spec.rules[{i}]"
        if not isinstance(rule.get("http"), dict):
            raise SpecError(f"{where}.http: rule is missing HTTP block")
        hosts = tuple(h.lower().rstrip(".") for h in rule.get("hosts") or []) or ("*",)
        try:
            visibility = Visibility(rule["visibility"])
        except ValueError as exc:
            raise SpecError(f"{where}.visibility: {rule['visibility']!r} is neither ExternalIP nor ClusterLocal"
                            ) from exc
        paths: list[Route] = []
        for j, path in enumerate(rule["http"].get("paths") or []):
            pwhere = f"{where}.http.paths[{j}]"
            prefix = path.get("path") or "/"
            if not prefix.startswith("/"):
                raise SpecError(f"{pwhere}.path: {prefix!r} must begin with '/'")
            splits = []
            for k, s in enumerate(path.get("splits") or []):
                missing = [f for f in ("serviceName", "serviceNamespace", "servicePort") if s.get(f) in (None, "")]
                if missing:
                    raise SpecError(f"{pwhere}.splits[{k}]: missing {', '.join(missing)}")
                splits.append(Split(s["serviceNamespace"], s["serviceName"], s["servicePort"],
                                    int(s.get("percent") or 0), _headers(s.get("appendHeaders"))))
            headers = tuple(sorted((str(n).lower(), str((m or {}).get("exact", "")))
                                   for n, m in (path.get("headers") or {}).items()))
            paths.append(Route(key, hosts, visibility, prefix, headers, tuple(splits),
                               _headers(path.get("appendHeaders")), path.get("rewriteHost") or ""))
        probes = [Route(r.ingress, r.hosts, r.visibility, r.prefix,
                        tuple(sorted({*r.headers, (HASH_HEADER.lower(), HASH_OVERRIDE)})), r.splits,
                        tuple(sorted({*(h for h in r.append_headers if h[0].lower() != HASH_HEADER.lower()),
                                      (HASH_HEADER, digest)})), r.rewrite_host)
                  for r in paths]
        out += probes + paths
    return out, digest


def services_of(routes: list[Route]) -> set[tuple[str, str]]:
    """Every (namespace, name) of a Service some split names."""
    return {(s.namespace, s.name) for r in routes for s in r.splits}


# ------------------------------------------------------------------------------------------------ tables

@dataclass
class Tables:
    """Host -> routes for the two listeners: ``public`` (ExternalIP rules) and ``local`` (every rule)."""

    public: dict[str, list[Route]] = field(default_factory=dict)
    local: dict[str, list[Route]] = field(default_factory=dict)

    def routes_for(self, host: str, cluster_local: bool, catch_all: bool = True) -> list[Route]:
        """Routes for a request's ``Host`` (port and trailing dot ignored): the exact host, else (unless
        ``catch_all`` is False) those of rules without hosts."""
        table = self.local if cluster_local else self.public
        host = host.rsplit(":", 1)[0] if not host.startswith("[") else host
        host = host.lower().rstrip(".")
        return table.get(host) or (table.get("*", []) if catch_all else [])


def build_tables(programmed: Mapping[tuple[str, str], list[Route]],
                 created: Mapping[tuple[str, str], str]) -> tuple[Tables, dict[tuple[str, str], str]]:
    """Merge the programmed Ingresses into :class:`Tables`; a host claimed by an older Ingress is refused.

    Args:
        programmed: (namespace, name) -> its routes (from :func:`translate`).
        created: (namespace, name) -> ``metadata.creationTimestamp`` (older wins a host, then the name).

    Returns:
        ``(tables, conflicts)``: conflicts maps a refused Ingress to the message naming the host and its owner
        (net-kourier refuses the whole Ingress with reason ``DomainConflict``).
    """
    owner: dict[str, tuple[str, str]] = {}
    conflicts: dict[tuple[str, str], str] = {}
    for key in sorted(programmed, key=lambda k: (created.get(k, ""), k)):
        hosts = {h for r in programmed[key] for h in r.hosts}
        taken = sorted(h for h in hosts if owner.get(h, key) != key)
        if taken:
            other = owner[taken[0]]
            conflicts[key] = f"host {taken[0]!r} is already served by Ingress {other[0]}/{other[1]}"
            continue
        for h in hosts:
            owner[h] = key
    tables = Tables()
    for key in sorted(programmed, key=lambda k: (created.get(k, ""), k)):
        if key in conflicts:
            continue
        for r in programmed[key]:
            for h in r.hosts:
                tables.local.setdefault(h, []).append(r)
                if r.visibility is Visibility.EXTERNAL:
                    tables.public.setdefault(h, []).append(r)
    return tables, conflicts


# ---------------------------------------------------------------------------------------------- requests

def match(routes: list[Route], path: str, headers: Mapping[str, str]) -> Route | None:
    """The first route whose prefix and exact header matches all hold (None: the gateway answers 404)."""
    path = path.split("?", 1)[0].split("#", 1)[0] or "/"
    lower = {k.lower(): v for k, v in headers.items()}
    for r in routes:
        if path.startswith(r.prefix) and all(lower.get(n) == v for n, v in r.headers):
            return r
    return None


def choose(splits: tuple[Split, ...], rng: random.Random) -> Split | None:
    """A split with probability ``percent / sum(percents)``; None when every percent is 0 or there are none."""
    total = sum(max(s.percent, 0) for s in splits)
    if total <= 0:
        return None
    point = rng.uniform(0, total)
    acc = 0.0
    live = [s for s in splits if s.percent > 0]
    for s in live:
        acc += s.percent
        if point <= acc:
            return s
    return live[-1]


def request_headers(route: Route, split: Split, headers: Mapping[str, str]) -> dict[str, str]:
    """The headers sent upstream: the split's, then the path's ``appendHeaders`` overwrite same-named ones
    (case-insensitive; Envoy applies the weighted cluster's headers before the route's), and ``rewriteHost``
    replaces ``Host``."""
    out = dict(headers)

    def put(name: str, value: str) -> None:
        for k in [k for k in out if k.lower() == name.lower()]:
            del out[k]
        out[name] = value

    for name, value in split.append_headers:
        put(name, value)
    for name, value in route.append_headers:
        put(name, value)
    if route.rewrite_host:
        put("Host", route.rewrite_host)
    return out


# ------------------------------------------------------------------------------------------------ probes

def probe_targets(routes: list[Route]) -> list[tuple[str, bool]]:
    """(host, cluster-local listener?) pairs to probe: each rule's hosts on the listener its visibility uses
    (net-kourier's ``getIngressUrls``); the catch-all host is probed as ``*``."""
    seen: dict[tuple[str, bool], None] = {}
    for r in routes:
        for h in r.hosts:
            seen[(h, r.visibility is Visibility.CLUSTER_LOCAL)] = None
    return list(seen)


def probe_verdict(code: int, echoed_hash: str | None, want: str) -> bool | None:
    """Upstream's ``probeVerifier``: True = this listener serves the Ingress at hash ``want``; False = try
    again (404/503, or another hash); None = no information but counted as success (any other status, or a
    200 without the hash header: "better Ready before it actually is than never")."""
    if code == 200:
        if not echoed_hash:
            return None
        return echoed_hash == want
    if code in (404, 503):
        return False
    return None


# ------------------------------------------------------------------------------------------------ status

def _condition(type_: str, status: str, reason: str, message: str, now: str,
               previous: list[dict[str, Any]]) -> dict[str, Any]:
    """A knative.dev/pkg ``apis.Condition``; ``lastTransitionTime`` kept while status/reason/message hold."""
    old = next((c for c in previous if c.get("type") == type_), None)
    last = now
    if old and old.get("status") == status and (old.get("reason") or "") == reason \
            and (old.get("message") or "") == message:
        last = old.get("lastTransitionTime") or now
    c: dict[str, Any] = {"type": type_, "status": status, "lastTransitionTime": last}
    if reason:
        c["reason"] = reason
    if message:
        c["message"] = message
    return c


def status(obj: Mapping[str, Any], *, configured: bool, ready: bool, now: str,
           public_domain: str, private_domain: str, failure: tuple[str, str] | None = None) -> dict[str, Any]:
    """The ``status`` the gateway writes for an Ingress of our class.

    Follows the living condition set of ``ingress_lifecycle.go`` and net-kourier's ``ReconcileKind``:
    ``NetworkConfigured`` True once programmed; ``LoadBalancerReady`` True with the load balancers'
    ``domainInternal`` once every probe answered for the current hash, else Unknown/``Uninitialized``;
    ``Ready`` True when both are, else it takes the first non-True one's status, reason and message.
    Conditions sorted by type (as ``apis.ConditionSet`` keeps them), ``observedGeneration`` = generation.

    Args:
        configured: the spec was translated (False: ``failure`` says why, NetworkConfigured stays Unknown).
        ready: every probe target answered (:func:`probe_verdict`) for the current hash.
        now: RFC 3339 time for conditions that change now.
        public_domain / private_domain: ``<svc>.<ns>.svc.cluster.local`` of the public and private Services.
        failure: ``(reason, message)`` marking LoadBalancerReady False (DomainConflict) or, with
            ``configured`` False, Ready Unknown (ReconcileIngressFailed).
    """
    prev = list(((obj.get("status") or {}).get("conditions")) or [])
    meta = obj.get("metadata") or {}
    out: dict[str, Any] = {"observedGeneration": meta.get("generation", 0)}
    if not configured:
        reason, message = failure or (Reason.NOT_RECONCILED.value, "not programmed")
        net = ("Unknown", "", "")
        lb = ("Unknown", "", "")
        top = ("Unknown", reason, message)
    else:
        net = ("True", "", "")
        if failure:
            lb = ("False", *failure)
        elif ready:
            lb = ("True", "", "")
        else:
            lb = ("Unknown", Reason.UNINITIALIZED.value, "Waiting for load balancer to be ready")
        top = lb
    conds = [_condition("LoadBalancerReady", *lb, now, prev), _condition("NetworkConfigured", *net, now, prev),
             _condition("Ready", *top, now, prev)]
    out["conditions"] = conds
    if configured and ready and not failure:
        out["publicLoadBalancer"] = {"ingress": [{"domainInternal": public_domain}]}
        out["privateLoadBalancer"] = {"ingress": [{"domainInternal": private_domain}]}
    else:
        old = obj.get("status") or {}
        for k in ("publicLoadBalancer", "privateLoadBalancer"):
            if k in old:
                out[k] = old[k]
    return out


def same_status(a: Mapping[str, Any] | None, b: Mapping[str, Any]) -> bool:
    """True when writing ``b`` over ``a`` would change nothing a reader sees (``lastTransitionTime`` aside)."""
    a = a or {}

    def strip(s: Mapping[str, Any]) -> Any:
        conds = sorted(({k: v for k, v in c.items() if k != "lastTransitionTime"} for c in s.get("conditions") or []),
                       key=lambda c: c.get("type", ""))
        return (s.get("observedGeneration"), conds, s.get("publicLoadBalancer"), s.get("privateLoadBalancer"))

    return bool(strip(a) == strip(b))


def endpoints_ready(route_list: list[Route],
                    ready: Callable[[str, str, int | str], bool]) -> tuple[bool, str]:
    """Whether every split's Service port has a ready endpoint (net-kourier only programs the Ingress then).

    Args:
        ready: ``(namespace, name, servicePort) -> bool``.

    Returns:
        ``(ok, first missing "ns/name:port")``.
    """
    for r in route_list:
        for s in r.splits:
            if not ready(s.namespace, s.name, s.port):
                return False, f"{s.namespace}/{s.name}:{s.port}"
    return True, ""
