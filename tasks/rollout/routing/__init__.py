"""Canary routing per KServe deployment mode, behind one interface (:class:`Routing`).

What it is: :func:`routing_for` picks :class:`ServerlessRouting` (Knative ``canaryTrafficPercent``) or
:class:`RawRouting` (a second InferenceService and a Gateway API HTTPRoute) for an InferenceService, and
refuses a policy written for the other mode. What it is not: no metrics, no rollout decisions
(:mod:`tasks.rollout.state`), no record I/O (:mod:`tasks.rollout.record`).
"""

from __future__ import annotations

from typing import Any

from kubernetes.dynamic import DynamicClient

from tasks.errors import InputError
from tasks.rollout.isvc import deployment_mode
from tasks.rollout.routing.base import Routing, SpecChange
from tasks.rollout.routing.raw import ROUTE_API, ROUTE_KIND, SCALE_DOWN_DELAY_S, RawRouting
from tasks.rollout.routing.serverless import ServerlessRouting

__all__ = ["ROUTE_API", "ROUTE_KIND", "SCALE_DOWN_DELAY_S", "RawRouting", "Routing", "ServerlessRouting",
           "SpecChange", "routing_for"]


def routing_for(
    dyn: DynamicClient, isvc: dict[str, Any], policy_mode: str | None, gateway: tuple[str, str], source: str,
    scale_down_delay_s: float = SCALE_DOWN_DELAY_S,
) -> Routing:
    """Return the routing for the InferenceService's deployment mode.

    ``gateway`` is (name, namespace) of the Gateway an HTTPRoute attaches to; ``scale_down_delay_s`` (seconds)
    how long a raw-mode InferenceService keeps serving after the route moved off it (see :class:`RawRouting`).

    Raises:
        InputError: the policy is written for the other mode (its traffic setting would be ignored:
            KServe raw mode ignores ``canaryTrafficPercent``; Knative routes ignore an HTTPRoute's weights).
    """
    mode = deployment_mode(isvc)
    if policy_mode is not None and policy_mode != mode:
        raise InputError(
            source,
            "mode",
            f"policy mode {policy_mode} but InferenceService {isvc['metadata']['name']} runs in {mode} mode, "
            f"which would ignore the policy's traffic split",
            f"set mode: {mode} in the policy",
        )
    meta = isvc["metadata"]
    if mode == "RawDeployment":
        if (isvc.get("spec") or {}).get("predictor", {}).get("canaryTrafficPercent") is not None:
            raise InputError(
                f"InferenceService {meta['namespace']}/{meta['name']}",
                "spec.predictor.canaryTrafficPercent",
                "set, but RawDeployment mode ignores it",
                "remove it; kaiops splits raw-mode traffic with an HTTPRoute",
            )
        return RawRouting(dyn, meta["namespace"], meta["name"], gateway, scale_down_delay_s)
    return ServerlessRouting(dyn, meta["namespace"], meta["name"])
