"""Prometheus, the way the canary analysis uses it: one small interface with three distinct outcomes.

- :class:`PrometheusProvider` ``.query(promql)`` / ``.query_range(...)`` return a :class:`QueryResult` whose
  ``outcome`` is ``ok`` (values), ``no_data`` (an empty result: never an exception) or ``query_failed``
  (unreachable, timed out, HTTP error or a PromQL error) - after Flagger's metric providers, where "no values
  found" is its own outcome. A breached threshold is not decided here: that is the analysis's verdict.
- :func:`metric_selectors` parses the ``name{label="..."}`` selectors a PromQL template uses, and
  :func:`preflight` asks Prometheus whether those metric and label names exist, so a policy naming a
  missing metric fails with :class:`InputError` before the rollout changes anything.
- :func:`collect_samples` fills the templates of a :class:`configs.canary.CanaryPolicy` and turns the
  answers into :class:`tasks.analysis.MetricSample` s (counts cumulative since the canary started, latency
  in seconds, paired latency windows since the last look) and, for ratio metrics until the analysis has
  taken it, the baseline's history: the same baseline templates over ``history_seconds``, evaluated at the
  canary's start (the stable revision's own traffic before the rollout).

HTTP API used: ``/api/v1/query``, ``/api/v1/query_range``, ``/api/v1/label/__name__/values``,
``/api/v1/labels`` and ``/api/v1/metadata`` (https://prometheus.io/docs/prometheus/latest/querying/api/).
"""

from __future__ import annotations

import math
import re
import string
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import httpx

from tasks.analysis import MetricKind, MetricSample, Outcome
from tasks.errors import InputError, TemporaryError

if TYPE_CHECKING:
    from configs.canary import CanaryMetric, CanaryPolicy
    from tasks.analysis import CanaryState


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

    def _get(self, path: str, params: dict | list) -> dict:
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


# ---------------------------------------------------------------------------------------------------------
# PromQL selectors

_KEYWORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "offset", "bool",
    "inf", "nan", "atan2", "start", "end",
}  # fmt: skip
_TOKEN = re.compile(
    r"""
    (?P<string>"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'|`[^`]*`)
  | (?P<range>\[[^\]]*\])
  | (?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)
  | (?P<brace>\{)
  | (?P<other>.)
    """,
    re.VERBOSE | re.DOTALL,
)
_MATCHER = re.compile(
    r"""\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*("(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'|`[^`]*`)\s*,?"""
)
_AGGREGATIONS = {
    "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk", "topk",
    "quantile", "limitk", "limit_ratio",
}  # fmt: skip


@dataclass(frozen=True)
class Selector:
    """One vector selector of a PromQL expression: ``metric{labels...}`` (metric may be None: ``{__name__=..}``)."""

    metric: str | None
    labels: tuple[str, ...]


def metric_selectors(promql: str) -> list[Selector]:
    """Return the vector selectors in ``promql`` (a small parser, enough for templates).

    Identifiers followed by ``(`` are functions or aggregations, those after ``by``/``without``/``on``/
    ``ignoring``/``group_*`` are label lists, keywords are skipped, strings and ``[ranges]`` are opaque.

    Raises:
        ValueError: a label matcher block ``{...}`` that does not parse.
    """
    tokens = [(m.lastgroup, m.group(), m.end()) for m in _TOKEN.finditer(promql)]
    selectors: list[Selector] = []
    i = 0
    while i < len(tokens):
        kind, text, _ = tokens[i]
        nxt = _next_significant(tokens, i + 1)
        if kind == "ident":
            if text.lower() in ("by", "without", "on", "ignoring", "group_left", "group_right"):
                if nxt is not None and tokens[nxt][1] == "(":
                    i = _skip_parens(tokens, nxt)
                    continue
            elif not _is_function_or_keyword(text, tokens[nxt][1] if nxt is not None else ""):
                labels: tuple[str, ...] = ()
                if nxt is not None and tokens[nxt][0] == "brace":
                    labels, i = _matchers(promql, tokens, nxt)
                    selectors.append(Selector(text, labels))
                    continue
                selectors.append(Selector(text, labels))
        elif kind == "brace":  # {__name__="x"} with no metric name in front
            labels, i = _matchers(promql, tokens, i)
            selectors.append(Selector(None, labels))
            continue
        i += 1
    return selectors


def _is_function_or_keyword(ident: str, following: str) -> bool:
    """True for keywords, calls ``f(``, and aggregations followed by ``by``/``without``."""
    if ident.lower() in _KEYWORDS or following == "(":
        return True
    return ident in _AGGREGATIONS and following.lower() in ("by", "without")


