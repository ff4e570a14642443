"""The head-failure drill of a Ray cluster (``kaiops cluster drill CONFIG --yes``), as restore drills do for
backups: break the thing on purpose, measure the recovery time, report what was lost.

Runbook: the cluster must be ready -> plant a detached actor on a worker (its state: a token and a call count)
-> note the Pods -> delete the head Pod -> KubeRay creates a new one -> wait until it is Ready, then until the
whole cluster is ready again -> ask the new head for the actor -> compare. With ``gcsFaultTolerance`` in the
config (KubeRay ``gcsFaultToleranceOptions``, Redis) every worker and the actor must survive, or the drill
fails; without it the drill passes on recovery alone and lists the losses. All I/O is in :mod:`tasks.ray.drill`
and :mod:`tasks.ray.provision`.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from prefect import flow
from prefect.artifacts import create_markdown_artifact

from configs.inputs import ConfigPath, Seconds
from tasks.errors import InputError
from tasks.ray import drill as rd
from tasks.ray import provision as rp
from tasks.ray.status import dashboard_url


@flow(name="ray-head-failure-drill", log_prints=True)
def head_failure_drill(config_path: ConfigPath, yes: bool = False, dry_run: bool = False,
                       timeout_s: Seconds = 900.0, kubeconfig: str | None = None) -> dict[str, Any]:
    """Delete the head Pod of a ready cluster and report recovery time and what survived.

    Args:
        config_path: the cluster's ``configs/clusters/*.yaml``.
        yes: confirm (the head Pod is deleted; running Ray jobs on it are lost).
        dry_run: name the head Pod that would be deleted; change nothing.
        timeout_s: seconds for the whole recovery.

    Returns:
        ``{"cluster", "fault_tolerant", "head": {"deleted", "new"}, "recovery_s": {"head_ready",
        "cluster_ready", "actor_answered"}, "workers": {pod: outcome}, "actor": outcome, "lost": [...],
        "passed", "ok"}``; outcomes are :class:`tasks.ray.drill.Outcome` values.

    Raises:
        InputError: ``yes`` not given (nothing changed), or the cluster does not exist.
        ProvisionTimeout: the cluster was not ready before the drill, or did not recover in time.
    """
    cfg = rp.load_config(config_path)
    live = rp.read_cluster(kubeconfig, cfg.name, cfg.namespace)
    if live is None:
        raise InputError(config_path, "name", f"RayCluster {cfg.namespace}/{cfg.name} does not exist",
                         "provision it first: kaiops provision " + config_path)
    if not yes and not dry_run:
        raise InputError("<cli>", "--yes", f"the drill deletes the head Pod of {cfg.namespace}/{cfg.name}",
                         "pass --yes to confirm, or --dry-run to see which Pod")
    obj = rp.wait_until(kubeconfig, cfg.name, cfg.namespace, min(timeout_s, 300.0))
    summary: dict[str, Any] = {"cluster": f"{cfg.namespace}/{cfg.name}",
                               "fault_tolerant": bool((obj.get("spec") or {}).get("gcsFaultToleranceOptions"))}
    if dry_run:
        summary.update(head={"would_delete": (obj.get("status") or {}).get("head", {}).get("podName")}, ok=True)
        return summary
    planted = rd.plant_actor(dashboard_url(obj), secrets.token_hex(8))
    before = rd.cluster_pods(kubeconfig, cfg.name, cfg.namespace)
    started, deadline = time.monotonic(), time.time() + timeout_s
    deleted = rd.delete_head_pod(kubeconfig, cfg.name, cfg.namespace)
    print(f"drill: deleted head Pod {deleted['pod']} (GCS fault tolerance: {deleted['fault_tolerant']})")
    new_head = rd.wait_new_head(kubeconfig, cfg.name, cfg.namespace, deleted["uid"], timeout_s)
    head_ready = time.monotonic() - started
    rp.wait_until(kubeconfig, cfg.name, cfg.namespace, max(1.0, deadline - time.time()))
    cluster_ready = time.monotonic() - started
    want = sum(1 for p in before.values() if p["type"] == "worker")
    probed = rd.probe_actor(kubeconfig, cfg.name, cfg.namespace, deadline, cleanup=True, want_workers=want)
    answered = time.monotonic() - started
    workers = rd.worker_outcomes(before, rd.cluster_pods(kubeconfig, cfg.name, cfg.namespace))
    actor = rd.actor_outcome(planted, probed)
    passed, lost = rd.verdict(deleted["fault_tolerant"], workers, actor)
    summary.update(
        fault_tolerant=deleted["fault_tolerant"],
        head={"deleted": deleted["pod"], "new": new_head},
        recovery_s={"head_ready": round(head_ready, 1), "cluster_ready": round(cluster_ready, 1),
                    "actor_answered": round(answered, 1)},
        workers={k: v.value for k, v in workers.items()}, actor=actor.value,
        actor_detail={k: probed.get(k) for k in ("calls", "workers", "error") if k in probed},
        lost=lost, passed=passed, ok=passed,
    )
    _report(summary)
    return summary


def _report(summary: dict[str, Any]) -> None:
    rows = "\n".join(f"| {k} | {v} |" for k, v in summary.items() if k != "lost")
    lost = "\n".join(f"- {x}" for x in summary.get("lost") or [])
    body = f"# Head-failure drill: {summary['cluster']}\n\n| field | value |\n|---|---|\n{rows}\n\n## Lost\n\n{lost}\n"
    try:
        create_markdown_artifact(markdown=body, key="ray-drill-" + summary["cluster"].replace("/", "-").lower()[:50],
                                 description="Ray head-failure drill")
    except Exception as exc:  # no Prefect API: the summary is still returned and printed
        print(f"artifact not written: {exc}")
