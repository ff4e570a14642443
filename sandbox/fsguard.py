"""The one guarded way the sandbox deletes files and unmounts: never outside a directory it created.

Every delete, unmount or overwrite of the node agent and the network service goes through :func:`remove`
(or :func:`check` first). A path is accepted only when, after resolving symlinks and ``..``, it lies strictly
inside an allowed root, and that root itself holds the marker file :data:`MARKER` written by :func:`claim`
when the sandbox created the directory. So ``/``, ``/etc``, ``$HOME``, ``<root>/..`` and a symlink inside a
root that points out are all refused with :class:`UnsafePath`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
from pathlib import Path

MARKER = ".kaiops-sandbox-owned"


class UnsafePath(ValueError):
    """A delete/unmount target lies outside every directory the sandbox created (nothing was changed)."""


def claim(root: Path) -> Path:
    """Create directory ``root`` (if missing) and mark it as created by the sandbox; return it resolved.

    Raises:
        UnsafePath: ``root`` is a system path (``/``, a top-level directory, ``$HOME``) or an existing
            non-empty directory without the marker (the sandbox did not create it).
    """
    resolved = Path(os.path.realpath(root))
    if len(resolved.parts) < 3 or resolved == Path.home().resolve():
        raise UnsafePath(f"{root}: refusing to claim a system directory as sandbox state")
    marker = resolved / MARKER
    if resolved.exists() and not marker.exists() and any(resolved.iterdir()):
        raise UnsafePath(f"{root}: exists, is not empty and was not created by the sandbox (no {MARKER})")
    resolved.mkdir(parents=True, exist_ok=True)
    marker.touch()
    return resolved


def check(path: Path, root: Path) -> Path:
    """Return ``path`` resolved when it lies strictly inside the claimed directory ``root``.

    ``path`` itself is not followed when it is a symlink (removing a link removes the link, not its target);
    its parent directories are resolved, so a symlinked parent pointing out is refused.

    Raises:
        UnsafePath: ``root`` is not claimed (no marker), or ``path`` is ``root`` itself or outside it.
    """
    real_root = Path(os.path.realpath(root))
    if len(real_root.parts) < 3 or not (real_root / MARKER).is_file():
        raise UnsafePath(f"{root}: not a directory the sandbox created (no {MARKER}); refusing to touch {path}")
    p = Path(os.path.abspath(path))
    if p.name in ("", ".", ".."):
        raise UnsafePath(f"{path}: refusing a path ending in '.' or '..'")
    real = Path(os.path.realpath(p.parent)) / p.name
    if real == real_root or real_root not in real.parents:
        raise UnsafePath(f"{path} (resolves to {real}) is outside the sandbox directory {real_root}; not touched")
    return real


def remove(path: Path, root: Path) -> bool:
    """Delete ``path`` (file, symlink or directory tree) if it lies inside claimed directory ``root``.

    Mount points inside a tree are never crossed: a directory on another filesystem is refused, so a bind
    mount left behind cannot make this delete the mounted source.

    Returns:
        True when something was removed, False when ``path`` did not exist.
    Raises:
        UnsafePath: as :func:`check`, or the tree holds a mount point.
    """
    real = check(path, root)
    if not os.path.lexists(real):
        return False
    if real.is_symlink() or not real.is_dir():
        real.unlink()
        return True
    dev = real.stat().st_dev
    for dirpath, dirnames, _ in os.walk(real):
        for d in dirnames:
            sub = Path(dirpath) / d
            with contextlib.suppress(FileNotFoundError):
                st = sub.lstat()
                if stat.S_ISDIR(st.st_mode) and st.st_dev != dev:
                    raise UnsafePath(f"{sub} is a mount point inside {real}; unmount it first, nothing removed")
    shutil.rmtree(real)
    return True
