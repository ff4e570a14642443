"""``warmup-model`` flow: prove an InferenceService's storage initializer will get its model, before it
takes traffic: diagnose the credential wiring, download with KServe's own code and credentials, verify
against the manifest, optionally pre-load a LocalModelCache."""

from __future__ import annotations

import re
from pathlib import Path

from prefect import flow

from configs.inputs import Namespace
from tasks.kserve.credentials import Severity
from tasks.storage.tasks import (
    check_bucket_task,
    download_and_verify_task,
    ensure_local_model_cache,
    resolve_storage_credentials,
    warmup_report,
)
from tasks.storage.warmup import WarmupReport, WarmupVerdict, check_cache_dir


@flow(name="warmup-model", log_prints=True)
def warmup_model(
    target: str,
    namespace: Namespace | None = None,
    cache_dir: str | None = None,
    local_model_cache: bool = False,
    node_group: str = "sandbox",
    timeout: float = 600.0,
    dry_run: bool = False,
) -> dict:
    """Warm up the storage of one InferenceService.

    Args:
        target: InferenceService name (read from the cluster) or a manifest file (may also hold its
            ServiceAccount and Secrets).
        namespace: namespace of the InferenceService (default: the manifest's, else ``default``).
        cache_dir: download directory (default ``~/.cache/kaiops/warmup/<ns>/<name>``), emptied each run: it
            must be new, empty, or one warmup created (else InputError, nothing deleted).
        local_model_cache: also create a LocalModelCache for the storage URI and wait for its node copies.
        node_group: LocalModelNodeGroup to cache on (created when missing).
        timeout: seconds to wait for the LocalModelCache.
        dry_run: check the wiring and the bucket, then say what would be downloaded where and which
            LocalModelCache would be created; download and create nothing (``ok``: no wiring error).

    Returns:
        :meth:`tasks.storage.warmup.WarmupReport.summary` (``ok`` true only when ready).
    """
    if cache_dir is not None:
        check_cache_dir(cache_dir)  # before anything else: warmup never empties a directory it did not create
    isvc, creds = resolve_storage_credentials(target, namespace)
    meta = isvc.get("metadata") or {}
    name, ns = meta.get("name", "isvc"), meta.get("namespace", "default")
    report = WarmupReport(isvc=f"{ns}/{name}", storage_uri=creds.storage_uri, verdict=WarmupVerdict.MISWIRED,
                          credentials=creds.summary(), problems=list(creds.problems))
    if creds.ok:
        bucket_problem = check_bucket_task(creds)
        if bucket_problem is not None:
            report.problems.append(bucket_problem)
    if any(p.severity is Severity.ERROR for p in report.problems):
        warmup_report(report)
        return report.summary()
    directory = cache_dir or str(Path.home() / ".cache" / "kaiops" / "warmup" / ns / name)
    cache_name = re.sub(r"[^a-z0-9-]+", "-", creds.storage_uri.split("://", 1)[-1].lower()).strip("-")[:63]
    if dry_run:
        would = [f"download {creds.storage_uri} with KServe's storage initializer into {directory} and verify it "
                 f"against its manifest.json"]
        if local_model_cache:
            would.append(f"create LocalModelCache {cache_name} on node group {node_group} and wait for its copies")
        return {**report.summary(), "dry_run": True, "would": would, "ok": True}
    report = download_and_verify_task(creds, directory, report)
    if local_model_cache and report.ok:
        report.local_model_cache = ensure_local_model_cache(
            cache_name, creds.storage_uri, report.bytes, node_group, creds.service_account, timeout)
        if not report.local_model_cache["ok"]:
            report.verdict = WarmupVerdict.DOWNLOAD_FAILED
            report.error = f"LocalModelCache {cache_name}: {report.local_model_cache['nodeStatus']}"
    warmup_report(report)
    return report.summary()
