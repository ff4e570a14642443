"""Restore a backup: verify everything first, then apply in dependency order with server-side apply.

Before the first write, in this order, and each refusing the whole restore:

1. the manifest exists (a backup without it is not a backup: :class:`BackupIncomplete`);
2. every object's sha256 matches the manifest (:class:`ChecksumMismatch`, listing every bad object);
3. sealed Secrets open with the given key (:class:`tasks.backup.crypto.DecryptionFailed`);
4. every kind and version is served by the target (:class:`MissingKinds`, listing all of them);
5. no target namespace is marked production, unless ``yes`` (:class:`ProductionRefused`);
6. with ``existing=fail``, no object exists yet (:class:`ExistingObjects`).

Then :func:`apply_all` applies wave by wave (``configs/restore-order.yaml``), objects of one wave in
parallel, and reports per object; one object failing does not stop the others (the outcome is then
``partially-failed``). ``dry_run`` uses the server's dry run, so schema, admission and RBAC are checked.
"""

from __future__ import annotations

import copy
import json
import re
import time
from collections import defaultdict
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from kubernetes.client import ApiClient
from kubernetes.dynamic import DynamicClient

from tasks import kube
from tasks.backup import crypto
from tasks.backup.discovery import KindName, discover, get_json, list_pages
from tasks.backup.order import Priority, waves
from tasks.backup.store import Destination, read_manifest, sha256
from tasks.errors import InputError, KaiopsError, NotFound, PermanentError, TemporaryError
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


class ExistingPolicy(StrEnum):
    """What to do with an object that already exists on the target."""

    skip = "skip"  # leave it as it is
    update = "update"  # server-side apply the backed-up fields over it (conflicts are reported, not forced)
    fail = "fail"  # refuse the whole restore before any write


class Action(StrEnum):
    """What happened to one object."""

    created = "created"  # did not exist; applied
    updated = "updated"  # existed; applied (policy update)
    skipped = "skipped"  # existed; left alone (policy skip)
    would_create = "would-create"  # dry run: the server accepted it; it does not exist yet
    would_update = "would-update"  # dry run: the server accepted it; it exists
    updated_except = "updated-except"  # existed; applied, leaving metadata another manager owns to it (see message)
    failed = "failed"  # the server refused it; see message


class Outcome(StrEnum):
    """How the whole restore ended."""

    succeeded = "succeeded"  # every object created, updated, skipped or (dry run) accepted
    partially_failed = "partially-failed"  # some objects failed, the others were restored
    failed = "failed"  # every object failed


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


@dataclass
class Item:
    """One object's result: ``Kind ns/name``, the :class:`Action` and a message (the server's reason)."""

    ref: str
    kind: str
    namespace: str | None
    name: str
    action: Action
    message: str = ""


@dataclass
class Report:
    """What a restore did."""

    backup: str
    dry_run: bool
    items: list[Item] = field(default_factory=list)

    @property
    def outcome(self) -> Outcome:
        failed = sum(i.action is Action.failed for i in self.items)
        if failed and failed == len(self.items):
            return Outcome.failed
        return Outcome.partially_failed if failed else Outcome.succeeded

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = defaultdict(int)
        for i in self.items:
            out[i.action.value] += 1
        return dict(out)


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
        objects.append(json.loads(data))  # type: ignore[arg-type]
    return LoadedBackup(backup_id, manifest, objects)


def prepare(objects: Iterable[dict[str, Any]], namespace_map: dict[str, str]) -> list[dict[str, Any]]:
    """Objects as they will be applied: namespaces mapped (``{"from": "to"}``), ``status`` and
    ``ownerReferences`` removed (owners get new uids on restore; Velero does the same)."""
    out = []
    for obj in objects:
        obj = copy.deepcopy(obj)
        meta = obj["metadata"]
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
    """``(Kind, namespace, name)`` of the objects that already exist (one paged list per kind and namespace)."""
    groups: dict[tuple[KindName, str], set[str]] = defaultdict(set)
    for o in objects:
        groups[(_kind_of(o), o["metadata"].get("namespace") or "")].add(o["metadata"]["name"])
    found = discover(api, {k for k, _ in groups})

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


# Metadata maps whose entries a controller commonly writes (a route URL, a revision, a hash): on a conflict
# here, update-restore leaves the entry to its owner instead of failing the object. Spec/data conflicts still fail.
YIELDING_METADATA = (".metadata.annotations.", ".metadata.labels.")
_MANAGER = re.compile(r'conflicts? with "([^"]+)"')


