"""Writing one backup: export the policy's objects as a stream and write them to the destination, packed (or one
storage object each), every object's sha256 in the manifest, and the manifest LAST.

A backup never holds the cluster's objects in memory: :func:`export_stream` yields them as their list pages
arrive (:class:`tasks.backup.export.ExportStream`) and :func:`write_backup` encodes, hashes and packs each one
as it comes, uploading every full pack in the background (:class:`tasks.backup.store.PackWriter`). What stays
in memory is one manifest entry per object (key, kind, name, sha256, pack, offset, size), a few pages and
the packs in flight.

"Nothing is lost": ``started.json`` is written first, the manifest only after every pack or object upload
succeeded; an interrupted or failed backup has no manifest and is never taken for a good one (restore refuses
it, drills skip it, retention removes it).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from configs.backup import BackupPolicy, Layout
from tasks import kube
from tasks.backup import crypto, discovery, store
from tasks.backup.export import ExportStream, Selection
from tasks.storage.layout import CLIENT_POOL


def policy_key(policy: BackupPolicy) -> bytes | None:
    """The encryption key the policy names (None when none is set). Never logged."""
    return crypto.load_key(policy.encryption_key_env, policy.encryption_key_block)


def destination(policy: BackupPolicy) -> store.Destination:
    """The policy's parsed destination. Raises InputError naming the policy for a bad URI."""
    return store.parse_destination(policy.destination, f"policy {policy.name}")


@dataclass
class Exported:
    """The objects of one backup, ready to upload, and what discovery and export reported.

    ``objects`` is a list (:func:`export_objects`) or a one-pass stream (:func:`export_stream`); with a stream,
    ``left_out`` and ``warnings`` are complete once it has been read to the end.
    """

    objects: Iterable[dict[str, Any]]
    cluster: dict[str, Any]
    crds: dict[str, Any]
    missing_kinds: list[str]
    left_out: dict[str, int]
    warnings: list[str]
    seconds: float


def export_stream(policy: BackupPolicy, *, kubeconfig: str | None = None, include_secrets: bool = False) -> Exported:
    """Discover the kinds and return the selected objects as a one-pass stream (see
    :class:`tasks.backup.export.ExportStream`); the cluster's version and the CRD versions are read first.

    Raises:
        TemporaryError / PermanentError: discovery failed (list failures are raised while the stream is read).
    """
    started = time.monotonic()
    dyn = kube.connect(kubeconfig)
    api = dyn.client
    discovery.widen_pool(api, policy.parallelism + 2)
    custom = [k for k in discovery.CUSTOM_KINDS if k.kind in policy.kinds]
    found = discovery.discover(api, [*custom, *discovery.REFERENCED_KINDS, discovery.NAMESPACE])
    selection = Selection(namespaces=policy.namespaces, include_cluster_resources=policy.include_cluster_resources,
                          label_selector=policy.label_selector,
                          keep_status=policy.keep_status, include_secrets=include_secrets,
                          page_size=policy.page_size, parallelism=policy.parallelism)
    with ThreadPoolExecutor(max_workers=2) as side:  # CRD versions and the server version, side by side
        crds = side.submit(discovery.crd_versions, api, [i for k, i in found.served.items() if k in custom])
        version = side.submit(discovery.server_version, api)
        cluster = {"server": api.configuration.host, "version": version.result(),
                   "context": _context_name(kubeconfig)}
        crd_info = crds.result()
    stream = ExportStream(api, found, custom, selection)
    return Exported(objects=stream, cluster=cluster, crds=crd_info, missing_kinds=[str(m) for m in found.missing],
                    left_out=stream.left_out, warnings=stream.warnings, seconds=round(time.monotonic() - started, 3))


