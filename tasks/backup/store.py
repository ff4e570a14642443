"""Where backups live: S3 (boto3) or GCS (google-cloud-storage), plus ``file://`` for tests and laptops.

Format ``kaiops-backup/v2``, two layouts under the destination URI ``s3://bucket/prefix`` (the manifest's
``layout`` field; a v2 manifest without it is ``packs``)::

    prefix/<backup-id>/started.json          <- written FIRST (the backup is visible, incomplete, while it runs)
    prefix/packs/<sha256 of the pack>.pack   <- layout packs: objects, packed, shared by every backup using them
    prefix/<backup-id>/objects/<group>/<Kind>/<namespace|_cluster>/<name>.json[.sealed]
                                             <- layout objects: one storage object per resource
    prefix/<backup-id>/manifest.json         <- written LAST, only after every pack or object was uploaded

A pack is the concatenation of the stored bytes of many objects (canonical JSON, or a sealed Secret), up to
:data:`PACK_BYTES`; one PUT carries hundreds of objects instead of one each (restic and kopia pack small
blobs the same way). Packs are content-addressed, so uploading one twice is harmless. An *incremental*
backup reuses the (pack, offset, size) of every object whose sha256 is unchanged since the newest complete
packs backup and uploads only new packs for what changed; the manifest still lists every object.
The ``objects`` layout stores each resource as its own object (``aws s3 cp`` fetches one alone; a sealed
Secret is its encrypted envelope); it is never incremental: every backup uploads every object.

A backup id is ``YYYYMMDDTHHMMSSZ-<6 hex>`` (UTC start time). A directory without ``manifest.json`` is
an *incomplete* backup: restore refuses it and retention cleans it after a day. Retention deletes a pack
only when no remaining complete backup references it and it is older than that grace period (a running
backup's fresh packs are never collected).

The manifest holds the cluster (name, server, server version), the CRD versions, counts per kind, and
per object its logical key, size and sha256 (of the stored bytes), and in layout packs its pack and offset.
``kaiops-backup/v1`` backups (one store object per resource under ``<backup-id>/objects/``, the layout
``objects`` reads the same way) are still read and restored.

The stores are the one object-store layer :mod:`tasks.storage` (the same S3, GCS and directory stores
publishing and warmup use, with their one error mapping), reached through a :class:`~tasks.storage.bucket.Bucket`.
Endpoints come from the environment as the clients read them (``AWS_ENDPOINT_URL`` for S3,
``STORAGE_EMULATOR_HOST`` for GCS).
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import threading
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlparse

import orjson

from configs.backup import BackupPolicy, Layout
from tasks.errors import InputError, PermanentError
from tasks.storage.bucket import Bucket
from tasks.storage.local import LocalStore

MANIFEST = "manifest.json"
STARTED = "started.json"
FORMAT = "kaiops-backup/v2"
READABLE_FORMATS = ("kaiops-backup/v1", FORMAT)
PACKS = "packs/"
PACK_BYTES = 4 * 1024 * 1024  # target pack size: a few MiB keeps PUTs few and a restore's GETs parallel
BACKUP_ID_RE = re.compile(r"^\d{8}T\d{6}Z-[0-9a-f]{6}$")
ID_TIME_FORMAT = "%Y%m%dT%H%M%SZ"


@dataclass(frozen=True)
class Destination:
    """A parsed destination URI: ``scheme`` (s3/gs/file), ``bucket`` and ``prefix`` (ends with ``/`` or empty)."""

    scheme: str
    bucket: str
    prefix: str

    @property
    def uri(self) -> str:
        return f"{self.scheme}://{self.bucket}/{self.prefix}"


def parse_destination(uri: str, source: str = "<policy>") -> Destination:
    """Parse ``s3://bucket/prefix``, ``gs://bucket/prefix`` or ``file:///dir``.

    Raises:
        InputError: another scheme, or no bucket.
    """
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        return Destination("file", parsed.path.rstrip("/") or "/", "")
    if parsed.scheme not in ("s3", "gs") or not parsed.netloc:
        raise InputError(source, "destination", f"{uri!r} is not s3://bucket/prefix, gs://bucket/prefix or file:///dir",
                         "write e.g. s3://kaiops-backups/nightly")
    prefix = parsed.path.strip("/")
    return Destination(parsed.scheme, parsed.netloc, f"{prefix}/" if prefix else "")


def open_store(dest: Destination, create_bucket: bool = False) -> Bucket:
    """Return the bucket of ``dest`` in the one object-store layer (:mod:`tasks.storage`): S3 and GCS clients
    from the environment, ``file://`` a directory (always created).

    Raises:
        TemporaryError / PermanentError: ``create_bucket`` and the bucket could not be checked or created.
    """
    if dest.scheme == "s3":
        from tasks.storage.s3 import S3Store

        return Bucket(S3Store.from_env(), dest.bucket, create_bucket)
    if dest.scheme == "gs":
        from tasks.storage.gcs import GcsStore

        return Bucket(GcsStore.from_env(), dest.bucket, create_bucket)
    return LocalStore(dest.bucket, create_bucket)


def list_for_policy(policy: BackupPolicy) -> list[StoredBackup]:
    """Every backup under ``policy.destination``, newest first (see :func:`list_backups`)."""
    dest = parse_destination(policy.destination, f"policy {policy.name}")
    return list_backups(open_store(dest, policy.create_bucket), dest)


def new_backup_id(now: datetime | None = None) -> str:
    """``YYYYMMDDTHHMMSSZ-<6 hex>`` for ``now`` (UTC)."""
    return f"{(now or datetime.now(UTC)).strftime(ID_TIME_FORMAT)}-{secrets.token_hex(3)}"


def backup_time(backup_id: str) -> datetime | None:
    """The UTC start time encoded in a backup id (None when the id is not one of ours)."""
    if not BACKUP_ID_RE.match(backup_id):
        return None
    try:
        return datetime.strptime(backup_id.split("-")[0], ID_TIME_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        return None


def check_backup_id(backup_id: str, source: str = "<command line>", field: str = "BACKUP") -> str:
    """Return ``backup_id`` when it is one of ours (``YYYYMMDDTHHMMSSZ-<6 hex>``), so no path part
    (``../``, ``/``) ever reaches a store key.

    Raises:
        InputError: anything else, naming ``field``.
    """
    if backup_time(backup_id) is None:
        raise InputError(source, field, f"{backup_id!r} is not a backup id",
                         "give an id as `kaiops backups list` prints it, e.g. 20250101T020000Z-1a2b3c")
    return backup_id


def object_key(obj: dict[str, Any]) -> str:
    """The path of ``obj`` inside a backup directory (``objects/ray.io/RayCluster/ns/name.json``)."""
    group = obj["apiVersion"].rsplit("/", 1)[0] if "/" in obj["apiVersion"] else "core"
    ns = obj["metadata"].get("namespace") or "_cluster"
    return f"objects/{group}/{obj['kind']}/{ns}/{obj['metadata']['name']}.json"


def encode(obj: dict[str, Any]) -> bytes:
    """Canonical JSON bytes (sorted keys, compact, UTF-8): the same object always hashes the same.

    orjson (several times faster than ``json`` on 50,000 objects); its bytes equal
    ``json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()`` for what the
    apiserver returns (strings, integers, booleans, null, lists, string-keyed maps). Earlier backups escaped
    non-ASCII characters; such an object hashes differently once and is uploaded again by the next nightly.
    """
    return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class StoredBackup:
    """A backup directory as listed: id, start time, and the manifest when it is complete (else None)."""

    id: str
    time: datetime | None
    manifest: dict[str, Any] | None

    @property
    def complete(self) -> bool:
        return self.manifest is not None


def upload(store: Bucket, dest: Destination, backup_id: str, blobs: Iterable[tuple[str, bytes]],
           parallelism: int = 16) -> None:
    """Upload ``(relative key, bytes)`` pairs of one backup in parallel (the manifest is not among them)."""
    base = f"{dest.prefix}{backup_id}/"
    with ThreadPoolExecutor(max_workers=parallelism) as pool:
        list(pool.map(lambda kv: store.put(base + kv[0], kv[1]), blobs))


def write_manifest(store: Bucket, dest: Destination, backup_id: str, manifest: dict[str, Any]) -> str:
    """Write ``manifest.json`` (call only after every object is uploaded); return its key."""
    key = f"{dest.prefix}{backup_id}/{MANIFEST}"
    store.put(key, orjson.dumps(manifest, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
    return key


def read_manifest(store: Bucket, dest: Destination, backup_id: str) -> dict[str, Any] | None:
    """The manifest of ``backup_id`` (None when there is none: the backup is incomplete)."""
    key = f"{dest.prefix}{backup_id}/{MANIFEST}"
    if not store.exists(key):
        return None
    manifest: dict[str, Any] = orjson.loads(store.get(key))
    if manifest.get("format") not in READABLE_FORMATS:
        raise PermanentError(f"{dest.uri}{backup_id}: manifest format {manifest.get('format')!r}, "
                             f"expected one of {', '.join(READABLE_FORMATS)}")
    return manifest


def layout(manifest: dict[str, Any]) -> Layout:
    """The :class:`~configs.backup.Layout` of a manifest (v1 stored one object per resource; a v2 manifest
    without the field is packs)."""
    if manifest.get("format") != FORMAT:
        return Layout.objects
    return Layout(manifest.get("layout") or Layout.packs)


def newest_manifest(store: Bucket, dest: Destination) -> dict[str, Any] | None:
    """The manifest of the newest complete ``kaiops-backup/v2`` *packs* backup under ``dest`` (None when there
    is none): what an incremental backup reuses packs from.

    Reads manifests newest first and stops at the first complete one in layout packs (one listing plus,
    usually, one GET); newer ``objects`` backups are passed over, a complete v1 backup ends the search.
    """
    ids = sorted((i for i in (d[len(dest.prefix):].rstrip("/") for d in store.list_dirs(dest.prefix))
                  if backup_time(i) is not None), reverse=True)
    for backup_id in ids:
        manifest = read_manifest(store, dest, backup_id)
        if manifest is None or (manifest.get("format") == FORMAT and layout(manifest) is Layout.objects):
            continue
        return manifest if manifest.get("format") == FORMAT else None
    return None


def write_started(store: Bucket, dest: Destination, backup_id: str, info: dict[str, Any]) -> None:
    """Write ``<id>/started.json`` (policy, start time): the backup shows as incomplete until its manifest lands."""
    store.put(f"{dest.prefix}{backup_id}/{STARTED}", json.dumps(info, sort_keys=True).encode())


class PackWriter:
    """Collect stored objects into packs of about ``pack_bytes`` and upload each full pack in the background.

    ``add`` returns the manifest location dict, whose ``pack`` is filled in when its pack is sealed (so read
    locations only after :meth:`close`). Uploads run on ``parallelism`` threads while the caller keeps adding.
    """

    def __init__(self, store: Bucket, dest: Destination, parallelism: int = 4,
                 pack_bytes: int = PACK_BYTES) -> None:
        self.store, self.dest, self.pack_bytes = store, dest, pack_bytes
        self._pool = ThreadPoolExecutor(max_workers=max(1, parallelism))
        self._futures: list[Future[None]] = []
        self._buffer: list[bytes] = []
        self._pending: list[dict[str, Any]] = []
        self._size = 0
        self._lock = threading.Lock()
        self.packs = 0
        self.bytes = 0

    def add(self, data: bytes, rel: str = "") -> dict[str, Any]:
        """Queue ``data`` (``rel``, the object's logical key, is not needed: packs are content-addressed); return
        ``{"pack": <set on seal>, "offset": n, "size": n}``."""
        with self._lock:
            location: dict[str, Any] = {"pack": None, "offset": self._size, "size": len(data)}
            self._buffer.append(data)
            self._pending.append(location)
            self._size += len(data)
            if self._size >= self.pack_bytes:
                self._seal()
            return location

    def _seal(self) -> None:
        if not self._buffer:
            return
        data = b"".join(self._buffer)
        rel = f"{PACKS}{sha256(data)}.pack"
        for location in self._pending:
            location["pack"] = rel
        self._futures.append(self._pool.submit(self.store.put, self.dest.prefix + rel, data))
        self.packs += 1
        self.bytes += len(data)
        self._buffer, self._pending, self._size = [], [], 0

    def close(self) -> None:
        """Seal the last pack and wait for every upload.

        Raises:
            TemporaryError / PermanentError: the first failed upload (the backup then gets no manifest).
        """
        with self._lock:
            self._seal()
        try:
            for future in self._futures:
                future.result()
        finally:
            self._pool.shutdown(wait=True)


class ObjectWriter:
    """Upload each stored object as its own storage object ``<prefix><backup-id>/<relative key>``, on
    ``parallelism`` threads sharing the store's client, while the caller keeps encoding (layout objects).

    Same shape as :class:`PackWriter`: ``add`` returns the manifest location (``{"size": n}``), :meth:`close`
    waits for every upload. ``packs`` stays 0; ``uploads`` counts PUTs and ``bytes`` their bytes.
    """

    def __init__(self, store: Bucket, dest: Destination, backup_id: str, parallelism: int = 16) -> None:
        self.store, self.base = store, f"{dest.prefix}{backup_id}/"
        self._pool = ThreadPoolExecutor(max_workers=max(1, parallelism))
        self._futures: list[Future[None]] = []
        self.packs = 0
        self.uploads = 0
        self.bytes = 0

    def add(self, data: bytes, rel: str = "") -> dict[str, Any]:
        """Queue the upload of ``data`` to ``<backup-id>/<rel>``; return ``{"size": n}``.

        Raises:
            ValueError: no ``rel``.
        """
        if not rel:
            raise ValueError("ObjectWriter.add needs the object's relative key")
        self._futures.append(self._pool.submit(self.store.put, self.base + rel, data))
        self.uploads += 1
        self.bytes += len(data)
        return {"size": len(data)}

    def close(self) -> None:
        """Wait for every upload.

        Raises:
            TemporaryError / PermanentError: the first failed upload (the backup then gets no manifest).
        """
        try:
            for future in self._futures:
                future.result()
        finally:
            self._pool.shutdown(wait=True, cancel_futures=True)


def referenced_packs(manifests: Iterable[dict[str, Any]]) -> set[str]:
    """The pack keys (relative to the destination prefix) that ``manifests`` reference."""
    return {e["pack"] for m in manifests for e in m.get("objects", []) if e.get("pack")}


def collect_packs(store: Bucket, dest: Destination, keep: set[str], older_than: datetime) -> list[str]:
    """Delete every pack not in ``keep`` that was last modified before ``older_than``; return their keys.

    A pack newer than ``older_than`` may belong to a backup still running (its manifest not yet written),
    so it is left for a later run.
    """
    times = store.list_times(dest.prefix + PACKS)
    doomed = sorted(k for k, t in times.items() if k[len(dest.prefix):] not in keep and t < older_than)
    store.delete(doomed)
    return doomed


def list_backups(store: Bucket, dest: Destination, parallelism: int = 8) -> list[StoredBackup]:
    """Every backup directory under ``dest``, newest first, with its manifest when complete."""
    ids = [d[len(dest.prefix):].rstrip("/") for d in store.list_dirs(dest.prefix)]
    ids = [i for i in ids if backup_time(i) is not None]
    with ThreadPoolExecutor(max_workers=parallelism) as pool:
        manifests = list(pool.map(lambda i: read_manifest(store, dest, i), ids))
    backups = [StoredBackup(i, backup_time(i), m) for i, m in zip(ids, manifests, strict=True)]
    return sorted(backups, key=lambda b: b.id, reverse=True)


def delete_backup(store: Bucket, dest: Destination, backup_id: str) -> int:
    """Delete every key of ``backup_id``, the manifest FIRST (so a half-deleted backup is incomplete, never
    a complete backup with missing objects); return the number of keys deleted."""
    base = f"{dest.prefix}{backup_id}/"
    keys = store.list_keys(base)
    manifest = [k for k in keys if k == base + MANIFEST]
    store.delete(manifest)
    rest = [k for k in keys if k != base + MANIFEST]
    store.delete(rest)
    return len(keys)
