"""The sandbox network of one instance: node network namespace, pod bridge, host veth + route, records.

Shape (see /README.md "node agent"): a network namespace ``kaiops-<instance>-node`` holds bridge ``kbr0``
(the gateway of the instance's pod /16) and, later, kube-proxy's rules. A veth pair ``kai<i>h`` (host,
``10.200.<i>.1/30``) <-> ``kai<i>n`` (node netns, ``.2``) joins it to the host, and the host routes the pod
/16 through it, so the agent's probes, tests and Prometheus reach Pod IPs as a kubelet does on its node.
The node netns forwards (its own ``ip_forward``; the host's is never changed), so nothing a Pod sends can
leave the machine.

Everything created is first written to ``<instance>/net/record.json`` (intent before action), and
:func:`teardown` removes exactly what the record names, also after the owning process was SIGKILLed.
Several instances run at once: each gets a sticky index ``i`` (1..99) from a host-wide allocation file
under an exclusive ``flock``; an index whose links or addresses already exist on the host is skipped.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import json
import os
import re
import signal
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from sandbox import fsguard

SERVICE_CIDR = "10.96.0.0/16"
KUBERNETES_SERVICE_IP = "10.96.0.1"
DNS_IP = "10.96.0.10"
BRIDGE = "kbr0"
MAX_INDEX = 99
_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,40}$")


@dataclass(frozen=True)
class NetAddresses:
    """The addresses of one instance's network (all IPv4, dotted strings).

    Attributes:
        index: the instance's sticky index ``i`` (1..99).
        netns: name of the node network namespace (``ip netns`` name).
        host_link / node_link: the veth ends on the host / in the node netns.
        host_ip: host end of the veth (``10.200.<i>.1``): apiserver advertise address, Node InternalIP,
            kubelet API, forwarders to the host's 127.0.0.1 services.
        node_ip: node netns end (``10.200.<i>.2``).
        pod_cidr: the instance's pod range ``10.<100+i>.0.0/16``; node k gets ``10.<100+i>.<k+1>.0/24``.
        gateway: bridge address in the node netns, next hop of every Pod (``10.<100+i>.0.1``).
        service_cidr / dns_ip / kubernetes_ip: Service range (only inside the node netns), kube-dns, kubernetes.
    """

    index: int
    netns: str
    host_link: str
    node_link: str
    host_ip: str
    node_ip: str
    pod_cidr: str
    gateway: str
    service_cidr: str = SERVICE_CIDR
    dns_ip: str = DNS_IP
    kubernetes_ip: str = KUBERNETES_SERVICE_IP

    def node_pod_cidr(self, k: int) -> str:
        """podCIDR (/24) of the instance's node number ``k`` (0-based, at most 253)."""
        net = ipaddress.ip_network(self.pod_cidr)
        return str(ipaddress.ip_network(f"{net.network_address + 256 * (k + 1)}/24"))


def addresses_for(instance: str, index: int) -> NetAddresses:
    """The addresses of ``instance`` with index ``index`` (pure; see :class:`NetAddresses`)."""
    return NetAddresses(
        index=index, netns=f"kaiops-{instance}-node", host_link=f"kai{index}h", node_link=f"kai{index}n",
        host_ip=f"10.200.{index}.1", node_ip=f"10.200.{index}.2", pod_cidr=f"10.{100 + index}.0.0/16",
        gateway=f"10.{100 + index}.0.1",
    )


