"""Run a ``kaiops`` command line in-process (typer's CliRunner) with the exit code ``kaiops`` itself gives.

``flows.cli.main`` turns :class:`tasks.errors.InputError`/``NotFound`` into exit 2 and other kaiops errors
into exit 1; CliRunner calls the typer app directly, so the same mapping is applied here to the exception it
caught. Any other exception is a crash (a traceback for the user) and is reported as exit code ``None``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import typer.main
import typer.testing
from typer.testing import CliRunner

_COMMANDS: dict[int, Any] = {}


def _command_once(app: typer.Typer) -> Any:
    """typer rebuilds the whole click command tree on every ``invoke`` (0.35 s for kaiops); the corpus runs
    hundreds of command lines, so build it once per app."""
    if id(app) not in _COMMANDS:
        _COMMANDS[id(app)] = typer.main.get_command(app)
    return _COMMANDS[id(app)]


typer.testing._get_command = _command_once  # CliRunner.invoke looks the builder up in its module


@dataclass(frozen=True)
class CliResult:
    """What one command line did: the exit code kaiops would give, everything printed, the error."""

    code: int | None
    output: str
    error: BaseException | None

    @property
    def text(self) -> str:
        """Printed output and the error message together (what the user reads)."""
        return f"{self.output}\n{self.error or ''}"


def run_cli(argv: list[str], env: dict[str, str] | None = None) -> CliResult:
    """Invoke ``kaiops argv...`` in this process; never raises."""
    from flows.cli import app
    from tasks.errors import InputError, KaiopsError, NotFound

    result = CliRunner().invoke(app, argv, env=env, catch_exceptions=True)
    exc = result.exception
    if exc is None or isinstance(exc, SystemExit):
        return CliResult(result.exit_code, result.output, None)
    if isinstance(exc, (InputError, NotFound)):
        return CliResult(2, result.output, exc)
    if isinstance(exc, KaiopsError):
        return CliResult(1, result.output, exc)
    return CliResult(None, result.output, exc)
