"""One view of the platform: RayClusters, InferenceServices (with their rollouts) and backups with drills.

What ``kaiops status`` shows. Reads only, and fast: two cluster-wide lists (RayCluster, InferenceService),
one listing plus a manifest read or two per backup policy, and the backup/drill metrics files
(:mod:`tasks.backup.metrics`); no Prefect flow runs. The row builders are pure (dicts in, dicts out, the clock
passed in) and unit-tested; :func:`collect` does the I/O.

Health of each row, ``unhealthy`` first:

- RayCluster (KubeRay ``status``): ``unhealthy`` unless ``state`` is ``ready``, ``readyWorkerReplicas`` reaches
  ``desiredWorkerReplicas`` and no ``ReplicaFailure`` condition is True;
- InferenceService (KServe ``status``): ``unhealthy`` when ``Ready`` is not True or its rollout's lease
  expired mid-rollout (the flow died: ``kaiops guard`` rolls it back); ``progressing`` while a rollout runs;
- backup policy: ``unhealthy`` when there is no complete backup, the last backup or drill run failed;
  ``attention`` when the newest complete backup is older than ``stale_after_s`` or it was never drilled.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tasks.rollout.state import RolloutRecord, parse_time

HEALTH_ORDER = {"unhealthy": 0, "attention": 1, "progressing": 2, "ok": 3}
STALE_BACKUP_S = 26 * 3600  # a nightly policy that missed one night


def age(seconds: float | None) -> str:
    """``42s``, ``5m``, ``3h``, ``2d``; ``-`` for None."""
    if seconds is None:
        return "-"
    seconds = max(0.0, seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


def _conditions(obj: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c.get("type", ""): c for c in (obj.get("status") or {}).get("conditions") or []}


def ray_cluster_row(obj: dict[str, Any]) -> dict[str, Any]:
    """One RayCluster: ``{namespace, name, state, workers "ready/desired", health, problem}``.

    Source: KubeRay v1.6 ``RayClusterStatus`` (``state``, ``readyWorkerReplicas``, ``desiredWorkerReplicas``,
    conditions ``HeadPodReady``, ``RayClusterProvisioned``, ``ReplicaFailure``).
    """
    meta, status = obj.get("metadata") or {}, obj.get("status") or {}
    state = status.get("state") or ""
    ready, desired = int(status.get("readyWorkerReplicas") or 0), int(status.get("desiredWorkerReplicas") or 0)
    conds = _conditions(obj)
    problems = []
    failure = conds.get("ReplicaFailure")
    if failure and failure.get("status") == "True":
        problems.append(f"ReplicaFailure: {failure.get('reason', '')} {failure.get('message', '')}".strip())
    if state != "ready":
        head = conds.get("HeadPodReady")
        why = f" (HeadPodReady {head.get('status')}: {head.get('reason', '')})" if head else ""
        problems.append(f"state {state or 'not set'}{why}")
    if ready < desired:
        problems.append(f"{ready} of {desired} workers ready")
    return {"namespace": meta.get("namespace", ""), "name": meta.get("name", ""), "state": state or "-",
            "workers": f"{ready}/{desired}", "health": "unhealthy" if problems else "ok",
            "problem": "; ".join(problems)}


def isvc_row(obj: dict[str, Any], now: datetime) -> dict[str, Any]:
    """One InferenceService: ready, revision, traffic split, rollout phase and lease holder.

    Returns:
        ``{namespace, name, ready, revision, traffic ("rev 90%, rev 10%"), rollout (phase and step), lease
        (holder, or "expired <holder>"), health, problem}``.

    Source: KServe v1beta1 ``status.components.predictor`` (``latestReadyRevision``,
    ``latestCreatedRevision``, ``traffic[]``) and the ``Ready`` condition; the rollout record is kaiops's
    ``rollout.kaiops.io/*`` annotations (:class:`tasks.rollout.state.RolloutRecord`).
    """
    meta, status = obj.get("metadata") or {}, obj.get("status") or {}
    predictor = ((status.get("components") or {}).get("predictor")) or {}
    ready_cond = _conditions(obj).get("Ready") or {}
    ready = ready_cond.get("status") == "True"
    revision = predictor.get("latestReadyRevision") or predictor.get("latestCreatedRevision") or "-"
    traffic = ", ".join(f"{t.get('revisionName') or t.get('tag') or '?'} {t.get('percent', 0)}%"
                        for t in predictor.get("traffic") or [] if t.get("percent"))
    try:
        record = RolloutRecord.from_annotations(meta.get("annotations"))
    except Exception as exc:  # a hand-edited annotation: say so instead of failing the whole view
        record, rollout, lease = None, f"unreadable record ({exc.__class__.__name__})", "-"
    else:
        rollout, lease = "-", "-"
    problems = []
    health = "ok"
    if record is not None:
        rollout = record.phase.value if record.phase.terminal else (
            f"{record.phase.value} step {record.step + 1} at {record.traffic}%")
        if not record.phase.terminal:
            health = "progressing"
            if record.lease_valid(now):
                lease = f"{record.lease_holder} ({age((parse_time(record.lease_expires) - now).total_seconds())} left)"
            else:
                lease = f"expired: {record.lease_holder or '-'}"
                problems.append("rollout lease expired (its flow died): `kaiops guard` or `kaiops rollback`")
    if not ready:
        problems.insert(0, f"Ready {ready_cond.get('status', 'unknown')}: "
                           f"{ready_cond.get('reason', '')} {ready_cond.get('message', '')}".strip())
    return {"namespace": meta.get("namespace", ""), "name": meta.get("name", ""), "ready": ready,
            "revision": revision, "traffic": traffic or "-", "rollout": rollout, "lease": lease,
            "health": "unhealthy" if problems else health, "problem": "; ".join(problems)}


def read_run_state(metrics_dir: Path, prefix: str, policy: str) -> dict[str, Any]:
    """The last-run state :mod:`tasks.backup.metrics` keeps for ``policy`` (``{}`` when it never ran here)."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", policy)
    path = metrics_dir / f"{prefix}_{safe}.json"
    try:
        state: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return state


def backup_row(policy: str, destination: str, newest: dict[str, Any] | None, newest_complete: dict[str, Any] | None,
               backup_run: dict[str, Any], drill_run: dict[str, Any], now: datetime,
               stale_after_s: float = STALE_BACKUP_S) -> dict[str, Any]:
    """One backup policy: the last complete backup, the last backup run and the last drill, with ages.

    Args:
        newest: ``{"id", "time" (datetime), "complete"}`` of the newest backup directory, or None.
        newest_complete: the same for the newest complete backup (with ``objects``), or None.
        backup_run, drill_run: :func:`read_run_state` of ``kaiops_backup`` / ``kaiops_drill``.

    Returns:
        ``{policy, destination, last_backup, backup_age, last_run, drill, drill_age, health, problem}``.
    """
    t = now.timestamp()
    problems: list[str] = []
    attention: list[str] = []
    when = newest_complete.get("time") if newest_complete else None
    complete_age = t - when.timestamp() if when else None
    if newest_complete is None:
        problems.append("no complete backup")
    elif complete_age is not None and complete_age > stale_after_s:
        attention.append(f"newest complete backup is {age(complete_age)} old")
    if newest is not None and not newest.get("complete") and newest_complete is not None and \
            newest["id"] != newest_complete["id"]:
        attention.append(f"newer backup {newest['id']} is incomplete (running, or it died)")
    last_run = "-"
    if backup_run:
        ok = bool(backup_run.get("last_run_success"))
        last_run = f"{'ok' if ok else 'FAILED'} {age(t - backup_run['last_run_timestamp_seconds'])} ago"
        if not ok:
            problems.append("the last backup run failed")
    drill, drill_age = "never", "-"
    if drill_run:
        ok = bool(drill_run.get("last_run_success"))
        drill_age = age(t - drill_run["last_run_timestamp_seconds"])
        rto = drill_run.get("rto_seconds")
        drill = ("passed" if ok else "FAILED") + (f", RTO {rto:.0f}s" if ok and rto else "")
        if not ok:
            problems.append("the last drill failed: `kaiops drill` lists the objects and why")
    else:
        attention.append("never drilled here: run `kaiops drill`")
    last_backup = "-"
    if newest_complete is not None:
        objects = newest_complete.get("objects")
        last_backup = newest_complete["id"] + (f" ({objects} objects)" if objects is not None else "")
    health = "unhealthy" if problems else "attention" if attention else "ok"
    return {"policy": policy, "destination": destination, "last_backup": last_backup,
            "backup_age": age(complete_age), "last_run": last_run, "drill": drill, "drill_age": drill_age,
            "health": health, "problem": "; ".join(problems + attention)}


def by_health(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows sorted unhealthy first, then attention, progressing, ok; by namespace/name within."""
    return sorted(rows, key=lambda r: (HEALTH_ORDER.get(r.get("health", "ok"), 9), r.get("namespace", ""),
                                       r.get("name", r.get("policy", ""))))


def _list(dyn: Any, api_version: str, kind: str) -> list[dict[str, Any]] | str:
    """Every object of a kind, cluster-wide; a text instead when the kind is not served or not allowed."""
    from tasks import kube

    try:
        return kube.list_objects(dyn, api_version, kind)
    except Exception as exc:  # a missing CRD or RBAC: show it in its section, keep the rest of the view
        return f"cannot list {kind}: {exc.__class__.__name__}: {str(exc).splitlines()[0][:200]}"


def _backups(policy_path: Path, now: datetime) -> dict[str, Any]:
    from configs.backup import load_policy
    from tasks.backup import metrics, store, write

    pol = load_policy(policy_path)
    directory = metrics.metrics_dir(pol.metrics_dir)
    runs = (read_run_state(directory, "kaiops_backup", pol.name), read_run_state(directory, "kaiops_drill", pol.name))
    dest = write.destination(pol)
    try:
        st = store.open_store(dest, False)
        ids = sorted((i for i in (d[len(dest.prefix):].rstrip("/") for d in st.list_dirs(dest.prefix))
                      if store.backup_time(i) is not None), reverse=True)
    except Exception as exc:  # no bucket yet, no credentials: this policy's row says so
        code = getattr(exc, "response", {}).get("Error", {}).get("Code") if hasattr(exc, "response") else None
        row = backup_row(pol.name, pol.destination, None, None, *runs, now)
        row["problem"] = f"cannot list {pol.destination}: {code or exc.__class__.__name__}; " + row["problem"]
        return row
    newest = newest_complete = None
    for position, backup_id in enumerate(ids[:20]):  # the newest complete one is almost always the first
        manifest = store.read_manifest(st, dest, backup_id)
        entry = {"id": backup_id, "time": store.backup_time(backup_id), "complete": manifest is not None,
                 "objects": len((manifest or {}).get("objects", [])) if manifest else None}
        if position == 0:
            newest = entry
        if manifest is not None:
            newest_complete = entry
            break
    return backup_row(pol.name, pol.destination, newest, newest_complete, *runs, now)


def collect(kubeconfig: str | None, backup_policies: list[Path], now: datetime | None = None) -> dict[str, Any]:
    """Read the platform once.

    Returns:
        ``{"checked_at", "unhealthy" (count), "rayclusters", "inferenceservices", "backups", "errors"}``; each
        section a list of rows (see the row builders) sorted unhealthy first; ``errors`` names a section that
        could not be read and why (the others are still shown).
    """
    from tasks import kube

    now = now or datetime.now(UTC)
    errors: list[str] = []
    sections: dict[str, list[dict[str, Any]]] = {"rayclusters": [], "inferenceservices": [], "backups": []}
    try:
        dyn = kube.connect(kubeconfig)
    except Exception as exc:
        errors.append(f"Kubernetes: {exc.__class__.__name__}: {exc}")
        dyn = None
    if dyn is not None:
        for section, api_version, kind, build in (
            ("rayclusters", "ray.io/v1", "RayCluster", ray_cluster_row),
            ("inferenceservices", "serving.kserve.io/v1beta1", "InferenceService", lambda o: isvc_row(o, now)),
        ):
            items = _list(dyn, api_version, kind)
            if isinstance(items, str):
                errors.append(items)
            else:
                sections[section] = by_health([build(o) for o in items])
    for path in backup_policies:
        try:
            sections["backups"].append(_backups(path, now))
        except Exception as exc:  # one unreachable store must not hide the cluster
            errors.append(f"backup policy {path}: {exc.__class__.__name__}: {exc}")
    sections["backups"] = by_health(sections["backups"])
    unhealthy = sum(r["health"] == "unhealthy" for rows in sections.values() for r in rows)
    return {"checked_at": now.isoformat(timespec="seconds"), "unhealthy": unhealthy + len(errors), **sections,
            "errors": errors}
