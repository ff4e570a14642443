"""``kaiops registry serve | webhook``: receive MLflow model-registry webhooks and start releases.

``serve`` runs the receiver (:mod:`tasks.registry.webhook`) with uvicorn; ``webhook`` creates (or checks)
the MLflow webhook that posts to it. The shared secret comes from ``$KAIOPS_REGISTRY_WEBHOOK_SECRET`` (or
the file named by ``--secret-file``), never from a command-line argument, and is never printed.
"""

from __future__ import annotations

import os
from pathlib import Path

import typer

from flows.output import OutputFormat, OutputOption, emit
from tasks.errors import InputError

app = typer.Typer(help="Model-registry (MLflow) webhooks that start releases.", no_args_is_help=True)

SECRET_ENV = "KAIOPS_REGISTRY_WEBHOOK_SECRET"
SecretFileOption = typer.Option(None, "--secret-file", help=f"File holding the webhook secret (else ${SECRET_ENV}).")


def _secret(secret_file: Path | None) -> str:
    if secret_file is not None:
        try:
            value = secret_file.read_text().strip()
        except (OSError, UnicodeDecodeError) as exc:
            problem = f"unreadable: {exc.strerror}" if isinstance(exc, OSError) else "not UTF-8 text"
            raise InputError(f"--secret-file {secret_file}", "-", problem, "pass a readable text file") from exc
    else:
        value = os.environ.get(SECRET_ENV, "").strip()
    if len(value) < 16:
        fix = f"export {SECRET_ENV}=$(python -c 'import secrets; print(secrets.token_urlsafe(32))')"
        raise InputError(str(secret_file or f"${SECRET_ENV}"), "-", "webhook secret missing or shorter than 16 "
                         "characters", fix)
    return value


@app.command("serve")
def serve(
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(8787, min=1, max=65535, help="Port to listen on."),
    releases: Path = typer.Option(Path("configs/releases"), help="Directory of release configs (*.yaml)."),
    tolerance: float = typer.Option(300.0, min=1.0, max=3600.0, help="Seconds a delivery timestamp may be off."),
    state: Path = typer.Option(Path(".kaiops/registry-deliveries.sqlite"), help="Replay store (SQLite file)."),
    secret_file: Path | None = SecretFileOption,
    dry_run: bool = typer.Option(False, "--dry-run", help="Load and check the configuration, then exit."),
    output: OutputFormat = OutputOption,
) -> None:
    """Serve ``POST /mlflow``: verify, de-duplicate and turn deliveries into Prefect release events."""
    from configs.inputs import existing_dir, listen_host, new_file
    from configs.release import load_releases

    listen_host(host)
    existing_dir(releases, field="--releases", example="configs/releases")
    new_file(state, field="--state")
    secret = _secret(secret_file)
    configs = load_releases(releases)
    if dry_run:
        emit({"listen": f"http://{host}:{port}/mlflow", "models": sorted(configs), "tolerance_seconds": tolerance,
              "prefect_api": os.environ.get("PREFECT_API_URL", "")}, output, title="kaiops registry serve (dry run)")
        return
    import uvicorn

    from tasks.registry.prefect_events import post_release_event
    from tasks.registry.replay import DeliveryStore
    from tasks.registry.webhook import create_app

    store = DeliveryStore(state, ttl=max(3600.0, 2 * tolerance))
    api = create_app(secret=secret, releases=configs, store=store, post_event=post_release_event, tolerance=tolerance)
    uvicorn.run(api, host=host, port=port, log_level="info", access_log=False)


@app.command("webhook")
def webhook(
    url: str = typer.Option(..., help="Receiver URL, e.g. http://127.0.0.1:8787/mlflow."),
    name: str = typer.Option("kaiops-release", help="Webhook name in MLflow."),
    rotate_secret: bool = typer.Option(False, help="Update the stored secret even if nothing else changed."),
    secret_file: Path | None = SecretFileOption,
    dry_run: bool = typer.Option(False, "--dry-run", help="Show what would be configured."),
    output: OutputFormat = OutputOption,
) -> None:
    """Create (or update) the MLflow webhook posting model-version and alias events to the receiver."""
    from configs.inputs import http_url, plain_text_problem
    from tasks.registry.mlflow_ops import WEBHOOK_EVENTS, ensure_webhook

    http_url(url, field="--url", example="http://127.0.0.1:8787/mlflow")
    problem = plain_text_problem(name, what="the webhook name") if len(name) <= 63 else "longer than 63 characters"
    if problem:
        raise InputError("<cli>", "--name", problem, "pass a short name without spaces, e.g. kaiops-release")
    secret = _secret(secret_file)
    if dry_run:
        emit({"name": name, "url": url, "events": list(WEBHOOK_EVENTS), "change": "dry-run"}, output)
        return
    change, hook_id = ensure_webhook(name, url, secret, rotate_secret=rotate_secret)
    emit({"name": name, "url": url, "events": list(WEBHOOK_EVENTS), "change": change.value, "id": hook_id}, output,
         title="MLflow webhook")
