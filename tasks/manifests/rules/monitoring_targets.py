"""Rules for ServiceMonitors and PodMonitors against the Services and Pods the operators really create.

Source: the labels and port names in :mod:`tasks.monitoring.targets` (KubeRay v1.6.2, KServe v0.20.0, Knative
Serving v0.48.1, each with file and line), and how the Prometheus Operator v0.89.0 turns a monitor into
scrape configuration (pkg/prometheus/promcfg.go:1415-1476 PodMonitor, :1930-1990 ServiceMonitor: ``keep`` on the
selector's labels, then ``keep`` on the endpoint's port name). A selector that no object satisfies, or a port
name no selected object carries, produces a scrape job with no target: no error anywhere, no data, no alert.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from tasks.manifests.findings import Rule, Severity
from tasks.manifests.paths import child, mapping, sequence
from tasks.manifests.rules.base import Hit, Kind, Manifest, rule
from tasks.monitoring.selectors import Match, claims_operator_objects, port_allowed, rank, requirements
from tasks.monitoring.targets import ObjectKind, Target

SERVICE_MONITOR: Kind = ("monitoring.coreos.com", "ServiceMonitor")
POD_MONITOR: Kind = ("monitoring.coreos.com", "PodMonitor")

_KIND = {SERVICE_MONITOR[1]: ObjectKind.service, POD_MONITOR[1]: ObjectKind.pod}
_ENDPOINTS = {SERVICE_MONITOR[1]: "endpoints", POD_MONITOR[1]: "podMetricsEndpoints"}
_OTHER = {ObjectKind.service: ObjectKind.pod, ObjectKind.pod: ObjectKind.service}


def _selection(manifest: Manifest) -> tuple[ObjectKind, dict[str, Any], list[Match]] | None:
    """(object kind, selector, ranked targets) when the selector claims operator-made objects, else None."""
    kind = _KIND[manifest.kind]
    selector = mapping(manifest.spec.get("selector"))
    reqs = requirements(selector)
    if not reqs or not claims_operator_objects(reqs):
        return None
    return kind, selector, rank(reqs, kind)


def _show(labels: dict[str, str]) -> str:
    return "{" + ", ".join(f"{k}: {v}" for k, v in labels.items()) + "}"


@rule(Rule.MONITOR_SELECTS_NOTHING, SERVICE_MONITOR, POD_MONITOR)
def selects_nothing(manifest: Manifest) -> Iterator[Hit]:
    """The selector must be satisfiable by a Service (ServiceMonitor) or Pod (PodMonitor) an operator creates.

    Source: KubeRay v1.6.2 common/service.go:25-33 and common/pod.go:776-800, KServe v0.20.0
    components/predictor.go:500-512, Knative Serving v0.48.1 revision/resources/meta.go:49-63 and
    serverlessservice/resources/services.go:137-180 (the labels, as listed in tasks/monitoring/targets.py);
    prometheus-operator v0.89.0 pkg/prometheus/promcfg.go:1415-1440, :1930-1955 (the selector becomes ``keep``
    relabelings on those labels).
    """
    found = _selection(manifest)
    if not found:
        return
    kind, selector, ranked = found
    if any(m.matches for m in ranked):
        return
    given = {str(k): str(v) for k, v in mapping(selector.get("matchLabels")).items()}
    best = ranked[0]
    fix = f"matchLabels: {_show(best.target.suggested_selector(given))} ({best.target.what}, {best.target.operator})"
    other = [m for m in rank(requirements(selector), _OTHER[kind]) if m.matches]
    also = ""
    if other:
        monitor = "PodMonitor" if kind is ObjectKind.service else "ServiceMonitor"
        also = (f"; these labels are on the {other[0].target.what} ({other[0].target.kind}), which a "
                f"{manifest.kind} never selects")
        fix = f"use a {monitor} with this selector, or {fix}"
    yield Hit(
        Severity.error,
        "spec.selector",
        f"the selector matches no {kind} that {best.target.operator} or the other operators create: nearest is the "
        f"{best.target.what}, which {'; '.join(best.reasons)}{also}",
        fix,
    )


def _selected(manifest: Manifest) -> list[Target]:
    """The targets the selector matches, or the nearest one when it matches none (ports are checked there)."""
    found = _selection(manifest)
    if not found:
        return []
    _, _, ranked = found
    matched = [m.target for m in ranked if m.matches]
    return matched or [ranked[0].target]


def _endpoint_ports(manifest: Manifest) -> Iterator[tuple[str, str]]:
    key = _ENDPOINTS[manifest.kind]
    for i, endpoint in enumerate(sequence(manifest.spec.get(key))):
        port = mapping(endpoint).get("port")
        if isinstance(port, str) and port:
            yield child(child(f"spec.{key}", i), "port"), port


@rule(Rule.MONITOR_PORT_UNKNOWN, SERVICE_MONITOR, POD_MONITOR)
def port_unknown(manifest: Manifest) -> Iterator[Hit]:
    """Each endpoint ``port`` must be a port name the selected objects carry.

    Source: KubeRay v1.6.2 common/service.go:403-443 (head Service ports: the head container's or the
    defaults, plus ``metrics``) and common/pod.go:224-231, :446-453 (``metrics`` 8080 added to every Ray
    container); Knative Serving v0.48.1 revision/resources/queue.go:45-73 and pkg/apis/serving/v1/
    revision_helpers.go:41-47 (queue-proxy's http-autometric/http-usermetric); KServe v0.20.0
    reconcilers/service/service_reconciler.go:117-158; prometheus-operator v0.89.0 promcfg.go:1461, :1973
    (``keep`` on ``__meta_kubernetes_pod_container_port_name`` / ``__meta_kubernetes_endpoint_port_name``).
    """
    targets = _selected(manifest)
    if not targets:
        return
    ports = tuple(p for t in targets for p in t.ports)
    metrics = tuple(dict.fromkeys(p for t in targets for p in t.metrics_ports))
    for path, port in _endpoint_ports(manifest):
        if port_allowed(port, ports):
            continue
        where = ", ".join(t.what for t in targets)
        note = targets[0].port_note
        if metrics:
            yield Hit(Severity.error, path,
                      f"port {port!r} is not a port of the {where}; its metrics ports are {', '.join(metrics)}"
                      + (f" ({note})" if note else ""),
                      f"port: {metrics[0]}")
        else:
            yield Hit(Severity.warning, path,
                      f"port {port!r} is not a port the operator puts on the {where}; it exists only if your "
                      f"own template declares it", note or "name a port the selected objects declare")


@rule(Rule.MONITOR_PORT_NO_METRICS, SERVICE_MONITOR, POD_MONITOR)
def port_no_metrics(manifest: Manifest) -> Iterator[Hit]:
    """A port that exists but serves no Prometheus metrics (Ray's dashboard, Knative's public http port).

    Source: Ray exports metrics only on --metrics-export-port (KubeRay v1.6.2 common/pod.go:963-966 sets it to
    8080, the ``metrics`` port); Knative Serving v0.48.1 serverlessservice/resources/services.go:43-75 (the
    public Service carries only http/https), queue.go:66-73 (metrics on http-autometric, http-usermetric).
    """
    targets = _selected(manifest)
    if not targets:
        return
    ports = tuple(p for t in targets for p in t.ports)
    metrics = tuple(dict.fromkeys(p for t in targets for p in t.metrics_ports))
    for path, port in _endpoint_ports(manifest):
        if port_allowed(port, ports) and not port_allowed(port, metrics):
            yield Hit(Severity.warning, path,
                      f"port {port!r} exists but serves no Prometheus metrics"
                      + (f"; the metrics are on {', '.join(metrics)}" if metrics else f" ({targets[0].port_note})"),
                      f"port: {metrics[0]}" if metrics else targets[0].port_note)
