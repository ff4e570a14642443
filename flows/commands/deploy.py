"""``kaiops deploy``: register kaiops on the Prefect server at ``$PREFECT_API_URL``, idempotently.

Creates the process work pool, one global concurrency limit per released model
(``kaiops-release-<model>``, 1 slot), the ``aws-credentials/kaiops-aws`` block from the AWS_* environment,
and every deployment of ``deployments/prefect.yaml`` with its schedules, concurrency and triggers.
A second run reports everything ``unchanged``; ``--dry-run`` shows what would change.
"""

from __future__ import annotations

import os
from pathlib import Path

import typer

from flows.output import OutputFormat, OutputOption, emit, err_console
from tasks.errors import InputError


def deploy(
    file: Path = typer.Option(Path("deployments/prefect.yaml"), "--file", "-f", help="The deployments file."),
    releases: Path = typer.Option(Path("configs/releases"), help="Release configs (one limit per model)."),
    timezone: str | None = typer.Option(None, help="Timezone of the cron schedules (else $KAIOPS_TIMEZONE, UTC)."),
    blocks: bool = typer.Option(True, help="Create the credential blocks from the environment."),
    dry_run: bool = typer.Option(False, "--dry-run", help="List what would be created or changed; change nothing."),
    output: OutputFormat = OutputOption,
) -> None:
    """Register the work pool, concurrency limits, blocks and deployments against PREFECT_API_URL."""
    from configs.release import concurrency_limit_name, load_releases
    from tasks import prefect_admin

    if not os.environ.get("PREFECT_API_URL"):
        raise InputError("<env>", "PREFECT_API_URL", "not set: deployments need a Prefect server",
                         "export PREFECT_API_URL=http://127.0.0.1:4200/api (or eval \"$(kaiops sandbox env)\")")
    from configs.inputs import existing_dir, existing_file, timezone_name

    existing_file(file, field="--file", example="deployments/prefect.yaml")
    existing_dir(releases, field="--releases", example="configs/releases")
    env = prefect_admin.default_env()
    if timezone is not None:
        env["KAIOPS_TIMEZONE"] = timezone_name(timezone)
    spec = prefect_admin.load_project(file, env)
    limits = {concurrency_limit_name(m): 1 for m in load_releases(releases)}
    changes = prefect_admin.sync(spec, limits=limits, blocks_env=env if blocks else None, dry_run=dry_run)
    emit([c.as_row() for c in changes], output, title="kaiops deploy" + (" (dry run)" if dry_run else ""))
    if output is OutputFormat.table:
        counts = {a: sum(c.action is a for c in changes) for a in prefect_admin.Action}
        err_console.print(", ".join(f"{n} {a.value}" for a, n in counts.items() if n))
