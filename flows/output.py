"""How the CLI prints results: ``--output table|json|yaml`` on every command.

JSON and YAML go to stdout untouched so they pipe into ``jq``/``yq``; tables are rich tables.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from rich.table import Table


class _LazyConsole:
    """A ``rich.console.Console`` made on first use: importing rich costs about 0.1 s, which ``--help`` and
    JSON/YAML output never need (issue 18: the CLI answers like kubectl)."""

    def __init__(self, **kwargs: Any) -> None:
        self._kwargs = kwargs
        self._console: Any = None

    @property
    def real(self) -> Any:
        """The ``rich.console.Console`` itself, for rich objects that take one (``Live(console=...)`` enters it
        as a context manager, which a proxy's ``__getattr__`` cannot forward)."""
        if self._console is None:
            from rich.console import Console

            self._console = Console(**self._kwargs)
        return self._console

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


console: Any = _LazyConsole()
err_console: Any = _LazyConsole(stderr=True)


class OutputFormat(StrEnum):
    """How a command prints its result."""

    table = "table"  # a rich table for people
    json = "json"  # JSON on stdout, for scripts
    yaml = "yaml"  # YAML on stdout, for scripts


OutputOption = typer.Option(OutputFormat.table, "--output", "-o", help="table, json or yaml.")


def emit(data: Any, output: OutputFormat, *, title: str | None = None) -> None:
    """Print ``data`` in the chosen format.

    Args:
        data: a list of flat mappings (rows) or one mapping (shown as key/value rows).
        output: the format.
        title: table title (table format only).
    """
    if output is OutputFormat.json:
        typer.echo(json.dumps(data, indent=2, default=str, sort_keys=False))
        return
    if output is OutputFormat.yaml:
        import yaml

        typer.echo(yaml.safe_dump(json.loads(json.dumps(data, default=str)), sort_keys=False).rstrip())
        return
    if not data and not isinstance(data, Mapping):
        console.print(f"{title}: nothing" if title else "nothing")  # an empty table reads like a crash
        return
    table = _table(data, title)
    if _natural_width(data) > console.width:
        # It does not fit: a list of records instead of a squeezed table, so no path, URL or id is cut
        # (rich would ellipsize or fold it); long lines are left to the terminal to wrap.
        typer.echo(records(data, title))
        return
    console.print(table)


def _natural_width(data: Any) -> int:
    """The width the table needs so that no cell is wrapped or cut: widest line of each column, plus borders
    and padding (3 per column, 1 more)."""
    rows: Sequence[Mapping[str, Any]] = [{"field": k, "value": v} for k, v in data.items()] if isinstance(
        data, Mapping) else data
    columns: list[str] = []
    for row in rows:
        columns += [c for c in row if c not in columns]

    def widest(text: str) -> int:
        return max((len(line) for line in text.splitlines()), default=0)

    return sum(max([widest(c)] + [widest(_cell(r.get(c))) for r in rows]) + 3 for c in columns) + 1


def records(data: Any, title: str | None = None) -> str:
    """``data`` as plain text records: per row its first value as a heading, then ``  field: value`` lines;
    a mapping as ``field: value`` lines. Nothing is shortened."""
    lines = [title] if title else []
    if isinstance(data, Mapping):
        return "\n".join(lines + [f"{k}: {_cell(v)}" for k, v in data.items()])
    for row in data:
        items = list(row.items())
        if not items:
            continue
        (first_key, first), rest = items[0], items[1:]
        lines.append(f"- {first_key}: {_cell(first)}")
        lines += [f"    {k}: {_cell(v)}" for k, v in rest if v not in (None, "")]
    return "\n".join(lines)


def _table(data: Any, title: str | None) -> Table:
    from rich.table import Table

    table = Table(title=title)
    if isinstance(data, Mapping):
        table.add_column("field")
        table.add_column("value")
        for key, value in data.items():
            table.add_row(str(key), _cell(value))
        return table
    rows: Sequence[Mapping[str, Any]] = data or []
    columns: list[str] = []
    for row in rows:
        columns += [c for c in row if c not in columns]
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*(_cell(row.get(c)) for c in columns))
    return table


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, default=str)
    return str(value)
