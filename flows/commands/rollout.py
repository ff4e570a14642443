"""``kaiops rollout | rollback | guard``: progressive canary delivery of KServe InferenceServices."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer

from flows.output import OutputFormat, OutputOption, emit


def rollout(
    isvc: str = typer.Argument(..., help="InferenceService name."),
    namespace: str = typer.Option("default", "--namespace", "-n", help="Its namespace."),
    storage_uri: str = typer.Option(..., "--storage-uri", help="The new model (s3://, gs://, ...)."),
    policy: Path = typer.Option(Path("configs/canary/default.yaml"), "--policy", help="Canary policy YAML."),
    prometheus_url: str = typer.Option(None, "--prometheus-url", envvar="PROMETHEUS_URL", help="Prometheus."),
    out: Path = typer.Option(Path("rollout-out"), "--out", help="Directory for the report."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Analyse live traffic, move none."),
    output: OutputFormat = OutputOption,
) -> None:
    """Roll a new model out step by step, promoting only on Prometheus evidence (exit 1 if rolled back)."""
    from configs.canary import load_policy
    from configs.inputs import check_name, existing_file, http_url, output_dir, parse_storage_uri
    from tasks.errors import InputError

    # bad input: exit 2 before Prefect starts, so no lease, no flow run, no write
    check_name(isvc, source="<cli>", field="ISVC")
    check_name(namespace, source="<cli>", field="--namespace")
    parse_storage_uri(storage_uri, source="<cli>", field="--storage-uri")
    existing_file(policy, field="--policy", example="configs/canary/default.yaml")
    load_policy(policy)
    if not prometheus_url:
        raise InputError("<cli>", "--prometheus-url", "not set", "pass --prometheus-url or export PROMETHEUS_URL")
    http_url(prometheus_url, field="--prometheus-url", example="http://127.0.0.1:9090")
    output_dir(out, field="--out")
    from flows.rollout import canary_rollout

    with _live(namespace, isvc, policy, enabled=output is OutputFormat.table and not dry_run):
        result = canary_rollout(isvc=isvc, namespace=namespace, storage_uri=storage_uri, policy_file=str(policy),
                                prometheus_url=prometheus_url, out_dir=str(out), dry_run=dry_run)
    emit(result, output, title=f"rollout {namespace}/{isvc}")
    if not dry_run and result.get("phase") != "Succeeded":
        raise typer.Exit(1)


@contextlib.contextmanager
def _live(namespace: str, isvc: str, policy_path: Path, enabled: bool) -> Iterator[None]:
    """While the flow runs, show the rollout live in a terminal (rich): step, traffic, the last look's
    estimates and decision, time to the next look. Read from the record on the InferenceService every second
    in a background thread; nothing is shown when stdout is not a terminal."""
    from flows.output import console

    if not enabled or not console.is_terminal:
        yield
        return
    from rich.live import Live

    from configs.canary import load_policy
    from tasks.rollout import tasks as t

    policy = load_policy(policy_path)
    stop = threading.Event()

    def view() -> Any:
        try:
            record = t.read_record.fn(namespace, isvc)
        except Exception as exc:  # the apiserver may blink; the flow reports real failures
            return f"rollout {namespace}/{isvc}: cannot read its record ({exc.__class__.__name__})"
        if record is None:
            return f"rollout {namespace}/{isvc}: starting"
        return render_live(namespace, isvc, record, policy)

    with Live(view(), console=console.real, refresh_per_second=2, transient=False) as live:
        def poll() -> None:
            while not stop.wait(1.0):
                live.update(view())

        thread = threading.Thread(target=poll, name="kaiops-rollout-live", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(timeout=5)
            live.update(view())


def render_live(namespace: str, isvc: str, record: Any, policy: Any, now_s: float | None = None) -> Any:
    """The rich renderable of a running rollout (a table per look; fits 80 columns, wraps, never cuts)."""
    from rich.console import Group
    from rich.table import Table

    from tasks.rollout.report import live_status

    s = live_status(record, policy.steps, policy.interval_seconds, policy.warmup_seconds,
                    time.time() if now_s is None else now_s)
    nxt = "-" if s["next_look_s"] is None else f"in {s['next_look_s']} s"
    head = Table.grid(padding=(0, 2))
    head.add_row(f"[bold]{namespace}/{isvc}[/bold]", f"phase [bold]{s['phase']}[/bold]",
                 f"step {s['step']}: [bold]{s['traffic']}[/bold]", f"steps {s['steps']}")
    head.add_row(f"look {s['look']}", f"decision [bold]{s['decision'] or '-'}[/bold]", f"next look {nxt}", "")
    table = Table(title=None, expand=False)
    for column in ("metric", "canary", "baseline", "bound", "verdict"):
        table.add_column(column, overflow="fold")
    colours = {"pass": "green", "fail": "red", "inconclusive": "yellow"}
    for row in s["metrics"]:
        colour = colours.get(row["verdict"], "white")
        table.add_row(row["metric"], row["canary"], row["baseline"], row["bound"],
                      f"[{colour}]{row['verdict']}[/{colour}]")
    return Group(head, table, f"[dim]{s['reason']}[/dim]")


def rollback(
    isvc: str = typer.Argument(..., help="InferenceService name."),
    namespace: str = typer.Option("default", "--namespace", "-n", help="Its namespace."),
    reason: str = typer.Option("manual rollback", "--reason", help="Recorded in the Event."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Say what would be written; change nothing."),
    output: OutputFormat = OutputOption,
) -> None:
    """Restore the previous revision to 100 % traffic (idempotent). Only a rollout that has not been promoted is
    rolled back; after a promotion, roll forward with a new rollout of the previous storageUri."""
    from configs.inputs import check_name

    check_name(isvc, source="<cli>", field="ISVC")
    check_name(namespace, source="<cli>", field="--namespace")
    from flows.rollout import canary_rollback

    emit(canary_rollback(isvc=isvc, namespace=namespace, reason=reason, dry_run=dry_run), output,
         title="rollback")


def guard(
    namespace: str = typer.Option(None, "--namespace", "-n", help="Only this namespace (default: all)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="List what would be rolled back; change nothing."),
    output: OutputFormat = OutputOption,
) -> None:
    """Roll back rollouts whose lease expired (their flow died); run it every minute as a deployment."""
    if namespace is not None:
        from configs.inputs import check_name

        check_name(namespace, source="<cli>", field="--namespace")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    from flows.rollout import canary_guard

    emit(canary_guard(namespace=namespace, dry_run=dry_run), output, title="guard")
