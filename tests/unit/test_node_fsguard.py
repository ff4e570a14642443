"""The one guarded delete of the sandbox: refuses /, /etc, '..', outward symlinks and unclaimed roots."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sandbox import fsguard

pytestmark = pytest.mark.unit


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return fsguard.claim(tmp_path / "state")


def test_removes_a_tree_inside_the_claimed_root(root: Path) -> None:
    (root / "pods" / "a").mkdir(parents=True)
    (root / "pods" / "a" / "f").write_text("x")
    assert fsguard.remove(root / "pods", root) is True
    assert not (root / "pods").exists() and root.exists()
    assert fsguard.remove(root / "pods", root) is False  # already gone


@pytest.mark.parametrize("target", ["/", "/etc", "/etc/passwd", str(Path.home())])
def test_refuses_system_paths(root: Path, target: str) -> None:
    with pytest.raises(fsguard.UnsafePath):
        fsguard.remove(Path(target), root)
    assert Path(target).exists()


def test_refuses_system_paths_as_root() -> None:
    for target in ("/", "/etc"):
        with pytest.raises(fsguard.UnsafePath):
            fsguard.remove(Path(target) / "hosts", Path(target))
        with pytest.raises(fsguard.UnsafePath):
            fsguard.claim(Path(target))
    assert Path("/etc/hosts").exists()


def test_refuses_dotdot(root: Path, tmp_path: Path) -> None:
    sibling = tmp_path / "sibling"
    sibling.mkdir()
    for target in (root / "..", root / ".." / "sibling", root / "pods" / ".." / ".."):
        with pytest.raises(fsguard.UnsafePath):
            fsguard.remove(target, root)
    assert sibling.exists() and root.exists()


def test_refuses_the_root_itself(root: Path) -> None:
    with pytest.raises(fsguard.UnsafePath):
        fsguard.remove(root, root)
    with pytest.raises(fsguard.UnsafePath):
        fsguard.remove(root / ".", root)


def test_outward_symlink_removes_only_the_link(root: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("precious")
    (root / "link").symlink_to(outside)
    # through the link: refused (the parent resolves outside the root)
    with pytest.raises(fsguard.UnsafePath):
        fsguard.remove(root / "link" / "keep", root)
    # the link itself: only the link goes
    assert fsguard.remove(root / "link", root) is True
    assert (outside / "keep").read_text() == "precious"


def test_symlinked_root_to_etc_is_refused(tmp_path: Path) -> None:
    link = tmp_path / "evil"
    link.symlink_to("/etc")
    with pytest.raises(fsguard.UnsafePath):
        fsguard.remove(link / "hosts", link)  # /etc has no marker
    with pytest.raises(fsguard.UnsafePath):
        fsguard.claim(link)  # resolves to a top-level system directory
    assert Path("/etc/hosts").exists()


def test_unclaimed_directory_is_refused(tmp_path: Path) -> None:
    d = tmp_path / "notours"
    d.mkdir()
    (d / "f").write_text("x")
    with pytest.raises(fsguard.UnsafePath):
        fsguard.remove(d / "f", d)
    with pytest.raises(fsguard.UnsafePath):
        fsguard.claim(d)  # not empty and not created by the sandbox
    assert (d / "f").exists()


def test_claim_is_idempotent(tmp_path: Path) -> None:
    a = fsguard.claim(tmp_path / "s")
    (a / "x").write_text("1")
    assert fsguard.claim(tmp_path / "s") == a
    assert (a / fsguard.MARKER).exists() and os.path.isfile(a / "x")
