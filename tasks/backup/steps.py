"""The backup and restore steps, each one I/O concern, as plain functions and as Prefect tasks.

The plain functions (:func:`export_objects`, :func:`write_backup`, :func:`verify_backup`, ...) are what the
benchmark, tests and the CLI's read-only paths call; the ``*_task`` objects wrap them for flows, retrying
:class:`TemporaryError` only. The wrappers are made on first access (module ``__getattr__``), so importing this
module does not import Prefect (about a second): ``kaiops backups list`` and the ``--dry-run`` paths never need it.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from configs.backup import BackupPolicy, Layout
from tasks import kube
from tasks.backup import crypto, discovery, drill, metrics, restore, retention, store
from tasks.backup.export import Selection, export
from tasks.backup.order import load_order
from tasks.errors import io_retries
from tasks.storage.layout import CLIENT_POOL

IO: dict[str, Any] = io_retries(2, 5)
ONCE: dict[str, Any] = {}  # not retried


def policy_key(policy: BackupPolicy) -> bytes | None:
    """The encryption key the policy names (None when none is set). Never logged."""
    return crypto.load_key(policy.encryption_key_env, policy.encryption_key_block)


def destination(policy: BackupPolicy) -> store.Destination:
    return store.parse_destination(policy.destination, f"policy {policy.name}")


@dataclass
class Exported:
    """The objects of one backup, ready to upload, and what discovery and export reported."""

    objects: list[dict[str, Any]]
    cluster: dict[str, Any]
    crds: dict[str, Any]
    missing_kinds: list[str]
    left_out: dict[str, int]
    warnings: list[str]
    seconds: float


def export_objects(policy: BackupPolicy, *, kubeconfig: str | None = None, include_secrets: bool = False) -> Exported:
    """Discover the kinds and export the selected objects (see :mod:`tasks.backup.export`)."""
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
    with ThreadPoolExecutor(max_workers=2) as side:  # CRD versions (large CRD bodies) while the lists run
        crds = side.submit(discovery.crd_versions, api, [i for k, i in found.served.items() if k in custom])
        version = side.submit(discovery.server_version, api)
        result = export(api, found, custom, selection)
        cluster = {"server": api.configuration.host, "version": version.result(),
                   "context": _context_name(kubeconfig)}
        crd_info = crds.result()
    return Exported(
        objects=result.objects, cluster=cluster,
        crds=crd_info,
        missing_kinds=[str(m) for m in found.missing], left_out=dict(result.left_out), warnings=result.warnings,
        seconds=round(time.monotonic() - started, 3),
    )


def preview_backup(policy: BackupPolicy, *, kubeconfig: str | None = None) -> dict[str, Any]:
    """What a backup would hold, writing nothing: the ``backup`` flow's dry-run summary, from plain calls (no
    Prefect task runs), for ``kaiops backup --dry-run``.

    Returns:
        ``{"policy", "dry_run": True, "counts": {kind: n}, "objects", "missing_kinds", "left_out", "warnings",
        "secrets"}``; Secrets are counted only when the policy names an encryption key.
    """
    key_given = policy_key(policy) is not None
    exported = export_objects(policy, kubeconfig=kubeconfig, include_secrets=key_given)
    counts: dict[str, int] = {}
    for obj in exported.objects:
        counts[obj["kind"]] = counts.get(obj["kind"], 0) + 1
    return {"policy": policy.name, "dry_run": True, "counts": dict(sorted(counts.items())),
            "objects": len(exported.objects), "missing_kinds": exported.missing_kinds, "left_out": exported.left_out,
            "warnings": exported.warnings, "secrets": "encrypted" if key_given else "excluded (no key)"}


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
    reusable = {e["sha256"]: e for e in (base or {}).get("objects", [])
                if e.get("pack") in present and not e.get("encrypted")}
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
                location = {"pack": previous["pack"], "offset": previous["offset"], "size": previous["size"]}
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
    manifest: dict[str, Any] = {
        "format": store.FORMAT, "layout": layout.value, "id": backup_id, "policy": policy.name,
        "created": datetime.now(UTC).isoformat(), "cluster": exported.cluster, "crds": exported.crds,
        "missing_kinds": exported.missing_kinds, "left_out": exported.left_out, "warnings": exported.warnings,
        "counts": dict(sorted(counts.items())), "objects": entries, "bytes": total, "keep_status": policy.keep_status,
        "encryption": {"algorithm": crypto.ALGORITHM, "key_id": crypto.key_id(key)} if key else None,
        "incremental": {"base": base["id"] if base else None, "reused": reused, "uploaded": len(entries) - reused,
                        "packs": writer.packs, "uploaded_bytes": writer.bytes},
    }
    manifest_key = "" if stop_before_manifest else store.write_manifest(st, dest, backup_id, manifest)
    extra = dict(manifest["incremental"]) | {"layout": layout.value}
    if ignored:
        extra["incremental_ignored"] = "layout objects uploads every object; incremental applies to packs only"
    return Written(backup_id, dest.uri, manifest["counts"], len(entries), total,
                   round(time.monotonic() - started, 3), manifest_key, sum(e["encrypted"] for e in entries),
                   extra=extra)


def list_backups(policy: BackupPolicy) -> list[store.StoredBackup]:
    """Every backup under the policy's destination, newest first."""
    return store.list_for_policy(policy)


