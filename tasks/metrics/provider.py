"""The Prometheus HTTP API client with three query outcomes (ok, no_data, query_failed).

An empty result is ``no_data``, never an exception; unreachable, timed out, HTTP errors and PromQL errors are
``query_failed`` - after Flagger's metric providers, where "no values found" is its own outcome. A breached
threshold is not decided here: that is the analysis's verdict (:mod:`tasks.analysis`).

HTTP API used: ``/api/v1/query``, ``/api/v1/query_range``, ``/api/v1/label/__name__/values``,
``/api/v1/labels``, ``/api/v1/metadata`` and ``/api/v1/format_query``
(https://prometheus.io/docs/prometheus/latest/querying/api/).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx

from tasks.analysis import Outcome
from tasks.errors import TemporaryError


@dataclass(frozen=True)
class QueryResult:
    """What one PromQL query returned.

    Attributes:
        outcome: ok / no_data / query_failed.
        value: the single value of an instant query (may be NaN); None unless ok.
        points: ``(unix seconds, value)`` of a range query's single series; empty unless ok.
        series: how many series the answer had.
        error: why the query failed (query_failed only).
    """

    outcome: Outcome
    value: float | None = None
    points: list[tuple[float, float]] = field(default_factory=list)
    series: int = 0
    error: str | None = None


class PrometheusProvider:
    """A Prometheus HTTP API client with the three query outcomes.

    Args:
        url: base URL, e.g. ``http://127.0.0.1:9090``.
        timeout: seconds per HTTP request.
        transport: optional httpx transport (tests).
    """

    def __init__(self, url: str, timeout: float = 10.0, transport: httpx.BaseTransport | None = None) -> None:
        self.url = url.rstrip("/")
        self._client = httpx.Client(base_url=self.url, timeout=timeout, transport=transport)

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._client.close()

    def _get(self, path: str, params: dict[str, str] | list[tuple[str, str | int | float | bool | None]]) -> Any:
        """GET an API path; return its ``data`` or raise TemporaryError with the reason."""
        try:
            resp = self._client.get(path, params=params)
        except httpx.HTTPError as exc:
            raise TemporaryError(f"prometheus {self.url}{path}: {exc.__class__.__name__}: {exc}") from exc
        try:
            body = resp.json()
        except ValueError:
            body = {}
        if resp.status_code != 200 or body.get("status") != "success":
            detail = body.get("error") or resp.text[:300]
            raise TemporaryError(f"prometheus {path}: HTTP {resp.status_code}: {detail}")
        return body.get("data")

    def query(self, promql: str, at: float | None = None) -> QueryResult:
        """Run an instant query that should return one series (or a scalar).

        Args:
            promql: the expression.
            at: evaluation time, unix seconds (default: now).

        Returns:
            ok with ``value`` (NaN allowed), no_data for an empty vector, query_failed for anything else
            (including more than one series: aggregate in the template, e.g. with ``sum()``).
        """
        params = {"query": promql}
        if at is not None:
            params["time"] = f"{at:.3f}"
        try:
            data = self._get("/api/v1/query", params)
        except TemporaryError as exc:
            return QueryResult(Outcome.QUERY_FAILED, error=str(exc))
        kind, result = data.get("resultType"), data.get("result")
        if kind == "scalar":
            return QueryResult(Outcome.OK, value=float(result[1]), series=1)
        if kind != "vector":
            return QueryResult(Outcome.QUERY_FAILED, error=f"expected an instant vector, got {kind}")
        if not result:
            return QueryResult(Outcome.NO_DATA)
        if len(result) > 1:
            return QueryResult(
                Outcome.QUERY_FAILED,
                series=len(result),
                error=f"{len(result)} series returned; aggregate the template to one (e.g. sum(...))",
            )
        return QueryResult(Outcome.OK, value=float(result[0]["value"][1]), series=1)

    def query_range(self, promql: str, start: float, end: float, step: float) -> QueryResult:
        """Run a range query that should return one series; ``points`` holds its samples.

        Args:
            start, end: unix seconds; step: seconds between points.
        """
        params = {"query": promql, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:.3f}"}
        try:
            data = self._get("/api/v1/query_range", params)
        except TemporaryError as exc:
            return QueryResult(Outcome.QUERY_FAILED, error=str(exc))
        result = data.get("result") or []
        if not result:
            return QueryResult(Outcome.NO_DATA)
        if len(result) > 1:
            return QueryResult(Outcome.QUERY_FAILED, series=len(result), error=f"{len(result)} series returned")
        points = [(float(t), float(v)) for t, v in result[0]["values"]]
        return QueryResult(Outcome.OK, points=points, series=1)

    def metric_names(self) -> tuple[set[str], set[str]]:
        """(metric names that have series, metric family names that have metadata from a scrape).

        Raises:
            TemporaryError: Prometheus did not answer.
        """
        return set(self._get("/api/v1/label/__name__/values", {})), set(self._get("/api/v1/metadata", {}) or {})

    def rule_groups(self) -> list[dict[str, Any]]:
        """The rule groups Prometheus has loaded (``/api/v1/rules``: name, file, rules with state and alerts).

        Raises:
            TemporaryError: Prometheus did not answer.
        """
        return list((self._get("/api/v1/rules", {}) or {}).get("groups") or [])

    def parse_error(self, promql: str) -> str | None:
        """Prometheus's own parser error for ``promql`` (``/api/v1/format_query``, Prometheus >= 2.38), or None
        when it parses (or this Prometheus has no such endpoint).

        Raises:
            TemporaryError: Prometheus did not answer.
        """
        try:
            resp = self._client.get("/api/v1/format_query", params={"query": promql})
        except httpx.HTTPError as exc:
            raise TemporaryError(f"prometheus {self.url}/api/v1/format_query: {exc.__class__.__name__}: {exc}") from exc
        if resp.status_code == 404:
            return None
        try:
            body = resp.json()
        except ValueError:
            return None
        if body.get("status") == "error" and body.get("errorType") == "bad_data":
            return str(body.get("error") or "does not parse")
        return None

    def label_names(self, metric: str) -> set[str]:
        """Label names of the series of ``metric`` (empty when it has no series yet)."""
        return set(self._get("/api/v1/labels", [("match[]", metric)]) or [])
