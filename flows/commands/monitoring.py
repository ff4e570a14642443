"""``kaiops monitoring check [FILE...] [--namespace NS]``: each alert rule, whether its series exist now and
whether it would fire.

Rules come from files or from the PrometheusRules of a namespace in the cluster. Exit 0 with the table; 2 on bad
input (no file and no namespace, an unreadable or non-YAML file, a file without PrometheusRule, a rule
Prometheus's parser rejects, a malformed ``--prometheus`` URL, a cluster without the PrometheusRule CRD) before
anything is queried; 1 when Prometheus or the apiserver does not answer. Rules found in the cluster that
Prometheus's parser rejects are listed as ``rejected`` (the Prometheus Operator would not load them).
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlparse

import typer

from flows.output import OutputFormat, OutputOption, emit, err_console
from tasks.errors import InputError

app = typer.Typer(help="Monitoring that would really fire: alert rules against the live series.",
                  no_args_is_help=True)


def _url(value: str | None) -> str | None:
    if not value:
        return None
    parsed = urlparse(value)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise InputError("<cli>", "--prometheus", f"{value!r} is not an http(s) URL",
                         "give the Prometheus base URL, e.g. http://127.0.0.1:9090")
    return value


@app.command("check")
def check(
    files: list[Path] = typer.Argument(None, help="YAML files with PrometheusRule objects."),
    namespace: str | None = typer.Option(None, "--namespace", "-n", help="Also the PrometheusRules of this "
                                         "namespace in the cluster (`all`: every namespace)."),
    kubeconfig: str | None = typer.Option(None, "--kubeconfig", help="Kubeconfig (default: $KUBECONFIG)."),
    prometheus: str | None = typer.Option(None, "--prometheus", help="Base URL of a live Prometheus "
                                          "(default: $PROMETHEUS_URL; none: check the metric catalogue only)."),
    output: OutputFormat = OutputOption,
) -> None:
    """List each alert and recording rule: the metrics it uses (who exports them, series now) and its verdict."""
    from configs.inputs import check_name, http_url
    from tasks.monitoring.live import check_objects, cluster_rules, load_rules

    if namespace is not None and namespace != "all":
        check_name(namespace, source="<cli>", field="--namespace")
    if prometheus is not None:  # given, even empty: checked; unset: $PROMETHEUS_URL or offline
        http_url(prometheus, field="--prometheus", example="http://127.0.0.1:9090")
    if not files and not namespace:
        raise InputError("<cli>", "FILE / --namespace", "nothing to check",
                         "give PrometheusRule files, or --namespace NS to read them from the cluster")
    url = _url(prometheus or os.environ.get("PROMETHEUS_URL"))
    objects = [(str(p), doc) for p in files or [] for doc in load_rules(p)]  # every file checked before a query
    if namespace:
        objects += cluster_rules(kubeconfig, None if namespace == "all" else namespace)
    statuses = check_objects(objects, url)
    if output is not OutputFormat.table:
        emit([s.as_dict() for s in statuses], output)
        return
    rows = []
    for s in statuses:
        metrics = []
        for m in s.metrics:
            who = m.exported_by or f"unknown (nearest: {m.nearest})"
            now = "" if m.series_now is None else (" series now" if m.series_now else " NO series")
            metrics.append(f"{m.selector}: {who}{now}")
        rows.append({"rule": f"{s.object} {s.group}/{s.rule}", "metrics": "\n".join(metrics) or "-",
                     "verdict": str(s.verdict) + (f" ({s.series} series)" if s.series else "")
                     + (f": {s.error}" if s.error else ""),
                     "in prometheus": s.state or "-"})
    emit(rows, output, title="kaiops monitoring check")
    firing = sum(s.verdict == "firing" for s in statuses)
    blind = sum(s.verdict == "no-series" for s in statuses)
    where = f" against {url}" if url else " (offline: catalogue only)"
    unloaded = sum(s.state == "not-loaded" for s in statuses)
    err_console.print(f"{len(statuses)} rule(s){where}: {firing} would fire now, {blind} have no series"
                      + (f", {unloaded} not loaded by that Prometheus" if unloaded else ""))
