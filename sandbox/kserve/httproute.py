"""Gateway API HTTPRoutes with weighted ``backendRefs`` to InferenceServices (the RawDeployment canary path).

Each HTTPRoute (``gateway.networking.k8s.io/v1``) gets a router of its own on a loopback port that splits
requests over its first rule's ``backendRefs`` by ``weight`` and forwards to the InferenceServices' routers.
A backendRef names a Service: ``<isvc>-predictor`` (the Service KServe creates in raw mode) or ``<isvc>``.
The route's address is written to annotation ``sandbox.kaiops.io/url`` (a real cluster has it on the Gateway)
and ``status.parents[]`` gets ``Accepted`` and ``ResolvedRefs`` as a Gateway controller would write them.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from sandbox.kserve.router import Backend, QueueProxyMetrics, Router
from sandbox.procs import free_port

log = logging.getLogger("sandbox.kserve.httproute")

API_VERSION = "gateway.networking.k8s.io/v1"
KIND = "HTTPRoute"
URL_ANNOTATION = "sandbox.kaiops.io/url"
CONTROLLER_NAME = "sandbox.kaiops.io/gateway-controller"


def backend_weights(route: dict[str, Any]) -> list[tuple[str, str, int]]:
    """``(namespace, isvc name, weight)`` for the first rule's backendRefs (weight default 1, Gateway API).

    A ``-predictor`` suffix is stripped: it names the Service KServe's raw mode creates for the predictor.
    """
    ns = route["metadata"].get("namespace", "default")
    rules = (route.get("spec") or {}).get("rules") or []
    out = []
    for ref in (rules[0].get("backendRefs") or []) if rules else []:
        name = ref.get("name", "")
        if name.endswith("-predictor"):
            name = name[: -len("-predictor")]
        out.append((ref.get("namespace", ns), name, int(ref.get("weight", 1))))
    return out


class HTTPRouteController:
    """Keeps one router per HTTPRoute in line with its backendRefs and the InferenceServices' routers."""

    def __init__(self, dyn: Any, isvc_controller: Any) -> None:
        from tasks import kube

        self.dyn, self.kube, self.isvcs = dyn, kube, isvc_controller
        self.routers: dict[tuple[str, str], Router] = {}
        self.metrics = QueueProxyMetrics()  # route-level counts are not exported; revisions count in the isvc routers
        try:
            self.resource = kube.resource_for(dyn, API_VERSION, KIND)
        except kube.NotFound:
            self.resource = None

    def watch_forever(self) -> None:
        """Re-read all HTTPRoutes every 2 s (routes are few; weights must follow the isvc routers' ports)."""
        while self.resource is not None and not self.isvcs.stopped.is_set():
            try:
                self.sync(self.resource.get().to_dict().get("items") or [])
            except Exception as exc:
                log.warning("httproute sync failed: %s", exc)
            time.sleep(2.0)

    def sync(self, routes: list[dict[str, Any]]) -> None:
        seen = set()
        for route in routes:
            key = (route["metadata"].get("namespace", "default"), route["metadata"]["name"])
            seen.add(key)
            router = self.routers.get(key)
            if router is None:
                router = Router(key[0], key[1], free_port(), self.metrics)
                self.routers[key] = router
            backends, missing = [], []
            for ns, name, weight in backend_weights(route):
                state = self.isvcs.states.get((ns, name))
                if state is None:
                    missing.append(f"{ns}/{name}")
                    continue
                backends.append(Backend(name, state.router.url, weight))
            router.set_backends(backends)
            self._write(route, router.url, missing)
        for key in [k for k in self.routers if k not in seen]:
            self.routers.pop(key).close()

    def _write(self, route: dict[str, Any], url: str, missing: list[str]) -> None:
        meta = route["metadata"]
        parent = ((route.get("spec") or {}).get("parentRefs") or [{"name": "sandbox-gateway"}])[0]
        resolved = {"type": "ResolvedRefs", "status": "False" if missing else "True",
                    "reason": "BackendNotFound" if missing else "ResolvedRefs",
                    "message": f"unknown backends: {', '.join(missing)}" if missing
                    else "Resolved all the Object references for the Route"}
        gen = meta.get("generation", 1)
        conds = [{"type": "Accepted", "status": "True", "reason": "Accepted", "message": "Accepted by the sandbox",
                  "observedGeneration": gen}, {**resolved, "observedGeneration": gen}]
        want = [{"parentRef": parent, "controllerName": CONTROLLER_NAME, "conditions": conds}]
        old = [{**p, "conditions": [{k: v for k, v in c.items() if k != "lastTransitionTime"}
                                    for c in p.get("conditions", [])]}
               for p in (route.get("status") or {}).get("parents") or []]
        if (meta.get("annotations") or {}).get(URL_ANNOTATION) != url:
            self.resource.patch(body={"metadata": {"annotations": {URL_ANNOTATION: url}}}, name=meta["name"],
                                namespace=meta["namespace"], content_type="application/merge-patch+json")
        if old != want:
            stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            for c in conds:
                c["lastTransitionTime"] = stamp
            body = {"apiVersion": API_VERSION, "kind": KIND, "metadata": {"name": meta["name"],
                    "namespace": meta["namespace"]}, "status": {"parents": want}}
            self.resource.status.patch(body=body, name=meta["name"], namespace=meta["namespace"],
                                       content_type="application/merge-patch+json")


