"""Parallel paged lists, streamed: many ``(kind, namespace)`` lists at once, their pages handed to one consumer
through a bounded queue, so a backup of 50,000 objects never holds more than a few pages in memory.

Each list is read page by page with ``limit``/``continue`` (the apiserver's own chunking, as ``kubectl get
--chunk-size`` does); a list's pages are sequential (each ``continue`` token comes with the page before), so the
parallelism is across lists. While the consumer works on one page, the list threads fetch the next ones: the
apiserver serves and our process parses at the same time.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from kubernetes.client import ApiClient

from tasks.backup.discovery import KindInfo, list_page_chunks


@dataclass(frozen=True)
class ListJob:
    """One list: a kind, a namespace (None: all, or cluster-scoped), a label selector, and a tag the consumer
    gets back with each page (what to do with its objects)."""

    info: KindInfo
    namespace: str | None = None
    label_selector: str | None = None
    tag: Any = None


_DONE = object()


def stream_pages(api: ApiClient, jobs: Iterable[ListJob], *, parallelism: int = 8, limit: int = 500,
                 buffered_pages: int | None = None) -> Iterator[tuple[ListJob, list[dict[str, Any]]]]:
    """Yield ``(job, page of objects)`` for every page of every job, as the pages arrive (order across jobs is
    not kept; within a job, pages come in order).

    Args:
        parallelism: lists running at once (each a thread and a pooled connection).
        limit: objects per page.
        buffered_pages: pages fetched ahead of the consumer (default ``2 * parallelism``); the list threads
            wait when the queue is full, which bounds memory to about ``(buffered_pages + parallelism) * limit``
            objects.

    Raises:
        TemporaryError / PermanentError: the first failed list request (the other lists are stopped).
    """
    jobs = list(jobs)
    if not jobs:
        return
    pages: queue.Queue[Any] = queue.Queue(maxsize=buffered_pages or 2 * parallelism)
    stop = threading.Event()

    def offer(item: tuple[ListJob, Any]) -> bool:
        """Queue ``item`` unless the consumer has stopped; False when it has."""
        while not stop.is_set():
            try:
                pages.put(item, timeout=0.5)
                return True
            except queue.Full:
                continue
        return False

    def run(job: ListJob) -> None:
        try:
            for page in list_page_chunks(api, job.info, namespace=job.namespace, label_selector=job.label_selector,
                                         limit=limit):
                if not offer((job, page)):
                    return
        except BaseException as exc:  # handed to the consumer, raised there
            offer((job, exc))
        offer((job, _DONE))

    pool = ThreadPoolExecutor(max_workers=max(1, min(parallelism, len(jobs))), thread_name_prefix="list")
    try:
        for job in jobs:
            pool.submit(run, job)
        remaining = len(jobs)
        while remaining:
            job, page = pages.get()
            if page is _DONE:
                remaining -= 1
            elif isinstance(page, BaseException):
                raise page
            else:
                yield job, page
    finally:
        stop.set()  # list threads still running see it within 0.5 s and end
        pool.shutdown(wait=False, cancel_futures=True)