def _next_significant(tokens: list[tuple[str | None, str, int]], i: int) -> int | None:
    while i < len(tokens) and tokens[i][0] == "other" and tokens[i][1].isspace():
        i += 1
    return i if i < len(tokens) else None


def _skip_parens(tokens: list[tuple[str | None, str, int]], i: int) -> int:
    depth = 0
    while i < len(tokens):
        if tokens[i][1] == "(":
            depth += 1
        elif tokens[i][1] == ")":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return i


def _matchers(promql: str, tokens: list[tuple[str | None, str, int]], brace: int) -> tuple[tuple[str, ...], int]:
    """Parse ``{a="x", b=~"y"}`` starting at token index ``brace``; return (label names, next token index)."""
    pos = tokens[brace][2]
    close = pos
    labels: list[str] = []
    while True:
        while close < len(promql) and promql[close].isspace():
            close += 1
        if close < len(promql) and promql[close] == "}":
            break
        m = _MATCHER.match(promql, close)
        if not m:
            raise ValueError(f"cannot parse label matchers at {promql[close:close + 40]!r}")
        labels.append(m.group(1))
        close = m.end()
    i = brace + 1
    while i < len(tokens) and tokens[i][2] <= close:
        i += 1
    return tuple(labels), i + 1


# ---------------------------------------------------------------------------------------------------------
# Templates


@dataclass(frozen=True)
class QueryContext:
    """Values for the template placeholders (see configs.canary)."""

    namespace: str
    isvc: str
    canary_revision: str
    baseline_revision: str

    def fill(self, template: str, range_seconds: float) -> str:
        """Return ``template`` with every placeholder filled; ``range_seconds`` becomes ``${range}``."""
        return string.Template(template).substitute(
            namespace=self.namespace,
            isvc=self.isvc,
            canary_revision=self.canary_revision,
            baseline_revision=self.baseline_revision,
            range=f"{max(1, math.ceil(range_seconds))}s",
        )


#: Placeholder values for parsing a template before the real revisions are known.
_SAMPLE_CONTEXT = QueryContext(namespace="ns", isvc="isvc", canary_revision="isvc-predictor-00002",
                               baseline_revision="isvc-predictor-00001")


def preflight(provider: PrometheusProvider, policy: CanaryPolicy, source: str) -> list[str]:
    """Check that every metric and label name the policy's templates use exists in Prometheus.

    A metric counts as existing when it has series or metadata (a counter without children is announced
    by its ``# TYPE`` line only). Label names are checked against the metric's series when it has any.

    Args:
        provider: the Prometheus client.
        policy: the loaded policy.
        source: the policy file, for messages.

    Returns:
        the metric names checked.

    Raises:
        InputError: a template does not parse, or names a metric or label Prometheus does not know.
        TemporaryError: Prometheus did not answer (nothing has been changed; try again).
    """
    known, families = provider.metric_names()
    checked: list[str] = []
    for index, metric in enumerate(policy.metrics):
        for side in ("canary", "baseline"):
            for role, template in getattr(metric, side).templates().items():
                where = f"metrics[{index}].{side}.{role}"
                if error := provider.parse_error(_SAMPLE_CONTEXT.fill(template, policy.interval_seconds)):
                    raise InputError(source, where, f"metric {metric.name!r}: PromQL does not parse: {error}",
                                     "fix the expression (Prometheus's parser message says where)")
                try:
                    selectors = metric_selectors(template)
                except ValueError as exc:
                    fix = 'write name{label="value"}'
                    raise InputError(source, where, f"PromQL does not parse: {exc}", fix) from exc
                if not selectors:
                    problem = f"metric {metric.name!r}: template names no metric"
                    raise InputError(source, where, problem, "select a metric")
                for sel in selectors:
                    if sel.metric is None:
                        continue
                    if not ({sel.metric, _base_name(sel.metric)} & families or sel.metric in known):
                        raise InputError(
                            source,
                            where,
                            f"metric {metric.name!r}: Prometheus {provider.url} has no metric {sel.metric!r}",
                            "check the metric name and that its exporter is scraped",
                        )
                    labels = provider.label_names(sel.metric)
                    missing = sorted(set(sel.labels) - labels - {"__name__"}) if labels else []
                    if missing:
                        raise InputError(
                            source,
                            where,
                            f"metric {metric.name!r}: {sel.metric!r} has no label(s) {missing}; "
                            f"it has {sorted(labels)}",
                            "use one of the metric's labels",
                        )
                    checked.append(sel.metric)
    return sorted(set(checked))


