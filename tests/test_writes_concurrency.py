"""Eight processes running `specmem update` on one spec at once: the lock loses no update."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

from ingest.specs.frontmatter import normalize_frontmatter, parse_yaml, split_document

STATUSES = ["in-progress", "complete", "draft", "planned"] * 2


def _run_cli(args: list[str]) -> None:
    from retriever.cli import cli

    cli.main(args, prog_name="specmem")  # exits the process with the command's exit code


def test_eight_processes_lose_no_transition(tiny_specs: Path, tmp_path: Path):
    # forkserver: one interpreter imports the CLI once, then each worker is a cheap fork of it
    # (plain fork from a pytest process that may hold threads is unsafe; spawn re-imports 8x).
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["retriever.cli"])
    data_dir = tmp_path / "data"
    readme = tiny_specs / "003-search-ui" / "README.md"
    common = ["--specs-dir", str(tiny_specs), "--data-dir", str(data_dir), "update", "003"]
    workers = [
        context.Process(
            target=_run_cli, args=([*common, "--status", status, "--add-tag", f"worker-{i}"],)
        )
        for i, status in enumerate(STATUSES)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0

    text = readme.read_text(encoding="utf-8")
    meta = normalize_frontmatter(parse_yaml(split_document(text).yaml_text or "", str(readme)))
    assert meta.problems == []
    # Tags are appended in the order the writes happened, so they replay the serialization:
    # every write is there, and every status change it made is there as a transition.
    order = [tag for tag in meta.tags if tag.startswith("worker-")]
    assert sorted(order) == sorted(f"worker-{i}" for i in range(8))
    status, expected = "planned", []
    for tag in order:
        wanted = STATUSES[int(tag.removeprefix("worker-"))]
        if wanted != status:
            expected.append(wanted)
            status = wanted
    assert [t["status"] for t in meta.transitions] == expected
    assert meta.status == status
    stamps = [t["at"] for t in meta.transitions]
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)
    assert sorted(p.name for p in readme.parent.iterdir()) == ["DESIGN.md", "README.md"]


def test_concurrent_creates_get_distinct_numbers(tiny_specs: Path, tmp_path: Path):
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["retriever.cli"])
    common = ["--specs-dir", str(tiny_specs), "--data-dir", str(tmp_path / "data"), "create"]
    workers = [
        context.Process(target=_run_cli, args=([*common, f"Parallel {i}"],)) for i in range(4)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0
    created = sorted(p.name for p in tiny_specs.iterdir() if "parallel" in p.name)
    assert [name[:3] for name in created] == ["004", "005", "006", "007"]
    assert sorted(name[4:] for name in created) == [f"parallel-{i}" for i in range(4)]
