"""The backup and restore steps, each one I/O concern, as plain functions and as Prefect tasks.

Writing a backup lives in :mod:`tasks.backup.write` (re-exported here). The plain functions
(:func:`run_backup`, :func:`export_objects`, :func:`write_backup`, :func:`verify_backup`, ...) are what the
benchmark, tests and the CLI's read-only paths call; the ``*_task`` objects wrap them for flows, retrying
:class:`TemporaryError` only. The wrappers are made on first access (module ``__getattr__``), so importing this
module does not import Prefect (about a second): ``kaiops backups list`` and the ``--dry-run`` paths never need it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from configs.backup import BackupPolicy
from tasks import kube
from tasks.backup import apply, discovery, drill, metrics, restore, retention, store
from tasks.backup.order import load_order
from tasks.backup.write import (  # noqa: F401  (part of this module's face: flows, tests and the bench use them)
    Exported,
    Written,
    destination,
    export_objects,
    export_stream,
    policy_key,
    run_backup,
    write_backup,
)
from tasks.errors import io_retries

IO: dict[str, Any] = io_retries(2, 5)
ONCE: dict[str, Any] = {}  # not retried


def preview_backup(policy: BackupPolicy, *, kubeconfig: str | None = None) -> dict[str, Any]:
    """What a backup would hold, writing nothing: the ``backup`` flow's dry-run summary, from plain calls (no
    Prefect task runs), for ``kaiops backup --dry-run``.

    Returns:
        ``{"policy", "dry_run": True, "counts": {kind: n}, "objects", "missing_kinds", "left_out", "warnings",
        "secrets"}``; Secrets are counted only when the policy names an encryption key.
    """
    key_given = policy_key(policy) is not None
    exported = export_stream(policy, kubeconfig=kubeconfig, include_secrets=key_given)
    counts: dict[str, int] = {}
    for obj in exported.objects:  # counted as the pages stream by: nothing is kept
        counts[obj["kind"]] = counts.get(obj["kind"], 0) + 1
    return {"policy": policy.name, "dry_run": True, "counts": dict(sorted(counts.items())),
            "objects": sum(counts.values()), "missing_kinds": exported.missing_kinds,
            "left_out": dict(exported.left_out), "warnings": exported.warnings,
            "secrets": "encrypted" if key_given else "excluded (no key)"}


def list_backups(policy: BackupPolicy) -> list[store.StoredBackup]:
    """Every backup under the policy's destination, newest first."""
    return store.list_for_policy(policy)


def retention_plan(policy: BackupPolicy, now: datetime | None = None) -> retention.Plan:
    """The retention plan for the policy's destination (nothing deleted)."""
    from datetime import timedelta

    cands = [retention.Candidate(b.id, b.time, b.complete) for b in list_backups(policy)]
    r = policy.retention
    return retention.plan(cands, daily=r.daily, weekly=r.weekly, monthly=r.monthly, now=now or datetime.now(UTC),
                          incomplete_grace=timedelta(hours=r.incomplete_after_hours))


def apply_retention(policy: BackupPolicy, plan: retention.Plan, now: datetime | None = None) -> int:
    """Delete the backups ``plan`` deletes (manifest first), then the packs no remaining complete backup
    references and older than ``retention.incomplete_after_hours`` (a running backup's new packs are younger);
    return the number of keys deleted.

    A pack a kept backup references is never deleted: the kept set is read after the deletions, from the
    manifests themselves.
    """
    from datetime import timedelta

    dest = destination(policy)
    st = store.open_store(dest)
    deleted = sum(store.delete_backup(st, dest, backup_id) for backup_id in plan.delete)
    remaining = [b.manifest for b in store.list_backups(st, dest) if b.manifest is not None]
    grace = timedelta(hours=policy.retention.incomplete_after_hours)
    packs = store.collect_packs(st, dest, store.referenced_packs(remaining), (now or datetime.now(UTC)) - grace)
    return deleted + len(packs)


def newest_good(policy: BackupPolicy) -> str | None:
    """The id of the newest complete backup (None when there is none)."""
    return next((b.id for b in list_backups(policy) if b.complete), None)


