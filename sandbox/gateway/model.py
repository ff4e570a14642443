"""Pure Gateway API logic of the sandbox gateway (no processes, no API calls): unit-tested with plain dicts.

Rules follow the Gateway API v1.4 specification (``gateway.networking.k8s.io/v1``, ``apis/v1/httproute_types.go``
and ``gateway_types.go``): hostname matching with a leading wildcard label, match precedence within a
hostname (exact path, longest prefix, method, most header matches, then route age and name), ``weight``
default 1 with weight 0 never chosen, a rule whose backends are all invalid answering 500, and the
``Accepted``/``ResolvedRefs``/``Programmed`` conditions with the spec's reasons.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from typing import Any

CONTROLLER_NAME = "sandbox.kaiops.io/gateway-controller"
GROUP = "gateway.networking.k8s.io"


# ------------------------------------------------------------------------------------------- routing table

@dataclass(frozen=True)
class BackendRef:
    """One ``backendRefs[]`` entry resolved against Services: ``endpoints`` are ``(ip, port)`` of ready Pods."""

    namespace: str
    name: str
    port: int | None
    weight: int
    valid: bool  # a Service of that name exists and the ref is allowed (same namespace or a ReferenceGrant)
    reason: str = ""  # ResolvedRefs reason when not valid (BackendNotFound, RefNotPermitted, InvalidKind)
    endpoints: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True)
class Rule:
    """One ``rules[].matches[]`` entry of an HTTPRoute with its rule's filters, timeout and backends."""

    route: tuple[str, str]  # (namespace, name)
    created: str  # metadata.creationTimestamp (precedence tie-break)
    rule_index: int
    path_type: str  # Exact | PathPrefix | RegularExpression
    path: str
    headers: tuple[tuple[str, str, str], ...]  # (type, lower-case name, value)
    method: str | None
    set_headers: tuple[tuple[str, str], ...] = ()
    add_headers: tuple[tuple[str, str], ...] = ()
    remove_headers: tuple[str, ...] = ()
    timeout_s: float | None = None
    backends: tuple[BackendRef, ...] = ()

    def precedence(self) -> tuple:
        """Sort key, most specific first (Gateway API HTTPRouteRule precedence)."""
        return (0 if self.path_type == "Exact" else 1, -len(self.path), 0 if self.method else 1,
                -len(self.headers), self.created, self.route, self.rule_index)


@dataclass
class Table:
    """Hostname -> rules, built from every accepted HTTPRoute of the gateway's listeners."""

    by_host: dict[str, list[Rule]] = field(default_factory=dict)

    def rules_for(self, host: str) -> list[Rule]:
        """Rules of the most specific hostname matching ``host`` (exact, then ``*.suffix``, then any)."""
        host = host.split(":", 1)[0].lower().rstrip(".")
        if host in self.by_host:
            return self.by_host[host]
        labels = host.split(".")
        for i in range(1, len(labels)):
            wildcard = "*." + ".".join(labels[i:])
            if wildcard in self.by_host:
                return self.by_host[wildcard]
        return self.by_host.get("*", [])


def duration_s(value: str | None) -> float | None:
    """A Gateway API Duration (``1h2m3s4ms``; ``0s`` = no timeout) in seconds, None when unset."""
    if not value:
        return None
    total = 0.0
    for number, unit in re.findall(r"([0-9]+)(ms|h|m|s)", value):
        total += int(number) * {"h": 3600, "m": 60, "s": 1, "ms": 0.001}[unit]
    return total or None


def route_hosts(route: dict[str, Any], listener_hostname: str | None = None) -> list[str]:
    """The route's hostnames (lower case; ``*`` when it has none), intersected with a listener hostname."""
    hosts = [h.lower() for h in (route.get("spec") or {}).get("hostnames") or []] or ["*"]
    if listener_hostname:
        hosts = [h for h in hosts if h == "*" or hostname_matches(listener_hostname, h)
                 or hostname_matches(h, listener_hostname)]
    return hosts


def hostname_matches(pattern: str, host: str) -> bool:
    """``*.example.com`` matches one or more labels before ``example.com``; otherwise equality."""
    if pattern.startswith("*."):
        return host.endswith(pattern[1:]) and host != pattern[2:]
    return pattern == host


