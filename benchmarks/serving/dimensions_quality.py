"""What OpenAI's `dimensions` costs MiniLM in retrieval quality (docs/serving.md, "dimensions").

The front answers `dimensions: N` with the first N components of the vector, L2-normalised again (what OpenAI
documents; serve/openai_front.py's `shorten`, called here so the numbers are the server's). MiniLM was not trained
for that (no Matryoshka loss), so this measures the loss on the repository's own retrieval data: chatterbot-corpus'
English conversations (the chat-retrieval task's corpus), each prompt a query that must find its reply among all
the distinct replies. Reported per N: recall@1, recall@5, mean reciprocal rank, and how often the top hit is the
one the full 384 dimensions pick.

    python benchmarks/serving/dimensions_quality.py --out benchmarks/serving/results/dimensions
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np

DIMENSIONS = (384, 256, 192, 128, 96, 64, 32)


def retrieval_set() -> tuple[list[str], list[str], np.ndarray]:
    """Queries (prompts), the distinct replies, and each query's reply index."""
    from siliconlab.tasks.chat import corpus_pairs

    pairs = corpus_pairs()
    replies = sorted({reply for _, reply, _ in pairs})
    where = {reply: i for i, reply in enumerate(replies)}
    return [p for p, _, _ in pairs], replies, np.array([where[r] for _, r, _ in pairs])


def scores(queries: np.ndarray, documents: np.ndarray, target: np.ndarray) -> dict[str, Any]:
    similarity = queries @ documents.T
    right = similarity[np.arange(len(target)), target][:, None]
    rank = 1 + (similarity > right).sum(axis=1)  # ties count in the target's favour
    return {"recall_at_1": float((rank == 1).mean()), "recall_at_5": float((rank <= 5).mean()),
            "mrr": float((1.0 / rank).mean()), "top1": similarity.argmax(axis=1)}  # fmt: skip


def measure(unit: str) -> dict[str, Any]:
    import siliconlab
    from siliconlab.serve.openai_front import shorten

    queries, replies, target = retrieval_set()
    model = siliconlab.load("minilm", unit=unit)
    begin = time.perf_counter()
    query_vectors, reply_vectors = model.encode(queries), model.encode(replies)
    encode_s = time.perf_counter() - begin
    rows, full_top1 = [], None
    for n in DIMENSIONS:
        row = scores(shorten(query_vectors, n), shorten(reply_vectors, n), target)
        top1 = row.pop("top1")
        full_top1 = top1 if full_top1 is None else full_top1
        rows.append({"dimensions": n, **row, "same_top1_as_384": float((top1 == full_top1).mean())})
    return {"schema": 1, "model": "minilm", "unit": model.unit, "queries": len(queries), "documents": len(replies),
            "data": "chatterbot-corpus English conversations: prompt -> its reply among all distinct replies",
            "machine": f"{platform.node()} ({platform.machine()}, {platform.processor() or 'cpu'})",
            "encode_s": round(encode_s, 1), "results": rows}  # fmt: skip


def markdown(report: dict[str, Any]) -> str:
    head = f"{report['queries']} queries, {report['documents']} documents; {report['model']} on {report['unit']}"
    lines = [head, "", "| dimensions | recall@1 | recall@5 | MRR | same top hit as 384 |", "|---|---|---|---|---|"]
    for r in report["results"]:
        lines.append(f"| {r['dimensions']} | {r['recall_at_1']:.3f} | {r['recall_at_5']:.3f} | {r['mrr']:.3f} | "
                     f"{r['same_top1_as_384']:.1%} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--unit", default="onnxruntime-cpu-fp32")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/serving/results/dimensions"))
    args = parser.parse_args()
    report = measure(args.unit)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "dimensions.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.out / "dimensions.md").write_text(markdown(report))
    print(markdown(report))


if __name__ == "__main__":
    main()
