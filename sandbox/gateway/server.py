"""The sandbox gateway process: ``python -m sandbox.gateway --kubeconfig K --port P --metrics-port M
--local-port L --instance-dir D [--host-ip H]``.

One thread re-lists GatewayClasses, Gateways, HTTPRoutes, ReferenceGrants, Services and EndpointSlices every
second, rebuilds the routing table of :mod:`sandbox.gateway.model` and writes status where it changed; a
threaded HTTP server on ``127.0.0.1:P`` serves every HTTP listener of our Gateways (a listener's ``port`` is
not bound: one loopback port stands for all of them) and forwards each request to one ready endpoint
(``podIP:targetPort``) of the chosen backend Service, round-robin; ``127.0.0.1:M/metrics`` exports per-backend
request counts and latencies, ``/healthz`` answers once the first sync succeeded. Prometheus finds the metrics
port through ``<instance>/prometheus/targets/gateway.json`` (file-based discovery, atomic write).
Knative Ingresses (:mod:`sandbox.gateway.kingress_controller`) are synced in the same loop: their ExternalIP
hosts are served on ``P`` (before HTTPRoutes), every rule on the cluster-local listener ``127.0.0.1:L``; with
``--host-ip`` the Services Pods use to reach both are applied.

Metrics (Prometheus text format):
- ``gateway_backend_requests_total`` counter, labels ``gateway_namespace``, ``gateway_name``,
  ``route_namespace``, ``route_name``, ``backend_namespace``, ``backend_name``, ``response_code``,
  ``response_code_class``
- ``gateway_backend_request_duration_seconds`` histogram (same labels but the response code ones)
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import itertools
import json
import logging
import os
import random
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from sandbox.gateway import kingress as kmodel
from sandbox.gateway import model
from sandbox.gateway.kingress_controller import NAMESPACE, PRIVATE_SERVICE, PUBLIC_SERVICE, KIngressController

log = logging.getLogger("sandbox.gateway")
GROUP, VERSION = "gateway.networking.k8s.io", "v1"
BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
DEFAULT_TIMEOUT_S = 300.0  # no route timeout: Envoy Gateway's default stream idle timeout is of this order
# A KIngress has no timeout field; Knative's max-revision-timeout-seconds defaults to 600 (config-defaults).
KINGRESS_TIMEOUT_S = 600.0
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-authorization",
               "proxy-authenticate", "content-length"}


def now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --------------------------------------------------------------------------------------------- metrics

@dataclass
class _Series:
    count: int = 0
    sum_s: float = 0.0
    buckets: list[int] = field(default_factory=lambda: [0] * len(BUCKETS_S))


class Metrics:
    """Thread-safe request counters and latency histograms per (gateway, route, backend, code)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[tuple, int] = {}
        self._hist: dict[tuple, _Series] = {}

    def observe(self, labels: dict[str, str], code: int, seconds: float) -> None:
        base = tuple(sorted(labels.items()))
        key = (*base, ("response_code", str(code)), ("response_code_class", f"{code // 100}xx"))
        with self._lock:
            self._counts[key] = self._counts.get(key, 0) + 1
            s = self._hist.setdefault(base, _Series())
            s.count += 1
            s.sum_s += seconds
            for i, bound in enumerate(BUCKETS_S):
                if seconds <= bound:
                    s.buckets[i] += 1

    def render(self) -> str:
        def fmt(key: tuple) -> str:
            return ",".join(f'{k}="{v}"' for k, v in key)

        with self._lock:
            counts = dict(self._counts)
            hist = {k: _Series(v.count, v.sum_s, list(v.buckets)) for k, v in self._hist.items()}
        lines = ["# HELP gateway_backend_requests_total Requests the sandbox gateway sent to a backend",
                 "# TYPE gateway_backend_requests_total counter"]
        lines += [f"gateway_backend_requests_total{{{fmt(k)}}} {n}" for k, n in counts.items()]
        lines += ["# HELP gateway_backend_request_duration_seconds Time to the backend's full response",
                  "# TYPE gateway_backend_request_duration_seconds histogram"]
        for k, s in hist.items():
            for bound, n in zip(BUCKETS_S, s.buckets, strict=True):
                lines.append(f'gateway_backend_request_duration_seconds_bucket{{{fmt(k)},le="{bound}"}} {n}')
            lines.append(f'gateway_backend_request_duration_seconds_bucket{{{fmt(k)},le="+Inf"}} {s.count}')
            lines.append(f"gateway_backend_request_duration_seconds_sum{{{fmt(k)}}} {s.sum_s}")
            lines.append(f"gateway_backend_request_duration_seconds_count{{{fmt(k)}}} {s.count}")
        return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------ controller

