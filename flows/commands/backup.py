"""``kaiops backup | backups list | retention | restore | drill``: backups of the platform's custom resources.

Exit codes: 0 done, 1 the operation failed (a failed drill, refused objects), 2 bad input or a refusal made
before any write (a production namespace without ``--yes``).
"""

from __future__ import annotations

from pathlib import Path

import typer

from flows.output import OutputFormat, OutputOption, emit
from tasks.errors import InputError

DEFAULT_POLICY = Path(__file__).resolve().parents[2] / "configs" / "backups" / "nightly.yaml"
PolicyOption = typer.Option(DEFAULT_POLICY, "--policy", "-p", help="Backup policy file (configs/backups/*.yaml).")

backups_app = typer.Typer(help="Inspect stored backups.", no_args_is_help=True)


def check_policy(policy: Path, field: str = "--policy") -> None:
    """Refuse a bad backup policy file before any flow run starts (exit 2 naming the option, the file and the
    field)."""
    from configs.backup import load_policy
    from configs.inputs import existing_file

    existing_file(policy, field=field, example="configs/backups/nightly.yaml")
    load_policy(policy)


def backup(
    policy: Path = PolicyOption,
    dry_run: bool = typer.Option(False, "--dry-run", help="List what would be backed up; write nothing."),
    output: OutputFormat = OutputOption,
) -> None:
    """Back up RayClusters, InferenceServices and friends (plus what they reference) to S3/GCS."""
    check_policy(policy)
    if dry_run:  # read-only: plain calls, no flow run (and no Prefect API to start)
        from configs.backup import load_policy
        from tasks.backup.steps import preview_backup

        emit(preview_backup(load_policy(policy)), output, title="kaiops backup")
        return
    from flows.backup import backup as backup_flow

    emit(backup_flow(policy=str(policy), dry_run=dry_run), output, title="kaiops backup")


@backups_app.command("list")
def list_backups(policy: Path = PolicyOption, output: OutputFormat = OutputOption) -> None:
    """List the backups under the policy's destination, newest first (complete or not)."""
    from configs.backup import load_policy
    from tasks.backup import store

    check_policy(policy)
    pol = load_policy(policy)
    rows = [
        {
            "backup": b.id,
            "complete": b.complete,
            "layout": store.layout(b.manifest).value if b.manifest else "",
            "objects": len((b.manifest or {}).get("objects", [])),
            "bytes": (b.manifest or {}).get("bytes", ""),
            "cluster": ((b.manifest or {}).get("cluster") or {}).get("server", ""),
        }
        for b in store.list_for_policy(pol)
    ]
    if not rows and output is OutputFormat.table:
        typer.echo(f"no backups under {pol.destination} (policy {pol.name}); make one with `kaiops backup`")
        return
    emit(rows, output, title="kaiops backups")


def retention(
    policy: Path = PolicyOption,
    dry_run: bool = typer.Option(False, "--dry-run", help="Show what would be deleted; delete nothing."),
    output: OutputFormat = OutputOption,
) -> None:
    """Keep N daily, M weekly, K monthly complete backups; delete the rest and stale incomplete ones, and the
    scratch namespaces of dead restore drills ($KUBECONFIG's cluster)."""
    check_policy(policy)
    if dry_run:  # read-only: plain calls, no flow run
        from configs.backup import load_policy
        from flows.drill import sweep_quietly
        from tasks.backup.steps import retention_plan

        pol = load_policy(policy)
        swept = sweep_quietly(None, dry_run=True)
        result = {"policy": pol.name, "dry_run": True, "plan": retention_plan(pol).rows(), "deleted_keys": 0,
                  "swept_namespaces": swept["swept"], "sweep_errors": swept["errors"]}
    else:
        from flows.backup import retention as retention_flow

        result = retention_flow(policy=str(policy), dry_run=dry_run)
    emit(result["plan"] if output is OutputFormat.table else result, output, title="kaiops retention")


