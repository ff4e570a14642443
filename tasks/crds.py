"""The pinned KubeRay, KServe and Gateway API CRDs: where they come from and how to read them.

``configs/crds.yaml`` names each source (a Go module at a version, paths inside it and the sha256 of each
file). :func:`ensure_crds` fetches them once with ``go mod download`` into the kaiops cache and checks the
hashes; :func:`load_crds` returns the parsed CustomResourceDefinitions. Validation uses them offline; the
sandbox installs them into its apiserver.

A source name may be pinned at several releases (KubeRay: v1.6.2 and v1.7.0). One of them carries
``default: true`` (the release the sandbox runs); :func:`select_release` switches the process to another one
for offline validation (``kaiops validate --kuberay-version``).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from tasks.errors import PermanentError

REPO_ROOT = Path(__file__).resolve().parent.parent
SOURCES_FILE = REPO_ROOT / "configs" / "crds.yaml"
OPENAPI_FILE = REPO_ROOT / "configs" / "openapi.yaml"
# libyaml's loader when PyYAML was built with it: the KServe and KubeRay CRDs are megabytes of YAML.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def cache_root() -> Path:
    """Return the kaiops cache directory (``$KAIOPS_CACHE`` or ``~/.cache/kaiops``), created if missing."""
    root = Path(os.environ.get("KAIOPS_CACHE", Path.home() / ".cache" / "kaiops"))
    root.mkdir(parents=True, exist_ok=True)
    return root


@dataclass(frozen=True)
class CrdFile:
    """One pinned CRD file: its path inside the module and its sha256 (hex)."""

    path: str
    sha256: str

    @property
    def name(self) -> str:
        return Path(self.path).name


@dataclass(frozen=True)
class CrdSource:
    """A Go module at a pinned version that ships CRD files."""

    name: str
    module: str
    version: str
    files: tuple[CrdFile, ...]
    fallback: str | None = None
    default: bool = False

    @property
    def cache_dir(self) -> Path:
        return cache_root() / "crds" / f"{self.name}-{self.version}"


def load_sources(path: Path = SOURCES_FILE) -> list[CrdSource]:
    """Parse ``configs/crds.yaml`` into :class:`CrdSource` objects."""
    raw = yaml.safe_load(path.read_text())
    return [
        CrdSource(
            name=s["name"],
            module=s["module"],
            version=s["version"],
            fallback=s.get("fallback"),
            files=tuple(CrdFile(f["path"], f["sha256"]) for f in s["files"]),
            default=bool(s.get("default", False)),
        )
        for s in raw["sources"]
    ]


# The release chosen per source name for this process ({"kuberay": "v1.7.0"}); unset names use the default.
_selection: dict[str, str] = {}


def releases(name: str, sources: list[CrdSource] | None = None) -> list[str]:
    """The pinned versions of source ``name`` (e.g. ``"kuberay"`` -> ``["v1.6.2", "v1.7.0"]``), default first."""
    found = [s for s in sources or load_sources() if s.name == name]
    found.sort(key=lambda s: not s.default)
    return [s.version for s in found]


def select_release(name: str, version: str | None) -> None:
    """Make ``name`` resolve to ``version`` for the rest of the process (None: back to the default).

    Raises:
        ValueError: ``version`` is not pinned for ``name`` in ``configs/crds.yaml`` (the message lists the pins).
    """
    if version is None:
        _selection.pop(name, None)
        return
    known = releases(name)
    if version not in known:
        raise ValueError(f"{name} {version} is not a supported release; supported: {', '.join(known) or 'none'}")
    _selection[name] = version


def selected_sources(sources: list[CrdSource] | None = None,
                     selection: dict[str, str] | None = None) -> list[CrdSource]:
    """One source per name: the selected release (:func:`select_release`), else the ``default: true`` one,
    else the first listed. Order follows ``configs/crds.yaml``."""
    sources = sources or load_sources()
    chosen = dict(_selection if selection is None else selection)
    for name in dict.fromkeys(s.name for s in sources):
        if name not in chosen:
            chosen[name] = releases(name, sources)[0]
    return [s for s in sources if s.version == chosen[s.name]]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _module_dir(source: CrdSource) -> Path | None:
    """Download ``module@version`` through the Go module proxy; None when the proxy refuses it."""
    if shutil.which("go") is None:
        return None
    proc = subprocess.run(
        ["go", "mod", "download", "-json", f"{source.module}@{source.version}"],
        capture_output=True,
        text=True,
        cwd=cache_root(),
        env={**os.environ, "GOFLAGS": "-mod=mod", "GO111MODULE": "on"},
        check=False,
    )
    try:
        info = json.loads(proc.stdout or "{}")
    except json.JSONDecodeError:
        return None
    return Path(info["Dir"]) if info.get("Dir") else None


def _fallback_dirs(source: CrdSource) -> list[Path]:
    if not source.fallback:
        return []
    parents = [Path(os.environ["KAIOPS_SHARED_PARENT"])] if "KAIOPS_SHARED_PARENT" in os.environ else []
    parents += [REPO_ROOT.parent, Path("/work")]
    return [p / source.fallback for p in parents]


def ensure_crds(sources: list[CrdSource] | None = None) -> list[Path]:
    """Make every pinned CRD file present in the cache; return their paths, in ``configs/crds.yaml`` order.

    Without ``sources``: the selected release of each source (:func:`selected_sources`).

    Files already cached with the right sha256 are reused. Otherwise the module is fetched from the Go
    module proxy; where the proxy does not serve that version, the source's ``fallback`` directory is used.
    Either way the content must match the pinned sha256.

    Raises:
        PermanentError: a file cannot be obtained or its content differs from the pin.
    """
    paths: list[Path] = []
    for source in sources or selected_sources():
        missing = [f for f in source.files if not _cached_ok(source, f)]
        if missing:
            _fetch(source, missing)
        paths += [source.cache_dir / f.name for f in source.files]
    return paths


def _cached_ok(source: CrdSource, f: CrdFile) -> bool:
    target = source.cache_dir / f.name
    return target.is_file() and _sha256(target) == f.sha256


def _fetch(source: CrdSource, files: list[CrdFile]) -> None:
    module_dir = _module_dir(source)
    candidates = ([module_dir] if module_dir else []) + _fallback_dirs(source)
    source.cache_dir.mkdir(parents=True, exist_ok=True)
    for f in files:
        for base in candidates:
            origin = base / f.path if base == module_dir else base / f.name
            if origin.is_file() and _sha256(origin) == f.sha256:
                tmp = source.cache_dir / (f.name + ".tmp")
                shutil.copyfile(origin, tmp)
                tmp.replace(source.cache_dir / f.name)
                break
        else:
            tried = ", ".join(str(c) for c in candidates) or "nothing (no `go` on PATH and no fallback)"
            raise PermanentError(
                f"cannot obtain {source.module}@{source.version} {f.path} with sha256 {f.sha256}; "
                f"tried {tried}. Check network access to the Go module proxy or set KAIOPS_SHARED_PARENT "
                f"to the directory that holds {source.fallback or 'a copy'}."
            )


def ensure_openapi() -> list[Path]:
    """Make the pinned Kubernetes OpenAPI v3 documents (``configs/openapi.yaml``) present in the cache.

    Same pinning, fetching and caching as :func:`ensure_crds` (the documents ship in ``k8s.io/kubernetes``
    under ``api/openapi-spec/v3/``).

    Returns:
        paths of the cached JSON documents, in ``configs/openapi.yaml`` order.

    Raises:
        PermanentError: a document cannot be obtained or its content differs from the pin.
    """
    return ensure_crds(load_sources(OPENAPI_FILE))


def _load_yaml_docs(path: Path) -> list[Any]:
    """Parse a YAML stream; a JSON copy keyed by the file's sha256 makes later parses ~20x faster."""
    parsed = cache_root() / "parsed" / f"{_sha256(path)}.json"
    if parsed.is_file():
        cached: list[Any] = json.loads(parsed.read_text())
        return cached
    docs = list(yaml.load_all(path.read_text(), Loader=_YAML_LOADER))
    parsed.parent.mkdir(parents=True, exist_ok=True)
    tmp = parsed.with_name(f"{parsed.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(docs, default=str))
    tmp.replace(parsed)
    return docs


def selection_key() -> tuple[tuple[str, str], ...]:
    """The current release selection as a hashable key (for caches of things derived from the CRDs)."""
    return tuple(sorted(_selection.items()))


def load_crds() -> dict[tuple[str, str], dict[str, Any]]:
    """Return every pinned CRD of the selected releases, keyed by ``(group, kind)``, fetching them if needed.

    Returns:
        ``{("ray.io", "RayCluster"): <CustomResourceDefinition as a dict>, ...}``
    """
    return _load_crds(selection_key())


@cache
def _load_crds(key: tuple[tuple[str, str], ...]) -> dict[tuple[str, str], dict[str, Any]]:
    crds: dict[tuple[str, str], dict[str, Any]] = {}
    for path in ensure_crds(selected_sources(selection=dict(key))):
        for doc in _load_yaml_docs(path):
            if doc and doc.get("kind") == "CustomResourceDefinition":
                spec = doc["spec"]
                crds[(spec["group"], spec["names"]["kind"])] = doc
    return crds
