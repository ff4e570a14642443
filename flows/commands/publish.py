"""``kaiops publish SRC DEST``: upload a model directory as a versioned, manifest-last model in S3/GCS."""

from __future__ import annotations

import typer

from flows.output import OutputFormat, OutputOption, emit


def publish(
    src: str = typer.Argument(..., help="Local model directory."),
    dest: str = typer.Argument(..., help="Version URI: s3://BUCKET/PREFIX/VERSION or gs://BUCKET/PREFIX/VERSION."),
    force: bool = typer.Option(False, "--force", help="Replace a published version whose content differs."),
    model_format: str | None = typer.Option(None, "--model-format", help="KServe modelFormat.name, e.g. sklearn."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show what would be uploaded; change nothing."),
    aws_block: str | None = typer.Option(None, "--aws-block",
                                         help="Prefect block aws-credentials/NAME or minio-credentials/NAME."),
    gcp_block: str | None = typer.Option(None, "--gcp-block", help="Prefect block gcp-credentials/NAME."),
    output: OutputFormat = OutputOption,
) -> None:
    """Publish SRC to DEST: parallel uploads, sha256 per file, manifest.json last; only changed files upload."""
    from configs.inputs import block_ref, existing_dir
    from configs.inputs import model_format as check_format
    from tasks.storage.publisher import PublishOutcome
    from tasks.storage.publisher import publish as plan_publish
    from tasks.storage.stores import check_force_needed, make_store

    existing_dir(src, field="SRC", example="./model (the local model directory)")
    check_force_needed(str(src), dest)  # bad input -> exit 2 before a flow run starts
    if model_format is not None:
        check_format(model_format)
    if aws_block is not None:
        block_ref(aws_block, field="--aws-block", types=("aws-credentials", "minio-credentials"))
    if gcp_block is not None:
        block_ref(gcp_block, field="--gcp-block", types=("gcp-credentials",))
    # The plan first, from plain calls (no flow run, no Prefect API): a dry run, or a publish that finds
    # nothing to change, is answered from it; refused content (exit 2) is too.
    plan = plan_publish(str(src), dest, make_store(dest, aws_block=aws_block, gcp_block=gcp_block), force=force,
                        model_format=model_format, dry_run=True)
    if dry_run or plan.outcome is PublishOutcome.UNCHANGED:
        emit({**plan.summary(), "ok": True}, output, title=f"kaiops publish {dest}")
        return
    from flows.publish import publish_model

    summary = publish_model(str(src), dest, force=force, model_format=model_format, dry_run=dry_run,
                            aws_block=aws_block, gcp_block=gcp_block,
                            terminal_progress=output is OutputFormat.table)
    emit(summary, output, title=f"kaiops publish {dest}")
