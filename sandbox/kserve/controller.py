"""The sandbox KServe controller: watches InferenceServices (all namespaces) on the real apiserver and runs
each predictor revision as a real KServe model server behind a per-InferenceService router.

One worker thread reconciles one InferenceService at a time from a queue fed by the watch (resumed from the
last resourceVersion, re-listed on 410 Gone), by revision threads when a revision changes phase, and by a
periodic resync. Each reconcile: read the object, create a revision when the predictor template changed
(:func:`sandbox.kserve.revisions.predictor_hash`), compute the status KServe would write
(:func:`sandbox.kserve.revisions.compute_status`), write it through the status subresource when it changed,
point the router at the traffic split, and stop the processes of revisions no traffic points at.

Failures of a revision (download, model load, crash) become status (``modelStatus``, conditions), never an
exception out of the controller. Revisions are remembered in ``<data>/ledger/<uid>.json`` so a restarted
controller keeps numbering where it was.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import logging
import os
import queue
import shutil
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sandbox.kserve import faults, targets
from sandbox.kserve.modelserver import ServerProcess, StorageInitError, start_server, storage_initialize
from sandbox.kserve.revisions import (
    SUPPORTED_FORMATS,
    DeploymentMode,
    FailureReason,
    Revision,
    RevisionPhase,
    compute_status,
    deployment_mode,
    model_format,
    predictor_hash,
    referenced,
    revision_name,
    same_status,
    series_name,
    served_model_name,
    traffic_weights,
)
from sandbox.kserve.router import METRICS, Backend, MetricsServer, Router, target_labels
from sandbox.procs import free_port

log = logging.getLogger("sandbox.kserve")

API_VERSION = "serving.kserve.io/v1beta1"
KIND = "InferenceService"
RESYNC_S = 15.0
WATCH_TIMEOUT_S = 60
READY_TIMEOUT_S = 240.0  # model server start-up budget before the revision counts as failed
DRAIN_S = 5.0  # a revision the router left keeps serving in-flight requests this long (a pod's graceful stop)


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class RevisionRuntime:
    """A revision the controller runs: identity, phase and (while running) its model server."""

    name: str
    number: int
    spec_hash: str
    phase: RevisionPhase = RevisionPhase.PENDING
    message: str = ""
    exit_code: int = 0
    reason: FailureReason | None = None
    server: ServerProcess | None = None
    stopping: bool = False
    thread: threading.Thread | None = None

    def view(self) -> Revision:
        return Revision(self.name, self.phase, self.message, self.exit_code, self.reason)


@dataclass
class IsvcState:
    """Everything the controller holds for one InferenceService."""

    namespace: str
    name: str
    uid: str
    router: Router
    revisions: list[RevisionRuntime] = field(default_factory=list)
    isvc: dict[str, Any] = field(default_factory=dict)


class Controller:
    """Reconciles InferenceServices; see the module docstring.

    Args:
        dyn: Kubernetes dynamic client (admin on the sandbox apiserver).
        data_dir: where model directories, logs and the revision ledger live.
        targets_dir: Prometheus file-SD directory.
    """

    def __init__(self, dyn: Any, data_dir: Path, targets_dir: Path) -> None:
        from tasks import kube

        self.dyn = dyn
        self.kube = kube
        self.resource = kube.resource_for(dyn, API_VERSION, KIND)
        self.data_dir = data_dir
        self.targets_dir = targets_dir
        self.queue: queue.Queue[tuple[str, str]] = queue.Queue()
        self.states: dict[tuple[str, str], IsvcState] = {}
        self.lock = threading.RLock()
        self.stopped = threading.Event()
        self.synced = threading.Event()
        (data_dir / "ledger").mkdir(parents=True, exist_ok=True)

    # ---- watch -----------------------------------------------------------------------------------------
    def watch_forever(self) -> None:
        """List, then watch from the list's resourceVersion; re-list when the server answers 410 Gone."""
        version: str | None = None
        while not self.stopped.is_set():
            try:
                if version is None:
                    listing = self.resource.get()
                    version = listing.metadata.resourceVersion
                    seen = set()
                    for item in listing.items:
                        key = (item.metadata.namespace, item.metadata.name)
                        seen.add(key)
                        self.queue.put(key)
                    with self.lock:
                        for key in list(self.states):
                            if key not in seen:
                                self.queue.put(key)
                    self.synced.set()
                for event in self.dyn.watch(self.resource, resource_version=version, timeout=WATCH_TIMEOUT_S):
                    if self.stopped.is_set():
                        return
                    raw = event.get("raw_object") or {}
                    if event.get("type") == "ERROR":
                        if raw.get("code") == 410:
                            version = None
                            break
                        raise RuntimeError(f"watch error: {raw.get('message')}")
                    meta = raw.get("metadata") or {}
                    version = meta.get("resourceVersion") or version
                    self.queue.put((meta.get("namespace", ""), meta.get("name", "")))
            except Exception as exc:  # 410 as an exception, apiserver restarts, network blips
                if getattr(exc, "status", None) == 410 or "410" in str(exc)[:200]:
                    version = None
                else:
                    log.warning("watch interrupted: %s", exc)
                    time.sleep(1.0)

    def resync_forever(self) -> None:
        while not self.stopped.wait(RESYNC_S):
            with self.lock:
                keys = list(self.states)
            for key in keys:
                self.queue.put(key)

    def work_forever(self) -> None:
        while not self.stopped.is_set():
            try:
                key = self.queue.get(timeout=1.0)
            except queue.Empty:
                continue
            try:
                self.reconcile(*key)
            except Exception:
                log.exception("reconcile %s/%s failed; retrying", *key)
                threading.Timer(2.0, self.queue.put, args=(key,)).start()

    # ---- reconcile ---------------------------------------------------------------------------------------
    def reconcile(self, namespace: str, name: str) -> None:
        """Bring processes, router and status of one InferenceService in line with its spec."""
        try:
            isvc = self.kube.get(self.dyn, API_VERSION, KIND, name, namespace)
        except self.kube.NotFound:
            self._forget((namespace, name))
            return
        with self.lock:
            state = self.states.get((namespace, name))
            uid = isvc["metadata"].get("uid", "")
            if state is not None and state.uid != uid:  # deleted and re-created under the same name
                self._forget((namespace, name))
                state = None
            if state is None:
                state = IsvcState(namespace, name, uid, Router(namespace, name, free_port()))
                state.revisions = self._load_ledger(uid)
                self.states[(namespace, name)] = state
            state.isvc = isvc
            mode = deployment_mode(isvc)
            spec_hash = predictor_hash(isvc)
            if not state.revisions or state.revisions[-1].spec_hash != spec_hash:
                number = (state.revisions[-1].number + 1) if state.revisions else 1
                rev = RevisionRuntime(revision_name(name, number), number, spec_hash)
                state.revisions.append(rev)
                self._save_ledger(state)
                self._start_revision(state, rev, isvc)
            prior = isvc.get("status") or {}
            status = compute_status(isvc, [r.view() for r in state.revisions], prior, state.router.url, _now())
            keep = referenced(status, [r.view() for r in state.revisions], mode)
            for rev in state.revisions:
                if rev.name in keep and rev.phase is RevisionPhase.READY and rev.server is None and not rev.thread:
                    self._start_revision(state, rev, isvc, download=False)  # scale from zero
            self._route(state, status, mode)
        if not same_status(prior, status):
            self._write_status(isvc, status)
        with self.lock:
            for rev in state.revisions:
                if rev.name not in keep and rev.server is not None:
                    self._stop_revision(state, rev)

    def _route(self, state: IsvcState, status: dict[str, Any], mode: DeploymentMode) -> None:
        weights = traffic_weights(status, [r.view() for r in state.revisions], mode)
        newest = state.revisions[-1].name
        fault = faults.parse(state.isvc)
        backends = []
        for rev in state.revisions:
            if rev.name in weights and rev.server is not None and rev.server.exited() is None:
                backends.append(Backend(rev.name, rev.server.url, weights[rev.name],
                                        fault if rev.name == newest else faults.NO_FAULT,
                                        series_name(state.name, rev.name, mode)))
        state.router.set_backends(backends)

    def _write_status(self, isvc: dict[str, Any], status: dict[str, Any]) -> None:
        body = {"apiVersion": API_VERSION, "kind": KIND, "metadata": {
            "name": isvc["metadata"]["name"], "namespace": isvc["metadata"]["namespace"],
            "resourceVersion": isvc["metadata"]["resourceVersion"]}, "status": status}
        try:
            self.resource.status.replace(body=body, namespace=isvc["metadata"]["namespace"])
        except Exception as exc:
            if getattr(exc, "status", None) == 409:  # changed meanwhile; the watch brings the new version
                self.queue.put((isvc["metadata"]["namespace"], isvc["metadata"]["name"]))
                return
            raise

    # ---- revisions ---------------------------------------------------------------------------------------
    def _model_dir(self, state: IsvcState, rev: RevisionRuntime) -> Path:
        return self.data_dir / "models" / state.namespace / state.uid[:8] / rev.name

    def _start_revision(self, state: IsvcState, rev: RevisionRuntime, isvc: dict[str, Any],
                        download: bool = True) -> None:
        fmt = model_format(isvc)
        if fmt not in SUPPORTED_FORMATS:
            rev.phase, rev.reason = RevisionPhase.INVALID, FailureReason.NO_SUPPORTING_RUNTIME
            rev.message = f"No runtime found to support predictor with model type: {{{fmt or 'unknown'}}}"
            return
        key = (state.namespace, state.name)
        thread = threading.Thread(target=self._run_revision, args=(key, rev, isvc, download),
                                  name=f"rev-{rev.name}", daemon=True)
        rev.thread = thread
        thread.start()

    def _run_revision(self, key: tuple[str, str], rev: RevisionRuntime, isvc: dict[str, Any],
                      download: bool) -> None:
        """Storage initializer, then the model server until ready (or failed); enqueue ``key`` on changes."""
        state = self.states[key]
        model_dir = self._model_dir(state, rev)
        try:
            if download:  # a restart of a scaled-to-zero revision keeps it Ready, as Knative does
                rev.phase = RevisionPhase.LOADING
                self.queue.put(key)
                shutil.rmtree(model_dir, ignore_errors=True)
                storage_initialize(self.dyn, isvc, model_dir)
            port = free_port()
            logfile = self.data_dir / "logs" / state.namespace / f"{rev.name}.log"
            server = start_server(model_dir, served_model_name(isvc), port, logfile)
            rev.server = server
            deadline = time.monotonic() + READY_TIMEOUT_S
            while rev.server is server and not rev.stopping:
                code = server.exited()
                if code is not None:
                    raise StorageInitError(server.log_tail() or f"model server exited with {code}", code or 1)
                never = faults.parse(state.isvc).never_ready and state.revisions[-1] is rev
                if not never and server.ready():
                    break
                if not never and time.monotonic() > deadline:
                    raise StorageInitError(f"model server not ready after {READY_TIMEOUT_S:.0f}s", 1)
                time.sleep(0.5)
            if rev.server is not server or rev.stopping:
                return
            targets.write(self.targets_dir, f"{state.namespace}-{rev.name}", f"127.0.0.1:{port}",
                          targets.revision_labels(state.namespace, state.name, rev.name))
            rev.phase, rev.message, rev.reason = RevisionPhase.READY, "", None
            self._save_ledger(state)
            self.queue.put(key)
            while rev.server is server and server.exited() is None:  # watch for a crash
                time.sleep(1.0)
            if rev.server is server and not rev.stopping:
                raise StorageInitError(server.log_tail() or "model server exited", server.exited() or 1)
        except StorageInitError as exc:
            if rev.server is not None:
                rev.server.stop()
                rev.server = None
            targets.remove(self.targets_dir, f"{state.namespace}-{rev.name}")
            rev.phase, rev.reason = RevisionPhase.FAILED, FailureReason.MODEL_LOAD_FAILED
            rev.message, rev.exit_code = exc.message[-1000:], exc.exit_code
            log.info("revision %s failed: %s", rev.name, rev.message)
            self._save_ledger(state)
            self.queue.put(key)
        except Exception as exc:  # never let a revision thread take anything down
            log.exception("revision %s crashed", rev.name)
            rev.phase, rev.reason = RevisionPhase.FAILED, FailureReason.MODEL_LOAD_FAILED
            rev.message, rev.exit_code = f"{exc.__class__.__name__}: {exc}", 1
            self.queue.put(key)
        finally:
            rev.thread = None

    def _stop_revision(self, state: IsvcState, rev: RevisionRuntime) -> None:
        """Stop a revision's model server after ``DRAIN_S`` seconds (requests the router sent before it moved
        on still finish, as a terminating pod finishes its requests); the revision stays Ready, as Knative
        keeps scaled-to-zero revisions."""
        server, rev.server = rev.server, None  # the revision thread sees this and ends quietly
        targets.remove(self.targets_dir, f"{state.namespace}-{rev.name}")
        if server is not None:
            def stop() -> None:
                server.stop()
                log.info("stopped %s (no traffic)", rev.name)

            timer = threading.Timer(DRAIN_S, stop)
            timer.daemon = True
            timer.start()

    def _forget(self, key: tuple[str, str]) -> None:
        with self.lock:
            state = self.states.pop(key, None)
        if state is None:
            return
        for rev in state.revisions:
            rev.stopping = True
            if rev.server is not None:
                rev.server.stop()
                rev.server = None
            targets.remove(self.targets_dir, f"{state.namespace}-{rev.name}")
        state.router.close()
        (self.data_dir / "ledger" / f"{state.uid}.json").unlink(missing_ok=True)
        shutil.rmtree(self.data_dir / "models" / state.namespace / state.uid[:8], ignore_errors=True)

    # ---- ledger ------------------------------------------------------------------------------------------
    def _save_ledger(self, state: IsvcState) -> None:
        rows = [{"name": r.name, "number": r.number, "hash": r.spec_hash, "phase": r.phase.value}
                for r in state.revisions]
        path = self.data_dir / "ledger" / f"{state.uid}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(rows))
        os.replace(tmp, path)

    def _load_ledger(self, uid: str) -> list[RevisionRuntime]:
        """Revisions of a previous controller run: numbering continues; none of their processes survived, so
        a ready one restarts from its downloaded model when traffic needs it."""
        path = self.data_dir / "ledger" / f"{uid}.json"
        if not path.exists():
            return []
        out = []
        for row in json.loads(path.read_text()):
            phase = RevisionPhase(row["phase"])
            if phase in (RevisionPhase.PENDING, RevisionPhase.LOADING):
                phase = RevisionPhase.FAILED
            rev = RevisionRuntime(row["name"], row["number"], row["hash"], phase)
            if phase is RevisionPhase.FAILED:
                rev.message, rev.reason = "interrupted by a controller restart", FailureReason.MODEL_LOAD_FAILED
            out.append(rev)
        return out

    # ---- lifecycle ---------------------------------------------------------------------------------------
    def shutdown(self) -> None:
        """Stop every model server and router and remove the Prometheus targets."""
        self.stopped.set()
        with self.lock:
            keys = list(self.states)
        for key in keys:
            state = self.states.get(key)
            if state is None:
                continue
            for rev in state.revisions:
                rev.stopping = True
                if rev.server is not None:
                    rev.server.stop(timeout=5.0)
            state.router.close()
        targets.clear(self.targets_dir)


