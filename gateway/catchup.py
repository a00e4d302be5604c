"""The REST catch-up's pure rules: where in the thread it starts paging and how one thread
page becomes replies in order."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gateway.models import Post, PostList

__all__ = ["CATCHUP_MARGIN_MS", "catchup_start", "thread_page"]

# Events may have been lost, and a missed post can be older than one accepted after it:
# re-reading a minute costs a few repeats (the worker de-duplicates), missing one costs an
# answer.
CATCHUP_MARGIN_MS = 60_000


def catchup_start(catch_up_from: int, margin_ms: int = CATCHUP_MARGIN_MS) -> int:
    """The ``create_at`` (ms) from which to page the thread: the worker's newest post minus
    a generous margin (not this gateway's newest accepted post: an older post may have been
    missed while a newer one got through); 0 means from the start."""
    return max(0, catch_up_from - margin_ms) if catch_up_from > 0 else 0


def thread_page(page: PostList, thread_id: str) -> tuple[list[Post], tuple[int, str] | None]:
    """The replies of one thread page in ``(create_at, id)`` order, and the cursor after them.

    The thread endpoint puts the requested (root) post first on every page; it is dropped.
    """
    listed = set(page.order)
    posts = sorted(
        (p for pid, p in page.posts.items() if pid != thread_id and pid in listed),
        key=lambda p: (p.create_at, p.id),
    )
    cursor = (posts[-1].create_at, posts[-1].id) if posts else None
    return posts, cursor
