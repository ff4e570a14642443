"""A directory acting as an object store (``file:///path``): the same :class:`~tasks.storage.layout.ObjectStore`
shape as S3 and GCS, for tests and a laptop. The "bucket" is the directory's path; keys are paths below it."""

from __future__ import annotations

import builtins
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from tasks.storage.bucket import Bucket
from tasks.storage.layout import ObjectInfo


class DirectoryStore:
    """:class:`~tasks.storage.layout.ObjectStore` over the local file system; writes are atomic (a temporary
    file renamed into place), so a reader never sees half an object. No sha256 metadata is kept."""

    scheme = "file"

    def bucket_exists(self, bucket: str) -> bool:
        return Path(bucket).is_dir()

    def create_bucket(self, bucket: str) -> None:
        Path(bucket).mkdir(parents=True, exist_ok=True)

    def list(self, bucket: str, prefix: str) -> dict[str, ObjectInfo]:
        root = Path(bucket)
        base = root / prefix
        if not base.is_dir():
            return {}
        out: dict[str, ObjectInfo] = {}
        for path in sorted(p for p in base.rglob("*") if p.is_file()):
            stat = path.stat()
            key = str(path.relative_to(root))
            out[key] = ObjectInfo(key, stat.st_size, modified=datetime.fromtimestamp(stat.st_mtime, UTC))
        return out

    def list_dirs(self, bucket: str, prefix: str) -> builtins.list[str]:
        base = Path(bucket) / prefix
        return sorted(f"{prefix}{p.name}/" for p in base.iterdir() if p.is_dir()) if base.is_dir() else []

    def head(self, bucket: str, key: str) -> ObjectInfo | None:
        path = Path(bucket) / key
        return ObjectInfo(key, path.stat().st_size) if path.is_file() else None

    def _write(self, bucket: str, key: str, fill: Callable[[Path], None]) -> None:
        path = Path(bucket) / key
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        fill(tmp)
        tmp.replace(path)

    def upload_file(self, bucket: str, key: str, path: Path, sha256: str | None = None,
                    progress: Callable[[int], None] | None = None) -> str:
        """Copy ``path`` to the key, hashing the bytes as they are copied; returns the sha256 (this store keeps
        no metadata: :meth:`head` reports no sha256)."""
        import hashlib

        digest = hashlib.sha256()

        def fill(tmp: Path) -> None:
            with open(path, "rb") as src, open(tmp, "wb") as dst:
                while chunk := src.read(1 << 20):
                    digest.update(chunk)
                    dst.write(chunk)

        self._write(bucket, key, fill)
        if progress is not None:
            progress(path.stat().st_size)
        return digest.hexdigest()

    def put_bytes(self, bucket: str, key: str, data: bytes, sha256: str) -> None:
        def fill(tmp: Path) -> None:
            tmp.write_bytes(data)

        self._write(bucket, key, fill)

    def get_bytes(self, bucket: str, key: str) -> bytes | None:
        try:
            return (Path(bucket) / key).read_bytes()
        except FileNotFoundError:
            return None

    def delete(self, bucket: str, keys: builtins.list[str]) -> None:
        for key in keys:
            (Path(bucket) / key).unlink(missing_ok=True)


class LocalStore(Bucket):
    """The directory ``root`` as one bucket (``file:///root``); always created when missing (``create_bucket``
    is accepted for the same call shape as the other stores)."""

    def __init__(self, root: str, create_bucket: bool = True) -> None:
        super().__init__(DirectoryStore(), root, create_bucket=True)
