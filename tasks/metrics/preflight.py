"""The pre-flight: every metric and label name a canary policy's templates use must exist in Prometheus,
so a policy naming a missing metric fails with :class:`InputError` before the rollout changes anything."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tasks.errors import InputError
from tasks.metrics.provider import PrometheusProvider
from tasks.metrics.selectors import metric_selectors
from tasks.metrics.templates import SAMPLE_CONTEXT

if TYPE_CHECKING:
    from configs.canary import CanaryPolicy


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
                if error := provider.parse_error(SAMPLE_CONTEXT.fill(template, policy.interval_seconds)):
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
