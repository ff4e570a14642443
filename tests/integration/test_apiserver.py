"""The sandbox's Kubernetes API is the real one: built release, schema validation, server-side apply
ownership, strict field validation and RBAC all behave as a cluster's would."""

from __future__ import annotations

import uuid

import pytest
from kubernetes import client as k8s
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import ForbiddenError, UnprocessibleEntityError

from sandbox.paths import binary_version
from tasks import kube
from tasks.errors import PermanentError

pytestmark = pytest.mark.integration


@pytest.fixture
def namespace(dyn) -> str:
    name = f"t-{uuid.uuid4().hex[:8]}"
    kube.apply(dyn, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    return name


def ray_cluster(namespace: str, name: str, start_params: dict) -> dict:
    return {
        "apiVersion": "ray.io/v1",
        "kind": "RayCluster",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "rayVersion": "2.60.0",
            "headGroupSpec": {
                "rayStartParams": start_params,
                "template": {"spec": {"containers": [{"name": "ray-head", "image": "rayproject/ray:2.60.0"}]}},
            },
        },
    }


def inference_service(namespace: str, name: str, predictor: dict) -> dict:
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"predictor": predictor},
    }


def test_version_reports_the_built_release(dyn) -> None:
    info = k8s.VersionApi(dyn.client).get_code()
    assert info.git_version == binary_version("kube-apiserver")
    assert info.major == "1" and int(info.minor) >= 34


def test_ray_start_params_number_is_rejected_by_the_crd_schema(dyn, namespace) -> None:
    numeric = ray_cluster(namespace, "numeric", {"num-cpus": 2})
    resource = kube.resource_for(dyn, "ray.io/v1", "RayCluster")
    with pytest.raises(UnprocessibleEntityError, match=r"rayStartParams.num-cpus.*must be of type string"):
        resource.create(body=numeric, namespace=namespace)
    # Server-side apply reports the same mistake as HTTP 500; kaiops still treats it as permanent.
    with pytest.raises(PermanentError, match=r"rayStartParams.num-cpus: expected string"):
        kube.apply(dyn, numeric)
    assert not resource.get(namespace=namespace).items
    applied = kube.apply(dyn, ray_cluster(namespace, "quoted", {"num-cpus": "2"}))
    assert applied["spec"]["headGroupSpec"]["rayStartParams"] == {"num-cpus": "2"}


def test_second_field_manager_conflicts_on_an_owned_field(dyn, namespace) -> None:
    kube.apply(dyn, ray_cluster(namespace, "owned", {"num-cpus": "1"}))
    other = ray_cluster(namespace, "owned", {"num-cpus": "4"})
    with pytest.raises(kube.ApplyConflict, match="num-cpus"):
        kube.apply(dyn, other, field_manager="someone-else")
    current = kube.get(dyn, "ray.io/v1", "RayCluster", "owned", namespace)
    assert current["spec"]["headGroupSpec"]["rayStartParams"]["num-cpus"] == "1"
    forced = kube.apply(dyn, other, field_manager="someone-else", force=True)
    assert forced["spec"]["headGroupSpec"]["rayStartParams"]["num-cpus"] == "4"


def test_inference_service_unknown_field_is_rejected_with_strict_validation(dyn, namespace) -> None:
    bad = inference_service(namespace, "iris", {"model": {"modelFormat": {"name": "sklearn"},
                                                          "modelUri": "s3://models/iris/v1"}})
    with pytest.raises(PermanentError, match=r"modelUri"):
        kube.apply(dyn, bad)
    resource = kube.resource_for(dyn, "serving.kserve.io/v1beta1", "InferenceService")
    with pytest.raises(Exception, match=r"unknown field .*modelUri"):
        resource.create(body=bad, namespace=namespace, query_params=[("fieldValidation", "Strict")])
    assert not resource.get(namespace=namespace).items
    good = inference_service(namespace, "iris", {"model": {"modelFormat": {"name": "sklearn"},
                                                           "storageUri": "s3://models/iris/v1"}})
    assert kube.apply(dyn, good)["spec"]["predictor"]["model"]["storageUri"] == "s3://models/iris/v1"


def test_rbac_denies_a_service_account_a_verb_it_lacks(dyn, namespace) -> None:
    for obj in (
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "reader", "namespace": namespace}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
         "metadata": {"name": "read-configmaps", "namespace": namespace},
         "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
         "metadata": {"name": "reader", "namespace": namespace},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "read-configmaps"},
         "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": namespace}]},
    ):
        kube.apply(dyn, obj)
    token = k8s.CoreV1Api(dyn.client).create_namespaced_service_account_token(
        "reader", namespace, {"spec": {"audiences": [], "expirationSeconds": 600}}
    ).status.token

    cfg = k8s.Configuration()
    cfg.host = dyn.client.configuration.host
    cfg.ssl_ca_cert = dyn.client.configuration.ssl_ca_cert
    cfg.api_key = {"authorization": f"Bearer {token}"}
    as_reader = DynamicClient(k8s.ApiClient(cfg))
    configmaps = as_reader.resources.get(api_version="v1", kind="ConfigMap")

    # the only ConfigMap is the one kube-controller-manager's root-ca-cert-publisher puts in every namespace
    kube.wait_for(dyn, "v1", "ConfigMap", "kube-root-ca.crt", lambda o: True, namespace=namespace, timeout=60)
    assert [c.metadata.name for c in configmaps.get(namespace=namespace).items] == ["kube-root-ca.crt"]
    with pytest.raises(ForbiddenError, match="cannot create resource"):
        configmaps.create(body={"apiVersion": "v1", "kind": "ConfigMap",
                                "metadata": {"name": "x", "namespace": namespace}}, namespace=namespace)
    with pytest.raises(ForbiddenError):
        configmaps.get(namespace="default")
