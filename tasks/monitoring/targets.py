"""The Services and Pods the operators create, with the labels and port names they really carry.

A ServiceMonitor selects Services, a PodMonitor selects Pods; both then pick an endpoint by port *name*.
Whether a monitor of an operator-managed workload can ever scrape anything is decided by the labels and
ports below, read from the pinned releases (paths relative to each module's root):

- KubeRay ``github.com/ray-project/kuberay/ray-operator`` v1.6.2;
- KServe ``github.com/kserve/kserve`` v0.20.0;
- Knative Serving ``knative.dev/serving`` v0.48.1 (the release KServe v0.20.0 requires).

Label values are :class:`Value` s: a fixed string (``ray.io/node-type: head``) or a pattern over the owner's
name (``ray.io/identifier: <cluster>-head``). ``open_labels`` says whether the operator copies the user's own
labels onto the object (then a selector key outside the operators' prefixes cannot be checked offline).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum

KUBERAY = "KubeRay v1.6.2"
KSERVE = "KServe v0.20.0"
KNATIVE = "Knative Serving v0.48.1"

#: Label key prefixes the operators own: a selector key with one of these is a claim about their objects.
OPERATOR_PREFIXES = ("ray.io/", "serving.kserve.io/", "serving.knative.dev/", "networking.internal.knative.dev/")


class ObjectKind(StrEnum):
    """What a monitor selects: ServiceMonitor -> Service, PodMonitor -> Pod."""

    service = "Service"  # selected by a ServiceMonitor's spec.selector
    pod = "Pod"  # selected by a PodMonitor's spec.selector


@dataclass(frozen=True)
class Value:
    """A label value the operator writes: ``fixed`` exactly, or any value matching ``pattern``.

    Attributes:
        fixed: the exact value, or None for a templated one.
        pattern: regex a templated value matches (full match).
        shown: how to show it in a fix (``<cluster>-head``).
        overridable: the user's template labels can replace the operator's value on this object.
    """

    fixed: str | None = None
    pattern: str = ".+"
    shown: str = ""
    overridable: bool = False

    def allows(self, value: str) -> bool:
        """True when the operator (or, if overridable, the user) can put ``value`` under this key."""
        if self.overridable:
            return True
        if self.fixed is not None:
            return value == self.fixed
        return re.fullmatch(self.pattern, value) is not None

    def show(self) -> str:
        """The value as written in a fix."""
        return self.fixed if self.fixed is not None else self.shown


def fixed(value: str, overridable: bool = False) -> Value:
    """A label the operator always writes with ``value``."""
    return Value(fixed=value, overridable=overridable)


def named(shown: str, pattern: str = ".+", overridable: bool = False) -> Value:
    """A label whose value derives from an owner's name (``shown`` like ``<cluster>-head``)."""
    return Value(pattern=pattern, shown=shown, overridable=overridable)


@dataclass(frozen=True)
class Target:
    """One kind of object an operator creates.

    Attributes:
        operator: ``KubeRay v1.6.2`` ...
        kind: Service or Pod.
        what: a short description (``RayCluster head Service <cluster>-head-svc``).
        labels: label key -> :class:`Value` the operator writes.
        identify: the labels a monitor should select on (keys of ``labels``), the fix for a selector that
            matches nothing.
        ports: port names the object always carries.
        metrics_ports: the subset of ``ports`` that serves Prometheus metrics (``/metrics``).
        open_labels: the user's own labels are copied onto the object.
        open_ports: the user's own (container) port names are copied onto the object.
        source: upstream file:line of the labels and ports.
    """

    operator: str
    kind: ObjectKind
    what: str
    labels: dict[str, Value]
    identify: tuple[str, ...]
    ports: tuple[str, ...]
    metrics_ports: tuple[str, ...]
    open_labels: bool
    open_ports: bool
    source: str
    port_note: str = field(default="")

    def suggested_selector(self, given: dict[str, str] | None = None) -> dict[str, str]:
        """``matchLabels`` that select this object, keeping the caller's values where they fit."""
        given = given or {}
        out: dict[str, str] = {}
        for key in self.identify:
            value = self.labels[key]
            out[key] = given[key] if key in given and value.allows(given[key]) else value.show()
        return out


_RAY_POD_PORTS = ("metrics",)
_RAY_METRICS_NOTE = ("Ray exports Prometheus metrics only on the port named `metrics` (8080, "
                     "--metrics-export-port), which KubeRay adds to every Ray container that lacks it")

