"""``kaiops warmup ISVC-OR-FILE``: diagnose storage wiring, download with KServe's code, verify the manifest."""

from __future__ import annotations

from pathlib import Path

import typer

from flows.output import OutputFormat, OutputOption, emit, err_console


def warmup(
    target: str = typer.Argument(..., help="InferenceService name, or a manifest file (may hold its SA/Secrets)."),
    namespace: str | None = typer.Option(None, "--namespace", "-n", help="Namespace of the InferenceService."),
    cache_dir: Path | None = typer.Option(
        None, "--cache-dir", help="Download directory: new, empty, or one warmup created (it is emptied each run)."),
    local_model_cache: bool = typer.Option(False, "--local-model-cache",
                                           help="Also create a LocalModelCache and wait for its node copies."),
    node_group: str = typer.Option("sandbox", "--node-group", help="LocalModelNodeGroup for --local-model-cache."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Check the wiring; say what would be downloaded/created."),
    output: OutputFormat = OutputOption,
) -> None:
    """Warm up an InferenceService's model storage; exit 1 unless every file is downloaded and verified."""
    from configs.inputs import check_name

    if not _is_file(target):  # a manifest file, or the InferenceService's name
        check_name(target, source="<cli>", field="TARGET (an InferenceService name or a manifest file)")
    if namespace is not None:
        check_name(namespace, source="<cli>", field="--namespace")
    check_name(node_group, source="<cli>", field="--node-group")
    if cache_dir is not None:
        from tasks.storage.warmup import check_cache_dir

        check_cache_dir(cache_dir)  # warmup never empties a directory it did not create
    from flows.warmup import warmup_model

    summary = warmup_model(target, namespace=namespace, cache_dir=str(cache_dir) if cache_dir else None,
                           local_model_cache=local_model_cache, node_group=node_group, dry_run=dry_run)
    if output is OutputFormat.table:
        rows = {k: v for k, v in summary.items() if k not in ("credentials", "problems", "failed_files")}
        emit(rows, output, title=f"kaiops warmup {target}")
        for p in summary["problems"]:
            err_console.print(f"[red]{p['severity']}[/red] {p['kind']} {p['object']}: {p['problem']}")
            err_console.print(f"  fix: {p['fix']}")
        for f in summary["failed_files"]:
            err_console.print(f"[red]{f['verdict']}[/red] {f['path']}: {f['detail']}")
    else:
        emit(summary, output)
    if not summary["ok"]:
        raise typer.Exit(1)


def _is_file(target: str) -> bool:
    try:
        return Path(target).is_file()
    except (OSError, ValueError):  # a name too long for a path, a NUL byte
        return False
