"""Ray cluster provisioning flows: provision, scale, suspend, resume, upgrade, teardown.

Each flow body reads as the runbook: load the config -> render -> validate -> plan (server-side dry run, diff
against the live object) -> apply only when the plan changes something -> watch until ready -> smoke job ->
report. Running any of them twice changes nothing the second time; ``dry_run=True`` shows the diff and stops.
All Kubernetes and HTTP work is in :mod:`tasks.ray.provision`.
"""

from __future__ import annotations

import time
from typing import Any

from prefect import flow
from prefect.artifacts import create_markdown_artifact

from configs.inputs import ConfigPath, K8sName, Replicas, Seconds
from configs.ray_cluster import RayClusterConfig
from tasks import kube
from tasks.errors import InputError, PermanentError
from tasks.ray import provision as rp
from tasks.ray.manifest import API_VERSION, KIND
from tasks.ray.plan import SUSPEND_MANAGER, Decision, Plan, keep_autoscaler_state
from tasks.ray.status import dashboard_url

DEFAULT_TIMEOUT_S = 600.0


def _conditions(obj: dict[str, Any] | None) -> dict[str, str]:
    return {c["type"]: f"{c['status']} ({c.get('reason')})" for c in ((obj or {}).get("status") or {}).get("conditions")
            or []}


def _summary(cfg: RayClusterConfig, decision: Decision, obj: dict[str, Any] | None, started: float,
             **extra: Any) -> dict[str, Any]:
    status = (obj or {}).get("status") or {}
    endpoints = status.get("endpoints") or {}
    return {
        "cluster": f"{cfg.namespace}/{cfg.name}",
        "environment": cfg.environment.value,
        "decision": decision.value,
        "generation": (obj or {}).get("metadata", {}).get("generation"),
        "observedGeneration": status.get("observedGeneration"),
        "resourceVersion": (obj or {}).get("metadata", {}).get("resourceVersion"),
        "state": status.get("state"),
        "conditions": _conditions(obj),
        "workers": {"ready": status.get("readyWorkerReplicas", 0), "desired": status.get("desiredWorkerReplicas", 0)},
        "endpoints": endpoints,
        "dashboard": _dashboard(obj),
        "seconds": round(time.monotonic() - started, 1),
        **extra,
    }


def _dashboard(obj: dict[str, Any] | None) -> str | None:
    try:
        return dashboard_url(obj or {"metadata": {"name": "?"}})
    except PermanentError:
        return None


def _report(title: str, summary: dict[str, Any], diff: str = "") -> None:
    """Leave a markdown artifact (best effort: no Prefect API, no artifact)."""
    rows = "\n".join(f"| {k} | {v} |" for k, v in summary.items() if k not in ("diff", "smoke"))
    smoke = summary.get("smoke") or {}
    body = f"# {title}\n\n| field | value |\n|---|---|\n{rows}\n"
    if smoke:
        body += f"\n## Smoke job\n\n`{smoke.get('job_id')}`: **{smoke.get('status')}** in {smoke.get('seconds')} s\n"
    if diff:
        body += f"\n## Spec diff\n\n```diff\n{diff}```\n"
    key = "ray-" + summary["cluster"].replace("/", "-").lower()[:60]
    try:
        create_markdown_artifact(markdown=body, key=key, description=title)
    except Exception as exc:
        print(f"artifact not written: {exc}")


def _converge(cfg: RayClusterConfig, manifest: dict[str, Any], kubeconfig: str | None, dry_run: bool,
              field_manager: str = kube.FIELD_MANAGER) -> tuple[Plan, dict[str, Any] | None]:
    """Plan, then apply only when the plan changes something. Returns the plan and the live object after."""
    force = False
    if field_manager == kube.FIELD_MANAGER:  # the autoscaler's replicas are kept (KubeRay's atomic list)
        manifest, force = keep_autoscaler_state(manifest, rp.read_cluster(kubeconfig, cfg.name, cfg.namespace))
        if force:
            print(f"{cfg.namespace}/{cfg.name}: the Ray autoscaler owns spec.workerGroupSpecs (one atomic list in "
                  "KubeRay's CRD); keeping its replicas and workersToDelete, taking the list back")
    plan = rp.plan_apply(kubeconfig, manifest, field_manager, force)
    if plan.diff:
        print(plan.diff)
    if dry_run or plan.decision is Decision.unchanged:
        print(f"{cfg.namespace}/{cfg.name}: {'dry run, ' if dry_run else ''}{plan.decision.value}")
        return plan, rp.read_cluster(kubeconfig, cfg.name, cfg.namespace)
    obj = rp.apply_manifest(kubeconfig, manifest, field_manager, force)
    rp.record_event(kubeconfig, obj, f"Kaiops{plan.decision.value.capitalize()}",
                    f"kaiops {plan.decision.value} the RayCluster (generation {obj['metadata'].get('generation')})")
    return plan, obj


