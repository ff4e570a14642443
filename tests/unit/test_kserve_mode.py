"""kaiops decides an InferenceService's deployment mode as KServe v0.20's GetDeploymentMode does."""

from __future__ import annotations

import pytest

from tasks.rollout.isvc import deployment_mode

pytestmark = pytest.mark.unit


def isvc(annotation: str | None = None, status_mode: str | None = None) -> dict:
    meta = {"name": "m", "annotations": {"serving.kserve.io/deploymentMode": annotation} if annotation else {}}
    return {"metadata": meta, "status": {"deploymentMode": status_mode} if status_mode else {}}


@pytest.mark.parametrize(("annotation", "status_mode", "want"), [
    (None, None, "Serverless"),  # the release's configured default
    ("RawDeployment", None, "RawDeployment"), ("Standard", None, "RawDeployment"),
    ("Serverless", None, "Serverless"), ("Knative", None, "Serverless"),  # the webhook's rewrite of Serverless
    (None, "Standard", "RawDeployment"),  # the webhook wrote no annotation, the controller recorded the mode
    ("Knative", "Standard", "RawDeployment"),  # status wins: an annotation changed later does not switch modes
])
def test_status_first_then_annotation(annotation: str | None, status_mode: str | None, want: str) -> None:
    assert deployment_mode(isvc(annotation, status_mode)) == want