def _run(*cmd: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(list(cmd), capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc


def _host_in_use(a: NetAddresses) -> bool:
    """True when the host already has a link, address or route of ``a`` (someone else's, or ours)."""
    links = _run("ip", "-o", "link", "show", check=False).stdout
    if re.search(rf"^\d+: {a.host_link}[@:]", links, re.M):
        return True
    addrs = _run("ip", "-o", "-4", "addr", "show", check=False).stdout
    routes = _run("ip", "-4", "route", "show", check=False).stdout
    if f" {a.host_ip}/" in addrs or f"10.{100 + a.index}." in routes or f"10.200.{a.index}." in routes:
        return True
    return os.path.exists(f"/run/netns/{a.netns}")


def allocation_file() -> Path:
    from tasks.crds import cache_root

    path = cache_root() / "sandbox" / "net-index.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def allocate(instance: str, allocations: Path | None = None, probe: bool = True) -> NetAddresses:
    """Return ``instance``'s addresses, allocating a sticky index on first use.

    Args:
        instance: sandbox instance name (lower-case letters, digits, '-', at most 41 characters).
        allocations: the host-wide allocation file (default ``~/.cache/kaiops/sandbox/net-index.json``).
        probe: skip (for new allocations) indexes whose links/addresses/routes already exist on the host.
    Raises:
        ValueError: bad instance name, or all 99 indexes taken.
    """
    if not _NAME.match(instance):
        raise ValueError(f"sandbox instance name {instance!r}: use lower-case letters, digits and '-' "
                         "(at most 41 characters) to get a sandbox network")
    path = allocations or allocation_file()
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        table: dict[str, int] = json.loads(path.read_text()) if path.exists() and path.read_text().strip() else {}
        if instance in table:
            return addresses_for(instance, table[instance])
        used = set(table.values())
        for i in range(1, MAX_INDEX + 1):
            if i in used or (probe and _host_in_use(addresses_for(instance, i))):
                continue
            table[instance] = i
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(table, indent=1, sort_keys=True))
            tmp.replace(path)
            return addresses_for(instance, i)
    raise ValueError(f"no free sandbox network index left in {path} (1..{MAX_INDEX} taken); remove stale entries")


def lookup(instance: str, allocations: Path | None = None) -> NetAddresses | None:
    """``instance``'s addresses when it has an index already, else None (never allocates)."""
    path = allocations or allocation_file()
    if not path.exists() or not path.read_text().strip():
        return None
    index = json.loads(path.read_text()).get(instance)
    return None if index is None else addresses_for(instance, index)


# ---------------------------------------------------------------------------------------------- record


@dataclass
class NetRecord:
    """What the sandbox created on the host for one instance (``<instance>/net/record.json``)."""

    netns: list[str]
    links: list[str]  # host-side links (deleting one end of a veth deletes both)
    routes: list[str]  # "10.101.0.0/16 via 10.200.1.2 dev kai1h"

    @classmethod
    def load(cls, path: Path) -> NetRecord:
        if not path.exists():
            return cls([], [], [])
        raw = json.loads(path.read_text())
        return cls(raw.get("netns", []), raw.get("links", []), raw.get("routes", []))

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=1))
        tmp.replace(path)


def net_dir(instance_dir: Path) -> Path:
    """``<instance>/net``, claimed by the sandbox (see :mod:`sandbox.fsguard`)."""
    return fsguard.claim(instance_dir / "net")


def record_path(instance_dir: Path) -> Path:
    return net_dir(instance_dir) / "record.json"


POD_NETNS_FILE = "pod-netns.json"  # in the node agent's claimed state dir: pod uid -> netns inode


