"""The sandbox ``net`` service process: creates the instance network, forwards host services, tears it down.

``python -m sandbox.node.netd --instance NAME --instance-dir DIR --health-file F``

1. allocates the instance's addresses and creates the node netns, bridge, veth and host route
   (:mod:`sandbox.node.network`);
2. serves every port of the services in :data:`FORWARDED` recorded in the instance's ``state.json`` also on
   ``<host_ip>:<same port>`` and forwards it to ``127.0.0.1:<port>`` (host services bind loopback only; Pods
   reach them as a kind user's Pods reach the host), re-reading the state file every second. Only peers from
   the instance's veth /30 or its pod /16 are served; others are closed at once;
3. on SIGTERM/SIGINT closes the forwarders and removes everything it created (``teardown``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import json
import os
import signal
import sys
from pathlib import Path

from sandbox.node import network


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


class Forwarders:
    """TCP forwarders ``host_ip:port -> 127.0.0.1:port`` for a changing set of ports."""

    def __init__(self, a: network.NetAddresses) -> None:
        self.a = a
        self.allowed = [ipaddress.ip_network(f"{a.host_ip}/30", strict=False), ipaddress.ip_network(a.pod_cidr)]
        self.servers: dict[int, asyncio.base_events.Server] = {}

    def _handler(self, port: int):
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            peer = ipaddress.ip_address(writer.get_extra_info("peername")[0])
            if not any(peer in net for net in self.allowed):
                writer.close()
                return
            try:
                up_reader, up_writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                writer.close()
                return
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

        return handle

    async def sync(self, ports: set[int]) -> None:
        for port in set(self.servers) - ports:
            self.servers.pop(port).close()
        for port in ports - set(self.servers):
            with contextlib.suppress(OSError):  # a port bound elsewhere on host_ip: retried next round
                self.servers[port] = await asyncio.start_server(self._handler(port), self.a.host_ip, port,
                                                                reuse_address=True)

    def close(self) -> None:
        for server in self.servers.values():
            server.close()
        self.servers.clear()


# Services that bind 127.0.0.1 and that Pods use. Others are not forwarded: Ray binds 0.0.0.0 itself (so it is
# reachable on host_ip already, and a forwarder on its port would make it fail with EADDRINUSE).
FORWARDED = ("kube-apiserver", "s3", "gcs", "prometheus", "prefect", "mlflow", "metrics-server", "redis", "gateway")


def recorded_ports(instance_dir: Path) -> set[int]:
    """Every port of the :data:`FORWARDED` services recorded in the instance's state file."""
    path = instance_dir / "state.json"
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError):
        return set()
    ports: set[int] = set()
    for name, record in raw.get("services", {}).items():
        if name in FORWARDED:
            ports.update(int(p) for p in record.get("ports", {}).values())
    return ports


async def _serve(a: network.NetAddresses, instance_dir: Path, health: Path) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    forwarders = Forwarders(a)
    await forwarders.sync(recorded_ports(instance_dir))
    health.write_text(str(os.getpid()))
    while not stop.is_set():
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), 1.0)
        await forwarders.sync(recorded_ports(instance_dir))
    forwarders.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sandbox.node.netd")
    parser.add_argument("--instance", required=True)
    parser.add_argument("--instance-dir", required=True, type=Path)
    parser.add_argument("--health-file", required=True, type=Path)
    args = parser.parse_args(argv)
    a = network.allocate(args.instance)
    try:
        network.setup(a, args.instance_dir)
        print(f"net: {a.netns} host {a.host_ip} node {a.node_ip} pods {a.pod_cidr}", flush=True)
        asyncio.run(_serve(a, args.instance_dir, args.health_file))
    finally:
        removed = network.teardown(args.instance_dir)
        print(f"net: removed {', '.join(removed) or 'nothing'}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
