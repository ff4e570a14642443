"""Prefect tasks over :mod:`tasks.storage` (one I/O concern each; retries only for TemporaryError)."""

from __future__ import annotations

import re
from typing import Any

from prefect import task
from prefect.artifacts import create_markdown_artifact

from tasks.errors import PermanentError, io_retries
from tasks.storage.progress import Fanout, PrefectProgress, RichProgress
from tasks.storage.publisher import PublishResult, publish
from tasks.storage.stores import check_force_needed, make_store  # noqa: F401  (moved there: no Prefect import)

_IO = io_retries(2, 3)


def artifact_key(text: str) -> str:
    """A Prefect artifact key from any text (lowercase letters, digits, dashes)."""
    return re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")[:100] or "kaiops"


@task(name="publish-files", **io_retries(2, 5))
def publish_files(src: str, dest: str, *, force: bool, model_format: str | None, dry_run: bool,
                  aws_block: str | None, gcp_block: str | None, terminal_progress: bool) -> PublishResult:
    """Upload ``src`` to ``dest`` (manifest last); a retry resumes (uploaded files are skipped)."""
    store = make_store(dest, aws_block=aws_block, gcp_block=gcp_block)
    sinks: list[Any] = [PrefectProgress(artifact_key(f"publish-{dest}"), f"publish {dest}")]
    if terminal_progress:
        sinks.append(RichProgress(f"publish {dest}"))
    return publish(src, dest, store, force=force, model_format=model_format, dry_run=dry_run,
                   progress=Fanout(*sinks))


@task(name="publish-report")
def publish_report(result: PublishResult) -> str:
    """Markdown artifact for a publish; returns the markdown."""
    s = result.summary()
    lines = [f"# publish {s['destination']}", "", f"**{s['outcome']}**: {s['files_uploaded']} of {s['files_total']} "
             f"files uploaded ({s['bytes_uploaded']:,} of {s['bytes_total']:,} bytes) in {s['seconds']} s "
             f"({s['mb_per_second']} MB/s); {s['files_skipped']} already there; {s['deleted']} stale deleted.", ""]
    if result.manifest is not None:
        lines += ["| file | bytes | sha256 |", "|---|---:|---|"]
        lines += [f"| {f.path} | {f.size:,} | `{f.sha256[:16]}…` |" for f in result.manifest.files[:50]]
    md = "\n".join(lines)
    create_markdown_artifact(md, key=artifact_key(f"publish-report-{s['destination']}"), description="publish")
    return md


# ------------------------------------------------------------------------------------------------- warmup


@task(name="resolve-storage-credentials", **_IO)
def resolve_storage_credentials(target: str, namespace: str | None) -> tuple[dict[str, Any], Any]:
    """Read the InferenceService (file or cluster), its ServiceAccount and Secrets; resolve as KServe does.

    A manifest file may carry the ServiceAccount and Secrets too; what it lacks is read from the cluster
    (``$KUBECONFIG``) when one is configured.

    Returns:
        (InferenceService dict, :class:`tasks.kserve.credentials.StorageCredentials`).
    """
    import os
    from pathlib import Path

    from tasks.kserve import resolve as kc
    from tasks.storage.warmup import load_manifest_file

    if Path(target).is_file():
        loaded = load_manifest_file(target)
        isvc = loaded["isvc"]
        meta = isvc.setdefault("metadata", {})
        if namespace or not meta.get("namespace"):
            meta["namespace"] = namespace or "default"
        ns = meta["namespace"]
        sa_name = ((isvc.get("spec") or {}).get("predictor") or {}).get("serviceAccountName") or "default"
        sa = loaded["service_accounts"].get(sa_name)
        secrets = dict(loaded["secrets"])
        if os.environ.get("KUBECONFIG"):
            from tasks import kube

            dyn = kube.connect()
            if sa is None:
                try:
                    sa = kube.get(dyn, "v1", "ServiceAccount", sa_name, ns)
                except kube.NotFound:
                    sa = None
            for s in kc.list_secrets(dyn, ns):
                secrets.setdefault(s["metadata"]["name"], s)
        return isvc, kc.resolve(isvc, sa, secrets, namespace_secrets=list(secrets.values()))
    from tasks import kube

    return kc.read_and_resolve(kube.connect(), target, namespace=namespace or "default")


@task(name="check-bucket", **_IO)
def check_bucket_task(creds: Any) -> Any:
    """HEAD the bucket with the resolved credentials; a WiringProblem or None."""
    from tasks.storage.warmup import check_bucket

    return check_bucket(creds)


@task(name="download-and-verify")
def download_and_verify_task(creds: Any, cache_dir: str, report: Any) -> Any:
    """KServe's download into ``cache_dir``, then size+sha256 of every file against the manifest."""
    import os

    from tasks.storage.warmup import download_and_verify

    extra = {k: os.environ[k] for k in ("STORAGE_EMULATOR_HOST",) if k in os.environ and
             creds.storage_uri.startswith("gs://")}
    return download_and_verify(creds, cache_dir, report, extra_env=extra)


@task(name="ensure-local-model-cache")
def ensure_local_model_cache(name: str, storage_uri: str, model_bytes: int, node_group: str,
                             service_account: str | None, timeout: float) -> dict[str, Any]:
    """Create the LocalModelNodeGroup (if missing) and LocalModelCache, then watch until every node copy is
    ``NodeDownloaded`` (or one is ``NodeDownloadError``). Returns ``{name, nodeStatus, copies, ok}``."""
    from tasks import kube
    from tasks.kserve.manifests import (
        cache_downloaded,
        cache_failed,
        local_model_cache_manifest,
        local_model_node_group_manifest,
    )
    from tasks.manifests import validate_documents
    from tasks.manifests.findings import has_errors

    dyn = kube.connect()
    docs = [local_model_cache_manifest(name, storage_uri, model_bytes, [node_group], service_account)]
    try:
        kube.get(dyn, "serving.kserve.io/v1alpha1", "LocalModelNodeGroup", node_group)
    except kube.NotFound:
        docs.insert(0, local_model_node_group_manifest(node_group))
    findings = validate_documents(docs, "<warmup>")
    if has_errors(findings):
        raise PermanentError("; ".join(str(f.message) for f in findings))
    for doc in docs:
        kube.apply(dyn, doc)
    obj = kube.wait_for(dyn, "serving.kserve.io/v1alpha1", "LocalModelCache", name,
                        lambda o: cache_downloaded(o) or cache_failed(o), timeout=timeout)
    status = obj.get("status") or {}
    return {"name": name, "nodeStatus": status.get("nodeStatus"), "copies": status.get("copies"),
            "ok": cache_downloaded(obj)}


@task(name="warmup-report")
def warmup_report(report: Any) -> str:
    """Markdown artifact for a warmup; returns the markdown."""
    from tasks.storage.warmup import markdown

    md = markdown(report)
    create_markdown_artifact(md, key=artifact_key(f"warmup-{report.isvc}"), description="warmup")
    return md
