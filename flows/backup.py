"""Backups of the platform's custom resources, retention, restore and restore drills, as Prefect flows.

Each flow body reads as its runbook; every step is a task in ``tasks/backup/steps.py``. Each flow leaves a
markdown artifact and returns a JSON-able summary; a refused restore or a failed drill fails the flow run
with the reason.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow
from prefect.artifacts import create_markdown_artifact
from prefect.utilities.annotations import quote

from configs.backup import DEFAULT_POLICY, BackupPolicy, load_policy
from configs.inputs import ConfigPath, Namespace, Seconds
from flows.drill import DrillFailed, preview_drill, run_drill, sweep_quietly
from tasks.backup import steps
from tasks.backup.drill import DrillVerdict, ReadinessMode
from tasks.backup.restore import Action, ExistingPolicy, Outcome, ProductionMarker
from tasks.backup.store import check_backup_id
from tasks.errors import KaiopsError, PermanentError


class RestoreFailed(PermanentError):
    """A restore finished with objects the server refused."""


def _policy(policy: str | BackupPolicy) -> BackupPolicy:
    return policy if isinstance(policy, BackupPolicy) else load_policy(Path(policy))


def _table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "_none_\n"
    cols = list(rows[0])
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(str(r.get(c, "")).replace("|", "\\|") for c in cols) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def _artifact(key: str, markdown: str) -> None:
    create_markdown_artifact(key=key, markdown=markdown, description=markdown.splitlines()[0].lstrip("# "))


@flow(name="backup", log_prints=True)
def backup(
    policy: ConfigPath | BackupPolicy = str(DEFAULT_POLICY), dry_run: bool = False, kubeconfig: str | None = None
) -> dict[str, Any]:
    """Export the policy's objects and write them with a manifest (last) to the policy's destination.

    Args:
        policy: path of a ``configs/backups/*.yaml`` file (or a :class:`BackupPolicy`).
        dry_run: list what would be backed up; write nothing.
        kubeconfig: cluster to read (default ``$KUBECONFIG``).

    Returns:
        ``{"backup_id", "destination", "counts", "objects", "bytes", "seconds", "missing_kinds", ...}``.
    """
    pol = _policy(policy)
    if dry_run:
        summary = steps.preview_backup(pol, kubeconfig=kubeconfig)
    else:
        try:  # one task: the objects stream from the list pages into the packs, never all in memory
            written = steps.backup_task(pol, kubeconfig=kubeconfig)
        except KaiopsError:
            steps.backup_metrics_task(pol, success=False, written=None)
            raise
        summary = {
            "policy": pol.name,
            "dry_run": False,
            "counts": written.counts,
            "objects": written.objects,
            "missing_kinds": written.missing_kinds,
            "left_out": written.left_out,
            "warnings": written.warnings,
            "secrets": "encrypted" if steps.policy_key(pol) is not None else "excluded (no key)",
            "backup_id": written.backup_id,
            "destination": written.destination,
            "bytes": written.bytes,
            "seconds": written.seconds,
            "encrypted": written.encrypted,
            "layout": pol.layout.value,
            "incremental": written.extra,
        }
        print(f"backup {written.backup_id} written to {written.destination} (layout {pol.layout.value}, "
              f"{written.objects} objects, {written.extra.get('uploaded', written.objects)} uploaded, "
              f"{written.extra.get('reused', 0)} unchanged)")
        if written.extra.get("incremental_ignored"):
            print(f"policy {pol.name}: incremental ignored: {written.extra['incremental_ignored']}")
        summary["metrics_file"] = steps.backup_metrics_task(pol, success=True, written=written)
    for warning in summary["warnings"]:
        print(f"warning: {warning}")
    title = "dry run" if dry_run else summary["backup_id"]
    _artifact(
        "backup",
        f"# Backup {pol.name}: {title}\n\n"
        + _table([{"kind": k, "objects": n} for k, n in summary["counts"].items()])
        + f"\nKinds not served: {', '.join(summary['missing_kinds']) or 'none'}\n",
    )
    return summary


@flow(name="retention", log_prints=True)
def retention(policy: ConfigPath | BackupPolicy = str(DEFAULT_POLICY), dry_run: bool = False,
              kubeconfig: str | None = None) -> dict[str, Any]:
    """Apply the policy's retention: keep N daily, M weekly, K monthly complete backups; clean incomplete ones;
    delete the scratch namespaces of dead restore drills (:func:`flows.drill.sweep_quietly`).

    Args:
        kubeconfig: the cluster whose dead drills are swept (default ``$KUBECONFIG``/in-cluster); a cluster
            that cannot be reached is a message in ``sweep_errors``, never a failed retention.

    Returns:
        ``{"plan": [{"backup", "action", "reasons"}...], "deleted_keys": n, "dry_run": bool,
        "swept_namespaces": [names deleted, or that would be], "sweep_errors": [messages]}``.
    """
    pol = _policy(policy)
    plan = steps.retention_plan_task(pol)
    deleted = 0 if dry_run else steps.retention_apply_task(pol, plan)
    swept = sweep_quietly(kubeconfig, dry_run=dry_run)
    for name in swept["swept"]:
        print(f"{'would delete' if dry_run else 'deleted'} scratch namespace {name} of a dead drill")
    _artifact("retention", f"# Retention {pol.name}{' (dry run)' if dry_run else ''}\n\n" + _table(plan.rows()))
    return {"policy": pol.name, "dry_run": dry_run, "plan": plan.rows(), "deleted_keys": deleted,
            "swept_namespaces": swept["swept"], "sweep_errors": swept["errors"]}


@flow(name="restore", log_prints=True)
def restore(
    backup_id: str,
    policy: ConfigPath | BackupPolicy = str(DEFAULT_POLICY),
    namespace_map: dict[Namespace, Namespace] | None = None,
    existing: ExistingPolicy = ExistingPolicy.fail,
    dry_run: bool = False,
    yes: bool = False,
    kubeconfig: str | None = None,
) -> dict[str, Any]:
    """Restore ``backup_id``: verify every checksum and every needed CRD before any write, then apply in
    dependency order with server-side apply.

    Raises:
        BackupIncomplete, ChecksumMismatch, MissingKinds, ProductionRefused, ExistingObjects: before any write.
        RestoreFailed: some objects were refused (the others were restored; see the artifact).
    """
    check_backup_id(backup_id, "<restore>", "backup_id")
    pol = _policy(policy)
    loaded = steps.verify_task(pol, backup_id)
    marker = ProductionMarker(pol.production.key, pol.production.value)
    plan = steps.plan_restore_task(  # quote: Prefect does not walk every object looking for futures
        quote(loaded), kubeconfig=kubeconfig, namespace_map=namespace_map or {}, existing=existing, marker=marker,
        yes=yes,
    )
    report = steps.apply_restore_task(
        quote(plan),
        kubeconfig=kubeconfig,
        backup_id=backup_id,
        existing=existing,
        dry_run=dry_run,
        parallelism=pol.parallelism,
    )
    failed = [{"object": i.ref, "reason": i.message} for i in report.items if i.action is Action.failed]
    yielded = [{"object": i.ref, "fields": i.message} for i in report.items if i.action is Action.updated_except]
    summary = {
        "backup_id": backup_id,
        "dry_run": dry_run,
        "outcome": report.outcome.value,
        "counts": report.counts(),
        "production_namespaces": plan.production,
        "failed": failed,
        "left_to_owners": yielded,
    }
    _artifact(
        "restore",
        f"# Restore {backup_id}: {report.outcome.value}{' (dry run)' if dry_run else ''}\n\n"
        + _table([{"action": k, "objects": v} for k, v in report.counts().items()])
        + ("\n## Refused\n\n" + _table(failed) if failed else "")
        + ("\n## Updated, leaving fields to their owners (not forced)\n\n" + _table(yielded) if yielded else ""),
    )
    if report.outcome is not Outcome.succeeded:
        raise RestoreFailed(
            f"restore of {backup_id} {report.outcome.value}: {len(failed)} object(s) refused; "
            f"first: {failed[0]['object']}: {failed[0]['reason']}"
        )
    return summary


@flow(name="restore-drill", log_prints=True)
def restore_drill(
    policy: ConfigPath | BackupPolicy = str(DEFAULT_POLICY),
    backup_id: str | None = None,
    readiness: ReadinessMode = ReadinessMode.conditions,
    timeout: Seconds | None = None,
    kubeconfig: str | None = None,
    dry_run: bool = False,
) -> dict[str, Any]:
    """Prove a backup: restore it into fresh scratch namespaces, wait for readiness, compare with the backup,
    measure the RTO, delete what was restored, report.

    Args:
        backup_id: default the newest complete backup.
        readiness: ``conditions`` (per-kind rules; needs the KubeRay/KServe controllers) or ``present``.
        timeout: readiness wait in seconds (default the policy's ``drill.readiness_timeout_seconds``).
        dry_run: verify the backup and plan the restore against the cluster; create nothing
            (:func:`flows.drill.preview_drill`).

    Returns:
        ``{"verdict": "passed", "objects": {"restored", "ready", "equal", "total"}, "rto_seconds", ...}``.

    Raises:
        DrillFailed: the drill did not pass (the reason is in the message and the artifact).
    """
    if backup_id is not None:
        check_backup_id(backup_id, "<drill>", "backup_id")
    pol = _policy(policy)
    backup_id = backup_id or steps.newest_good(pol)
    if backup_id is None:
        raise DrillFailed(f"no complete backup under {pol.destination}")
    if dry_run:
        return preview_drill(pol, backup_id, kubeconfig)
    summary, bad = run_drill(pol, backup_id, readiness, timeout, kubeconfig)
    passed = summary["verdict"] == DrillVerdict.passed.value
    _artifact(
        "restore-drill",
        f"# Restore drill {backup_id}: {summary['verdict']}\n\n"
        + _table([{**summary["objects"], "rto_seconds": summary["rto_seconds"]}])
        + (f"\n**Reason:** {summary['reason']}\n\n" + _table(bad[:50]) if not passed else ""),
    )
    if not passed:
        raise DrillFailed(f"drill of {backup_id} failed: {summary['reason']}")
    return summary
