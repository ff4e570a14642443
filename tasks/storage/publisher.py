"""Publish a local model directory as one version (``<uri>/manifest.json`` written last), and read versions.

Rules:
- A version exists for readers only once ``manifest.json`` exists; :func:`list_versions` and
  :func:`read_manifest` ignore prefixes without one.
- Every object carries its sha256 in metadata (``sha256``); a file whose object already has the same size and
  sha256 is not uploaded again (resume after an interruption, republish of changed files only).
- A published version with different content is never overwritten without ``force``; with ``force`` the old
  manifest is deleted first (the version disappears for readers), changed files are uploaded, then the new
  manifest is written.
- Publishing the same content again uploads nothing (idempotent).
"""

from __future__ import annotations

import hashlib
import socket
import threading
import time
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from tasks.errors import InputError, PermanentError
from tasks.storage.layout import MANIFEST_NAME, LocalFile, ObjectInfo, ObjectStore, StorageUri, parse_uri, scan_local
from tasks.storage.manifest import Manifest, build_manifest, sha256_file


class PublishOutcome(StrEnum):
    """What a publish did."""

    PUBLISHED = "published"  # a new version now exists
    RESUMED = "resumed"  # an interrupted publish was completed (some files were already there)
    UPDATED = "updated"  # an existing version was replaced (--force); only changed files were uploaded
    UNCHANGED = "unchanged"  # the version already had exactly this content; nothing was uploaded
    DRY_RUN = "dry_run"  # nothing was changed; the plan is in the result


class ProgressSink:
    """Receives progress; the CLI shows a rich bar, the flow a Prefect progress artifact. Methods are called
    from worker threads (implementations must be thread-safe)."""

    def start(self, total_bytes: int, total_files: int) -> None:
        """Upload of ``total_bytes`` in ``total_files`` files begins."""

    def advance(self, nbytes: int) -> None:
        """``nbytes`` more bytes were sent."""

    def finish(self) -> None:
        """Upload ended (successfully or not)."""


@dataclass
class PublishResult:
    """Outcome of :func:`publish`; sizes in bytes, ``seconds`` wall time of the whole publish."""

    destination: str
    outcome: PublishOutcome
    files_total: int
    files_uploaded: list[str]
    files_skipped: int
    bytes_total: int
    bytes_uploaded: int
    seconds: float
    deleted: list[str] = field(default_factory=list)
    manifest: Manifest | None = None

    @property
    def mb_per_second(self) -> float:
        """Upload throughput in MB/s (10**6 bytes) over the whole publish."""
        return self.bytes_uploaded / 1e6 / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> dict[str, Any]:
        return {
            "destination": self.destination, "outcome": self.outcome.value, "files_total": self.files_total,
            "files_uploaded": len(self.files_uploaded), "files_skipped": self.files_skipped,
            "bytes_total": self.bytes_total, "bytes_uploaded": self.bytes_uploaded,
            "seconds": round(self.seconds, 3), "mb_per_second": round(self.mb_per_second, 2),
            "deleted": len(self.deleted),
            "model_format": self.manifest.model_format if self.manifest else None,
        }


def read_manifest(store: ObjectStore, uri: StorageUri) -> Manifest | None:
    """The manifest of the version at ``uri``, or None when it is not published (no manifest).

    Raises:
        PermanentError: the manifest exists but is not a valid kaiops manifest.
    """
    raw = store.get_bytes(uri.bucket, uri.key(MANIFEST_NAME))
    if raw is None:
        return None
    try:
        return Manifest.model_validate_json(raw)
    except ValidationError as exc:
        raise PermanentError(f"{uri}{MANIFEST_NAME}: not a valid manifest: {exc.errors()[0]['msg']}") from exc


def list_versions(store: ObjectStore, model_uri: StorageUri | str) -> dict[str, Manifest]:
    """Published versions directly under ``model_uri`` (``s3://models/iris/`` -> ``{"v1": Manifest, ...}``).

    A prefix without ``manifest.json`` (an interrupted or running publish) is not a version.
    """
    uri = parse_uri(model_uri) if isinstance(model_uri, str) else model_uri
    out: dict[str, Manifest] = {}
    for key in sorted(store.list(uri.bucket, uri.prefix)):
        rest = key[len(uri.prefix):]
        parts = rest.split("/")
        if len(parts) == 2 and parts[1] == MANIFEST_NAME:
            manifest = read_manifest(store, uri.child(parts[0]))
            if manifest is not None:
                out[parts[0]] = manifest
    return out


