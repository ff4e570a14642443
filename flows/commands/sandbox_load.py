"""``kaiops sandbox load ISVC``: real prediction traffic against a sandbox InferenceService's URL."""

from __future__ import annotations

import typer

from flows.output import OutputFormat, OutputOption, emit


def load(
    isvc: str = typer.Argument(..., help="InferenceService name."),
    namespace: str = typer.Option("default", "--namespace", "-n", help="Its namespace."),
    rps: float = typer.Option(10.0, "--rps", min=0.1, max=200.0, help="Requests per second (0.1..200)."),
    duration: float = typer.Option(30.0, "--duration", min=1.0, max=3600.0, help="Seconds to run (1..3600)."),
    output: OutputFormat = OutputOption,
) -> None:
    """Send valid iris predictions at --rps for --duration seconds to the InferenceService's status.url (through
    the sandbox gateway with the URL's host as Host header when that host does not resolve, as KServe's
    Standard-mode ``<isvc>-<namespace>.example.com`` does not); report answers per HTTP code and per revision,
    and client-side latency (ms)."""
    from configs.inputs import check_name

    check_name(isvc, source="<cli>", field="ISVC")
    check_name(namespace, source="<cli>", field="--namespace")
    from sandbox import launcher
    from sandbox.kserve.load import resolves, run, target
    from tasks import kube
    from tasks.errors import InputError

    env = launcher.env()
    if "KUBECONFIG" not in env:
        raise InputError("sandbox", "kube-apiserver", "the sandbox apiserver is not running",
                         "run `kaiops sandbox up -s kserve`")
    dyn = kube.connect(env["KUBECONFIG"])
    try:
        obj = kube.get(dyn, "serving.kserve.io/v1beta1", "InferenceService", isvc, namespace)
    except kube.NotFound as exc:
        raise InputError("ISVC", "name", f"InferenceService {namespace}/{isvc} not found",
                         "check the name and --namespace") from exc
    url = (obj.get("status") or {}).get("url")
    if not url:
        raise InputError("ISVC", "status.url", f"InferenceService {namespace}/{isvc} has no URL yet (not ready)",
                         "wait until it is Ready (`kubectl get isvc`)")
    from urllib.parse import urlparse

    base, host = target(url, env.get("KAIOPS_GATEWAY_URL"), resolves(urlparse(url).hostname or ""))
    report = run(base, isvc, rps, duration, host=host)
    via = {"via": base, "host": host} if host else {}
    emit({"isvc": f"{namespace}/{isvc}", "url": url, **via, **report.summary()}, output, title="load")
