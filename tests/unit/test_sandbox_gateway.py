"""Pure Gateway API logic of the sandbox gateway and the sandbox changes to KServe's release manifests."""

from __future__ import annotations

import base64
import json
import random

import pytest

from sandbox.gateway import model
from sandbox.gateway.server import granted, resolve_backend
from sandbox.kserve_upstream import release

pytestmark = pytest.mark.unit

GW = {"metadata": {"name": "kserve-ingress-gateway", "namespace": "kserve", "generation": 1},
      "spec": {"gatewayClassName": "kaiops-sandbox",
               "listeners": [{"name": "http", "protocol": "HTTP", "port": 80,
                              "allowedRoutes": {"namespaces": {"from": "All"}}}]}}


def backend(name: str, weight: int = 1, valid: bool = True) -> model.BackendRef:
    return model.BackendRef("ns", name, 80, weight, valid, "" if valid else "BackendNotFound", (("10.1.0.2", 8080),))


def route(name: str, rules: list, hostnames: list | None = None, created: str = "2026-01-01T00:00:00Z") -> dict:
    return {"metadata": {"name": name, "namespace": "ns", "generation": 2, "creationTimestamp": created},
            "spec": {"hostnames": hostnames or [], "parentRefs": [{"name": "kserve-ingress-gateway",
                                                                   "namespace": "kserve"}], "rules": rules}}


def table_of(*routes: dict) -> model.Table:
    table = model.Table()
    for r in routes:
        for h in model.route_hosts(r):
            table.by_host.setdefault(h, []).extend(
                model.rules_of(r, lambda ns, ref: backend(ref["name"], int(ref.get("weight", 1)))))
    return table


def test_exact_host_wins_over_wildcard_and_catch_all() -> None:
    t = table_of(route("a", [{"backendRefs": [{"name": "exact"}]}], ["iris-ns.example.com"]),
                 route("b", [{"backendRefs": [{"name": "wild"}]}], ["*.example.com"]),
                 route("c", [{"backendRefs": [{"name": "any"}]}]))
    assert model.match(t, "iris-ns.example.com:8080", "/v1/models/iris:predict", "POST", {}).backends[0].name == "exact"
    assert model.match(t, "other.example.com", "/", "GET", {}).backends[0].name == "wild"
    assert model.match(t, "example.com", "/", "GET", {}).backends[0].name == "any"  # wildcard needs a label


def test_path_precedence_exact_then_longest_prefix_and_prefix_is_element_wise() -> None:
    r = route("r", [{"matches": [{"path": {"type": "PathPrefix", "value": "/"}}], "backendRefs": [{"name": "root"}]},
                    {"matches": [{"path": {"type": "PathPrefix", "value": "/v1"}}], "backendRefs": [{"name": "v1"}]},
                    {"matches": [{"path": {"type": "Exact", "value": "/v1/x"}}], "backendRefs": [{"name": "x"}]}])
    t = table_of(r)
    assert model.match(t, "h", "/v1/x", "GET", {}).backends[0].name == "x"
    assert model.match(t, "h", "/v1/y?z=1", "GET", {}).backends[0].name == "v1"
    assert model.match(t, "h", "/v10", "GET", {}).backends[0].name == "root"


def test_header_and_method_matches() -> None:
    r = route("r", [{"matches": [{"headers": [{"name": "Content-Type", "value": "application/grpc"}]}],
                     "backendRefs": [{"name": "grpc"}]},
                    {"matches": [{"method": "GET"}], "backendRefs": [{"name": "get"}]},
                    {"backendRefs": [{"name": "rest"}]}])
    t = table_of(r)
    assert model.match(t, "h", "/", "POST", {"content-type": "application/grpc"}).backends[0].name == "grpc"
    assert model.match(t, "h", "/", "GET", {}).backends[0].name == "get"
    assert model.match(t, "h", "/", "POST", {}).backends[0].name == "rest"


def test_no_route_for_unknown_host() -> None:
    assert model.match(table_of(route("a", [{}], ["a.example.com"])), "b.example.com", "/", "GET", {}) is None


def test_weights_split_and_zero_is_never_chosen() -> None:
    rng = random.Random(7)
    picks = [model.choose((backend("old", 90), backend("new", 10), backend("off", 0)), rng).name
             for _ in range(4000)]
    assert "off" not in picks
    assert 0.07 < picks.count("new") / len(picks) < 0.13
    assert model.choose((backend("off", 0),), rng) is None


def test_invalid_backend_keeps_its_share_so_the_gateway_answers_500() -> None:
    rng = random.Random(1)
    picks = [model.choose((backend("ok", 1), backend("gone", 1, valid=False)), rng) for _ in range(1000)]
    assert 400 < sum(not p.valid for p in picks) < 600