def hash_cache_path(src: str | Path) -> Path:
    """Where the sha256 cache of a source directory lives (``~/.cache/kaiops/sha256/<hash of abs path>.json``)."""
    import os

    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "kaiops" / "sha256"
    return base / (hashlib.sha256(str(Path(src).resolve()).encode()).hexdigest()[:24] + ".json")


def default_workers() -> int:
    """Parallel file uploads sized to the machine: two per core, at most 8 (on a small machine the object
    store, the hashing and the upload threads share the same cores; more threads only contend)."""
    import os

    return max(2, min(8, 2 * (os.cpu_count() or 1)))


def _stamp(f: LocalFile) -> list[int]:
    st = f.path.stat()
    return [st.st_size, st.st_mtime_ns, st.st_ino]


def _read_cache(cache: Path | None) -> dict[str, list[Any]]:
    import json

    if cache is None or not cache.is_file():
        return {}
    try:
        loaded: dict[str, list[Any]] = json.loads(cache.read_text())
        return loaded
    except ValueError:
        return {}


def _write_cache(cache: Path | None, stamps: dict[str, list[int]], hashes: dict[str, str]) -> None:
    import json

    if cache is None:
        return
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(".tmp")
    tmp.write_text(json.dumps({rel: [*stamps[rel], h] for rel, h in hashes.items()}))
    tmp.replace(cache)


def _cached(files: list[LocalFile], cache: Path | None) -> tuple[dict[str, list[int]], dict[str, str]]:
    """(rel -> (size, mtime_ns, inode), rel -> sha256 of the files whose stamp the cache still vouches for)."""
    old = _read_cache(cache)
    stamps = {f.rel: _stamp(f) for f in files}
    known = {f.rel: old[f.rel][3] for f in files if f.rel in old and old[f.rel][:3] == stamps[f.rel]}
    return stamps, known


def hash_files(files: list[LocalFile], workers: int = 8, cache: Path | None = None) -> dict[str, str]:
    """rel path -> hex sha256, hashed in parallel threads.

    With ``cache``, a file whose (size, mtime_ns, inode) is unchanged since it was last hashed is not read again
    (the rule git's index uses); the cache is rewritten afterwards. A content change that keeps size, mtime and
    inode would go unnoticed: pass no cache (``publish(..., hash_cache=False)``) to rehash everything.
    """
    stamps, known = _cached(files, cache)
    todo = [f for f in files if f.rel not in known]
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        fresh = dict(zip([f.rel for f in todo], pool.map(lambda f: sha256_file(f.path), todo), strict=True))
    hashes = {**known, **fresh}
    _write_cache(cache, stamps, hashes)
    return hashes


