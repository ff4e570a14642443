"""The bad-input corpus, in-process and without any cluster: every bad value of every ``kaiops`` command is
refused with exit 2 naming the parameter, before any connection is tried; every flow's parameters refuse
the same values at the flow boundary. (The same command lines run against the sandbox, with the cluster,
buckets and Prefect compared before and after, in ``tests/integration/test_bad_input_live.py``.)"""

from __future__ import annotations

import contextlib
import math
from pathlib import Path

import pytest

from tests.bad_input_corpus import NAMES, URIS, Case, Scratch, cases
from tests.cli_runner import run_cli

pytestmark = pytest.mark.unit

# Nothing reachable: a case that slips past the input checks fails loudly instead of touching anything.
UNREACHABLE = {
    "KUBECONFIG": "/nonexistent/kaiops-corpus-kubeconfig",
    "PREFECT_API_URL": "http://127.0.0.1:9/api",
    "PROMETHEUS_URL": "http://127.0.0.1:9",
    "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
    "STORAGE_EMULATOR_HOST": "http://127.0.0.1:9",
    "KAIOPS_SANDBOX": "badinput-corpus-unit",
    "KAIOPS_REGISTRY_WEBHOOK_SECRET": "corpus-secret-0123456789abcdef",
    "MLFLOW_TRACKING_URI": "http://127.0.0.1:9",
}


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Scratch:
    return Scratch(tmp_path_factory.mktemp("corpus"))


def _all_cases() -> list[Case]:
    return list(cases(Scratch(Path("/nonexistent/corpus-ids"))))  # ids only; the scratch files are per run


def _mentions(case: Case, text: str) -> bool:
    """The refusal names the parameter (its option, its metavar) or shows the bad value."""
    lowered = text.lower()
    if case.param.startswith("--") and case.param in text:
        return True
    shown = case.value.strip()
    if shown and (shown in text or repr(case.value)[1:-1] in text):
        return True
    if case.param.startswith("ARG:"):  # click names a positional by its metavar; kaiops by its name
        return any(word in text for word in ("CONFIG", "ISVC", "SRC", "DEST", "TARGET", "BACKUP", "FILES",
                                              "NAMESPACES", "isvc", "name"))
    return case.param.lstrip("-").replace("-", "_") in lowered or case.param.lstrip("-") in lowered


def test_corpus_cli(scratch: Scratch, monkeypatch, capsys):
    """Every case exits 2 with a message naming the parameter; prints the corpus size."""
    for key, value in UNREACHABLE.items():
        monkeypatch.setenv(key, value)
    (scratch.root / "home").mkdir(exist_ok=True)
    monkeypatch.setenv("HOME", str(scratch.root / "home"))  # no default cache dir or sandbox binary is found
    all_cases = list(cases(scratch))
    failures = []
    for case in all_cases:
        result = run_cli(case.argv)
        if result.code != 2:
            failures.append(f"{case.id}: exit {result.code}: {result.text.strip()[-300:]}")
        elif not _mentions(case, result.text):
            failures.append(f"{case.id}: exit 2 but the message names neither {case.param} nor the value: "
                            f"{result.text.strip()[-300:]}")
    entries = {c.entry for c in all_cases}
    with capsys.disabled():
        print(f"\nbad-input corpus (CLI, no cluster): {len(all_cases)} cases over {len(entries)} commands, "
              f"{len(failures)} not refused as they should be")
    assert not failures, "\n".join(failures)


def test_corpus_covers_every_command():
    """A command added to ``kaiops`` without corpus cases fails here."""
    import typer.main

    from flows.cli import app

    def walk(cmd, prefix):
        if hasattr(cmd, "commands"):
            for name, sub in cmd.commands.items():
                yield from walk(sub, [*prefix, name])
        else:
            yield " ".join(prefix)

    every = set(walk(typer.main.get_command(app), []))
    covered = {c.entry for c in _all_cases()}
    assert every - covered == set(), f"commands without bad-input cases: {sorted(every - covered)}"


# ------------------------------------------------------------------------------------------- flow boundary

def _flow_cases():
    """(flow, good parameters, parameter, bad value) for every flow parameter that takes user input."""
    from flows import backup, cluster_drill, fleet, provision, publish, rollout, warmup

    cluster = "configs/clusters/sandbox.yaml"
    bad_seconds = [0, -1, math.nan, math.inf, "abc", None]
    rows = []
    for name in NAMES:
        rows += [(rollout.canary_rollout, {"isvc": "iris", "namespace": "default", "storage_uri": "s3://models/v2",
                                           "policy_file": "p.yaml"}, "isvc", name),
                 (rollout.canary_rollout, {"isvc": "iris", "namespace": "default", "storage_uri": "s3://models/v2",
                                           "policy_file": "p.yaml"}, "namespace", name),
                 (rollout.canary_rollback, {"isvc": "iris", "namespace": "default"}, "namespace", name),
                 (warmup.warmup_model, {"target": "iris", "namespace": "default"}, "namespace", name),
                 (fleet.fleet_inventory, {"namespaces": ["default"]}, "namespaces", [name]),
                 (provision.scale_ray_cluster, {"config_path": cluster, "group": "cpu", "replicas": 1}, "group",
                  name)]
    for uri in URIS:
        rows.append((rollout.canary_rollout, {"isvc": "iris", "namespace": "default", "storage_uri": "s3://models/v2",
                                              "policy_file": "p.yaml"}, "storage_uri", uri))
        rows.append((publish.publish_model, {"src": "tasks", "dest": "s3://models/v2"}, "dest", uri))
    for seconds in bad_seconds:
        rows += [(provision.provision_ray_cluster, {"config_path": cluster}, "timeout_s", seconds),
                 (provision.upgrade_ray_cluster, {"config_path": cluster}, "timeout_s", seconds),
                 (provision.suspend_ray_cluster, {"config_path": cluster}, "timeout_s", seconds),
                 (provision.resume_ray_cluster, {"config_path": cluster}, "timeout_s", seconds),
                 (provision.teardown_ray_cluster, {"config_path": cluster}, "timeout_s", seconds),
                 (cluster_drill.head_failure_drill, {"config_path": cluster, "yes": True}, "timeout_s", seconds),
                 *[(f, {}, "timeout", seconds) for f in (backup.restore_drill, fleet.fleet_drill)
                   if seconds is not None]]  # None: the policy's own timeout
    for replicas in (-1, 1001, "²", 1.5, None):
        rows.append((provision.scale_ray_cluster, {"config_path": cluster, "group": "cpu", "replicas": 1},
                     "replicas", replicas))
    for path in ("", "   ", None, 3):
        rows += [(provision.provision_ray_cluster, {"config_path": cluster}, "config_path", path),
                 (backup.backup, {}, "policy", path)]
    for mapping in ({"Prod": "staging"}, {"prod": "../x"}, {"": "b"}, {"prod": " "}):
        rows.append((backup.restore, {"backup_id": "20250101T020000Z-1a2b3c"}, "namespace_map", mapping))
    return rows


