"""Canary routing in RawDeployment / Standard mode: a second InferenceService behind a Gateway API HTTPRoute
with weighted ``backendRefs``."""

from __future__ import annotations

import copy
import logging
import time
from typing import Any

from kubernetes.dynamic import DynamicClient

from tasks import kube
from tasks.rollout.isvc import ISVC_API, ISVC_KIND, MODE_ANNOTATION, storage_uri
from tasks.rollout.readiness import RevisionFailed, deployment_problem, wait_deployment_serving, wait_revision
from tasks.rollout.routing.base import Routing, SpecChange
from tasks.rollout.state import RolloutRecord

ROUTE_API, ROUTE_KIND = "gateway.networking.k8s.io/v1", "HTTPRoute"
SCALE_DOWN_DELAY_S = 30.0  # Argo Rollouts' scaleDownDelaySeconds default: a route change takes time to propagate
ROUTE_ACCEPT_TIMEOUT_S = 60.0
log = logging.getLogger("kaiops.rollout")


def rollout_route(namespace: str, name: str, gateway: tuple[str, str], host: str, backends: tuple[str, str],
                  percent: int) -> dict[str, Any]:
    """kaiops's HTTPRoute: ``backends`` (stable, canary Service) weighted ``100 - percent`` / ``percent``.

    With ``host`` (the DNS name of the InferenceService's ``status.url``) the route takes that host and matches
    ``PathPrefix /v1/models`` and ``/v2/models`` (KServe's v1 and v2 inference paths): KServe v0.20's own
    HTTPRoute ``<isvc>`` for that host matches ``RegularExpression ^/.*$``, and a prefix with more characters
    wins (Gateway API ``HTTPRouteRule`` precedence), so requests to the InferenceService's own URL are split
    while anything else on the host stays KServe's. Gateway API ``PathPrefix`` matches whole path elements, so
    ``/v1/models/<isvc>`` would not match ``/v1/models/<isvc>:predict``. Without ``host`` (an IP, or no URL):
    no hostnames and one ``/`` rule.
    """
    rule: dict[str, Any] = {"backendRefs": [
        {"name": backends[0], "port": 80, "weight": 100 - percent},
        {"name": backends[1], "port": 80, "weight": percent},
    ]}
    spec: dict[str, Any] = {"parentRefs": [{"name": gateway[0], "namespace": gateway[1]}], "rules": [rule]}
    if host:
        spec["hostnames"] = [host]
        rule["matches"] = [{"path": {"type": "PathPrefix", "value": "/v1/models"}},
                           {"path": {"type": "PathPrefix", "value": "/v2/models"}}]
    return {"apiVersion": ROUTE_API, "kind": ROUTE_KIND, "metadata": {"name": name, "namespace": namespace},
            "spec": spec}


def route_host(isvc: dict[str, Any]) -> str:
    """The DNS host of ``status.url`` ('' when absent or an IP address: Gateway API hostnames exclude IPs)."""
    import ipaddress
    from urllib.parse import urlparse

    host = urlparse(str((isvc.get("status") or {}).get("url") or "")).hostname or ""
    try:
        ipaddress.ip_address(host)
        return ""
    except ValueError:
        return host