def verify_backup(policy: BackupPolicy, backup_id: str, key: bytes | None) -> restore.LoadedBackup:
    """Download and verify every object of ``backup_id`` (see :func:`tasks.backup.restore.load_backup`)."""
    dest = destination(policy)
    return restore.load_backup(store.open_store(dest), dest, backup_id, key, parallelism=policy.parallelism)


@dataclass
class RestorePlan:
    """Objects ready to apply and what the pre-write checks found."""

    objects: list[dict[str, Any]]
    existing: set[tuple[str, str, str]]
    production: list[str]


def plan_restore(loaded: restore.LoadedBackup, *, kubeconfig: str | None, namespace_map: dict[str, str],
                 existing: apply.ExistingPolicy, marker: restore.ProductionMarker, yes: bool,
                 only_namespaced: bool = False) -> RestorePlan:
    """Every check a restore makes before writing: kinds served, production namespaces, existing objects.

    Raises:
        MissingKinds, ProductionRefused, ExistingObjects: see :mod:`tasks.backup.restore`.
    """
    api = kube.connect(kubeconfig).client
    objects = restore.prepare(loaded.objects, namespace_map)
    if only_namespaced:
        objects = [o for o in objects if o["metadata"].get("namespace") or o["kind"] == "Namespace"]
    restore.check_kinds(api, objects)
    production = restore.check_production(api, objects, marker, yes)
    found = restore.existing_keys(api, objects)
    restore.check_existing(objects, found, existing)
    return RestorePlan(objects, found, production)


def apply_restore(plan: RestorePlan, *, kubeconfig: str | None, backup_id: str, existing: apply.ExistingPolicy,
                  dry_run: bool, parallelism: int = 16, keep_live: bool = False) -> apply.Report:
    """Apply the planned objects in restore order (see :func:`tasks.backup.apply.apply_all`)."""
    api = kube.connect(kubeconfig).client
    discovery.widen_pool(api, parallelism + 2)
    return apply.apply_all(api, plan.objects, load_order(), existing=plan.existing, policy=existing,
                             dry_run=dry_run, backup=backup_id, parallelism=parallelism, keep_live=keep_live)


def preview_restore(policy: BackupPolicy, backup_id: str, *, namespace_map: dict[str, str],
                    existing: apply.ExistingPolicy, yes: bool, kubeconfig: str | None = None) -> dict[str, Any]:
    """A restore as a server-side dry run, from plain calls (no Prefect task runs), for ``kaiops restore
    --dry-run``: every checksum verified, every pre-write check made, each object sent with ``dryRun=All``.

    Returns:
        the ``restore`` flow's summary: ``{"backup_id", "dry_run": True, "outcome", "counts", "production_namespaces",
        "failed": [{"object", "reason"}], "left_to_owners": [{"object", "fields"}]}``.

    Raises:
        BackupIncomplete, ChecksumMismatch, MissingKinds, ProductionRefused, ExistingObjects: as the flow.
    """
    loaded = verify_with_policy_key(policy, backup_id)
    marker = restore.ProductionMarker(policy.production.key, policy.production.value)
    plan = plan_restore(loaded, kubeconfig=kubeconfig, namespace_map=namespace_map, existing=existing,
                        marker=marker, yes=yes)
    report = apply_restore(plan, kubeconfig=kubeconfig, backup_id=backup_id, existing=existing, dry_run=True,
                           parallelism=policy.parallelism)
    return {
        "backup_id": backup_id, "dry_run": True, "outcome": report.outcome.value, "counts": report.counts(),
        "production_namespaces": plan.production,
        "failed": [{"object": i.ref, "reason": i.message} for i in report.items if i.action is apply.Action.failed],
        "left_to_owners": [{"object": i.ref, "fields": i.message} for i in report.items
                           if i.action is apply.Action.updated_except],
    }


