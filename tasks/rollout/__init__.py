"""Canary rollouts of KServe InferenceServices: the state on the object, traffic per deployment mode, reports.

What it is: ``state`` (phases, the ``rollout.kaiops.io/*`` annotation record, the lease, pure transitions),
``kube_ops`` (read/write the record with optimistic concurrency, move traffic in Serverless or RawDeployment
mode, wait for a revision, Kubernetes Events), ``report`` (plots, markdown, JSON) and ``tasks`` (the Prefect
tasks the rollout, rollback and guard flows call).

What it is not: the analysis (pure statistics in :mod:`tasks.analysis`), Prometheus access
(:mod:`tasks.metrics`) or the orchestration (``flows/rollout.py``).
"""
