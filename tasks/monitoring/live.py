"""Each alert rule against a live Prometheus: do its series exist now, and would it fire if evaluated now.

What a reviewer asks before trusting an alert. For every rule of every PrometheusRule in the given files:

- the vector selectors its expression uses (``up{job=~".+-head-svc"}``), each with the pinned component that
  exports the metric (the catalogue) and whether this Prometheus has series matching the selector now
  (``count(<selector>)``: a right metric with a wrong ``job`` matcher has no series either);
- the expression evaluated now (``count(<expr>)`` through :class:`tasks.metrics.PrometheusProvider`, the
  project's one Prometheus client): how many series it returns, i.e. how many alerts would be pending or
  firing (``for:`` is not waited for: "would fire" means the condition holds now);
- whether this Prometheus has the rule loaded at all and in which state (``/api/v1/rules``: ``inactive``,
  ``pending`` while ``for:`` runs, ``firing``; ``not-loaded`` when no loaded group has it, e.g. a PrometheusRule
  the ``Prometheus`` object's ``ruleSelector`` does not select).

Offline (no URL) only the catalogue column is filled.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml

from tasks.analysis import Outcome
from tasks.errors import InputError
from tasks.metrics import PrometheusProvider
from tasks.monitoring import catalogue
from tasks.monitoring.promql import PROMETHEUS_SERIES, check_groups, recorded_names, selectors

_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class Verdict(StrEnum):
    """What a rule would do now."""

    firing = "firing"  # the expression returns series now: the alert fires (once its `for:` has passed)
    quiet = "quiet"  # its series exist and the expression returns nothing now
    no_series = "no-series"  # a metric it needs has no series in this Prometheus: it cannot fire (absent() aside)
    query_failed = "query-failed"  # Prometheus rejected the expression or did not answer
    rejected = "rejected"  # Prometheus's parser rejects the rule: the Prometheus Operator never loads it
    offline = "offline"  # no Prometheus given: only the catalogue was consulted


@dataclass(frozen=True)
class MetricStatus:
    """One vector selector of an expression.

    Attributes:
        name: the metric name.
        selector: the selector as written (``up{job="x"}``; the bare name when it has no matchers).
        exported_by: the catalogue's component, ``recording rule``, ``prometheus``, or None (unknown).
        version: the pinned version the component's names were read at ("" when not a component).
        nearest: the nearest catalogued name when ``exported_by`` is None.
        series_now: whether the live Prometheus has series matching the selector (None offline or on failure).
    """

    name: str
    selector: str
    exported_by: str | None
    version: str
    nearest: str | None
    series_now: bool | None


@dataclass(frozen=True)
class RuleStatus:
    """One rule of one PrometheusRule.

    Attributes:
        file, object, group, rule: where it is (``PrometheusRule/name``, group name, alert or record name).
        kind: ``alert`` or ``record``.
        expr: the expression.
        metrics: its metrics.
        verdict: :class:`Verdict`.
        series: how many series the expression returns now (None offline or on failure).
        error: why the query failed.
        state: the rule as this Prometheus has loaded it (:func:`loaded_state`); None offline.
    """

    file: str
    object: str
    group: str
    rule: str
    kind: str
    expr: str
    metrics: list[MetricStatus] = field(default_factory=list)
    verdict: Verdict = Verdict.offline
    series: int | None = None
    error: str | None = None
    state: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready mapping (enums as strings)."""
        row = asdict(self)
        row["verdict"] = str(self.verdict)
        return row


