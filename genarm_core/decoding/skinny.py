"""Skinny products: a linear layer over a few rows, computed as W @ x^T on the CPU.

One decode step multiplies every weight matrix by a handful of rows: one per stream of the batch
(the base alone: 1; a GenARM row with a shared trunk: 1 to 3; the Compare tab's pair: 2 to 4). For
such shapes the CPU's BLAS (MKL in torch's x86 builds) picks its path by layout: ``F.linear``
(x @ W^T) of 2-4 rows went down a path several times slower than the same product written as
W @ x^T (one wide matrix times a few columns, which MKL spreads over every thread), and one row
(a matrix-vector product) ran on what looked like one thread's memory bandwidth. Measured on the
2-core development machine with 30 matrices of each of SmolLM2-135M's shapes (cold in cache, as in decoding):
1536 x 576 (gate/up) 2 rows 536 -> 208 us, 3 rows 606 -> 281 us; 576 x 576 (q/o) 2 rows 185 -> 81 us;
the 49,152 x 576 head 2 rows 25 -> 5 ms (``benchmarks.smollm2_bench`` has the end-to-end numbers).

``SkinnyLinear`` is ``nn.Linear`` with that choice in its forward: ``ROWS`` rows or fewer on the CPU
in float32 take W @ x^T, everything else ``F.linear``. The values are the same products summed in
another order: equal to ``F.linear`` to float32 rounding (tested), as a batch of another size is.
A single row is padded to two (a zero row), which takes the fast path; the padding row's output is
dropped. ``use_skinny_products`` swaps the class of a model's plain ``nn.Linear`` modules (the
weights, state dict and ``isinstance`` checks are unchanged) and back. ``load_model_set`` swaps only
where the path pays, measured once per process (``pays``): which layout is faster depends on the
CPU and its BLAS, and has gone both ways on the machine type this project is developed on.
"""

from __future__ import annotations

import functools
import os
from contextlib import contextmanager
from typing import Any, Iterable, Iterator

import torch
import torch.nn.functional as F
from torch import nn

#: the most rows a product takes the W @ x^T path with. 8, by the engine's ms per token on smollm2 (timed
#: by hand, 2026-12-07): Best-of-8 124 with F.linear, 130 with up to 4 rows this way, 108 with up to 8,
#: 110 with up to 16; three GenARM rows 135, 117, 105, 110. Another CPU may draw the line elsewhere:
#: ``benchmarks.smollm2_bench`` times the engine with and without these products (``plain_products``).
ROWS = 8
#: the fewest weights a matrix needs to take it (a LoRA adapter's small matrices stay in cache: F.linear)
MIN_WEIGHT = 1 << 16


class SkinnyLinear(nn.Linear):
    """``nn.Linear`` whose forward computes up to ``ROWS`` float32 rows on the CPU as W @ x^T."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return skinny_linear(x, self.weight, self.bias)


def pays() -> bool:
    """Whether W @ x^T beats ``F.linear`` for a few rows on this CPU: measured once per process
    (``measured_gain``), unless ``$GENARM_SKINNY`` is ``1`` (always) or ``0`` (never). The same CPU
    family can go either way: on one host 2 rows through a 1536 x 576 matrix took 540 us by
    ``F.linear`` and 210 us as W @ x^T; on another (2026-12-07, same machine type) 53 us and 176 us."""
    forced = os.environ.get("GENARM_SKINNY", "").strip()
    if forced in ("0", "1"):
        return forced == "1"
    return measured_gain() > 1.1


@functools.lru_cache(maxsize=1)
def measured_gain(rows: tuple[int, ...] = (1, 2, 3), matrices: int = 16, shape: tuple[int, int] = (1536, 576),
                  rounds: int = 5) -> float:
    """``F.linear``'s time ÷ W @ x^T's for ``rows`` rows through ``matrices`` matrices of ``shape`` (more
    than the cache holds, as in decoding), median of ``rounds`` alternating rounds: above 1 the skinny
    path is faster. About 0.1-0.3 s, once per process."""
    import statistics
    import time

    gen = torch.Generator().manual_seed(0)
    weights = [torch.randn(shape, generator=gen) for _ in range(matrices)]
    inputs = [torch.randn(n, shape[1], generator=gen) for n in rows]

    def run(fn) -> float:
        t0 = time.perf_counter()
        for x in inputs:
            for w in weights:
                fn(x, w)
        return time.perf_counter() - t0

    with torch.inference_mode():
        run(F.linear), run(skinny_linear)  # warm-up
        ratios = [run(F.linear) / run(skinny_linear) for _ in range(rounds)]
    return statistics.median(ratios)


def skinny_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """``F.linear(x, weight, bias)``, computed as (W @ x^T)^T when ``x`` is a few float32 rows on the CPU."""
    n = x.numel() // x.shape[-1] if x.numel() else 0
    if not (1 <= n <= ROWS and weight.numel() >= MIN_WEIGHT and x.device.type == "cpu"
            and x.dtype == torch.float32 and weight.dtype == torch.float32):
        return F.linear(x, weight, bias)
    # Row-major rows: their transpose is what the fast path reads (a copied, column-major x^T is not).
    rows = x.reshape(n, x.shape[-1]).contiguous()
    if n == 1:
        rows = torch.cat([rows, rows.new_zeros(rows.shape)])
    # Row-major out, as F.linear's: a transposed view would reach the next product column-major.
    out = (weight @ rows.t()).t()[:n].contiguous()
    if bias is not None:
        out = out + bias
    return out.reshape(*x.shape[:-1], weight.shape[0])


def use_skinny_products(model: Any, on: bool = True) -> int:
    """Swap every plain ``nn.Linear`` of ``model`` to ``SkinnyLinear`` (``on``) or back; returns how many changed.

    Subclasses of ``nn.Linear`` (quantized layers, peft's own) keep their class."""
    old, new = (nn.Linear, SkinnyLinear) if on else (SkinnyLinear, nn.Linear)
    changed = 0
    for module in model.modules():
        if type(module) is old:
            module.__class__ = new
            changed += 1
    return changed


@contextmanager
def plain_products(models: Iterable[Any]) -> Iterator[None]:
    """Within the block, ``models`` run ``nn.Linear`` (``F.linear`` for every shape): to measure what skinny products save."""
    changed = [m for m in models if use_skinny_products(m, on=False)]
    try:
        yield
    finally:
        for m in changed:
            use_skinny_products(m)