class RawRouting(Routing):
    """RawDeployment / Standard: a second InferenceService ``<name>-canary`` and a Gateway API HTTPRoute
    ``<name>-rollout`` whose first rule's weighted ``backendRefs`` split traffic between the predictor
    Services ``<name>-predictor`` and ``<name>-canary-predictor`` (KServe raw mode ignores
    ``canaryTrafficPercent`` before v0.20). The rollout record stays on the stable InferenceService.

    - start: create the canary InferenceService (stable spec, new ``storageUri``) and the route at 100/0; once
      the canary is ready the route takes the first step's weights (a Deployment that is not Available gets
      no traffic, as KServe's Serverless path keeps it on the ready revision);
    - promote: the stable InferenceService takes the new ``storageUri``, the route goes to 100/0 once it is
      ready, the canary InferenceService is deleted once the route has moved off it (below);
    - rollback: the route goes to 100/0 for the stable one and the canary InferenceService is deleted, likewise.

    Before deleting the canary InferenceService, the route must have moved away from it: the Gateway
    controller has accepted the new route generation (``status.parents[].conditions[type=Accepted]
    .observedGeneration``, Gateway API v1) and ``scale_down_delay_s`` seconds have passed for the change to
    reach every gateway replica (the reason for Argo Rollouts' ``scaleDownDelaySeconds``). Deleting sooner
    sends the requests still routed to the canary to a backend that is gone (HTTP 502/503).
    """

    mode = "RawDeployment"

    def __init__(self, dyn: DynamicClient, namespace: str, name: str, gateway: tuple[str, str],
                 scale_down_delay_s: float = SCALE_DOWN_DELAY_S, host: str = "") -> None:
        self.dyn, self.namespace, self.name = dyn, namespace, name
        self.canary_name, self.route_name, self.gateway = f"{name}-canary", f"{name}-rollout", gateway
        self.scale_down_delay_s, self.host = scale_down_delay_s, host

    def revisions(self, isvc: dict[str, Any]) -> tuple[str, str]:
        """(canary, baseline) as the series name them: the predictor Deployments ``<isvc>-predictor`` (raw
        mode has one Deployment per InferenceService and no revision names in status)."""
        return f"{self.canary_name}-predictor", f"{self.name}-predictor"

    def stable_revision(self, isvc: dict[str, Any]) -> str:
        return f"{self.name}-predictor"

    @staticmethod
    def start_spec(uri: str, percent: int) -> SpecChange | None:
        return None

    @staticmethod
    def traffic_spec(percent: int) -> SpecChange | None:
        return None

    @staticmethod
    def promote_spec() -> SpecChange | None:
        return None

    @staticmethod
    def rollback_spec(previous_uri: str) -> SpecChange | None:
        return None

    def _route(self, percent: int) -> dict[str, Any]:
        """Apply the route at ``percent`` % to the canary (see :func:`rollout_route`)."""
        return kube.apply(self.dyn, rollout_route(self.namespace, self.route_name, self.gateway, self.host,
                                                  (f"{self.name}-predictor", f"{self.canary_name}-predictor"),
                                                  percent))

    def after_start(self, isvc: dict[str, Any], uri: str, percent: int) -> None:
        spec = copy.deepcopy(isvc["spec"])
        spec["predictor"].setdefault("model", {})["storageUri"] = uri
        spec["predictor"].pop("canaryTrafficPercent", None)
        # the route forwards requests unchanged (/v1/models/<stable name>:predict), so the canary's server must
        # register the stable name (KServe runtimes append the predictor's args after --model_name={{.Name}})
        model = spec["predictor"]["model"]
        model["args"] = [a for a in model.get("args") or [] if not str(a).startswith("--model_name")]
        model["args"].append(f"--model_name={self.name}")
        mode = (isvc["metadata"].get("annotations") or {}).get(MODE_ANNOTATION, "RawDeployment")
        annotations = {MODE_ANNOTATION: mode}
        kube.apply(
            self.dyn,
            {
                "apiVersion": ISVC_API,
                "kind": ISVC_KIND,
                "metadata": {
                    "name": self.canary_name,
                    "namespace": self.namespace,
                    "annotations": annotations,
                    "labels": {"rollout.kaiops.io/stable": self.name},
                },
                "spec": spec,
            },
        )
        self._route(0)  # the canary gets its share once it is ready (see after_ready): no 503s while it loads

    def after_traffic(self, percent: int) -> None:
        self._route(percent)

    def after_ready(self, percent: int) -> None:
        """The canary InferenceService is ready: give it the first step's share."""
        self._route(percent)

    def after_promote(self, record: RolloutRecord) -> None:
        """The stable InferenceService takes the new model; once its Deployment rolled out completely with it
        (not just ``PredictorReady``, which stays True while the old Pod serves, :func:`wait_deployment_serving`),
        the route moves back to it and the canary InferenceService is deleted after the drain."""
        def change(body: dict[str, Any]) -> dict[str, Any] | None:
            if storage_uri(body) == record.target_storage_uri:
                return None
            body["spec"]["predictor"].setdefault("model", {})["storageUri"] = record.target_storage_uri
            return body

        kube.update(self.dyn, ISVC_API, ISVC_KIND, self.name, self.namespace, change)
        wait_revision(self.dyn, self.namespace, self.name, "", None, 300)
        try:
            kube.get(self.dyn, "apps/v1", "Deployment", f"{self.name}-predictor", self.namespace)
            wait_deployment_serving(self.dyn, self.namespace, f"{self.name}-predictor", record.target_storage_uri,
                                    600)
        except kube.NotFound:
            pass  # a stand-in without Deployments: KServe's status above is all there is
        self._drain(self._route(0))
        kube.delete(self.dyn, ISVC_API, ISVC_KIND, self.canary_name, self.namespace)

    def after_rollback(self, record: RolloutRecord) -> None:
        try:
            kube.get(self.dyn, ROUTE_API, ROUTE_KIND, self.route_name, self.namespace)
            self._drain(self._route(0))
        except kube.NotFound:
            pass
        kube.delete(self.dyn, ISVC_API, ISVC_KIND, self.canary_name, self.namespace)

    def _drain(self, route: dict[str, Any]) -> None:
        """Wait until the Gateway accepted ``route``'s generation, then ``scale_down_delay_s`` seconds.

        A Gateway that never reports (no controller writes route status) costs ``ROUTE_ACCEPT_TIMEOUT_S``
        seconds and the delay; the canary is deleted anyway (its share is already 0 in the spec).
        """
        generation = int(route["metadata"].get("generation") or 0)

        def accepted(obj: dict[str, Any]) -> bool:
            parents = (obj.get("status") or {}).get("parents") or []
            return bool(parents) and all(
                any(c.get("type") == "Accepted" and c.get("status") == "True"
                    and int(c.get("observedGeneration") or 0) >= generation for c in p.get("conditions") or [])
                for p in parents)

        try:
            kube.wait_for(self.dyn, ROUTE_API, ROUTE_KIND, self.route_name, accepted, namespace=self.namespace,
                          timeout=ROUTE_ACCEPT_TIMEOUT_S)
        except TimeoutError:
            log.warning("HTTPRoute %s/%s: no Gateway accepted generation %d within %.0f s; deleting the old "
                        "backend after the scale-down delay anyway", self.namespace, self.route_name, generation,
                        ROUTE_ACCEPT_TIMEOUT_S)
        time.sleep(self.scale_down_delay_s)

    def ready_target(self, record: RolloutRecord) -> tuple[str, str, int | None]:
        return self.namespace, self.canary_name, None

    def wait_canary(self, record: RolloutRecord, timeout: float) -> dict[str, Any]:
        """KServe's readiness of the canary InferenceService; while it is not ready, also a Deployment that
        cannot come up for a reason KServe does not report (:func:`tasks.rollout.readiness.deployment_problem`:
        a Pod the Pod mutator refused, a Secret key missing), as :class:`RevisionFailed`."""
        import time as _time

        began = _time.monotonic()
        try:
            obj = super().wait_canary(record, timeout)
        except RevisionFailed as exc:
            if "deadline" not in str(exc):
                raise
            problem = deployment_problem(self.dyn, self.namespace, f"{self.canary_name}-predictor")
            if problem:
                raise RevisionFailed(f"{self.canary_name} failed: {problem}") from exc
            raise
        # a stand-in without Deployments is taken at its word (wait_deployment_rolled's rule)
        try:
            kube.get(self.dyn, "apps/v1", "Deployment", f"{self.canary_name}-predictor", self.namespace)
        except kube.NotFound:
            return obj
        wait_deployment_serving(self.dyn, self.namespace, f"{self.canary_name}-predictor",
                                record.target_storage_uri, max(1.0, timeout - (_time.monotonic() - began)))
        return obj

    def serving(self, isvc: dict[str, Any]) -> dict[str, int]:
        """Weight per backend (Service name) of the route's first rule; all to stable when there is no route."""
        try:
            route = kube.get(self.dyn, ROUTE_API, ROUTE_KIND, self.route_name, self.namespace)
        except kube.NotFound:
            return {f"{self.name}-predictor": 100}
        refs = ((route.get("spec") or {}).get("rules") or [{}])[0].get("backendRefs") or []
        return {r["name"]: int(r.get("weight", 1)) for r in refs}

    def look_revisions(self, isvc: dict[str, Any], record: RolloutRecord) -> tuple[str, str]:
        """(canary, baseline) as the look's queries name them: the two predictor Deployments."""
        return self.revisions(isvc)

    def describe_rollback(self, record: RolloutRecord) -> str:
        """What :meth:`after_rollback` does, for ``--dry-run``."""
        return (f"HTTPRoute {self.route_name} to 100/0 for {self.name}-predictor, delete InferenceService "
                f"{self.canary_name}")

    def spec_rolled_back(self, isvc: dict[str, Any], record: RolloutRecord) -> bool:
        """Always: a raw-mode rollback never changes the stable InferenceService's spec."""
        return True
