"""``kaiops deploy`` against the sandbox's real ``prefect server start``: every deployment with its
schedules, timezones, triggers and limits; a second run changes nothing; the real scheduler turns a cron
schedule into exactly one run per tick."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.registry_support import REPO, prefect_api, sandbox_services, unique, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def prefect(tmp_path_factory):
    with sandbox_services("prefect") as env, prefect_api(env["PREFECT_API_URL"]):
        yield env


def _sync(env: dict[str, str] | None = None, dry_run: bool = False):
    from configs.release import concurrency_limit_name, load_releases
    from tasks import prefect_admin

    return prefect_admin.sync(prefect_admin.load_project(env=env),
                              limits={concurrency_limit_name(m): 1 for m in load_releases()},
                              blocks_env={"AWS_ACCESS_KEY_ID": "SANDBOXKEY", "AWS_SECRET_ACCESS_KEY": "s3cr3t-value"},
                              dry_run=dry_run)


def test_deploy_registers_everything_and_is_idempotent(prefect):
    from prefect.client.orchestration import get_client

    from tasks.prefect_admin import Action

    env = {"KAIOPS_TIMEZONE": "Europe/Berlin", "KAIOPS_HOME": str(REPO)}
    _sync(env)
    second = _sync(env)
    assert {c.action for c in second} <= {Action.UNCHANGED, Action.SKIPPED}, [c.as_row() for c in second]
    skipped = [c.detail for c in second if c.action is Action.SKIPPED]
    assert all("does not exist" in d for d in skipped), skipped  # only flows not written yet are skipped
    with get_client(sync_client=True) as client:
        nightly = client.read_deployment_by_name("backup/nightly")
        assert [(s.schedule.cron, s.schedule.timezone, s.active) for s in nightly.schedules] == [
            ("0 2 * * *", "Europe/Berlin", True)]
        assert nightly.work_pool_name == "kaiops-process"
        drill = client.read_deployment_by_name("restore-drill/weekly-drill")
        assert drill.schedules[0].schedule.cron == "0 4 * * 0"
        guard = client.read_deployment_by_name("canary-guard/guard")
        assert guard.schedules[0].schedule.cron == "* * * * *"
        assert guard.global_concurrency_limit.limit == 1
        release = client.read_deployment_by_name("release/registry")
        assert release.global_concurrency_limit.limit == 4
        assert release.concurrency_options.collision_strategy.value == "ENQUEUE"
        assert release.schedules == []
        props = release.parameter_openapi_schema["definitions"]["ModelVersionRef"]["properties"]
        assert props["version"]["type"] == "integer"  # the UI form asks for an integer
        for name in ("publish-model/on-demand", "canary-rollback/on-demand", "fleet-backup/on-demand",
                     "fleet-drill/on-demand"):
            assert client.read_deployment_by_name(name).schedules == []
        fleet = client.read_deployment_by_name("fleet-backup/on-demand").parameter_openapi_schema
        execution = fleet["definitions"]["ExecutionConfig"]["properties"]
        assert {"task_runner", "ray_address", "ray_env", "ray_secret_blocks"} <= set(execution)  # the UI form
        automations = [a for a in client.read_automations() if a.name.startswith("release/registry__")]
        assert len(automations) == 1
        trigger = automations[0].trigger
        assert trigger.expect == {"kaiops.registry.release-requested"}
        action = automations[0].actions[0]
        assert action.deployment_id == release.id
        assert client.read_global_concurrency_limit_by_name("kaiops-release-iris").limit == 1
        pool = client.read_work_pool("kaiops-process")
        assert pool.type == "process"


def test_changed_timezone_is_an_update_and_dry_run_writes_nothing(prefect):
    from prefect.client.orchestration import get_client

    from tasks.prefect_admin import Action

    base = {"KAIOPS_TIMEZONE": "Europe/Berlin", "KAIOPS_HOME": str(REPO)}
    _sync(base)
    planned = _sync({**base, "KAIOPS_TIMEZONE": "America/New_York"}, dry_run=True)
    changed = {c.name for c in planned if c.action is Action.UPDATE}
    assert {"backup/nightly", "restore-drill/weekly-drill", "canary-guard/guard"} <= changed
    with get_client(sync_client=True) as client:
        assert client.read_deployment_by_name("backup/nightly").schedules[0].schedule.timezone == "Europe/Berlin"


def test_cli_dry_run_lists_without_printing_secrets(prefect):
    out = subprocess.run([str(Path(sys.executable).with_name("kaiops")), "deploy", "--dry-run", "-o", "json"],
                         capture_output=True, text=True, cwd=REPO, timeout=300,
                         env={**__import__("os").environ, "AWS_SECRET_ACCESS_KEY": "do-not-print-me-123"})
    assert out.returncode == 0, out.stderr[-2000:]
    assert "release/registry" in out.stdout and "do-not-print-me-123" not in out.stdout + out.stderr


def test_cron_tick_produces_exactly_one_run(prefect):
    """The real scheduler service (prefect_test_harness does not run it) creates one run per cron tick, and
    running again does not duplicate a tick."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import DeploymentScheduleCreate
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId
    from prefect.client.schemas.schedules import CronSchedule

    name = unique("tick")
    with get_client(sync_client=True) as client:
        flow_id = client.create_flow_from_name("kaiops-tick-test")
        dep_id = client.create_deployment(
            flow_id=flow_id, name=name, entrypoint="flows/reconcile.py:reconcile", work_pool_name="kaiops-process",
            schedules=[DeploymentScheduleCreate(schedule=CronSchedule(cron="* * * * *", timezone="UTC"),
                                                max_scheduled_runs=1)])

        def runs():
            return client.read_flow_runs(deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[dep_id])))

        try:
            # Creating a deployment schedules its upcoming ticks at once (the server does not wait for the
            # scheduler loop); the scheduler service then tops them up. Each tick must have exactly one run.
            wait_for(runs, 240, "scheduled runs from the cron schedule", every=3)
            first = runs()
            ticks = [r.expected_start_time for r in first]
            assert all(r.auto_scheduled and r.state.type.value == "SCHEDULED" for r in first)
            assert all(t.second == 0 and t.microsecond == 0 for t in ticks)  # on the minutes the cron names
            assert len(set(ticks)) == len(ticks)
            next_tick = min(ticks)
            # wait until the scheduler loop has run again (a new tick appears past the first horizon)...
            wait_for(lambda: max(r.expected_start_time for r in runs()) > max(ticks), 240,
                     "the scheduler service adding the next tick", every=5)
            later = runs()
            later_ticks = [r.expected_start_time for r in later]
            # ... and still one run per tick, in particular for the next one
            assert len(set(later_ticks)) == len(later_ticks)
            assert later_ticks.count(next_tick) <= 1
        finally:
            client.delete_deployment(dep_id)
