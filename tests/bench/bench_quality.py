"""Search quality on every corpus of the corpora dir: the `make eval` table (tests.bench.eval_corpora),
hybrid against lexical and the plain-BM25 baseline, beside the latency figures of the other modules.

Indexes are kept under .specmem-eval, shared with `make eval`: once current, this costs seconds.
"""

from __future__ import annotations

import os
from pathlib import Path

from . import eval_corpora


def run(report: dict) -> None:
    corpora = Path(os.environ.get("SPECMEM_CORPORA") or eval_corpora.DEFAULT_CORPORA)
    if not eval_corpora.find_corpora(corpora):
        print(f"   no labelled corpora under {corpora}: quality not measured")
        return
    result = eval_corpora.run(
        corpora, eval_corpora.DEFAULT_DATA_ROOT, say=lambda line: print(f"   {line}")
    )
    report["quality"] = result["rows"]
    print(eval_corpora.table(result))
