"""``kaiops sandbox up | down | status | env``: the local platform on 127.0.0.1."""

from __future__ import annotations

import shlex
from dataclasses import asdict

import typer

from flows.commands import sandbox_load
from flows.output import OutputFormat, OutputOption, console, emit

app = typer.Typer(help="The local sandbox platform (real control plane, node agent, Prometheus, S3, GCS, Ray, "
                       "Prefect).", no_args_is_help=True)

ServicesArg = typer.Option(None, "--service", "-s", help="Only this service (repeatable); default: all.")


@app.command()
def up(service: list[str] | None = ServicesArg, output: OutputFormat = OutputOption) -> None:
    """Start every sandbox service that is not already healthy (safe to run twice)."""
    from sandbox import launcher

    try:
        launcher.up(tuple(service) if service else launcher.DEFAULT_SERVICES)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--service") from exc
    emit_status([asdict(s) for s in launcher.status()], output)


def emit_status(rows: list[dict], output: OutputFormat) -> None:
    """Print service rows; as a table only when it fits the terminal (80 columns when not a terminal).

    Values (URLs, log paths) are never cut: a table too wide is printed as one block per service instead.
    """
    if output is not OutputFormat.table or not rows:
        emit(rows, output, title="sandbox")
        return
    columns = list(rows[0])
    widths = [max(len(c), *(len(_text(r.get(c))) for r in rows)) for c in columns]
    if sum(widths) + 3 * len(columns) + 1 <= console.width:
        emit(rows, output, title="sandbox")
        return
    for row in rows:
        typer.echo(f"{row['name']}: {row['state']}")
        for column in columns:
            if column not in ("name", "state") and row.get(column) not in (None, ""):
                typer.echo(f"  {column}: {row[column]}")


def _text(value: object) -> str:
    return "" if value is None else str(value)


@app.command()
def down(output: OutputFormat = OutputOption) -> None:
    """Stop exactly the processes this sandbox started."""
    from sandbox import launcher

    emit({"stopped": launcher.down()}, output)


@app.command()
def status(output: OutputFormat = OutputOption) -> None:
    """Each service, its address and health. Exit 1 when any started service is unhealthy."""
    from sandbox import launcher

    rows = launcher.status()
    emit_status([asdict(s) for s in rows], output)
    if any(r.state == "unhealthy" for r in rows):
        raise typer.Exit(1)


@app.command()
def env(output: OutputFormat = OutputOption) -> None:
    """Print the exports a shell needs: ``eval "$(kaiops sandbox env)"``."""
    from sandbox import launcher

    values = launcher.env()
    if not values:
        from flows.output import err_console
        from sandbox.paths import instance_name

        err_console.print(f"sandbox {instance_name()!r} is not running: run `kaiops sandbox up` first")
        raise typer.Exit(1)
    if output is OutputFormat.table:
        for key, value in values.items():
            typer.echo(f"export {key}={shlex.quote(value)}")
        return
    emit(values, output)


app.command("load")(sandbox_load.load)