class Controller:
    """Keeps the routing table and the status of our GatewayClasses, Gateways and HTTPRoutes."""

    def __init__(self, kubeconfig: str, address: str, public_port: int = 0, local_port: int = 0,
                 host_ip: str | None = None) -> None:
        from kubernetes import client

        from tasks import kube

        api = kube.connect(kubeconfig).client
        self.core, self.disc = client.CoreV1Api(api), client.DiscoveryV1Api(api)
        self.custom = client.CustomObjectsApi(api)
        self.address = address
        self.kingress = KIngressController(api, public_port, local_port, host_ip)
        self.table = model.Table()
        self.gateway_of: dict[tuple[str, str], tuple[str, str]] = {}  # route -> gateway (metrics labels)
        self.lock = threading.Lock()
        self.synced = threading.Event()

    def _list(self, plural: str, version: str = VERSION, group: str = GROUP) -> list[dict[str, Any]]:
        from kubernetes.client import ApiException

        try:
            return self.custom.list_cluster_custom_object(group, version, plural)["items"]
        except ApiException as exc:
            if exc.status == 404:  # CRD not installed
                return []
            raise

    def sync(self) -> None:
        """One pass: read everything, rebuild the table, write changed status."""
        classes = [c for c in self._list("gatewayclasses") if c["spec"].get("controllerName") == model.CONTROLLER_NAME]
        ours = {c["metadata"]["name"] for c in classes}
        gateways = [g for g in self._list("gateways") if g["spec"].get("gatewayClassName") in ours]
        routes = self._list("httproutes")
        grants = self._list("referencegrants", version="v1beta1")
        services = {(s.metadata.namespace, s.metadata.name): s
                    for s in self.core.list_service_for_all_namespaces().items}
        slices: dict[tuple[str, str], list[Any]] = {}
        for sl in self.disc.list_endpoint_slice_for_all_namespaces().items:
            svc = (sl.metadata.labels or {}).get("kubernetes.io/service-name")
            if svc:
                slices.setdefault((sl.metadata.namespace, svc), []).append(sl)
        namespaces = {n.metadata.name: n.metadata.labels or {} for n in self.core.list_namespace().items}

        def resolve(route_ns: str, ref: dict[str, Any]) -> model.BackendRef:
            return resolve_backend(route_ns, ref, services, slices, grants)

        table = model.Table()
        gateway_of: dict[tuple[str, str], tuple[str, str]] = {}
        attached: dict[tuple[str, str], dict[str, int]] = {}
        stamp = now()
        for route in routes:
            rns = route["metadata"]["namespace"]
            parents = []
            for ref in route["spec"].get("parentRefs") or []:
                gw = next((g for g in gateways if model.parent_ref_matches(ref, rns, g)), None)
                if gw is None:
                    continue
                gkey = (gw["metadata"]["namespace"], gw["metadata"]["name"])
                listeners = [ls for ls in gw["spec"].get("listeners") or [] if ls.get("protocol") == "HTTP"
                             and (not ref.get("sectionName") or ref["sectionName"] == ls["name"])]
                allowed = [ls for ls in listeners if model.listener_allows(ls, rns, gkey[0], namespaces.get(rns))]
                rules = model.rules_of(route, resolve)
                backends = [b for r in rules for b in r.backends]
                if allowed:
                    for ls in allowed:
                        attached.setdefault(gkey, {})
                        attached[gkey][ls["name"]] = attached[gkey].get(ls["name"], 0) + 1
                        for host in model.route_hosts(route, ls.get("hostname")):
                            table.by_host.setdefault(host, []).extend(rules)
                    gateway_of[(rns, route["metadata"]["name"])] = gkey
                    parents.append(model.route_parent_status(route, ref, True, "Accepted", backends, stamp))
                else:
                    reason = "NotAllowedByListeners" if listeners else "NoMatchingParent"
                    parents.append(model.route_parent_status(route, ref, False, reason, backends, stamp))
            if parents:
                existing = (route.get("status") or {}).get("parents") or []
                merged = model.merge_parents(existing, parents)
                if merged != existing:
                    self._status("httproutes", route, {"parents": merged})
        for gw in gateways:
            gkey = (gw["metadata"]["namespace"], gw["metadata"]["name"])
            status = model.gateway_status(gw, attached.get(gkey, {}), self.address, stamp)
            if status != gw.get("status"):
                self._status("gateways", gw, status)
        for gc in classes:
            status = model.gateway_class_status(gc, stamp)
            if status.get("conditions") != (gc.get("status") or {}).get("conditions"):
                self._status("gatewayclasses", gc, status)
        with self.lock:
            self.table, self.gateway_of = table, gateway_of
        self.kingress.sync(services, slices, stamp)
        self.synced.set()

    def _status(self, plural: str, obj: dict[str, Any], status: dict[str, Any]) -> None:
        from kubernetes.client import ApiException

        meta = obj["metadata"]
        try:
            if "namespace" in meta:
                self.custom.patch_namespaced_custom_object_status(GROUP, VERSION, meta["namespace"], plural,
                                                                  meta["name"], {"status": status})
            else:
                self.custom.patch_cluster_custom_object_status(GROUP, VERSION, plural, meta["name"],
                                                               {"status": status})
        except ApiException as exc:
            if exc.status not in (404, 409):
                raise

    def run(self, stop: threading.Event) -> None:
        """Sync every second, or at once when the KIngress watch or a finished probe sets ``kingress.wake``."""
        threading.Thread(target=self.kingress.watch, args=(stop,), name="kingress-watch", daemon=True).start()
        while not stop.is_set():
            self.kingress.wake.clear()
            try:
                self.sync()
            except Exception as exc:  # the apiserver restarting, a transient error: try again next second
                log.warning("gateway sync failed: %s", exc)
            self.kingress.wake.wait(1.0)
            stop.wait(0.1)  # coalesce a burst of watch events into one sync


