"""Where things live: storage URIs, object keys of a version, the local files to publish, and the one
shape every object store has (:class:`ObjectStore`)."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import urlparse

from tasks.errors import InputError

MANIFEST_NAME = "manifest.json"
SHA256_METADATA = "sha256"  # object metadata key holding the hex sha256 of the content
SCHEMES = ("s3", "gs")


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
    """An object as listed: key, size in bytes, and the sha256 recorded in its metadata (None if absent)."""

    key: str
    size: int
    sha256: str | None = None


class ObjectStore(Protocol):
    """The operations publishing and reading need; implemented by :class:`tasks.storage.s3.S3Store` and
    :class:`tasks.storage.gcs.GcsStore`. Errors: :class:`tasks.errors.TemporaryError` for 5xx/timeouts,
    :class:`tasks.errors.PermanentError` for 4xx."""

    scheme: str

    def bucket_exists(self, bucket: str) -> bool: ...

    def list(self, bucket: str, prefix: str) -> dict[str, ObjectInfo]:
        """Objects under ``prefix`` by key (size only; sha256 not filled)."""
        ...

    def head(self, bucket: str, key: str) -> ObjectInfo | None:
        """One object with its recorded sha256, or None."""
        ...

    def upload_file(self, bucket: str, key: str, path: Path, sha256: str,
                    progress: Callable[[int], None] | None = None) -> None: ...

    def put_bytes(self, bucket: str, key: str, data: bytes, sha256: str) -> None: ...

    def get_bytes(self, bucket: str, key: str) -> bytes | None:
        """Content, or None when the object does not exist."""
        ...

    def delete(self, bucket: str, keys: list[str]) -> None: ...
