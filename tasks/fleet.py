"""The steps of the fleet flows (:mod:`flows.fleet`), one namespace (or cluster) per task, independent, so the
tasks run side by side on threads or on a Ray cluster.

:func:`namespace_inventory` is a read-only listing (what a backup of that namespace would export: the
platform's custom resources and the ConfigMaps/ServiceAccounts they use). Per-namespace failures are
reported in the row (``error``), not raised, so a fleet run finishes partially failed instead of stopping.
:func:`namespace_policy` is the one-namespace policy a fleet backup or drill uses; :func:`cluster_namespaces`
lists the namespaces; the ``*_row`` functions are the rows of namespaces that did not get their backup/drill.

Where the tasks run: :func:`ray_init_address` picks the address ``ray.init`` gets and refuses the dashboard
URL; :func:`ray_runtime_env` copies named non-secret variables to the Ray workers; :func:`load_secret_env`
runs on the worker and fills credentials from Prefect Secret blocks (never through Ray's runtime_env).

Not here: one namespace's backup and drill from start to finish (orchestration: :mod:`flows.fleet`).
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE
from pydantic import ValidationError

from configs.backup import BackupPolicy
from tasks.errors import InputError, PermanentError, io_retries

#: The variable naming what ``ray.init`` connects to (``host:<GCS port>`` or ``ray://host:10001``). Distinct from
#: ``RAY_ADDRESS``, which Ray's job CLI and the sandbox use for the dashboard URL (Job Submission API).
RAY_INIT_ADDRESS_ENV = "KAIOPS_RAY_INIT_ADDRESS"
#: Namespaces a fleet backup of "every namespace" leaves out (the control plane's own).
SYSTEM_NAMESPACES = ("kube-system", "kube-public", "kube-node-lease")
_URL = re.compile(r"^https?://")


class NamespaceOutcome(StrEnum):
    """What a fleet backup did for one namespace."""

    BACKED_UP = "backed-up"  # a complete backup was written (manifest last) and, when asked, read back and verified
    FAILED = "failed"  # export, upload or verification failed; the reason is in the row's error
    MISSING = "missing"  # the namespace does not exist on the cluster; nothing was written
    WOULD_BACK_UP = "would-back-up"  # dry run: the namespace exists and would get a backup; nothing was written


class DrillOutcome(StrEnum):
    """What a fleet drill found for one namespace."""

    PASSED = "passed"  # the newest complete backup restored, became ready and equal, within the RTO limit
    FAILED = "failed"  # the drill ran and failed (the reason is in the row), or could not read the backup
    NO_BACKUP = "no-backup"  # no complete backup of the namespace exists under the destination


def ray_init_address(configured: str | None, environ: Mapping[str, str] | None = None) -> str | None:
    """The address to hand ``ray.init`` (None: start a local Ray for the run).

    Args:
        configured: ``ExecutionConfig.ray_address`` (wins when set).
        environ: environment to read (default ``os.environ``): ``$KAIOPS_RAY_INIT_ADDRESS``, and ``$RAY_ADDRESS``
            only to refuse a dashboard URL there (``ray.init()`` with no address reads it and fails on a URL).

    Raises:
        InputError: the address (or an inherited ``RAY_ADDRESS``) is an ``http(s)://`` dashboard URL.
    """
    env = os.environ if environ is None else environ
    address = configured or env.get(RAY_INIT_ADDRESS_ENV) or None
    fix = (f"give execution.ray_address or ${RAY_INIT_ADDRESS_ENV} as host:<GCS port> (6379 on KubeRay heads; "
           "`kaiops sandbox env` exports the sandbox's) or ray://host:10001")
    if address and _URL.match(address):
        source = "execution" if configured else "environment"
        field = "ray_address" if configured else RAY_INIT_ADDRESS_ENV
        raise InputError(source, field, f"{address} is a dashboard URL, not what ray.init connects to", fix)
    if address is None and _URL.match(env.get("RAY_ADDRESS", "")):
        raise InputError("environment", "RAY_ADDRESS", f"{env['RAY_ADDRESS']} is the dashboard URL (Ray's job CLI "
                         "reads it); ray.init() with no address would read it too and fail",
                         fix + ", or unset RAY_ADDRESS for a local Ray")
    return address


def ray_runtime_env(names: list[str], environ: Mapping[str, str] | None = None) -> dict[str, Any] | None:
    """``runtime_env`` for ``ray.init`` copying the named (non-secret) variables from ``environ``.

    Returns:
        ``{"env_vars": {name: value}}``, or None when ``names`` is empty.

    Raises:
        InputError: a named variable is not set here.
    """
    env = os.environ if environ is None else environ
    if not names:
        return None
    unset = [n for n in names if n not in env]
    if unset:
        raise InputError("execution", "ray_env", f"{', '.join(unset)} not set in the flow-run environment",
                         "export them, or leave them out of ray_env")
    return {"env_vars": {n: env[n] for n in names}}


def load_secret_env(blocks: Mapping[str, str]) -> list[str]:
    """Set each variable of ``blocks`` (``{ENV_NAME: prefect-secret-block}``) that this process lacks from its
    Prefect Secret block; runs in the task, i.e. on the Ray worker. Values are never logged or returned.

    Returns:
        The names that were set here (those already in the environment are left alone).

    Raises:
        InputError: a block does not exist.
    """
    from prefect.blocks.system import Secret

    done = []
    for name, block in blocks.items():
        if os.environ.get(name):
            continue
        try:
            loaded = Secret.load(block)
            if not isinstance(loaded, Secret):  # a coroutine only in an async context; this runs in a thread
                raise PermanentError(f"Prefect Secret block {block} was loaded asynchronously")
            value = loaded.get()
        except ValueError as exc:
            raise InputError(f"Prefect Secret block {block}", "value", "block not found",
                             f"create it (it fills ${name} on the Ray workers) or drop it from ray_secret_blocks"
                             ) from exc
        os.environ[name] = str(value)
        done.append(name)
    return done


def namespace_policy(policy: BackupPolicy, namespace: str) -> BackupPolicy:
    """The one-namespace policy a fleet backup uses for ``namespace``: only that namespace, no cluster-scoped
    kinds, destination ``<policy destination>/<namespace>`` (so retention, ``newest_good`` and drills work per
    namespace), bucket creation left to the flow (done once, before the fan-out).

    Raises:
        InputError: ``namespace`` is not a namespace name.
    """
    data = policy.model_dump()
    data |= {"namespaces": [namespace], "include_cluster_resources": False, "create_bucket": False,
             "destination": f"{policy.destination.rstrip('/')}/{namespace}"}
    try:
        return BackupPolicy.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise InputError(f"policy {policy.name}", "namespaces", first["msg"],
                         "name existing namespaces (lowercase DNS labels)") from exc


def cluster_namespaces(requested: list[str], kubeconfig: str | None = None) -> tuple[list[str], list[str]]:
    """Split ``requested`` into (existing, missing); with ``requested`` empty, every active namespace but
    :data:`SYSTEM_NAMESPACES` (a namespace being deleted is left out, and so is a restore drill's scratch
    namespace: :func:`tasks.backup.scratch.is_scratch`)."""
    from tasks import kube
    from tasks.backup.scratch import is_scratch

    items = kube.list_objects(kube.connect(kubeconfig), "v1", "Namespace")
    active = [i["metadata"]["name"] for i in items
              if (i.get("status") or {}).get("phase") != "Terminating" and not is_scratch(i)]
    if not requested:
        return sorted(n for n in active if n not in SYSTEM_NAMESPACES), []
    live = {i["metadata"]["name"] for i in items}
    return [n for n in requested if n in live], [n for n in requested if n not in live]


def prepare_destination(policy: BackupPolicy) -> str:
    """Open the policy's store once (creating the bucket when ``create_bucket``) before any fan-out; return its URI."""
    from tasks.backup import store, write

    dest = write.destination(policy)
    store.open_store(dest, policy.create_bucket)
    return dest.uri


