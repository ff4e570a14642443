"""Pure Knative Ingress (KIngress) logic of the sandbox gateway: rule -> route translation, matching, splits,
appended headers, probe verdicts and the status written back, all with plain dicts."""

from __future__ import annotations

import random
from types import SimpleNamespace

import pytest

from sandbox.gateway import kingress as k
from sandbox.gateway.kingress_controller import lb_objects, service_domain, split_endpoints

pytestmark = pytest.mark.unit

NOW = "2026-12-02T01:00:00Z"


def ingress(rules: list[dict], name: str = "hello", ns: str = "demo", cls: str | None = k.INGRESS_CLASS,
            generation: int = 1, created: str = "2026-12-01T00:00:00Z", status: dict | None = None) -> dict:
    annotations = {"networking.knative.dev/ingress.class": cls} if cls is not None else {}
    obj = {"apiVersion": k.API_VERSION, "kind": "Ingress",
           "metadata": {"name": name, "namespace": ns, "generation": generation, "annotations": annotations,
                        "creationTimestamp": created},
           "spec": {"rules": rules}}
    if status is not None:
        obj["status"] = status
    return obj


def split(name: str, percent: int | None = None, port: int | str = 80, ns: str = "demo", **headers: str) -> dict:
    s: dict = {"serviceName": name, "serviceNamespace": ns, "servicePort": port}
    if percent is not None:
        s["percent"] = percent
    if headers:
        s["appendHeaders"] = headers
    return s


def rule(hosts: list[str], splits: list[dict], visibility: str | None = None, **path: object) -> dict:
    r: dict = {"hosts": hosts, "http": {"paths": [{"splits": splits, **path}]}}
    if visibility:
        r["visibility"] = visibility
    return r


# ------------------------------------------------------------------------------------------------ class

def test_the_class_annotation_decides_ownership_with_the_alternative_key_second() -> None:
    assert k.is_ours(ingress([]))
    assert not k.is_ours(ingress([], cls="kourier.ingress.networking.knative.dev"))
    assert not k.is_ours(ingress([], cls=None))  # no annotation: not ours (no default class)
    alt = ingress([], cls=None)
    alt["metadata"]["annotations"] = {"networking.knative.dev/ingress-class": k.INGRESS_CLASS}
    assert k.is_ours(alt)
    both = ingress([])
    both["metadata"]["annotations"]["networking.knative.dev/ingress-class"] = "other"
    assert k.ingress_class(both) == k.INGRESS_CLASS  # ingress.class wins over ingress-class


# ------------------------------------------------------------------------------------------ translation

def test_defaults_visibility_external_and_a_lone_split_at_100_percent() -> None:
    spec = k.defaulted_spec(ingress([rule(["a.example.com"], [split("blue")])]))
    assert spec["rules"][0]["visibility"] == "ExternalIP"
    assert spec["rules"][0]["http"]["paths"][0]["splits"][0]["percent"] == 100
    two = k.defaulted_spec(ingress([rule(["a"], [split("blue"), split("green", 100)])]))
    assert "percent" not in two["rules"][0]["http"]["paths"][0]["splits"][0]  # only a lone split is defaulted


def test_translate_puts_a_probe_copy_of_every_path_in_front() -> None:
    obj = ingress([rule(["a.example.com", "A.Example.com."], [split("blue", 80, Tag="b"), split("green", 20)],
                        appendHeaders={"Knative-Serving-Namespace": "demo"})])
    routes, digest = k.translate(obj)
    assert [r.headers for r in routes] == [(("k-network-hash", "override"),), ()]
    probe, real = routes
    assert ("K-Network-Hash", digest) in probe.append_headers
    assert ("Knative-Serving-Namespace", "demo") in probe.append_headers  # the probe keeps the path's headers
    assert real.append_headers == (("Knative-Serving-Namespace", "demo"),)
    assert real.hosts == ("a.example.com", "a.example.com")
    assert real.prefix == "/"
    assert [(s.name, s.percent, s.append_headers) for s in real.splits] == [
        ("blue", 80, (("Tag", "b"),)), ("green", 20, ())]
    assert real.ingress == ("demo", "hello") and real.visibility is k.Visibility.EXTERNAL


