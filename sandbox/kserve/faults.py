"""Fault injection for the sandbox KServe: annotations on an InferenceService that affect its NEWEST revision.

| annotation                                | value        | effect on the newest revision                     |
|-------------------------------------------|--------------|---------------------------------------------------|
| ``sandbox.kaiops.io/fault-error-rate``    | ``"0.2"``    | that fraction (0..1) of its requests answer 500   |
| ``sandbox.kaiops.io/fault-latency-ms``    | ``"300"``    | every request waits that many milliseconds first  |
| ``sandbox.kaiops.io/fault-never-ready``   | ``"true"``   | its model server never reports ready              |

The annotations are not part of the revision hash, so adding one does not create a revision: it changes the
behaviour of whatever revision is newest now (the canary during a rollout). Errors and latency are injected
by the router in front of the revision (like a misbehaving queue-proxy target) and so show up in
``kn_serving_invocation_duration_seconds{http_response_status_code="500"}`` (count and latency).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

PREFIX = "sandbox.kaiops.io/"
ERROR_RATE = PREFIX + "fault-error-rate"
LATENCY_MS = PREFIX + "fault-latency-ms"
NEVER_READY = PREFIX + "fault-never-ready"


@dataclass(frozen=True)
class Fault:
    """Faults for one revision.

    Attributes:
        error_rate: fraction of requests answered with HTTP 500, 0.0..1.0.
        latency_ms: milliseconds added before each request is forwarded, 0..60000.
        never_ready: the revision never becomes ready.
        problems: annotation values that were ignored, with why.
    """

    error_rate: float = 0.0
    latency_ms: int = 0
    never_ready: bool = False
    problems: tuple[str, ...] = ()

    @property
    def active(self) -> bool:
        return self.error_rate > 0 or self.latency_ms > 0 or self.never_ready


NO_FAULT = Fault()


def parse(isvc: dict[str, Any]) -> Fault:
    """Read the fault annotations of ``isvc``; invalid values are ignored and listed in ``problems``."""
    annotations = (isvc.get("metadata") or {}).get("annotations") or {}
    problems: list[str] = []
    rate = 0.0
    if ERROR_RATE in annotations:
        try:
            rate = float(annotations[ERROR_RATE])
            if not 0.0 <= rate <= 1.0:
                raise ValueError
        except ValueError:
            problems.append(f"{ERROR_RATE}={annotations[ERROR_RATE]!r}: expected a fraction 0..1 such as \"0.2\"")
            rate = 0.0
    latency = 0
    if LATENCY_MS in annotations:
        try:
            latency = int(float(annotations[LATENCY_MS]))
            if not 0 <= latency <= 60000:
                raise ValueError
        except ValueError:
            problems.append(f"{LATENCY_MS}={annotations[LATENCY_MS]!r}: expected milliseconds 0..60000 such as \"300\"")
            latency = 0
    never = str(annotations.get(NEVER_READY, "")).lower() == "true"
    return Fault(error_rate=rate, latency_ms=latency, never_ready=never, problems=tuple(problems))
