"""Applying a restore: server-side apply of every object, wave by wave, reporting per object.

:func:`apply_all` applies the waves of ``configs/restore-order.yaml`` in order; inside a wave, objects are applied
by a bounded pool of ``parallelism`` workers (one request each, pooled connections), so a wave of 5,000 objects
keeps the apiserver busy without flooding it. Each apply is a raw ``PATCH`` with
``Content-Type: application/apply-patch+yaml`` (field manager ``kaiops``, ``fieldValidation=Strict``, never
forced), whose answer is the object as the server now has it (kept on the :class:`Item` when asked: a drill
compares it with the backup without reading it again). One object failing does not stop the others
(the outcome is then ``partially-failed``); a conflict on metadata another manager owns is left to that owner
with ``--existing update`` (:func:`without_metadata_entries`).
"""

from __future__ import annotations

import copy
import json
import re
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import orjson
from kubernetes.client import ApiClient

from tasks import kube
from tasks.backup.discovery import Discovery, KindInfo, KindName, discover
from tasks.backup.order import Priority, waves
from tasks.errors import KaiopsError, TemporaryError
from tasks.kube.errors import API_ERRORS, translate


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


@dataclass
class Item:
    """One object's result: ``Kind ns/name``, the :class:`Action` and a message (the server's reason)."""

    ref: str
    kind: str
    namespace: str | None
    name: str
    action: Action
    message: str = ""
    live: dict[str, Any] | None = None  # the object as the server answered the apply (``keep_live``)


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


APPLY_CONTENT_TYPE = "application/apply-patch+yaml; charset=utf-8"  # JSON is YAML; sent as the bytes we encode


def server_side_apply(api: ApiClient, info: KindInfo, obj: dict[str, Any], *, dry_run: bool = False,
                      field_manager: str = kube.FIELD_MANAGER) -> dict[str, Any]:
    """Server-side apply ``obj`` (never forced, ``fieldValidation=Strict``) and return the object as the server
    now has it. The same request :func:`tasks.kube.apply` makes, without the dynamic client's per-call resource
    lookup and object wrapping (a tenth of the client time for a 5,000-object restore).

    Raises:
        ApplyConflict: another field manager owns a field in ``obj`` (the 409's causes name them).
        PermanentError: the server refused the object (schema, admission, RBAC).
        TemporaryError: no answer, 5xx or 429.
    """
    meta = obj["metadata"]
    query: list[tuple[str, Any]] = [("fieldManager", field_manager), ("fieldValidation", "Strict")]
    if dry_run:
        query.append(("dryRun", "All"))
    try:
        resp = api.call_api(info.path(meta.get("namespace"), meta["name"]), "PATCH", query_params=query,
                            body=orjson.dumps(obj), auth_settings=["BearerToken"],
                            header_params={"Content-Type": APPLY_CONTENT_TYPE, "Accept": "application/json"},
                            _preload_content=False, _return_http_data_only=True)
    except API_ERRORS as exc:
        raise translate(exc, f"apply {kube.object_ref(obj)}") from exc
    live: dict[str, Any] = orjson.loads(resp.data)
    return live


def kind_infos(api: ApiClient, objects: list[dict[str, Any]]) -> Discovery:
    """Discovery of every kind in ``objects`` (one request per API group version)."""
    return discover(api, {KindName(o["apiVersion"].rpartition("/")[0], o["kind"]) for o in objects})


def apply_all(api: ApiClient, objects: list[dict[str, Any]], order: list[Priority], *,
              existing: set[tuple[str, str, str]], policy: ExistingPolicy, dry_run: bool, backup: str,
              parallelism: int = 16, keep_live: bool = False) -> Report:
    """Apply ``objects`` wave by wave (see :func:`tasks.backup.order.waves`), each wave on ``parallelism``
    workers; report per object.

    Args:
        api: the kubernetes ``ApiClient`` (``kube.connect(...).client``; its pool widened to ``parallelism``).
        existing: ``(Kind, namespace, name)`` of the objects that exist (:func:`tasks.backup.restore.existing_keys`).
        policy: :class:`ExistingPolicy`; ``fail`` must have been checked by ``check_existing`` already.
        dry_run: server-side dry run (objects in namespaces this restore would create cannot be checked by
            the server; they are reported ``would-create`` with that note).
        keep_live: keep the server's answer on each item (:attr:`Item.live`).
    """
    report = Report(backup=backup, dry_run=dry_run)
    live_namespaces = {k[2] for k in existing if k[0] == "Namespace"}
    found = kind_infos(api, objects)

    def one(obj: dict[str, Any]) -> Item:
        ns, name = obj["metadata"].get("namespace"), obj["metadata"]["name"]
        item = Item(kube.object_ref(obj), obj["kind"], ns, name, Action.failed)
        present = (obj["kind"], ns or "", name) in existing
        if present and policy is ExistingPolicy.skip:
            item.action = Action.skipped
            return item
        if dry_run and ns and ns not in live_namespaces and ("Namespace", "", ns) not in existing:
            item.action, item.message = Action.would_create, "namespace created by this restore; server dry run skipped"
            return item
        info = found.served.get(KindName(obj["apiVersion"].rpartition("/")[0], obj["kind"]))
        if info is None:
            item.message = f"{obj['apiVersion']} {obj['kind']} is not served by the target"
            return item
        live = None
        for attempt in range(3):  # a timeout or 5xx under load is retried; a refusal is reported at once
            try:
                live = server_side_apply(api, info, obj, dry_run=dry_run)
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
                    live = server_side_apply(api, info, retry, dry_run=dry_run)
                except KaiopsError as again:
                    item.message = str(again)[:500]
                    return item
                item.action = Action.updated_except
                item.message = f"left to their owner (not forced): {named}"
                item.live = live if keep_live else None
                return item
            except KaiopsError as exc:
                item.message = str(exc)[:500]
                return item
        item.message = ""
        item.live = live if keep_live else None
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
