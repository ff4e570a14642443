"""The ``kaiops`` command line: one typer app assembled from ``flows/commands/*``.

Exit codes: 0 success, 1 the operation failed, 2 bad input (nothing was changed).
"""

from __future__ import annotations

import sys

import typer

from flows.commands import backup as backup_cmd
from flows.commands import cluster as cluster_cmd
from flows.commands import demo, sandbox, validate
from flows.commands import deploy as deploy_cmd
from flows.commands import publish as publish_cmd
from flows.commands import registry as registry_cmd
from flows.commands import rollout as rollout_cmd
from flows.commands import warmup as warmup_cmd
from flows.output import err_console
from tasks.errors import InputError, KaiopsError

app = typer.Typer(
    name="kaiops",
    help="Day-2 operations for KubeRay and KServe, as Prefect pipelines.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(sandbox.app, name="sandbox")
app.add_typer(cluster_cmd.app, name="cluster")
app.command("provision")(cluster_cmd.provision)
app.add_typer(registry_cmd.app, name="registry")
app.command("deploy")(deploy_cmd.deploy)
app.command("demo")(demo.demo)
app.command("validate")(validate.validate)
app.command("rollout")(rollout_cmd.rollout)
app.command("rollback")(rollout_cmd.rollback)
app.command("guard")(rollout_cmd.guard)
app.command("publish")(publish_cmd.publish)
app.command("warmup")(warmup_cmd.warmup)
backup_cmd.register(app)


def main() -> None:
    """Run the CLI, turning kaiops errors into messages and exit codes (2 for bad input)."""
    try:
        app()
    except InputError as exc:
        err_console.print(f"[red]error:[/red] {exc}")
        sys.exit(2)
    except KaiopsError as exc:
        err_console.print(f"[red]failed:[/red] {exc}")
        sys.exit(1)
