"""The holder of one Pod's namespaces: ``unshare --net --mount --uts --propagation private python -I holder.py SPEC``.

Runs in the Pod's new network, UTS and (private) mount namespaces and builds, inside that mount namespace
only, one root filesystem per container (see ``images.yaml``): a tmpfs root with the image's parts (busybox,
or copy-on-write overlays of the host's /usr and /etc with files the image lacks whited out), fresh /proc,
/sys and a minimal /dev, the Pod's /etc/hosts, /etc/resolv.conf and /etc/hostname, then the volumes at the
container's mountPaths. Volumes of kind ``tmpfs`` (configMap, secret, projected, downwardAPI, emptyDir with
medium Memory) are tmpfs mounts in this namespace, filled by the agent through ``/proc/<holder pid>/root``:
their content never exists on the host's disk. Nothing mounted here is visible outside the Pod.

When done it writes ``ok`` to the spec's ``ready`` file (or ``error: ...`` and exits 1) and execs
``sleep infinity``, which keeps the namespaces alive; containers join them (``enter.py``).
"""

import ctypes
import json
import os
import socket
import stat
import subprocess
import sys

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC = 32, 4096, 16384
_libc = ctypes.CDLL(None, use_errno=True)


def mount(src, dst, fstype=None, flags=0, data=None):
    enc = [None if v is None else v.encode() for v in (src, dst, fstype, data)]
    if _libc.mount(enc[0], enc[1], enc[2], flags, enc[3]) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount {src} -> {dst} ({fstype or 'bind'}): {os.strerror(err)}")


def bind(src, dst, ro):
    if os.path.isdir(src):
        os.makedirs(dst, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        if not os.path.exists(dst):
            open(dst, "a").close()
    mount(src, dst, None, MS_BIND | MS_REC)
    if ro:
        mount(None, dst, None, MS_REMOUNT | MS_BIND | MS_RDONLY)


def write(path, text, mode=0o644):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if os.path.lexists(path) and os.path.islink(path):
        os.unlink(path)  # inside the container's own root (tmpfs/overlay upper), never the host's
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)


def build_dev(root):
    dev = os.path.join(root, "dev")
    os.makedirs(dev, exist_ok=True)
    mount("tmpfs", dev, "tmpfs", MS_NOSUID, "mode=755,size=65536k")
    for name in ("null", "zero", "full", "random", "urandom", "tty"):
        bind(f"/dev/{name}", os.path.join(dev, name), False)
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
                         ("stderr", "/proc/self/fd/2"), ("ptmx", "pts/ptmx")):
        os.symlink(target, os.path.join(dev, name))
    os.makedirs(os.path.join(dev, "shm"), mode=0o1777, exist_ok=True)
    os.makedirs(os.path.join(dev, "pts"), exist_ok=True)
    open(os.path.join(dev, "termination-log"), "a").close()


def build_root(c, layers, files, applets):
    root = c["root"]
    os.makedirs(root, exist_ok=True)
    mount("tmpfs", root, "tmpfs", 0, "mode=755")
    if c["rootfs"] == "host":
        for entry in os.listdir("/"):
            src = os.path.join("/", entry)
            dst = os.path.join(root, entry)
            if os.path.islink(src):
                os.symlink(os.readlink(src), dst)
            elif entry in ("usr", "etc"):
                up, work = os.path.join(layers, entry, "up"), os.path.join(layers, entry, "work")
                os.makedirs(up, exist_ok=True)
                os.makedirs(work, exist_ok=True)
                for hidden in c.get("hide", []):
                    if hidden.startswith(f"/{entry}/"):
                        wh = os.path.join(up, hidden[len(entry) + 2:])
                        os.makedirs(os.path.dirname(wh), exist_ok=True)
                        os.mknod(wh, stat.S_IFCHR | 0o000, os.makedev(0, 0))
                os.makedirs(dst, exist_ok=True)
                mount("overlay", dst, "overlay", 0, f"lowerdir={src},upperdir={up},workdir={work}")
            elif os.path.isdir(src) and entry not in ("proc", "sys", "dev"):
                os.makedirs(dst, exist_ok=True)
        os.chmod(os.path.join(root, "tmp"), 0o1777)
    else:  # busybox: the static binary and its applet links, nothing else of the host
        for d in ("bin", "sbin", "usr/bin", "usr/sbin", "etc", "root", "home", "var", "tmp"):
            os.makedirs(os.path.join(root, d), exist_ok=True)
        os.chmod(os.path.join(root, "tmp"), 0o1777)
        bind(os.path.realpath("/bin/busybox"), os.path.join(root, "bin", "busybox"), True)
        for applet in applets:
            link = os.path.join(root, "bin", applet)
            if applet != "busybox" and not os.path.lexists(link):
                os.symlink("busybox", link)
        write(os.path.join(root, "etc", "passwd"),
              "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n")
        write(os.path.join(root, "etc", "group"), "root:x:0:\nnogroup:x:65534:\n")
    for path in c.get("paths", []):
        if os.path.isdir(path):
            bind(path, os.path.join(root, path.lstrip("/")), True)
    for dst, src in c.get("binds", {}).items():  # single files an image has at a fixed path (its ENTRYPOINT)
        bind(src, os.path.join(root, dst.lstrip("/")), True)
    for d in ("proc", "sys"):
        os.makedirs(os.path.join(root, d), exist_ok=True)
    mount("proc", os.path.join(root, "proc"), "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    mount("sysfs", os.path.join(root, "sys"), "sysfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC)
    build_dev(root)
    for name, text in files.items():
        write(os.path.join(root, "etc", name), text)
    for m in c.get("mounts", []):
        dst = os.path.join(root, m["dst"].lstrip("/"))
        if m.get("missing") and not os.path.lexists(m["src"]):  # a subPath the volume does not hold yet
            if m["missing"] == "dir":
                os.makedirs(m["src"], exist_ok=True)
            else:  # filled in place by the agent after this (same inode, so the bind shows it)
                os.makedirs(os.path.dirname(m["src"]), exist_ok=True)
                open(m["src"], "a").close()
        bind(m["src"], dst, m.get("ro", False))


def report(path, text):
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.replace(path + ".tmp", path)


def main():
    with open(sys.argv[1]) as f:
        spec = json.load(f)
    try:
        if spec.get("hostname"):
            socket.sethostname(spec["hostname"])
        subprocess.run(["ip", "link", "set", "lo", "up"], check=False)
        layers_root = spec["layers"]
        os.makedirs(layers_root, exist_ok=True)
        mount("tmpfs", layers_root, "tmpfs", 0, "mode=700")
        for vol in spec.get("volumes", {}).values():
            os.makedirs(vol["path"], exist_ok=True)
            if vol["kind"] == "tmpfs":
                mount("tmpfs", vol["path"], "tmpfs", MS_NOSUID | MS_NODEV, "mode=755")
        applets = []
        if any(c["rootfs"] == "busybox" for c in spec["containers"].values()):
            out = subprocess.run(["/bin/busybox", "--list"], capture_output=True, text=True, check=True).stdout
            applets = out.split()
        for name, c in spec["containers"].items():
            build_root(c, os.path.join(layers_root, name), spec.get("files", {}), applets)
    except Exception as exc:
        report(spec["ready"], f"error: {exc}")
        sys.exit(1)
    report(spec["ready"], "ok")
    os.execv("/usr/bin/sleep", ["sleep", "infinity"])


if __name__ == "__main__":
    main()
