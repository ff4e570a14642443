"""Sandbox emulation of KServe on the real sandbox apiserver.

What it is: a controller that turns InferenceServices into real KServe model-server processes (one per
predictor revision, fed by KServe's own storage-initializer code), a router per InferenceService that splits
traffic by revision weight and exports Knative queue-proxy metrics, Prometheus file-SD targets, fault
injection and a load generator. What it is not: Knative, Istio or the KServe operator; nothing here runs
against a real cluster. Pure status rules live in :mod:`sandbox.kserve.revisions`.
"""
