"""Canary routing in Knative (Serverless) mode: ``predictor.canaryTrafficPercent`` on the one InferenceService."""

from __future__ import annotations

from typing import Any

from kubernetes.dynamic import DynamicClient

from tasks.rollout.isvc import predictor_status, storage_uri, traffic
from tasks.rollout.routing.base import Routing, SpecChange
from tasks.rollout.state import RolloutRecord


class ServerlessRouting(Routing):
    """Knative: ``predictor.canaryTrafficPercent`` on the one InferenceService.

    - start: new ``storageUri`` and ``canaryTrafficPercent = first step`` in one write; Knative creates a
      revision and KServe splits traffic between it and ``latestRolledoutRevision`` (tag ``prev``).
    - set traffic: change ``canaryTrafficPercent``.
    - promote: remove ``canaryTrafficPercent``: the latest revision takes 100 % and becomes
      ``latestRolledoutRevision``.
    - rollback: ``canaryTrafficPercent: 0`` sends 100 % back to ``latestRolledoutRevision`` at once (KServe
      remembers it in status; if the canary had already reached 100 % KServe falls back to
      ``previousRolledoutRevision``). The same write puts the previous ``storageUri`` back, so the spec
      says what serves: Knative then creates one more revision from that spec (same model as the
      previous one) which, with ``canaryTrafficPercent: 0`` kept, takes no traffic - the revision serving
      100 % stays the old, already warm one and the next rollout starts from a spec that matches it.
    """

    mode = "Serverless"

    def __init__(self, dyn: DynamicClient, namespace: str, name: str) -> None:
        self.dyn, self.namespace, self.name = dyn, namespace, name

    def revisions(self, isvc: dict[str, Any]) -> tuple[str, str]:
        """(canary revision, baseline revision) from ``status.components.predictor.traffic``."""
        pred = predictor_status(isvc)
        canary = baseline = ""
        for t in pred.get("traffic") or []:
            if t.get("latestRevision"):
                canary = t.get("revisionName", "")
            elif t.get("tag") == "prev" or not baseline:
                baseline = t.get("revisionName", "")
        return canary or pred.get("latestReadyRevision", ""), baseline or pred.get("latestRolledoutRevision", "")

    def stable_revision(self, isvc: dict[str, Any]) -> str:
        """The revision serving now, before a rollout (``latestRolledoutRevision`` or ``latestReadyRevision``)."""
        pred = predictor_status(isvc)
        return str(pred.get("latestRolledoutRevision") or pred.get("latestReadyRevision", ""))

    @staticmethod
    def start_spec(uri: str, percent: int) -> SpecChange:
        def change(spec: dict[str, Any]) -> None:
            spec["predictor"].setdefault("model", {})["storageUri"] = uri
            spec["predictor"]["canaryTrafficPercent"] = percent

        return change

    @staticmethod
    def traffic_spec(percent: int) -> SpecChange:
        def change(spec: dict[str, Any]) -> None:
            spec["predictor"]["canaryTrafficPercent"] = percent

        return change

    @staticmethod
    def promote_spec() -> SpecChange:
        def change(spec: dict[str, Any]) -> None:
            spec["predictor"].pop("canaryTrafficPercent", None)

        return change

    @staticmethod
    def rollback_spec(previous_uri: str) -> SpecChange:
        def change(spec: dict[str, Any]) -> None:
            spec["predictor"]["canaryTrafficPercent"] = 0
            if previous_uri:
                spec["predictor"].setdefault("model", {})["storageUri"] = previous_uri

        return change

    # after_start / after_traffic / after_promote / after_rollback: nothing beyond the spec change (Routing's
    # defaults); after_ready too: KServe already routes the first step's share to the new revision once ready.

    def ready_target(self, record: RolloutRecord) -> tuple[str, str, int | None]:
        """(namespace, InferenceService name, expected canary percent) to wait on."""
        return self.namespace, self.name, record.traffic

    def serving(self, isvc: dict[str, Any]) -> dict[str, int]:
        """Percent per revision as the status reports it."""
        return traffic(isvc)

    def look_revisions(self, isvc: dict[str, Any], record: RolloutRecord) -> tuple[str, str]:
        """(canary, baseline) revision names the look's queries use: the ones on record since the canary
        became ready (the status's traffic list changes once the canary is promoted)."""
        return record.canary_revision, record.previous_revision

    def describe_rollback(self, record: RolloutRecord) -> str:
        """What :meth:`rollback_spec` writes, for ``--dry-run``."""
        return f"canaryTrafficPercent: 0 and storageUri {record.previous_storage_uri}"

    def spec_rolled_back(self, isvc: dict[str, Any], record: RolloutRecord) -> bool:
        """The spec already says what a rollback writes (``canaryTrafficPercent: 0``, the previous URI)."""
        pred = (isvc.get("spec") or {}).get("predictor") or {}
        uri_ok = not record.previous_storage_uri or storage_uri(isvc) == record.previous_storage_uri
        return bool(pred.get("canaryTrafficPercent") == 0 and uri_ok)
