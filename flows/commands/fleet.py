"""``kaiops fleet backup | drill | inventory``: the same work over many namespaces, fanned out on threads or Ray."""

from __future__ import annotations

from pathlib import Path

import typer

from flows.commands.backup import PolicyOption
from flows.output import OutputFormat, OutputOption, emit

app = typer.Typer(help="Fan out over many namespaces (threads, or a Ray cluster via prefect-ray).",
                  no_args_is_help=True)

RunnerOption = typer.Option("local", "--runner", help="local (threads) or ray (prefect-ray's RayTaskRunner).")
RayAddressOption = typer.Option(
    None, "--ray-address", help="With --runner ray: host:<GCS port> or ray://host:10001, never the dashboard URL "
    "(default $KAIOPS_RAY_INIT_ADDRESS, else a local Ray).")
NamespacesOption = typer.Option(None, "--namespace", "-n", help="A namespace (repeat for more).")


def _check(policy: Path | None, namespaces: list[str] | None, option: str = "--namespace") -> None:
    """Refuse a bad policy or namespace before any flow run starts."""
    from configs.inputs import check_name

    if policy is not None:
        from flows.commands.backup import check_policy

        check_policy(policy)
    for ns in namespaces or []:
        check_name(ns, source="<cli>", field=option)


def _execution(runner: str, ray_address: str | None, workers: int):
    from pydantic import ValidationError

    from configs.release import ExecutionConfig
    from tasks.errors import InputError

    options = {"task_runner": "--runner", "ray_address": "--ray-address", "max_workers": "--workers"}
    fixes = {"task_runner": "local or ray", "ray_address": "host:<GCS port> or ray://host:10001 (not the dashboard "
             "URL)", "max_workers": "a number from 1 to 256"}
    try:
        return ExecutionConfig.model_validate({"task_runner": runner, "ray_address": ray_address,
                                               "max_workers": workers})
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        field = str(first["loc"][0]) if first["loc"] else next(
            (name for name in options if name in first["msg"]), "execution")
        raise InputError("<cli>", options.get(field, field), first["msg"], fixes.get(field, "see --help")) from exc


@app.command("backup")
def backup(
    policy: Path = PolicyOption,
    namespaces: list[str] = NamespacesOption,
    runner: str = RunnerOption,
    ray_address: str = RayAddressOption,
    workers: int = typer.Option(4, "--workers", help="With --runner local: namespaces backed up at once."),
    no_verify: bool = typer.Option(False, "--no-verify", help="Skip reading each backup back."),
    dry_run: bool = typer.Option(False, "--dry-run", help="List what would be backed up where; write nothing."),
    output: OutputFormat = OutputOption,
) -> None:
    """One complete backup per namespace under <destination>/<namespace>/<id>/ (default: the policy's
    namespaces). Exit 1 when any namespace was not backed up (every other one still is)."""
    from flows.fleet import FleetBackupFailed, fleet_backup

    _check(policy, namespaces)
    execution = _execution(runner, ray_address, workers)
    try:
        result = fleet_backup(policy=str(policy), namespaces=namespaces or None, execution=execution,
                              verify=not no_verify, dry_run=dry_run)
    except FleetBackupFailed as exc:
        emit(exc.summary["rows"], output, title=f"fleet backup {exc.summary['policy']}: FAILED")
        raise typer.Exit(1) from exc
    emit(result["rows"], output, title=f"fleet backup {result['policy']}" + (" (dry run)" if dry_run else ""))
    if not result["ok"]:
        raise typer.Exit(1)


@app.command("drill")
def drill(
    policy: Path = PolicyOption,
    namespaces: list[str] = NamespacesOption,
    runner: str = RunnerOption,
    ray_address: str = RayAddressOption,
    workers: int = typer.Option(2, "--workers", help="With --runner local: drills at once."),
    readiness: str = typer.Option("conditions", "--readiness", help="conditions (controllers) or present."),
    timeout: float = typer.Option(None, "--timeout", help="Readiness wait per drill, seconds (default: policy)."),
    output: OutputFormat = OutputOption,
) -> None:
    """Drill the newest complete backup of each namespace of a fleet backup into scratch namespaces (deleted
    afterwards). Exit 1 when any drill did not pass or found no backup."""
    from configs.inputs import check_seconds
    from flows.fleet import FleetDrillFailed, fleet_drill
    from tasks.backup.drill import ReadinessMode
    from tasks.errors import InputError

    _check(policy, namespaces)
    if readiness not in {m.value for m in ReadinessMode}:
        raise InputError("<cli>", "--readiness", f"{readiness!r} is not conditions or present", "pick one")
    if timeout is not None:
        check_seconds(timeout, field="--timeout")
    execution = _execution(runner, ray_address, workers)
    try:
        result = fleet_drill(policy=str(policy), namespaces=namespaces or None, execution=execution,
                             readiness=readiness, timeout=timeout)
    except FleetDrillFailed as exc:
        emit(exc.summary["rows"], output, title=f"fleet drill {exc.summary['policy']}: FAILED")
        raise typer.Exit(1) from exc
    emit(result["rows"], output, title=f"fleet drill {result['policy']}")


@app.command("inventory")
def inventory(
    namespaces: list[str] = typer.Argument(..., help="Namespaces to list."),
    runner: str = RunnerOption,
    ray_address: str = RayAddressOption,
    workers: int = typer.Option(4, "--workers", help="With --runner local: namespaces listed at once."),
    output: OutputFormat = OutputOption,
) -> None:
    """Count the platform's objects per kind in each namespace (read-only)."""
    from flows.fleet import fleet_inventory

    _check(None, namespaces, "NAMESPACES")
    result = fleet_inventory(namespaces, _execution(runner, ray_address, workers))
    emit([{k: v for k, v in r.items() if k != "names"} for r in result["rows"]], output, title="fleet inventory")
    if not result["ok"]:
        raise typer.Exit(1)
