"""Measure what the demo's sliders do: a grid of (α_help, α_harm) on held-out prompts.

Each completion is classified with the generator's own labels (``world.classify`` with the prompt,
so that a detailed, terse or rude answer counts as its style only when it is about the prompt's
subject; otherwise it is "off-topic"); the table gives, per grid point, the refusal and
harmful-compliance rates on harmful prompts and the style rates on benign prompts.
"""

from __future__ import annotations

import itertools
import random
from pathlib import Path
from typing import Sequence

import pandas as pd

from ..tables import markdown_table
from . import world
from .build import held_out_prompts


def sample_held_out(models_yaml: str | Path, n_per_kind: int, seed: int = 0) -> list[world.Prompt]:
    return _sample(held_out_prompts(models_yaml), n_per_kind, seed)


def sample_training_families(n_per_kind: int, seed: int = 0) -> list[world.Prompt]:
    """Prompts of the families the models were trained on (in distribution; copy tasks left out)."""
    train, _ = world.split_prompts(0)
    return _sample([p for p in train if p.family != "copy"], n_per_kind, seed)


def _sample(prompts: list[world.Prompt], n_per_kind: int, seed: int) -> list[world.Prompt]:
    rng = random.Random(seed)
    out = []
    for kind in ("benign", "harmful"):
        pool = [p for p in prompts if p.kind == kind]
        out += rng.sample(pool, min(n_per_kind, len(pool)))
    return out


def grid_rates(engine, prompts: Sequence[world.Prompt], grid: Sequence[tuple[float, float]], samples: int = 2,
               max_new_tokens: int = 40, base_row: bool = True, progress: bool = False) -> pd.DataFrame:
    """Style rates for every (α_help, α_harm) in ``grid`` (plus the base model alone when ``base_row``).

    Returns one row per setting: ``harmful_refusal``, ``harmful_compliance`` (an on-topic detailed or
    terse answer to a harmful prompt), ``harmful_rude``, ``harmful_off_topic`` on harmful prompts;
    ``benign_detailed``, ``benign_terse``, ``benign_rude``, ``benign_off_topic``, ``benign_evasive``,
    ``benign_refusal`` on benign prompts; ``benign_on_topic`` (detailed, terse or rude about the
    right subject) and ``other`` (no style's markers) over both.
    """
    from tqdm.auto import tqdm

    from ..config import DecodingConfig, RowSpec

    settings: list[tuple[str, dict[str, float], str]] = [
        (f"{h:g},{s:g}", {"helpfulness": h, "harmlessness": s}, "genarm") for h, s in grid]
    if base_row:
        settings.append(("base", {}, "base"))
    records = []
    for label, weights, method in tqdm(settings, desc="grid", disable=not progress):
        styles: dict[str, list[str]] = {"benign": [], "harmful": []}
        rows = [RowSpec(p.text, weights, method=method) for p in prompts]
        for seed in range(samples):
            cfg = DecodingConfig(temperature=1.0, max_new_tokens=max_new_tokens, seed=seed, stop=("\n\nHuman:",))
            for p, r in zip(prompts, engine.generate(rows, cfg)):
                styles[p.kind].append(world.classify(r.text, p))
        harm, ben = styles["harmful"], styles["benign"]

        def rate(xs: list[str], *names: str) -> float:
            return sum(x in names for x in xs) / max(1, len(xs))

        records.append({
            "setting": label, "alpha_help": weights.get("helpfulness", 0.0), "alpha_harm": weights.get("harmlessness", 0.0),
            "harmful_refusal": rate(harm, "refusal"), "harmful_compliance": rate(harm, "detailed", "terse"),
            "harmful_rude": rate(harm, "rude"), "harmful_off_topic": rate(harm, world.OFF_TOPIC),
            "benign_detailed": rate(ben, "detailed"), "benign_terse": rate(ben, "terse"),
            "benign_rude": rate(ben, "rude"), "benign_off_topic": rate(ben, world.OFF_TOPIC),
            "benign_evasive": rate(ben, "evasive"), "benign_refusal": rate(ben, "refusal"),
            "benign_on_topic": rate(ben, "detailed", "terse", "rude"),
            "other": rate(harm + ben, "other"), "n_harmful": len(harm), "n_benign": len(ben),
        })
    return pd.DataFrame(records)


def rates_figure(df: pd.DataFrame):
    """Two heatmaps over the grid: refusal on harmful prompts, detailed answers on benign prompts."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    grid = df[df["setting"] != "base"]
    fig = make_subplots(rows=1, cols=2, subplot_titles=("harmful prompts: refusal rate", "benign prompts: detailed-answer rate"))
    for col, metric in enumerate(("harmful_refusal", "benign_detailed"), start=1):
        pivot = grid.pivot_table(index="alpha_harm", columns="alpha_help", values=metric)
        fig.add_trace(go.Heatmap(z=pivot.values, x=[f"{x:g}" for x in pivot.columns], y=[f"{y:g}" for y in pivot.index],
                                 zmin=0, zmax=1, colorscale="Viridis", text=pivot.round(2).values, texttemplate="%{text}",
                                 showscale=col == 2), row=1, col=col)
        fig.update_xaxes(title_text="α helpfulness", row=1, col=col)
        fig.update_yaxes(title_text="α harmlessness", row=1, col=col)
    fig.update_layout(title="Demo world: what the weights do on held-out prompts", height=420)
    return fig


#: The README's columns: what each setting does to harmful and to benign prompts.
TABLE_COLUMNS = {"setting": "α_help, α_harm", "harmful_refusal": "harmful: refusal",
                 "harmful_compliance": "harmful: complies", "harmful_off_topic": "harmful: off-topic",
                 "benign_detailed": "benign: detailed", "benign_on_topic": "benign: on topic (any style)",
                 "benign_off_topic": "benign: off-topic", "benign_evasive": "benign: evasive",
                 "benign_refusal": "benign: refused",
                 "other": "unclassified"}


def run_grid(models_yaml: str | Path, grid: Sequence[float] = (0, 1, 2), n_prompts: int = 40, samples: int = 2,
             html: str | None = None, families: str = "held-out") -> pd.DataFrame:
    from ..engine import GenARMEngine
    from ..loading import load_model_set

    engine = GenARMEngine(load_model_set(models_yaml))
    prompts = (sample_held_out(models_yaml, n_prompts) if families == "held-out"
               else sample_training_families(n_prompts))
    df = grid_rates(engine, prompts, list(itertools.product(grid, grid)), samples=samples, progress=True)
    print(f"{len(prompts)} prompts of the {families} families ({n_prompts} benign, {n_prompts} harmful) x {samples} "
          "samples per setting, "
          "temperature 1, 40 new tokens\n")
    print(markdown_table(df.replace({"setting": {"base": "base alone"}}), TABLE_COLUMNS))
    if html:
        rates_figure(df).write_html(html, include_plotlyjs=True)
        print(f"chart: {html}")
    return df
