"""Which restore-drill scratch namespaces a sweep deletes: those of dead drills only (dicts, no cluster)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tasks.backup import scratch
from tasks.backup.drill import plan_drill

pytestmark = pytest.mark.unit
NOW = datetime(2026, 12, 1, 22, 0, tzinfo=UTC)


def ns(name: str, *, drill: str | None = "abc123", renewed: datetime | None = None, lease: float = 300,
       created: datetime | None = None, terminating: bool = False, raw: dict | None = None) -> dict:
    meta: dict = {"name": name, "labels": {scratch.DRILL_LABEL: drill} if drill else {}}
    if renewed is not None:
        meta["annotations"] = scratch.lease_annotations("host:1", renewed, lease)
    if raw is not None:
        meta["annotations"] = raw
    if created is not None:
        meta["creationTimestamp"] = created.strftime("%Y-%m-%dT%H:%M:%SZ")
    if terminating:
        meta["deletionTimestamp"] = NOW.strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": meta}


def test_expired_lease_is_dead_and_a_renewed_one_is_not() -> None:
    expired = ns("d-aaaaaa-ray", renewed=NOW - timedelta(seconds=301))
    running = ns("d-bbbbbb-ray", renewed=NOW - timedelta(seconds=299))
    assert scratch.dead_scratch([expired, running], NOW) == ["d-aaaaaa-ray"]


def test_a_running_drill_is_never_swept_however_old_its_namespace() -> None:
    # created a day ago, renewed a minute ago: alive
    alive = ns("d-cccccc-ray", renewed=NOW - timedelta(seconds=60), created=NOW - timedelta(days=1))
    assert scratch.dead_scratch([alive], NOW) == []


def test_unlabelled_and_terminating_namespaces_are_left_alone() -> None:
    old = NOW - timedelta(days=3)
    plain = ns("team-a", drill=None, created=old)
    going = ns("d-dddddd-ray", renewed=old, terminating=True)
    assert scratch.dead_scratch([plain, going], NOW) == []


def test_no_lease_counts_from_creation_with_the_grace() -> None:
    grace = timedelta(seconds=scratch.UNLEASED_GRACE_SECONDS)
    young = ns("d-eeeeee-ray", created=NOW - grace + timedelta(seconds=5))
    old = ns("d-ffffff-ray", created=NOW - grace - timedelta(seconds=5))
    unparseable = ns("d-999999-ray", raw={scratch.RENEWED: "yesterday", scratch.LEASE: "300"},
                     created=NOW - grace - timedelta(seconds=5))
    bad_length = ns("d-888888-ray", raw={scratch.RENEWED: "2026-12-01T21:59:00Z", scratch.LEASE: "five"},
                    created=NOW - timedelta(seconds=10))
    nothing = ns("d-777777-ray")  # neither lease nor creation time: never swept
    assert scratch.dead_scratch([young, old, unparseable, bad_length, nothing], NOW) == ["d-999999-ray",
                                                                                         "d-ffffff-ray"]


def test_lease_annotations_round_trip() -> None:
    notes = scratch.lease_annotations("host:42", NOW, 120)
    assert notes == {scratch.HOLDER: "host:42", scratch.RENEWED: "2026-12-01T22:00:00.000000Z",
                     scratch.LEASE: "120"}
    assert scratch.lease_expiry(ns("x", raw=notes)) == NOW + timedelta(seconds=120)


def test_plan_drill_labels_and_leases_its_fresh_namespaces() -> None:
    objs = [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "ray"}},
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ray", "labels": {"env": "prod"}}}]
    lease = scratch.lease_annotations("host:1", NOW, 300)
    fresh = plan_drill(objs, "abc123", lease).restore[0]
    assert fresh["metadata"] == {"name": "ray", "labels": {scratch.DRILL_LABEL: "abc123"}, "annotations": lease}
    assert scratch.is_scratch(fresh)
    assert plan_drill(objs, "abc123").restore[0]["metadata"] == {"name": "ray",
                                                                 "labels": {scratch.DRILL_LABEL: "abc123"}}