def rules_of(route: dict[str, Any], resolve: Any) -> list[Rule]:
    """Flatten an HTTPRoute into :class:`Rule` entries (one per match; a rule without matches = ``/`` prefix).

    Args:
        resolve: ``(namespace, backendRef dict) -> BackendRef``.
    """
    meta = route["metadata"]
    ns = meta.get("namespace", "default")
    out = []
    for i, rule in enumerate((route.get("spec") or {}).get("rules") or []):
        set_h: list[tuple[str, str]] = []
        add_h: list[tuple[str, str]] = []
        remove_h: list[str] = []
        for f in rule.get("filters") or []:
            if f.get("type") == "RequestHeaderModifier":
                mod = f.get("requestHeaderModifier") or {}
                set_h += [(h["name"], h["value"]) for h in mod.get("set") or []]
                add_h += [(h["name"], h["value"]) for h in mod.get("add") or []]
                remove_h += list(mod.get("remove") or [])
        backends = tuple(resolve(ns, ref) for ref in rule.get("backendRefs") or [])
        timeout = duration_s((rule.get("timeouts") or {}).get("request"))
        for m in rule.get("matches") or [{}]:
            path = m.get("path") or {}
            headers = tuple((h.get("type", "Exact"), h["name"].lower(), h["value"]) for h in m.get("headers") or [])
            out.append(Rule(route=(ns, meta["name"]), created=meta.get("creationTimestamp", ""), rule_index=i,
                            path_type=path.get("type", "PathPrefix"), path=path.get("value", "/"),
                            headers=headers, method=m.get("method"), set_headers=tuple(set_h),
                            add_headers=tuple(add_h), remove_headers=tuple(remove_h), timeout_s=timeout,
                            backends=backends))
    return out


def path_matches(rule: Rule, path: str) -> bool:
    """Exact, PathPrefix (element-wise: ``/v1`` matches ``/v1`` and ``/v1/x``, not ``/v10``) or RE2-like regex."""
    path = path.split("?", 1)[0]
    if rule.path_type == "Exact":
        return path == rule.path
    if rule.path_type == "RegularExpression":
        return re.fullmatch(rule.path, path) is not None
    prefix = rule.path.rstrip("/")
    return prefix == "" or path == prefix or path.startswith(prefix + "/")


def match(table: Table, host: str, path: str, method: str, headers: dict[str, str]) -> Rule | None:
    """The rule that handles a request, or None (the gateway answers 404)."""
    lower = {k.lower(): v for k, v in headers.items()}
    for rule in sorted(table.rules_for(host), key=Rule.precedence):
        if rule.method and rule.method != method:
            continue
        if not path_matches(rule, path):
            continue
        ok = True
        for kind, name, value in rule.headers:
            got = lower.get(name)
            if got is None or (kind == "RegularExpression" and not re.fullmatch(value, got)) or \
                    (kind != "RegularExpression" and got != value):
                ok = False
                break
        if ok:
            return rule
    return None


def choose(backends: tuple[BackendRef, ...], rng: random.Random) -> BackendRef | None:
    """A backend with probability ``weight / sum(weights)``; None when every weight is 0 or there are none.

    Invalid backends keep their share of the weight (the spec: requests that would go to an invalid backend
    get 500), so the caller answers 500 when the chosen one is invalid.
    """
    total = sum(max(b.weight, 0) for b in backends)
    if total <= 0:
        return None
    point = rng.uniform(0, total)
    acc = 0.0
    for b in backends:
        if b.weight <= 0:
            continue
        acc += b.weight
        if point <= acc:
            return b
    return [b for b in backends if b.weight > 0][-1]


def apply_header_filters(rule: Rule, headers: dict[str, str]) -> dict[str, str]:
    """RequestHeaderModifier: ``set`` replaces, ``add`` appends (comma-joined), ``remove`` drops (case-insensitive)."""
    out = {k: v for k, v in headers.items() if k.lower() not in {r.lower() for r in rule.remove_headers}}

    def put(name: str, value: str, append: bool) -> None:
        for k in list(out):
            if k.lower() == name.lower():
                old = out.pop(k)
                value = f"{old},{value}" if append else value
        out[name] = value

    for name, value in rule.set_headers:
        put(name, value, append=False)
    for name, value in rule.add_headers:
        put(name, value, append=True)
    return out


# ------------------------------------------------------------------------------------------------ status

