"""Backups of the platform's custom resources, retention, restore and restore drills.

What is here: discovery of the kinds a cluster serves (:mod:`.discovery`), export with server-set fields
stripped (:mod:`.export`), the object-store layouts (content-addressed packs shared by incremental
backups, or one storage object per resource; a ``manifest.json`` written last: :mod:`.store`),
client-side encryption of Secrets (:mod:`.crypto`), the retention plan (:mod:`.retention`, pure), restore
in data-driven dependency order (:mod:`.order`, :mod:`.restore`), per-kind readiness rules
(:mod:`.readiness`), drill comparison and RTO (:mod:`.drill`), Prometheus text-file metrics
(:mod:`.metrics`) and the Prefect tasks the flows call (:mod:`.steps`).

What is not here: orchestration (``flows/backup.py``), policy models (``configs/backup.py``) and model
publishing storage (``tasks/storage``).
"""
