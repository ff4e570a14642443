"""The sandbox gateway's Knative Ingress controller: watch, program, probe, write status, own the LB Services.

Each sync (the gateway's one-second loop, woken at once by a watch on Ingresses) reads the Ingresses of class
``gateway.sandbox.kaiops.io`` (:data:`sandbox.gateway.kingress.INGRESS_CLASS`), translates them
(:func:`sandbox.gateway.kingress.translate`) and programs an Ingress only once every split's Service has a
ready endpoint; until then its previous programming stays (net-kourier skips such an Ingress the same way).
Programmed Ingresses are probed as Knative's status prober does (``knative.dev/networking`` ``pkg/status``):
``GET http://<host>/healthz`` through the listener the rule's visibility uses, with ``K-Network-Probe: probe``,
``K-Network-Hash: override`` and ``User-Agent: Knative-Ingress-Probe``; the probe route appends the spec's hash,
the backend (queue-proxy, activator) echoes it, and the Ingress is Ready once every host answered with the
current hash. Status is written by server-side apply of the ``status`` subresource with field manager
:data:`FIELD_MANAGER`.

Pods reach the gateway through two selector-less Services in :data:`NAMESPACE` whose EndpointSlices name the
host side of the node network (the ``net`` forwarder serves the gateway's ports there): :data:`PUBLIC_SERVICE`
(the public listener) and :data:`PRIVATE_SERVICE` (the cluster-local listener), named in the status as the load
balancers' ``domainInternal``. Knative's Route points its ExternalName placeholder Services at the latter.
"""

from __future__ import annotations

import concurrent.futures
import http.client
import logging
import threading
from dataclasses import dataclass, field
from typing import Any

from sandbox.gateway import kingress as kmodel

log = logging.getLogger("sandbox.gateway.kingress")
FIELD_MANAGER = "kaiops-sandbox-gateway"
NAMESPACE = "kaiops-sandbox"
PUBLIC_SERVICE = "gateway"
PRIVATE_SERVICE = "gateway-internal"
CLUSTER_DOMAIN = "cluster.local"
PROBE_TIMEOUT_S = 1.0  # pkg/status probeTimeout


def service_domain(name: str, namespace: str = NAMESPACE) -> str:
    """``<name>.<namespace>.svc.cluster.local`` (``network.GetServiceHostname``)."""
    return f"{name}.{namespace}.svc.{CLUSTER_DOMAIN}"


def lb_objects(host_ip: str, public_port: int, local_port: int) -> list[dict[str, Any]]:
    """The namespace, the two selector-less Services (port 80, as Kourier's) and their EndpointSlices."""
    labels = {"app.kubernetes.io/name": "sandbox-gateway", "app.kubernetes.io/part-of": "kaiops-sandbox"}
    objs: list[dict[str, Any]] = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}]
    for name, port in ((PUBLIC_SERVICE, public_port), (PRIVATE_SERVICE, local_port)):
        objs.append({"apiVersion": "v1", "kind": "Service",
                     "metadata": {"name": name, "namespace": NAMESPACE, "labels": labels},
                     "spec": {"ports": [{"name": "http", "port": 80, "targetPort": port, "protocol": "TCP"}]}})
        objs.append({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                     "metadata": {"name": f"{name}-host", "namespace": NAMESPACE,
                                  "labels": {**labels, "kubernetes.io/service-name": name,
                                             "endpointslice.kubernetes.io/managed-by": FIELD_MANAGER}},
                     "addressType": "IPv4",
                     "endpoints": [{"addresses": [host_ip], "conditions": {"ready": True}}],
                     "ports": [{"name": "http", "port": port, "protocol": "TCP"}]})
    return objs


@dataclass
class Snapshot:
    """What the data plane reads: the two host tables and the ready endpoints of every split's Service port."""

    tables: kmodel.Tables = field(default_factory=kmodel.Tables)
    endpoints: dict[tuple[str, str, int | str], tuple[tuple[str, int], ...]] = field(default_factory=dict)


@dataclass
class _Programmed:
    routes: list[kmodel.Route]
    hash: str
    created: str


