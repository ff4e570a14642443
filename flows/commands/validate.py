"""``kaiops validate FILE...``: check manifests offline before anything is applied.

Exit 0 when there is no error finding (warnings and info are printed but allowed), 2 when there is any
error finding (including a file that is not YAML or not a Kubernetes object).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from flows.output import OutputFormat, OutputOption, emit, err_console

if TYPE_CHECKING:
    from tasks.manifests.findings import Finding

EXIT_INVALID = 2


MANIFEST_SUFFIXES = (".yaml", ".yml")


def expand(paths: list[Path], recursive: bool) -> list[Path]:
    """Files to check: each file as given; a directory's ``*.yaml``/``*.yml`` files, sorted, and with
    ``recursive`` those of its subdirectories too (as ``kubectl apply -f DIR [-R]``). A directory without any
    stays in the list, so the validator reports it instead of passing silently."""
    out: list[Path] = []
    for path in paths:
        if not path.is_dir():
            out.append(path)
            continue
        found = sorted(p for p in (path.rglob("*") if recursive else path.iterdir())
                       if p.is_file() and p.suffix in MANIFEST_SUFFIXES)
        out.extend(found or [path])
    return out


def validate(
    files: list[Path] = typer.Argument(..., help="YAML manifests or directories of them (several documents per "
                                       "file allowed)."),
    recursive: bool = typer.Option(False, "--recursive", "-R", help="Also the subdirectories of a directory."),
    kuberay_version: str | None = typer.Option(
        None, "--kuberay-version", help="KubeRay release whose CRDs to validate against (default: the one the "
        "sandbox runs; see configs/crds.yaml for the supported releases)."),
    output: OutputFormat = OutputOption,
) -> None:
    """Validate KubeRay, KServe, Gateway API and core Kubernetes manifests offline (no cluster needed)."""
    from tasks.crds import select_release
    from tasks.manifests import validate_files  # jsonschema and the schemas load only when needed
    from tasks.manifests.findings import has_errors

    try:
        select_release("kuberay", kuberay_version)
    except ValueError as exc:
        err_console.print(f"[red]error:[/red] --kuberay-version: {exc} (fix: pass one of those)")
        raise typer.Exit(EXIT_INVALID) from exc

    empty = [p for p in expand(files, recursive) if p.is_dir()]
    if empty:
        hint = "" if recursive else " (subdirectories are read with -R)"
        err_console.print(f"[red]error:[/red] {empty[0]}: a directory without *.yaml/*.yml manifests{hint} "
                          "(fix: give manifest files, or a directory that holds some)")
        raise typer.Exit(EXIT_INVALID)
    files = expand(files, recursive)
    findings = validate_files(files)
    if output is OutputFormat.table:
        # Compiler-style, like ruff and kubeconform: one line per finding, the fix on the next, never cut
        # to the terminal width (plain text, so grep and editors' "FILE:LINE:COL" jumps work).
        for finding in findings:
            typer.echo("\n".join(finding.lines()))
        typer.echo(summary(findings, len(files)))
    else:
        emit([f.as_dict() for f in findings], output)
    if has_errors(findings):
        raise typer.Exit(EXIT_INVALID)


def summary(findings: list[Finding], files: int) -> str:
    """The last line of ``kaiops validate``: ``invalid: 2 files checked: 3 errors, 1 warning, 0 info``."""
    counts = {s: sum(str(f.severity) == s for f in findings) for s in ("error", "warning", "info")}
    plural = {"error": "errors", "warning": "warnings", "info": "info"}
    parts = ", ".join(f"{n} {s if n == 1 else plural[s]}" for s, n in counts.items())
    verdict = "invalid" if counts["error"] else "ok"
    return f"{verdict}: {files} file{'s' if files != 1 else ''} checked: {parts}"