def test_request_header_modifier_set_add_remove() -> None:
    r = route("r", [{"filters": [{"type": "RequestHeaderModifier", "requestHeaderModifier": {
        "set": [{"name": "KServe-Isvc-Name", "value": "iris"}], "add": [{"name": "X-A", "value": "2"}],
        "remove": ["X-Drop"]}}], "backendRefs": [{"name": "b"}]}])
    rule = model.rules_of(r, lambda ns, ref: backend(ref["name"]))[0]
    out = model.apply_header_filters(rule, {"kserve-isvc-name": "evil", "x-a": "1", "X-Drop": "y", "Host": "h"})
    assert out == {"Host": "h", "KServe-Isvc-Name": "iris", "X-A": "1,2"}


def test_durations() -> None:
    assert model.duration_s("60s") == 60 and model.duration_s("1m30s") == 90 and model.duration_s("500ms") == 0.5
    assert model.duration_s("0s") is None and model.duration_s(None) is None


def test_route_status_accepted_and_resolved_refs_false_names_the_backend() -> None:
    r = route("r", [{}])
    ref = r["spec"]["parentRefs"][0]
    st = model.route_parent_status(r, ref, True, "Accepted", [backend("gone", valid=False)], "2026-12-01T00:00:00Z")
    conds = {c["type"]: c for c in st["conditions"]}
    assert st["controllerName"] == model.CONTROLLER_NAME and st["parentRef"] == ref
    assert conds["Accepted"]["status"] == "True" and conds["Accepted"]["observedGeneration"] == 2
    assert conds["ResolvedRefs"]["status"] == "False" and conds["ResolvedRefs"]["reason"] == "BackendNotFound"
    # another controller's entry survives; ours is replaced; an unchanged status keeps its transition time
    other = {"parentRef": ref, "controllerName": "istio.io/gateway-controller", "conditions": []}
    merged = model.merge_parents([other, st], [st])
    assert merged == [other, st]
    r["status"] = {"parents": merged}
    again = model.route_parent_status(r, ref, True, "Accepted", [backend("gone", valid=False)], "2026-12-02T00:00:00Z")
    assert again == st


def test_listener_namespace_policy() -> None:
    same = {"allowedRoutes": {"namespaces": {"from": "Same"}}}
    sel = {"allowedRoutes": {"namespaces": {"from": "Selector", "selector": {"matchLabels": {"gw": "yes"}}}}}
    assert model.listener_allows({}, "kserve", "kserve") and not model.listener_allows({}, "ns", "kserve")
    assert not model.listener_allows(same, "ns", "kserve")
    assert model.listener_allows(sel, "ns", "kserve", {"gw": "yes"}) and not model.listener_allows(sel, "ns", "kserve")
    assert model.parent_ref_matches({"name": "kserve-ingress-gateway", "namespace": "kserve"}, "ns", GW)
    assert not model.parent_ref_matches({"name": "kserve-ingress-gateway"}, "ns", GW)  # namespace defaults to ns


def test_gateway_status_counts_attached_routes_and_refuses_non_http_listeners() -> None:
    gw = {**GW, "spec": {**GW["spec"], "listeners": [*GW["spec"]["listeners"],
                                                      {"name": "tls", "protocol": "TLS", "port": 443}]}}
    st = model.gateway_status(gw, {"http": 3}, "127.0.0.1", "t")
    assert {c["type"]: c["status"] for c in st["conditions"]} == {"Accepted": "True", "Programmed": "True"}
    http, tls = st["listeners"]
    assert http["attachedRoutes"] == 3 and http["supportedKinds"] == [{"group": model.GROUP, "kind": "HTTPRoute"}]
    assert {c["type"]: c["reason"] for c in tls["conditions"]}["Accepted"] == "UnsupportedProtocol"


class _Obj:
    def __init__(self, **kw) -> None:
        self.__dict__.update(kw)


def _svc(ns: str, name: str, port: int, port_name: str | None) -> _Obj:
    return _Obj(metadata=_Obj(namespace=ns, name=name), spec=_Obj(ports=[_Obj(port=port, name=port_name)]))


def _slice(port: int, port_name: str | None, addresses: list[str], ready: bool = True) -> _Obj:
    return _Obj(ports=[_Obj(port=port, name=port_name)],
                endpoints=[_Obj(addresses=[a], conditions=_Obj(ready=ready)) for a in addresses])


def test_backend_resolution_to_ready_endpoints_by_port_name() -> None:
    services = {("ns", "iris-predictor"): _svc("ns", "iris-predictor", 80, "http")}
    slices = {("ns", "iris-predictor"): [_slice(8080, "http", ["10.1.0.5", "10.1.0.4"]),
                                          _slice(8080, "http", ["10.1.0.9"], ready=False)]}
    b = resolve_backend("ns", {"name": "iris-predictor", "port": 80}, services, slices, [])
    assert b.valid and b.endpoints == (("10.1.0.4", 8080), ("10.1.0.5", 8080))
    assert resolve_backend("ns", {"name": "nope", "port": 80}, services, slices, []).reason == "BackendNotFound"
    pod_ref = {"name": "x", "kind": "Pod", "group": ""}
    assert resolve_backend("ns", pod_ref, services, slices, []).reason == "InvalidKind"
    other = resolve_backend("other", {"name": "iris-predictor", "namespace": "ns", "port": 80}, services, slices, [])
    assert other.reason == "RefNotPermitted"
    grant = {"metadata": {"namespace": "ns"}, "spec": {
        "from": [{"group": model.GROUP, "kind": "HTTPRoute", "namespace": "other"}],
        "to": [{"group": "", "kind": "Service"}]}}
    assert granted([grant], "other", "ns", "iris-predictor")
    assert resolve_backend("other", {"name": "iris-predictor", "namespace": "ns", "port": 80}, services, slices,
                           [grant]).valid


