"""Connecting to the apiserver and finding an API resource: the official ``kubernetes`` client's
:class:`DynamicClient`, so custom resources (RayCluster, InferenceService, ...) and core kinds are handled
the same way."""

from __future__ import annotations

import os
from typing import Any

from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.resource import Resource

from tasks.errors import NotFound

FIELD_MANAGER = "kaiops"
"""The one field manager every kaiops write uses (server-side apply)."""


def connect(kubeconfig: str | None = None, context: str | None = None) -> DynamicClient:
    """Return a dynamic client for ``kubeconfig``/``context`` (defaults: ``$KUBECONFIG``, current context).

    Inside a pod with no kubeconfig, the in-cluster ServiceAccount is used.
    """
    # The client reads $KUBECONFIG once at import time; read it again so later exports count.
    kubeconfig = kubeconfig or os.environ.get("KUBECONFIG") or None
    try:
        api = k8s_config.new_client_from_config(config_file=kubeconfig, context=context)
    except k8s_config.ConfigException:
        k8s_config.load_incluster_config()
        api = k8s.ApiClient()
    return DynamicClient(api)


def resource_for(dyn: DynamicClient, api_version: str, kind: str) -> Resource:
    """Return the API resource for ``apiVersion``/``kind`` (discovery, refreshed once if the kind is new).

    Raises:
        NotFound: the kind is not served (e.g. its CRD is not installed).
    """
    try:
        return dyn.resources.get(api_version=api_version, kind=kind)
    except Exception:  # discovery cache may predate a CRD that was just installed
        dyn.resources.invalidate_cache()
        try:
            return dyn.resources.get(api_version=api_version, kind=kind)
        except Exception as exc:
            raise NotFound(f"{kind}.{api_version} is not served by this cluster") from exc


def object_ref(obj: dict[str, Any]) -> str:
    """``Kind namespace/name`` for messages."""
    meta = obj.get("metadata", {})
    ns = meta.get("namespace")
    return f"{obj.get('kind')} {ns + '/' if ns else ''}{meta.get('name')}"