def condition(type_: str, ok: bool, reason: str, message: str, generation: int, now: str,
              previous: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A metav1.Condition; ``lastTransitionTime`` kept from ``previous`` while the status does not change."""
    status = "True" if ok else "False"
    last = now
    for c in previous or []:
        if c.get("type") == type_ and c.get("status") == status:
            last = c.get("lastTransitionTime") or now
    return {"type": type_, "status": status, "reason": reason, "message": message,
            "observedGeneration": generation, "lastTransitionTime": last}


def parent_ref_matches(ref: dict[str, Any], route_ns: str, gateway: dict[str, Any]) -> bool:
    """True when a route's ``parentRefs[]`` entry names ``gateway`` (group/kind default to the Gateway)."""
    meta = gateway["metadata"]
    return (ref.get("group", GROUP) == GROUP and ref.get("kind", "Gateway") == "Gateway"
            and ref.get("name") == meta["name"] and ref.get("namespace", route_ns) == meta["namespace"])


def listener_allows(listener: dict[str, Any], route_ns: str, gateway_ns: str,
                    namespace_labels: dict[str, str] | None = None) -> bool:
    """``allowedRoutes.namespaces.from``: Same (default), All, or Selector (matchLabels only)."""
    spec = ((listener.get("allowedRoutes") or {}).get("namespaces") or {})
    frm = spec.get("from", "Same")
    if frm == "All":
        return True
    if frm == "Selector":
        wanted = ((spec.get("selector") or {}).get("matchLabels") or {})
        return all((namespace_labels or {}).get(k) == v for k, v in wanted.items())
    return route_ns == gateway_ns


def route_parent_status(route: dict[str, Any], ref: dict[str, Any], accepted: bool, accepted_reason: str,
                        backends: list[BackendRef], now: str) -> dict[str, Any]:
    """One ``status.parents[]`` entry for a route on one of our Gateways."""
    gen = route["metadata"].get("generation", 0)
    previous = next((p.get("conditions") for p in (route.get("status") or {}).get("parents") or []
                     if p.get("controllerName") == CONTROLLER_NAME and p.get("parentRef") == ref), None)
    bad = [b for b in backends if not b.valid]
    resolved = condition("ResolvedRefs", not bad, bad[0].reason if bad else "ResolvedRefs",
                         f"backend {bad[0].namespace}/{bad[0].name}: {bad[0].reason}" if bad
                         else "all backend references resolved", gen, now, previous)
    acc = condition("Accepted", accepted, accepted_reason,
                    "accepted by the sandbox gateway" if accepted else f"not accepted: {accepted_reason}",
                    gen, now, previous)
    return {"parentRef": ref, "controllerName": CONTROLLER_NAME, "conditions": [acc, resolved]}


def merge_parents(existing: list[dict[str, Any]], ours: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Other controllers' ``status.parents`` entries kept, ours replaced."""
    return [p for p in existing if p.get("controllerName") != CONTROLLER_NAME] + ours


def gateway_status(gateway: dict[str, Any], attached: dict[str, int], address: str, now: str) -> dict[str, Any]:
    """``status`` of one of our Gateways: Accepted and Programmed, its address, per-listener attachedRoutes.

    Listeners of protocol other than HTTP are not Accepted (reason UnsupportedProtocol).
    """
    gen = gateway["metadata"].get("generation", 0)
    prev = gateway.get("status") or {}
    prev_listeners = {ls.get("name"): ls.get("conditions") for ls in prev.get("listeners") or []}
    listeners = []
    for ls in (gateway.get("spec") or {}).get("listeners") or []:
        ok = ls.get("protocol") == "HTTP"
        reason = "Accepted" if ok else "UnsupportedProtocol"
        pc = prev_listeners.get(ls["name"])
        listeners.append({
            "name": ls["name"],
            "supportedKinds": [{"group": GROUP, "kind": "HTTPRoute"}] if ok else [],
            "attachedRoutes": attached.get(ls["name"], 0),
            "conditions": [
                condition("Accepted", ok, reason, "listener accepted" if ok else "only HTTP is served", gen, now, pc),
                condition("Programmed", ok, "Programmed" if ok else "Invalid", "listener serving", gen, now, pc),
                condition("ResolvedRefs", True, "ResolvedRefs", "no references to resolve", gen, now, pc),
                condition("Conflicted", False, "NoConflicts", "no conflicts", gen, now, pc),
            ],
        })
    pcs = prev.get("conditions")
    return {"addresses": [{"type": "IPAddress", "value": address}],
            "conditions": [condition("Accepted", True, "Accepted", "accepted by the sandbox gateway", gen, now, pcs),
                           condition("Programmed", True, "Programmed", "serving on the sandbox gateway", gen, now,
                                     pcs)],
            "listeners": listeners}


def gateway_class_status(gc: dict[str, Any], now: str) -> dict[str, Any]:
    """``status`` of our GatewayClass: Accepted."""
    gen = gc["metadata"].get("generation", 0)
    return {"conditions": [condition("Accepted", True, "Accepted", "handled by the sandbox gateway", gen, now,
                                     (gc.get("status") or {}).get("conditions"))]}
