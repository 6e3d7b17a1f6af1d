"""Random SIGKILLs of a real `specmem serve` under a stream of keyed writes (spec 084).

One client works through a fixed plan of keyed requests: status callbacks that walk spec 003
through planned -> in-progress -> complete (each one a real transition), tag additions on 001 and
events on 002. The server is SIGKILLed at a random moment, wherever it is; the client then retries
its request in flight, with the same key and the same If-Match, against a restarted server, as an
orchestrator would. At the end every planned write is in the files or the log exactly once: as
many new transitions as status callbacks, in order, every tag, every event once.
"""

from __future__ import annotations

import json
import random
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

from ingest.index.embedding import FakeEmbedder
from retriever import SpecMemory
from tests.test_faults import build_corpus
from tests.test_idempotency_crash import AUTH, serving

pytestmark = pytest.mark.slow

STATUSES = ("in-progress", "complete", "planned")
OPS = 60
MAX_ROUNDS = 40


def _plan() -> list[dict[str, Any]]:
    ops = []
    for i in range(OPS):
        kind = ("status", "tag", "event")[i % 3]
        if kind == "status":
            body: dict[str, Any] = {"status": STATUSES[(i // 3) % 3]}
            ops.append({"kind": kind, "method": "PATCH", "path": "/specs/003", "json": body})
        elif kind == "tag":
            body = {"tags": {"add": [f"t{i}"]}}
            ops.append({"kind": kind, "method": "PATCH", "path": "/specs/001", "json": body})
        else:
            body = {"spec": "002", "type": "note", "summary": f"op {i}"}
            ops.append({"kind": kind, "method": "POST", "path": "/events", "json": body})
        ops[-1]["key"] = f"stress-{i}"
    return ops


def _events(specs: Path, data: Path) -> list[str]:
    memory = SpecMemory(specs, data, embedder=FakeEmbedder())
    return [e["summary"] for e in memory.events("002", limit=1000)]


@pytest.mark.parametrize("seed", [505, 606])
def test_random_kills_under_keyed_writes_keep_every_write_exactly_once(tmp_path, seed):
    specs, data = build_corpus(tmp_path)
    before = SpecMemory(specs, data, embedder=FakeEmbedder()).get_spec("003").meta.transitions
    rng = random.Random(seed)
    ops = _plan()
    figures = {"seed": seed, "ops": OPS, "requests": 0, "acknowledged": 0, "replayed": 0}
    figures.update(kills=0, dropped=0, refused=0)
    if_match: dict[int, str] = {}
    done = 0
    rounds = 0
    while done < OPS and rounds < MAX_ROUNDS:
        rounds += 1
        with serving(specs, data) as (server, base):
            killer = threading.Timer(rng.uniform(0.05, 0.8), server.kill)
            if rounds < MAX_ROUNDS:  # the last round is left alone, so the plan always finishes
                killer.start()
            with httpx.Client(base_url=base, timeout=60) as client:
                while done < OPS:
                    op = ops[done]
                    try:
                        headers = {**AUTH, "Idempotency-Key": op["key"]}
                        if op["method"] == "PATCH":
                            if done not in if_match:  # read once; every retry sends the same
                                if_match[done] = client.get(op["path"]).headers["etag"]
                            headers["If-Match"] = if_match[done]
                        figures["requests"] += 1
                        answer = client.request(
                            op["method"], op["path"], json=op["json"], headers=headers
                        )
                    except httpx.TransportError:
                        figures["dropped"] += 1
                        break
                    if answer.status_code >= 400:
                        figures["refused"] += 1
                        pytest.fail(f"op {done} ({op['kind']}): {answer.status_code} {answer.text}")
                    figures["acknowledged"] += 1
                    figures["replayed"] += answer.headers.get("idempotent-replayed") == "true"
                    done += 1
            killer.cancel()
            if done < OPS:  # the loop broke on a dropped request: the server is dead or dying
                server.wait(timeout=30)
            figures["kills"] += server.poll() is not None
    figures["rounds"] = rounds
    assert done == OPS, figures

    memory = SpecMemory(specs, data, embedder=FakeEmbedder())
    transitions = memory.get_spec("003").meta.transitions[len(before) :]
    planned = [op["json"]["status"] for op in ops if op["kind"] == "status"]
    assert [t["status"] for t in transitions] == planned, figures
    tags = set(memory.get_spec("001").meta.tags)
    assert {op["json"]["tags"]["add"][0] for op in ops if op["kind"] == "tag"} <= tags
    events = _events(specs, data)
    assert sorted(events) == sorted(op["json"]["summary"] for op in ops if op["kind"] == "event")
    figures.update(
        stored_transitions=len(transitions), stored_events=len(events), stored_tags=len(tags)
    )
    print(json.dumps(figures))
    assert figures["kills"] >= 3, figures  # the run did kill the server mid-stream
