"""Fleet flows: the same read-only or backup work over many namespaces, fanned out on the configured task
runner (threads, or a Ray cluster through prefect-ray's ``RayTaskRunner``).

``fleet_inventory`` maps :func:`tasks.fleet.namespace_inventory` over the namespaces. It ends
partially failed (``ok`` false, every namespace still reported) when some namespaces fail.

``fleet_backup`` writes one complete backup per namespace (manifest last, read back and verified) with
:func:`namespace_backup` (:func:`backup_one`); it reports every namespace and then fails the run when any failed.
``fleet_drill`` drills each namespace's newest complete backup with :func:`namespace_drill` (:func:`drill_one`), the
same way, and fails the run when any drill did not pass.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from prefect import flow, task, unmapped
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.task_runners import ThreadPoolTaskRunner

from configs.backup import DEFAULT_POLICY, BackupPolicy, load_policy
from configs.inputs import ConfigPath, Namespace, Seconds
from configs.release import ExecutionConfig, TaskRunnerKind
from tasks import fleet
from tasks.errors import PermanentError, io_retries
from tasks.fleet import namespace_inventory


class FleetFailed(PermanentError):
    """Some namespaces of a fleet run failed (every other one ran); ``summary`` has every row."""

    def __init__(self, message: str, summary: dict[str, Any]) -> None:
        super().__init__(message)
        self.summary = summary


class FleetBackupFailed(FleetFailed):
    """Some namespaces of a fleet backup were not backed up (the others were)."""


class FleetDrillFailed(FleetFailed):
    """Some namespaces' drills did not pass or found no backup (the others ran)."""


