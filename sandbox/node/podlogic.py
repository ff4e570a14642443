"""Pure kubelet logic of the node agent (no processes, no API calls): unit-tested with plain dicts.

Rules follow the kubelet v1.35 (``pkg/kubelet/kubelet_pods.go``, ``third_party/forked/golang/expansion``,
``pkg/kubelet/container/helpers.go``) as documented on kubernetes.io: ``$(VAR)`` expansion, command/args
versus the image's ENTRYPOINT/CMD, env precedence, service-link variables, resourceFieldRef divisors, Pod
phase from container states, QoS class, DNS files.
"""

from __future__ import annotations

import fnmatch
import math
import re
import sys
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

CATALOG = Path(__file__).with_name("images.yaml")


class CatalogError(LookupError):
    """An image reference that is not in the catalog (the Pod shows ErrImagePull)."""


@dataclass(frozen=True)
class Image:
    """One catalog entry resolved for an image reference (placeholders filled)."""

    ref: str
    rootfs: str  # "busybox" | "host"
    paths: tuple[str, ...] = ()
    hide: tuple[str, ...] = ()
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    working_dir: str = "/"
    env: dict[str, str] = field(default_factory=dict)
    binds: dict[str, str] = field(default_factory=dict)  # path in the image -> host file bound read-only there


def placeholders() -> dict[str, str]:
    """Values of the catalog's ``{venv}``, ``{python}``, ``{repo}`` and ``{bin}`` placeholders on this machine."""
    from tasks.crds import REPO_ROOT, cache_root

    return {"venv": sys.prefix, "python": sys.base_prefix, "repo": str(REPO_ROOT), "bin": str(cache_root() / "bin")}


def normalize_ref(ref: str) -> str:
    """``docker.io/library/busybox:1.36@sha256:..`` -> ``busybox:1.36`` (registry prefix and digest dropped)."""
    ref = ref.split("@", 1)[0]
    for prefix in ("docker.io/library/", "docker.io/", "index.docker.io/library/", "library/"):
        if ref.startswith(prefix):
            ref = ref[len(prefix):]
    return ref


def load_catalog(path: Path = CATALOG) -> list[dict[str, Any]]:
    """The catalog's entries (``images:`` list). Raises ValueError naming the file for a bad layout."""
    raw = yaml.safe_load(path.read_text()) or {}
    entries = raw.get("images")
    if not isinstance(entries, list):
        raise ValueError(f"{path}: top-level 'images:' must be a list of entries")
    for i, e in enumerate(entries):
        if not isinstance(e, dict) or not e.get("match") or e.get("rootfs") not in ("busybox", "host"):
            raise ValueError(f"{path}: images[{i}] needs 'match' (list) and 'rootfs' (busybox or host)")
    return entries


def resolve_image(ref: str, entries: list[dict[str, Any]], values: dict[str, str],
                  path: Path = CATALOG) -> Image:
    """Resolve image reference ``ref`` against the catalog ``entries``.

    Raises:
        CatalogError: no entry matches; the message names the catalog file (the Pod's ErrImagePull message).
    """
    name = normalize_ref(ref)
    candidates = {name} | ({name + ":latest"} if ":" not in name.rsplit("/", 1)[-1] else set())
    for e in entries:
        if any(fnmatch.fnmatchcase(c, m) for c in candidates for m in e["match"]):
            def fill(s: str) -> str:
                return s.format(**values)
            return Image(
                ref=ref, rootfs=e["rootfs"], paths=tuple(fill(p) for p in e.get("paths", [])),
                hide=tuple(e.get("hide", [])), entrypoint=tuple(fill(p) for p in e.get("entrypoint", [])),
                cmd=tuple(fill(p) for p in e.get("cmd", [])), working_dir=e.get("workingDir", "/"),
                env={k: fill(str(v)) for k, v in (e.get("env") or {}).items()},
                binds={dst: fill(str(src)) for dst, src in (e.get("binds") or {}).items()},
            )
    raise CatalogError(f'Failed to pull image "{ref}": image is not in the sandbox image catalog {path} '
                       "(the sandbox node runs catalog images only; add an entry there)")


# ------------------------------------------------------------------------------------------- expansion

_VAR = re.compile(r"\$\$|\$\(([^)]*)\)")


