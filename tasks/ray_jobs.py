"""Ray jobs through the Ray Job Submission API (the dashboard port, 8265 on a RayCluster head).

The job's own result is the proof a Ray cluster works: its status must reach ``SUCCEEDED`` and its logs
must carry the expected output.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx

from tasks.errors import PermanentError, TemporaryError

TERMINAL = {"SUCCEEDED", "FAILED", "STOPPED"}

# A small job that needs the cluster's scheduler, object store and workers, and prints a checkable line.
SMOKE_ENTRYPOINT = (
    'python -c "import ray; ray.init(); '
    "sq = ray.remote(lambda x: x * x); "
    "print('kaiops-smoke', sum(ray.get([sq.remote(i) for i in range(100)])), "
    "int(ray.cluster_resources().get('CPU', 0)))\""
)
SMOKE_EXPECTED = "kaiops-smoke 328350"


@dataclass(frozen=True)
class JobResult:
    """What a finished Ray job reported.

    Attributes:
        job_id: the submission id.
        status: ``SUCCEEDED``, ``FAILED`` or ``STOPPED``.
        seconds: wall time from submission to a terminal status.
        logs: the job's driver logs (tail, at most 20 000 characters).
    """

    job_id: str
    status: str
    seconds: float
    logs: str

    @property
    def succeeded(self) -> bool:
        return self.status == "SUCCEEDED"


def run_job(address: str, entrypoint: str, timeout: float = 300.0, poll: float = 1.0) -> JobResult:
    """Submit ``entrypoint`` to the Job Submission API at ``address`` and wait for a terminal status.

    Talks to the REST API (``POST /api/jobs/``, ``GET /api/jobs/<id>``, ``.../logs``, ``.../stop``) directly:
    Ray's ``JobSubmissionClient`` lets a ``RAY_ADDRESS`` in the environment override the address it is
    given, which would prove a *different* cluster works.

    Args:
        address: dashboard URL, e.g. ``http://127.0.0.1:8265``.
        entrypoint: shell command the job runs on the head.
        timeout: seconds to wait for a terminal status; the job is stopped when it runs out.
        poll: seconds between status reads (the API has no watch).

    Raises:
        TemporaryError: the API could not be reached or answered 5xx.
        PermanentError: the API refused the job (4xx), or it did not finish within ``timeout`` (stopped first).
    """
    base = address.rstrip("/") + "/api/jobs/"
    started = time.monotonic()
    with httpx.Client(timeout=30, trust_env=False) as http:
        job_id = _call(http, "POST", base, address, json={"entrypoint": entrypoint})["submission_id"]
        while (status := _call(http, "GET", base + job_id, address)["status"]) not in TERMINAL:
            if time.monotonic() - started > timeout:
                _call(http, "POST", base + job_id + "/stop", address)
                raise PermanentError(f"Ray job {job_id} still {status} after {timeout:.0f}s; stopped it")
            time.sleep(poll)
        logs = _call(http, "GET", base + job_id + "/logs", address).get("logs", "")[-20_000:]
    return JobResult(job_id, status, round(time.monotonic() - started, 3), logs)


def _call(http: httpx.Client, method: str, url: str, address: str, **kwargs) -> dict:
    try:
        resp = http.request(method, url, **kwargs)
    except httpx.HTTPError as exc:
        raise TemporaryError(f"Ray Job Submission API at {address} unreachable: {exc}") from exc
    if resp.status_code >= 500:
        raise TemporaryError(f"Ray Job Submission API at {address}: HTTP {resp.status_code}: {resp.text[:300]}")
    if resp.status_code >= 400:
        raise PermanentError(f"Ray Job Submission API at {address}: HTTP {resp.status_code}: {resp.text[:300]}")
    return resp.json()


def smoke_test(address: str, timeout: float = 300.0) -> JobResult:
    """Run the kaiops smoke job and return its result; ``succeeded`` only if the output is right too."""
    result = run_job(address, SMOKE_ENTRYPOINT, timeout=timeout)
    if result.succeeded and SMOKE_EXPECTED not in result.logs:
        return JobResult(result.job_id, "WRONG_OUTPUT", result.seconds, result.logs)
    return result