def retention_plan(policy: BackupPolicy, now: datetime | None = None) -> retention.Plan:
    """The retention plan for the policy's destination (nothing deleted)."""
    from datetime import timedelta

    cands = [retention.Candidate(b.id, b.time, b.complete) for b in list_backups(policy)]
    r = policy.retention
    return retention.plan(cands, daily=r.daily, weekly=r.weekly, monthly=r.monthly, now=now or datetime.now(UTC),
                          incomplete_grace=timedelta(hours=r.incomplete_after_hours))


def apply_retention(policy: BackupPolicy, plan: retention.Plan, now: datetime | None = None) -> int:
    """Delete the backups ``plan`` deletes (manifest first), then the packs no remaining complete backup
    references and older than ``retention.incomplete_after_hours`` (a running backup's new packs are younger);
    return the number of keys deleted.

    A pack a kept backup references is never deleted: the kept set is read after the deletions, from the
    manifests themselves.
    """
    from datetime import timedelta

    dest = destination(policy)
    st = store.open_store(dest)
    deleted = sum(store.delete_backup(st, dest, backup_id) for backup_id in plan.delete)
    remaining = [b.manifest for b in store.list_backups(st, dest) if b.manifest is not None]
    grace = timedelta(hours=policy.retention.incomplete_after_hours)
    packs = store.collect_packs(st, dest, store.referenced_packs(remaining), (now or datetime.now(UTC)) - grace)
    return deleted + len(packs)


def newest_good(policy: BackupPolicy) -> str | None:
    """The id of the newest complete backup (None when there is none)."""
    return next((b.id for b in list_backups(policy) if b.complete), None)


def verify_backup(policy: BackupPolicy, backup_id: str, key: bytes | None) -> restore.LoadedBackup:
    """Download and verify every object of ``backup_id`` (see :func:`tasks.backup.restore.load_backup`)."""
    dest = destination(policy)
    return restore.load_backup(store.open_store(dest), dest, backup_id, key, parallelism=policy.parallelism)


@dataclass
class RestorePlan:
    """Objects ready to apply and what the pre-write checks found."""

    objects: list[dict[str, Any]]
    existing: set[tuple[str, str, str]]
    production: list[str]


def plan_restore(loaded: restore.LoadedBackup, *, kubeconfig: str | None, namespace_map: dict[str, str],
                 existing: restore.ExistingPolicy, marker: restore.ProductionMarker, yes: bool,
                 only_namespaced: bool = False) -> RestorePlan:
    """Every check a restore makes before writing: kinds served, production namespaces, existing objects.

    Raises:
        MissingKinds, ProductionRefused, ExistingObjects: see :mod:`tasks.backup.restore`.
    """
    api = kube.connect(kubeconfig).client
    objects = restore.prepare(loaded.objects, namespace_map)
    if only_namespaced:
        objects = [o for o in objects if o["metadata"].get("namespace") or o["kind"] == "Namespace"]
    restore.check_kinds(api, objects)
    production = restore.check_production(api, objects, marker, yes)
    found = restore.existing_keys(api, objects)
    restore.check_existing(objects, found, existing)
    return RestorePlan(objects, found, production)


def apply_restore(plan: RestorePlan, *, kubeconfig: str | None, backup_id: str, existing: restore.ExistingPolicy,
                  dry_run: bool, parallelism: int = 16) -> restore.Report:
    """Apply the planned objects in restore order (see :func:`tasks.backup.restore.apply_all`)."""
    dyn = kube.connect(kubeconfig)
    discovery.widen_pool(dyn.client, parallelism + 2)
    return restore.apply_all(dyn, plan.objects, load_order(), existing=plan.existing, policy=existing,
                             dry_run=dry_run, backup=backup_id, parallelism=parallelism)


def preview_restore(policy: BackupPolicy, backup_id: str, *, namespace_map: dict[str, str],
                    existing: restore.ExistingPolicy, yes: bool, kubeconfig: str | None = None) -> dict[str, Any]:
    """A restore as a server-side dry run, from plain calls (no Prefect task runs), for ``kaiops restore
    --dry-run``: every checksum verified, every pre-write check made, each object sent with ``dryRun=All``.

    Returns:
        the ``restore`` flow's summary: ``{"backup_id", "dry_run": True, "outcome", "counts", "production_namespaces",
        "failed": [{"object", "reason"}], "left_to_owners": [{"object", "fields"}]}``.

    Raises:
        BackupIncomplete, ChecksumMismatch, MissingKinds, ProductionRefused, ExistingObjects: as the flow.
    """
    loaded = verify_with_policy_key(policy, backup_id)
    marker = restore.ProductionMarker(policy.production.key, policy.production.value)
    plan = plan_restore(loaded, kubeconfig=kubeconfig, namespace_map=namespace_map, existing=existing,
                        marker=marker, yes=yes)
    report = apply_restore(plan, kubeconfig=kubeconfig, backup_id=backup_id, existing=existing, dry_run=True,
                           parallelism=policy.parallelism)
    return {
        "backup_id": backup_id, "dry_run": True, "outcome": report.outcome.value, "counts": report.counts(),
        "production_namespaces": plan.production,
        "failed": [{"object": i.ref, "reason": i.message} for i in report.items if i.action is restore.Action.failed],
        "left_to_owners": [{"object": i.ref, "fields": i.message} for i in report.items
                           if i.action is restore.Action.updated_except],
    }


