"""Sandbox emulation of KServe's LocalModelCache status (the localmodel controller + node agent, one node).

It watches ``LocalModelCache`` objects (cluster-scoped, serving.kserve.io/v1alpha1) and, for each node group
that exists as a ``LocalModelNodeGroup``, really downloads the model for the sandbox's one node
(``sandbox-node``) into ``<instance dir>/localmodel/<cache name>`` with
:func:`tasks.kserve.storage_initializer.download` and the credentials KServe v0.20 would use: the cache's
``spec.serviceAccountName`` (default ``default``) in the download-job namespace ``kserve-localmodel-jobs``
(``localModel.jobNamespace``). It then writes
``status.nodeStatus`` (node -> ``NodeDownloading`` / ``NodeDownloaded`` / ``NodeDownloadError``) and
``status.copies`` (``total``, ``available``, ``failed``) as the real controller does. Not emulated: PVs/PVCs,
the per-node LocalModelNode objects, ``inferenceServices`` back-references, deletion of node copies.
"""
