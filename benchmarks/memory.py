"""Memory: RSS of supervisor, gateway and worker idle and every 1,000 posts up to 10,000,
and the journal's size (worker.sqlite + -wal), with the instant fake claude.

Posts go in batches of 1,000 (posted back to back, then all answers awaited); RSS is read
from /proc/<pid>/status (pids from `mmclaude status`) after each batch and a short pause.

    python -m benchmarks.memory [--posts 10000] [--every 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import TYPE_CHECKING, Any

from benchmarks.common import NO_USER_CAP, ready_tree, rss_kb, save, tree_pids
from devtools.harness import open_tree

if TYPE_CHECKING:
    from pathlib import Path


def file_kb(path: Path) -> int:
    return round(path.stat().st_size / 1024) if path.exists() else 0


def sample(tree: Any, posts: int, elapsed: float) -> dict[str, Any]:
    pids = tree_pids(tree.status())
    rss = {name: rss_kb(pid) for name, pid in pids.items()}
    mb = {k: round(v / 1024, 1) if v else None for k, v in rss.items()}
    ours = round(sum(v for k, v in rss.items() if k != "claude" and v) / 1024, 1)
    row: dict[str, Any] = {
        "posts": posts,
        "elapsed_s": round(elapsed, 1),
        "rss_mb": mb,
        "ours_mb": ours,
        "sqlite_kb": file_kb(tree.state_dir / "worker.sqlite"),
        "wal_kb": file_kb(tree.state_dir / "worker.sqlite-wal"),
    }
    row["journal_kb"] = row["sqlite_kb"] + row["wal_kb"]
    cells = " ".join(f"{k}={v}" for k, v in mb.items())
    print(
        f"{posts:>6} posts  {cells}  ours={ours} MB  journal={row['sqlite_kb']}+{row['wal_kb']} kB"
    )
    return row


async def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.memory")
    parser.add_argument("--posts", type=int, default=10000)
    parser.add_argument("--every", type=int, default=1000, help="posts per batch and sample")
    args = parser.parse_args(argv)
    rows = []
    async with open_tree(real_claude=False, extra_env=NO_USER_CAP) as tree:
        thread, watch = await ready_tree(tree)
        began = time.monotonic()
        await asyncio.sleep(2.0)
        rows.append(sample(tree, 0, 0.0))
        done = 0
        while done < args.posts:
            batch = min(args.every, args.posts - done)
            for i in range(batch):
                await tree.mm.post_as("alice", f"post {done + i}", root_id=thread)
                if i % 50 == 49:
                    await asyncio.sleep(0)  # let the emulator write its socket frames
            done += batch
            await watch.count(done + 1, timeout=600)  # +1: the warm-up
            await asyncio.sleep(1.0)
            rows.append(sample(tree, done, time.monotonic() - began))
    per_1000 = (rows[-1]["sqlite_kb"] - rows[0]["sqlite_kb"]) / max(1, done) * 1000
    figures = {
        "samples": rows,
        "ours_idle_mb": rows[0]["ours_mb"],
        "ours_final_mb": rows[-1]["ours_mb"],
        "ours_max_mb": max(r["ours_mb"] for r in rows),
        "sqlite_kb_per_1000_posts": round(per_1000),
        "wal_kb_final": rows[-1]["wal_kb"],
        "posts_per_s": round(done / (rows[-1]["elapsed_s"] or 1), 1),
    }
    print(
        f"supervisor+gateway+worker: idle {figures['ours_idle_mb']} MB, after {done} posts "
        f"{figures['ours_final_mb']} MB (max {figures['ours_max_mb']}); journal "
        f"{figures['sqlite_kb_per_1000_posts']} kB per 1,000 posts (+ WAL {rows[-1]['wal_kb']} kB)"
    )
    save("memory", figures, argv)
    return figures


if __name__ == "__main__":
    asyncio.run(main())
