"""What the worst model reply costs the worker's memory: a 100 MB reply and a gzip bomb
(about a megabyte that decompresses to a gigabyte) sent to the real `ClaudeReasoner`.

    .venv/bin/python -m bench.reply_memory

The fake Messages API runs in a process of its own, so the resident set measured (sampled
every 2 ms while the reasoner reads, against the level just before) is the worker's alone.
Each reply is sent twice (the reasoner's request and its corrective request).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import threading
import time
from datetime import UTC, datetime, timedelta
from multiprocessing.queues import Queue
from pathlib import Path

from pydantic import SecretStr

from charter.reasoners import UnparseableReply
from charter.reasoners.claude import ClaudeReasoner
from schemas import Observation
from tests.support.claude_runs import acme
from tests.support.standins.messages_api import FakeMessagesApi, gzip_bomb, huge_reply

#: The bound the worker's growth must stay under.
BOUND = 10 * 1024 * 1024
_PAGE = 4096


def _serve(urls: Queue[str]) -> None:
    api = FakeMessagesApi().start()
    api.script("huge", huge_reply(100 * 1024 * 1024), huge_reply(100 * 1024 * 1024))
    api.script("bomb", gzip_bomb(), gzip_bomb())
    urls.put(api.url)
    threading.Event().wait()


def _rss() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1]) * _PAGE


def _observation(tenant: str) -> Observation:
    return Observation(
        tenant_id=tenant, agent="payables", observed_at=datetime.now(UTC), source="bench"
    )


async def _growth(reasoner: ClaudeReasoner, tenant: str) -> int:
    """The most the resident set grew while the reasoner read `tenant`'s replies."""
    observation = _observation(tenant)
    base, peak, done = _rss(), 0, threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _rss())
            time.sleep(0.002)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        await reasoner.reason(observation, acme())
        raise SystemExit(f"{tenant}: the reply was read as proposals")
    except UnparseableReply as exc:
        print(f"  {tenant}: {exc.problems[0]}")
    finally:
        done.set()
        sampler.join()
    return max(peak - base, 0)


async def main() -> int:
    urls: Queue[str] = multiprocessing.Queue()
    server = multiprocessing.Process(target=_serve, args=(urls,), daemon=True)
    server.start()
    try:
        reasoner = ClaudeReasoner(
            api_key=SecretStr("sk-ant-bench"),
            model="claude-sonnet-4-6",
            max_tokens=1024,
            timeout=timedelta(seconds=60),
            base_url=urls.get(timeout=30),
        )
        # Imports, the SDK's client, the first connection: an ordinary (unscripted) reply.
        await reasoner.reason(_observation("warm-up"), acme())
        worst = 0
        for tenant in ("huge", "bomb"):
            grew = await _growth(reasoner, tenant)
            worst = max(worst, grew)
            print(f"  {tenant}: resident set grew by {grew / 1024 / 1024:.1f} MiB")
    finally:
        server.kill()
    ok = worst < BOUND
    print(
        f"worst growth {worst / 1024 / 1024:.1f} MiB, bound {BOUND / 1024 / 1024:.0f} MiB: "
        f"{'ok' if ok else 'OVER'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