def failed_drill_row(namespace: str, reason: str) -> dict[str, Any]:
    """The row of a drill task that raised (same keys as :func:`drill_one`'s)."""
    return {"namespace": namespace, "outcome": DrillOutcome.FAILED.value, "backup_id": None, "rto_seconds": None,
            "restored": 0, "ready": 0, "equal": 0, "total": 0, "reason": reason[:500], "host": None}


def failed_row(namespace: str, outcome: NamespaceOutcome, error: str) -> dict[str, Any]:
    """The row of a namespace that was not backed up (same keys as :func:`backup_one`'s)."""
    return {"namespace": namespace, "outcome": outcome.value, "backup_id": None, "destination": None, "objects": 0,
            "counts": {}, "bytes": 0, "encrypted": 0, "verified": False, "seconds": 0.0, "host": None,
            "error": error[:500]}


_IO = {"cache_policy": NO_CACHE, **io_retries(2, 5)}
cluster_namespaces_task = task(name="fleet-namespaces", **_IO)(cluster_namespaces)
prepare_destination_task = task(name="backup-destination", **_IO)(prepare_destination)

#: The kinds the inventory counts: (apiVersion, kind).
INVENTORY_KINDS: tuple[tuple[str, str], ...] = (
    ("ray.io/v1", "RayCluster"),
    ("ray.io/v1", "RayJob"),
    ("ray.io/v1", "RayService"),
    ("serving.kserve.io/v1beta1", "InferenceService"),
    ("serving.kserve.io/v1alpha1", "ServingRuntime"),
    ("v1", "ConfigMap"),
    ("v1", "ServiceAccount"),
)


def inventory(namespace: str, kubeconfig: str | None = None) -> dict[str, Any]:
    """Count the objects of :data:`INVENTORY_KINDS` in ``namespace``.

    Returns:
        ``{"namespace", "counts": {kind: n}, "names": {kind: [names]}, "error": str | None, "host": str}``
        (``error`` "namespace not found" for a namespace that does not exist);
        ``host`` is the machine/process that ran it (``hostname:pid``), to show where fan-out ran.
    """
    from tasks import kube

    row: dict[str, Any] = {"namespace": namespace, "counts": {}, "names": {}, "error": None,
                           "host": f"{socket.gethostname()}:{os.getpid()}"}
    try:
        dyn = kube.connect(kubeconfig)
        try:
            kube.get(dyn, "v1", "Namespace", namespace)
        except kube.NotFound:
            row["error"] = "namespace not found"  # as fleet_backup reports it, not as an empty namespace
            return row
        for api_version, kind in INVENTORY_KINDS:
            try:
                items = kube.list_objects(dyn, api_version, kind, namespace)
            except kube.NotFound:  # the kind is not served (its CRD is not installed)
                continue
            names = sorted(i["metadata"]["name"] for i in items)
            if kind == "ConfigMap":
                names = [n for n in names if n != "kube-root-ca.crt"]
            row["counts"][kind] = len(names)
            row["names"][kind] = names
    except Exception as exc:  # reported per namespace: the fleet run goes on
        row["error"] = f"{exc.__class__.__name__}: {str(exc)[:300]}"
    return row


@task(name="namespace-inventory")
def namespace_inventory(namespace: str, kubeconfig: str | None = None) -> dict[str, Any]:
    """Prefect task around :func:`inventory` (no retries: it reports its own errors)."""
    return inventory(namespace, kubeconfig)
