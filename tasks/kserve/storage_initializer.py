"""Run KServe's own storage-initializer download code (``kserve_storage.Storage.download_files``) locally.

The download runs in a child interpreter (``sys.executable -c ...``) whose environment is exactly the one
given (plus PATH/LANG and a private HOME), so resolved credentials never enter this process's ``os.environ``
and this process's own credentials (``AWS_*``, ``~/.aws``, gcloud ADC) never help the download succeed where
the storage initializer would fail. Files the pod would see mounted (the GCS key at ``/var/secrets/...``) are
written to a private temporary directory and the env values pointing at them are rewritten.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tasks.errors import PermanentError, TemporaryError
from tasks.kserve.credentials import StorageCredentials

_CHILD = r"""
import json, os, sys, time, traceback
uri, out = sys.argv[1], sys.argv[2]
start = time.monotonic()
try:
    from kserve_storage import Storage
    Storage.download_files([uri], [out])
except BaseException as exc:
    msg = str(exc) or type(exc).__name__
    sys.stdout.write("\n" + json.dumps({"ok": False, "error": msg, "type": type(exc).__name__}) + "\n")
    sys.exit(3)
sys.stdout.write("\n" + json.dumps({"ok": True, "seconds": time.monotonic() - start}) + "\n")
"""

_PASS_THROUGH = ("PATH", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT")


@dataclass(frozen=True)
class DownloadResult:
    """What a download produced.

    Attributes:
        files: paths relative to the destination directory, sorted.
        bytes: total size of those files in bytes.
        seconds: wall time of KServe's ``download_files`` call (without interpreter start-up).
    """

    files: list[str]
    bytes: int
    seconds: float

    @property
    def mb_per_second(self) -> float:
        """Throughput in MB/s (10**6 bytes per second); 0 when nothing was timed."""
        return self.bytes / 1e6 / self.seconds if self.seconds > 0 else 0.0


class DownloadError(PermanentError):
    """KServe's storage initializer failed; ``message`` is KServe's own failure text."""

    def __init__(self, storage_uri: str, message: str, error_type: str = "") -> None:
        self.storage_uri, self.message, self.error_type = storage_uri, message, error_type
        super().__init__(f"storage initializer failed for {storage_uri}: {message}")


def download(
    storage_uri: str,
    dest_dir: str | Path,
    env: Mapping[str, str] | StorageCredentials,
    *,
    files: Mapping[str, bytes] | None = None,
    extra_env: Mapping[str, str] | None = None,
    timeout: float = 900.0,
) -> DownloadResult:
    """Download ``storage_uri`` into ``dest_dir`` with KServe's code and exactly ``env``.

    Args:
        storage_uri: ``s3://bucket/prefix``, ``gs://bucket/prefix`` (anything kserve-storage accepts).
        dest_dir: destination directory (created).
        env: the storage-initializer environment: a mapping, or a
            :class:`tasks.kserve.credentials.StorageCredentials` (its ``env`` and ``files`` are used).
        files: in-container path -> content for mounted Secret files (merged with ``env.files``).
        extra_env: variables a real pod gets from elsewhere (e.g. ``STORAGE_EMULATOR_HOST`` for the sandbox GCS).
        timeout: seconds before the child is killed.

    Returns:
        :class:`DownloadResult`.

    Raises:
        DownloadError: KServe raised; the message is KServe's (e.g. "Failed to fetch model. No model found in ...").
        TemporaryError: the child timed out.
    """
    if isinstance(env, Mapping):
        base_env, mounted = dict(env), {}
    else:
        base_env, mounted = dict(env.env), dict(env.files or {})
    mounted.update(files or {})
    dest = Path(dest_dir)
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="kaiops-si-") as private:
        os.chmod(private, 0o700)
        remap: dict[str, str] = {}
        for in_pod, content in mounted.items():
            local = Path(private) / "mnt" / in_pod.lstrip("/")
            local.parent.mkdir(parents=True, exist_ok=True)
            local.write_bytes(content)
            local.chmod(0o600)
            remap[in_pod] = str(local)
        child_env = {k: os.environ[k] for k in _PASS_THROUGH if k in os.environ}
        child_env["HOME"] = private
        child_env.update({k: remap.get(v, v) for k, v in base_env.items()})
        child_env.update(extra_env or {})
        try:
            proc = subprocess.run(
                [sys.executable, "-c", _CHILD, storage_uri, str(dest)],
                env=child_env, capture_output=True, text=True, timeout=timeout, cwd=private,
            )
        except subprocess.TimeoutExpired as exc:
            raise TemporaryError(f"storage initializer for {storage_uri} did not finish in {timeout:.0f}s") from exc
    report = _last_json(proc.stdout)
    if proc.returncode != 0 or not report.get("ok"):
        message = report.get("error") or _tail(proc.stderr) or f"exit code {proc.returncode}"
        raise DownloadError(storage_uri, message, report.get("type", ""))
    listed = sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file())
    total = sum((dest / f).stat().st_size for f in listed)
    return DownloadResult(files=listed, bytes=total, seconds=float(report.get("seconds", 0.0)))


def _last_json(text: str) -> dict[str, Any]:
    for line in reversed(text.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                found: dict[str, Any] = json.loads(line)
            except ValueError:
                continue
            return found
    return {}


def _tail(text: str, lines: int = 5) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])
