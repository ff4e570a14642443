"""Start, inspect and stop a sandbox instance: ``kaiops sandbox up | down | status | env``.

``up`` starts only what is not already running and healthy (safe to call twice), in dependency order,
waiting for each health check in parallel; ``down`` stops exactly the processes the state file records.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from sandbox.paths import instance_dir
from sandbox.procs import alive, spawn, stop, wait_until
from sandbox.services import SERVICES, Service
from sandbox.state import SandboxState, ServiceRecord

# everything but the real KServe manager in either mode and the Knative Serving it needs in Serverless mode: both
# conflict with the emulated `kserve` the default set runs; tests and users start them by name
OPT_IN_SERVICES = ("kserve-controller", "knative", "kserve-serverless")
DEFAULT_SERVICES = tuple(n for n in SERVICES if n not in OPT_IN_SERVICES)


@dataclass
class ServiceStatus:
    """One row of ``kaiops sandbox status``."""

    name: str
    state: str  # "healthy", "unhealthy" (process alive, not answering) or "stopped"
    url: str
    pid: int | None
    log: str


def load(name: str | None = None) -> SandboxState:
    """Return the state of sandbox instance ``name`` (default: ``$KAIOPS_SANDBOX`` or ``default``)."""
    return SandboxState.load(instance_dir(name))


def _is_healthy(service: Service, state: SandboxState, record: ServiceRecord | None) -> bool:
    if record is None or not alive(record.pid):
        return False
    try:
        return service.healthy(state, record)
    except Exception:
        return False


def _settled(service: Service, state: SandboxState, record: ServiceRecord | None) -> bool:
    """True when the recorded process is healthy, or becomes healthy within its start-up timeout.

    A live process that is merely slow to answer (a loaded machine) is waited for, never restarted: a restart
    would lose what it holds (S3 objects, Prometheus series).
    """
    if record is None or not alive(record.pid):
        return False
    try:
        wait_until(lambda: _is_healthy(service, state, record), service.ready_timeout, service.name)
    except TimeoutError:
        return False
    return True


def _with_dependencies(names: tuple[str, ...]) -> list[str]:
    wanted: list[str] = []

    def add(n: str) -> None:
        for dep in SERVICES[n].needs:
            add(dep)
        if n not in wanted:
            wanted.append(n)

    for n in names:
        if n not in SERVICES:
            raise ValueError(f"unknown sandbox service {n!r}; known: {', '.join(SERVICES)}")
        add(n)
    return wanted


def up(names: tuple[str, ...] = DEFAULT_SERVICES, instance: str | None = None) -> SandboxState:
    """Start the named services (and what they need) unless already healthy; return the state.

    Raises:
        TimeoutError: a service did not become healthy in time (the message has its log tail); the
            processes already started keep running and are in the state file, so ``down`` stops them.
    """
    state = load(instance)
    state.fresh = not any(alive(r.pid) for r in state.services.values())
    wanted = _with_dependencies(names)
    _stop_conflicts(state, wanted)
    pending = [n for n in wanted if not _settled(SERVICES[n], state, state.services.get(n))]
    while pending:
        wave = [n for n in pending if all(d not in pending for d in SERVICES[n].needs)]
        for n in wave:
            old = state.services.pop(n, None)
            if old is not None:
                stop(old.pid)
                state.previous_ports[n] = old.ports
            service = SERVICES[n]
            launch = service.launch(state)
            log = service.log_path(state)
            pid = spawn(launch.cmd, log, env=launch.env, cwd=launch.cwd)
            state.services[n] = ServiceRecord(name=n, pid=pid, url=launch.url, log=str(log), ports=launch.ports)
            state.save()
        with ThreadPoolExecutor(max_workers=len(wave)) as pool:
            list(pool.map(lambda n: _await(SERVICES[n], state, state.services[n]), wave))
        pending = [n for n in pending if n not in wave]
    return state


def conflicting(wanted: list[str]) -> list[str]:
    """Services that conflict with one in ``wanted`` (either side may declare it), in ``SERVICES`` order.

    Raises:
        ValueError: two services in ``wanted`` conflict with each other.
    """
    out = []
    for name, service in SERVICES.items():
        if name in wanted:
            continue
        if any(name in SERVICES[w].conflicts or w in service.conflicts for w in wanted):
            out.append(name)
    for w in wanted:
        clash = [o for o in wanted if o != w and (o in SERVICES[w].conflicts or w in SERVICES[o].conflicts)]
        if clash:
            raise ValueError(f"sandbox services {w!r} and {clash[0]!r} cannot run in the same instance; "
                             "start one of them")
    return out


def _stop_conflicts(state: SandboxState, wanted: list[str]) -> None:
    """Stop every running service that conflicts with ``wanted`` and run its cleanup (also when not running:
    a SIGKILLed process leaves what cleanup removes)."""
    for name in conflicting(wanted):
        record = state.services.pop(name, None)
        if record is not None:
            stop(record.pid)
            state.save()
        SERVICES[name].cleanup(state)


def _await(service: Service, state: SandboxState, record: ServiceRecord) -> None:
    def ready() -> bool:
        if not alive(record.pid):
            raise_exited(service, record)
        return service.healthy(state, record)

    wait_until(ready, service.ready_timeout, f"sandbox {service.name}", log=record_log(record))
    service.after_ready(state, record)


def raise_exited(service: Service, record: ServiceRecord) -> None:
    tail = "\n".join(record_log(record).read_text(errors="replace").splitlines()[-20:])
    raise RuntimeError(f"sandbox {service.name} exited during start-up; log {record.log}:\n{tail}")


def record_log(record: ServiceRecord) -> Path:
    return Path(record.log)


def down(instance: str | None = None, names: tuple[str, ...] | None = None) -> list[str]:
    """Stop the processes the state file records (all, or only ``names``), in reverse start order.

    Returns:
        The names of the services stopped.
    """
    state = load(instance)
    stopped: list[str] = []
    for name in reversed(list(state.services)):
        if names is not None and name not in names:
            continue
        record = state.services.pop(name)
        stop(record.pid)
        if name in SERVICES:
            SERVICES[name].cleanup(state)
        stopped.append(name)
        state.save()
    return stopped


def status(instance: str | None = None) -> list[ServiceStatus]:
    """Health of every default service of the instance (running or not) and of any other one it records."""
    state = load(instance)
    rows = []
    for name, service in SERVICES.items():
        record = state.services.get(name)
        if record is None and name not in DEFAULT_SERVICES:
            continue
        if record is None:
            rows.append(ServiceStatus(name, "stopped", "", None, ""))
            continue
        if _is_healthy(service, state, record):
            health = "healthy"
        elif alive(record.pid):
            health = "unhealthy"
        else:
            health = "stopped"
        rows.append(ServiceStatus(name, health, record.url, record.pid, record.log))
    return rows


def env(instance: str | None = None) -> dict[str, str]:
    """Environment variables a shell needs to use the running services (``kaiops sandbox env``)."""
    state = load(instance)
    out: dict[str, str] = {}
    for name, record in state.services.items():
        service = SERVICES.get(name)
        if service is not None and alive(record.pid):
            out.update(service.env(state, record))
    return out