def resolve_backend(route_ns: str, ref: dict[str, Any], services: dict, slices: dict,
                    grants: list[dict[str, Any]]) -> model.BackendRef:
    """A ``backendRefs[]`` entry against the Services and EndpointSlices read in this sync."""
    ns = ref.get("namespace", route_ns)
    name, port, weight = ref.get("name", ""), ref.get("port"), int(ref.get("weight", 1))
    if ref.get("group", "") != "" or ref.get("kind", "Service") != "Service":
        return model.BackendRef(ns, name, port, weight, False, "InvalidKind")
    if ns != route_ns and not granted(grants, route_ns, ns, name):
        return model.BackendRef(ns, name, port, weight, False, "RefNotPermitted")
    svc = services.get((ns, name))
    if svc is None:
        return model.BackendRef(ns, name, port, weight, False, "BackendNotFound")
    svc_port = next((p for p in svc.spec.ports or [] if port is None or p.port == port), None)
    if svc_port is None:
        return model.BackendRef(ns, name, port, weight, False, "BackendNotFound")
    endpoints = []
    for sl in slices.get((ns, name), []):
        ep_port = next((p.port for p in sl.ports or [] if (p.name or "") == (svc_port.name or "")), None)
        if ep_port is None:
            continue
        for ep in sl.endpoints or []:
            if ep.conditions is not None and ep.conditions.ready is False:
                continue
            endpoints += [(a, ep_port) for a in ep.addresses]
    return model.BackendRef(ns, name, port, weight, True, "", tuple(sorted(endpoints)))