TARGETS: tuple[Target, ...] = (
    # ---------------------------------------------------------------- KubeRay v1.6.2
    Target(
        KUBERAY, ObjectKind.service, "RayCluster head Service <cluster>-head-svc",
        labels={
            "ray.io/cluster": named("<cluster>"),
            "ray.io/node-type": fixed("head"),
            "ray.io/identifier": named("<cluster>-head", r".+-head"),
            "app.kubernetes.io/name": fixed("kuberay", overridable=True),
            "app.kubernetes.io/created-by": fixed("kuberay-operator"),
        },
        identify=("ray.io/cluster", "ray.io/node-type"),
        ports=("client", "dashboard", "gcs-server", "metrics", "serve"),
        metrics_ports=("metrics",),
        open_labels=True,  # spec.headGroupSpec.headService.metadata.labels are merged in
        open_ports=True,  # the head container's own ports replace the defaults (metrics stays)
        source="ray-operator/controllers/ray/common/service.go:25-33 (HeadServiceLabels), :403-443 "
               "(getServicePorts: the head container's ports or the defaults, plus metrics 8080); "
               "raycluster_controller.go:545-548 (app.kubernetes.io/name from the head template)",
        port_note=_RAY_METRICS_NOTE,
    ),
    Target(
        KUBERAY, ObjectKind.service, "RayService head Service <rayservice>-head-svc",
        labels={
            "ray.io/originated-from-cr-name": named("<rayservice>"),
            "ray.io/originated-from-crd": fixed("RayService"),
            "ray.io/node-type": fixed("head"),
            "ray.io/identifier": named("<rayservice>-head", r".+-head"),
        },
        identify=("ray.io/originated-from-cr-name", "ray.io/node-type"),
        ports=("client", "dashboard", "gcs-server", "metrics", "serve"),
        metrics_ports=("metrics",),
        open_labels=False,
        open_ports=True,
        source="ray-operator/controllers/ray/common/service.go:160-165 (BuildHeadServiceForRayService)",
        port_note=_RAY_METRICS_NOTE,
    ),
    Target(
        KUBERAY, ObjectKind.service, "Ray Serve Service <name>-serve-svc",
        labels={
            "ray.io/originated-from-cr-name": named("<name>"),
            "ray.io/originated-from-crd": named("RayService|RayCluster", r"RayService|RayCluster"),
            "ray.io/serve": named("<name>-serve", r".+-serve"),
        },
        identify=("ray.io/serve",),
        ports=("serve",),
        metrics_ports=(),
        open_labels=True,
        open_ports=True,  # ports named serve or serve-*
        source="ray-operator/controllers/ray/common/service.go:194-198 (labels), :217-224 (only serve ports)",
        port_note="the serve Service carries only the serve ports; scrape the head Service's `metrics` port",
    ),
    Target(
        KUBERAY, ObjectKind.service, "headless worker Service <cluster>-headless",
        labels={"ray.io/headless-worker-svc": named("<cluster>")},
        identify=("ray.io/headless-worker-svc",),
        ports=(),
        metrics_ports=(),
        open_labels=False,
        open_ports=False,
        source="ray-operator/controllers/ray/common/service.go:300-320 (BuildHeadlessServiceForRayCluster)",
        port_note="workers have no metrics Service: use a PodMonitor on ray.io/node-type: worker, port metrics",
    ),
    Target(
        KUBERAY, ObjectKind.pod, "Ray head Pod",
        labels={
            "ray.io/is-ray-node": fixed("yes", overridable=True),
            "ray.io/cluster": named("<cluster>"),
            "ray.io/node-type": fixed("head"),
            "ray.io/group": fixed("headgroup"),
            "ray.io/identifier": named("<cluster>-head", r".+-head", overridable=True),
            "app.kubernetes.io/name": fixed("kuberay", overridable=True),
            "app.kubernetes.io/created-by": fixed("kuberay-operator", overridable=True),
        },
        identify=("ray.io/cluster", "ray.io/node-type"),
        ports=_RAY_POD_PORTS,
        metrics_ports=("metrics",),
        open_labels=True,  # template labels are copied; node-type, group and cluster cannot be overridden
        open_ports=True,
        source="ray-operator/controllers/ray/common/pod.go:776-800 (labelPod), :186-188 (head), :224-231 "
               "(metrics port added when missing)",
        port_note=_RAY_METRICS_NOTE,
    ),
    Target(
        KUBERAY, ObjectKind.pod, "Ray worker Pod",
        labels={
            "ray.io/is-ray-node": fixed("yes", overridable=True),
            "ray.io/cluster": named("<cluster>"),
            "ray.io/node-type": fixed("worker"),
            "ray.io/group": named("<worker group>"),
            "ray.io/identifier": named("<cluster>-worker", r".+-worker", overridable=True),
            "app.kubernetes.io/name": fixed("kuberay", overridable=True),
            "app.kubernetes.io/created-by": fixed("kuberay-operator", overridable=True),
        },
        identify=("ray.io/cluster", "ray.io/node-type"),
        ports=_RAY_POD_PORTS,
        metrics_ports=("metrics",),
        open_labels=True,
        open_ports=True,
        source="ray-operator/controllers/ray/common/pod.go:776-800 (labelPod), :427-429 (worker), :446-453 "
               "(metrics port added when missing)",
        port_note=_RAY_METRICS_NOTE,
    ),
    # ---------------------------------------------------------------- KServe v0.20.0 (Standard/RawDeployment)
    Target(
        KSERVE, ObjectKind.service, "InferenceService predictor Service <isvc>-predictor (Standard mode)",
        labels={
            "serving.kserve.io/inferenceservice": named("<isvc>"),
            "component": named("predictor|transformer|explainer", r"predictor|transformer|explainer"),
        },
        identify=("serving.kserve.io/inferenceservice", "component"),
        ports=("<isvc>-predictor",),
        metrics_ports=("<isvc>-predictor",),
        open_labels=True,  # the InferenceService's and predictor's labels are copied
        open_ports=True,  # named after the runtime container's first port when it has one
        source="kserve pkg/controller/v1beta1/inferenceservice/components/predictor.go:500-512 (labels), "
               "reconcilers/service/service_reconciler.go:117-158 (port named after the container's first port, "
               "else after the component, 80 -> 8080)",
        port_note="the model server serves /metrics on its HTTP port (prometheus.kserve.io/port: 8080)",
    ),
    Target(
        KSERVE, ObjectKind.pod, "InferenceService predictor Pod (Standard mode)",
        labels={
            "serving.kserve.io/inferenceservice": named("<isvc>"),
            "component": named("predictor|transformer|explainer", r"predictor|transformer|explainer"),
            "app": named("isvc.<isvc>-predictor", r"isvc\..+"),
        },
        identify=("serving.kserve.io/inferenceservice", "component"),
        ports=(),
        metrics_ports=(),
        open_labels=True,
        open_ports=True,  # the ServingRuntime's container ports; kserve-sklearnserver declares none
        source="kserve pkg/controller/v1beta1/inferenceservice/components/predictor.go:500-512, "
               "reconcilers/deployment/deployment_reconciler.go:146 (app: isvc.<name>); "
               "config/runtimes/kserve-sklearnserver.yaml (no container port)",
        port_note="KServe's runtimes declare no named container port: use `portNumber: 8080` "
                  "(prometheus.kserve.io/port) or name the port in the ServingRuntime",
    ),
    # ---------------------------------------------------------------- KServe v0.20.0 on Knative v0.48.1
    Target(
        KNATIVE, ObjectKind.pod, "InferenceService predictor Pod (Serverless mode, a Knative revision)",
        labels={
            "serving.kserve.io/inferenceservice": named("<isvc>"),
            "component": named("predictor|transformer|explainer", r"predictor|transformer|explainer"),
            "serving.knative.dev/revision": named("<isvc>-predictor-<NNNNN>"),
            "serving.knative.dev/revisionUID": named("<uid>"),
            "serving.knative.dev/configuration": named("<isvc>-predictor"),
            "serving.knative.dev/configurationGeneration": named("<n>", r"[0-9]+"),
            "serving.knative.dev/configurationUID": named("<uid>"),
            "serving.knative.dev/service": named("<isvc>-predictor"),
            "serving.knative.dev/serviceUID": named("<uid>"),
            "app": named("<revision>", overridable=True),
        },
        identify=("serving.kserve.io/inferenceservice", "component"),
        ports=("user-port", "queue-port", "http-autometric", "http-usermetric", "aggr-metric"),
        metrics_ports=("http-usermetric", "user-port", "http-autometric", "aggr-metric"),
        open_labels=True,
        open_ports=False,
        source="knative serving pkg/reconciler/revision/resources/meta.go:49-63 (revision labels), "
               "pkg/reconciler/configuration/resources/revision.go:58-76, queue.go:45-73 (queue-proxy ports), "
               "deploy.go:321 (user-port), pkg/apis/serving/v1/revision_helpers.go:41-47; kserve "
               "reconcilers/knative/ksvc_reconciler.go:166-203 (isvc labels on the template), "
               "pkg/webhook/admission/pod/metrics_aggregate_injector.go:78-86 (aggr-metric 9088 when "
               "serving.kserve.io/enable-metric-aggregation)",
        port_note="queue-proxy serves its request metrics on http-usermetric (9091); the model server's own "
                  "metrics are on user-port (8080), both together on aggr-metric (9088) with metric aggregation",
    ),
    Target(
        KNATIVE, ObjectKind.service, "Knative revision private Service <revision>-private",
        labels={
            "serving.kserve.io/inferenceservice": named("<isvc>"),
            "component": named("predictor|transformer|explainer", r"predictor|transformer|explainer"),
            "serving.knative.dev/revision": named("<isvc>-predictor-<NNNNN>"),
            "serving.knative.dev/revisionUID": named("<uid>"),
            "serving.knative.dev/configuration": named("<isvc>-predictor"),
            "serving.knative.dev/configurationGeneration": named("<n>", r"[0-9]+"),
            "serving.knative.dev/configurationUID": named("<uid>"),
            "serving.knative.dev/service": named("<isvc>-predictor"),
            "serving.knative.dev/serviceUID": named("<uid>"),
            "app": named("<revision>", overridable=True),
            "networking.internal.knative.dev/serverlessservice": named("<revision>"),
            "networking.internal.knative.dev/serviceType": fixed("Private"),
        },
        identify=("serving.kserve.io/inferenceservice", "networking.internal.knative.dev/serviceType"),
        ports=("http", "http2", "https", "http-autometric", "http-usermetric", "http-istio", "http2-istio"),
        metrics_ports=("http-usermetric", "http-autometric"),
        open_labels=True,
        open_ports=False,
        source="knative serving pkg/reconciler/serverlessservice/resources/services.go:137-180 (labels and "
               "ports of the private Service), pkg/reconciler/autoscaling/resources/sks.go:34 and "
               "revision/resources/pa.go:37 (revision labels carried over); knative networking "
               "pkg/apis/networking/ports.go:34-40 (http, http2, https)",
        port_note="queue-proxy's request metrics are on http-usermetric (9091)",
    ),
    Target(
        KNATIVE, ObjectKind.service, "Knative revision public Service <revision>",
        labels={
            "serving.kserve.io/inferenceservice": named("<isvc>"),
            "component": named("predictor|transformer|explainer", r"predictor|transformer|explainer"),
            "serving.knative.dev/revision": named("<isvc>-predictor-<NNNNN>"),
            "serving.knative.dev/revisionUID": named("<uid>"),
            "serving.knative.dev/configuration": named("<isvc>-predictor"),
            "serving.knative.dev/configurationGeneration": named("<n>", r"[0-9]+"),
            "serving.knative.dev/configurationUID": named("<uid>"),
            "serving.knative.dev/service": named("<isvc>-predictor"),
            "serving.knative.dev/serviceUID": named("<uid>"),
            "app": named("<revision>", overridable=True),
            "networking.internal.knative.dev/serverlessservice": named("<revision>"),
            "networking.internal.knative.dev/serviceType": fixed("Public"),
        },
        identify=("serving.kserve.io/inferenceservice", "networking.internal.knative.dev/serviceType"),
        ports=("http", "http2", "https"),
        metrics_ports=(),
        open_labels=True,
        open_ports=False,
        source="knative serving pkg/reconciler/serverlessservice/resources/services.go:43-75 (public Service)",
        port_note="the public Service has no metrics port; select serviceType: Private, port http-usermetric",
    ),
)


def targets_of(kind: ObjectKind) -> tuple[Target, ...]:
    """The targets a monitor of ``kind`` can select."""
    return tuple(t for t in TARGETS if t.kind is kind)


def operator_key(key: str) -> bool:
    """True when a label key belongs to one of the operators (so a selector on it claims their objects)."""
    return key.startswith(OPERATOR_PREFIXES) or any(key in t.labels and not t.labels[key].overridable
                                                    and key not in ("component", "app") for t in TARGETS)