def test_the_hash_changes_with_the_spec_and_the_name_only() -> None:
    a = ingress([rule(["a"], [split("blue")])])
    same = ingress([rule(["a"], [split("blue", 100)])], generation=7, status={"conditions": []})
    other_spec = ingress([rule(["a"], [split("green")])])
    other_name = ingress([rule(["a"], [split("blue")])], name="bye")
    assert k.spec_hash(a) == k.spec_hash(same)  # defaulted first; metadata other than ns/name is not hashed
    assert len({k.spec_hash(a), k.spec_hash(other_spec), k.spec_hash(other_name)}) == 3


@pytest.mark.parametrize(("bad", "field"), [
    ({"hosts": ["a"]}, "spec.rules[0].http"),
    (rule(["a"], [split("blue")], path="v1"), "spec.rules[0].http.paths[0].path"),
    (rule(["a"], [{"serviceName": "x", "servicePort": 80}]), "spec.rules[0].http.paths[0].splits[0]"),
    (rule(["a"], [split("blue")], visibility="Public"), "spec.rules[0].visibility"),
])
def test_a_spec_that_cannot_be_programmed_names_the_field(bad: dict, field: str) -> None:
    with pytest.raises(k.SpecError, match=field.replace("[", r"\[").replace("]", r"\]")):
        k.translate(ingress([bad]))


# ---------------------------------------------------------------------------------------------- tables

def test_cluster_local_rules_are_only_on_the_local_listener() -> None:
    obj = ingress([rule(["hello.demo.example.com"], [split("blue")]),
                   rule(["hello.demo", "hello.demo.svc", "hello.demo.svc.cluster.local"], [split("blue")],
                        visibility="ClusterLocal")])
    routes, _ = k.translate(obj)
    tables, conflicts = k.build_tables({("demo", "hello"): routes}, {})
    assert not conflicts
    assert tables.routes_for("hello.demo.example.com", cluster_local=False)
    assert tables.routes_for("hello.demo.example.com:80", cluster_local=True)  # every rule is local too
    assert not tables.routes_for("hello.demo.svc.cluster.local", cluster_local=False)
    assert tables.routes_for("hello.demo.svc.cluster.local", cluster_local=True)
    assert tables.routes_for("HELLO.demo.", cluster_local=True)
    assert not tables.routes_for("nobody.example.com", cluster_local=True)


def test_a_rule_without_hosts_catches_every_other_host() -> None:
    routes, _ = k.translate(ingress([{"http": {"paths": [{"splits": [split("blue")]}]}}]))
    tables, _ = k.build_tables({("demo", "hello"): routes}, {})
    assert tables.routes_for("anything.example.com", cluster_local=False)[0].hosts == ("*",)


def test_a_host_claimed_by_an_older_ingress_is_refused_for_the_newer_one() -> None:
    old, _ = k.translate(ingress([rule(["a.example.com"], [split("blue")])], name="old"))
    new, _ = k.translate(ingress([rule(["a.example.com", "b.example.com"], [split("green")])], name="new"))
    created = {("demo", "old"): "2026-01-01T00:00:00Z", ("demo", "new"): "2026-02-01T00:00:00Z"}
    tables, conflicts = k.build_tables({("demo", "new"): new, ("demo", "old"): old}, created)
    assert set(conflicts) == {("demo", "new")} and "demo/old" in conflicts[("demo", "new")]
    assert tables.routes_for("a.example.com", False)[0].ingress == ("demo", "old")
    assert not tables.routes_for("b.example.com", False)  # the whole refused Ingress is out, as Kourier does


# -------------------------------------------------------------------------------------------- requests

def test_paths_match_as_literal_prefixes_in_order_with_exact_headers() -> None:
    obj = ingress([{"hosts": ["a"], "http": {"paths": [
        {"path": "/v1/models", "headers": {"Knative-Serving-Tag": {"exact": "canary"}}, "splits": [split("canary")]},
        {"path": "/v1", "splits": [split("v1")]},
        {"splits": [split("rest")]}]}}])
    routes, _ = k.translate(obj)
    real = routes[3:]  # the three probe copies come first
    assert k.match(real, "/v1/models/x:predict", {"knative-serving-tag": "canary"}).splits[0].name == "canary"
    assert k.match(real, "/v1/models/x:predict", {"Knative-Serving-Tag": "other"}).splits[0].name == "v1"
    assert k.match(real, "/v10?x=1", {}).splits[0].name == "v1"  # a literal prefix, not path elements
    assert k.match(real, "/healthz", {}).splits[0].name == "rest"
    assert k.match(routes, "/healthz", {"K-Network-Hash": "override"}) is routes[2]  # probes hit probe copies
    assert k.match(routes[:1], "/other", {}) is None