def publish(
    src: str | Path,
    dest: str,
    store: ObjectStore,
    *,
    force: bool = False,
    model_format: str | None = None,
    dry_run: bool = False,
    workers: int | None = None,
    progress: ProgressSink | None = None,
    source: str | None = None,
    hash_cache: bool = True,
) -> PublishResult:
    """Upload the files of ``src`` to the version ``dest`` and write ``manifest.json`` last.

    Args:
        src: local model directory.
        dest: the version URI, ``s3://bucket/prefix/v1`` or ``gs://...``.
        store: the object store for ``dest``'s scheme.
        force: replace an existing version whose content differs.
        model_format: KServe ``modelFormat.name`` recorded in the manifest.
        dry_run: compute the plan (what would be uploaded) and change nothing.
        workers: parallel file uploads (default :func:`default_workers`; each S3 multipart file also uses its
            own threads).
        progress: receives byte progress.
        source: recorded in the manifest (default ``host:abs-path``).
        hash_cache: reuse sha256 of files unchanged (size, mtime, inode) since the last publish of ``src``.

    A first publish (no manifest at ``dest`` yet: a new version, or the resume of an interrupted one) hashes
    each file while uploading it (one read of each byte; a large file's parts are sent in parallel while the
    sha256 of the whole is computed in order), files in parallel, so uploads start at once instead of after
    every byte was hashed; the manifest is built from those hashes. When a manifest exists, every file is hashed
    first (the hash cache makes that cheap), because the new content must be compared with the published one
    before anything changes.

    Returns:
        :class:`PublishResult`.

    Raises:
        InputError: bad ``src``/``dest``, the bucket does not exist, or the version exists with other content
            and ``force`` is False (nothing changed).
        TemporaryError / PermanentError: the store failed; files uploaded so far stay and a new run resumes.
    """
    started = time.monotonic()
    uri = parse_uri(dest)
    if uri.scheme != store.scheme:
        raise InputError("<cli>", "DEST", f"{dest} is not a {store.scheme}:// URI", f"use a {store.scheme}:// URI")
    if not uri.prefix:
        raise InputError("<cli>", "DEST", f"{dest} has no prefix", "publish under a version prefix, e.g. .../v1")
    files = scan_local(src)
    workers = workers or default_workers()
    cache = hash_cache_path(src) if hash_cache else None
    # An unchanged republish is answered from the manifest and one listing: a manifest read proves the bucket
    # exists, so the bucket is only checked when there is none (or reading it failed).
    try:
        existing = read_manifest(store, uri)
    except PermanentError:
        if store.bucket_exists(uri.bucket):
            raise
        existing = None
    if existing is None and not store.bucket_exists(uri.bucket):
        raise InputError("<cli>", "DEST", f"bucket {uri.scheme}://{uri.bucket} does not exist",
                         "create the bucket (or fix the name) first")
    if model_format is None and existing is not None and existing.model_format:
        # not given: keep the published one (re-publishing the same files is then a no-op, not a conflict)
        model_format = existing.model_format
    listing = store.list(uri.bucket, uri.prefix)
    source = source or f"{socket.gethostname()}:{Path(src).resolve()}"
    if existing is None and not dry_run:
        return _publish_first(store, uri, files, listing, cache, workers, progress, model_format, source, started)
    hashes = hash_files(files, workers, cache)
    manifest = build_manifest([(f.rel, f.size, hashes[f.rel]) for f in files], model_format=model_format,
                              source=source)
    total = sum(f.size for f in files)

    if existing is not None and not existing.same_content(manifest) and not force:
        old_files, new_files = existing.by_path(), manifest.by_path()
        changed = sorted(p for p in old_files.keys() | new_files.keys() if old_files.get(p) != new_files.get(p))
        what = ", ".join(changed[:5]) + ("..." if len(changed) > 5 else "") if changed else (
            f"model format {existing.model_format or 'none'} -> {manifest.model_format or 'none'}")
        keep = f", pass --model-format {existing.model_format} to keep the published format" if (
            not changed and existing.model_format) else ""
        raise InputError("<cli>", "DEST", f"{uri} is already published with different content ({what}); "
                         "refusing to overwrite",
                         f"publish to a new version{keep}, or pass --force to replace it")

    known = existing.by_path() if existing is not None else {}
    todo: list[LocalFile] = []
    for f in files:
        key = uri.key(f.rel)
        obj = listing.get(key)
        if obj is None or obj.size != f.size:
            todo.append(f)
            continue
        if f.rel in known and known[f.rel].sha256 == hashes[f.rel]:
            continue  # the manifest vouches for it and the object is there with the right size
        head = store.head(uri.bucket, key)
        if head is None or head.sha256 != hashes[f.rel]:
            todo.append(f)
    stale = _stale(uri, files, listing)

    unchanged = existing is not None and existing.same_content(manifest) and not todo and not stale
    if unchanged:
        outcome = PublishOutcome.UNCHANGED
    elif dry_run:
        outcome = PublishOutcome.DRY_RUN
    elif existing is not None:
        outcome = PublishOutcome.UPDATED
    elif len(todo) < len(files):
        outcome = PublishOutcome.RESUMED
    else:
        outcome = PublishOutcome.PUBLISHED
    result = PublishResult(
        destination=str(uri), outcome=outcome, files_total=len(files), files_uploaded=[f.rel for f in todo],
        files_skipped=len(files) - len(todo), bytes_total=total, bytes_uploaded=sum(f.size for f in todo),
        seconds=0.0, deleted=stale, manifest=existing if unchanged else manifest,
    )
    if unchanged or dry_run:
        if unchanged:
            result.files_uploaded, result.bytes_uploaded, result.deleted = [], 0, []
        result.seconds = time.monotonic() - started
        return result

    if existing is not None:
        # The version disappears for readers before any of its files change.
        store.delete(uri.bucket, [uri.key(MANIFEST_NAME)])
    _upload_all(store, uri, todo, hashes, workers, progress)
    if stale:
        store.delete(uri.bucket, stale)
    body = manifest.to_bytes()
    store.put_bytes(uri.bucket, uri.key(MANIFEST_NAME), body, hashlib.sha256(body).hexdigest())
    result.seconds = time.monotonic() - started
    return result


