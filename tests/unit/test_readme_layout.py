"""The README's "Layout" section against the tree: every path it names exists, and every top-level folder and
every package of configs/, flows/ and tasks/ is named there (a newcomer finds their room from it)."""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
ENTRY = re.compile(r"^( *)(\S+?(?:/|\.py|\.yaml))(?:\s|$)")


def layout_entries(readme: str) -> list[str]:
    """The paths the Layout block names: ``dir/`` at the left margin, ``name/`` or ``name.py`` indented below
    the last folder (continuation lines, which start with more spaces and a word, name nothing)."""
    block = readme.split("## Layout", 1)[1].split("```", 2)[1]
    paths: list[str] = []
    parent = ""
    for line in block.splitlines():
        match = ENTRY.match(line)
        if not match or len(match.group(1)) > 2:
            continue
        indent, name = len(match.group(1)), match.group(2)
        if indent == 0:
            parent = name
            paths.append(name)
        else:
            paths.append(parent + name)
    return paths


def test_layout_entries_reads_folders_files_and_skips_continuations() -> None:
    text = "## Layout\n\n```\nflows/   x\n  demo.py  y\n              more words/ not a path\ntasks/\n  ray/  z\n```\n"
    assert layout_entries(text) == ["flows/", "flows/demo.py", "tasks/", "tasks/ray/"]


def test_every_path_the_readme_layout_names_exists() -> None:
    entries = layout_entries((REPO / "README.md").read_text())
    assert len(entries) > 20
    missing = [e for e in entries if not (REPO / e).exists()]
    assert not missing, f"README Layout names paths that do not exist: {missing}"


def test_every_top_level_folder_and_package_is_in_the_readme_layout() -> None:
    named = set(layout_entries((REPO / "README.md").read_text()))
    ignored = [line.strip().rstrip("/") for line in (REPO / ".gitignore").read_text().splitlines()
               if line.strip().endswith("/") and not line.startswith(("!", "#"))]
    top = {d.name + "/" for d in REPO.iterdir() if d.is_dir() and not d.name.startswith(".")
           and not any(fnmatch.fnmatch(d.name, pattern) for pattern in ignored)}
    packages = {str(init.parent.relative_to(REPO)) + "/" for root in ("configs", "flows", "tasks")
                for init in (REPO / root).glob("*/__init__.py")}
    assert not top - named, f"top-level folders missing from the README Layout: {sorted(top - named)}"
    assert not packages - named, f"packages missing from the README Layout: {sorted(packages - named)}"
