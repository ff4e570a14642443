"""Fleet flows: the same read-only or backup work over many namespaces, fanned out on the configured task
runner (threads, or a Ray cluster through prefect-ray's ``RayTaskRunner``).

``fleet_inventory`` maps :func:`tasks.fleet.namespace_inventory` over the namespaces. It ends
partially failed (``ok`` false, every namespace still reported) when some namespaces fail.
"""

from __future__ import annotations

from typing import Any

from prefect import flow
from prefect.artifacts import create_table_artifact
from prefect.task_runners import ThreadPoolTaskRunner

from configs.release import ExecutionConfig, TaskRunnerKind
from tasks.fleet import namespace_inventory


def build_task_runner(execution: ExecutionConfig):
    """The task runner ``execution`` asks for.

    Returns:
        ``ThreadPoolTaskRunner(max_workers)`` for ``local``; ``prefect_ray.RayTaskRunner(address=...)`` for
        ``ray`` (prefect-ray calls ``ray.init(address)``; the Ray workers must be able to import kaiops:
        the same venv, or ``init_kwargs={"runtime_env": {"working_dir": <repo>}}``).
    """
    if execution.task_runner is TaskRunnerKind.RAY:
        from prefect_ray import RayTaskRunner

        return RayTaskRunner(address=execution.ray_address, init_kwargs={"include_dashboard": False}
                             if not execution.ray_address else None)
    return ThreadPoolTaskRunner(max_workers=execution.max_workers)


@flow(name="fleet-inventory-map")
def _map_inventory(namespaces: list[str], kubeconfig: str | None) -> list[dict[str, Any]]:
    futures = namespace_inventory.map(namespaces, kubeconfig=kubeconfig)
    return [f.result() for f in futures]


@flow(name="fleet-inventory", log_prints=True)
def fleet_inventory(namespaces: list[str], execution: ExecutionConfig | None = None,
                    kubeconfig: str | None = None) -> dict[str, Any]:
    """List the platform's objects in every namespace of ``namespaces``, one task each.

    Args:
        namespaces: the namespaces (duplicates are dropped).
        execution: task runner choice (default local threads).
        kubeconfig: cluster to read (default ``$KUBECONFIG``/in-cluster).

    Returns:
        ``{"rows": [per-namespace rows], "failed": [namespaces], "runner": "local"|"ray", "ok": bool}``.
    """
    execution = ExecutionConfig.model_validate(execution or {})
    names = list(dict.fromkeys(namespaces))
    runner = build_task_runner(execution)
    rows = _map_inventory.with_options(task_runner=runner)(names, kubeconfig)
    failed = [r["namespace"] for r in rows if r["error"]]
    create_table_artifact([{**{k: v for k, v in r.items() if k != "names"}, "counts": str(r["counts"])} for r in rows],
                          key="fleet-inventory", description=f"{len(rows)} namespaces on {execution.task_runner.value}")
    print(f"{len(rows)} namespaces listed on {execution.task_runner.value}; {len(failed)} failed")
    return {"rows": rows, "failed": failed, "runner": execution.task_runner.value, "ok": not failed}
