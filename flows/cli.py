"""The ``kaiops`` command line: one typer app assembled from ``flows/commands/*``.

Exit codes: 0 success, 1 the operation failed, 2 bad input (nothing was changed).
"""

from __future__ import annotations

import os
import sys

# pydantic looks for plugins in every installed distribution's entry points when the first model is built
# (0.03-0.04 s of CPU per command in this venv); kaiops uses none. Set the variable yourself to keep them.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")

import typer

from flows.commands import backup as backup_cmd
from flows.commands import cluster as cluster_cmd
from flows.commands import demo, sandbox, validate
from flows.commands import deploy as deploy_cmd
from flows.commands import fleet as fleet_cmd
from flows.commands import monitoring as monitoring_cmd
from flows.commands import publish as publish_cmd
from flows.commands import registry as registry_cmd
from flows.commands import rollout as rollout_cmd
from flows.commands import status as status_cmd
from flows.commands import warmup as warmup_cmd
from flows.logs import quiet_expected_failures
from flows.output import OutputFormat, emit, err_console
from tasks.errors import InputError, KaiopsError, NotFound

app = typer.Typer(
    name="kaiops",
    help="Day-2 operations for KubeRay and KServe, as Prefect pipelines.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help: typer's rich help imports rich + markdown-it (0.2 s) on every --help
)
app.add_typer(sandbox.app, name="sandbox")
app.add_typer(cluster_cmd.app, name="cluster")
app.add_typer(fleet_cmd.app, name="fleet")
app.command("provision")(cluster_cmd.provision)
app.add_typer(registry_cmd.app, name="registry")
app.add_typer(monitoring_cmd.app, name="monitoring")
app.command("deploy")(deploy_cmd.deploy)
app.command("demo")(demo.demo)
app.command("validate")(validate.validate)
app.command("rollout")(rollout_cmd.rollout)
app.command("rollback")(rollout_cmd.rollback)
app.command("guard")(rollout_cmd.guard)
app.command("status")(status_cmd.status)
app.command("publish")(publish_cmd.publish)
app.command("warmup")(warmup_cmd.warmup)
backup_cmd.register(app)


def _structured_output() -> str | None:
    """``json``/``yaml`` when the command line asked for it (errors are then printed in that format too)."""
    args = sys.argv[1:]
    for i, arg in enumerate(args):
        if arg in ("-o", "--output") and i + 1 < len(args):
            return args[i + 1] if args[i + 1] in ("json", "yaml") else None
        if arg.startswith("--output="):
            value = arg.split("=", 1)[1]
            return value if value in ("json", "yaml") else None
    return None


def _fail(exc: KaiopsError, code: int) -> None:
    fmt = _structured_output()
    if fmt:
        error: dict = {"message": str(exc), "exit_code": code}
        if isinstance(exc, InputError):
            error.update(file=exc.source, field=exc.field, problem=exc.problem, fix=exc.fix)
        emit({"ok": False, "error": error}, OutputFormat(fmt))
    label = "error" if code == 2 else "failed"
    err_console.print(f"[red]{label}:[/red] {exc}")
    sys.exit(code)


def main() -> None:
    """Run the CLI, turning kaiops errors into messages and exit codes.

    Exit 2: bad input, including a named object that does not exist (nothing was changed). Exit 1: the
    operation failed. With ``--output json|yaml`` the error is also printed on stdout in that format, as
    ``{"ok": false, "error": {...}}``, so scripts always get parseable output.
    """
    quiet_expected_failures()
    try:
        app()
    except (InputError, NotFound) as exc:
        _fail(exc, 2)
    except KaiopsError as exc:
        _fail(exc, 1)
