"""``kaiops status``: one view of the platform - RayClusters, InferenceServices and their rollouts, backups
and drills - unhealthy first. Reads only; runs no flow (see :mod:`tasks.status`)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import typer

from flows.output import OutputFormat, OutputOption, console, emit

SECTIONS = (  # (key, title, columns); problems are listed above the tables, where they are read first
    ("rayclusters", "RayClusters", ("name", "state", "workers", "health")),
    ("inferenceservices", "InferenceServices", ("name", "ready", "revision", "traffic", "rollout", "lease", "health")),
    ("backups", "Backups and drills", ("policy", "last_backup", "backup_age", "last_run", "drill", "drill_age",
                                       "health")),
)
SINGULAR = {"RayClusters": "RayCluster", "InferenceServices": "InferenceService", "Backups and drills": "backup policy"}
HEALTH_STYLE = {"unhealthy": "bold red", "attention": "yellow", "progressing": "cyan", "ok": "green"}


def status(
    backup_policy: list[Path] = typer.Option(None, "--backup-policy", help="Backup policy YAML (repeat; default: "
                                             "configs/backups/*.yaml)."),
    kubeconfig: str = typer.Option(None, "--kubeconfig", envvar="KUBECONFIG", help="Kubeconfig file."),
    watch: float = typer.Option(0.0, "--watch", "-w", min=0.0, max=86400.0,
                                help="Refresh every N seconds (0: once)."),
    output: OutputFormat = OutputOption,
) -> None:
    """Show RayClusters, InferenceServices (traffic, rollout, lease) and backups/drills, unhealthy first
    (exit 1 when anything is unhealthy)."""
    from flows.commands.backup import check_policy
    from tasks.status import collect

    for policy in backup_policy or []:
        check_policy(policy, field="--backup-policy")  # bad input: exit 2 before anything is read
    policies = list(backup_policy) if backup_policy else sorted(Path("configs/backups").glob("*.yaml"))
    if watch and output is OutputFormat.table:
        from rich.live import Live

        with Live(render(collect(kubeconfig, policies)), console=console.real, auto_refresh=False) as live:
            try:
                while True:
                    time.sleep(watch)
                    live.update(render(collect(kubeconfig, policies)), refresh=True)
            except KeyboardInterrupt:
                return
    while True:
        view = collect(kubeconfig, policies)
        if output is OutputFormat.table:
            console.print(render(view))
        else:
            emit(view, output)
        if not watch:
            break
        time.sleep(watch)
    if view["unhealthy"]:
        raise typer.Exit(1)


def render(view: dict[str, Any], width: int | None = None) -> Any:
    """The rich renderable: a headline, the unhealthy (then attention) items as a list, then each section as a
    table - or, when the table would not fit ``width`` (default: the terminal's), as a list of records, so no
    name, revision, lease holder or backup id is ever cut or folded."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    from flows.output import _natural_width, records

    width = width or console.width
    parts: list[Any] = []
    bad = [(title, r) for level in ("unhealthy", "attention") for key, title, _ in SECTIONS for r in view[key]
           if r["health"] == level and r.get("problem")]
    head = (f"[bold red]{view['unhealthy']} unhealthy[/bold red]" if view["unhealthy"]
            else "[bold green]all healthy[/bold green]")
    parts.append(f"{head}  (checked {view['checked_at']})")
    for title, row in bad:
        who = row.get("policy") or f"{row.get('namespace')}/{row.get('name')}"
        mark = "[red]✗[/red]" if row["health"] == "unhealthy" else "[yellow]![/yellow]"
        parts.append(f"  {mark} {SINGULAR[title]} {who}: {row['problem']}")
    for error in view["errors"]:
        parts.append(f"  [red]✗[/red] {error}")
    for key, title, columns in SECTIONS:
        shown = [{c: f"{row['namespace']}/{row['name']}" if c == "name" else row.get(c, "") for c in columns}
                 for row in view[key]]
        if not shown:
            parts.append(f"[dim]{title}: none[/dim]")
            continue
        if _natural_width(shown) > width:
            parts.append(Text(records(shown, title)))
            continue
        table = Table(title=title, title_justify="left", expand=False)
        for column in columns:
            table.add_column(column.replace("_", " "))
        for row in shown:
            style = HEALTH_STYLE.get(row["health"], "")
            cells = [str(row[c]) for c in columns]
            cells[columns.index("health")] = f"[{style}]{row['health']}[/{style}]"
            table.add_row(*cells)
        parts.append(table)
    return Group(*parts)
