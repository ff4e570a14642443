"""One module per sandbox service; :data:`SERVICES` lists them in start order (dependencies first)."""

from sandbox.services.apiserver import KubeApiserver
from sandbox.services.base import Service
from sandbox.services.etcd import Etcd
from sandbox.services.gcs import FakeGcs
from sandbox.services.kserve import KServe
from sandbox.services.kuberay import KubeRay
from sandbox.services.localmodel import LocalModel
from sandbox.services.mlflow import MlflowServer
from sandbox.services.prefect import PrefectServer
from sandbox.services.prometheus import Prometheus
from sandbox.services.ray import RayHead
from sandbox.services.s3 import MotoS3

SERVICES: dict[str, Service] = {
    s.name: s for s in (Etcd(), KubeApiserver(), Prometheus(), MotoS3(), FakeGcs(), RayHead(), PrefectServer(),
                        MlflowServer(), KubeRay(), KServe(), LocalModel())
}

__all__ = ["SERVICES", "Service"]
