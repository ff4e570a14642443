"""Prefect flows: orchestration only (order, retries, gates, reports), and the ``kaiops`` CLI.

Flows call functions in :mod:`tasks`; they never talk HTTP or Kubernetes themselves. ``flows/cli.py``
assembles the CLI from one module per command group in ``flows/commands/``.
"""