def setup(a: NetAddresses, instance_dir: Path) -> None:
    """Create the node netns, the bridge, the veth pair and the host route of ``a`` (idempotent).

    Each item is recorded before it is created. Raises RuntimeError (with ``ip``'s message) on failure; what
    was created so far is in the record, so :func:`teardown` removes it.
    """
    path = record_path(instance_dir)
    rec = NetRecord.load(path)
    if a.netns not in rec.netns:
        rec.netns.append(a.netns)
    if a.host_link not in rec.links:
        rec.links.append(a.host_link)
    route = f"{a.pod_cidr} via {a.node_ip} dev {a.host_link}"
    if route not in rec.routes:
        rec.routes.append(route)
    rec.save(path)
    ns = ("ip", "-n", a.netns)
    if not os.path.exists(f"/run/netns/{a.netns}"):
        _run("ip", "netns", "add", a.netns)
    if _run("ip", "link", "show", a.host_link, check=False).returncode != 0:
        _run("ip", "link", "add", a.host_link, "type", "veth", "peer", "name", a.node_link, "netns", a.netns)
    _run("ip", "addr", "replace", f"{a.host_ip}/30", "dev", a.host_link)
    _run("ip", "link", "set", a.host_link, "up")
    _run(*ns, "link", "set", "lo", "up")
    _run(*ns, "addr", "replace", f"{a.node_ip}/30", "dev", a.node_link)
    _run(*ns, "link", "set", a.node_link, "up")
    if _run(*ns, "link", "show", BRIDGE, check=False).returncode != 0:
        _run(*ns, "link", "add", BRIDGE, "type", "bridge")
    prefix = a.pod_cidr.split("/")[1]
    _run(*ns, "addr", "replace", f"{a.gateway}/{prefix}", "dev", BRIDGE)
    _run(*ns, "link", "set", BRIDGE, "up")
    _run(*ns, "route", "replace", "default", "via", a.host_ip, "dev", a.node_link)
    # per-netns sysctls of the node netns only: forward between Pods and towards the host; Pods are /32
    # routed hosts, so no ICMP redirects (they would let Pods bypass the node's conntrack/DNAT)
    for key, value in (("net/ipv4/ip_forward", "1"), ("net/ipv4/conf/all/send_redirects", "0"),
                       ("net/ipv4/conf/default/send_redirects", "0"), (f"net/ipv4/conf/{BRIDGE}/send_redirects", "0")):
        _run("ip", "netns", "exec", a.netns, "sh", "-c", f"echo {value} > /proc/sys/{key}")
    _run("ip", "route", "replace", *route.split())


def _netns_inode(pid: int) -> int | None:
    with contextlib.suppress(OSError):
        return os.stat(f"/proc/{pid}/ns/net").st_ino
    return None


def kill_in_netns(inodes: set[int], grace: float = 3.0) -> int:
    """SIGTERM, then SIGKILL, every process whose network namespace inode is in ``inodes``; return how many.

    Used for Pod network namespaces the sandbox created (recorded inode numbers) and for the node netns.
    """
    if not inodes:
        return 0

    def members() -> list[int]:
        out = []
        for entry in os.listdir("/proc"):
            if entry.isdigit() and int(entry) != os.getpid() and _netns_inode(int(entry)) in inodes:
                out.append(int(entry))
        return out

    found = members()
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in members():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + (grace if sig == signal.SIGTERM else 3.0)
        while time.monotonic() < deadline and members():
            for pid in members():
                with contextlib.suppress(ChildProcessError, OSError):
                    os.waitpid(pid, os.WNOHANG)
            time.sleep(0.1)
    return len(found)


def teardown(instance_dir: Path) -> list[str]:
    """Remove what ``<instance>/net/record.json`` names: processes in its namespaces, netns, links, routes.

    Only recorded names are touched; a missing item is skipped. Returns what was removed (for logs/tests).
    """
    path = record_path(instance_dir)
    rec = NetRecord.load(path)
    removed: list[str] = []
    node_dir = instance_dir / "node"
    pods = node_dir / POD_NETNS_FILE
    if pods.exists():
        inodes = {int(i) for i in json.loads(pods.read_text()).values()}
        if kill_in_netns(inodes):
            removed.append("pod processes")
        fsguard.remove(pods, node_dir)
    for ns in rec.netns:
        if os.path.exists(f"/run/netns/{ns}"):
            with contextlib.suppress(OSError):
                kill_in_netns({os.stat(f"/run/netns/{ns}").st_ino})
            _run("ip", "netns", "del", ns, check=False)
            removed.append(f"netns {ns}")
    for link in rec.links:
        if _run("ip", "link", "show", link, check=False).returncode == 0:
            _run("ip", "link", "del", link, check=False)
            removed.append(f"link {link}")
    for route in rec.routes:
        if _run("ip", "route", "show", *route.split()[:1], check=False).stdout.strip():
            _run("ip", "route", "del", *route.split(), check=False)
            removed.append(f"route {route}")
    fsguard.remove(path, path.parent)
    return removed
