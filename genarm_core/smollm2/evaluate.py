"""What the SmolLM2 set's weights do, on held-out prompts: ``genarm smollm2 eval``.

For every (α_helpfulness, α_harmlessness) of a grid, and for the base model alone, each held-out
prompt (``prompts.eval_prompts``: written by hand, no training pair was made from them) is
answered ``samples`` times at temperature 0.7. A table gives, per setting, the refusal rate on
harmful prompts and, on benign prompts, the refusal rate and the share answered on topic and
not refused (``judge``: the rules and what they cannot see). It also checks that all weights
zero gives exactly the base model's tokens.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Sequence

import pandas as pd

from ..tables import markdown_table

from . import judge
from .prompts import EvalPrompt, eval_prompts

COLUMNS = {"setting": "α_help, α_harm", "harmful_refusal": "harmful: refused",
           "refusal_ended": "harmful refusals that ended (EOS)", "benign_refusal": "benign: refused",
           "benign_answered_on_topic": "benign: answered on topic", "n": "completions per kind"}


def grid_table(engine, grid: Sequence[tuple[float, float]], samples: int = 3, max_new_tokens: int = 40,
               temperature: float = 0.7, prompts: Sequence[EvalPrompt] | None = None, progress: bool = True,
               keep: list | None = None) -> pd.DataFrame:
    """One row per setting (the base alone first). ``keep`` collects every completion when given."""
    from tqdm.auto import tqdm

    from ..config import DecodingConfig, RowSpec

    prompts = list(prompts or eval_prompts())
    settings = [("base alone", None)] + [(f"{h:g}, {s:g}", {"helpfulness": h, "harmlessness": s}) for h, s in grid]
    records, tokens = [], {}
    bar = tqdm(total=len(settings) * samples, desc="held-out grid", disable=not progress, unit="run")
    for label, weights in settings:
        harm_ref, ben_ref, ben_ok, ended, ids = [], [], [], [], []
        for seed in range(samples):
            rows = [RowSpec(p.text, weights or {}, method="genarm" if weights is not None else "base") for p in prompts]
            cfg = DecodingConfig(temperature=temperature, max_new_tokens=max_new_tokens, seed=seed)
            for p, r in zip(prompts, engine.generate(rows, cfg)):
                refused = judge.is_refusal(r.text)
                ids.append(r.token_ids)
                if keep is not None:
                    keep.append({"setting": label, "seed": seed, "kind": p.kind, "prompt": p.text, "completion": r.text,
                                 "refusal": refused, "on_topic": judge.on_topic(r.text, p.subject),
                                 "finish_reason": r.finish_reason})
                if p.kind == "harmful":
                    harm_ref.append(refused)
                    if refused:  # a refusal should end; one that repeats runs to the token limit
                        ended.append(r.finish_reason == "eos")
                else:
                    ben_ref.append(refused)
                    ben_ok.append(not refused and judge.on_topic(r.text, p.subject))
            bar.update(1)
        tokens[label] = ids
        mean = lambda xs: sum(xs) / max(1, len(xs))  # noqa: E731
        records.append({"setting": label, "harmful_refusal": mean(harm_ref),
                        "refusal_ended": f"{mean(ended):.2f}" if ended else "–", "benign_refusal": mean(ben_ref),
                        "benign_answered_on_topic": mean(ben_ok), "n": len(harm_ref)})
    bar.close()
    df = pd.DataFrame(records)
    df.attrs["zero_equals_base"] = tokens.get("0, 0") == tokens["base alone"] if "0, 0" in tokens else None
    return df


def markdown(df: pd.DataFrame) -> str:
    return markdown_table(df, COLUMNS)


def run(models_yaml: str | Path, grid: Sequence[tuple[float, float]], samples: int, max_new_tokens: int = 40,
        out_csv: str | None = None) -> pd.DataFrame:
    from ..engine import GenARMEngine
    from ..loading import load_model_set
    from ..threads import apply_threads

    apply_threads()
    engine = GenARMEngine(load_model_set(models_yaml))
    kept: list = []
    t0 = time.perf_counter()
    df = grid_table(engine, grid, samples, max_new_tokens, keep=kept)
    kinds = {k: sum(p.kind == k for p in eval_prompts()) for k in ("benign", "harmful")}
    print(f"\n{kinds['benign']} benign + {kinds['harmful']} harmful held-out prompts x {samples} samples, temperature 0.7, "
          f"{max_new_tokens} new tokens ({time.perf_counter() - t0:.0f} s)\n")
    print(markdown(df))
    if df.attrs.get("zero_equals_base") is not None:
        print(f"\nall weights zero gives the base model's tokens exactly: {'yes' if df.attrs['zero_equals_base'] else 'NO'}")
    if out_csv:
        pd.DataFrame(kept).to_csv(out_csv, index=False)
        print(f"every completion: {out_csv}")
    return df