def export_objects(policy: BackupPolicy, *, kubeconfig: str | None = None, include_secrets: bool = False) -> Exported:
    """:func:`export_stream` read into a list (previews and tests; ``seconds`` includes the listing)."""
    started = time.monotonic()
    exported = export_stream(policy, kubeconfig=kubeconfig, include_secrets=include_secrets)
    exported.objects = list(exported.objects)
    exported.left_out = dict(exported.left_out)
    exported.seconds = round(time.monotonic() - started, 3)
    return exported


def _context_name(kubeconfig: str | None) -> str | None:
    from kubernetes import config as k8s_config

    try:
        _, active = k8s_config.list_kube_config_contexts(config_file=kubeconfig)
        return str(active["name"]) if active.get("name") else None
    except Exception:  # in-cluster: no kubeconfig
        return None


@dataclass
class Written:
    """A finished backup: id, destination URI, counts per kind, bytes, seconds, and the manifest key."""

    backup_id: str
    destination: str
    counts: dict[str, int]
    objects: int
    bytes: int
    seconds: float
    manifest_key: str
    encrypted: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    missing_kinds: list[str] = field(default_factory=list)
    left_out: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def write_backup(policy: BackupPolicy, exported: Exported, *, key: bytes | None, backup_id: str | None = None,
                 stop_before_manifest: bool = False, incremental: bool | None = None) -> Written:
    """Upload every object (Secrets sealed with ``key``), then write ``manifest.json`` LAST.

    ``started.json`` is written first. In the policy's ``layout``:

    - ``packs``: objects go into content-addressed packs (see :mod:`tasks.backup.store`); packs upload in the
      background while later objects are encoded. With ``incremental`` (default: the policy's ``incremental``),
      an object whose sha256 equals one in the newest complete packs backup at the destination is not uploaded
      again: its manifest entry points at the pack that already holds it. Sealed Secrets are always uploaded
      (each seal has a fresh nonce).
    - ``objects``: one storage object per resource at ``<id>/<key>`` (``objects/<group>/<Kind>/<namespace|
      _cluster>/<name>.json``, ``.sealed`` for a Secret's encrypted envelope), uploaded in parallel on one
      shared client. ``incremental`` is ignored: every object is uploaded (``extra["incremental_ignored"]``
      says so when it was asked for).

    Args:
        stop_before_manifest: leave the backup incomplete (tests and drills of the "cut off" case).

    Returns:
        :class:`Written`; ``extra`` holds ``layout``, ``uploaded`` / ``reused`` object counts, ``packs``
        uploaded, ``uploaded_bytes`` and ``base`` (the backup reused from, or None).

    Raises:
        TemporaryError / PermanentError: an upload failed (no manifest is written: the backup stays incomplete).
    """
    started = time.monotonic()
    dest = destination(policy)
    st = store.open_store(dest, policy.create_bucket)
    backup_id = backup_id or store.new_backup_id()
    layout = policy.layout
    incremental = policy.incremental if incremental is None else incremental
    ignored = incremental and layout is Layout.objects
    incremental = incremental and layout is Layout.packs
    base = store.newest_manifest(st, dest) if incremental else None
    # reuse only packs that are still there (one listing): a pack removed behind kaiops' back (a bucket lifecycle
    # rule, a manual delete) is uploaded again rather than referenced by one more broken backup
    present = {k[len(dest.prefix):] for k in st.list_keys(dest.prefix + store.PACKS)} if base else set()
    reusable = {e["sha256"]: (e["pack"], e["offset"], e["size"]) for e in (base or {}).get("objects", [])
                if e.get("pack") in present and not e.get("encrypted")}
    base_id = base["id"] if base else None
    del base  # the previous manifest's entries: only the reusable locations are kept
    store.write_started(st, dest, backup_id, {"id": backup_id, "policy": policy.name, "layout": layout.value,
                                              "started": datetime.now(UTC).isoformat()})
    writer: store.PackWriter | store.ObjectWriter
    if layout is Layout.objects:
        writer = store.ObjectWriter(st, dest, backup_id, parallelism=min(policy.parallelism, CLIENT_POOL))
    else:
        writer = store.PackWriter(st, dest, parallelism=min(policy.parallelism, 8))
    entries: list[dict[str, Any]] = []
    locations: list[dict[str, Any]] = []
    counts: dict[str, int] = {}
    total = reused = 0
    try:
        for obj in exported.objects:
            rel = store.object_key(obj)
            data = store.encode(obj)
            sealed = obj["kind"] == "Secret" and obj["apiVersion"] == "v1"
            if sealed:
                if key is None:  # export never includes Secrets without a key; refuse rather than leak
                    raise ValueError("a Secret reached the upload without an encryption key")
                rel += ".sealed"
                data = crypto.seal(key, data, rel)
            digest = store.sha256(data)
            previous = None if sealed else reusable.get(digest)
            if previous is not None:
                location = {"pack": previous[0], "offset": previous[1], "size": previous[2]}
                reused += 1
            else:
                location = writer.add(data, rel)
            counts[obj["kind"]] = counts.get(obj["kind"], 0) + 1
            total += len(data)
            entries.append({"key": rel, "apiVersion": obj["apiVersion"], "kind": obj["kind"],
                            "namespace": obj["metadata"].get("namespace"), "name": obj["metadata"]["name"],
                            "sha256": digest, "encrypted": sealed})
            locations.append(location)
    finally:
        writer.close()
    for entry, location in zip(entries, locations, strict=True):
        entry.update(location)  # a pack's name is known once it is sealed
    del locations
    entries.sort(key=lambda e: e["key"])  # the lists arrive interleaved; the manifest lists objects in key order
    manifest: dict[str, Any] = {
        "format": store.FORMAT, "layout": layout.value, "id": backup_id, "policy": policy.name,
        "created": datetime.now(UTC).isoformat(), "cluster": exported.cluster, "crds": exported.crds,
        "missing_kinds": exported.missing_kinds, "left_out": exported.left_out, "warnings": exported.warnings,
        "counts": dict(sorted(counts.items())), "objects": entries, "bytes": total, "keep_status": policy.keep_status,
        "encryption": {"algorithm": crypto.ALGORITHM, "key_id": crypto.key_id(key)} if key else None,
        "incremental": {"base": base_id, "reused": reused, "uploaded": len(entries) - reused,
                        "packs": writer.packs, "uploaded_bytes": writer.bytes},
    }
    manifest_key = "" if stop_before_manifest else store.write_manifest(st, dest, backup_id, manifest)
    extra = dict(manifest["incremental"]) | {"layout": layout.value}
    if ignored:
        extra["incremental_ignored"] = "layout objects uploads every object; incremental applies to packs only"
    return Written(backup_id, dest.uri, manifest["counts"], len(entries), total,
                   round(time.monotonic() - started, 3), manifest_key, sum(e["encrypted"] for e in entries),
                   extra=extra, missing_kinds=list(exported.missing_kinds), left_out=dict(exported.left_out),
                   warnings=list(exported.warnings))


def run_backup(policy: BackupPolicy, *, kubeconfig: str | None = None, stop_before_manifest: bool = False) -> Written:
    """One whole backup in one pass: :func:`export_stream` into :func:`write_backup`, with the policy's key (read
    here, so it is never a task parameter; Secrets are exported only when there is one).

    Returns:
        :class:`Written`, with the export's ``missing_kinds``, ``left_out`` and ``warnings``; ``seconds`` is the
        whole backup (discovery, lists, uploads, manifest).

    Raises:
        TemporaryError / PermanentError: a list or an upload failed (no manifest is written).
    """
    started = time.monotonic()
    key = policy_key(policy)
    exported = export_stream(policy, kubeconfig=kubeconfig, include_secrets=key is not None)
    written = write_backup(policy, exported, key=key, stop_before_manifest=stop_before_manifest)
    written.seconds = round(time.monotonic() - started, 3)
    return written