def granted(grants: list[dict[str, Any]], from_ns: str, to_ns: str, name: str) -> bool:
    """A ReferenceGrant in ``to_ns`` lets HTTPRoutes of ``from_ns`` refer to Service ``name``."""
    for g in grants:
        if g["metadata"]["namespace"] != to_ns:
            continue
        froms = g["spec"].get("from") or []
        tos = g["spec"].get("to") or []
        if any(f.get("group") == GROUP and f.get("kind") == "HTTPRoute" and f.get("namespace") == from_ns
               for f in froms) and any(t.get("group", "") == "" and t.get("kind") == "Service"
                                       and t.get("name") in (None, name) for t in tos):
            return True
    return False


# ----------------------------------------------------------------------------------------------- proxy

def serve(controller: Controller, metrics: Metrics, port: int, cluster_local: bool = False) -> ThreadingHTTPServer:
    """The proxy on ``127.0.0.1:port``: the public listener (KIngress ExternalIP hosts, then HTTPRoutes) or,
    with ``cluster_local``, the cluster-local one (every KIngress rule, no HTTPRoutes)."""
    rng = random.Random()
    counters: dict[tuple[str, str], itertools.count] = {}
    lb_name = PRIVATE_SERVICE if cluster_local else PUBLIC_SERVICE

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            with controller.lock:
                table, gateway_of = controller.table, controller.gateway_of
            host = self.headers.get("Host", "")
            snap = controller.kingress.snapshot
            # KIngress hosts first, then HTTPRoutes, then a KIngress rule without hosts (public listener)
            kroutes = snap.tables.routes_for(host, cluster_local, catch_all=cluster_local)
            if kroutes or cluster_local:
                return self._kingress(snap, kroutes, body)
            rule = model.match(table, host, self.path, self.command, dict(self.headers.items()))
            if rule is None:
                kroutes = snap.tables.routes_for(host, cluster_local)
                if kroutes:
                    return self._kingress(snap, kroutes, body)
                return self._reply(404, b"no route for this host and path\n", {})
            backend = model.choose(rule.backends, rng)
            if backend is None or not backend.valid:
                return self._reply(500, b"no valid backend for this route\n", {})
            labels = {"gateway_namespace": gateway_of.get(rule.route, ("", ""))[0],
                      "gateway_name": gateway_of.get(rule.route, ("", ""))[1],
                      "route_namespace": rule.route[0], "route_name": rule.route[1],
                      "backend_namespace": backend.namespace, "backend_name": backend.name}
            start = time.monotonic()
            if not backend.endpoints:
                code, payload, headers = 503, b"no healthy upstream\n", {}
            else:
                n = next(counters.setdefault((backend.namespace, backend.name), itertools.count()))
                ip, ep_port = backend.endpoints[n % len(backend.endpoints)]
                out = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
                out = model.apply_header_filters(rule, out)
                out["X-Forwarded-For"] = self.client_address[0]
                out["X-Forwarded-Proto"] = "http"
                code, payload, headers = forward(ip, ep_port, self.command, self.path, out, body,
                                                 rule.timeout_s or DEFAULT_TIMEOUT_S)
            metrics.observe(labels, code, time.monotonic() - start)
            self._reply(code, payload, headers)

        def _kingress(self, snap: Any, routes: list[kmodel.Route], body: bytes) -> None:
            route = kmodel.match(routes, self.path, dict(self.headers.items()))
            if route is None:
                return self._reply(404, b"no route for this host and path\n", {})
            split = kmodel.choose(route.splits, rng)
            if split is None:
                return self._reply(503, b"no backend with a share of the traffic\n", {})
            labels = {"gateway_namespace": NAMESPACE, "gateway_name": lb_name,
                      "route_namespace": route.ingress[0], "route_name": route.ingress[1],
                      "backend_namespace": split.namespace, "backend_name": split.name}
            start = time.monotonic()
            endpoints = snap.endpoints.get((split.namespace, split.name, split.port), ())
            if not endpoints:
                code, payload, headers = 503, b"no healthy upstream\n", {}
            else:
                n = next(counters.setdefault((split.namespace, split.name), itertools.count()))
                ip, ep_port = endpoints[n % len(endpoints)]
                out = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
                out = kmodel.request_headers(route, split, out)
                out["X-Forwarded-For"] = self.client_address[0]
                out["X-Forwarded-Proto"] = "http"
                code, payload, headers = forward(ip, ep_port, self.command, self.path, out, body, KINGRESS_TIMEOUT_S)
            metrics.observe(labels, code, time.monotonic() - start)
            self._reply(code, payload, headers)

        def _reply(self, code: int, payload: bytes, headers: dict[str, str]) -> None:
            try:
                self.send_response(code)
                for k, v in (headers or {"content-type": "text/plain"}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)
            except OSError:
                pass

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = _handle

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name=f"gateway-proxy-{lb_name}", daemon=True).start()
    return server


