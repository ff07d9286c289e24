"""``python -m benchmarks.host_step [--models smollm2]``: the host's text work per decoding step.

Every step the engine turns each row's new token into text (streaming, stop strings). This times
that work for a batch of rows, per step, averaged over a whole generation, two ways in one run
(alternating, medians of 3): decoding the whole completion again each step (the engine before
``tokens.IncrementalText``) and ``IncrementalText.push`` (a short window). On a GPU this work
overlaps the device step (``queue_ahead``), so it must stay under a step's time.
"""

from __future__ import annotations

import argparse
import statistics
import time

from genarm_core.decoding.tokens import IncrementalText

TEXT = "The quick brown fox jumps over the lazy dog. Café, naïve, 日本. " * 80


def full_decode(tokenizer, rows: int, ids: list[int]) -> None:
    for n in range(1, len(ids) + 1):
        for _ in range(rows):
            tokenizer.decode(ids[:n], skip_special_tokens=True)


def incremental(tokenizer, rows: int, ids: list[int]) -> None:
    texts = [IncrementalText(tokenizer) for _ in range(rows)]
    for t in ids:
        for inc in texts:
            inc.push(t, False)


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.host_step")
    p.add_argument("--models", default="smollm2", help="built-in model set or model-set file whose tokenizer is used")
    p.add_argument("--rows", type=int, default=16)
    args = p.parse_args()
    from genarm_core.models.builtin import resolve_model_set
    from genarm_core.models.loading import load_model_set

    tokenizer = load_model_set(resolve_model_set(args.models)).tokenizer
    all_ids = tokenizer(TEXT, add_special_tokens=False)["input_ids"]
    print(f"tokenizer of {args.models!r}, batch {args.rows}; ms per step of host text work (median of 3):")
    for n in (128, 512):
        ids = all_ids[:n]
        times: dict[str, list[float]] = {"full decode each step": [], "IncrementalText": []}
        for _ in range(3):
            for name, fn in (("full decode each step", full_decode), ("IncrementalText", incremental)):
                t0 = time.perf_counter()
                fn(tokenizer, args.rows, ids)
                times[name].append((time.perf_counter() - t0) / n)
        full, inc = (statistics.median(times[k]) for k in times)
        print(f"  {n} tokens: full decode {full * 1e3:.3f} ms, IncrementalText {inc * 1e3:.3f} ms ({full / inc:.1f}x)")


if __name__ == "__main__":
    main()
