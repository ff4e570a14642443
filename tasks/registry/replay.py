"""Delivery ids already accepted, so a replayed delivery is refused (HTTP 409).

A small SQLite table (``delivery_id`` → first-seen Unix time) in a file, so a restart of the receiver
still refuses replays; rows older than the TTL are dropped. A replay older than the TTL is refused anyway
by the signature check's timestamp tolerance, so the TTL only needs to exceed that tolerance.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path


class DeliveryStore:
    """Remember delivery ids for ``ttl`` seconds.

    Args:
        path: SQLite file (created if missing), or ``":memory:"``.
        ttl: seconds a delivery id is remembered; at least the signature tolerance.
    """

    def __init__(self, path: str | Path, ttl: float = 3600.0) -> None:
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("CREATE TABLE IF NOT EXISTS deliveries (id TEXT PRIMARY KEY, seen REAL NOT NULL)")
        self._lock = threading.Lock()
        self.ttl = ttl

    def first_time(self, delivery_id: str, now: float) -> bool:
        """Record ``delivery_id`` at ``now`` (Unix seconds); True when it was not seen within the TTL."""
        with self._lock:
            self._db.execute("DELETE FROM deliveries WHERE seen < ?", (now - self.ttl,))
            cur = self._db.execute("INSERT OR IGNORE INTO deliveries (id, seen) VALUES (?, ?)", (delivery_id, now))
            return cur.rowcount == 1

    def forget(self, delivery_id: str) -> None:
        """Drop ``delivery_id`` (used when posting the event failed, so MLflow's retry is accepted)."""
        with self._lock:
            self._db.execute("DELETE FROM deliveries WHERE id = ?", (delivery_id,))

    def close(self) -> None:
        self._db.close()
