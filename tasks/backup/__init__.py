"""Backups of the platform's custom resources, retention, restore and restore drills.

What is here: discovery of the kinds a cluster serves (:mod:`.discovery`), parallel paged lists streamed
through a bounded queue (:mod:`.listing`), export with server-set fields stripped, as a stream
(:mod:`.export`), writing one backup from that stream, manifest last (:mod:`.write`), the object-store
layouts (content-addressed packs shared by incremental backups, or one storage object per resource; a
``manifest.json`` written last: :mod:`.store`), client-side encryption of Secrets (:mod:`.crypto`), the
retention plan (:mod:`.retention`, pure), restore in data-driven dependency order (:mod:`.order`; the checks
before any write: :mod:`.restore`; server-side apply by a bounded worker pool: :mod:`.apply`), per-kind
readiness rules (:mod:`.readiness`), drill comparison and RTO (:mod:`.drill`), Prometheus text-file metrics
(:mod:`.metrics`) and the Prefect tasks the flows call (:mod:`.steps`).

What is not here: orchestration (``flows/backup.py``), policy models (``configs/backup.py``) and model
publishing storage (``tasks/storage``).
"""