def load_rules(path: Path) -> list[dict[str, Any]]:
    """The PrometheusRule objects of one YAML file.

    Raises:
        InputError: the file is unreadable, not YAML, or holds no PrometheusRule; or promtool rejects a rule
            (the field path and Prometheus's message are named).
    """
    source = str(path)
    try:
        docs = list(yaml.load_all(path.read_text(encoding="utf-8"), Loader=_YAML_LOADER))
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(source, "-", f"cannot read the file: {exc}", "give a readable YAML file") from exc
    except yaml.YAMLError as exc:
        raise InputError(source, "-", f"not valid YAML: {str(exc).splitlines()[0]}", "fix the YAML syntax") from exc
    rules = [d for d in docs if isinstance(d, dict) and d.get("kind") == "PrometheusRule"
             and str(d.get("apiVersion", "")).startswith("monitoring.coreos.com/")]
    if not rules:
        raise InputError(source, "kind", "the file holds no monitoring.coreos.com PrometheusRule",
                         "give files with PrometheusRule objects (kind: PrometheusRule)")
    for doc in rules:
        groups = (doc.get("spec") or {}).get("groups")
        if not isinstance(groups, list) or not groups:
            raise InputError(source, "spec.groups", "a PrometheusRule without rule groups", "add spec.groups")
        for p in check_groups(groups):
            where = "spec.groups" if p.group is None else f"spec.groups[{p.group}].rules[{p.rule}]"
            raise InputError(source, where, f"Prometheus rejects the rule: {p.message}",
                             "fix the rule (`kaiops validate` lists every problem)")
    return rules


def cluster_rules(kubeconfig: str | None, namespace: str | None) -> list[tuple[str, dict[str, Any]]]:
    """``(source, PrometheusRule)`` for every PrometheusRule in ``namespace`` (all namespaces when None).

    Raises:
        NotFound: the cluster does not serve monitoring.coreos.com/v1 PrometheusRule (no Prometheus Operator CRDs).
    """
    from tasks import kube

    dyn = kube.connect(kubeconfig)
    items = kube.list_objects(dyn, "monitoring.coreos.com/v1", "PrometheusRule", namespace)
    return [(f"cluster {(o.get('metadata') or {}).get('namespace', '')}", o) for o in items]


def _metric(name: str, selector: str, recorded: set[str], provider: PrometheusProvider | None) -> MetricStatus:
    version = ""
    if name in recorded:
        by: str | None = "recording rule"
    elif name in PROMETHEUS_SERIES:
        by = "prometheus"
    else:
        comp = catalogue.series_index().get(name)
        by, version = (comp.name, comp.version) if comp else (None, "")
    near = None if by else catalogue.nearest(name)
    now: bool | None = None
    if provider is not None:
        result = provider.query(f"count({selector})")
        now = None if result.outcome is Outcome.QUERY_FAILED else result.outcome is Outcome.OK
    return MetricStatus(name, selector, by, version, near, now)


def _evaluate(provider: PrometheusProvider, status: RuleStatus) -> RuleStatus:
    result = provider.query(f"count({status.expr})")
    missing = any(m.series_now is False for m in status.metrics)
    if result.outcome is Outcome.QUERY_FAILED:
        return _with(status, Verdict.query_failed, None, result.error)
    count = int(result.value or 0) if result.outcome is Outcome.OK else 0
    if count:
        return _with(status, Verdict.firing, count, None)
    return _with(status, Verdict.no_series if missing else Verdict.quiet, 0, None)


def _with(status: RuleStatus, verdict: Verdict, series: int | None, error: str | None) -> RuleStatus:
    return RuleStatus(status.file, status.object, status.group, status.rule, status.kind, status.expr,
                      status.metrics, verdict, series, error, status.state)


_STATES = ("firing", "pending", "inactive")  # most telling first