def _namespace_map(pairs: list[str]) -> dict[str, str]:
    from configs.inputs import name_problem

    out: dict[str, str] = {}
    for pair in pairs:
        src, sep, dst = pair.partition("=")
        if not sep or not src or not dst:
            raise InputError(
                "<cli>", "--namespace-map", f"{pair!r} is not FROM=TO", "write e.g. --namespace-map prod=staging"
            )
        for side, ns in (("FROM", src), ("TO", dst)):
            problem = name_problem(ns)
            if problem:
                raise InputError("<cli>", "--namespace-map", f"{pair!r}: {side} namespace: {problem}",
                                 "write FROM=TO with two namespace names, e.g. --namespace-map prod=staging")
        out[src] = dst
    return out


def restore(
    backup_id: str = typer.Argument(..., help="Backup id (see `kaiops backups list`)."),
    policy: Path = PolicyOption,
    namespace_map: list[str] = typer.Option([], "--namespace-map", help="FROM=TO; repeatable."),
    existing: str = typer.Option("fail", "--existing", help="skip, update or fail when an object exists."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Server-side dry run; write nothing."),
    yes: bool = typer.Option(False, "--yes", help="Allow writing into production namespaces."),
    output: OutputFormat = OutputOption,
) -> None:
    """Restore a backup after verifying every checksum and every needed CRD."""
    from tasks.backup.restore import ExistingPolicy
    from tasks.backup.store import check_backup_id

    check_backup_id(backup_id, "<cli>", "BACKUP")
    try:
        policy_existing = ExistingPolicy(existing)
    except ValueError as exc:
        raise InputError("<cli>", "--existing", f"{existing!r} is not skip, update or fail", "pick one") from exc
    mapping = _namespace_map(namespace_map)
    check_policy(policy)
    if dry_run:  # read-only (a server-side dry run): plain calls, no flow run
        from configs.backup import load_policy
        from tasks.backup.steps import preview_restore
        from tasks.errors import PermanentError

        result = preview_restore(load_policy(policy), backup_id, namespace_map=mapping,
                                 existing=policy_existing, yes=yes)
        if result["outcome"] != "succeeded":  # as the flow: exit 1 naming the first refused object
            first = result["failed"][0] if result["failed"] else {"object": "?", "reason": "?"}
            raise PermanentError(f"restore of {backup_id} {result['outcome']} (dry run): {len(result['failed'])} "
                                 f"object(s) refused; first: {first['object']}: {first['reason']}")
        emit(result, output, title="kaiops restore (dry run)")
        return
    from flows.backup import restore as restore_flow

    result = restore_flow(
        backup_id=backup_id,
        policy=str(policy),
        namespace_map=mapping,
        existing=policy_existing,
        dry_run=dry_run,
        yes=yes,
    )
    emit(result, output, title="kaiops restore")


def drill(
    policy: Path = PolicyOption,
    backup_id: str = typer.Option(None, "--backup", help="Backup id (default: the newest complete one)."),
    readiness: str = typer.Option("conditions", "--readiness", help="conditions or present."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Verify the backup and plan the restore; create nothing."),
    output: OutputFormat = OutputOption,
) -> None:
    """Restore the newest good backup into scratch namespaces, check and time it, clean up."""
    from tasks.backup.drill import ReadinessMode
    from tasks.backup.store import check_backup_id

    if backup_id is not None:
        check_backup_id(backup_id, "<cli>", "--backup")
    try:
        mode = ReadinessMode(readiness)
    except ValueError as exc:
        raise InputError("<cli>", "--readiness", f"{readiness!r} is not conditions or present", "pick one") from exc
    check_policy(policy)
    if dry_run:  # read-only: plain calls, no flow run
        from configs.backup import load_policy
        from flows.drill import DrillFailed, preview_drill
        from tasks.backup.steps import newest_good

        pol = load_policy(policy)
        backup_id = backup_id or newest_good(pol)
        if backup_id is None:
            raise DrillFailed(f"no complete backup under {pol.destination}")
        emit(preview_drill(pol, backup_id, None), output, title="kaiops drill (dry run)")
        return
    from flows.backup import restore_drill

    emit(restore_drill(policy=str(policy), backup_id=backup_id, readiness=mode, dry_run=dry_run), output,
         title="kaiops drill")


def register(app: typer.Typer) -> None:
    """Add the backup commands to the ``kaiops`` app."""
    app.command("backup")(backup)
    app.add_typer(backups_app, name="backups")
    app.command("retention")(retention)
    app.command("restore")(restore)
    app.command("drill")(drill)
