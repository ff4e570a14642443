"""Prefect flows: orchestration only (order, retries, gates, reports), and the ``kaiops`` CLI.

Flows call functions in :mod:`tasks`; they never talk HTTP or Kubernetes themselves. ``flows/cli.py``
assembles the CLI from one module per command group in ``flows/commands/``.
"""

import os

# No phoning home from a platform tool: Prefect's ephemeral API server would send telemetry and Ray would
# report usage stats to addresses outside the cluster. A user who wants them sets the variables themselves.
# Prefect's temporary API server (no PREFECT_API_URL) gets 90 s instead of 20 s to start on a busy machine.
for _name, _value in (("PREFECT_SERVER_ANALYTICS_ENABLED", "false"), ("RAY_USAGE_STATS_ENABLED", "0"),
                      ("DO_NOT_TRACK", "1"), ("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")):
    os.environ.setdefault(_name, _value)
