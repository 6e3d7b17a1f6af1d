"""Attribution on the LeanSpec dev set (`leanspec/attribution-dev.jsonl`), through the real CLI:
`specmem attribute --batch` on the commits as written (message and every file) and with the
reference removed (cleaned message, code files only), against plain search on the cleaned
message. Also how well the confidence is calibrated.

    python -m tests.bench.bench_attribution [--corpora DIR] [--data-root DIR]

Scored: a labelled commit counts when the first spec is one it implemented and the answer did
not abstain ("first, answered"); "first, listed" ignores abstention. A version bump (no label)
counts when the answer abstained. Calibration: the first spec's confidence against whether it
was right, over every answer that listed one (Brier score, expected calibration error over
five bins, and the bins).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import eval_corpora

CORPUS = "leanspec"
DEV_FILE = "attribution-dev.jsonl"
VARIANTS = {
    "as written": ("message_raw", "files"),
    "reference removed": ("message", "code_files"),
}
BINS = 5


def requests(rows: Sequence[dict[str, Any]], message_key: str, files_key: str) -> str:
    return "".join(
        json.dumps(
            {"id": r["qid"], "message": r[message_key], "files": r[files_key], "at": r["at"]}
        )
        + "\n"
        for r in rows
    )


def run_batch(specs: Path, data: Path, lines: str) -> list[dict[str, Any]]:
    """`specmem attribute --batch` in a process of its own, as a user would run it."""
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as handle:
        handle.write(lines)
    command = [
        str(Path(sys.executable).with_name("specmem")), "--specs-dir", str(specs),
        "--data-dir", str(data), "attribute", "--batch", handle.name,
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    Path(handle.name).unlink()
    if done.returncode != 0:
        raise SystemExit(f"specmem attribute --batch failed ({done.returncode}): {done.stderr}")
    return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]


def score(rows: Sequence[dict[str, Any]], answers: Sequence[dict[str, Any]]) -> dict[str, Any]:
    by_id = {a["id"]: a for a in answers}
    labelled = answered = listed = bumps = abstained = 0
    pairs: list[tuple[float, bool]] = []
    for row in rows:
        answer = by_id[row["qid"]]
        first = answer["specs"][0] if answer["specs"] else None
        right = first is not None and first["spec"] in row["relevant"]
        if row["relevant"]:
            labelled += 1
            listed += right
            answered += right and not answer["abstained"]
        else:
            bumps += 1
            abstained += answer["abstained"]
        if first is not None:
            pairs.append((first["confidence"], right))
    return {
        "labelled": labelled,
        "first_answered": answered / labelled,
        "first_listed": listed / labelled,
        "bumps": bumps,
        "bumps_abstained": abstained,
        "calibration": calibration(pairs),
    }


def calibration(pairs: Sequence[tuple[float, bool]]) -> dict[str, Any]:
    if not pairs:
        return {}
    brier = sum((c - r) ** 2 for c, r in pairs) / len(pairs)
    bins: list[dict[str, Any]] = []
    ece = 0.0
    for b in range(BINS):
        low, high = b / BINS, (b + 1) / BINS
        inside = [(c, r) for c, r in pairs if low <= c < high or (b == BINS - 1 and c == 1.0)]
        if not inside:
            continue
        mean_c = sum(c for c, _ in inside) / len(inside)
        accuracy = sum(r for _, r in inside) / len(inside)
        ece += len(inside) / len(pairs) * abs(mean_c - accuracy)
        bins.append(
            {"bin": f"{low:.1f}-{high:.1f}", "n": len(inside), "confidence": round(mean_c, 3),
             "right": round(accuracy, 3)}
        )  # fmt: skip
    return {"n": len(pairs), "brier": round(brier, 4), "ece": round(ece, 4), "bins": bins}


def plain_search(specs: Path, data: Path, rows: Sequence[dict[str, Any]]) -> float:
    """Plain hybrid search on the cleaned message: the first hit right, over labelled commits."""
    from retriever.service import SpecMemory

    memory = SpecMemory(specs, data)
    labelled = [r for r in rows if r["relevant"]]
    right = 0
    for row in labelled:
        hits = memory.search(row["message"][:2000], limit=1)
        right += bool(hits) and hits[0].spec in row["relevant"]
    return right / len(labelled)


def measure(corpora: Path, data_root: Path, say: Any = print) -> dict[str, Any] | None:
    folder = corpora / CORPUS
    dev = folder / DEV_FILE
    if not dev.is_file():
        say(f"no {CORPUS}/{DEV_FILE} under {corpora}: attribution not measured")
        return None
    from retriever.service import SpecMemory

    specs, data = folder / "specs", data_root / CORPUS
    SpecMemory(specs, data).ingest()  # a no-op when `make eval` left a current index
    rows = [json.loads(line) for line in dev.read_text(encoding="utf-8").splitlines() if line]
    result: dict[str, Any] = {"n": len(rows)}
    for name, (message_key, files_key) in VARIANTS.items():
        started = time.perf_counter()
        answers = run_batch(specs, data, requests(rows, message_key, files_key))
        result[name] = score(rows, answers)
        result[name]["seconds"] = round(time.perf_counter() - started, 2)
    result["plain search, reference removed"] = plain_search(specs, data, rows)
    return result


def table(result: dict[str, Any]) -> str:
    lines = [
        f"attribution, {CORPUS} dev ({result['n']} commits)",
        f"{'variant':<20} {'n':>3} {'first, answered':>16} {'first, listed':>14} "
        f"{'bumps abstained':>16} {'brier':>6} {'ece':>6}",
    ]
    for name in VARIANTS:
        s = result[name]
        c = s["calibration"]
        lines.append(
            f"{name:<20} {s['labelled']:>3} {s['first_answered']:>16.3f} {s['first_listed']:>14.3f}"
            f" {s['bumps_abstained']:>12}/{s['bumps']:<3} {c['brier']:>6.3f} {c['ece']:>6.3f}"
        )
    lines.append(
        f"plain search on the cleaned message, first right: "
        f"{result['plain search, reference removed']:.3f}"
    )
    for name in VARIANTS:
        bins = ", ".join(
            f"{b['bin']}: {b['right']:.2f} right of {b['n']} (mean {b['confidence']:.2f})"
            for b in result[name]["calibration"]["bins"]
        )
        lines.append(f"calibration, {name}: {bins}")
    return "\n".join(lines)


def run(report: dict) -> None:
    corpora = Path(eval_corpora.DEFAULT_CORPORA)
    result = measure(corpora, eval_corpora.DEFAULT_DATA_ROOT, say=lambda s: print(f"   {s}"))
    if result is not None:
        report["attribution"] = result
        print(table(result))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.bench_attribution")
    parser.add_argument("--corpora", type=Path, default=eval_corpora.DEFAULT_CORPORA)
    parser.add_argument("--data-root", type=Path, default=eval_corpora.DEFAULT_DATA_ROOT)
    args = parser.parse_args(argv)
    result = measure(args.corpora, args.data_root)
    if result is None:
        return 1
    print(table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
