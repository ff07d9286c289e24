"""Sweep: a weight grid over many prompts, batched; the trade-off frontier; click a point to read it."""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd

from ..render import frontier_figure, weights_figure
from ..service import AppContext, UserError, parse_grid, read_prompt_list
from .common import DecodingControls, LooseSlider, View, refuse

SOURCES = ["Held-out prompts of this set", "Pasted list", "Uploaded file"]
POINT_COLUMNS = ["prompt", "completion"]

# Plotly click → hidden textbox bridge. Gradio's Plot has no click event, so the page binds
# plotly_click on the frontier (re-binding whenever a new figure replaces the old one) and writes
# the clicked point's setting, as JSON, into a hidden textbox whose change event the server hears.
CLICK_JS = """
() => {
  const bind = () => {
    document.querySelectorAll('#sweep-frontier .js-plotly-plot').forEach((plot) => {
      if (plot.__genarmClick || typeof plot.on !== 'function') return;
      plot.__genarmClick = true;
      plot.on('plotly_click', (ev) => {
        const pt = ev && ev.points && ev.points[0];
        const data = pt && pt.customdata;
        const setting = Array.isArray(data) ? data[0] : data;
        const box = document.querySelector('#sweep-clicked textarea, #sweep-clicked input');
        if (!setting || !box) return;
        box.value = JSON.stringify({setting: setting, at: Date.now()});
        box.dispatchEvent(new Event('input', {bubbles: true}));
      });
    });
  };
  setInterval(bind, 400);
}
"""


# ---------------------------------------------------------------------------------------- handlers

def point_rows(df: pd.DataFrame | None, label: str | None) -> pd.DataFrame:
    """The completions (and their per-objective scores, 2 decimals) of one setting of a sweep."""
    if df is None or df.empty or not label:
        return pd.DataFrame(columns=POINT_COLUMNS)
    cols = [c for c in df if c.startswith("score_")]
    rows = df[df["label"] == label][["prompt", "completion", *cols]].copy()
    rows[cols] = rows[cols].round(2)
    return rows.rename(columns={c: f"{c[6:]} score" for c in cols})


def clicked_setting(payload: str | None, df: pd.DataFrame | None) -> str | None:
    """The setting named by the page's click payload, if it is one of this sweep's settings."""
    try:
        label = json.loads(payload or "{}").get("setting")
    except (json.JSONDecodeError, AttributeError):
        return None
    if df is None or df.empty or label not in set(df["label"]):
        return None
    return label


def sweep_prompts(ctx: AppContext, source: str, n: Any, pasted: str, upload: str | None) -> list[Any]:
    if source == SOURCES[0]:
        return ctx.evaluation_prompts(int(n))
    if source == SOURCES[2]:
        if not upload:
            raise UserError("prompt file: upload a prompt file first")
        return read_prompt_list(path=upload)
    return read_prompt_list(text=pasted)


def default_grid(objectives: list[str]) -> str:
    return "; ".join(f"{n}: 0, 1, 2" for n in objectives)


# ---------------------------------------------------------------------------------------- layout & wiring

@dataclass
class SweepTab:
    source: Any
    n_prompts: Any
    pasted: Any
    upload: Any
    grid: Any
    samples: Any
    max_new: Any
    run: Any
    cancel: Any
    status: Any
    frontier: Any
    by_weight: Any
    clicked: Any
    point: Any
    point_table: Any
    result_file: Any
    frame: Any


def source_fields(source: str) -> tuple[bool, bool, bool]:
    """Which of (held-out count, pasted box, upload) a prompt source uses: only those are shown."""
    return source == SOURCES[0], source == SOURCES[1], source == SOURCES[2]


