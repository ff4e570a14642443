"""The bad-input corpus: for every ``kaiops`` command, each parameter and a table of bad values for it.

Shared by the unit corpus (``tests/unit/test_bad_input.py``: in-process, no cluster: every case must be
refused with exit 2) and the live one (``tests/integration/test_bad_input_live.py``: the same cases against
the sandbox, with the cluster, the buckets and Prefect compared before and after).

A case is one command line: the command's good base arguments with exactly one parameter replaced by a bad
value. Files the cases need (a directory, a file that is not YAML, a non-empty directory warmup did not
create, an outward symlink) are made under a scratch directory, never at a system path.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# ---------------------------------------------------------------------------------------------- bad values
EMPTY = ["", "   "]
LOOKALIKE_NAME = ["\uff4dodel", "m\u043edel", "model\u200b"]  # fullwidth m, Cyrillic o, zero-width space
NAMES = [*EMPTY, *LOOKALIKE_NAME, "Model", "my model", "../etc", "/etc", "a" * 300, "model\n", "model_1", "-"]
URIS = [*EMPTY, "models/iris/v2", "s3:/models/iris", "s3://", "s3://mo dels/v2", "s3://models/v 2",
        "\u04153://models/v2", "s3://models/v\uff12", "s3://models/../v2", "S3://models/v2", "ftp://host/model",
        "/etc/passwd", "../models", "s3://models/v2\t", "s3://a/v2", "s3://127.0.0.1/v2", "gs://",
        "pvc://", "pvc://Claim/x", "hf://owner", "hf://a/b/c", "oci://repo", "oci+bogus://r/a:b",
        "https://host/", "minio://models/v2"]
BUCKET_URIS = [*URIS, "pvc://claim/models", "hf://owner/model", "https://host/model.joblib"]  # kaiops lists these
INTS = [*EMPTY, "abc", "\u00b2", "\u2162", "1.5", "-1", "1e3", "99999999999999999999", "0x10"]
FLOATS = [*EMPTY, "abc", "\u00b2", "nan", "inf", "-inf", "-1", "0", "1e308"]
HTTP_URLS = [*EMPTY, "127.0.0.1:9090", "http://", "http://a b:9090", "ftp://127.0.0.1:9090", "h\u0442tp://x:1"]
OUTPUTS = ["xml", "", "\uff4aSON", "json "]
CHOICES = [*EMPTY, "LOCAL", "l\u043ecal", "local ", "bogus"]


@dataclass
class Scratch:
    """Files the path cases point at, all under ``root``."""

    root: Path

    def __post_init__(self) -> None:
        self.dir = self.root / "a-directory"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.not_yaml = self.root / "not-yaml.yaml"
        self.not_yaml.write_text("key: [unclosed\n")
        self.a_list = self.root / "a-list.yaml"
        self.a_list.write_text("- 1\n- 2\n")
        self.binary = self.root / "binary.yaml"
        self.binary.write_bytes(b"\xff\xfe\x00garbage")
        self.occupied = self.root / "occupied"
        self.occupied.mkdir(exist_ok=True)
        (self.occupied / "precious.txt").write_text("not warmup's\n")
        self.outside = self.root / "outside"
        self.outside.mkdir(exist_ok=True)
        (self.outside / "precious.txt").write_text("outside the cache\n")
        self.outward = self.root / "outward-link"
        if not self.outward.is_symlink():
            self.outward.symlink_to(self.outside)
        self.a_file = self.root / "a-file"
        self.a_file.write_text("a file, not a directory\n")
        self.short_secret = self.root / "short-secret"
        self.short_secret.write_text("short\n")

    def config_files(self) -> list[str]:
        """Bad values for a config-file parameter."""
        return ["", "   ", str(self.root / "missing.yaml"), "..", str(self.dir), str(self.not_yaml),
                str(self.a_list), str(self.binary)]

    def write_dirs(self) -> list[str]:
        """Bad values for a directory kaiops would empty or write into."""
        return [str(self.occupied), str(self.outward), str(self.a_file), str(self.a_file / "below")]


@dataclass
class Command:
    """One ``kaiops`` command: its words, good base arguments, and the bad values per parameter.

    ``args`` maps a parameter (``ARG:0`` for the first positional, else the option) to its good value;
    ``bad`` maps a parameter to the bad values to try in its place.
    """

    words: list[str]
    args: dict[str, str | None] = field(default_factory=dict)
    bad: dict[str, list[str]] = field(default_factory=dict)

    def line(self, replace: str | None = None, value: str | None = None) -> list[str]:
        """The command line with ``replace`` set to ``value``."""
        args = dict(self.args)
        if replace is not None:
            args[replace] = value
        out = list(self.words)
        out += [v for k, v in sorted(args.items()) if k.startswith("ARG:") and v is not None]
        for k, v in args.items():
            if k.startswith("ARG:") or v is None:
                continue
            out += [k] if v == "<flag>" else [k, v]
        return out


@dataclass(frozen=True)
class Case:
    """One bad command line."""

    entry: str  # the command, e.g. "rollout"
    param: str
    value: str
    argv: list[str]

    @property
    def id(self) -> str:
        return f"{self.entry}[{self.param}={self.value!r}]"


def commands(s: Scratch) -> list[Command]:
    """Every ``kaiops`` command with its good base arguments and bad values (see ``kaiops --help``)."""
    cluster = str(REPO / "configs/clusters/sandbox.yaml")
    policy = str(REPO / "configs/canary/default.yaml")
    backups = str(REPO / "configs/backups/nightly.yaml")
    releases = str(REPO / "configs/releases")
    model_dir = str(REPO / "tasks")  # any existing directory with files
    cfg = s.config_files()
    out = OUTPUTS
    cmds = [
        Command(["provision"], {"ARG:0": cluster, "--dry-run": "<flag>"},
                {"ARG:0": cfg, "--timeout": FLOATS, "--output": out}),
        Command(["cluster", "scale"], {"ARG:0": cluster, "--group": "cpu", "--replicas": "1", "--dry-run": "<flag>"},
                {"ARG:0": cfg, "--group": NAMES, "--replicas": [*INTS, "1001", "5"], "--timeout": FLOATS,
                 "--output": out}),
        *[Command(["cluster", verb], {"ARG:0": cluster, "--dry-run": "<flag>"},
                  {"ARG:0": cfg, "--timeout": FLOATS, "--output": out})
          for verb in ("suspend", "resume", "upgrade", "teardown", "drill")],
        Command(["deploy"], {"--file": str(REPO / "deployments/prefect.yaml"), "--releases": releases,
                             "--dry-run": "<flag>"},
                {"--file": cfg, "--releases": ["", str(s.root / "missing"), str(s.a_file), str(s.dir)],
                 "--timezone": [*EMPTY, "Mars/Olympus", "UTC ", "../../etc/passwd"], "--output": out}),
        Command(["demo"], {"--out": str(s.root / "demo-out")}, {"--out": [str(s.a_file), str(s.a_file / "below")],
                                                                "--output": out}),
        Command(["validate"], {"ARG:0": str(REPO / "tests/manifests/good/rbac.yaml"), "--output": "json"},
                {"ARG:0": [str(s.root / "missing.yaml"), str(s.dir), str(s.not_yaml), str(s.a_list),
                           str(s.binary)], "--output": out}),
        Command(["status"], {"--backup-policy": backups, "--kubeconfig": str(s.root / "missing-kubeconfig")},
                {"--backup-policy": cfg, "--watch": [*EMPTY, "abc", "\u00b2", "nan", "inf", "-1"], "--output": out}),
        Command(["monitoring", "check"], {"ARG:0": str(REPO / "deployments/monitoring/prometheusrule-kaiops.yaml")},
                {"ARG:0": [str(s.root / "missing.yaml"), str(s.dir), str(s.not_yaml), str(s.a_list), str(s.binary)],
                 "--namespace": NAMES, "--prometheus": HTTP_URLS, "--output": out}),
        Command(["rollout"], {"ARG:0": "iris", "--namespace": "default", "--storage-uri": "s3://models/iris/v2",
                              "--policy": policy, "--prometheus-url": "http://127.0.0.1:9", "--dry-run": "<flag>"},
                {"ARG:0": NAMES, "--namespace": NAMES, "--storage-uri": URIS, "--policy": cfg,
                 "--prometheus-url": HTTP_URLS, "--out": s.write_dirs()[2:], "--output": out}),
        Command(["rollback"], {"ARG:0": "iris", "--namespace": "default", "--dry-run": "<flag>"},
                {"ARG:0": NAMES, "--namespace": NAMES, "--output": out}),
        Command(["guard"], {"--dry-run": "<flag>"}, {"--namespace": NAMES, "--output": out}),
        Command(["publish"], {"ARG:0": model_dir, "ARG:1": "s3://models/iris/v2", "--dry-run": "<flag>"},
                {"ARG:0": ["", str(s.root / "missing"), str(s.a_file), str(s.dir)], "ARG:1": BUCKET_URIS,
                 "--model-format": [*EMPTY, "SK LEARN", "sk\u043bearn"],
                 "--aws-block": [*EMPTY, "nope", "aws-credentials/", "aws-credentials/A B", "x/y/z"],
                 "--gcp-block": [*EMPTY, "gcp-credentials/", "x/y/z"], "--output": out}),
        Command(["warmup"], {"ARG:0": "iris", "--namespace": "default", "--dry-run": "<flag>"},
                {"ARG:0": NAMES, "--namespace": NAMES, "--cache-dir": s.write_dirs(), "--node-group": NAMES,
                 "--output": out}),
        Command(["backup"], {"--policy": backups, "--dry-run": "<flag>"}, {"--policy": cfg, "--output": out}),
        Command(["backups", "list"], {"--policy": backups}, {"--policy": cfg, "--output": out}),
        Command(["retention"], {"--policy": backups, "--dry-run": "<flag>"}, {"--policy": cfg, "--output": out}),
        Command(["restore"], {"ARG:0": "20250101T020000Z-1a2b3c", "--policy": backups, "--dry-run": "<flag>"},
                {"ARG:0": [*EMPTY, "../20250101T020000Z-1a2b3c", "/etc", "20250101T020000Z-1a2b3\uff43",
                           "latest"], "--policy": cfg,
                 "--namespace-map": ["=", "a=", "=b", "prod", "Prod=staging", "prod=Staging", "prod=a=b",
                                     "prod=sta ging", "prod=../x"],
                 "--existing": CHOICES, "--output": out}),
        Command(["drill"], {"--policy": backups, "--dry-run": "<flag>"},
                {"--policy": cfg, "--backup": [*EMPTY, "../x", "latest"], "--readiness": CHOICES, "--output": out}),
        Command(["sandbox", "up"], {}, {"--service": [*EMPTY, "nope", "S3", "s3 "], "--output": out}),
        Command(["sandbox", "down"], {}, {"--output": out}),
        Command(["sandbox", "status"], {}, {"--output": out}),
        Command(["sandbox", "env"], {}, {"--output": out}),
        Command(["sandbox", "load"], {"ARG:0": "iris", "--namespace": "default", "--duration": "1"},
                {"ARG:0": NAMES, "--namespace": NAMES, "--rps": FLOATS, "--duration": FLOATS, "--output": out}),
        Command(["fleet", "backup"], {"--policy": backups, "--dry-run": "<flag>"},
                {"--policy": cfg, "--namespace": NAMES, "--runner": CHOICES, "--workers": [*INTS, "0", "257"],
                 "--ray-address": [*EMPTY, "http://127.0.0.1:8265", "ray://", "127.0.0.1:port"], "--output": out}),
        Command(["fleet", "drill"], {"--policy": backups, "--timeout": "60"},
                {"--policy": cfg, "--namespace": NAMES, "--runner": CHOICES, "--workers": [*INTS, "0", "257"],
                 "--readiness": CHOICES, "--timeout": FLOATS, "--output": out}),
        Command(["fleet", "inventory"], {"ARG:0": "default"},
                {"ARG:0": NAMES, "--runner": CHOICES, "--workers": [*INTS, "0", "257"], "--output": out}),
        Command(["registry", "serve"], {"--releases": releases, "--dry-run": "<flag>"},
                {"--host": [*EMPTY, "not a host", "127.0.0.\uff11"], "--port": [*INTS, "0", "65536"],
                 "--releases": ["", str(s.root / "missing"), str(s.a_file), str(s.dir)],
                 "--tolerance": FLOATS, "--state": [str(s.dir), str(s.a_file / "below.sqlite")],
                 "--secret-file": [str(s.root / "missing"), str(s.dir), str(s.short_secret), str(s.binary)],
                 "--output": out}),
        Command(["registry", "webhook"], {"--url": "http://127.0.0.1:8787/mlflow", "--dry-run": "<flag>"},
                {"--url": HTTP_URLS, "--name": [*EMPTY, "a" * 300, "name\n"],
                 "--secret-file": [str(s.root / "missing"), str(s.dir)], "--output": out}),
    ]
    return cmds


def cases(s: Scratch, keep: Callable[[Command], bool] = lambda c: True) -> Iterator[Case]:
    """Every bad command line of :func:`commands`."""
    for cmd in commands(s):
        if not keep(cmd):
            continue
        for param, values in cmd.bad.items():
            for value in values:
                yield Case(" ".join(cmd.words), param, value, cmd.line(param, value))