def _rows(namespaces: list[str], futures: Any, failed: Callable[[str, str], dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per namespace: its task's result, or ``failed(namespace, reason)`` for a task that raised."""
    rows = []
    for ns, future in zip(namespaces, futures, strict=True):
        result = future.result(raise_on_failure=False)
        rows.append(failed(ns, f"{result.__class__.__name__}: {result}") if isinstance(result, BaseException)
                    else result)
    return rows


def build_task_runner(execution: ExecutionConfig):
    """The task runner ``execution`` asks for.

    Returns:
        ``ThreadPoolTaskRunner(max_workers)`` for ``local``; ``prefect_ray.RayTaskRunner(address=...)`` for
        ``ray``, the address from :func:`tasks.fleet.ray_init_address` (``ray_address``, else
        ``$KAIOPS_RAY_INIT_ADDRESS``, else a local Ray without dashboard) and ``runtime_env.env_vars`` from
        ``ray_env``. The Ray workers must be able to import kaiops (the same venv/image, or
        ``runtime_env={"working_dir": <repo>}``).

    Raises:
        InputError: a dashboard URL where ``ray.init`` needs the GCS/client address, or an unset ``ray_env`` name.
    """
    if execution.task_runner is TaskRunnerKind.RAY:
        from prefect_ray import RayTaskRunner

        address = fleet.ray_init_address(execution.ray_address)
        init_kwargs: dict[str, Any] = {} if address else {"include_dashboard": False}
        runtime_env = fleet.ray_runtime_env(execution.ray_env)
        if runtime_env:
            init_kwargs["runtime_env"] = runtime_env
        return RayTaskRunner(address=address, init_kwargs=init_kwargs or None)
    return ThreadPoolTaskRunner(max_workers=execution.max_workers)


def backup_one(policy: BackupPolicy, namespace: str, kubeconfig: str | None = None, verify: bool = True,
               secret_blocks: Mapping[str, str] | None = None) -> dict[str, Any]:
    """One complete backup of ``namespace`` under :func:`tasks.fleet.namespace_policy`; Secrets only when the
    policy's key is found (then sealed); ``verify`` downloads every object again and checks it against the manifest.

    Returns:
        ``{"namespace", "outcome", "backup_id", "destination", "objects", "counts", "bytes", "encrypted",
        "verified", "seconds", "host", "error": None}`` (``seconds``: export + upload, wall clock;
        ``host``: ``hostname:pid`` of the process that ran it).

    Raises:
        TemporaryError / PermanentError / InputError from the export, upload or verification.
    """
    from tasks.backup import steps

    fleet.load_secret_env(secret_blocks or {})
    pol = fleet.namespace_policy(policy, namespace)
    exported = steps.export_objects(pol, kubeconfig=kubeconfig, include_secrets=steps.policy_key(pol) is not None)
    written = steps.write_with_policy_key(pol, exported)
    verified = False
    if verify:
        loaded = steps.verify_with_policy_key(pol, written.backup_id)
        verified = len(loaded.objects) == written.objects
    return {"namespace": namespace, "outcome": fleet.NamespaceOutcome.BACKED_UP.value, "backup_id": written.backup_id,
            "destination": written.destination, "objects": written.objects, "counts": written.counts,
            "bytes": written.bytes, "encrypted": written.encrypted, "verified": verified,
            "seconds": round(exported.seconds + written.seconds, 3),
            "host": f"{socket.gethostname()}:{os.getpid()}", "error": None}


def drill_one(policy: BackupPolicy, namespace: str, kubeconfig: str | None = None,
              readiness: str = "conditions", timeout: float | None = None,
              secret_blocks: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Drill the newest complete backup of ``namespace`` (under :func:`tasks.fleet.namespace_policy`) into scratch
    namespaces with :func:`flows.drill.run_drill`; a failed drill is a row, not an exception.

    Args:
        readiness: ``conditions`` (needs the KubeRay/KServe controllers) or ``present``.
        timeout: readiness wait in seconds (None: the policy's).

    Returns:
        ``{"namespace", "outcome" (DrillOutcome), "backup_id", "rto_seconds", "restored", "ready", "equal",
        "total", "reason", "host"}``.

    Raises:
        TemporaryError / PermanentError: the backup could not be listed or read (retried when temporary).
    """
    from flows.drill import run_drill
    from tasks.backup import steps
    from tasks.backup.drill import DrillVerdict, ReadinessMode

    fleet.load_secret_env(secret_blocks or {})
    pol = fleet.namespace_policy(policy, namespace)
    host = f"{socket.gethostname()}:{os.getpid()}"
    backup_id = steps.newest_good(pol)
    if backup_id is None:
        return {"namespace": namespace, "outcome": fleet.DrillOutcome.NO_BACKUP.value, "backup_id": None,
                "rto_seconds": None, "restored": 0, "ready": 0, "equal": 0, "total": 0,
                "reason": f"no complete backup under {pol.destination}", "host": host}
    summary, _ = run_drill(pol, backup_id, ReadinessMode(readiness), timeout, kubeconfig)
    passed = summary["verdict"] == DrillVerdict.passed.value
    outcome = fleet.DrillOutcome.PASSED if passed else fleet.DrillOutcome.FAILED
    return {"namespace": namespace, "outcome": outcome.value,
            "backup_id": backup_id, "rto_seconds": summary["rto_seconds"], **summary["objects"],
            "reason": summary.get("reason") or "", "host": host}


# A retry re-runs the whole namespace backup under a new id; the cut-off attempt has no manifest and retention
# deletes it after `incomplete_after_hours`. A retried drill leaves its first attempt's scratch namespaces to
# the next sweep (their lease lapses: tasks.backup.scratch).
namespace_backup = task(name="namespace-backup", cache_policy=NO_CACHE, **io_retries(2, 5))(backup_one)
namespace_drill = task(name="namespace-drill", cache_policy=NO_CACHE, **io_retries(2, 5))(drill_one)


@flow(name="fleet-inventory-map")
def _map_inventory(namespaces: list[str], kubeconfig: str | None) -> list[dict[str, Any]]:
    futures = namespace_inventory.map(namespaces, kubeconfig=kubeconfig)
    return [f.result() for f in futures]


@flow(name="fleet-inventory", log_prints=True)
def fleet_inventory(namespaces: list[Namespace], execution: ExecutionConfig | None = None,
                    kubeconfig: str | None = None) -> dict[str, Any]:
    """List the platform's objects in every namespace of ``namespaces``, one task each.

    Args:
        namespaces: the namespaces (duplicates are dropped).
        execution: task runner choice (default local threads).
        kubeconfig: cluster to read (default ``$KUBECONFIG``/in-cluster).

    Returns:
        ``{"rows": [per-namespace rows], "failed": [namespaces], "runner": "local"|"ray", "ok": bool}``.
    """
    execution = ExecutionConfig.model_validate(execution or {})
    names = list(dict.fromkeys(namespaces))
    runner = build_task_runner(execution)
    rows = _map_inventory.with_options(task_runner=runner)(names, kubeconfig)
    failed = [r["namespace"] for r in rows if r["error"]]
    create_table_artifact([{**{k: v for k, v in r.items() if k != "names"}, "counts": str(r["counts"])} for r in rows],
                          key="fleet-inventory", description=f"{len(rows)} namespaces on {execution.task_runner.value}")
    print(f"{len(rows)} namespaces listed on {execution.task_runner.value}; {len(failed)} failed")
    return {"rows": rows, "failed": failed, "runner": execution.task_runner.value, "ok": not failed}


@flow(name="fleet-backup-map")
def _map_backups(policy: BackupPolicy, namespaces: list[str], kubeconfig: str | None, verify: bool,
                 secret_blocks: dict[str, str]) -> list[dict[str, Any]]:
    futures = namespace_backup.map(unmapped(policy), namespaces, kubeconfig=kubeconfig, verify=verify,
                                         secret_blocks=unmapped(secret_blocks))
    return _rows(namespaces, futures, lambda ns, why: fleet.failed_row(ns, fleet.NamespaceOutcome.FAILED, why))


@flow(name="fleet-backup", log_prints=True)
def fleet_backup(
    policy: ConfigPath | BackupPolicy = str(DEFAULT_POLICY),
    namespaces: list[Namespace] | None = None,
    execution: ExecutionConfig | None = None,
    verify: bool = True,
    kubeconfig: str | None = None,
    dry_run: bool = False,
) -> dict[str, Any]:
    """Back up each namespace on its own: one complete backup per namespace under
    ``<policy destination>/<namespace>/<id>/``, its tasks on the runner ``execution`` names.

    Args:
        policy: a ``configs/backups/*.yaml`` path or a :class:`BackupPolicy` (its namespaces, kinds, key, ...).
        namespaces: the namespaces (default the policy's; both empty: every active non-system namespace).
        execution: task runner (default local threads); with ``ray``, credentials the workers lack come from
            ``ray_secret_blocks`` and non-secret settings from ``ray_env``.
        verify: read every backup back and check each object against its manifest.
        kubeconfig: cluster to read (default ``$KUBECONFIG``/in-cluster); on Ray, a path the workers can read.
        dry_run: check everything, list which namespaces would be backed up where (outcome ``would-back-up``)
            and which are missing; write nothing (no bucket, no backup).

    Returns:
        ``{"policy", "runner", "rows": [per-namespace rows, see backup_one], "failed": [names],
        "objects", "bytes", "ok": True}``.

    Raises:
        InputError: bad policy, namespace name or execution settings (before anything is written).
        FleetBackupFailed: some namespaces were missing or failed (after every other one was backed up).
    """
    pol = policy if isinstance(policy, BackupPolicy) else load_policy(Path(policy))
    execution = ExecutionConfig.model_validate(execution or {})
    requested = list(dict.fromkeys(namespaces or pol.namespaces))
    for ns in requested:
        fleet.namespace_policy(pol, ns)  # names checked before anything is written
    runner = build_task_runner(execution)
    present, missing = fleet.cluster_namespaces_task(requested, kubeconfig)
    if dry_run:
        rows = [{**fleet.failed_row(ns, fleet.NamespaceOutcome.WOULD_BACK_UP, ""),
                 "destination": fleet.namespace_policy(pol, ns).destination} for ns in present]
        rows += [fleet.failed_row(ns, fleet.NamespaceOutcome.MISSING, "namespace not found") for ns in missing]
        print(f"dry run: {len(present)} namespaces would be backed up on {execution.task_runner.value}; "
              f"{len(missing)} missing")
        return {"policy": pol.name, "runner": execution.task_runner.value, "rows": rows, "failed": missing,
                "objects": 0, "bytes": 0, "dry_run": True, "ok": not missing}
    fleet.prepare_destination_task(pol)
    rows = _map_backups.with_options(task_runner=runner)(pol, present, kubeconfig, verify,
                                                         dict(execution.ray_secret_blocks)) if present else []
    rows += [fleet.failed_row(ns, fleet.NamespaceOutcome.MISSING, "namespace not found") for ns in missing]
    failed = [r["namespace"] for r in rows if r["outcome"] != fleet.NamespaceOutcome.BACKED_UP.value]
    summary = {"policy": pol.name, "runner": execution.task_runner.value, "rows": rows, "failed": failed,
               "objects": sum(r["objects"] for r in rows), "bytes": sum(r["bytes"] for r in rows), "ok": not failed}
    table = [{k: r[k] for k in ("namespace", "outcome", "backup_id", "objects", "bytes", "verified", "error")}
             for r in rows]
    create_table_artifact(table, key="fleet-backup",
                          description=f"{len(rows)} namespaces on {execution.task_runner.value}; {len(failed)} failed")
    create_markdown_artifact(
        key="fleet-backup-summary",
        markdown=f"# Fleet backup {pol.name}: {'ok' if not failed else 'PARTIALLY FAILED'}\n\n"
        f"{len(rows) - len(failed)} of {len(rows)} namespaces backed up on {execution.task_runner.value}"
        + (f"; failed: {', '.join(failed)}" if failed else "") + "\n",
    )
    print(f"{len(rows) - len(failed)}/{len(rows)} namespaces backed up on {execution.task_runner.value}")
    if failed:
        first = next(r for r in rows if r["namespace"] == failed[0])
        raise FleetBackupFailed(f"fleet backup {pol.name}: {len(failed)} of {len(rows)} namespaces not backed up "
                                f"({', '.join(failed)}); first: {failed[0]}: {first['error']}", summary)
    return summary


@flow(name="fleet-drill-map")
def _map_drills(policy: BackupPolicy, namespaces: list[str], kubeconfig: str | None, readiness: str,
                timeout: float | None, secret_blocks: dict[str, str]) -> list[dict[str, Any]]:
    futures = namespace_drill.map(unmapped(policy), namespaces, kubeconfig=kubeconfig, readiness=readiness,
                                        timeout=timeout, secret_blocks=unmapped(secret_blocks))
    return _rows(namespaces, futures, fleet.failed_drill_row)


@flow(name="fleet-drill", log_prints=True)
def fleet_drill(
    policy: ConfigPath | BackupPolicy = str(DEFAULT_POLICY),
    namespaces: list[Namespace] | None = None,
    execution: ExecutionConfig | None = None,
    readiness: str = "conditions",
    timeout: Seconds | None = None,
    kubeconfig: str | None = None,
) -> dict[str, Any]:
    """Drill the newest complete backup of each namespace of a fleet backup (``<destination>/<namespace>/``),
    one task per namespace on the runner ``execution`` names; every drill restores into its own scratch
    namespaces and deletes them afterwards.

    Args:
        policy: the fleet backup's policy (path or :class:`BackupPolicy`).
        namespaces: default the policy's; both empty: every active non-system namespace.
        readiness: ``conditions`` (needs the KubeRay/KServe controllers) or ``present``.
        timeout: readiness wait per drill in seconds (default the policy's).

    Returns:
        ``{"policy", "runner", "rows": [per-namespace rows, see drill_one], "failed": [names],
        "ok": True}``.

    Raises:
        InputError: bad policy, namespace name, readiness or execution settings (before any drill).
        FleetDrillFailed: some drills failed or found no backup (after every other one ran).
    """
    from tasks.backup.drill import ReadinessMode
    from tasks.errors import InputError

    pol = policy if isinstance(policy, BackupPolicy) else load_policy(Path(policy))
    execution = ExecutionConfig.model_validate(execution or {})
    if readiness not in {m.value for m in ReadinessMode}:
        raise InputError("<fleet drill>", "readiness", f"{readiness!r} is not a readiness mode",
                         "use conditions or present")
    requested = list(dict.fromkeys(namespaces or pol.namespaces))
    for ns in requested:
        fleet.namespace_policy(pol, ns)
    if not requested:
        requested, _ = fleet.cluster_namespaces_task([], kubeconfig)
    runner = build_task_runner(execution)
    rows = _map_drills.with_options(task_runner=runner)(pol, requested, kubeconfig, readiness, timeout,
                                                        dict(execution.ray_secret_blocks)) if requested else []
    failed = [r["namespace"] for r in rows if r["outcome"] != fleet.DrillOutcome.PASSED.value]
    summary = {"policy": pol.name, "runner": execution.task_runner.value, "rows": rows, "failed": failed,
               "ok": not failed}
    create_table_artifact([{k: r[k] for k in ("namespace", "outcome", "backup_id", "rto_seconds", "restored",
                                              "equal", "total", "reason")} for r in rows],
                          key="fleet-drill", description=f"{len(rows)} drills on {execution.task_runner.value}; "
                                                         f"{len(failed)} failed")
    print(f"{len(rows) - len(failed)}/{len(rows)} namespace drills passed on {execution.task_runner.value}")
    if failed:
        first = next(r for r in rows if r["namespace"] == failed[0])
        raise FleetDrillFailed(f"fleet drill {pol.name}: {len(failed)} of {len(rows)} drills did not pass "
                               f"({', '.join(failed)}); first: {failed[0]}: {first['reason']}", summary)
    return summary