def layout(ctx: AppContext) -> SweepTab:
    has_held = ctx.sets.evaluation_prompts(2) is not None
    first = SOURCES[0] if has_held else SOURCES[1]
    shown = source_fields(first)
    with gr.Row():
        source = gr.Radio(SOURCES, value=first, label="Prompts", elem_id="sweep-source")
        n_prompts = LooseSlider(2, 50, value=10, step=2, label="held-out prompts (half benign, half harmful)",
                                visible=shown[0])
    pasted = gr.Textbox(label="Pasted prompts (one per line)", lines=4, elem_id="sweep-pasted", visible=shown[1])
    upload = gr.File(label="Prompt file: one per line (text, {\"prompt\": ...}, or a JSON list of chat messages)",
                     type="filepath", file_types=[".jsonl", ".json", ".txt"], visible=shown[2], height=140)
    with gr.Row():
        grid = gr.Textbox(value=default_grid(ctx.objectives), label="Weight grid (objective: values; … or from:to:count)",
                          elem_id="sweep-grid", scale=3)
        samples = LooseSlider(1, 8, value=1, step=1, label="samples per point", scale=1)
        max_new = LooseSlider(1, ctx.config.max_new_tokens_cap, value=min(32, ctx.config.max_new_tokens_cap), step=1,
                              label="max new tokens", elem_id="sweep-max-new", scale=1)
    with gr.Row():
        run = gr.Button("Run sweep", variant="primary", elem_id="sweep-run", scale=0, min_width=140)
        cancel = gr.Button("Cancel", variant="stop", scale=0, min_width=100)
    status = gr.Markdown("Pick prompts and a grid, then **Run sweep**: every setting runs on every prompt, batched.",
                         elem_id="sweep-status")
    frontier = gr.Plot(value=frontier_figure(pd.DataFrame(), ctx.objectives), label="Frontier (click a point to read it)",
                       elem_id="sweep-frontier")
    by_weight = gr.Plot(value=weights_figure(pd.DataFrame(), ctx.objectives), label="Score against weight")
    clicked = gr.Textbox(visible="hidden", elem_id="sweep-clicked")
    point = gr.Dropdown(choices=[], label="Completions of setting", elem_id="sweep-point")
    point_table = gr.Dataframe(value=pd.DataFrame(columns=POINT_COLUMNS), interactive=False, wrap=True,
                               elem_id="sweep-point-table", max_height=420)
    result_file = gr.File(label="Sweep results (CSV)", interactive=False, height=120)
    return SweepTab(source, n_prompts, pasted, upload, grid, samples, max_new, run, cancel, status, frontier, by_weight,
                    clicked, point, point_table, result_file, gr.State(None))


def wire(ctx: AppContext, t: SweepTab, decoding: DecodingControls, current_weights: list) -> View:
    """``current_weights``: the Compare panels' sliders, so the frontier can mark their settings."""

    def on_run(source, n, pasted, upload, grid, samples, max_new, beta, temp, top_k, top_p, seed, *slider_values,
               progress=gr.Progress()):
        try:
            prompts = sweep_prompts(ctx, source, n, pasted, upload)
            g = parse_grid(grid, ctx.objectives)
            cfg = ctx.decoding(beta, temp, top_k, top_p, max_new, seed, trace=False)
            n_samples = int(float(samples or 1))
            progress(0, desc="sweeping")
            result = None
            for fraction, res in ctx.sweep(prompts, g, cfg, samples=n_samples):
                progress(fraction, desc="sweeping")
                result = res
        except (UserError, ValueError) as exc:
            raise refuse(UserError(str(exc))) from None
        sweep_id, df = result
        path = Path(tempfile.mkdtemp(prefix="genarm-sweep-")) / f"sweep-{sweep_id}.csv"
        df.assign(setting=[s.label for s in df["setting"]]).drop(columns=["label"]).to_csv(path, index=False)
        labels = list(dict.fromkeys(df["label"]))
        current = _current(slider_values)
        first = labels[0] if labels else None
        return (df, frontier_figure(df, ctx.objectives, current), weights_figure(df, ctx.objectives),
                gr.update(choices=labels, value=first), point_rows(df, first), str(path),
                f"Sweep #{sweep_id}: {len(df)} completions over {len(labels)} settings × {len(prompts)} prompts, stored. "
                f"Click a point of the frontier (or pick a setting below) to read its completions.")

    def _current(values) -> list[dict[str, float]]:
        """The Compare panels' weights (for marking them on the frontier)."""
        per_panel, out = len(current_weights) // max(1, ctx.panels), []
        for i in range(ctx.panels):
            chunk = values[i * per_panel:(i + 1) * per_panel]
            weights = {}
            for (name, _), v in zip(current_weights[i * per_panel:(i + 1) * per_panel], chunk):
                try:
                    weights[name] = float(v)
                except (TypeError, ValueError):
                    weights[name] = 0.0
            out.append(weights)
        return out

    d = decoding
    event = t.run.click(on_run, [t.source, t.n_prompts, t.pasted, t.upload, t.grid, t.samples, t.max_new, d.beta,
                                 d.temperature, d.top_k, d.top_p, d.seed, *[c for _, c in current_weights]],
                        [t.frame, t.frontier, t.by_weight, t.point, t.point_table, t.result_file, t.status],
                        api_visibility="private", concurrency_id="generate", concurrency_limit=1)
    t.cancel.click(None, None, None, cancels=[event], api_visibility="private")
    t.source.change(lambda source: [gr.update(visible=v) for v in source_fields(source)], [t.source],
                    [t.n_prompts, t.pasted, t.upload], api_visibility="private")
    t.point.change(point_rows, [t.frame, t.point], [t.point_table], api_visibility="private")
    t.clicked.change(lambda payload, df: clicked_setting(payload, df) or gr.skip(), [t.clicked, t.frame], [t.point],
                     api_visibility="private")

    def view() -> list:
        has_held = ctx.sets.evaluation_prompts(2) is not None
        return [default_grid(ctx.objectives), gr.update(value=SOURCES[0] if has_held else SOURCES[1])]

    return View(view, [t.grid, t.source])
