"""Restore a backup: verify everything first, then apply in dependency order with server-side apply.

Before the first write, in this order, and each refusing the whole restore:

1. the manifest exists (a backup without it is not a backup: :class:`BackupIncomplete`);
2. every object's sha256 matches the manifest (:class:`ChecksumMismatch`, listing every bad object);
3. sealed Secrets open with the given key (:class:`tasks.backup.crypto.DecryptionFailed`);
4. every kind and version is served by the target (:class:`MissingKinds`, listing all of them);
5. no target namespace is marked production, unless ``yes`` (:class:`ProductionRefused`);
6. with ``existing=fail``, no object exists yet (:class:`ExistingObjects`).

Then :func:`tasks.backup.apply.apply_all` applies wave by wave (``configs/restore-order.yaml``), objects of one wave in
parallel, and reports per object; one object failing does not stop the others (the outcome is then
``partially-failed``). ``dry_run`` uses the server's dry run, so schema, admission and RBAC are checked.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import orjson
from kubernetes.client import ApiClient

from tasks.backup import crypto
from tasks.backup.apply import (  # noqa: F401  (re-exported: flows and tests name them as restore.*)
    Action,
    ExistingPolicy,
    FieldConflict,
    Item,
    Outcome,
    Report,
    apply_all,
    field_conflicts,
    without_metadata_entries,
)
from tasks.backup.discovery import NAMESPACE, KindName, discover, get_json, list_pages
from tasks.backup.store import Destination, read_manifest, sha256
from tasks.errors import InputError, KaiopsError, NotFound, PermanentError
from tasks.storage.bucket import Bucket


class BackupIncomplete(PermanentError):
    """The backup has no manifest (cut off, or still being written); it is not restorable."""


class ChecksumMismatch(PermanentError):
    """One or more stored objects differ from their manifest checksum (or are missing); nothing was written."""


class MissingKinds(PermanentError):
    """The target does not serve kinds (or versions) the backup needs; nothing was written."""


class ExistingObjects(PermanentError):
    """``existing=fail`` and some objects already exist on the target; nothing was written."""


class ProductionRefused(InputError):
    """The restore would write into a namespace marked as production and ``--yes`` was not given."""


@dataclass(frozen=True)
class ProductionMarker:
    """A namespace is production when its labels or annotations carry ``key=value``."""

    key: str = "kaiops.io/environment"
    value: str = "production"

    def marks(self, obj: dict[str, Any]) -> bool:
        meta = obj.get("metadata") or {}
        return any((meta.get(f) or {}).get(self.key) == self.value for f in ("labels", "annotations"))


@dataclass
class LoadedBackup:
    """A verified backup: its manifest and its objects (Secrets decrypted), in manifest order."""

    id: str
    manifest: dict[str, Any]
    objects: list[dict[str, Any]]


def load_backup(store: Bucket, dest: Destination, backup_id: str, key: bytes | None = None,
                parallelism: int = 16) -> LoadedBackup:
    """Download every object of ``backup_id`` and verify it against the manifest before returning.

    Args:
        key: the encryption key, needed when the backup holds sealed Secrets.

    Raises:
        NotFound: nothing at all is stored under ``backup_id`` (the CLI exits 2).
        BackupIncomplete: objects but no manifest (a cut-off backup).
        ChecksumMismatch: any object missing or changed (all of them listed, first 20 in the message).
        InputError: sealed Secrets and no key, or a key with another fingerprint than the backup's.
        DecryptionFailed: a sealed Secret does not open.
    """
    manifest = read_manifest(store, dest, backup_id)
    if manifest is None:
        if not store.list_keys(f"{dest.prefix}{backup_id}/"):
            raise NotFound(f"no backup {backup_id} under {dest.uri} (see kaiops backups list)")
        raise BackupIncomplete(f"{dest.uri}{backup_id}: no {'manifest.json'}; an incomplete backup is not restored")
    base = f"{dest.prefix}{backup_id}/"
    entries = manifest["objects"]
    # v2: one GET per pack (packs may be shared with older backups); v1: one GET per object
    sources = sorted({dest.prefix + e["pack"] if e.get("pack") else base + e["key"] for e in entries})

    def fetch(store_key: str) -> tuple[str, bytes | None, str]:
        try:
            return store_key, store.get(store_key), ""
        except KaiopsError as exc:
            return store_key, None, str(exc)

    with ThreadPoolExecutor(max_workers=parallelism) as pool:
        blobs = {k: (data, error) for k, data, error in pool.map(fetch, sources)}
    fetched: list[tuple[dict[str, Any], bytes | None, str]] = []
    for entry in entries:
        if entry.get("pack"):
            data, error = blobs[dest.prefix + entry["pack"]]
            if data is not None:
                data = data[entry["offset"]:entry["offset"] + entry["size"]]
        else:
            data, error = blobs[base + entry["key"]]
        fetched.append((entry, data, error))
    problems = []
    for entry, data, error in fetched:
        if data is None:
            problems.append(f"{entry['key']}: missing ({error})")
        elif sha256(data) != entry["sha256"]:
            problems.append(f"{entry['key']}: sha256 {sha256(data)[:12]}… != manifest {entry['sha256'][:12]}…")
    if problems:
        listed = "; ".join(problems[:20]) + (f"; … {len(problems) - 20} more" if len(problems) > 20 else "")
        raise ChecksumMismatch(f"{dest.uri}{backup_id}: {len(problems)} object(s) fail verification: {listed}")
    sealed = [e for e, _, _ in fetched if e.get("encrypted")]
    if sealed:
        enc = manifest.get("encryption") or {}
        if key is None:
            raise InputError(f"{dest.uri}{backup_id}", "encryption", f"{len(sealed)} sealed Secret(s) and no key",
                             "set the policy's encryption_key_env variable to the backup's key")
        if enc.get("key_id") and crypto.key_id(key) != enc["key_id"]:
            raise InputError(f"{dest.uri}{backup_id}", "encryption.key_id",
                             f"the key given has fingerprint {crypto.key_id(key)}, the backup needs {enc['key_id']}",
                             "use the key the backup was made with")
    objects = []
    for entry, data, _ in fetched:
        if entry.get("encrypted"):
            data = crypto.open_sealed(key, data, entry["key"])  # type: ignore[arg-type]
        objects.append(orjson.loads(data))  # type: ignore[arg-type]
    return LoadedBackup(backup_id, manifest, objects)


def prepare(objects: Iterable[dict[str, Any]], namespace_map: dict[str, str]) -> list[dict[str, Any]]:
    """Objects as they will be applied: namespaces mapped (``{"from": "to"}``), ``status`` and
    ``ownerReferences`` removed (owners get new uids on restore; Velero does the same)."""
    out = []
    for original in objects:  # copy what changes (top level, metadata), share the rest: restore never edits it
        obj = dict(original)
        meta = obj["metadata"] = dict(obj["metadata"])
        obj.pop("status", None)
        meta.pop("ownerReferences", None)
        if obj["kind"] == "Namespace" and obj["apiVersion"] == "v1":
            meta["name"] = namespace_map.get(meta["name"], meta["name"])
        elif meta.get("namespace"):
            meta["namespace"] = namespace_map.get(meta["namespace"], meta["namespace"])
        out.append(obj)
    return out


def _kind_of(obj: dict[str, Any]) -> KindName:
    api_version = obj["apiVersion"]
    return KindName(api_version.rsplit("/", 1)[0] if "/" in api_version else "", obj["kind"])


def check_kinds(api: ApiClient, objects: list[dict[str, Any]]) -> None:
    """Refuse when the target does not serve a kind or the backed-up version of it.

    Raises:
        MissingKinds: lists every missing ``Kind.group`` and ``apiVersion``.
    """
    needed = {(_kind_of(o), o["apiVersion"]) for o in objects}
    found = discover(api, {k for k, _ in needed})
    problems = sorted({f"{k} (CRD not installed)" for k, _ in needed if k in found.missing})
    for kind, api_version in needed:
        info = found.served.get(kind)
        if info is None or info.api_version == api_version:
            continue
        try:
            resources = get_json(api, f"/apis/{api_version}")["resources"]
        except PermanentError:
            resources = []
        if not any(r["kind"] == kind.kind for r in resources):
            problems.append(f"{kind} version {api_version} not served (the target serves {info.api_version})")
    if problems:
        raise MissingKinds("the target cluster cannot take this backup: " + "; ".join(sorted(problems)))


def target_namespaces(objects: list[dict[str, Any]]) -> set[str]:
    """Every namespace a restore of ``objects`` writes into (or creates)."""
    names = {o["metadata"]["namespace"] for o in objects if o["metadata"].get("namespace")}
    return names | {o["metadata"]["name"] for o in objects if o["kind"] == "Namespace" and o["apiVersion"] == "v1"}


def check_production(api: ApiClient, objects: list[dict[str, Any]], marker: ProductionMarker, yes: bool) -> list[str]:
    """Return the production namespaces the restore would write into; refuse unless ``yes``.

    A namespace is production when the live Namespace carries the marker, or when the backed-up Namespace
    object does (restoring it would create a production namespace).

    Raises:
        ProductionRefused: at least one, and ``yes`` is False.
    """
    wanted = target_namespaces(objects)
    marked = {o["metadata"]["name"] for o in objects if o["kind"] == "Namespace" and marker.marks(o)}
    ns_info = discover(api, [KindName("", "Namespace")]).served[KindName("", "Namespace")]
    for live in list_pages(api, ns_info):
        if live["metadata"]["name"] in wanted and marker.marks(live):
            marked.add(live["metadata"]["name"])
    production = sorted(marked & wanted)
    if production and not yes:
        raise ProductionRefused(
            "<restore>", "namespaces",
            f"would write into production namespace(s) {', '.join(production)} "
            f"(marked {marker.key}={marker.value})",
            "map them elsewhere with --namespace-map, or pass --yes if you mean it",
        )
    return production


def existing_keys(api: ApiClient, objects: list[dict[str, Any]], parallelism: int = 8) -> set[tuple[str, str, str]]:
    """``(Kind, namespace, name)`` of the objects that already exist: one list of the namespaces, then one paged
    list per kind and *existing* namespace (nothing exists in a namespace that does not: a drill's fresh scratch
    namespaces cost no list at all)."""
    groups: dict[tuple[KindName, str], set[str]] = defaultdict(set)
    for o in objects:
        groups[(_kind_of(o), o["metadata"].get("namespace") or "")].add(o["metadata"]["name"])
    found = discover(api, {k for k, _ in groups} | {NAMESPACE})
    live_ns = {n["metadata"]["name"] for n in list_pages(api, found.served[NAMESPACE])}
    groups = defaultdict(set, {(k, ns): names for (k, ns), names in groups.items() if not ns or ns in live_ns})

    def run(job: tuple[KindName, str]) -> set[tuple[str, str, str]]:
        kind, ns = job
        info = found.served.get(kind)
        if info is None:
            return set()
        names = groups[job]
        try:
            listed = list_pages(api, info, namespace=ns or None)
            return {(info.kind, ns, i["metadata"]["name"]) for i in listed if i["metadata"]["name"] in names}
        except PermanentError:
            return set()

    with ThreadPoolExecutor(max_workers=parallelism) as pool:
        return set().union(*pool.map(run, list(groups))) if groups else set()


def _key(obj: dict[str, Any]) -> tuple[str, str, str]:
    return obj["kind"], obj["metadata"].get("namespace") or "", obj["metadata"]["name"]


def check_existing(objects: list[dict[str, Any]], existing: set[tuple[str, str, str]], policy: ExistingPolicy) -> None:
    """With ``policy`` fail, refuse when any object already exists.

    Raises:
        ExistingObjects: listing up to 20 of them.
    """
    if policy is not ExistingPolicy.fail:
        return
    clash = sorted(f"{k} {n + '/' if n else ''}{m}" for k, n, m in (_key(o) for o in objects) if (k, n, m) in existing)
    if clash:
        more = f" … {len(clash) - 20} more" if len(clash) > 20 else ""
        raise ExistingObjects(f"{len(clash)} object(s) already exist (policy fail): {', '.join(clash[:20])}{more}")
