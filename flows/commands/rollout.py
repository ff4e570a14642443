"""``kaiops rollout | rollback | guard``: progressive canary delivery of KServe InferenceServices."""

from __future__ import annotations

import os
from pathlib import Path

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

    result = canary_rollout(isvc=isvc, namespace=namespace, storage_uri=storage_uri, policy_file=str(policy),
                            prometheus_url=prometheus_url, out_dir=str(out), dry_run=dry_run)
    emit(result, output, title=f"rollout {namespace}/{isvc}")
    if not dry_run and result.get("phase") != "Succeeded":
        raise typer.Exit(1)


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
