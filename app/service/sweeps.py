"""Weight sweeps: every setting of a grid on every prompt, batched, stored, as one table."""

from __future__ import annotations

import dataclasses
import itertools
import threading
from typing import Any, Iterator, Sequence

import pandas as pd

from genarm_core.config import DecodingConfig, ModelSetConfig, Setting

from .errors import UserError
from .requests import setting as check_setting

MAX_COMPLETIONS = 20000


def grid_settings(config: ModelSetConfig, grid: dict[str, Sequence[float]]) -> list[Setting]:
    """Every point of the grid (a product over the named objectives) as a checked ``Setting``."""
    names = [n for n in config.objective_names if n in grid]
    for n, values in grid.items():
        if n not in config.objective_names:
            raise UserError(f"grid: unknown objective {n!r}")
        if not values:
            raise UserError(f"grid: no weights for {n!r}")
    points = [dict(zip(names, combo)) for combo in itertools.product(*(grid[n] for n in names))]
    return [check_setting(config, "genarm", p, where="grid") for p in points]


def run_sweep(ctx: Any, prompts: Sequence[Any], grid: dict[str, Sequence[float]], cfg: DecodingConfig, samples: int = 1,
              cancel: threading.Event | None = None, batch_rows: int = 64,
              name: str = "sweep") -> Iterator[tuple[float, tuple[int, pd.DataFrame] | None]]:
    """Run every weight setting of ``grid`` on every prompt, ``samples`` times (seed, seed + 1, ...).

    Yields ``(fraction done, None)`` while running and ``(1.0, (sweep_id, frame))`` at the end,
    where ``frame`` has one row per completion: ``setting`` (a ``Setting``), ``label``, ``w_<obj>``
    and ``score_<obj>`` columns. Rows of different settings and prompts run batched together.
    """
    if not prompts:
        raise UserError("prompts: none to sweep")
    settings = grid_settings(ctx.config, grid)
    total = len(settings) * len(prompts) * samples
    if total > MAX_COMPLETIONS:
        raise UserError(f"that sweep is {total:,} completions, more than {MAX_COMPLETIONS:,}; use fewer prompts or grid points")
    cfg = dataclasses.replace(cfg, trace=False, score_all=True)
    sweep_id = ctx.records_call(lambda: ctx.records.store.create_sweep(
        name, {"grid": {k: list(v) for k, v in grid.items()}, "samples": samples, "prompts": len(prompts),
               "settings": cfg.to_dict(), "model_set": ctx.sets.current}), "the sweep was not started")
    jobs = [(s, p) for s in settings for p in prompts]
    records, done = [], 0
    for k in range(samples):  # each sample is a run over every job, with its own seed
        run_cfg = dataclasses.replace(cfg, seed=cfg.seed + k)
        for start in range(0, len(jobs), batch_rows):
            if cancel is not None and cancel.is_set():
                raise UserError("sweep cancelled")
            group = jobs[start:start + batch_rows]
            results = ctx.sets.engine.generate([s.row(p) for s, p in group], run_cfg, cancel)
            ids = ctx.records.save(results, [s for s, _ in group], run_cfg, ctx.model_set_id, sweep_id=sweep_id)
            for (s, p), r, gid in zip(group, results, ids):
                records.append({"generation_id": gid, "setting": s, "label": s.label,
                                "prompt": p if isinstance(p, str) else str(p), "completion": r.text, "sample": k,
                                **{f"w_{o}": s.weight_map.get(o, 0.0) for o in ctx.config.objective_names if o in grid},
                                **{f"score_{o}": v for o, v in r.scores.items()}})
            done += len(group)
            yield done / total, None
    yield 1.0, (sweep_id, pd.DataFrame.from_records(records))
