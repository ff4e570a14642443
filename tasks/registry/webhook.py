"""The registry receiver: a FastAPI app that turns signed MLflow webhook deliveries into Prefect events.

``POST /mlflow`` answers:

- 401 when the signature is missing, malformed, wrong, or the timestamp is outside the tolerance;
- 413 when the body is larger than :data:`MAX_BODY_BYTES` (before the signature is checked);
- 409 when the delivery id was already accepted or refused for good (a replay);
- 422 with ``{"error": "bad-payload", "field", "problem", "fix"}`` for a well-signed body that is wrong
  for good (not JSON, not an object, ``data.version`` not ASCII digits ...): MLflow does not retry 4xx;
- 202 with ``{"event_id": ...}`` when a release event was posted;
- 200 with ``{"ignored": <reason>}`` for a valid delivery that starts nothing (other model, other alias);
- 503 when Prefect could not take the event (MLflow retries 5xx; the delivery id is forgotten so the retry
  is accepted). That is the only 5xx: nothing in what a sender sends answers 5xx.

A delivery id is recorded only once its delivery is decided for good (accepted, ignored or refused as a bad
payload), never before the body has been parsed.

``GET /healthz`` answers 200. Logs name the delivery id, verdict and model, never the secret or signature.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from configs.release import ReleaseConfig
from tasks.errors import KaiopsError
from tasks.registry.replay import DeliveryStore
from tasks.registry.requests import IgnoreReason, PayloadRefused, ReleaseRequest, to_request
from tasks.registry.signature import (
    DEFAULT_TOLERANCE_SECONDS,
    DELIVERY_ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    SignatureVerdict,
    verify,
)

log = logging.getLogger("kaiops.registry")
MAX_BODY_BYTES = 1 << 20  # MLflow's deliveries are a few hundred bytes


def create_app(
    *,
    secret: str,
    releases: dict[str, ReleaseConfig],
    store: DeliveryStore,
    post_event: Callable[[ReleaseRequest], str],
    tolerance: float = DEFAULT_TOLERANCE_SECONDS,
    clock: Callable[[], float] = time.time,
) -> FastAPI:
    """Build the receiver.

    Args:
        secret: the webhook secret configured in MLflow (never logged).
        releases: ``{registered model: ReleaseConfig}`` (:func:`configs.release.load_releases`).
        store: where accepted delivery ids are remembered.
        post_event: posts the release request; returns the event id (``prefect_events.post_release_event``).
        tolerance: seconds a delivery's timestamp may differ from now.
        clock: Unix time source (tests pass a fixed one).
    """
    if not secret:
        raise ValueError("the webhook secret must not be empty")
    app = FastAPI(title="kaiops registry receiver", docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        return {"ok": True, "models": sorted(releases)}

    @app.post("/mlflow")
    async def mlflow_delivery(request: Request) -> JSONResponse:
        body = await request.body()
        delivery_id = request.headers.get(DELIVERY_ID_HEADER)
        if len(body) > MAX_BODY_BYTES:
            log.warning("delivery %s refused: body of %d bytes", _safe(delivery_id), len(body))
            return JSONResponse({"error": "body-too-large", "field": "<root>",
                                 "problem": f"{len(body)} bytes, more than {MAX_BODY_BYTES}"}, status_code=413)
        verdict = verify(
            secret,
            delivery_id=delivery_id,
            timestamp=request.headers.get(TIMESTAMP_HEADER),
            signature=request.headers.get(SIGNATURE_HEADER),
            body=body,
            now=clock(),
            tolerance=tolerance,
        )
        if verdict is not SignatureVerdict.VALID:
            log.warning("delivery %s refused: %s", _safe(delivery_id), verdict.value)
            return JSONResponse({"error": verdict.value}, status_code=401)
        assert delivery_id is not None
        outcome = decide(body, releases, delivery_id)
        # Decided for good from here on (accepted, ignored or refused): remember the id so a replay is refused.
        if not store.first_time(delivery_id, clock()):
            log.warning("delivery %s refused: replay", _safe(delivery_id))
            return JSONResponse({"error": "replay"}, status_code=409)
        if isinstance(outcome, PayloadRefused):
            log.warning("delivery %s refused: bad payload at %s: %s", _safe(delivery_id), outcome.field,
                        outcome.problem)
            return JSONResponse(outcome.as_json(), status_code=422)
        if isinstance(outcome, IgnoreReason):
            log.info("delivery %s ignored: %s", _safe(delivery_id), outcome.value)
            return JSONResponse({"ignored": outcome.value}, status_code=200)
        try:
            event = post_event(outcome)
        except KaiopsError as exc:
            store.forget(delivery_id)
            log.error("delivery %s: release event for %s v%d not posted: %s", _safe(delivery_id), outcome.model,
                      outcome.version, exc)
            return JSONResponse({"error": "event not posted"}, status_code=503)
        log.info("delivery %s: release requested for %s v%d (event %s)", _safe(delivery_id), outcome.model,
                 outcome.version, event)
        return JSONResponse({"event_id": event, "model": outcome.model, "version": outcome.version},
                            status_code=202)

    return app


def decide(body: bytes, releases: dict[str, ReleaseConfig], delivery_id: str
           ) -> ReleaseRequest | IgnoreReason | PayloadRefused:
    """Parse a delivery's raw body and map it (:func:`tasks.registry.requests.to_request`); never raises.

    A body that is not UTF-8 JSON (or nests too deep for the parser, or holds an integer past Python's digit
    limit) is a :class:`PayloadRefused` at ``<root>``.
    """
    try:
        delivery = json.loads(body)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        problem = "not UTF-8" if isinstance(exc, UnicodeDecodeError) else f"not valid JSON ({exc.__class__.__name__})"
        return PayloadRefused("<root>", f"the body is {problem}", "send MLflow's JSON delivery object")
    try:
        return to_request(delivery, releases, delivery_id)
    except RecursionError:  # pragma: no cover - to_request only reads two levels; kept total on purpose
        return PayloadRefused("<root>", "the body nests too deep", "send MLflow's JSON delivery object")


def _safe(value: str | None) -> str:
    """A header value fit for a log line (short, printable)."""
    return "".join(c for c in (value or "-")[:64] if c.isprintable())