def expand(value: str, env: dict[str, str]) -> str:
    """Kubernetes ``$(VAR)`` expansion: defined variables are replaced, ``$$`` becomes ``$``, an undefined
    ``$(VAR)`` stays as written (``third_party/forked/golang/expansion``)."""

    def sub(m: re.Match) -> str:
        if m.group(0) == "$$":
            return "$"
        name = m.group(1)
        return env[name] if name in env else m.group(0)

    return _VAR.sub(sub, value)


def command_line(container: dict, image: Image, env: dict[str, str]) -> list[str]:
    """The argv a container runs: ``command`` replaces ENTRYPOINT and drops CMD; ``args`` replace CMD.

    Raises ValueError when nothing is left to run (no command, no args, no image entrypoint/cmd).
    """
    command = container.get("command")
    args = container.get("args")
    if command:
        argv = list(command) + list(args or [])
    else:
        argv = list(image.entrypoint) + (list(args) if args else list(image.cmd))
    if not argv:
        raise ValueError(f"container {container.get('name')}: no command specified")
    return [expand(a, env) for a in argv]


# ---------------------------------------------------------------------------------------- quantities

_SUFFIX = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
           "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "": 1, "k": 10**3, "M": 10**6,
           "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18}


def quantity(q: str | int | float) -> Decimal:
    """A Kubernetes quantity (``500m``, ``1Gi``, ``2``, ``1e3``) as a Decimal. Raises ValueError."""
    s = str(q).strip()
    m = re.fullmatch(r"([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)([A-Za-z]*)", s)
    if not m or m.group(2) not in _SUFFIX:
        raise ValueError(f"not a Kubernetes quantity: {q!r}")
    return Decimal(m.group(1)) * Decimal(_SUFFIX[m.group(2)])


def resource_field(container: dict, resource: str, divisor: str | None, node_allocatable: dict[str, str]) -> str:
    """Value of a ``resourceFieldRef`` (``limits.cpu``, ``requests.memory``, ...), rounded up by ``divisor``.

    An unset limit resolves to the node's allocatable (as the kubelet does); an unset request to 0
    (cpu requests: the limit when only the limit is set, as defaulting would).
    """
    kind, _, name = resource.partition(".")
    res = container.get("resources") or {}
    value = (res.get(kind) or {}).get(name)
    if value is None and kind == "requests":
        value = (res.get("limits") or {}).get(name)
    if value is None:
        value = node_allocatable.get(name, "0") if kind == "limits" else "0"
    d = quantity(divisor or "1")
    return str(math.ceil(quantity(value) / d))


# --------------------------------------------------------------------------------------------- env


def field_value(pod: dict, path: str) -> str:
    """Value of a downward-API ``fieldRef.fieldPath`` for ``pod``. Raises ValueError for unsupported paths."""
    meta, spec, status = pod.get("metadata", {}), pod.get("spec", {}), pod.get("status", {})
    m = re.fullmatch(r"metadata\.(labels|annotations)\['([^']+)'\]", path)
    if m:
        return str((meta.get(m.group(1)) or {}).get(m.group(2), ""))
    simple = {
        "metadata.name": meta.get("name"), "metadata.namespace": meta.get("namespace"),
        "metadata.uid": meta.get("uid"), "spec.nodeName": spec.get("nodeName"),
        "spec.serviceAccountName": spec.get("serviceAccountName") or "default",
        "status.hostIP": status.get("hostIP"), "status.podIP": status.get("podIP"),
        "status.hostIPs": ",".join(i["ip"] for i in status.get("hostIPs") or []),
        "status.podIPs": ",".join(i["ip"] for i in status.get("podIPs") or []),
    }
    if path in ("metadata.labels", "metadata.annotations"):
        items = meta.get(path.split(".")[1]) or {}
        return "\n".join(f'{k}="{v}"' for k, v in sorted(items.items()))
    if path not in simple:
        raise ValueError(f"fieldRef.fieldPath {path!r} is not supported")
    return str(simple[path] or "")


