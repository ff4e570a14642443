"""Install the pinned CRDs (configs/crds.yaml) into the sandbox apiserver and wait until each is Established."""

from __future__ import annotations

import yaml

from tasks import kube
from tasks.crds import ensure_crds

FIELD_MANAGER = "kaiops-sandbox"


def install_crds(kubeconfig: str, timeout: float = 60.0) -> list[str]:
    """Server-side apply every pinned CRD, then wait for condition ``Established``; return their names.

    Idempotent: applying the same CRDs again changes nothing.
    """
    dyn = kube.connect(kubeconfig)
    names: list[str] = []
    for path in ensure_crds():
        for doc in yaml.safe_load_all(path.read_text()):
            if not doc or doc.get("kind") != "CustomResourceDefinition":
                continue
            doc.get("metadata", {}).pop("creationTimestamp", None)
            doc.get("metadata", {}).get("annotations", {}).pop("kubectl.kubernetes.io/last-applied-configuration", None)
            kube.apply(dyn, doc, field_manager=FIELD_MANAGER, force=True)
            names.append(doc["metadata"]["name"])
    for name in names:
        kube.wait_for(
            dyn, "apiextensions.k8s.io/v1", "CustomResourceDefinition", name,
            lambda o: kube.condition_true(o, "Established"), timeout=timeout,
        )
    return names
