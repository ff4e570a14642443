"""Knative Serving's release objects (CRDs, RBAC, config-* ConfigMaps, the four control-plane Deployments,
webhook configurations) read from the Go module cache and adjusted for the sandbox; see :mod:`.release`."""