def service_env(services: list[dict]) -> dict[str, str]:
    """Docker-link style variables for Services (``FOO_SERVICE_HOST``, ``FOO_PORT_80_TCP``, ...), as the
    kubelet sets them for every Service of the Pod's namespace (enableServiceLinks) and ``kubernetes``."""
    out: dict[str, str] = {}
    for svc in services:
        ip = (svc.get("spec") or {}).get("clusterIP")
        ports = (svc.get("spec") or {}).get("ports") or []
        if not ip or ip == "None" or not ports:
            continue
        name = svc["metadata"]["name"].upper().replace("-", "_")
        out[f"{name}_SERVICE_HOST"] = ip
        out[f"{name}_SERVICE_PORT"] = str(ports[0]["port"])
        for p in ports:
            if p.get("name"):
                out[f"{name}_SERVICE_PORT_{p['name'].upper().replace('-', '_')}"] = str(p["port"])
        first = ports[0]
        out[f"{name}_PORT"] = f"{first.get('protocol', 'TCP').lower()}://{ip}:{first['port']}"
        for p in ports:
            proto = p.get("protocol", "TCP")
            base = f"{name}_PORT_{p['port']}_{proto}"
            out[base] = f"{proto.lower()}://{ip}:{p['port']}"
            out[f"{base}_PROTO"] = proto.lower()
            out[f"{base}_PORT"] = str(p["port"])
            out[f"{base}_ADDR"] = ip
    return out


class EnvError(ValueError):
    """A referenced ConfigMap/Secret/key is missing and not optional (CreateContainerConfigError)."""


def container_env(pod: dict, container: dict, image: Image, *, services_env: dict[str, str],
                  configmaps: dict[str, dict[str, str] | None], secrets: dict[str, dict[str, str] | None],
                  node_allocatable: dict[str, str]) -> dict[str, str]:
    """The environment of one container, lowest precedence first: image ENV, service links, ``envFrom``
    (in order), ``env`` (in order, each value ``$(VAR)``-expanded with what is defined before it).

    ``configmaps``/``secrets`` map names to their (decoded) data, or None when the object does not exist.

    Raises:
        EnvError: a non-optional reference to a missing object or key (message as the kubelet's).
    """
    env: dict[str, str] = dict(image.env)
    env["HOSTNAME"] = pod["spec"].get("hostname") or pod["metadata"]["name"]
    env.update(services_env)

    def source(kind: str, name: str) -> dict[str, str] | None:
        return (configmaps if kind == "configmap" else secrets).get(name)

    for ef in container.get("envFrom") or []:
        kind, ref = ("configmap", ef["configMapRef"]) if "configMapRef" in ef else ("secret", ef.get("secretRef"))
        if ref is None:
            continue
        data = source(kind, ref["name"])
        if data is None:
            if ref.get("optional"):
                continue
            raise EnvError(f'{kind} "{ref["name"]}" not found')
        for k, v in data.items():
            env[f"{ef.get('prefix', '')}{k}"] = v
    for e in container.get("env") or []:
        name = e["name"]
        if "valueFrom" not in e:
            env[name] = expand(str(e.get("value", "")), env)
            continue
        vf = e["valueFrom"]
        if "fieldRef" in vf:
            env[name] = field_value(pod, vf["fieldRef"]["fieldPath"])
        elif "resourceFieldRef" in vf:
            ref = vf["resourceFieldRef"]
            target = container
            if ref.get("containerName"):
                target = next((c for c in pod["spec"].get("containers", []) + pod["spec"].get("initContainers", [])
                               if c["name"] == ref["containerName"]), container)
            env[name] = resource_field(target, ref["resource"], ref.get("divisor"), node_allocatable)
        else:
            kind, ref = (("configmap", vf["configMapKeyRef"]) if "configMapKeyRef" in vf
                         else ("secret", vf["secretKeyRef"]))
            data = source(kind, ref["name"])
            if data is None or ref["key"] not in data:
                if ref.get("optional"):
                    continue
                title = "ConfigMap" if kind == "configmap" else "Secret"
                where = f"{pod['metadata']['namespace']}/{ref['name']}"
                raise EnvError(f'{kind} "{ref["name"]}" not found' if data is None
                               else f"couldn't find key {ref['key']} in {title} {where}")
            env[name] = data[ref["key"]]
    return env


# ------------------------------------------------------------------------------------------- status


