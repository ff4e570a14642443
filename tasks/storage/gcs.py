"""Google Cloud Storage object store over google-cloud-storage (``STORAGE_EMULATOR_HOST`` honoured), with
chunked (resumable) uploads for large files."""

from __future__ import annotations

import builtins
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tasks.errors import PermanentError, TemporaryError
from tasks.storage.layout import CLIENT_POOL, SHA256_METADATA, ObjectInfo

MiB = 1 << 20


def _translate(exc: Exception, what: str) -> Exception:
    from google.api_core import exceptions as gexc

    if isinstance(exc, (gexc.ServerError, gexc.TooManyRequests, ConnectionError, TimeoutError)):
        return TemporaryError(f"{what}: {type(exc).__name__}: {exc}")
    if isinstance(exc, gexc.GoogleAPICallError):
        return PermanentError(f"{what}: {exc.code}: {exc.message}")
    return exc


class GcsStore:
    """google-cloud-storage-backed :class:`tasks.storage.layout.ObjectStore`.

    Args:
        client: a ``google.cloud.storage.Client``.
        chunk_size: resumable-upload chunk size in bytes for files larger than it (multiple of 256 KiB).
    """

    scheme = "gs"

    def __init__(self, client: Any, *, chunk_size: int = 16 * MiB) -> None:
        self.client = client
        self.chunk_size = chunk_size

    @classmethod
    def from_env(cls, **kwargs: Any) -> GcsStore:
        """Client from the environment: with ``STORAGE_EMULATOR_HOST`` anonymous against the emulator, else ADC
        (``GOOGLE_APPLICATION_CREDENTIALS``)."""
        from google.cloud import storage

        if os.environ.get("STORAGE_EMULATOR_HOST"):
            from google.auth.credentials import AnonymousCredentials

            client = storage.Client(project=os.environ.get("GOOGLE_CLOUD_PROJECT", "sandbox"),
                                    credentials=AnonymousCredentials())  # type: ignore[no-untyped-call]
        else:
            client = storage.Client()
        # the client's requests session keeps 10 connections per host; parallel uploads (a backup's layout
        # objects: one PUT per resource on up to `parallelism` threads) would open and discard more
        from requests.adapters import HTTPAdapter

        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=CLIENT_POOL)
        for scheme in ("https://", "http://"):
            client._http.mount(scheme, adapter)
        return cls(client, **kwargs)

    @classmethod
    def from_key_file(cls, path: str, **kwargs: Any) -> GcsStore:
        """Client from a service-account key file (what KServe mounts); the emulator host still applies."""
        from google.cloud import storage

        if os.environ.get("STORAGE_EMULATOR_HOST"):
            return cls.from_env(**kwargs)
        return cls(storage.Client.from_service_account_json(path), **kwargs)

    @classmethod
    def from_block(cls, slug: str, **kwargs: Any) -> GcsStore:
        """Client from a Prefect ``gcp-credentials/NAME`` block."""
        from prefect.blocks.core import Block

        block: Any = Block.load(slug)
        return cls(block.get_cloud_storage_client(), **kwargs)

    def bucket_exists(self, bucket: str) -> bool:
        try:
            return bool(self.client.bucket(bucket).exists())
        except Exception as exc:
            raise _translate(exc, f"get bucket gs://{bucket}") from exc

    def list(self, bucket: str, prefix: str) -> dict[str, ObjectInfo]:
        try:
            return {b.name: ObjectInfo(b.name, int(b.size or 0), (b.metadata or {}).get(SHA256_METADATA), b.updated)
                    for b in self.client.list_blobs(bucket, prefix=prefix)}
        except Exception as exc:
            raise _translate(exc, f"list gs://{bucket}/{prefix}") from exc

    def list_dirs(self, bucket: str, prefix: str) -> builtins.list[str]:
        try:
            blobs = self.client.list_blobs(bucket, prefix=prefix, delimiter="/")
            list(blobs)  # the prefixes are filled while iterating
        except Exception as exc:
            raise _translate(exc, f"list gs://{bucket}/{prefix}*/") from exc
        return sorted(blobs.prefixes)

    def head(self, bucket: str, key: str) -> ObjectInfo | None:
        try:
            blob = self.client.bucket(bucket).get_blob(key)
        except Exception as exc:
            raise _translate(exc, f"get gs://{bucket}/{key}") from exc
        if blob is None:
            return None
        return ObjectInfo(key, int(blob.size or 0), (blob.metadata or {}).get(SHA256_METADATA))

    def upload_file(self, bucket: str, key: str, path: Path, sha256: str | None = None,
                    progress: Callable[[int], None] | None = None) -> str:
        """Upload ``path`` with its sha256 in the metadata (hashed first when not given: the metadata goes with
        the upload's first request); returns the sha256."""
        from tasks.storage.manifest import sha256_file

        sha256 = sha256 or sha256_file(path)
        size = path.stat().st_size
        blob = self.client.bucket(bucket).blob(key, chunk_size=self.chunk_size if size > self.chunk_size else None)
        blob.metadata = {SHA256_METADATA: sha256}
        try:
            blob.upload_from_filename(str(path))
        except Exception as exc:
            raise _translate(exc, f"upload gs://{bucket}/{key}") from exc
        if progress:
            progress(size)
        return sha256

    def put_bytes(self, bucket: str, key: str, data: bytes, sha256: str) -> None:
        blob = self.client.bucket(bucket).blob(key)
        blob.metadata = {SHA256_METADATA: sha256}
        try:
            blob.upload_from_string(data, content_type="application/json" if key.endswith(".json") else None)
        except Exception as exc:
            raise _translate(exc, f"put gs://{bucket}/{key}") from exc

    def get_bytes(self, bucket: str, key: str) -> bytes | None:
        from google.api_core import exceptions as gexc

        try:
            return bytes(self.client.bucket(bucket).blob(key).download_as_bytes())
        except gexc.NotFound:
            return None
        except Exception as exc:
            raise _translate(exc, f"get gs://{bucket}/{key}") from exc

    def delete(self, bucket: str, keys: builtins.list[str]) -> None:
        from google.api_core import exceptions as gexc

        b = self.client.bucket(bucket)
        for key in keys:
            try:
                b.blob(key).delete()
            except gexc.NotFound:
                continue
            except Exception as exc:
                raise _translate(exc, f"delete gs://{bucket}/{key}") from exc

    def create_bucket(self, bucket: str) -> None:
        """Create ``bucket`` if missing (sandbox/demo helper)."""
        if not self.bucket_exists(bucket):
            try:
                self.client.create_bucket(bucket)
            except Exception as exc:
                raise _translate(exc, f"create bucket gs://{bucket}") from exc
