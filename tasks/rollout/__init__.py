"""Canary rollouts of KServe InferenceServices: the state on the object, traffic per deployment mode, reports.

What it is: ``state`` (phases, the ``rollout.kaiops.io/*`` annotation record, the lease, pure transitions),
``isvc`` (the InferenceService as a rollout reads it), ``record`` (read/write the record with optimistic
concurrency, the rollout's Kubernetes Events), ``readiness`` (is the new revision serving?), ``routing`` (move
traffic in Serverless or RawDeployment mode behind one ``Routing`` interface), ``report`` (plots, markdown,
JSON) and ``tasks`` (the Prefect tasks the rollout, rollback and guard flows call).

What it is not: the analysis (pure statistics in :mod:`tasks.analysis`), Prometheus access
(:mod:`tasks.metrics`) or the orchestration (``flows/rollout.py``).
"""
