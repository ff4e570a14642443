"""One module per sandbox service; :data:`SERVICES` lists them in start order (dependencies first)."""

from sandbox.services.apiserver import KubeApiserver
from sandbox.services.base import Service
from sandbox.services.controller_manager import KubeControllerManager
from sandbox.services.coredns import CoreDns
from sandbox.services.etcd import Etcd
from sandbox.services.gateway import Gateway
from sandbox.services.gcs import FakeGcs
from sandbox.services.knative import Knative
from sandbox.services.kserve import KServe
from sandbox.services.kserve_controller import KServeController, KServeServerless
from sandbox.services.kube_proxy import KubeProxy
from sandbox.services.kuberay import KubeRay
from sandbox.services.kuberay_redis import Redis
from sandbox.services.localmodel import LocalModel
from sandbox.services.metrics_server import MetricsServer
from sandbox.services.mlflow import MlflowServer
from sandbox.services.net import Net
from sandbox.services.node import Node
from sandbox.services.prefect import PrefectServer
from sandbox.services.prometheus import Prometheus
from sandbox.services.prometheus_operator import PrometheusOperator
from sandbox.services.ray import RayHead
from sandbox.services.s3 import MotoS3
from sandbox.services.scheduler import KubeScheduler

SERVICES: dict[str, Service] = {
    s.name: s for s in (Etcd(), Net(), KubeApiserver(), KubeControllerManager(), KubeScheduler(), Node(),
                        KubeProxy(), CoreDns(), MetricsServer(),
                        Prometheus(), MotoS3(), FakeGcs(), RayHead(), PrefectServer(),
                        MlflowServer(), Redis(), KubeRay(), KServe(), LocalModel(), Gateway(),
                        KServeController(), Knative(), KServeServerless(), PrometheusOperator())
}

__all__ = ["SERVICES", "Service"]
