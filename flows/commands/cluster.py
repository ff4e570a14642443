"""``kaiops provision CONFIG`` and ``kaiops cluster scale|suspend|resume|upgrade|teardown|drill CONFIG``.

Each runs the matching flow of :mod:`flows.provision` and prints its summary. ``--dry-run`` shows the
server-side dry-run diff and changes nothing. A failed readiness wait prints the diagnosis and exits 1.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import typer

from flows.output import OutputFormat, OutputOption, console, emit

app = typer.Typer(help="Day-2 operations on a provisioned Ray cluster.", no_args_is_help=True)

ConfigArg = typer.Argument(..., help="Cluster config, e.g. configs/clusters/sandbox.yaml.")
DryRun = typer.Option(False, "--dry-run", help="Show the server-side dry-run diff; change nothing.")
Timeout = typer.Option(600.0, "--timeout", help="Seconds to wait for the cluster.", min=1, max=7200)


def _prepare(config: Path, timeout: float | None = None) -> Any:
    """Check the config (and the timeout) before any flow starts (bad input: exit 2 with file, field and fix;
    no traceback); return the loaded config."""
    from configs.inputs import check_seconds, existing_file
    from configs.ray_cluster import load_cluster_config

    existing_file(config, field="CONFIG", example="configs/clusters/sandbox.yaml")
    if timeout is not None:
        check_seconds(timeout, field="--timeout", maximum=7200)
    cfg = load_cluster_config(config)
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "CRITICAL")
    return cfg


def _show(summary: dict[str, Any], output: OutputFormat, title: str) -> None:
    diff = summary.get("diff") or ""
    if output is OutputFormat.table:
        if diff:
            console.print(diff, markup=False, highlight=False)
        row = {k: v for k, v in summary.items() if k != "diff"}
        if isinstance(row.get("smoke"), dict):
            row["smoke"] = {k: row["smoke"][k] for k in ("job_id", "status", "seconds") if k in row["smoke"]}
        emit(row, output, title=title)
    else:
        emit(summary, output)
    if not summary.get("ok", True):
        raise typer.Exit(1)


def provision(
    config: Path = ConfigArg,
    dry_run: bool = DryRun,
    timeout: float = Timeout,
    no_smoke: bool = typer.Option(False, "--no-smoke", help="Skip the smoke job."),
    output: OutputFormat = OutputOption,
) -> None:
    """Provision (create or update) a Ray cluster from CONFIG, wait until ready and run the smoke job."""
    _prepare(config, timeout)
    from flows.provision import provision_ray_cluster

    summary = provision_ray_cluster(str(config), dry_run=dry_run, timeout_s=timeout, smoke=not no_smoke)
    _show(summary, output, f"provision {summary['cluster']}")


@app.command()
def scale(
    config: Path = ConfigArg,
    group: str = typer.Option(..., "--group", help="Worker group name."),
    replicas: int = typer.Option(..., "--replicas", help="Desired workers (within min/max).", min=0, max=1000),
    dry_run: bool = DryRun,
    timeout: float = Timeout,
    output: OutputFormat = OutputOption,
) -> None:
    """Set one worker group's replicas and wait until the workers are ready."""
    from configs.inputs import check_name
    from tasks.errors import InputError

    cfg = _prepare(config, timeout)
    check_name(group, source="<cli>", field="--group")
    groups = {g.name: g for g in cfg.worker_groups}
    if group not in groups:
        raise InputError("<cli>", "--group", f"no worker group {group!r} in {config}",
                         f"pick one of {', '.join(sorted(groups)) or '(none)'}")
    g = groups[group]
    if not g.min_replicas <= replicas <= g.max_replicas:
        raise InputError("<cli>", "--replicas", f"{replicas} is outside [{g.min_replicas}, {g.max_replicas}] of group "
                         f"{group}", f"choose {g.min_replicas}..{g.max_replicas} or change minReplicas/maxReplicas")
    from flows.provision import scale_ray_cluster

    summary = scale_ray_cluster(str(config), group, replicas, dry_run=dry_run, timeout_s=timeout)
    _show(summary, output, f"scale {summary['cluster']}")


@app.command()
def suspend(config: Path = ConfigArg, dry_run: bool = DryRun, timeout: float = Timeout,
            output: OutputFormat = OutputOption) -> None:
    """Suspend the cluster (all Ray processes stop; the RayCluster stays)."""
    _prepare(config, timeout)
    from flows.provision import suspend_ray_cluster

    summary = suspend_ray_cluster(str(config), dry_run=dry_run, timeout_s=timeout)
    _show(summary, output, f"suspend {summary['cluster']}")


@app.command()
def resume(config: Path = ConfigArg, dry_run: bool = DryRun, timeout: float = Timeout,
           output: OutputFormat = OutputOption) -> None:
    """Resume a suspended cluster, wait until ready and run the smoke job."""
    _prepare(config, timeout)
    from flows.provision import resume_ray_cluster

    summary = resume_ray_cluster(str(config), dry_run=dry_run, timeout_s=timeout)
    _show(summary, output, f"resume {summary['cluster']}")


@app.command()
def upgrade(config: Path = ConfigArg, dry_run: bool = DryRun, timeout: float = Timeout,
            output: OutputFormat = OutputOption) -> None:
    """Apply a changed spec to an existing cluster; wait for the new observedGeneration and a passing smoke job."""
    _prepare(config, timeout)
    from flows.provision import upgrade_ray_cluster

    summary = upgrade_ray_cluster(str(config), dry_run=dry_run, timeout_s=timeout)
    _show(summary, output, f"upgrade {summary['cluster']}")


@app.command()
def teardown(
    config: Path = ConfigArg,
    yes: bool = typer.Option(False, "--yes", help="Confirm the deletion."),
    dry_run: bool = DryRun,
    timeout: float = Timeout,
    output: OutputFormat = OutputOption,
) -> None:
    """Delete the cluster (refuses without --yes)."""
    if not yes and not dry_run:
        from tasks.errors import InputError

        raise InputError("<cli>", "--yes", f"teardown deletes the RayCluster of {config} and its Ray head",
                         "pass --yes to confirm, or --dry-run to see what would go")
    _prepare(config, timeout)
    from flows.provision import teardown_ray_cluster

    summary = teardown_ray_cluster(str(config), yes=yes, dry_run=dry_run, timeout_s=timeout)
    _show(summary, output, f"teardown {summary['cluster']}")


@app.command()
def drill(
    config: Path = ConfigArg,
    yes: bool = typer.Option(False, "--yes", help="Confirm: the head Pod is deleted."),
    dry_run: bool = DryRun,
    timeout: float = typer.Option(900.0, "--timeout", help="Seconds for the recovery.", min=1, max=7200),
    output: OutputFormat = OutputOption,
) -> None:
    """Head-failure drill: delete the head Pod, measure recovery, report what survived (exit 1 when a
    fault-tolerant cluster lost a worker or its detached actor)."""
    if not yes and not dry_run:
        from tasks.errors import InputError

        raise InputError("<cli>", "--yes", f"the drill deletes the head Pod of the RayCluster of {config}",
                         "pass --yes to confirm, or --dry-run to see which Pod")
    _prepare(config, timeout)
    from flows.cluster_drill import head_failure_drill

    summary = head_failure_drill(str(config), yes=yes, dry_run=dry_run, timeout_s=timeout)
    _show(summary, output, f"head-failure drill {summary['cluster']}")
