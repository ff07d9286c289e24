"""Models: what is loaded, and switching among the model sets the server allows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd

from storage.db import StorageError

from ..render import training_figure, training_table
from ..service import AppContext, UserError
from .common import View, gr_error


def models_info(ctx: AppContext) -> str:
    m = ctx.models
    return (f"**{ctx.config.name}** from `{Path(ctx.model_sets[ctx.current]).name}` · shared vocabulary {m.vocab_size} tokens · "
            f"context {m.max_context()} tokens · max new tokens on this server: {ctx.config.max_new_tokens_cap}")


def build(ctx: AppContext) -> tuple[Any, View]:
    """Lay out the Models tab; returns the switch event (``app.ui`` chains the other tabs' views to it)."""
    models_table = gr.Dataframe(value=pd.DataFrame(ctx.models.describe()), interactive=False, label="Loaded models")
    info = gr.Markdown(models_info(ctx), elem_id="models-info")
    with gr.Row():
        set_pick = gr.Dropdown(choices=sorted(ctx.model_sets), value=ctx.current, label="Model sets on this server",
                               elem_id="model-set-pick")
        set_load = gr.Button("Load", elem_id="model-set-load")
    logs = ctx.training_logs()
    train_table = gr.Dataframe(value=training_table(logs), interactive=False, elem_id="arm-training-table",
                               label="How each ARM was trained (held-out pairwise accuracy and margin)")
    train_plot = gr.Plot(value=training_figure(logs), label="ARM training curves", elem_id="arm-training-plot")

    def load_set(name):  # the tables follow from View (app.ui chains it to this event's success)
        try:
            ctx.load(name)
        except (UserError, ValueError, StorageError) as exc:
            raise gr_error(exc) from None

    def view() -> list:
        logs = ctx.training_logs()
        return [pd.DataFrame(ctx.models.describe()), models_info(ctx), gr.update(value=ctx.current),
                training_table(logs), training_figure(logs)]

    switch = set_load.click(load_set, [set_pick], None, api_visibility="private",
                            concurrency_id="generate", concurrency_limit=1)
    return switch, View(view, [models_table, info, set_pick, train_table, train_plot])