def test_corpus_flow_parameters(capsys):
    """Each flow refuses each bad parameter value before its body runs (Prefect's parameter validation, from
    the annotated types in :mod:`configs.inputs`), so a UI or deployment run is checked like the CLI."""
    from prefect.exceptions import ParameterTypeError

    rows = _flow_cases()
    accepted = []
    for flow_, good, param, value in rows:
        flow_.validate_parameters(good)  # the good base is accepted
        try:
            flow_.validate_parameters({**good, param: value})
        except ParameterTypeError:
            continue
        accepted.append(f"{flow_.name}({param}={value!r})")
    with capsys.disabled():
        print(f"\nbad-input corpus (flow parameters): {len(rows)} cases over "
              f"{len({r[0].name for r in rows})} flows, {len(accepted)} accepted")
    assert not accepted, "flow parameters accepted bad values:\n" + "\n".join(accepted)


# -------------------------------------------------------------------------------------------- config files

def _loaders():
    from configs.backup import load_policy as load_backup
    from configs.canary import load_policy as load_canary
    from configs.ray_cluster import load_cluster_config
    from configs.release import load_release

    root = Path(__file__).resolve().parents[2] / "configs"
    return [("cluster", load_cluster_config, root / "clusters/sandbox.yaml"),
            ("canary policy", load_canary, root / "canary/default.yaml"),
            ("backup policy", load_backup, root / "backups/nightly.yaml"),
            ("release", load_release, root / "releases/sandbox-demo.yaml")]


def _leaves(value, path=()):
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _leaves(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value[:2]):
            yield from _leaves(v, (*path, i))
    else:
        yield path, value


def _set(doc, path, value):
    import copy

    out = copy.deepcopy(doc)
    node = out
    for p in path[:-1]:
        node = node[p]
    node[path[-1]] = value
    return out


#: Values wrong for every scalar field: a list or a mapping where a scalar stands; NaN, infinities and a huge
#: number where a number stands; empty, blank and look-alike text where text stands.
WRONG_FOR_ANY = [[1, 2], {"x": 1}]
WRONG_NUMBERS = [float("nan"), float("inf"), -1e308, 10**30]
WRONG_TEXT = ["", "   ", "\uff4dodel"]


def test_corpus_config_files(tmp_path: Path, capsys):
    """Each config kind: every scalar field set to a value wrong for it is refused as InputError naming the
    file and the field path (never another exception); lists/mappings where scalars stand always are."""
    import yaml

    from tasks.errors import InputError

    count, problems = 0, []
    for kind, load, good in _loaders():
        doc = yaml.safe_load(good.read_text())
        for path, value in _leaves(doc):
            bad = list(WRONG_FOR_ANY)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                bad += WRONG_NUMBERS
            if isinstance(value, str) and path[-1] in ("name", "namespace", "inference_service", "destination",
                                                        "destination_prefix", "rayVersion", "image"):
                bad += WRONG_TEXT
            for wrong in bad:
                count += 1
                target = tmp_path / f"{kind.replace(' ', '-')}-{count}.yaml"
                target.write_text(yaml.safe_dump(_set(doc, path, wrong), allow_unicode=True))
                where = ".".join(map(str, path))
                try:
                    load(target)
                except InputError as exc:
                    if exc.source != str(target):
                        problems.append(f"{kind} {where}={wrong!r}: the error names {exc.source}, not the file")
                    continue
                except Exception as exc:  # a crash: a traceback instead of exit 2
                    problems.append(f"{kind} {where}={wrong!r}: {type(exc).__name__}: {exc}")
                    continue
                problems.append(f"{kind} {where}={wrong!r}: accepted")
    with capsys.disabled():
        print(f"\nbad-input corpus (config files): {count} cases over {len(_loaders())} config kinds, "
              f"{len(problems)} not refused")
    assert not problems, "\n".join(problems)


def test_config_loaders_only_ever_refuse(tmp_path: Path):
    """Hypothesis: any text as a config file is loaded or refused with InputError, nothing else."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from tasks.errors import InputError

    loaders = _loaders()

    @given(st.sampled_from(range(len(loaders))), st.one_of(st.text(max_size=200), st.binary(max_size=100)))
    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    def check(which, content):
        target = tmp_path / "config.yaml"
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content, encoding="utf-8", errors="surrogatepass")
        with contextlib.suppress(InputError):
            loaders[which][1](target)

    check()
