"""Per-kind readiness rules for restore drills, one small unit per kind (``applies_to`` + ``check``).

- RayCluster: ``status.state == "ready"`` and condition ``HeadPodReady`` True (KubeRay
  ``ray-operator/apis/ray/v1/raycluster_types.go``: ``Ready ClusterState = "ready"``, ``HeadPodReady``).
- InferenceService: condition ``Ready`` True (KServe ``pkg/apis/serving/v1beta1/inference_service_status.go``).
- Every other kind: ready once it exists (``present``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from tasks.kube import condition_true


@dataclass(frozen=True)
class Readiness:
    """A verdict: ``ready`` and a short ``reason`` a person can act on."""

    ready: bool
    reason: str


class Rule(Protocol):
    """A readiness rule for some kinds."""

    def applies_to(self, obj: dict[str, Any]) -> bool: ...
    def check(self, obj: dict[str, Any]) -> Readiness: ...


class RayClusterReady:
    """RayCluster: state ready and the head pod ready."""

    def applies_to(self, obj: dict[str, Any]) -> bool:
        return obj.get("kind") == "RayCluster" and str(obj.get("apiVersion", "")).startswith("ray.io/")

    def check(self, obj: dict[str, Any]) -> Readiness:
        state = (obj.get("status") or {}).get("state")
        if state != "ready":
            return Readiness(False, f"state is {state or 'unset'}, not ready")
        if not condition_true(obj, "HeadPodReady"):
            return Readiness(False, "condition HeadPodReady is not True")
        return Readiness(True, "state ready, HeadPodReady True")


class InferenceServiceReady:
    """InferenceService: condition Ready True."""

    def applies_to(self, obj: dict[str, Any]) -> bool:
        return obj.get("kind") == "InferenceService" and str(obj.get("apiVersion", "")).startswith("serving.kserve.io/")

    def check(self, obj: dict[str, Any]) -> Readiness:
        if condition_true(obj, "Ready"):
            return Readiness(True, "condition Ready True")
        return Readiness(False, "condition Ready is not True")


class Present:
    """Any kind without a readiness signal: ready when it exists."""

    def applies_to(self, obj: dict[str, Any]) -> bool:
        return True

    def check(self, obj: dict[str, Any]) -> Readiness:
        return Readiness(True, "present")


RULES: tuple[Rule, ...] = (RayClusterReady(), InferenceServiceReady(), Present())


def rule_for(obj: dict[str, Any]) -> Rule:
    """The first rule that applies to ``obj`` (``Present`` at the end catches every kind)."""
    return next(r for r in RULES if r.applies_to(obj))


def readiness(obj: dict[str, Any]) -> Readiness:
    """The readiness of ``obj`` by its kind's rule."""
    return rule_for(obj).check(obj)


def has_signal(obj: dict[str, Any]) -> bool:
    """True when ``obj``'s kind has a real readiness rule (not just ``present``)."""
    return not isinstance(rule_for(obj), Present)
