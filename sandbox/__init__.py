"""The embedded local platform kaiops runs on when no real cluster is given: every service on 127.0.0.1.

Real processes: etcd and kube-apiserver (built from the Go module proxy), Prometheus, moto (S3),
fake-gcs-server (GCS), a Ray head, a Prefect server. Emulated: the KubeRay and KServe controllers'
status writing (later modules here). Not used at all against a real cluster.

``launcher`` starts and stops the services and keeps one state file; ``services/`` has one module per
service; ``pki`` makes the certificates and keys the apiserver needs.
"""
