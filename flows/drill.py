"""One restore drill, start to finish: the order of steps the ``restore_drill`` flow and the fleet drill share.

:func:`run_drill` first sweeps the scratch namespaces of dead drills (:func:`tasks.backup.scratch.sweep`), then
restores a verified backup into fresh scratch namespaces labelled with its drill id and leased to it (renewed
while it runs: :class:`tasks.backup.scratch.Heartbeat`), waits for readiness, compares each restored object with
the backup, measures the RTO, checks cluster-scoped objects with a server-side dry run, deletes what it
restored and writes the drill metrics. Each step is a Prefect task of :mod:`tasks.backup.steps` (a task may
call tasks: they show as nested runs). A drill killed mid-way leaves its namespaces with a lease nobody renews:
the next drill or retention run deletes them, and no backup includes them meanwhile.
"""

from __future__ import annotations

import os
import secrets
import socket
import time
from datetime import UTC, datetime
from functools import cache
from typing import Any

from configs.backup import BackupPolicy
from tasks import kube
from tasks.backup import scratch, steps
from tasks.backup.drill import DrillVerdict, ReadinessMode, compare_applied, plan_drill, summarise
from tasks.backup.restore import Action, ExistingPolicy, ProductionMarker
from tasks.errors import PermanentError, io_retries


class DrillFailed(PermanentError):
    """A restore drill did not prove the backup: objects not restored, not ready, different, or too slow."""


def sweep_dead_drills(kubeconfig: str | None = None, dry_run: bool = False) -> dict[str, list[str]]:
    """Delete the scratch namespaces of dead drills on the cluster (:func:`tasks.backup.scratch.sweep`).

    Returns:
        ``{"swept": [namespace names], "errors": [messages]}``.

    Raises:
        TemporaryError / PermanentError: the namespaces could not be listed.
    """
    return scratch.sweep(kube.connect(kubeconfig), dry_run=dry_run)


@cache
def sweep_task() -> Any:
    """:func:`sweep_dead_drills` as a Prefect task retrying temporary errors (made on first use: the dry-run
    paths never import Prefect)."""
    from prefect import task
    from prefect.cache_policies import NO_CACHE

    return task(name="drill-sweep", cache_policy=NO_CACHE, **io_retries(2, 5))(sweep_dead_drills)


def sweep_quietly(kubeconfig: str | None, dry_run: bool = False) -> dict[str, list[str]]:
    """:func:`sweep_task` (plain :func:`sweep_dead_drills` when ``dry_run``: no task run for a read), its failure a
    message in ``errors``: housekeeping never fails a drill or a retention run."""
    try:
        if dry_run:
            return sweep_dead_drills(kubeconfig, dry_run=True)
        return sweep_task()(kubeconfig=kubeconfig)
    except Exception as exc:  # no cluster configured, unreachable, or refused: reported, the next run tries again
        why = f"{exc.__class__.__name__}: {str(exc)[:300]}"
        return {"swept": [], "errors": [f"sweep of dead drills' namespaces: {why}"]}


def preview_drill(pol: BackupPolicy, backup_id: str, kubeconfig: str | None) -> dict[str, Any]:
    """What a drill of ``backup_id`` would do, changing nothing: every checksum verified, the scratch namespace
    map, the objects per kind, and the restore plan checked against the cluster (CRDs present). Plain function
    calls, no Prefect task runs: ``kaiops drill --dry-run`` runs it without a flow run.

    Returns:
        ``{"dry_run": True, "backup_id", "verified": n, "would_restore": {kind: n}, "scratch_namespaces":
        {backed-up: scratch}, "cluster_scoped_checked": n}``.

    Raises:
        NotFound / BackupIncomplete / ChecksumMismatch: the backup is missing, cut off or altered.
        MissingCRDs (PermanentError): a kind the backup holds has no CRD on the target.
    """
    loaded = steps.verify_with_policy_key(pol, backup_id)  # plain calls: a preview needs no task runs
    verified = len(loaded.objects)
    dplan = plan_drill(loaded.objects, "preview")
    loaded.objects = dplan.restore
    steps.plan_restore(loaded, kubeconfig=kubeconfig, namespace_map=dplan.namespace_map,
                       existing=ExistingPolicy.fail,
                       marker=ProductionMarker(pol.production.key, pol.production.value), yes=False)
    kinds: dict[str, int] = {}
    for obj in dplan.restore:
        kinds[obj["kind"]] = kinds.get(obj["kind"], 0) + 1
    return {"dry_run": True, "backup_id": backup_id, "verified": verified, "would_restore": dict(sorted(kinds.items())),
            "scratch_namespaces": dict(dplan.namespace_map), "cluster_scoped_checked": len(dplan.cluster_scoped)}