def _stale(uri: StorageUri, files: list[LocalFile], listing: dict[str, ObjectInfo]) -> list[str]:
    """Keys under the version that no file maps to (left by an earlier publish), nested versions excepted."""
    nested = {k[: -len(MANIFEST_NAME)] for k in listing if k.endswith("/" + MANIFEST_NAME)
              and k != uri.key(MANIFEST_NAME)}
    wanted = {uri.key(f.rel) for f in files} | {uri.key(MANIFEST_NAME)}
    return sorted(k for k in listing if k not in wanted and not any(k.startswith(n) for n in nested))


def _publish_first(store: ObjectStore, uri: StorageUri, files: list[LocalFile], listing: dict[str, ObjectInfo],
                   cache: Path | None, workers: int, progress: ProgressSink | None, model_format: str | None,
                   source: str, started: float) -> PublishResult:
    """No manifest at ``uri``: upload each file in one job that hashes it as it is read (a file whose object is
    already there with the same size is hashed first and skipped when the recorded sha256 matches), files in
    parallel, biggest first; then stale keys, then the manifest."""
    stamps, known = _cached(files, cache)
    sink = progress or ProgressSink()
    total = sum(f.size for f in files)
    sink.start(total, len(files))
    lock = threading.Lock()

    def advance(n: int) -> None:
        with lock:
            sink.advance(n)

    def one(f: LocalFile) -> tuple[str, bool]:
        sha = known.get(f.rel)
        key = uri.key(f.rel)
        obj = listing.get(key)
        if obj is not None and obj.size == f.size:
            sha = sha or sha256_file(f.path)
            head = store.head(uri.bucket, key)
            if head is not None and head.sha256 == sha:
                advance(f.size)
                return sha, False  # uploaded by an interrupted publish
        # Without a cached hash the store hashes the bytes as it sends them (each byte read once).
        return store.upload_file(uri.bucket, key, f.path, sha, advance), True

    ordered = sorted(files, key=lambda f: -f.size)
    done: dict[str, tuple[str, bool]] = {}
    try:
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            futures = {pool.submit(one, f): f for f in ordered}
            finished, pending = wait(futures, return_when=FIRST_EXCEPTION)
            for fut in pending:
                fut.cancel()
            for fut in finished:
                if fut.exception() is not None:
                    raise fut.exception()  # type: ignore[misc]
                done[futures[fut].rel] = fut.result()
    finally:
        sink.finish()
    hashes = {rel: sha for rel, (sha, _) in done.items()}
    _write_cache(cache, stamps, hashes)
    uploaded = [f for f in files if done[f.rel][1]]
    stale = _stale(uri, files, listing)
    if stale:
        store.delete(uri.bucket, stale)
    manifest = build_manifest([(f.rel, f.size, hashes[f.rel]) for f in files], model_format=model_format,
                              source=source)
    body = manifest.to_bytes()
    store.put_bytes(uri.bucket, uri.key(MANIFEST_NAME), body, hashlib.sha256(body).hexdigest())
    return PublishResult(
        destination=str(uri), outcome=PublishOutcome.PUBLISHED if len(uploaded) == len(files)
        else PublishOutcome.RESUMED, files_total=len(files), files_uploaded=[f.rel for f in uploaded],
        files_skipped=len(files) - len(uploaded), bytes_total=total, bytes_uploaded=sum(f.size for f in uploaded),
        seconds=time.monotonic() - started, deleted=stale, manifest=manifest,
    )


def _upload_all(store: ObjectStore, uri: StorageUri, todo: list[LocalFile], hashes: dict[str, str], workers: int,
                progress: ProgressSink | None) -> None:
    sink = progress or ProgressSink()
    sink.start(sum(f.size for f in todo), len(todo))
    lock = threading.Lock()

    def advance(n: int) -> None:
        with lock:
            sink.advance(n)

    # Biggest first: the long multipart files start early and the small ones fill the gaps.
    ordered = sorted(todo, key=lambda f: -f.size)
    try:
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            futures = [pool.submit(store.upload_file, uri.bucket, uri.key(f.rel), f.path, hashes[f.rel], advance)
                       for f in ordered]
            done, pending = wait(futures, return_when=FIRST_EXCEPTION)
            for fut in pending:
                fut.cancel()
            for fut in done:
                if fut.exception() is not None:
                    raise fut.exception()  # type: ignore[misc]
    finally:
        sink.finish()