def record_backup_metrics(policy: BackupPolicy, *, success: bool, written: Written | None) -> str:
    path = metrics.record_backup(
        metrics.metrics_dir(policy.metrics_dir), policy.name, success=success, now=time.time(),
        duration=written.seconds if written else 0.0, counts=written.counts if written else None,
        size=written.bytes if written else 0,
    )
    return str(path)


def record_drill_metrics(policy: BackupPolicy, *, success: bool, rto: float, objects: dict[str, int]) -> str:
    return str(metrics.record_drill(metrics.metrics_dir(policy.metrics_dir), policy.name, success=success,
                                    now=time.time(), rto=rto, objects=objects))


def drill_wait(pairs: list[tuple[dict[str, Any], dict[str, Any]]], *, kubeconfig: str | None,
               mode: drill.ReadinessMode, timeout: float, parallelism: int = 16,
               secrets_left_out: bool = False) -> list[drill.ObjectResult]:
    """Wait for the restored objects and compare them with the backup (see :func:`tasks.backup.drill.wait_ready`)."""
    dyn = kube.connect(kubeconfig)
    discovery.widen_pool(dyn.client, parallelism + 2)
    return drill.wait_ready(dyn, pairs, mode, timeout, parallelism, secrets_left_out=secrets_left_out)


def drill_cleanup(applied: list[dict[str, Any]], namespaces: list[str], *, kubeconfig: str | None) -> list[str]:
    """Delete what the drill restored, then its scratch namespaces (not waited for)."""
    return drill.cleanup(kube.connect(kubeconfig), applied, namespaces)


def write_with_policy_key(policy: BackupPolicy, exported: Exported, stop_before_manifest: bool = False) -> Written:
    """:func:`write_backup` with the policy's key, read inside the task so the key is never a task parameter."""
    return write_backup(policy, exported, key=policy_key(policy), stop_before_manifest=stop_before_manifest)


def verify_with_policy_key(policy: BackupPolicy, backup_id: str) -> restore.LoadedBackup:
    """:func:`verify_backup` with the policy's key (read here, never passed around)."""
    return verify_backup(policy, backup_id, policy_key(policy))


def existing_namespaces(names: list[str], kubeconfig: str | None = None) -> list[str]:
    """Those of ``names`` that exist on the cluster (in the given order)."""
    api = kube.connect(kubeconfig).client
    info = discovery.discover(api, [discovery.NAMESPACE]).served[discovery.NAMESPACE]
    live = {n["metadata"]["name"] for n in discovery.list_pages(api, info)}
    return [n for n in names if n in live]


# Prefect task name, plain function, options (plus ``cache_policy=NO_CACHE``) of each ``*_task`` attribute.
TASKS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "export_task": ("backup-export", "export_objects", IO),
    "write_task": ("backup-write", "write_with_policy_key", IO),
    "list_task": ("backup-list", "list_backups", IO),
    "retention_plan_task": ("retention-plan", "retention_plan", IO),
    "retention_apply_task": ("retention-apply", "apply_retention", IO),
    "verify_task": ("restore-verify", "verify_with_policy_key", IO),
    "plan_restore_task": ("restore-plan", "plan_restore", IO),
    "apply_restore_task": ("restore-apply", "apply_restore", ONCE),  # not retried: it reports per object
    "drill_wait_task": ("drill-wait", "drill_wait", ONCE),
    "drill_cleanup_task": ("drill-cleanup", "drill_cleanup", ONCE),
    "backup_metrics_task": ("backup-metrics", "record_backup_metrics", ONCE),
    "drill_metrics_task": ("drill-metrics", "record_drill_metrics", ONCE),
    "existing_namespaces_task": ("existing-namespaces", "existing_namespaces", IO),
}


def __getattr__(name: str) -> Any:
    """``steps.export_task`` etc.: the Prefect task wrapping a plain function (see :data:`TASKS`), made once on
    first access. Raises AttributeError for any other name."""
    spec = TASKS.get(name)
    if spec is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from prefect import task
    from prefect.cache_policies import NO_CACHE

    task_name, fn_name, options = spec
    wrapped = task(name=task_name, cache_policy=NO_CACHE, **options)(globals()[fn_name])
    globals()[name] = wrapped
    return wrapped