def main(argv: list[str] | None = None) -> None:
    """``python -m sandbox.kserve --instance-dir D --metrics-port P``."""
    parser = argparse.ArgumentParser(description="sandbox KServe controller")
    parser.add_argument("--instance-dir", required=True, type=Path)
    parser.add_argument("--metrics-port", required=True, type=int)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    from tasks import kube

    instance = args.instance_dir
    data = instance / "kserve"
    tdir = targets.targets_dir(instance)
    targets.clear(tdir)
    dyn = kube.connect(str(instance / "kubeconfig"))
    ctl = Controller(dyn, data, tdir)

    def on_term(signum: int, frame: Any) -> None:
        ctl.shutdown()
        sys.exit(0)

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    for target in (ctl.watch_forever, ctl.resync_forever, ctl.work_forever):
        threading.Thread(target=target, name=target.__name__, daemon=True).start()
    ctl.synced.wait()
    MetricsServer(args.metrics_port)
    METRICS.watch_targets(lambda key, resource: targets.write(
        tdir, f"queue-proxy-{key[0]}-{key[1]}", f"127.0.0.1:{args.metrics_port}", target_labels(key, resource)))
    log.info("sandbox KServe controller ready; metrics on 127.0.0.1:%d", args.metrics_port)
    with contextlib.suppress(KeyboardInterrupt):
        while True:
            time.sleep(3600)
