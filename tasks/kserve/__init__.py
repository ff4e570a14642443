"""KServe as the storage initializer sees it: which credentials KServe v0.20 injects for an InferenceService
(ServiceAccount, Secrets, annotations, storage spec), what is wrong with their wiring, and KServe's own
download code run with them.

- :mod:`~tasks.kserve.credentials`: the types (:class:`~tasks.kserve.credentials.StorageCredentials`,
  :class:`~tasks.kserve.credentials.WiringProblem`, the cluster's credential config).
- :mod:`~tasks.kserve.secrets`: how one Secret is read (pure).
- :mod:`~tasks.kserve.manifests`: the KServe objects kaiops writes (InferenceService, LocalModelCache, S3 wiring)
  and the fields it reads back (storage URI, cache status) (pure).
- :mod:`~tasks.kserve.resolve`: which Secrets KServe reads, and the cluster read behind it.
- :mod:`~tasks.kserve.storage_initializer`: ``kserve_storage``'s download with resolved credentials.

Not here: the canary rollout of an InferenceService (``tasks/rollout/``), publishing models to object storage
and the warmup flow's steps (``tasks/storage/``), offline manifest rules (``tasks/manifests/rules/kserve.py``),
and running a KServe controller (the sandbox's).
"""