def _ready_and_smoke(cfg: RayClusterConfig, kubeconfig: str | None, timeout_s: float,
                     smoke: bool) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Wait until ready, then run the smoke job in what is left of ``timeout_s`` (seconds)."""
    deadline = time.time() + timeout_s
    obj = rp.wait_until(kubeconfig, cfg.name, cfg.namespace, timeout_s)
    if not smoke:
        return obj, None
    workers = int((obj.get("status") or {}).get("desiredWorkerReplicas") or 0)
    result = rp.smoke_job(dashboard_url(obj), deadline, workers)
    if not result["succeeded"]:
        rp.record_event(kubeconfig, obj, "KaiopsSmokeFailed", f"smoke job {result['job_id']}: {result['status']}",
                        "Warning")
        raise PermanentError(
            f"RayCluster {cfg.namespace}/{cfg.name} is ready but the smoke job {result['job_id']} ended "
            f"{result['status']}: {result.get('message') or '-'}\n{result['logs'][-1500:]}"
        )
    return obj, result


@flow(name="provision-ray-cluster", log_prints=True)
def provision_ray_cluster(config_path: ConfigPath, dry_run: bool = False, timeout_s: Seconds = DEFAULT_TIMEOUT_S,
                          kubeconfig: str | None = None, smoke: bool = True) -> dict[str, Any]:
    """Provision (create or update) the Ray cluster described by ``config_path`` and prove it works.

    Args:
        config_path: a ``configs/clusters/*.yaml`` file.
        dry_run: print the server-side dry-run diff and change nothing.
        timeout_s: seconds to wait for readiness.
        kubeconfig: default ``$KUBECONFIG``.
        smoke: run the smoke job once ready.

    Returns:
        The JSON summary (cluster, decision, generation, state, conditions, workers, endpoints, smoke, diff).

    Raises:
        InputError: bad config (nothing changed). ProvisionTimeout: not ready in time (with a diagnosis).
        PermanentError: the server refused the manifest, or the smoke job failed.
    """
    started = time.monotonic()
    cfg = rp.load_config(config_path)
    manifest = rp.render_and_validate(cfg, config_path)
    if not dry_run:
        rp.ensure_namespace(kubeconfig, cfg.namespace)
    plan, obj = _converge(cfg, manifest, kubeconfig, dry_run)
    if dry_run:
        summary = _summary(cfg, Decision.planned, obj, started, would=plan.decision.value, diff=plan.diff,
                           ok=True)
        _report(f"Ray cluster {cfg.name}: dry run", summary, plan.diff)
        return summary
    obj, result = _ready_and_smoke(cfg, kubeconfig, timeout_s, smoke)
    summary = _summary(cfg, plan.decision, obj, started, diff=plan.diff, smoke=result,
                       ok=result is None or result["succeeded"])
    _report(f"Ray cluster {cfg.name}: {plan.decision.value}", summary, plan.diff)
    return summary


@flow(name="upgrade-ray-cluster", log_prints=True)
def upgrade_ray_cluster(config_path: ConfigPath, dry_run: bool = False, timeout_s: Seconds = DEFAULT_TIMEOUT_S,
                        kubeconfig: str | None = None) -> dict[str, Any]:
    """Apply a changed spec to an existing cluster, wait for the new ``observedGeneration`` and a passing smoke job.

    Raises:
        InputError: the cluster does not exist yet (use provision) or the config is bad.
    """
    cfg = rp.load_config(config_path)
    if rp.read_cluster(kubeconfig, cfg.name, cfg.namespace) is None:
        raise InputError(config_path, "name", f"RayCluster {cfg.namespace}/{cfg.name} does not exist",
                         "provision it first: kaiops provision " + config_path)
    return provision_ray_cluster(config_path, dry_run=dry_run, timeout_s=timeout_s, kubeconfig=kubeconfig)


@flow(name="scale-ray-cluster", log_prints=True)
def scale_ray_cluster(config_path: ConfigPath, group: K8sName, replicas: Replicas, dry_run: bool = False,
                      timeout_s: Seconds = DEFAULT_TIMEOUT_S, kubeconfig: str | None = None) -> dict[str, Any]:
    """Set one worker group's replicas (within its min/max) and wait until the workers are ready.

    The config file stays the source of truth: the next ``provision`` from it restores its replicas.

    Raises:
        InputError: unknown group, or replicas outside [minReplicas, maxReplicas].
    """
    started = time.monotonic()
    cfg = rp.load_config(config_path)
    if cfg.autoscaling.enabled:
        # KubeRay v1.6.2 deletes no worker Pod when replicas drop on an autoscaling cluster (only the
        # autoscaler's workersToDelete; raycluster_controller.go lines 911-930), and the autoscaler rewrites
        # replicas anyway.
        raise InputError(config_path, "autoscaling.enabled", "the in-tree autoscaler owns the replicas of this "
                         "cluster; kaiops scale would be undone (and a scale-down deletes no Pod)",
                         "change the group's minReplicas/maxReplicas and run kaiops provision, or turn autoscaling "
                         "off")
    names = [g.name for g in cfg.worker_groups]
    if group not in names:
        raise InputError("<cli>", "--group", f"no worker group {group!r} in {config_path}",
                         f"use one of: {', '.join(names) or '(none)'}")
    groups = []
    for g in cfg.worker_groups:
        if g.name == group:
            if not g.min_replicas <= replicas <= g.max_replicas:
                raise InputError("<cli>", "--replicas", f"{replicas} is outside [{g.min_replicas}, {g.max_replicas}]",
                                 f"choose {g.min_replicas}..{g.max_replicas} or change minReplicas/maxReplicas")
            g = g.model_copy(update={"replicas": replicas})
        groups.append(g)
    cfg = cfg.model_copy(update={"worker_groups": groups})
    manifest = rp.render_and_validate(cfg, config_path)
    plan, obj = _converge(cfg, manifest, kubeconfig, dry_run)
    if not dry_run:
        obj = rp.wait_until(kubeconfig, cfg.name, cfg.namespace, timeout_s)
    summary = _summary(cfg, Decision.planned if dry_run else plan.decision, obj, started, group=group,
                       replicas=replicas, diff=plan.diff, ok=True)
    _report(f"Ray cluster {cfg.name}: scale {group} to {replicas}", summary, plan.diff)
    return summary


def _suspend_manifest(cfg: RayClusterConfig, suspend: bool) -> dict[str, Any]:
    return {"apiVersion": API_VERSION, "kind": KIND, "metadata": {"name": cfg.name, "namespace": cfg.namespace},
            "spec": {"suspend": suspend}}


def _set_suspend(config_path: str, suspend: bool, dry_run: bool, timeout_s: float, kubeconfig: str | None,
                 smoke: bool) -> dict[str, Any]:
    started = time.monotonic()
    cfg = rp.load_config(config_path)
    if rp.read_cluster(kubeconfig, cfg.name, cfg.namespace) is None:
        raise InputError(config_path, "name", f"RayCluster {cfg.namespace}/{cfg.name} does not exist",
                         "provision it first: kaiops provision " + config_path)
    plan, obj = _converge(cfg, _suspend_manifest(cfg, suspend), kubeconfig, dry_run, SUSPEND_MANAGER)
    result = None
    if not dry_run:
        if suspend:
            obj = rp.wait_until(kubeconfig, cfg.name, cfg.namespace, timeout_s, want="suspended")
        else:
            obj, result = _ready_and_smoke(cfg, kubeconfig, timeout_s, smoke)
    summary = _summary(cfg, Decision.planned if dry_run else plan.decision, obj, started, diff=plan.diff,
                       smoke=result, ok=result is None or result["succeeded"])
    _report(f"Ray cluster {cfg.name}: {'suspend' if suspend else 'resume'}", summary, plan.diff)
    return summary


@flow(name="suspend-ray-cluster", log_prints=True)
def suspend_ray_cluster(config_path: ConfigPath, dry_run: bool = False, timeout_s: Seconds = 300.0,
                        kubeconfig: str | None = None) -> dict[str, Any]:
    """Set ``spec.suspend: true`` (field manager ``kaiops-suspend``) and wait for ``RayClusterSuspended``."""
    return _set_suspend(config_path, True, dry_run, timeout_s, kubeconfig, smoke=False)


@flow(name="resume-ray-cluster", log_prints=True)
def resume_ray_cluster(config_path: ConfigPath, dry_run: bool = False, timeout_s: Seconds = DEFAULT_TIMEOUT_S,
                       kubeconfig: str | None = None, smoke: bool = True) -> dict[str, Any]:
    """Set ``spec.suspend: false``, wait until ready again and run the smoke job."""
    return _set_suspend(config_path, False, dry_run, timeout_s, kubeconfig, smoke)


@flow(name="teardown-ray-cluster", log_prints=True)
def teardown_ray_cluster(config_path: ConfigPath, yes: bool = False, dry_run: bool = False, timeout_s: Seconds = 300.0,
                         kubeconfig: str | None = None) -> dict[str, Any]:
    """Delete the RayCluster (its operator deletes the head and the owned head Service).

    Raises:
        InputError: ``yes`` is not set (nothing is deleted).
    """
    started = time.monotonic()
    cfg = rp.load_config(config_path)
    if not yes and not dry_run:
        raise InputError("<cli>", "--yes", f"teardown deletes RayCluster {cfg.namespace}/{cfg.name} and its Ray head",
                         "pass --yes (yes=True) to confirm, or --dry-run to see what would go")
    live = rp.read_cluster(kubeconfig, cfg.name, cfg.namespace)
    if dry_run or live is None:
        decision = Decision.planned if dry_run and live is not None else Decision.absent
        summary = _summary(cfg, decision, live, started, ok=True)
        _report(f"Ray cluster {cfg.name}: teardown ({decision.value})", summary)
        return summary
    rp.record_event(kubeconfig, live, "KaiopsTeardown", "kaiops is deleting the RayCluster")
    decision = rp.delete_cluster(kubeconfig, cfg.name, cfg.namespace, timeout_s)
    service_gone = rp.owned_service_gone(kubeconfig, cfg.name, cfg.namespace)
    summary = _summary(cfg, decision, live, started, head_service_deleted=service_gone, ok=service_gone)
    _report(f"Ray cluster {cfg.name}: teardown", summary)
    return summary