def test_splits_are_chosen_in_proportion_to_percent_and_zero_never() -> None:
    splits = (k.Split("demo", "blue", 80, 80), k.Split("demo", "green", 80, 20), k.Split("demo", "off", 80, 0))
    rng = random.Random(7)
    picks = [k.choose(splits, rng).name for _ in range(10_000)]
    assert "off" not in picks
    # 8000 expected, sd 40: a band of 6 sd never fails for this fixed seed and is meaningful for any
    assert abs(picks.count("blue") - 8000) < 240
    assert k.choose((k.Split("demo", "x", 80, 0),), rng) is None
    assert k.choose((), rng) is None


def test_appended_headers_overwrite_and_the_path_wins_over_the_split() -> None:
    route = k.Route(("demo", "hello"), ("a",), k.Visibility.EXTERNAL, "/", (),
                    (), (("Knative-Serving-Namespace", "demo"), ("X-Both", "path")), rewrite_host="hello.internal")
    chosen = k.Split("demo", "blue", 80, 100, (("Knative-Serving-Revision", "blue"), ("x-both", "split")))
    out = k.request_headers(route, chosen, {"host": "a", "knative-serving-revision": "forged", "Accept": "*/*"})
    assert out == {"Accept": "*/*", "Knative-Serving-Revision": "blue", "Knative-Serving-Namespace": "demo",
                   "X-Both": "path", "Host": "hello.internal"}


# ---------------------------------------------------------------------------------------------- probes

def test_probe_targets_follow_the_rule_visibility() -> None:
    obj = ingress([rule(["a.example.com"], [split("blue")]),
                   rule(["a.demo.svc.cluster.local"], [split("blue")], visibility="ClusterLocal")])
    routes, _ = k.translate(obj)
    assert k.probe_targets(routes) == [("a.example.com", False), ("a.demo.svc.cluster.local", True)]


def test_probe_verdicts_are_upstreams() -> None:
    assert k.probe_verdict(200, "abc", "abc") is True
    assert k.probe_verdict(200, "old", "abc") is False  # an older programming still answers
    assert k.probe_verdict(404, None, "abc") is False and k.probe_verdict(503, None, "abc") is False
    assert k.probe_verdict(200, None, "abc") is None  # no hash echoed: given up on, counted as success
    assert k.probe_verdict(302, None, "abc") is None


# ---------------------------------------------------------------------------------------------- status

def conds(st: dict) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c.get("reason", "")) for c in st["conditions"]}


def test_status_before_probes_answer_is_unknown_and_names_no_load_balancer() -> None:
    st = k.status(ingress([], generation=3), configured=True, ready=False, now=NOW,
                  public_domain="pub", private_domain="priv")
    assert [c["type"] for c in st["conditions"]] == ["LoadBalancerReady", "NetworkConfigured", "Ready"]
    assert conds(st) == {"LoadBalancerReady": ("Unknown", "Uninitialized"), "NetworkConfigured": ("True", ""),
                         "Ready": ("Unknown", "Uninitialized")}
    assert st["observedGeneration"] == 3 and "publicLoadBalancer" not in st


def test_status_once_ready_names_both_load_balancers_by_domain_internal() -> None:
    st = k.status(ingress([], generation=2), configured=True, ready=True, now=NOW,
                  public_domain=service_domain("gateway"), private_domain=service_domain("gateway-internal"))
    assert conds(st) == {"LoadBalancerReady": ("True", ""), "NetworkConfigured": ("True", ""), "Ready": ("True", "")}
    assert st["publicLoadBalancer"] == {"ingress": [{"domainInternal": "gateway.kaiops-sandbox.svc.cluster.local"}]}
    assert st["privateLoadBalancer"] == {
        "ingress": [{"domainInternal": "gateway-internal.kaiops-sandbox.svc.cluster.local"}]}