def split_endpoints(ns: str, name: str, port: int | str, services: dict, slices: dict) -> tuple[tuple[str, int], ...]:
    """Ready ``(ip, port)`` endpoints of Service ``ns/name``'s port ``port`` (number or name); () when none."""
    svc = services.get((ns, name))
    if svc is None:
        return ()
    svc_port = next((p for p in svc.spec.ports or []
                     if (isinstance(port, int) and p.port == port) or (isinstance(port, str) and p.name == port)
                     or (isinstance(port, str) and port.isdigit() and p.port == int(port))), None)
    if svc_port is None:
        return ()
    out = []
    for sl in slices.get((ns, name), []):
        ep_port = next((p.port for p in sl.ports or [] if (p.name or "") == (svc_port.name or "")), None)
        if ep_port is None:
            continue
        for ep in sl.endpoints or []:
            if ep.conditions is not None and ep.conditions.ready is False:
                continue
            out += [(a, ep_port) for a in ep.addresses]
    return tuple(sorted(out))


class KIngressController:
    """Programs, probes and reports the Knative Ingresses of our class (one instance inside the gateway)."""

    def __init__(self, api: Any, public_port: int, local_port: int, host_ip: str | None,
                 cls: str = kmodel.INGRESS_CLASS) -> None:
        from kubernetes import client

        self.api = api
        self.custom = client.CustomObjectsApi(api)
        self.public_port, self.local_port, self.host_ip, self.cls = public_port, local_port, host_ip, cls
        self.snapshot = Snapshot()
        self.programmed: dict[tuple[str, str], _Programmed] = {}
        self.proven: dict[tuple[str, str], str] = {}  # ingress -> hash every probe target answered with
        self.probing: dict[tuple[str, str], concurrent.futures.Future] = {}
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=8, thread_name_prefix="kingress-probe")
        self.wake = threading.Event()
        self._lb_done = False

    # ---------------------------------------------------------------------------------------- listing

    def list_ingresses(self) -> list[dict[str, Any]]:
        """Every Ingress of the cluster; [] when the CRD is not installed."""
        from kubernetes.client import ApiException

        try:
            return list(self.custom.list_cluster_custom_object(kmodel.GROUP, kmodel.VERSION, kmodel.PLURAL)["items"])
        except ApiException as exc:
            if exc.status == 404:
                return []
            raise

    def watch(self, stop: threading.Event) -> None:
        """Set :attr:`wake` on every Ingress event (the sync itself re-lists); retries while the CRD is absent."""
        from kubernetes import watch
        from kubernetes.client import ApiException

        while not stop.is_set():
            w = watch.Watch()
            try:
                for _ in w.stream(self.custom.list_cluster_custom_object, kmodel.GROUP, kmodel.VERSION,
                                  kmodel.PLURAL, timeout_seconds=30):
                    self.wake.set()
                    if stop.is_set():
                        break
            except ApiException as exc:
                if exc.status != 404:
                    log.warning("kingress watch: %s", exc)
                stop.wait(2.0)
            except Exception as exc:  # the apiserver restarting: watch again shortly
                log.warning("kingress watch: %s", exc)
                stop.wait(2.0)
            finally:
                w.stop()

    # ------------------------------------------------------------------------------------------ sync

    def ensure_lb_services(self, services: dict) -> None:
        """Server-side apply the load balancer Services and EndpointSlices when the node network's host address
        is known: at the first sync (the ports may have changed since the last run) and whenever a Service of
        them is missing from ``services``."""
        missing = any((NAMESPACE, n) not in services for n in (PUBLIC_SERVICE, PRIVATE_SERVICE))
        if not self.host_ip or (self._lb_done and not missing):
            return
        from kubernetes.dynamic import DynamicClient

        from tasks import kube

        dyn = DynamicClient(self.api)
        for obj in lb_objects(self.host_ip, self.public_port, self.local_port):
            kube.apply(dyn, obj, field_manager=FIELD_MANAGER, force=True)
        self._lb_done = True

    def sync(self, services: dict, slices: dict, now: str) -> None:
        """One pass over our Ingresses: program, swap the snapshot, start probes, write changed status.

        Args:
            services: (namespace, name) -> V1Service of this sync; slices: (namespace, service) -> EndpointSlices.
            now: RFC 3339 time stamp for conditions that change.
        """
        self.ensure_lb_services(services)
        ours = [i for i in self.list_ingresses() if kmodel.is_ours(i, self.cls)]
        keys = {(i["metadata"]["namespace"], i["metadata"]["name"]) for i in ours}
        for gone in (set(self.programmed) | set(self.probing)) - keys:
            self.programmed.pop(gone, None)
            self.proven.pop(gone, None)
            self.probing.pop(gone, None)
        failures: dict[tuple[str, str], tuple[str, str]] = {}
        current: dict[tuple[str, str], str] = {}
        for ing in ours:
            key = (ing["metadata"]["namespace"], ing["metadata"]["name"])
            try:
                routes, digest = kmodel.translate(ing)
            except kmodel.SpecError as exc:
                failures[key] = (kmodel.Reason.NOT_RECONCILED.value, str(exc))
                continue
            current[key] = digest
            ok, _missing = kmodel.endpoints_ready(
                routes, lambda ns, n, p: bool(split_endpoints(ns, n, p, services, slices)))
            if ok:
                self.programmed[key] = _Programmed(routes, digest, ing["metadata"].get("creationTimestamp", ""))
        tables, conflicts = kmodel.build_tables({k: p.routes for k, p in self.programmed.items()},
                                                {k: p.created for k, p in self.programmed.items()})
        endpoints = {(s.namespace, s.name, s.port): split_endpoints(s.namespace, s.name, s.port, services, slices)
                     for p in self.programmed.values() for r in p.routes for s in r.splits}
        self.snapshot = Snapshot(tables, endpoints)
        for ing in ours:
            key = (ing["metadata"]["namespace"], ing["metadata"]["name"])
            digest = current.get(key, "")
            if key in failures:
                st = kmodel.status(ing, configured=False, ready=False, now=now, public_domain="", private_domain="",
                                   failure=failures[key])
            else:
                if key not in conflicts and self.proven.get(key) != digest:
                    self._probe(key, digest)
                conflict = conflicts.get(key)
                st = kmodel.status(ing, configured=True, ready=self.proven.get(key) == digest and not conflict,
                                   now=now, public_domain=service_domain(PUBLIC_SERVICE),
                                   private_domain=service_domain(PRIVATE_SERVICE),
                                   failure=(kmodel.Reason.DOMAIN_CONFLICT.value, f"Ingress rejected: {conflict}")
                                   if conflict else None)
            if not kmodel.same_status(ing.get("status"), st):
                self._write_status(ing, st)

    # ---------------------------------------------------------------------------------------- probing

    def _probe(self, key: tuple[str, str], digest: str) -> None:
        """Start probing ``key``'s programmed routes unless a probe is in flight; the result lands in
        :attr:`proven` (only when the programmed hash is the current one) and wakes the loop."""
        running = self.probing.get(key)
        if running is not None and not running.done():
            return
        programmed = self.programmed.get(key)
        if programmed is None:
            return
        targets = kmodel.probe_targets(programmed.routes)

        def work() -> None:
            results = [self.probe_once(host, local, digest) for host, local in targets]
            if all(r is not False for r in results):
                self.proven[key] = digest
                self.wake.set()

        self.probing[key] = self.pool.submit(work)

    def probe_once(self, host: str, cluster_local: bool, want: str) -> bool | None:
        """One probe of ``host`` through our own listener; :func:`sandbox.gateway.kingress.probe_verdict`."""
        port = self.local_port if cluster_local else self.public_port
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=PROBE_TIMEOUT_S)
        try:
            conn.request("GET", kmodel.PROBE_PATH, headers={
                "Host": "probe.invalid" if host == "*" else host, "User-Agent": kmodel.PROBE_USER_AGENT,
                kmodel.PROBE_HEADER: kmodel.PROBE_VALUE, kmodel.HASH_HEADER: kmodel.HASH_OVERRIDE})
            resp = conn.getresponse()
            resp.read()
            return kmodel.probe_verdict(resp.status, resp.getheader(kmodel.HASH_HEADER), want)
        except (OSError, http.client.HTTPException):
            return False
        finally:
            conn.close()

    # ----------------------------------------------------------------------------------------- status

    def _write_status(self, ing: dict[str, Any], st: dict[str, Any]) -> None:
        from kubernetes.client import ApiException

        meta = ing["metadata"]
        body = {"apiVersion": kmodel.API_VERSION, "kind": "Ingress",
                "metadata": {"name": meta["name"], "namespace": meta["namespace"]}, "status": st}
        try:
            self.custom.patch_namespaced_custom_object_status(
                kmodel.GROUP, kmodel.VERSION, meta["namespace"], kmodel.PLURAL, meta["name"], body,
                field_manager=FIELD_MANAGER, force=True, _content_type="application/apply-patch+yaml")
        except ApiException as exc:
            if exc.status not in (404, 409):
                raise
