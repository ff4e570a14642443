"""``kaiops demo``: start the sandbox, run the demo flow on it, print and save the summary."""

from __future__ import annotations

import json
import os
from pathlib import Path

import typer

from flows.output import OutputFormat, OutputOption, emit


def demo(
    out: Path = typer.Option(Path("demo-out"), help="Directory for summary.json and the reports."),
    output: OutputFormat = OutputOption,
) -> None:
    """Start the sandbox (if needed) and run the demo on it; writes ``<out>/summary.json``."""
    from configs.inputs import output_dir

    output_dir(out, field="--out")  # before the sandbox starts
    from sandbox import launcher

    launcher.up()
    os.environ.update(launcher.env())
    from flows.demo import demo as demo_flow  # after the exports: Prefect reads PREFECT_API_URL on import
    out.mkdir(parents=True, exist_ok=True)
    os.environ["KAIOPS_DEMO_OUT"] = str(out.resolve())
    summary = demo_flow()
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    from flows.demo import render_summary, summary_rows

    rows = summary_rows(summary, out)
    if output is OutputFormat.table:
        typer.echo(render_summary(rows, out / "summary.json"))
    else:
        emit(summary, output)
    if not all(section.get("ok") for section in summary.values()):
        raise typer.Exit(1)
