"""``publish-model`` flow: upload a local model directory as a version in S3/GCS, manifest last."""

from __future__ import annotations

from prefect import flow

from configs.inputs import BucketUri
from tasks.storage.tasks import publish_files, publish_report


@flow(name="publish-model", log_prints=True)
def publish_model(
    src: str,
    dest: BucketUri,
    force: bool = False,
    model_format: str | None = None,
    dry_run: bool = False,
    aws_block: str | None = None,
    gcp_block: str | None = None,
    terminal_progress: bool = False,
) -> dict:
    """Publish ``src`` to the version URI ``dest`` and report it.

    Args:
        src: local model directory.
        dest: ``s3://bucket/prefix/<version>`` or ``gs://...``.
        force: replace a published version whose content differs (otherwise InputError).
        model_format: KServe ``modelFormat.name`` recorded in the manifest.
        dry_run: plan only.
        aws_block: Prefect block ``aws-credentials/NAME`` or ``minio-credentials/NAME`` (else AWS_* env).
        gcp_block: Prefect block ``gcp-credentials/NAME`` (else ADC / STORAGE_EMULATOR_HOST).
        terminal_progress: also draw a rich progress bar on stderr.

    Returns:
        :meth:`tasks.storage.PublishResult.summary` plus ``ok``.
    """
    result = publish_files(src, dest, force=force, model_format=model_format, dry_run=dry_run,
                           aws_block=aws_block, gcp_block=gcp_block, terminal_progress=terminal_progress)
    publish_report(result)
    return {**result.summary(), "ok": True}