def loaded_state(groups: list[dict[str, Any]], group: str, rule: str, namespace: str | None = None) -> str:
    """How Prometheus has loaded rule ``rule`` of group ``group`` (pure, on ``/api/v1/rules`` groups).

    The Prometheus Operator keeps group names and writes each PrometheusRule as the rule file
    ``<namespace>-<name>-<uid>.yaml`` (``pkg/prometheus/operator.go`` of v0.89.0, seen in the sandbox), so with
    ``namespace`` only groups from that namespace's files count; one group name loaded from several files gives
    the most telling state of them.

    Returns:
        ``firing``, ``pending`` or ``inactive`` for an alerting rule (``ok``/``err`` health for a recording
        rule: ``loaded``), ``not-loaded`` when no loaded group holds it.
    """
    found: list[str] = []
    for g in groups:
        if g.get("name") != group:
            continue
        if namespace is not None and f"/{namespace}-" not in str(g.get("file", "")):
            continue
        for r in g.get("rules") or []:
            if r.get("name") == rule:
                found.append(str(r.get("state") or "loaded"))
    for state in _STATES:
        if state in found:
            return state
    return found[0] if found else "not-loaded"


def check_files(paths: list[Path], prometheus_url: str | None = None) -> list[RuleStatus]:
    """One :class:`RuleStatus` per rule of every PrometheusRule in ``paths``.

    Args:
        paths: YAML files.
        prometheus_url: a live Prometheus (``http://127.0.0.1:9090``); None checks only the catalogue.

    Raises:
        InputError: a file is bad (see :func:`load_rules`); nothing is queried then.
        TemporaryError: Prometheus did not answer.
    """
    loaded = [(str(p), doc) for p in paths for doc in load_rules(p)]  # all input is checked before any query
    return check_objects(loaded, prometheus_url)


def check_objects(objects: list[tuple[str, dict[str, Any]]], prometheus_url: str | None = None) -> list[RuleStatus]:
    """One :class:`RuleStatus` per rule of each ``(source, PrometheusRule)``.

    A PrometheusRule that Prometheus's parser rejects gets one ``rejected`` row per rule promtool names (the
    Prometheus Operator would not load it); its other rules are still checked.

    Raises:
        TemporaryError: Prometheus did not answer at all (later failed queries become ``query-failed`` rows).
    """
    provider = PrometheusProvider(prometheus_url) if prometheus_url else None
    try:
        loaded: list[dict[str, Any]] = []
        if provider:
            provider.metric_names()  # reachable at all? (else TemporaryError: exit 1, nothing half-reported)
            loaded = provider.rule_groups()
        out: list[RuleStatus] = []
        for source, doc in objects:
            groups = [g for g in (doc.get("spec") or {}).get("groups") or [] if isinstance(g, dict)]
            rejected = {(p.group, p.rule): p.message for p in check_groups(groups)} if groups else {}
            recorded = recorded_names(groups)
            label = f"PrometheusRule/{(doc.get('metadata') or {}).get('name', '?')}"
            if (None, None) in rejected:
                out.append(RuleStatus(source, label, "", "", "-", "", verdict=Verdict.rejected,
                                      error=rejected[(None, None)]))
                continue
            for g, group in enumerate(groups):
                for r, item in enumerate(group.get("rules") or []):
                    kind = "alert" if "alert" in item else "record"
                    expr = str(item.get("expr", ""))
                    status = RuleStatus(source, label, str(group.get("name", "")), str(item.get(kind, "")), kind,
                                        expr)
                    if (g, r) in rejected:
                        out.append(_with(status, Verdict.rejected, None, rejected[(g, r)]))
                        continue
                    try:
                        metrics = [_metric(n, text, recorded, provider) for n, text in selectors(expr)]
                    except ValueError as exc:
                        out.append(_with(status, Verdict.rejected, None, str(exc)))
                        continue
                    state = loaded_state(loaded, status.group, status.rule, _namespace(source, doc)) \
                        if provider else None
                    status = RuleStatus(status.file, label, status.group, status.rule, kind, expr, metrics,
                                        state=state)
                    out.append(_evaluate(provider, status) if provider else status)
        return out
    finally:
        if provider:
            provider.close()


def _namespace(source: str, doc: dict[str, Any]) -> str | None:
    """The namespace of a PrometheusRule read from the cluster (files: None, they may be loaded anywhere)."""
    if not source.startswith("cluster "):
        return None
    return (doc.get("metadata") or {}).get("namespace") or None
