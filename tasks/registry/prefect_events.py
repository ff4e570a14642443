"""Post a release request to Prefect as an event (``POST <PREFECT_API_URL>/events``).

A self-hosted Prefect server takes events on ``POST /api/events`` (a JSON list); a deployment trigger
matching ``kaiops.registry.release-requested`` on resource ``kaiops.model.*`` then starts ``release``.
The event id is derived from the request (:func:`tasks.registry.requests.event_id`).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

import httpx

from tasks.errors import PermanentError, TemporaryError
from tasks.registry.requests import RELEASE_EVENT, ReleaseRequest, event_id, resource_id


def release_event(request: ReleaseRequest, occurred: datetime | None = None) -> dict[str, Any]:
    """The Prefect event (JSON-ready dict) for ``request``; ``payload.version`` stays an int."""
    return {
        "id": str(event_id(request)),
        "occurred": (occurred or datetime.now(UTC)).isoformat(),
        "event": RELEASE_EVENT,
        "resource": {
            "prefect.resource.id": resource_id(request.model),
            "prefect.resource.name": request.model,
            "kaiops.model.version": str(request.version),
        },
        "related": [],
        "payload": request.model_dump(mode="json"),
    }


def post_release_event(request: ReleaseRequest, api_url: str | None = None, timeout: float = 10.0) -> str:
    """Post the event for ``request``; return its id.

    Args:
        api_url: Prefect API base (``http://host:4200/api``); default ``$PREFECT_API_URL``.
        timeout: seconds per HTTP request.

    Raises:
        PermanentError: no API URL, or the server refused the event (4xx).
        TemporaryError: the server is unreachable or answered 5xx.
    """
    api_url = api_url or os.environ.get("PREFECT_API_URL")
    if not api_url:
        raise PermanentError("PREFECT_API_URL is not set: nowhere to post the release event")
    event = release_event(request)
    try:
        resp = httpx.post(f"{api_url.rstrip('/')}/events", json=[event], timeout=timeout)
    except httpx.HTTPError as exc:
        raise TemporaryError(f"posting {RELEASE_EVENT} to Prefect: {exc.__class__.__name__}") from exc
    if resp.status_code >= 500:
        raise TemporaryError(f"posting {RELEASE_EVENT} to Prefect: HTTP {resp.status_code}")
    if resp.status_code >= 400:
        raise PermanentError(f"posting {RELEASE_EVENT} to Prefect: HTTP {resp.status_code}: {resp.text[:300]}")
    event_id: str = event["id"]
    return event_id
