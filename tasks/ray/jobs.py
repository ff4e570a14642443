"""Ray jobs through the Ray Job Submission API (the dashboard port, 8265 on a RayCluster head).

The job's own result is the proof a Ray cluster works: its status must reach ``SUCCEEDED`` and its logs
must carry the expected output.
"""

from __future__ import annotations

import base64
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from tasks.errors import PermanentError, TemporaryError

TERMINAL = {"SUCCEEDED", "FAILED", "STOPPED"}
PROGRESS_EVERY_S = 15.0
LOG_TAIL_LINES = 20

# The smoke job proves the workers, not only the head: it waits (bounded) until ``want`` worker nodes are
# alive in Ray (nodes without the head's ``node:__internal_head__`` resource), then pins its tasks to those
# workers with hard node affinity, so only a worker can take them, and checks that every worker ran some.
# With ``want`` 0 the tasks run wherever Ray puts them.
_SMOKE_SCRIPT = """
import sys, time, ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy as On
want, patience = int(sys.argv[1]), float(sys.argv[2])
ray.init()
deadline = time.time() + patience
while True:
    workers = [n for n in ray.nodes() if n["Alive"] and "node:__internal_head__" not in n["Resources"]]
    if len(workers) >= want or time.time() > deadline:
        break
    print("kaiops-smoke waiting for workers:", len(workers), "of", want, flush=True)
    time.sleep(2)
if len(workers) < want:
    sys.exit(f"kaiops-smoke: only {len(workers)} of {want} Ray workers joined the head")
@ray.remote(num_cpus=0)
def sq(x):
    return x * x, ray.get_runtime_context().get_node_id()
def where(i):
    return {"scheduling_strategy": On(workers[i % len(workers)]["NodeID"], soft=False)} if want else {}
out = ray.get([sq.options(**where(i)).remote(i) for i in range(100)])
used = {node for _, node in out}
if want and used != {w["NodeID"] for w in workers}:
    sys.exit(f"kaiops-smoke: tasks ran on {len(used)} nodes, not on every one of the {len(workers)} workers")
print("kaiops-smoke", sum(v for v, _ in out), "workers", len(used) if want else 0, flush=True)
"""
SMOKE_EXPECTED = "kaiops-smoke 328350"


def progress(line: str) -> None:
    """A progress line on stderr, straight to the terminal: written, not printed, because Prefect's
    ``log_prints`` turns ``print`` (to stdout *and* stderr) into run logs, which the CLI runs at CRITICAL."""
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def smoke_entrypoint(workers: int, patience_s: float = 60.0) -> str:
    """The smoke job's shell entrypoint for a cluster with ``workers`` worker Pods (script passed in base64,
    so no shell quoting can break it)."""
    code = base64.b64encode(_SMOKE_SCRIPT.encode()).decode()
    return f"python -c \"import base64; exec(base64.b64decode('{code}'))\" {int(workers)} {patience_s:.0f}"


@dataclass(frozen=True)
class JobResult:
    """What a finished Ray job reported.

    Attributes:
        job_id: the submission id.
        status: ``SUCCEEDED``, ``FAILED`` or ``STOPPED`` (``WRONG_OUTPUT`` from :func:`smoke_test`).
        seconds: wall time from submission to a terminal status.
        logs: the job's driver logs (tail, at most 20 000 characters).
        message: the job's own status message (e.g. why it failed).
    """

    job_id: str
    status: str
    seconds: float
    logs: str
    message: str = ""

    @property
    def succeeded(self) -> bool:
        return self.status == "SUCCEEDED"


class JobTimeout(PermanentError):
    """A Ray job did not finish in time (it was stopped); the message carries its status message and log tail."""


def tail(text: str, lines: int = LOG_TAIL_LINES) -> str:
    """The last ``lines`` lines of ``text``."""
    return "\n".join(text.rstrip("\n").splitlines()[-lines:])