def record_backup_metrics(policy: BackupPolicy, *, success: bool, written: Written | None) -> str:
    path = metrics.record_backup(
        metrics.metrics_dir(policy.metrics_dir), policy.name, success=success, now=time.time(),
        duration=written.seconds if written else 0.0, counts=written.counts if written else None,
        size=written.bytes if written else 0,
    )
    return str(path)


def record_drill_metrics(policy: BackupPolicy, *, success: bool, rto: float, objects: dict[str, int]) -> str:
    return str(metrics.record_drill(metrics.metrics_dir(policy.metrics_dir), policy.name, success=success,
                                    now=time.time(), rto=rto, objects=objects))


def drill_wait(pairs: list[tuple[dict[str, Any], dict[str, Any]]], *, kubeconfig: str | None,
               mode: drill.ReadinessMode, timeout: float, parallelism: int = 16,
               secrets_left_out: bool = False) -> list[drill.ObjectResult]:
    """Wait for the restored objects and compare them with the backup (see :func:`tasks.backup.drill.wait_ready`)."""
    dyn = kube.connect(kubeconfig)
    discovery.widen_pool(dyn.client, parallelism + 2)
    return drill.wait_ready(dyn, pairs, mode, timeout, parallelism, secrets_left_out=secrets_left_out)


def drill_cleanup(applied: list[dict[str, Any]], namespaces: list[str], *, kubeconfig: str | None) -> list[str]:
    """Delete what the drill restored, then its scratch namespaces (not waited for)."""
    return drill.cleanup(kube.connect(kubeconfig), applied, namespaces)


def write_with_policy_key(policy: BackupPolicy, exported: Exported, stop_before_manifest: bool = False) -> Written:
    """:func:`write_backup` with the policy's key, read inside the task so the key is never a task parameter."""
    return write_backup(policy, exported, key=policy_key(policy), stop_before_manifest=stop_before_manifest)


def verify_with_policy_key(policy: BackupPolicy, backup_id: str) -> restore.LoadedBackup:
    """:func:`verify_backup` with the policy's key (read here, never passed around)."""
    return verify_backup(policy, backup_id, policy_key(policy))


def existing_namespaces(names: list[str], kubeconfig: str | None = None) -> list[str]:
    """Those of ``names`` that exist on the cluster (in the given order)."""
    api = kube.connect(kubeconfig).client
    info = discovery.discover(api, [discovery.NAMESPACE]).served[discovery.NAMESPACE]
    live = {n["metadata"]["name"] for n in discovery.list_pages(api, info)}
    return [n for n in names if n in live]


# Prefect task name, plain function, options (plus ``cache_policy=NO_CACHE``) of each ``*_task`` attribute.
TASKS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "backup_task": ("backup-write", "run_backup", IO),  # export streamed into the upload: one task, no object list
    "list_task": ("backup-list", "list_backups", IO),
    "retention_plan_task": ("retention-plan", "retention_plan", IO),
    "retention_apply_task": ("retention-apply", "apply_retention", IO),
    "verify_task": ("restore-verify", "verify_with_policy_key", IO),
    "plan_restore_task": ("restore-plan", "plan_restore", IO),
    "apply_restore_task": ("restore-apply", "apply_restore", ONCE),  # not retried: it reports per object
    "drill_wait_task": ("drill-wait", "drill_wait", ONCE),
    "drill_cleanup_task": ("drill-cleanup", "drill_cleanup", ONCE),
    "backup_metrics_task": ("backup-metrics", "record_backup_metrics", ONCE),
    "drill_metrics_task": ("drill-metrics", "record_drill_metrics", ONCE),
    "existing_namespaces_task": ("existing-namespaces", "existing_namespaces", IO),
}


def __getattr__(name: str) -> Any:
    """``steps.backup_task`` etc.: the Prefect task wrapping a plain function (see :data:`TASKS`), made once on
    first access. Raises AttributeError for any other name."""
    spec = TASKS.get(name)
    if spec is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from prefect import task
    from prefect.cache_policies import NO_CACHE

    task_name, fn_name, options = spec
    wrapped = task(name=task_name, cache_policy=NO_CACHE, **options)(globals()[fn_name])
    globals()[name] = wrapped
    return wrapped
