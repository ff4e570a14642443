"""Benchmark: what the idle sandbox costs, per service: memory and CPU over a window when nothing runs (issue 18,
item 4). Goal: the whole stack <= 3 GiB and < 10 % of one core.

Each sandbox service runs in its own session (its record's pid is the session id), so a service's processes are
those of its session, children included (Ray's raylet and agents, MLflow's workers and job consumers). For each
service it samples ``/proc/<pid>/stat`` (user + system CPU ticks) at the start and the end of ``--seconds`` and
``/proc/<pid>/smaps_rollup`` (PSS: shared pages split between the processes sharing them, so the sum is not
inflated; RSS is printed too). CPU of a process that starts within the window counts from zero; one that exits
within it is left out. CPU seconds consumed are independent of the machine's load, memory too, so the numbers
hold on a busy machine; the load average is printed with them.

Run against a running sandbox (``kaiops sandbox up``), nothing else using it:
``KAIOPS_SANDBOX=<instance> .venv/bin/python bench/footprint.py [--seconds 60] [--json bench/results/footprint.json]``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

GOAL_GIB = 3.0
GOAL_CORE = 0.10
TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def proc_table() -> dict[int, tuple[int, int, str, int]]:
    """pid -> (session id, user+system CPU ticks, command name, RSS bytes) of every process."""
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            raw = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        comm = raw[raw.index("(") + 1: raw.rindex(")")]
        fields = raw[raw.rindex(")") + 2:].split()  # fields[0] is field 3 (state)
        out[int(entry)] = (int(fields[3]), int(fields[11]) + int(fields[12]), comm, int(fields[21]) * PAGE)
    return out


def pss(pid: int) -> int:
    """Proportional set size in bytes (0 when the process is gone or unreadable)."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    from sandbox.paths import instance_dir, instance_name
    from sandbox.state import SandboxState

    state = SandboxState.load(instance_dir())
    sessions = {rec.pid: name for name, rec in state.services.items()}
    if not sessions:
        sys.exit(f"sandbox {instance_name()!r} is not running: kaiops sandbox up")
    load_before = os.getloadavg()
    start = proc_table()
    t0 = time.monotonic()
    time.sleep(args.seconds)
    end = proc_table()
    elapsed = time.monotonic() - t0
    load_after = os.getloadavg()

    rows = []
    for sid, name in sessions.items():
        pids = [p for p, (s, *_rest) in end.items() if s == sid]
        ticks = sum(end[p][1] - (start[p][1] if p in start and start[p][0] == sid else 0) for p in pids)
        top = sorted(pids, key=lambda p: -(end[p][1] - (start[p][1] if p in start else 0)))[:3]
        rows.append({
            "service": name, "processes": len(pids),
            "pss_mib": sum(pss(p) for p in pids) / (1 << 20),
            "rss_mib": sum(end[p][3] for p in pids) / (1 << 20),
            "cpu_core": ticks / TICK / elapsed,
            "busiest": [f"{end[p][2]}:{(end[p][1] - (start[p][1] if p in start else 0)) / TICK / elapsed:.1%}"
                        for p in top],
        })
    rows.sort(key=lambda r: -r["cpu_core"])
    total_gib = sum(r["pss_mib"] for r in rows) / 1024
    total_core = sum(r["cpu_core"] for r in rows)
    lines = [f"idle sandbox {instance_name()!r} over {elapsed:.0f} s; machine: {os.cpu_count()} cores, load average "
             f"{load_before[0]:.1f} at start, {load_after[0]:.1f} at end (other helpers' work, not the sandbox's)",
             f"{'service':15} {'procs':>5} {'PSS MiB':>8} {'RSS MiB':>8} {'CPU % core':>10}  busiest processes"]
    lines += [f"{r['service']:15} {r['processes']:5d} {r['pss_mib']:8.0f} {r['rss_mib']:8.0f} {r['cpu_core']:10.1%}  "
              + ", ".join(r["busiest"]) for r in rows]
    lines.append(f"{'total':15} {sum(r['processes'] for r in rows):5d} {total_gib * 1024:8.0f} "
                 f"{sum(r['rss_mib'] for r in rows):8.0f} {total_core:10.1%}")
    lines.append(f"memory {total_gib:.2f} GiB (goal <= {GOAL_GIB} GiB) {'OK' if total_gib <= GOAL_GIB else 'MISSED'}; "
                 f"CPU {total_core:.1%} of one core (goal < {GOAL_CORE:.0%}) "
                 f"{'OK' if total_core < GOAL_CORE else 'MISSED'}")
    print("\n".join(lines))
    if args.json:
        args.json.write_text(json.dumps({"seconds": elapsed, "load_average": [load_before, load_after],
                                         "total_gib": total_gib, "total_core": total_core, "rows": rows,
                                         "printed": lines}, indent=1) + "\n")


if __name__ == "__main__":
    main()
