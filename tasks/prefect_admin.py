"""Register kaiops on a Prefect server, idempotently: work pool, global concurrency limits, credential
blocks, deployments (schedules, concurrency) and their event triggers, from ``deployments/prefect.yaml``.

The file is first validated against :class:`configs.deployments.ProjectSpec` (Prefect ignores unknown keys
silently). Each object is read, compared with what the file asks for, and written only when different: a
second ``kaiops deploy`` reports everything ``unchanged``, and ``--dry-run`` says what would change.

Prefect's own machinery does the parts it can: the flow is loaded by ``load_flow_from_entrypoint``, its
parameter schema comes from ``parameter_schema`` (what ``prefect deploy`` sends), schedules are built by
``prefect.deployments.schedules.create_deployment_schedule_create``, triggers are ``DeploymentEventTrigger``
models turned into automations by their own ``as_automation``, and the deployment is upserted by the
client's ``create_deployment`` (what ``RunnerDeployment.apply`` calls). Where it cannot serve, and why this
module does not call ``prefect deploy`` or ``RunnerDeployment.apply`` (Prefect 3.9.1):

- no dry run and no comparison: both always write; ``--dry-run`` and the ``unchanged`` report need the read
  and compare done here (:func:`ensure_deployment`);
- triggers: both delete every automation the deployment owns and create them again on each run
  (``prefect/cli/deploy/_triggers.py`` ``_create_deployment_triggers``, ``RunnerDeployment._create_triggers``),
  so a run that changes nothing still replaces the automations (and a trigger firing in between is lost);
  here an automation is named by a hash of its spec and replaced only when the spec changed;
- schedules: an empty ``schedules`` list on redeployment keeps the old schedules (deprecated behaviour,
  ``deployments.clear_schedules_on_empty``); here the server's schedules are made exactly the file's;
- the work pool, global concurrency limits and the credentials block are not part of ``prefect deploy``.

Secrets (AWS keys for the credentials block) come from the environment and are never returned or logged.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from configs.deployments import (  # noqa: F401 - the schema, re-exported for callers of this module
    PREFECT_YAML,
    REPO_ROOT,
    ConcurrencySpec,
    DeploymentSpec,
    ProjectSpec,
    ScheduleSpec,
    TriggerSpec,
    WorkPoolSpec,
    default_env,
    load_project,
    render_env,
)
from tasks.errors import InputError, PermanentError, TemporaryError

# --- reconciling the server with the spec --------------------------------------------------------------


class Action(StrEnum):
    """What :func:`sync` did (or, in a dry run, would do) to one object."""

    CREATE = "create"  # did not exist
    UPDATE = "update"  # existed, differed
    UNCHANGED = "unchanged"  # existed, matched
    SKIPPED = "skipped"  # cannot be registered here (flow file missing, no credentials in the environment)


@dataclass
class Change:
    """One row of ``kaiops deploy``."""

    kind: str  # work-pool, concurrency-limit, block, deployment, automation
    name: str
    action: Action
    detail: str = ""

    def as_row(self) -> dict[str, str]:
        return {**asdict(self), "action": self.action.value}


def _client():
    from prefect.client.orchestration import get_client

    return get_client(sync_client=True)


def _wrap(exc: Exception, what: str) -> Exception:
    status = getattr(getattr(exc, "response", None), "status_code", None)
    if status is not None and 400 <= status < 500:
        return PermanentError(f"{what}: HTTP {status}: {str(exc)[:300]}")
    return TemporaryError(f"{what}: {exc.__class__.__name__}: {str(exc)[:300]}")


def ensure_work_pool(client, name: str, dry_run: bool) -> Change:
    """A ``process`` work pool named ``name`` with Prefect's default process job template."""
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectNotFound
    from prefect.workers.process import ProcessWorker

    try:
        pool = client.read_work_pool(name)
    except ObjectNotFound:
        pool = None
    if pool is not None:
        if pool.type != "process":
            raise InputError(str(PREFECT_YAML), "work_pool.name", f"pool {name} exists with type {pool.type}",
                             "use another pool name or delete that pool")
        return Change("work-pool", name, Action.UNCHANGED, "process")
    if not dry_run:
        client.create_work_pool(WorkPoolCreate(name=name, type="process",
                                               base_job_template=ProcessWorker.get_default_base_job_template()))
    return Change("work-pool", name, Action.CREATE, "process")