# ------------------------------------------------------------------------------- KServe release adjustments

RENDERED = [
    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kserve"}},
    {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
     "metadata": {"name": "inferenceservices.serving.kserve.io",
                  "annotations": {"cert-manager.io/inject-ca-from": "kserve/serving-cert"}}},
    {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "kserve-controller-manager",
                                                                 "namespace": "kserve"}},
    {"apiVersion": "cert-manager.io/v1", "kind": "Certificate", "metadata": {"name": "serving-cert"}},
    {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "kserve-webhook-server-service",
                                                         "namespace": "kserve"},
     "spec": {"ports": [{"port": 443, "targetPort": "webhook-server"}],
              "selector": {"control-plane": "kserve-controller-manager"}}},
    {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "inferenceservice-config", "namespace": "kserve"},
     "data": {"deploy": '{"defaultDeploymentMode": "Serverless"}',
              "ingress": '{"enableGatewayApi": false, "ingressClassName": "istio", "urlScheme": "http"}',
              "inferenceService": '{"resource": {"cpuLimit": "1", "cpuRequest": "1", "memoryRequest": "2Gi"}}',
              "storageInitializer": '{"image": "kserve/storage-initializer:latest"}'}},
    {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
     "metadata": {"name": "inferenceservice.serving.kserve.io",
                  "annotations": {"cert-manager.io/inject-ca-from": "kserve/serving-cert"}},
     "webhooks": [{"name": "a", "clientConfig": {"service": {"name": "kserve-webhook-server-service",
                                                             "namespace": "kserve", "path": "/mutate-pods"}}}]},
]


def test_sandbox_objects_apply_exactly_the_listed_changes() -> None:
    out = release.sandbox_objects(RENDERED, "10.200.3.2", b"-----CA-----")
    kinds = [(o["kind"], o["metadata"]["name"]) for o in out]
    assert ("CustomResourceDefinition", "inferenceservices.serving.kserve.io") not in kinds
    assert ("Deployment", "kserve-controller-manager") not in kinds and ("Certificate", "serving-cert") not in kinds
    svc = next(o for o in out if o["kind"] == "Service")
    assert "selector" not in svc["spec"] and svc["spec"]["ports"] == [{"port": 443, "targetPort": "webhook-server"}]
    hook = next(o for o in out if o["kind"] == "MutatingWebhookConfiguration")
    assert "cert-manager.io/inject-ca-from" not in hook["metadata"]["annotations"]
    assert base64.b64decode(hook["webhooks"][0]["clientConfig"]["caBundle"]) == b"-----CA-----"
    assert hook["webhooks"][0]["clientConfig"]["service"]["path"] == "/mutate-pods"  # release's reference kept
    cm = next(o for o in out if o["kind"] == "ConfigMap")["data"]
    assert json.loads(cm["deploy"]) == {"defaultDeploymentMode": "Standard"}
    ingress = json.loads(cm["ingress"])
    assert ingress["enableGatewayApi"] is True and ingress["ingressClassName"] == "kaiops-sandbox"
    assert ingress["kserveIngressGateway"] == "kserve/kserve-ingress-gateway" and ingress["urlScheme"] == "http"
    # change 6: kaiops's rollout record keys join serviceAnnotationDisallowedList, the rest is as released
    isvc_cfg, released_cfg = json.loads(cm["inferenceService"]), json.loads(RENDERED[5]["data"]["inferenceService"])
    from tasks.rollout.state import record_annotation_keys

    assert isvc_cfg.pop("serviceAnnotationDisallowedList") == record_annotation_keys()
    assert isvc_cfg == released_cfg
    assert cm["storageInitializer"] == RENDERED[5]["data"]["storageInitializer"]  # untouched
    eps = out[-1]
    assert eps["kind"] == "EndpointSlice" and eps["endpoints"][0]["addresses"] == ["10.200.3.2"]
    assert eps["metadata"]["labels"]["kubernetes.io/service-name"] == "kserve-webhook-server-service"
    assert eps["ports"] == [{"name": "", "port": 9443, "protocol": "TCP"}]
    assert RENDERED[4]["spec"]["selector"]  # input untouched
    ordered = release.order(out)
    assert ordered[0]["kind"] == "Namespace" and ordered[-1]["kind"] == "MutatingWebhookConfiguration"
