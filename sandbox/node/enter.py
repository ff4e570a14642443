"""Start one container process inside its Pod: ``python -I enter.py PID ROOT WORKDIR -- CMD...``.

Joins the network, UTS and mount namespaces of the Pod's holder process ``PID`` (``setns``), changes root to the
container's root ``ROOT`` (a path inside that mount namespace), changes to ``WORKDIR`` and execs ``CMD`` with
the environment it was given (``PATH`` search inside the new root). Run by the node agent in a fresh session;
a separate script with no threads, so nothing unsafe happens between fork and exec.
Exit code 127 (command not found) or 126 (not executable) like a shell, with the reason on stderr.
"""

import ctypes
import os
import sys

CLONE_NEWNS = 0x00020000
CLONE_NEWNET = 0x40000000
CLONE_NEWUTS = 0x04000000


def main() -> None:
    pid, root, workdir = sys.argv[1], sys.argv[2], sys.argv[3]
    if sys.argv[4] != "--" or len(sys.argv) < 6:
        sys.exit("usage: enter.py PID ROOT WORKDIR -- CMD [ARG...]")
    cmd = sys.argv[5:]
    libc = ctypes.CDLL(None, use_errno=True)
    for ns, flag in (("net", CLONE_NEWNET), ("uts", CLONE_NEWUTS), ("mnt", CLONE_NEWNS)):
        fd = os.open(f"/proc/{pid}/ns/{ns}", os.O_RDONLY)
        if libc.setns(fd, flag) != 0:
            err = ctypes.get_errno()
            sys.exit(f"setns {ns} of pod holder {pid}: {os.strerror(err)}")
        os.close(fd)
    os.chroot(root)
    try:
        os.makedirs(workdir, exist_ok=True)
        os.chdir(workdir)
    except OSError as exc:
        sys.stderr.write(f"working directory {workdir}: {exc.strerror}\n")
        sys.exit(128)
    try:
        os.execvpe(cmd[0], cmd, os.environ)
    except FileNotFoundError:
        sys.stderr.write(f"exec {cmd[0]}: no such file or directory in the image's PATH\n")
        sys.exit(127)
    except PermissionError:
        sys.stderr.write(f"exec {cmd[0]}: permission denied\n")
        sys.exit(126)


if __name__ == "__main__":
    main()