def pod_phase(pod: dict, statuses: list[dict], init_done: bool, init_failed: bool) -> str:
    """Pod phase as the kubelet computes it (``getPhase``) from container statuses.

    ``statuses`` are the regular containers' statuses (``state`` with one of waiting/running/terminated).
    """
    policy = pod["spec"].get("restartPolicy", "Always")
    if init_failed:
        return "Failed"
    if not init_done:
        return "Pending"
    running = waiting = succeeded = failed = 0
    for st in statuses:
        state = st.get("state", {})
        if "running" in state:
            running += 1
        elif "terminated" in state:
            if state["terminated"].get("exitCode", 1) == 0:
                succeeded += 1
            else:
                failed += 1
        else:
            # waiting after a previous run (restarting) counts as running, as the kubelet does
            if st.get("lastState", {}).get("terminated"):
                running += 1
            else:
                waiting += 1
    if waiting:
        return "Pending"
    if running:
        return "Running"
    if not statuses:
        return "Pending"
    if policy == "Always":
        return "Running"
    if failed and policy == "Never":
        return "Failed"
    if failed:  # OnFailure restarts failed containers
        return "Running"
    return "Succeeded"


def qos_class(pod: dict) -> str:
    """Guaranteed / Burstable / BestEffort from the containers' requests and limits (cpu, memory)."""
    requests: list[dict] = []
    limits: list[dict] = []
    for c in pod["spec"].get("containers", []) + pod["spec"].get("initContainers", []):
        r = c.get("resources") or {}
        requests.append({k: v for k, v in (r.get("requests") or {}).items() if k in ("cpu", "memory")})
        limits.append({k: v for k, v in (r.get("limits") or {}).items() if k in ("cpu", "memory")})
    if not any(requests) and not any(limits):
        return "BestEffort"
    for req, lim in zip(requests, limits, strict=True):
        if set(lim) != {"cpu", "memory"}:
            return "Burstable"
        for k in ("cpu", "memory"):
            if k in req and quantity(req[k]) != quantity(lim[k]):
                return "Burstable"
    return "Guaranteed"


def resolv_conf(pod: dict, dns_ip: str) -> str:
    """``/etc/resolv.conf`` of a Pod: ClusterFirst (default) -> the cluster DNS with the namespace's search
    list and ndots:5; ``None`` -> only ``dnsConfig``; ``dnsConfig`` is merged in either case."""
    ns = pod["metadata"]["namespace"]
    policy = pod["spec"].get("dnsPolicy", "ClusterFirst")
    cfg = pod["spec"].get("dnsConfig") or {}
    servers: list[str] = [] if policy == "None" else [dns_ip]
    search: list[str] = [] if policy == "None" else [f"{ns}.svc.cluster.local", "svc.cluster.local", "cluster.local"]
    options: dict[str, str | None] = {} if policy == "None" else {"ndots": "5"}
    servers += [s for s in cfg.get("nameservers") or [] if s not in servers]
    search += [s for s in cfg.get("searches") or [] if s not in search]
    for o in cfg.get("options") or []:
        options[o["name"]] = o.get("value")
    lines = [f"nameserver {s}" for s in servers[:3]]
    if search:
        lines.append("search " + " ".join(search))
    if options:
        lines.append("options " + " ".join(k if v is None else f"{k}:{v}" for k, v in options.items()))
    return "\n".join(lines) + "\n"


def etc_hosts(pod: dict, pod_ip: str) -> str:
    """``/etc/hosts`` as the kubelet writes it: localhost lines, the Pod's own name, ``hostAliases``."""
    spec = pod["spec"]
    hostname = spec.get("hostname") or pod["metadata"]["name"]
    names = hostname
    if spec.get("subdomain"):
        names = f"{hostname}.{spec['subdomain']}.{pod['metadata']['namespace']}.svc.cluster.local {hostname}"
    lines = ["# Kubernetes-managed hosts file (kaiops sandbox node).", "127.0.0.1\tlocalhost",
             "::1\tlocalhost ip6-localhost ip6-loopback", "fe00::0\tip6-localnet", "fe00::0\tip6-mcastprefix",
             "fe00::1\tip6-allnodes", "fe00::2\tip6-allrouters", f"{pod_ip}\t{names}"]
    for alias in spec.get("hostAliases") or []:
        lines.append(f"{alias['ip']}\t{' '.join(alias.get('hostnames') or [])}")
    return "\n".join(lines) + "\n"


def backoff_seconds(restarts_in_backoff: int) -> float:
    """CrashLoopBackOff delay: 10 s doubling per restart, capped at 300 s (kubelet defaults)."""
    return float(min(300, 10 * 2 ** max(0, restarts_in_backoff - 1)))
