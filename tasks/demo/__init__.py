"""The demo's tasks (``make demo``, ``kaiops demo``): the iris models it trains and the setup steps it runs on
the sandbox before kaiops's real flows take over.

- :mod:`~tasks.demo.models`: three small scikit-learn iris classifiers (good, better, bad on purpose).
- :mod:`~tasks.demo.setup`: train, create the bucket, wire S3 credentials for KServe, write the
  InferenceService manifest.

The demo's runbook is :mod:`flows.demo`. Not here: anything a production flow needs (the demo only calls the
real flows), and the sandbox-side helpers that serve and load the demo's InferenceService and drive its
MLflow release (``sandbox/kserve/demo.py``, ``sandbox/release_demo.py``: they start sandbox processes, so they
live with the sandbox).
"""