@dataclass(frozen=True)
class FieldConflict:
    """One field server-side apply refused: its path as the apiserver prints it, and the manager owning it."""

    field: str
    manager: str

    def __str__(self) -> str:
        return f"{self.field} (owned by {self.manager})"


def field_conflicts(exc: BaseException) -> list[FieldConflict]:
    """The conflicting fields of a refused server-side apply, from the 409's ``details.causes``
    (``{"reason": "FieldManagerConflict", "field": ..., "message": 'conflict with "<manager>" ...'}``).
    Empty when the error carries no such details."""
    cause = exc.__cause__ if exc.__cause__ is not None else exc
    body = getattr(cause, "body", None)
    try:
        status = json.loads(body) if isinstance(body, (str, bytes)) else None
    except ValueError:
        status = None
    out = []
    for c in ((status or {}).get("details") or {}).get("causes") or []:
        if c.get("reason") == "FieldManagerConflict" and c.get("field"):
            found = _MANAGER.search(c.get("message", ""))
            out.append(FieldConflict(c["field"], found.group(1) if found else "another manager"))
    return out


def without_metadata_entries(obj: dict[str, Any], conflicts: list[FieldConflict]) -> dict[str, Any] | None:
    """A copy of ``obj`` without the annotation/label entries in ``conflicts``; None when any conflict is
    elsewhere (spec, data: those are the user's, never dropped)."""
    if not conflicts or not all(c.field.startswith(YIELDING_METADATA) for c in conflicts):
        return None
    out = copy.deepcopy(obj)
    meta = out["metadata"]
    for c in conflicts:
        for prefix in YIELDING_METADATA:
            if c.field.startswith(prefix):
                section = prefix.split(".")[2]
                (meta.get(section) or {}).pop(c.field[len(prefix):], None)
                if section in meta and not meta[section]:
                    meta.pop(section)
    return out


def apply_all(dyn: DynamicClient, objects: list[dict[str, Any]], order: list[Priority], *,
              existing: set[tuple[str, str, str]], policy: ExistingPolicy, dry_run: bool, backup: str,
              parallelism: int = 16) -> Report:
    """Apply ``objects`` wave by wave (see :func:`tasks.backup.order.waves`); report per object.

    Args:
        existing: from :func:`existing_keys`.
        policy: :class:`ExistingPolicy`; ``fail`` must have been checked by :func:`check_existing` already.
        dry_run: server-side dry run (objects in namespaces this restore would create cannot be checked by
            the server; they are reported ``would-create`` with that note).
    """
    report = Report(backup=backup, dry_run=dry_run)
    live_namespaces = {k[2] for k in existing if k[0] == "Namespace"}

    def one(obj: dict[str, Any]) -> Item:
        ns, name = obj["metadata"].get("namespace"), obj["metadata"]["name"]
        item = Item(kube.object_ref(obj), obj["kind"], ns, name, Action.failed)
        present = _key(obj) in existing
        if present and policy is ExistingPolicy.skip:
            item.action = Action.skipped
            return item
        if dry_run and ns and ns not in live_namespaces and ("Namespace", "", ns) not in existing:
            item.action, item.message = Action.would_create, "namespace created by this restore; server dry run skipped"
            return item
        for attempt in range(3):  # a timeout or 5xx under load is retried; a refusal is reported at once
            try:
                kube.apply(dyn, obj, dry_run=dry_run)
                break
            except TemporaryError as exc:
                item.message = str(exc)[:500]
                if attempt == 2:
                    return item
                time.sleep(1.0 + attempt)
            except kube.ApplyConflict as exc:
                conflicts = field_conflicts(exc)
                named = "; ".join(map(str, conflicts))
                retry = without_metadata_entries(obj, conflicts) if policy is ExistingPolicy.update else None
                if retry is None:
                    item.message = (f"conflict: {named} — kaiops never forces another manager's fields; change or "
                                    "release them and restore again" if conflicts else str(exc)[:500])
                    return item
                try:
                    kube.apply(dyn, retry, dry_run=dry_run)
                except KaiopsError as again:
                    item.message = str(again)[:500]
                    return item
                item.action = Action.updated_except
                item.message = f"left to their owner (not forced): {named}"
                return item
            except KaiopsError as exc:
                item.message = str(exc)[:500]
                return item
        item.message = ""
        if dry_run:
            item.action = Action.would_update if present else Action.would_create
        else:
            item.action = Action.updated if present else Action.created
        return item

    with ThreadPoolExecutor(max_workers=parallelism) as pool:
        for wave in waves(objects, order):
            report.items += list(pool.map(one, wave))
            if not dry_run:
                live_namespaces |= {i.name for i in report.items if i.kind == "Namespace"}
    return report


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