def _base_name(name: str) -> str:
    for suffix in ("_bucket", "_count", "_sum", "_total", "_created"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def collect_sample(
    provider: PrometheusProvider,
    metric: CanaryMetric,
    ctx: QueryContext,
    *,
    now: float,
    canary_start: float,
    last_look: float,
    window_seconds: float,
    history_seconds: float = 0.0,
) -> MetricSample:
    """Query one metric for canary and baseline and return its :class:`MetricSample`.

    Args:
        provider: the Prometheus client.
        metric: the metric with its templates.
        ctx: placeholder values.
        now: evaluation time, unix seconds.
        canary_start: when the canary first took traffic, unix seconds (range of the cumulative counts).
        last_look: the previous look (or canary_start), unix seconds (range of the latency value/windows).
        window_seconds: length of one paired latency window, seconds.
        history_seconds: ratio metrics: > 0 also reads the baseline's ``total``/``events`` over this many
            seconds ending at ``canary_start`` (``history_total``/``history_events``); a failed or empty
            history query leaves them None (history is extra evidence, never required). 0: not read.

    Returns:
        the sample; ``query_failed`` when any query failed, ``no_data`` when a needed one was empty.
    """
    since_start = max(1.0, now - canary_start)
    since_look = max(1.0, now - last_look)
    results: dict[str, QueryResult] = {}
    for side in ("canary", "baseline"):
        for role, template in getattr(metric, side).templates().items():
            rng = since_look if role == "value" else since_start
            results[f"{side}_{role}"] = provider.query(ctx.fill(template, rng), at=now)
    failed = [f"{k}: {r.error}" for k, r in results.items() if r.outcome is Outcome.QUERY_FAILED]
    if failed:
        return MetricSample(metric=metric.name, outcome=Outcome.QUERY_FAILED, error="; ".join(failed)[:2000])
    empty = [k for k, r in results.items() if r.outcome is Outcome.NO_DATA]
    # No baseline requests at all is a fact (e.g. at 100 % canary), not missing data: count it as 0.
    if "baseline_total" in empty:
        results["baseline_total"] = QueryResult(Outcome.OK, value=0.0)
        empty.remove("baseline_total")
    if empty and "canary_total" in empty:
        return MetricSample(metric=metric.name, outcome=Outcome.NO_DATA, error=f"empty: {', '.join(empty)}")
    value = {k: r.value for k, r in results.items()}
    if metric.kind is MetricKind.RATIO:
        if empty:
            return MetricSample(metric=metric.name, outcome=Outcome.NO_DATA, error=f"empty: {', '.join(empty)}")
        history_total, history_events = (
            baseline_history(provider, metric, ctx, canary_start, history_seconds) if history_seconds > 0
            else (None, None)
        )
        return MetricSample(
            metric=metric.name,
            outcome=Outcome.OK,
            canary_total=value["canary_total"],
            baseline_total=value["baseline_total"],
            canary_events=value["canary_events"],
            baseline_events=value["baseline_events"],
            history_total=history_total,
            history_events=history_events,
        )
    scale = metric.value_unit.to_seconds
    canary_windows, baseline_windows = _paired_windows(
        provider, metric, ctx, scale, start=last_look, end=now, window_seconds=window_seconds
    )
    return MetricSample(
        metric=metric.name,
        outcome=Outcome.OK,
        canary_total=value["canary_total"],
        baseline_total=value["baseline_total"],
        canary_value=_scaled(value.get("canary_value"), scale),
        baseline_value=_scaled(value.get("baseline_value"), scale),
        canary_windows=canary_windows,
        baseline_windows=baseline_windows,
    )


def baseline_history(
    provider: PrometheusProvider, metric: CanaryMetric, ctx: QueryContext, canary_start: float, seconds: float
) -> tuple[float | None, float | None]:
    """The baseline's ``(total, events)`` over the ``seconds`` before ``canary_start`` (the stable revision's
    own traffic before the rollout), or ``(None, None)`` when a query failed, was empty or gave NaN.

    Runs the metric's baseline ``total`` and ``events`` templates with ``${range}`` = ``seconds``, evaluated
    at ``canary_start`` (the ``time`` parameter of ``/api/v1/query``). ``increase()`` over a range longer
    than the series covers counts what the series has (Prometheus extrapolates to at most half a scrape
    interval beyond the first sample, promql/functions.go ``extrapolatedRate``).
    """
    answers = [provider.query(ctx.fill(t, seconds), at=canary_start) for t in (metric.baseline.total,
                                                                               metric.baseline.events)]
    values = [a.value for a in answers if a.outcome is Outcome.OK and a.value is not None and math.isfinite(a.value)]
    if len(values) != 2 or values[0] <= 0:
        return None, None
    return values[0], values[1]


def history_pending(state: CanaryState | None, metric: str) -> bool:
    """True while the analysis has not yet decided whether ``metric`` uses history (nothing conclusive yet)."""
    metric_state = state.metrics.get(metric) if state is not None else None
    return metric_state is None or metric_state.history_mode is None


def _scaled(v: float | None, scale: float) -> float | None:
    return None if v is None else v * scale


def _paired_windows(
    provider: PrometheusProvider,
    metric: CanaryMetric,
    ctx: QueryContext,
    scale: float,
    *,
    start: float,
    end: float,
    window_seconds: float,
) -> tuple[list[float], list[float]]:
    """Canary and baseline values of back-to-back windows in (start, end], paired by timestamp (seconds)."""
    if end - start < window_seconds:
        return [], []
    first = start + window_seconds
    series = []
    for side in ("canary", "baseline"):
        template = getattr(metric, side).value
        r = provider.query_range(ctx.fill(template, window_seconds), first, end, window_seconds)
        series.append({round(t, 3): v * scale for t, v in r.points} if r.outcome is Outcome.OK else {})
    both = sorted(set(series[0]) & set(series[1]))
    return [series[0][t] for t in both], [series[1][t] for t in both]


def collect_samples(
    provider: PrometheusProvider,
    policy: CanaryPolicy,
    ctx: QueryContext,
    *,
    now: float,
    canary_start: float,
    last_look: float,
    state: CanaryState | None = None,
    history: bool = False,
) -> list[MetricSample]:
    """Return one :class:`MetricSample` per policy metric (see :func:`collect_sample`).

    Args:
        state: the analysis state of the previous look (None at the first).
        history: read the baseline's history (``policy.history_seconds``) for the ratio metrics whose
            analysis has not taken it yet (:func:`history_pending`); False: never (e.g. a dry run).
    """
    return [
        collect_sample(
            provider,
            m,
            ctx,
            now=now,
            canary_start=canary_start,
            last_look=last_look,
            window_seconds=policy.latency_window_seconds,
            history_seconds=policy.history_seconds
            if history and m.kind is MetricKind.RATIO and history_pending(state, m.name) else 0.0,
        )
        for m in policy.metrics
    ]


def monotone_counts(samples: list[MetricSample], state: CanaryState | None, policy: CanaryPolicy) -> list[MetricSample]:
    """Keep the cumulative counts of each sample at or above what the previous look analysed.

    The counts are ``increase(...[now - canary start])``: reset-aware, over a range that only grows, so their
    true value never decreases - but Prometheus extrapolates ``increase()`` to the range ends
    (``extrapolatedRate`` in promql/functions.go) and the estimate shrinks once a series stops growing (the
    baseline at the 100 % step, the canary when traffic stops). Unclamped, that reads as "a counter went
    backwards" and leaves the look inconclusive. Raising each count to the previous look's value removes
    only that estimation error (never a real reset: ``increase()`` already absorbs resets).

    Args:
        samples: this look's samples (any outcome; only ``ok`` ones are touched).
        state: the saved analysis state of the previous look (None at the first look: nothing to do).
        policy: for each metric's kind and direction (which of events/non-events the state counts as bad).

    Returns:
        the samples, with counts clamped where needed.
    """
    if state is None:
        return samples
    specs = {m.name: m for m in policy.metrics}
    out = []
    for s in samples:
        prev, spec = state.metrics.get(s.metric), specs.get(s.metric)
        if prev is None or spec is None or s.outcome is not Outcome.OK:
            out.append(s)
            continue
        update: dict[str, float] = {}
        for field_name, before in (("canary_total", prev.canary_total), ("baseline_total", prev.baseline_total)):
            value = getattr(s, field_name)
            if value is not None and value == value and value < before:
                update[field_name] = float(before)
        if spec.kind is MetricKind.RATIO:
            lower = spec.direction.value == "lower_is_better"
            prev_events = {
                "canary_events": prev.canary_bad if lower else prev.canary_total - prev.canary_bad,
                "baseline_events": prev.baseline_bad if lower else prev.baseline_total - prev.baseline_bad,
            }
            for field_name, before in prev_events.items():
                value = getattr(s, field_name)
                if value is not None and value == value and value < before:
                    update[field_name] = float(before)
        out.append(s.model_copy(update=update) if update else s)
    return out
