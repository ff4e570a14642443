"""Prometheus, the way the canary analysis uses it: one concept per module.

- :mod:`.provider`: :class:`PrometheusProvider` ``.query(promql)`` / ``.query_range(...)`` return a
  :class:`QueryResult` whose ``outcome`` is ``ok``, ``no_data`` or ``query_failed``.
- :mod:`.selectors`: :func:`metric_selectors`, the ``name{label="..."}`` selectors a PromQL template uses.
- :mod:`.templates`: :class:`QueryContext` fills a template's placeholders.
- :mod:`.preflight`: :func:`preflight` asks Prometheus whether the policy's metric and label names exist.
- :mod:`.samples`: :func:`collect_samples` turns the answers into :class:`tasks.analysis.MetricSample` s;
  :func:`monotone_counts` keeps cumulative counts from going backwards between looks.

Not here: the statistics and the verdict (:mod:`tasks.analysis`), the rollout's state machine
(:mod:`tasks.rollout`), the monitoring rules kaiops itself exports (:mod:`tasks.monitoring`).
"""

from tasks.metrics.preflight import preflight
from tasks.metrics.provider import PrometheusProvider, QueryResult
from tasks.metrics.samples import (
    baseline_history,
    collect_sample,
    collect_samples,
    failed_queries,
    history_pending,
    monotone_counts,
)
from tasks.metrics.selectors import Selector, metric_selectors
from tasks.metrics.templates import QueryContext

__all__ = [
    "PrometheusProvider",
    "QueryContext",
    "QueryResult",
    "Selector",
    "baseline_history",
    "collect_sample",
    "collect_samples",
    "failed_queries",
    "history_pending",
    "metric_selectors",
    "monotone_counts",
    "preflight",
]
