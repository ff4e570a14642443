"""Canary routing in Standard mode through KServe v0.20's own ``spec.canary[]`` plus a weighted HTTPRoute that
kaiops owns (KServe's ``trafficPercent`` sizes the canary, it does not split traffic)."""

from __future__ import annotations

import copy
from typing import Any

from tasks import kube
from tasks.rollout.isvc import ISVC_API, ISVC_KIND, storage_uri
from tasks.rollout.readiness import wait_canary_entry, wait_deployment_serving
from tasks.rollout.routing.base import SpecChange
from tasks.rollout.routing.raw import RawRouting
from tasks.rollout.state import RolloutRecord

#: spec.canary[].predictor.name kaiops writes; KServe names its Deployment and Service <isvc>-canary-predictor
CANARY_ENTRY = "canary"


def canary_entries(isvc: dict[str, Any]) -> list[dict[str, Any]]:
    """``spec.canary`` ([] when absent)."""
    return list((isvc.get("spec") or {}).get("canary") or [])


class CanaryListRouting(RawRouting):
    """Standard mode on a KServe release with ``spec.canary[]`` (v0.20.0 on).

    What KServe v0.20.0 does with an entry (``reconcileCanaryDeployments`` in
    ``pkg/controller/v1beta1/inferenceservice/components/predictor.go``): the stable predictor merged with the
    entry's ``predictor`` becomes a Deployment and Service ``<isvc>-<entry name>-predictor`` (same model name, so
    the same request path), with ``ceil(stable minReplicas x trafficPercent / 100)`` replicas;
    ``status.canaryStatuses[]`` says ``ready`` once that Deployment has an available replica, and condition
    ``CanaryPredictorReady`` sums them up. KServe's own HTTPRoutes keep one backend, the stable predictor, so
    kaiops splits traffic with its HTTPRoute ``<isvc>-rollout`` exactly as :class:`RawRouting` does; the backend
    names are the same (``<isvc>-canary-predictor``), so metrics templates and :meth:`serving` do not change.

    - start: one write adds ``spec.canary: [{trafficPercent: first step, predictor: {name: canary, model:
      stable model with the new storageUri}}]`` next to the record; the route is created at 100/0 and takes the
      first step's weights once the canary Deployment is available;
    - set traffic: the route's weights, and the entry's ``trafficPercent`` (so KServe's status says the step);
    - promote (the route already sends 100 % to the canary): the stable predictor takes the new ``storageUri``,
      kaiops waits until its Deployment has rolled out completely, moves the route back to it, drains, and the
      promote write removes ``spec.canary`` (KServe deletes the canary Deployment and Service as orphans);
    - rollback: the route to 100/0 for the stable predictor, drain, then the write removes ``spec.canary``.
    """

    mode = "RawDeployment"
    way = "spec-canary"

    @staticmethod
    def start_spec(uri: str, percent: int) -> SpecChange | None:
        def change(spec: dict[str, Any]) -> None:
            model = copy.deepcopy((spec.get("predictor") or {}).get("model") or {})
            model["storageUri"] = uri
            spec["canary"] = [{"trafficPercent": percent, "predictor": {"name": CANARY_ENTRY, "model": model}}]

        return change

    @staticmethod
    def traffic_spec(percent: int) -> SpecChange | None:
        def change(spec: dict[str, Any]) -> None:
            for entry in spec.get("canary") or []:
                if (entry.get("predictor") or {}).get("name") == CANARY_ENTRY:
                    entry["trafficPercent"] = percent

        return change

    @staticmethod
    def promote_spec() -> SpecChange | None:
        def change(spec: dict[str, Any]) -> None:
            spec.pop("canary", None)

        return change

    @staticmethod
    def rollback_spec(previous_uri: str) -> SpecChange | None:
        def change(spec: dict[str, Any]) -> None:
            spec.pop("canary", None)

        return change

    def after_start(self, isvc: dict[str, Any], uri: str, percent: int) -> None:
        self._route(0)  # the canary gets its share once its Deployment is available (after_ready)

    def wait_canary(self, record: RolloutRecord, timeout: float) -> dict[str, Any]:
        """Wait until the canary entry serves the target model (:func:`wait_canary_entry`). Raises
        :class:`tasks.rollout.readiness.RevisionFailed` (KServe writes no model status for a canary: the failure
        comes from the canary's Deployment, ReplicaSets and Pods)."""
        return wait_canary_entry(self.dyn, self.namespace, self.name, CANARY_ENTRY, record.target_storage_uri,
                                 timeout)

    def after_promote(self, record: RolloutRecord) -> None:
        def change(body: dict[str, Any]) -> dict[str, Any] | None:
            if storage_uri(body) == record.target_storage_uri:
                return None
            body["spec"]["predictor"].setdefault("model", {})["storageUri"] = record.target_storage_uri
            return body

        kube.update(self.dyn, ISVC_API, ISVC_KIND, self.name, self.namespace, change)
        wait_deployment_serving(self.dyn, self.namespace, f"{self.name}-predictor", record.target_storage_uri, 600)
        self._drain(self._route(0))

    def after_rollback(self, record: RolloutRecord) -> None:
        try:
            kube.get(self.dyn, "gateway.networking.k8s.io/v1", "HTTPRoute", self.route_name, self.namespace)
            self._drain(self._route(0))
        except kube.NotFound:
            pass

    def ready_target(self, record: RolloutRecord) -> tuple[str, str, int | None]:
        return self.namespace, self.name, None

    def describe_rollback(self, record: RolloutRecord) -> str:
        return (f"HTTPRoute {self.route_name} to 100/0 for {self.name}-predictor, then remove spec.canary from "
                f"InferenceService {self.name} (KServe deletes {self.name}-{CANARY_ENTRY}-predictor)")

    def spec_rolled_back(self, isvc: dict[str, Any], record: RolloutRecord) -> bool:
        """True when the InferenceService has no ``spec.canary`` left."""
        return not canary_entries(isvc)