def ensure_global_limit(client, name: str, limit: int, dry_run: bool) -> Change:
    """A global concurrency limit ``name`` with ``limit`` slots."""
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate, GlobalConcurrencyLimitUpdate
    from prefect.exceptions import ObjectNotFound

    try:
        current = client.read_global_concurrency_limit_by_name(name)
    except ObjectNotFound:
        current = None
    if current is None:
        if not dry_run:
            client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=limit))
        return Change("concurrency-limit", name, Action.CREATE, f"limit {limit}")
    if current.limit == limit and current.active:
        return Change("concurrency-limit", name, Action.UNCHANGED, f"limit {limit}")
    if not dry_run:
        client.update_global_concurrency_limit(name, GlobalConcurrencyLimitUpdate(limit=limit, active=True))
    return Change("concurrency-limit", name, Action.UPDATE, f"limit {current.limit} -> {limit}")


def ensure_aws_block(name: str, env: dict[str, str], dry_run: bool) -> Change:
    """An ``AwsCredentials`` block ``name`` from ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``/
    ``AWS_DEFAULT_REGION``/``AWS_ENDPOINT_URL``; skipped when the keys are not in ``env``. Values never
    appear in the returned change."""
    from prefect_aws import AwsCredentials
    from prefect_aws.client_parameters import AwsClientParameters

    if not env.get("AWS_ACCESS_KEY_ID") or not env.get("AWS_SECRET_ACCESS_KEY"):
        return Change("block", f"aws-credentials/{name}", Action.SKIPPED, "AWS_ACCESS_KEY_ID/SECRET not set")
    wanted = {"key": env["AWS_ACCESS_KEY_ID"], "secret": env["AWS_SECRET_ACCESS_KEY"],
              "region": env.get("AWS_DEFAULT_REGION"), "endpoint": env.get("AWS_ENDPOINT_URL")}
    try:
        current = AwsCredentials.load(name, _sync=True)
    except ValueError:
        current = None
    if current is not None:
        have = {"key": current.aws_access_key_id,
                "secret": current.aws_secret_access_key.get_secret_value() if current.aws_secret_access_key else None,
                "region": current.region_name, "endpoint": current.aws_client_parameters.endpoint_url}
        if have == wanted:
            return Change("block", f"aws-credentials/{name}", Action.UNCHANGED, "from AWS_* environment")
    if not dry_run:
        AwsCredentials(aws_access_key_id=wanted["key"], aws_secret_access_key=wanted["secret"],
                       region_name=wanted["region"],
                       aws_client_parameters=AwsClientParameters(endpoint_url=wanted["endpoint"])
                       ).save(name, overwrite=True, _sync=True)
    return Change("block", f"aws-credentials/{name}", Action.CREATE if current is None else Action.UPDATE,
                  "from AWS_* environment")


def _schedule(s: ScheduleSpec):
    from datetime import timedelta

    from prefect.client.schemas.schedules import CronSchedule, IntervalSchedule
    from prefect.deployments.schedules import create_deployment_schedule_create

    sched = (CronSchedule(cron=s.cron, timezone=s.timezone) if s.cron is not None
             else IntervalSchedule(interval=timedelta(seconds=s.interval), timezone=s.timezone))
    return create_deployment_schedule_create(sched, active=s.active)


def _schedule_key(schedule: Any, active: bool) -> tuple:
    cron = getattr(schedule, "cron", None)
    interval = getattr(schedule, "interval", None)
    return (cron, interval.total_seconds() if interval is not None else None, getattr(schedule, "timezone", None),
            bool(active))


def _fingerprint(d: DeploymentSpec, pull: list[dict], schema: dict) -> dict[str, Any]:
    return {
        "description": d.description, "tags": sorted(d.tags), "entrypoint": d.entrypoint,
        "work_pool_name": d.work_pool.name, "work_queue_name": d.work_pool.work_queue_name,
        "parameters": d.parameters, "job_variables": d.work_pool.job_variables, "pull_steps": pull,
        "schedules": sorted(_schedule_key(_schedule(s).schedule, s.active) for s in d.schedules),
        "concurrency": (d.concurrency_limit.limit, d.concurrency_limit.collision_strategy)
        if d.concurrency_limit else None,
        "schema": schema,
    }