def run_drill(pol: BackupPolicy, backup_id: str, readiness: ReadinessMode, timeout: float | None,
              kubeconfig: str | None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Drill ``backup_id`` of ``pol`` (see the module docstring); never raises for a failed drill.

    Args:
        timeout: readiness wait in seconds (None: the policy's ``drill.readiness_timeout_seconds``).

    Returns:
        ``(summary, bad)``: the summary (``verdict``, ``reason``, ``objects`` {restored, ready, equal, total},
        ``rto_seconds``, ``backup_id``, ``drill_id``, ``scratch_namespaces``, ``cleanup_errors``,
        ``metrics_file``...) and one row per object that was not restored, not ready or not equal.

    Raises:
        TemporaryError / PermanentError: the backup cannot be read or verified (a changed object, no key).
    """
    from prefect.utilities.annotations import quote  # a flow run has Prefect loaded; previews never get here

    swept = sweep_quietly(kubeconfig)  # before the clock starts: not part of the RTO
    for name in swept["swept"]:
        print(f"deleted scratch namespace {name} of a dead drill")
    started = time.monotonic()
    drill_id = secrets.token_hex(3)
    loaded = steps.verify_task(pol, backup_id)
    lease = scratch.lease_annotations(f"{socket.gethostname()}:{os.getpid()}", datetime.now(UTC),
                                      pol.drill.lease_seconds)
    dplan = plan_drill(loaded.objects, drill_id, lease)
    loaded.objects = dplan.restore
    marker = ProductionMarker(pol.production.key, pol.production.value)
    with scratch.Heartbeat(kube.connect(kubeconfig), dplan.namespace_map.values(), pol.drill.lease_seconds):
        plan = steps.plan_restore_task(
            quote(loaded),  # quote: Prefect does not walk the thousands of objects looking for futures
            kubeconfig=kubeconfig,
            namespace_map=dplan.namespace_map,
            existing=ExistingPolicy.fail,
            marker=marker,
            yes=False,
        )
        report = steps.apply_restore_task(
            quote(plan),
            kubeconfig=kubeconfig,
            backup_id=backup_id,
            existing=ExistingPolicy.fail,
            dry_run=False,
            parallelism=pol.parallelism,
            keep_live=readiness is ReadinessMode.present,
        )
        ok = {(i.kind, i.namespace or "", i.name) for i in report.items if i.action is Action.created}
        pairs = [
            (orig, applied)
            for orig, applied in zip(dplan.restore, plan.objects, strict=True)
            if applied["kind"] != "Namespace"
            and (applied["kind"], applied["metadata"].get("namespace") or "", applied["metadata"]["name"]) in ok
        ]
        left_out = int((loaded.manifest.get("left_out") or {}).get("secrets-not-encrypted", 0))
        backup_warnings = list(loaded.manifest.get("warnings") or [])
        for warning in backup_warnings:  # the drill repeats what the backup warned about: it explains failures
            print(f"backup {backup_id} warned: {warning}")
        if readiness is ReadinessMode.present:  # the apply's answer is the stored object: compare it, no re-read
            live = {(i.kind, i.namespace or "", i.name): i.live for i in report.items if i.live is not None}
            results = compare_applied([(orig, applied, live[(applied["kind"], applied["metadata"].get("namespace")
                                                              or "", applied["metadata"]["name"])])
                                       for orig, applied in pairs])
        else:
            results = steps.drill_wait_task(
                quote(pairs),
                kubeconfig=kubeconfig,
                mode=readiness,
                timeout=timeout or pol.drill.readiness_timeout_seconds,
                parallelism=pol.parallelism,
                secrets_left_out=left_out > 0,
            )
        rto = time.monotonic() - started
        cluster_failed = 0
        if dplan.cluster_scoped:
            loaded.objects = dplan.cluster_scoped
            cplan = steps.plan_restore_task(
                quote(loaded), kubeconfig=kubeconfig, namespace_map={}, existing=ExistingPolicy.update, marker=marker,
                yes=False,
            )
            creport = steps.apply_restore_task(
                quote(cplan), kubeconfig=kubeconfig, backup_id=backup_id, existing=ExistingPolicy.update, dry_run=True
            )
            cluster_failed = sum(i.action is Action.failed for i in creport.items)
    failed_applies = sum(i.action is Action.failed for i in report.items if i.kind != "Namespace")
    cleanup_errors = steps.drill_cleanup_task(quote(plan.objects), sorted(dplan.namespace_map.values()),
                                              kubeconfig=kubeconfig)
    summary = summarise(
        results,
        rto=rto,
        max_rto=pol.drill.max_rto_seconds,
        failed_applies=failed_applies,
        cluster_checked=len(dplan.cluster_scoped),
        cluster_failed=cluster_failed,
    )
    summary |= {
        "backup_id": backup_id,
        "drill_id": drill_id,
        "readiness": readiness.value,
        "scratch_namespaces": sorted(dplan.namespace_map.values()),
        "cleanup_errors": cleanup_errors,
        "backup_warnings": backup_warnings,
        "swept_namespaces": swept["swept"],
        "sweep_errors": swept["errors"],
    }
    passed = summary["verdict"] == DrillVerdict.passed.value
    summary["metrics_file"] = steps.drill_metrics_task(pol, success=passed, rto=rto, objects=summary["objects"])
    bad = [
        {"object": r.ref, "ready": r.ready, "equal": r.equal, "reason": r.reason}
        for r in results
        if not (r.ready and r.equal)
    ]
    bad += [
        {"object": i.ref, "ready": False, "equal": False, "reason": i.message}
        for i in report.items
        if i.action is Action.failed
    ]
    return summary, bad

