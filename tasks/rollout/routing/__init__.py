"""Canary routing per KServe deployment mode, behind one interface (:class:`Routing`).

What it is: :func:`routing_for` picks :class:`ServerlessRouting` (Knative ``canaryTrafficPercent``),
:class:`CanaryListRouting` (Standard mode, KServe v0.20's ``spec.canary[]`` plus kaiops's weighted HTTPRoute) or
:class:`RawRouting` (Standard mode, a second InferenceService behind that HTTPRoute) for an InferenceService, and
refuses a policy written for the other mode or a way the installed KServe release would ignore.
What it is not: no metrics, no rollout decisions (:mod:`tasks.rollout.state`), no record I/O
(:mod:`tasks.rollout.record`).
"""

from __future__ import annotations

from typing import Any

from kubernetes.dynamic import DynamicClient

from tasks import kube
from tasks.errors import InputError
from tasks.rollout.isvc import ISVC_API, ISVC_KIND, deployment_mode, installed_canary_list
from tasks.rollout.routing.base import Routing, SpecChange
from tasks.rollout.routing.canary_list import CanaryListRouting, canary_entries
from tasks.rollout.routing.raw import ROUTE_API, ROUTE_KIND, SCALE_DOWN_DELAY_S, RawRouting, route_host
from tasks.rollout.routing.serverless import ServerlessRouting

__all__ = ["ROUTE_API", "ROUTE_KIND", "SCALE_DOWN_DELAY_S", "WAYS", "CanaryListRouting", "RawRouting", "Routing",
           "ServerlessRouting", "SpecChange", "choose_way", "routing_for", "standard_way"]

#: Standard-mode canary ways (policy ``gateway.way``): ``auto`` = what the installed release offers.
WAYS = ("auto", "spec-canary", "second-inferenceservice")


def choose_way(way: str | None, live_way: str | None, release_has_canary_list: bool, source: str) -> str:
    """Pure rule of :func:`standard_way`: ``spec-canary`` or ``second-inferenceservice``.

    Args:
        way: the policy's ``gateway.way`` (``auto``/None: what the release offers).
        live_way: the way of a rollout already under way on the cluster (it wins), None when there is none.
        release_has_canary_list: the installed InferenceService CRD has ``spec.canary``.

    Raises:
        InputError: ``way: spec-canary`` on a release without ``spec.canary`` (the apiserver prunes a field its
            schema does not declare: the canary would never start, without any error).
    """
    if live_way:
        return live_way
    if way in (None, "auto"):
        return "spec-canary" if release_has_canary_list else "second-inferenceservice"
    if way == "spec-canary" and not release_has_canary_list:
        raise InputError(source, "gateway.way",
                         "spec-canary, but the installed KServe release's InferenceService CRD has no spec.canary "
                         "(added in v0.20.0): the apiserver would drop the field and no canary would start",
                         "set gateway.way: second-inferenceservice (or auto), or upgrade KServe to v0.20.0 or later")
    if way not in WAYS:
        raise InputError(source, "gateway.way", f"unknown way {way!r}", f"use one of {', '.join(WAYS)}")
    return str(way)


def standard_way(dyn: DynamicClient, isvc: dict[str, Any], way: str | None, source: str) -> str:
    """Which Standard-mode way serves this InferenceService (:func:`choose_way`), read from the cluster.

    A rollout already under way decides it, so ``kaiops rollback``/``guard`` need no policy: ``spec.canary`` on
    the InferenceService means ``spec-canary``, an InferenceService ``<name>-canary`` the other way. Else
    ``way``; ``auto``/None picks ``spec-canary`` when the installed KServe release's InferenceService CRD has
    ``spec.canary`` (v0.20.0 on, :func:`tasks.rollout.isvc.installed_canary_list`).

    Raises:
        InputError: see :func:`choose_way`.
    """
    meta = isvc["metadata"]
    live: str | None = None
    if canary_entries(isvc):
        live = "spec-canary"
    else:
        try:
            kube.get(dyn, ISVC_API, ISVC_KIND, f"{meta['name']}-canary", meta["namespace"])
            live = "second-inferenceservice"
        except kube.NotFound:
            pass
    try:
        has = installed_canary_list(dyn)
    except kube.NotFound:
        has = False
    return choose_way(way, live, has, source)


def routing_for(
    dyn: DynamicClient, isvc: dict[str, Any], policy_mode: str | None, gateway: tuple[str, str], source: str,
    scale_down_delay_s: float = SCALE_DOWN_DELAY_S, way: str | None = None,
) -> Routing:
    """Return the routing for the InferenceService's deployment mode.

    ``gateway`` is (name, namespace) of the Gateway an HTTPRoute attaches to; ``scale_down_delay_s`` (seconds)
    how long a raw-mode InferenceService keeps serving after the route moved off it (see :class:`RawRouting`);
    ``way`` the policy's Standard-mode way (:func:`standard_way`).

    Raises:
        InputError: the policy is written for the other mode (its traffic setting would be ignored:
            KServe raw mode ignores ``canaryTrafficPercent``; Knative routes ignore an HTTPRoute's weights), or
            a way the installed release would ignore (:func:`standard_way`).
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
        cls = CanaryListRouting if standard_way(dyn, isvc, way, source) == "spec-canary" else RawRouting
        return cls(dyn, meta["namespace"], meta["name"], gateway, scale_down_delay_s, route_host(isvc))
    return ServerlessRouting(dyn, meta["namespace"], meta["name"])