def _existing_fingerprint(dep: Any) -> dict[str, Any]:
    limit = dep.global_concurrency_limit.limit if dep.global_concurrency_limit else None
    strategy = dep.concurrency_options.collision_strategy.value if dep.concurrency_options else None
    return {
        "description": dep.description or "", "tags": sorted(dep.tags or []), "entrypoint": dep.entrypoint,
        "work_pool_name": dep.work_pool_name, "work_queue_name": dep.work_queue_name,
        "parameters": dep.parameters or {}, "job_variables": dep.job_variables or {},
        "pull_steps": dep.pull_steps or [],
        "schedules": sorted(_schedule_key(s.schedule, s.active) for s in dep.schedules or []),
        "concurrency": (limit, strategy) if limit is not None else None,
        "schema": dep.parameter_openapi_schema or {},
    }


def load_flow(entrypoint: str, root: Path = REPO_ROOT):
    """The flow object at ``path.py:function`` under ``root``; None when the file does not exist (yet)."""
    from prefect.exceptions import MissingFlowError
    from prefect.flows import load_flow_from_entrypoint

    path, func = entrypoint.split(":")
    if not (root / path).exists():
        return None
    try:
        return load_flow_from_entrypoint(f"{root / path}:{func}")
    except MissingFlowError:
        return None


def ensure_deployment(client, d: DeploymentSpec, pull: list[dict], dry_run: bool,
                      root: Path = REPO_ROOT) -> tuple[Change, Any]:
    """Create or update one deployment; returns the change and the deployment id (None in a dry run or when
    skipped)."""
    from prefect.client.schemas.objects import ConcurrencyLimitStrategy, ConcurrencyOptions
    from prefect.exceptions import ObjectNotFound
    from prefect.utilities.callables import parameter_schema

    flow = load_flow(d.entrypoint, root)
    if flow is None:
        return Change("deployment", f"?/{d.name}", Action.SKIPPED, f"{d.entrypoint} does not exist"), None
    full = f"{flow.name}/{d.name}"
    schema = parameter_schema(flow).model_dump_for_openapi()
    wanted = json.loads(json.dumps(_fingerprint(d, pull, schema), default=str))
    try:
        existing = client.read_deployment_by_name(full)
    except ObjectNotFound:
        existing = None
    if existing is not None and json.loads(json.dumps(_existing_fingerprint(existing), default=str)) == wanted:
        return Change("deployment", full, Action.UNCHANGED, _describe(d)), existing.id
    action = Action.CREATE if existing is None else Action.UPDATE
    if dry_run:
        return Change("deployment", full, action, _describe(d)), existing.id if existing else None
    flow_id = client.create_flow_from_name(flow.name)
    conc = d.concurrency_limit
    dep_id = client.create_deployment(
        flow_id=flow_id, name=d.name, description=d.description, tags=d.tags, entrypoint=d.entrypoint,
        work_pool_name=d.work_pool.name, work_queue_name=d.work_pool.work_queue_name,
        parameters=d.parameters, job_variables=d.work_pool.job_variables, pull_steps=pull,
        schedules=[_schedule(s) for s in d.schedules], parameter_openapi_schema=schema,
        enforce_parameter_schema=True, concurrency_limit=conc.limit if conc else None,
        concurrency_options=ConcurrencyOptions(collision_strategy=ConcurrencyLimitStrategy(conc.collision_strategy))
        if conc else None,
    )
    if existing is not None:
        # create_deployment upserts the deployment; make sure the schedules match exactly.
        current = client.read_deployment(dep_id)
        have = json.loads(json.dumps(sorted(_schedule_key(s.schedule, s.active) for s in current.schedules or [])))
        if have != wanted["schedules"]:
            for s in current.schedules or []:
                client.delete_deployment_schedule(dep_id, s.id)
            if d.schedules:
                client.create_deployment_schedules(dep_id, [(_schedule(s).schedule, s.active) for s in d.schedules])
    return Change("deployment", full, action, _describe(d)), dep_id


def _describe(d: DeploymentSpec) -> str:
    parts = [f"{'cron ' + s.cron if s.cron else f'every {s.interval:g}s'} {s.timezone}" for s in d.schedules]
    if d.concurrency_limit:
        parts.append(f"limit {d.concurrency_limit.limit} {d.concurrency_limit.collision_strategy}")
    if d.triggers:
        parts.append("on " + ", ".join(e for t in d.triggers for e in t.expect))
    return "; ".join(parts) or "on demand"


