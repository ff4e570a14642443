"""Warmup: diagnose an InferenceService's storage wiring, download its model with KServe's code using the
credentials KServe would inject, verify every file against the published manifest, and report.

Pure parts (:func:`load_manifest_file`, :func:`verify`, :func:`markdown`) take plain data; the I/O parts
(:func:`check_bucket`, :func:`download_and_verify`) each do one thing. The KServe objects it writes and reads
(LocalModelCache, InferenceService, the S3 wiring) are built in :mod:`tasks.kserve.manifests`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml

from tasks.errors import InputError, PermanentError
from tasks.kserve.credentials import (
    ProblemKind,
    Severity,
    StorageCredentials,
    StorageKind,
    WiringProblem,
)
from tasks.storage.layout import MANIFEST_NAME
from tasks.storage.manifest import FileCheck, FileVerdict, Manifest, verify_dir


class WarmupVerdict(StrEnum):
    """The outcome of a warmup."""

    READY = "ready"  # downloaded with KServe's code and every file matches the manifest
    MISWIRED = "miswired"  # credential wiring is wrong; nothing was downloaded
    DOWNLOAD_FAILED = "download_failed"  # KServe's storage initializer failed (its message is in the report)
    NOT_PUBLISHED = "not_published"  # downloaded, but there is no manifest: the version is not published
    CORRUPT = "corrupt"  # a file is missing, has another size or another sha256 than the manifest says


@dataclass
class WarmupReport:
    """Everything a warmup found; sizes in bytes, times in seconds, throughput in MB/s (10**6 bytes/s)."""

    isvc: str
    storage_uri: str
    verdict: WarmupVerdict
    credentials: dict[str, Any]
    problems: list[WiringProblem] = field(default_factory=list)
    cache_dir: str = ""
    files: int = 0
    bytes: int = 0
    seconds: float = 0.0
    error: str = ""
    checks: list[FileCheck] = field(default_factory=list)
    local_model_cache: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return self.verdict is WarmupVerdict.READY

    @property
    def mb_per_second(self) -> float:
        return self.bytes / 1e6 / self.seconds if self.seconds > 0 else 0.0

    def failed_checks(self) -> list[FileCheck]:
        return [c for c in self.checks if c.verdict is not FileVerdict.OK]

    def summary(self) -> dict[str, Any]:
        return {
            "isvc": self.isvc, "storage_uri": self.storage_uri, "verdict": self.verdict.value, "ok": self.ok,
            "files": self.files, "bytes": self.bytes, "seconds": round(self.seconds, 3),
            "mb_per_second": round(self.mb_per_second, 2), "cache_dir": self.cache_dir, "error": self.error,
            "problems": [p.as_dict() for p in self.problems],
            "failed_files": [c.model_dump(mode="json") for c in self.failed_checks()],
            "credentials": self.credentials, "local_model_cache": self.local_model_cache,
        }


def load_manifest_file(path: str | Path) -> dict[str, Any]:
    """Read a YAML file holding an InferenceService and optionally its ServiceAccount and Secrets.

    Returns:
        ``{"isvc": dict, "service_accounts": {name: dict}, "secrets": {name: dict}}``.

    Raises:
        InputError: not YAML, or no InferenceService in it.
    """
    try:
        docs = [d for d in yaml.safe_load_all(Path(path).read_text()) if isinstance(d, dict)]
    except (OSError, yaml.YAMLError) as exc:
        raise InputError(str(path), "-", f"cannot read YAML: {exc}", "pass an InferenceService manifest") from exc
    isvcs = [d for d in docs if d.get("kind") == "InferenceService"]
    if len(isvcs) != 1:
        raise InputError(str(path), "kind", f"{len(isvcs)} InferenceService documents (need exactly 1)",
                         "put one InferenceService in the file")
    by_kind: dict[str, dict[str, dict[str, Any]]] = {"ServiceAccount": {}, "Secret": {}}
    for d in docs:
        if d.get("kind") in by_kind:
            by_kind[d["kind"]][(d.get("metadata") or {}).get("name", "")] = d
    return {"isvc": isvcs[0], "service_accounts": by_kind["ServiceAccount"], "secrets": by_kind["Secret"]}


def check_bucket(creds: StorageCredentials) -> WiringProblem | None:
    """HEAD the bucket of ``creds.storage_uri`` with exactly those credentials (no ambient env).

    Returns:
        a BUCKET_MISSING / BUCKET_FORBIDDEN problem, or None when the bucket answers.
    """
    from urllib.parse import urlparse

    bucket = urlparse(creds.storage_uri).netloc
    where = f"bucket {creds.storage_uri.split('://', 1)[0]}://{bucket}"
    env = creds.env
    try:
        if creds.kind is StorageKind.S3 or creds.storage_uri.startswith("s3://"):
            from tasks.storage.s3 import S3Store

            verify = env.get("S3_VERIFY_SSL")
            store: Any = S3Store.from_keys(
                access_key_id=env.get("AWS_ACCESS_KEY_ID"), secret_access_key=env.get("AWS_SECRET_ACCESS_KEY"),
                endpoint_url=env.get("AWS_ENDPOINT_URL"), region=env.get("AWS_DEFAULT_REGION"),
                verify=None if verify is None else verify.lower() not in ("0", "false"),
                anonymous=env.get("awsAnonymousCredential", "").lower() == "true")
        elif creds.storage_uri.startswith("gs://"):
            from tasks.storage.gcs import GcsStore

            store = GcsStore.from_env()
        else:
            return None
        exists = store.bucket_exists(bucket)
    except PermanentError as exc:
        if "403" in str(exc) or "Forbidden" in str(exc) or "AccessDenied" in str(exc):
            return WiringProblem(ProblemKind.BUCKET_FORBIDDEN, Severity.ERROR, where,
                                 "HEAD bucket with the resolved credentials was refused (403)",
                                 "check the access keys in the Secret and the bucket policy")
        raise
    if not exists:
        return WiringProblem(ProblemKind.BUCKET_MISSING, Severity.ERROR, where,
                             f"does not exist at {env.get('AWS_ENDPOINT_URL', 'the default endpoint')}",
                             "publish the model first (kaiops publish) or fix the bucket in storageUri / the "
                             "s3-endpoint annotation")
    return None


#: A file warmup writes into every download directory it creates: only such a directory is ever emptied again.
CACHE_MARKER = ".kaiops-warmup-cache"


def check_cache_dir(cache_dir: str | Path, source: str = "--cache-dir") -> Path:
    """Return the resolved download directory if warmup may use it: it does not exist yet, is an empty
    directory, or is one warmup created before (it holds :data:`CACHE_MARKER`). Nothing is touched.

    Raises:
        InputError: anything else (a file, or a directory with other content, e.g. ``/`` or ``$HOME``): warmup
            empties its download directory on every run and must never delete what it did not download.
    """
    from configs.inputs import output_dir

    output_dir(cache_dir, field="cache_dir", source=source)  # empty, a file, or below a file
    path = Path(cache_dir).expanduser().resolve()
    if not path.exists():
        return path
    if not path.is_dir():
        raise InputError(source, "cache_dir", f"{path} is a file", "give a new or empty directory")
    if (path / CACHE_MARKER).is_file() or not any(path.iterdir()):
        return path
    raise InputError(source, "cache_dir", f"{path} is not empty and was not created by kaiops warmup "
                     f"(no {CACHE_MARKER}); warmup empties its download directory on each run, so it refuses "
                     "to use this one (nothing was deleted)", "give a new or empty directory")


def fresh_cache_dir(cache_dir: str | Path) -> Path:
    """Empty the download directory (after :func:`check_cache_dir`, checked again here) and mark it as warmup's.

    Returns:
        the directory, existing, holding only :data:`CACHE_MARKER`.
    """
    import shutil

    path = check_cache_dir(cache_dir)
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    (path / CACHE_MARKER).write_text("kaiops warmup downloads here; the next warmup empties this directory\n")
    return path


def verify(cache_dir: str | Path) -> tuple[Manifest | None, list[FileCheck]]:
    """Read ``manifest.json`` from the downloaded directory and check every file against it."""
    path = Path(cache_dir) / MANIFEST_NAME
    if not path.is_file():
        return None, []
    manifest = Manifest.model_validate_json(path.read_text())
    return manifest, verify_dir(manifest, cache_dir, ignore=frozenset({CACHE_MARKER}))


def download_and_verify(creds: StorageCredentials, cache_dir: str | Path, report: WarmupReport,
                        extra_env: dict[str, str] | None = None) -> WarmupReport:
    """Run KServe's download into a fresh ``cache_dir`` and verify it; fills and returns ``report``.

    Raises:
        InputError: ``cache_dir`` is not warmup's to empty (see :func:`check_cache_dir`).
    """
    from tasks.kserve.storage_initializer import DownloadError, download

    dest = fresh_cache_dir(cache_dir)
    report.cache_dir = str(dest)
    try:
        result = download(creds.storage_uri, dest, creds, extra_env=extra_env)
    except DownloadError as exc:
        report.verdict, report.error = WarmupVerdict.DOWNLOAD_FAILED, exc.message
        return report
    marker = dest / CACHE_MARKER
    downloaded = [f for f in result.files if f != CACHE_MARKER]
    report.files, report.seconds = len(downloaded), result.seconds
    report.bytes = result.bytes - (marker.stat().st_size if marker.is_file() else 0)
    manifest, checks = verify(dest)
    report.checks = checks
    if manifest is None:
        report.verdict = WarmupVerdict.NOT_PUBLISHED
        report.error = f"no {MANIFEST_NAME} under {creds.storage_uri}: the version is not (completely) published"
    elif any(c.verdict in (FileVerdict.MISSING, FileVerdict.SIZE_MISMATCH, FileVerdict.SHA256_MISMATCH)
             for c in checks):
        report.verdict = WarmupVerdict.CORRUPT
        bad = [f"{c.path} ({c.verdict.value})" for c in report.failed_checks()
               if c.verdict is not FileVerdict.UNEXPECTED]
        report.error = "files do not match the manifest: " + ", ".join(bad)
    else:
        report.verdict = WarmupVerdict.READY
    return report


def markdown(report: WarmupReport) -> str:
    """The warmup report as markdown (no secret values)."""
    s = report.summary()
    lines = [f"# warmup {report.isvc}", "", f"**{report.verdict.value}** `{report.storage_uri}`", ""]
    if report.problems:
        lines += ["## Wiring", "", "| severity | kind | object | problem | fix |", "|---|---|---|---|---|"]
        lines += [f"| {p.severity.value} | {p.kind.value} | {p.obj} | {p.problem} | {p.fix} |" for p in report.problems]
        lines.append("")
    if report.files:
        lines += [f"Downloaded {s['files']} files, {s['bytes']:,} bytes in {s['seconds']} s "
                  f"({s['mb_per_second']} MB/s) with kserve-storage into `{report.cache_dir}`.", ""]
    if report.error:
        lines += [f"**error:** {report.error}", ""]
    if report.checks:
        lines += ["| file | verdict | detail |", "|---|---|---|"]
        lines += [f"| {c.path} | {c.verdict.value} | {c.detail} |" for c in report.checks[:100]]
    creds = report.credentials
    lines += ["", f"Credentials: source {creds.get('source')}, ServiceAccount {creds.get('service_account')}, "
              f"Secrets {creds.get('secrets')}, env `{json.dumps(creds.get('env'))}`"]
    if report.local_model_cache:
        lines += ["", f"LocalModelCache: `{json.dumps(report.local_model_cache)}`"]
    return "\n".join(lines)
