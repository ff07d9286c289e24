"""Sweep: a weight grid over many prompts, batched; the trade-off frontier; click a point to read it."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd

from ..render import frontier_figure, weights_figure
from ..service import AppContext, UserError, parse_grid, read_prompt_list
from .common import DecodingControls, View, gr_error

SOURCES = ["Demo held-out prompts", "Pasted list", "Uploaded file"]

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


def point_rows(df: pd.DataFrame | None, setting: str | None) -> pd.DataFrame:
    """The completions (and their per-objective scores) of one weight setting of a sweep."""
    if df is None or df.empty or not setting:
        return pd.DataFrame(columns=["prompt", "completion"])
    cols = ["prompt", "completion", *[c for c in df if c.startswith("score_")]]
    return df[df["setting"] == setting][cols]


def clicked_setting(payload: str | None, df: pd.DataFrame | None) -> str | None:
    """The setting named by the page's click payload, if it is one of this sweep's settings."""
    try:
        setting = json.loads(payload or "{}").get("setting")
    except (json.JSONDecodeError, AttributeError):
        return None
    if df is None or df.empty or setting not in set(df["setting"]):
        return None
    return setting


def has_held_out(ctx: AppContext) -> bool:
    """Whether the loaded model set ships held-out prompts (the demo's ``heldout.json``)."""
    return (Path(ctx.model_sets[ctx.current]).parent / "heldout.json").exists()


def sweep_prompts(ctx: AppContext, src: str, n_held: int, pasted: str, upload: str | None) -> list[Any]:
    if src == SOURCES[0]:
        if not has_held_out(ctx):
            raise UserError("this model set has no held-out prompts (only the demo does); paste or upload prompts")
        from genarm_core.demo.evaluate import sample_held_out

        return [p.text for p in sample_held_out(Path(ctx.model_sets[ctx.current]), max(1, n_held // 2))]
    if src == SOURCES[2]:
        if not upload:
            raise UserError("upload a prompt file first")
        return read_prompt_list(path=upload)
    return read_prompt_list(text=pasted)


def default_grid(objectives: list[str]) -> str:
    return "; ".join(f"{n}: 0, 1, 2" for n in objectives)


def build(ctx: AppContext, decoding: DecodingControls) -> View:
    sweep_state = gr.State(None)
    with gr.Row():
        src = gr.Radio(SOURCES, value=SOURCES[0] if has_held_out(ctx) else SOURCES[1], label="Prompts", elem_id="sweep-source")
        n_heldout = gr.Slider(2, 100, value=10, step=1, label="held-out prompts (half benign, half harmful)")
    pasted = gr.Textbox(label="Pasted prompts (one per line)", lines=4, elem_id="sweep-pasted")
    upload = gr.File(label="Prompt file: one per line (text, {\"prompt\": ...}, or a JSON list of chat messages)", type="filepath", file_types=[".jsonl", ".json", ".txt"])
    with gr.Row():
        grid = gr.Textbox(value=default_grid(ctx.objectives), label="Weight grid (objective: values; …)",
                          elem_id="sweep-grid")
        samples = gr.Slider(1, 8, value=1, step=1, label="samples per point")
        max_new = gr.Slider(1, ctx.config.max_new_tokens_cap, value=min(32, ctx.config.max_new_tokens_cap),
                            step=1, label="max new tokens", elem_id="sweep-max-new")
    with gr.Row():
        run_btn = gr.Button("Run sweep", variant="primary", elem_id="sweep-run")
        cancel_btn = gr.Button("Cancel", variant="stop")
    status = gr.Markdown(elem_id="sweep-status")
    with gr.Row():
        frontier = gr.Plot(label="Frontier (click a point to read its completions)", elem_id="sweep-frontier")
        by_weight = gr.Plot(label="Score against weight")
    clicked = gr.Textbox(visible="hidden", elem_id="sweep-clicked")
    point = gr.Dropdown(choices=[], label="Completions of setting", elem_id="sweep-point")
    point_table = gr.Dataframe(interactive=False, wrap=True, elem_id="sweep-point-table")
    result_file = gr.File(label="Sweep results (CSV)", interactive=False)

    def run_sweep(src_v, n_held, pasted_v, upload_v, grid_v, samples_v, maxnew_v, beta_v, temp_v, topk_v, topp_v,
                  seed_v, progress=gr.Progress()):
        try:
            prompts = sweep_prompts(ctx, src_v, int(n_held), pasted_v, upload_v)
            names = ctx.objectives
            g = parse_grid(grid_v, names)
            cfg = ctx.decoding(beta_v, temp_v, topk_v, topp_v, maxnew_v, seed_v, trace=False)
            result = None
            progress(0, desc="sweeping")
            for frac, res in ctx.sweep(prompts, g, cfg, samples=int(samples_v)):
                progress(frac, desc="sweeping")
                result = res
        except UserError as exc:
            raise gr_error(exc) from None
        sweep_id, df = result
        path = Path(tempfile.mkdtemp(prefix="genarm-sweep-")) / f"sweep-{sweep_id}.csv"
        df.to_csv(path, index=False)
        settings = sorted(df["setting"].unique())
        first = settings[0] if settings else None
        return (df, frontier_figure(df, names), weights_figure(df, names), gr.update(choices=settings, value=first),
                point_rows(df, first), str(path),
                f"Sweep #{sweep_id}: {len(df)} completions over {len(settings)} settings × {len(prompts)} prompts, "
                f"stored. Click a point of the frontier to read its completions.")

    d = decoding
    event = run_btn.click(run_sweep, [src, n_heldout, pasted, upload, grid, samples, max_new, d.beta, d.temperature,
                                      d.top_k, d.top_p, d.seed],
                          [sweep_state, frontier, by_weight, point, point_table, result_file, status],
                          api_visibility="private", concurrency_id="generate", concurrency_limit=1)
    cancel_btn.click(None, None, None, cancels=[event], api_visibility="private")
    point.change(point_rows, [sweep_state, point], [point_table], api_visibility="private")
    clicked.change(lambda payload, df: clicked_setting(payload, df) or gr.skip(), [clicked, sweep_state], [point],
                   api_visibility="private")

    def view() -> list:
        return [default_grid(ctx.objectives), gr.update(value=SOURCES[0] if has_held_out(ctx) else SOURCES[1])]

    return View(view, [grid, src])
