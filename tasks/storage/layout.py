"""Where things live: storage URIs, object keys of a version, the local files to publish, and the one
shape every object store has (:class:`ObjectStore`)."""

from __future__ import annotations

import builtins
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol
from urllib.parse import urlparse

from tasks.errors import InputError

MANIFEST_NAME = "manifest.json"
SHA256_METADATA = "sha256"  # object metadata key holding the hex sha256 of the content
SCHEMES = ("s3", "gs")
CLIENT_POOL = 32  # connections an S3/GCS client keeps per host: caps parallel uploads (backup objects, publish)


@dataclass(frozen=True)
class StorageUri:
    """``scheme://bucket/prefix/`` with ``prefix`` normalised to end with ``/`` (or be empty)."""

    scheme: str
    bucket: str
    prefix: str

    def __str__(self) -> str:
        return f"{self.scheme}://{self.bucket}/{self.prefix}"

    def key(self, rel: str) -> str:
        """Object key of ``rel`` (a POSIX path relative to the version) under this prefix."""
        return self.prefix + rel

    def child(self, name: str) -> StorageUri:
        return StorageUri(self.scheme, self.bucket, self.prefix + name.strip("/") + "/")


def parse_uri(uri: str, *, source: str = "<cli>", field: str = "DEST") -> StorageUri:
    """Parse ``s3://bucket/prefix`` or ``gs://bucket/prefix`` (by the storage initializer's rules, see
    :func:`configs.inputs.parse_storage_uri`: a valid bucket name, ASCII without spaces, no ``..``).

    Raises:
        InputError: another scheme, no or an invalid bucket, whitespace or look-alike characters.
    """
    from configs.inputs import parse_storage_uri

    parse_storage_uri(uri, source=source, field=field, schemes=SCHEMES)
    parsed = urlparse(uri)
    prefix = parsed.path.strip("/")
    return StorageUri(parsed.scheme, parsed.netloc, prefix + "/" if prefix else "")


@dataclass(frozen=True)
class LocalFile:
    """A file to publish: POSIX path relative to the model directory, absolute path, size in bytes."""

    rel: str
    path: Path
    size: int


def scan_local(src: str | Path) -> list[LocalFile]:
    """Every regular file under ``src`` (sorted, symlinks followed, ``manifest.json`` at the top excluded).

    Raises:
        InputError: ``src`` is not a directory or holds no file.
    """
    root = Path(src)
    if not root.is_dir():
        raise InputError("<cli>", "SRC", f"{src} is not a directory", "pass the local model directory")
    files = []
    for dirpath, _dirs, names in os.walk(root, followlinks=True):
        for name in names:
            path = Path(dirpath) / name
            rel = path.relative_to(root).as_posix()
            if rel == MANIFEST_NAME or not path.is_file():
                continue
            files.append(LocalFile(rel, path, path.stat().st_size))
    if not files:
        raise InputError("<cli>", "SRC", f"{src} holds no file", "pass a directory with the model files")
    return sorted(files, key=lambda f: f.rel)


@dataclass(frozen=True)
class ObjectInfo:
    """An object as listed: key, size in bytes, the sha256 recorded in its metadata (None if absent) and when
    it was last modified (UTC, aware; None when the store did not say)."""

    key: str
    size: int
    sha256: str | None = None
    modified: datetime | None = None


class ObjectStore(Protocol):
    """The one shape of an object store, used by publishing, warmup and backups alike; implemented by
    :class:`tasks.storage.s3.S3Store`, :class:`tasks.storage.gcs.GcsStore` and (``file://``, tests and laptops)
    :class:`tasks.storage.local.DirectoryStore`. Keys are full paths inside the bucket. Errors:
    :class:`tasks.errors.TemporaryError` for 5xx/timeouts, :class:`tasks.errors.PermanentError` for 4xx (each
    store maps its client's errors in one place)."""

    scheme: str

    def bucket_exists(self, bucket: str) -> bool: ...

    def create_bucket(self, bucket: str) -> None:
        """Create ``bucket`` unless it exists."""
        ...

    def list(self, bucket: str, prefix: str) -> dict[str, ObjectInfo]:
        """Objects under ``prefix`` by key (size and modification time; sha256 not filled)."""
        ...

    def list_dirs(self, bucket: str, prefix: str) -> builtins.list[str]:
        """The "directories" right under ``prefix`` (common prefixes up to the next ``/``, each ending in ``/``)."""
        ...

    def head(self, bucket: str, key: str) -> ObjectInfo | None:
        """One object with its recorded sha256, or None."""
        ...

    def upload_file(self, bucket: str, key: str, path: Path, sha256: str | None = None,
                    progress: Callable[[int], None] | None = None) -> str:
        """Upload ``path`` with its sha256 recorded (for :meth:`head`); returns the hex sha256: ``sha256`` when
        given, else computed from the bytes as they are read (each byte read once where the store allows)."""
        ...

    def put_bytes(self, bucket: str, key: str, data: bytes, sha256: str) -> None: ...

    def get_bytes(self, bucket: str, key: str) -> bytes | None:
        """Content, or None when the object does not exist."""
        ...

    def delete(self, bucket: str, keys: builtins.list[str]) -> None:
        """Delete ``keys`` (a missing key is no error)."""
        ...