def trigger_name(deployment: str, t: TriggerSpec) -> str:
    """Automation name: the trigger's name plus a hash of its spec, so a changed trigger gets a new name."""
    digest = hashlib.sha256(json.dumps(t.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()[:10]
    return f"{deployment}__{t.name}__{digest}"


def ensure_triggers(client, full: str, d: DeploymentSpec, dep_id: Any, dry_run: bool) -> list[Change]:
    """The deployment's event triggers as automations owned by it; replaced only when the spec changed."""
    from prefect.events.schemas.deployment_triggers import DeploymentEventTrigger

    names = [trigger_name(full, t) for t in d.triggers]
    existing: list[Any] = []
    if dep_id is not None:
        existing = [a for a in client.read_automations() if _owned_by(a, dep_id)]
    if sorted(a.name for a in existing) == sorted(names):
        return [Change("automation", n, Action.UNCHANGED, full) for n in names]
    action = Action.UPDATE if existing else Action.CREATE
    if not dry_run and dep_id is not None:
        client.delete_resource_owned_automations(f"prefect.deployment.{dep_id}")
        for t, name in zip(d.triggers, names, strict=True):
            spec = {**t.model_dump(mode="json"), "name": name}
            trigger = DeploymentEventTrigger.model_validate(spec)
            trigger.set_deployment_id(dep_id)
            client.create_automation(trigger.as_automation())
    return [Change("automation", n, action, full) for n in names]


def _owned_by(automation: Any, dep_id: Any) -> bool:
    owner = getattr(automation, "owner_resource", None)
    if owner == f"prefect.deployment.{dep_id}":
        return True
    return any(str(dep_id) == str(getattr(a, "deployment_id", "")) for a in automation.actions)


def sync(spec: ProjectSpec, *, limits: dict[str, int], blocks_env: dict[str, str] | None, dry_run: bool,
         root: Path = REPO_ROOT) -> list[Change]:
    """Bring the Prefect server at ``$PREFECT_API_URL`` in line with ``spec``.

    Args:
        spec: the validated prefect.yaml.
        limits: global concurrency limits to ensure, ``{name: slots}``.
        blocks_env: environment for the credential blocks (None: no blocks).
        dry_run: compare only; nothing is written.

    Returns:
        One :class:`Change` per object, in the order they are handled.

    Raises:
        TemporaryError: the server is unreachable.
        PermanentError: the server refused a write.
    """
    changes: list[Change] = []
    try:
        with _client() as client:
            for pool in sorted({d.work_pool.name for d in spec.deployments}):
                changes.append(ensure_work_pool(client, pool, dry_run))
            for name, slots in sorted(limits.items()):
                changes.append(ensure_global_limit(client, name, slots, dry_run))
            if blocks_env is not None:
                changes.append(ensure_aws_block("kaiops-aws", blocks_env, dry_run))
            for d in spec.deployments:
                change, dep_id = ensure_deployment(client, d, spec.pull, dry_run, root)
                changes.append(change)
                if d.triggers and change.action is not Action.SKIPPED:
                    changes += ensure_triggers(client, change.name, d, dep_id, dry_run)
    except (InputError, PermanentError, TemporaryError):
        raise
    except Exception as exc:
        raise _wrap(exc, "registering with Prefect") from exc
    return changes


ACTIVE_STATES = ("SCHEDULED", "PENDING", "RUNNING", "PAUSED", "CANCELLING", "AWAITINGRETRY")


def active_release_runs(flow_name: str, model: str, version: int) -> list[str]:
    """Ids of the not-yet-finished runs of flow ``flow_name`` whose ``request`` parameter names
    ``model``/``version`` (read from ``$PREFECT_API_URL``)."""
    from prefect.client.schemas.filters import (
        FlowFilter,
        FlowFilterName,
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType

    try:
        with _client() as client:
            runs = client.read_flow_runs(
                flow_filter=FlowFilter(name=FlowFilterName(any_=[flow_name])),
                flow_run_filter=FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(
                    any_=[StateType(s) for s in ACTIVE_STATES if s in StateType.__members__]))),
                limit=200,
            )
    except Exception as exc:
        raise _wrap(exc, "reading release flow runs") from exc
    out = []
    for run in runs:
        req = (run.parameters or {}).get("request") or {}
        if req.get("model") == model and str(req.get("version")) == str(version):
            out.append(str(run.id))
    return out