def run_job(address: str, entrypoint: str, timeout: float = 300.0, poll: float = 1.0,
            entrypoint_resources: dict[str, float] | None = None, progress_every: float = PROGRESS_EVERY_S,
            progress: Callable[[str], Any] = progress) -> JobResult:
    """Submit ``entrypoint`` to the Job Submission API at ``address`` and wait for a terminal status.

    Talks to the REST API (``POST /api/jobs/``, ``GET /api/jobs/<id>``, ``.../logs``, ``.../stop``) directly:
    Ray's ``JobSubmissionClient`` lets a ``RAY_ADDRESS`` in the environment override the address it is
    given, which would prove a *different* cluster works.

    Args:
        address: dashboard URL, e.g. ``http://10.244.0.5:8265``.
        entrypoint: shell command the job runs on the head.
        timeout: seconds to wait for a terminal status; the job is stopped when it runs out.
        poll: seconds between status reads (the API has no watch).
        entrypoint_resources: Ray resources the job's driver needs (``entrypoint_resources`` of the API).
        progress_every: seconds between progress lines (status and the job's own message).
        progress: where progress lines go.

    Raises:
        TemporaryError: the API could not be reached or answered 5xx.
        PermanentError: the API refused the job (4xx).
        JobTimeout: it did not finish within ``timeout`` (stopped first); the message has the job's status
            message and the last lines of its log.
    """
    base = address.rstrip("/") + "/api/jobs/"
    started = said = time.monotonic()
    body: dict[str, Any] = {"entrypoint": entrypoint}
    if entrypoint_resources:
        body["entrypoint_resources"] = entrypoint_resources
    with httpx.Client(timeout=30, trust_env=False) as http:
        job_id = _call(http, "POST", base, address, json=body)["submission_id"]
        while (info := _call(http, "GET", base + job_id, address))["status"] not in TERMINAL:
            now = time.monotonic()
            if now - started > timeout:
                _call(http, "POST", base + job_id + "/stop", address)
                logs = _call(http, "GET", base + job_id + "/logs", address).get("logs", "")
                raise JobTimeout(f"Ray job {job_id} still {info['status']} after {timeout:.0f}s; stopped it. "
                                 f"Its status message: {info.get('message') or '-'}\n"
                                 f"last log lines:\n{tail(logs) or '(no log output)'}")
            if now - said >= progress_every:
                said = now
                progress(f"Ray job {job_id}: {info['status']} after {now - started:.0f}s: {info.get('message') or '-'}")
            time.sleep(min(poll, max(0.05, timeout - (now - started))))
        logs = _call(http, "GET", base + job_id + "/logs", address).get("logs", "")[-20_000:]
    return JobResult(job_id, info["status"], round(time.monotonic() - started, 3), logs, info.get("message") or "")


def _call(http: httpx.Client, method: str, url: str, address: str, **kwargs: Any) -> dict[str, Any]:
    try:
        resp = http.request(method, url, **kwargs)
    except httpx.HTTPError as exc:
        raise TemporaryError(f"Ray Job Submission API at {address} unreachable: {exc}") from exc
    if resp.status_code >= 500:
        raise TemporaryError(f"Ray Job Submission API at {address}: HTTP {resp.status_code}: {resp.text[:300]}")
    if resp.status_code >= 400:
        raise PermanentError(f"Ray Job Submission API at {address}: HTTP {resp.status_code}: {resp.text[:300]}")
    body: dict[str, Any] = resp.json()
    return body


def smoke_test(address: str, timeout: float = 300.0, workers: int = 0,
               entrypoint_resources: dict[str, float] | None = None,
               progress: Callable[[str], Any] = progress) -> JobResult:
    """Run the kaiops smoke job and return its result; ``succeeded`` only if the output is right too.

    Args:
        workers: worker Pods the cluster should have; the job fails unless that many Ray workers joined and
            each ran tasks only a worker could take.
        entrypoint_resources: extra Ray resources for the driver (tests use an impossible one).

    Raises:
        JobTimeout: not finished within ``timeout`` seconds (see :func:`run_job`).
    """
    result = run_job(address, smoke_entrypoint(workers, patience_s=min(60.0, timeout / 2)), timeout=timeout,
                     entrypoint_resources=entrypoint_resources, progress=progress)
    if result.succeeded and SMOKE_EXPECTED not in result.logs:
        return JobResult(result.job_id, "WRONG_OUTPUT", result.seconds, result.logs, result.message)
    return result
