"""The model registry (MLflow) as kaiops uses it: webhook deliveries in, release requests out.

What is here: the delivery signature check (:mod:`.signature`, pure), the replay store of delivery ids
(:mod:`.replay`), the mapping of a delivery to a release request (:mod:`.requests`, pure), the receiver
app (:mod:`.webhook`, FastAPI), the Prefect event it posts (:mod:`.prefect_events`) and the MLflow client
calls the release and reconcile flows make (:mod:`.mlflow_ops`).

What is not here: orchestration (``flows/release.py``, ``flows/reconcile.py``), release configuration
(``configs/release.py``), and publishing/rollout (``tasks/storage``, the rollout tasks).
"""