def test_status_keeps_transition_times_while_nothing_changes() -> None:
    first = k.status(ingress([]), configured=True, ready=True, now=NOW, public_domain="p", private_domain="q")
    again = k.status(ingress([], status=first), configured=True, ready=True, now="2026-12-02T02:00:00Z",
                     public_domain="p", private_domain="q")
    assert again == first and k.same_status(first, again)
    later = k.status(ingress([], generation=2, status=first), configured=True, ready=False,
                     now="2026-12-02T02:00:00Z", public_domain="p", private_domain="q")
    assert not k.same_status(first, later)
    by_type = {c["type"]: c["lastTransitionTime"] for c in later["conditions"]}
    assert by_type == {"LoadBalancerReady": "2026-12-02T02:00:00Z", "NetworkConfigured": NOW,
                       "Ready": "2026-12-02T02:00:00Z"}


def test_status_of_a_conflict_and_of_an_unprogrammable_spec() -> None:
    st = k.status(ingress([]), configured=True, ready=True, now=NOW, public_domain="p", private_domain="q",
                  failure=("DomainConflict", "Ingress rejected: host 'a' is already served"))
    assert conds(st)["LoadBalancerReady"] == ("False", "DomainConflict") == conds(st)["Ready"]
    assert "publicLoadBalancer" not in st
    bad = k.status(ingress([]), configured=False, ready=False, now=NOW, public_domain="", private_domain="",
                   failure=("ReconcileIngressFailed", "spec.rules[0].http: rule is missing HTTP block"))
    assert conds(bad)["Ready"] == ("Unknown", "ReconcileIngressFailed")
    assert conds(bad)["NetworkConfigured"] == ("Unknown", "")


# ------------------------------------------------------------------------------------------ endpoints

def _svc(ns: str, name: str, ports: list[tuple[str, int]]) -> SimpleNamespace:
    return SimpleNamespace(spec=SimpleNamespace(ports=[SimpleNamespace(name=n, port=p) for n, p in ports]))


def _slice(port_name: str, port: int, eps: list[tuple[str, bool]]) -> SimpleNamespace:
    return SimpleNamespace(ports=[SimpleNamespace(name=port_name, port=port)],
                           endpoints=[SimpleNamespace(addresses=[ip], conditions=SimpleNamespace(ready=r))
                                      for ip, r in eps])


def test_split_endpoints_by_service_port_number_or_name_ready_only() -> None:
    services = {("demo", "blue"): _svc("demo", "blue", [("http", 80)])}
    slices = {("demo", "blue"): [_slice("http", 8012, [("10.1.0.2", True), ("10.1.0.3", False)])]}
    assert split_endpoints("demo", "blue", 80, services, slices) == (("10.1.0.2", 8012),)
    assert split_endpoints("demo", "blue", "http", services, slices) == (("10.1.0.2", 8012),)
    assert split_endpoints("demo", "blue", 81, services, slices) == ()
    assert split_endpoints("demo", "green", 80, services, slices) == ()
    ok, missing = k.endpoints_ready(k.translate(ingress([rule(["a"], [split("blue"), split("green")])]))[0],
                                    lambda ns, n, p: bool(split_endpoints(ns, n, p, services, slices)))
    assert (ok, missing) == (False, "demo/green:80")


def test_lb_objects_point_both_services_at_the_host_address() -> None:
    objs = lb_objects("10.200.3.1", 41000, 41001)
    slices = {o["metadata"]["name"]: o for o in objs if o["kind"] == "EndpointSlice"}
    assert slices["gateway-host"]["endpoints"][0]["addresses"] == ["10.200.3.1"]
    assert slices["gateway-host"]["ports"][0]["port"] == 41000
    assert slices["gateway-internal-host"]["ports"][0]["port"] == 41001
    assert slices["gateway-internal-host"]["metadata"]["labels"]["kubernetes.io/service-name"] == "gateway-internal"
    svcs = [o for o in objs if o["kind"] == "Service"]
    assert {s["metadata"]["name"] for s in svcs} == {"gateway", "gateway-internal"}
    assert all(s["spec"]["ports"][0]["port"] == 80 and "selector" not in s["spec"] for s in svcs)


def test_the_catch_all_can_be_left_out_so_httproutes_come_before_it() -> None:
    routes, _ = k.translate(ingress([{"http": {"paths": [{"splits": [split("blue")]}]}}]))
    tables, _ = k.build_tables({("demo", "hello"): routes}, {})
    assert tables.routes_for("route.example.com", cluster_local=False, catch_all=False) == []
    assert tables.routes_for("route.example.com", cluster_local=False)