def forward(ip: str, port: int, method: str, path: str, headers: dict[str, str], body: bytes,
            timeout: float) -> tuple[int, bytes, dict[str, str]]:
    """One upstream request; 503 when the connection fails, 504 on timeout (Envoy's answers)."""
    conn = http.client.HTTPConnection(ip, port, timeout=timeout)
    try:
        conn.request(method, path, body=body or None, headers=headers)
        resp = conn.getresponse()
        payload = resp.read()
        out = {k: v for k, v in resp.getheaders() if k.lower() not in _HOP_BY_HOP}
        return resp.status, payload, out
    except TimeoutError:
        return 504, b"upstream request timeout\n", {}
    except (OSError, http.client.HTTPException):
        return 503, b"upstream connect error or disconnect/reset before headers\n", {}
    finally:
        conn.close()


def serve_metrics(controller: Controller, metrics: Metrics, port: int) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return

        def do_GET(self) -> None:
            path = self.path.split("?")[0]
            if path == "/healthz":
                ok = controller.synced.is_set()
                payload, code = (b"ok\n", 200) if ok else (b"not synced\n", 503)
            elif path == "/metrics":
                payload, code = metrics.render().encode(), 200
            else:
                payload, code = b"not found\n", 404
            self.send_response(code)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="gateway-metrics", daemon=True).start()
    return server


def write_target(instance_dir: Path, metrics_port: int) -> Path:
    """``<instance>/prometheus/targets/gateway.json`` naming the metrics port (atomic)."""
    directory = instance_dir / "prometheus" / "targets"
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "gateway.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps([{"targets": [f"127.0.0.1:{metrics_port}"], "labels": {"job_kind": "gateway"}}]))
    os.replace(tmp, path)
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m sandbox.gateway")
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--metrics-port", type=int, required=True)
    parser.add_argument("--instance-dir", type=Path, required=True)
    parser.add_argument("--local-port", type=int, required=True, help="the KIngress cluster-local listener")
    parser.add_argument("--host-ip", default=None,
                        help="the node network's host address (Pods reach the listeners there); unset: no LB Services")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    controller = Controller(args.kubeconfig, "127.0.0.1", args.port, args.local_port, args.host_ip)
    metrics = Metrics()
    serve(controller, metrics, args.port)
    serve(controller, metrics, args.local_port, cluster_local=True)
    serve_metrics(controller, metrics, args.metrics_port)
    target = write_target(args.instance_dir, args.metrics_port)
    stop = threading.Event()
    try:
        controller.run(stop)
    finally:
        target.unlink(missing_ok=True)
