"""The object store for a URI, and the cheap checks made before any flow run; no Prefect import (the CLI's
read-only paths use these without starting a flow run)."""

from __future__ import annotations

from tasks.storage.layout import ObjectStore, parse_uri


def make_store(dest: str, *, aws_block: str | None = None, gcp_block: str | None = None) -> ObjectStore:
    """The store for ``dest``'s scheme: from a Prefect block when named, else the standard environment.

    Args:
        dest: ``s3://...`` or ``gs://...``.
        aws_block: ``aws-credentials/NAME`` or ``minio-credentials/NAME`` (a bare NAME means aws-credentials).
        gcp_block: ``gcp-credentials/NAME`` (a bare NAME means gcp-credentials).
    """
    uri = parse_uri(dest)
    if uri.scheme == "s3":
        from tasks.storage.s3 import S3Store

        if aws_block:
            return S3Store.from_block(aws_block if "/" in aws_block else f"aws-credentials/{aws_block}")
        return S3Store.from_env()
    from tasks.storage.gcs import GcsStore

    if gcp_block:
        return GcsStore.from_block(gcp_block if "/" in gcp_block else f"gcp-credentials/{gcp_block}")
    return GcsStore.from_env()


def check_force_needed(src: str, dest: str) -> None:
    """Cheap input checks before any flow run starts (URI shape, a directory holding files); raises InputError."""
    parse_uri(dest)
    from tasks.storage.layout import scan_local

    scan_local(src)
