"""One bucket of an :class:`~tasks.storage.layout.ObjectStore`, addressed by key alone: what backups use
(their keys are computed under one destination prefix)."""

from __future__ import annotations

import hashlib
from datetime import datetime

from tasks.errors import NotFound
from tasks.storage.layout import ObjectStore


class Bucket:
    """``store``'s bucket ``name``; every call goes to the store (one client stack, one error mapping).

    Args:
        store: an S3, GCS or directory store.
        name: the bucket (for ``file://``, the directory).
        create_bucket: create it when missing.

    Raises:
        TemporaryError / PermanentError: as the store raises them.
    """

    def __init__(self, store: ObjectStore, name: str, create_bucket: bool = False) -> None:
        self.store, self.name = store, name
        if create_bucket and not store.bucket_exists(name):
            store.create_bucket(name)

    @property
    def uri(self) -> str:
        """``scheme://bucket`` for messages."""
        return f"{self.store.scheme}://{self.name}"

    def put(self, key: str, data: bytes) -> None:
        """Write ``data`` at ``key`` (its sha256 goes into the object's metadata)."""
        self.store.put_bytes(self.name, key, data, hashlib.sha256(data).hexdigest())

    def get(self, key: str) -> bytes:
        """The content at ``key``.

        Raises:
            NotFound: no object at ``key``.
        """
        data = self.store.get_bytes(self.name, key)
        if data is None:
            raise NotFound(f"{self.uri}/{key}: not found")
        return data

    def exists(self, key: str) -> bool:
        """True when an object is at ``key``."""
        return self.store.head(self.name, key) is not None

    def list_dirs(self, prefix: str) -> list[str]:
        """The "directories" right under ``prefix``, each ending in ``/``."""
        return self.store.list_dirs(self.name, prefix)

    def list_keys(self, prefix: str) -> list[str]:
        """Every key under ``prefix``."""
        return list(self.store.list(self.name, prefix))

    def list_times(self, prefix: str) -> dict[str, datetime]:
        """Key -> last modified (UTC, aware) under ``prefix``."""
        return {k: i.modified for k, i in self.store.list(self.name, prefix).items() if i.modified is not None}

    def delete(self, keys: list[str]) -> None:
        """Delete ``keys`` (missing ones are no error)."""
        self.store.delete(self.name, keys)
