"""Models: what is loaded (sizes, formats, how each ARM was trained), and switching among the sets the server allows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from ..render import training_figure, training_table
from ..service import AppContext, UserError
from .common import View, refuse


@dataclass
class ModelsTab:
    table: Any
    info: Any
    pick: Any
    load: Any
    train_table: Any
    train_plot: Any


def layout(ctx: AppContext) -> ModelsTab:
    info = gr.Markdown(ctx.sets.info(), elem_id="models-info")
    table = gr.Dataframe(value=ctx.sets.describe(), interactive=False, label="Loaded models", wrap=True)
    with gr.Row():
        pick = gr.Dropdown(choices=sorted(ctx.model_sets), value=ctx.current, label="Model sets on this server",
                           elem_id="model-set-pick")
        load = gr.Button("Load", elem_id="model-set-load", scale=0, min_width=120)
    logs = ctx.sets.training_logs()
    train_table = gr.Dataframe(value=training_table(logs), interactive=False, elem_id="arm-training-table",
                               label="How each ARM was trained (held-out pairwise accuracy and margin)")
    train_plot = gr.Plot(value=training_figure(logs), label="ARM training curves", elem_id="arm-training-plot")
    return ModelsTab(table, info, pick, load, train_table, train_plot)


def wire(ctx: AppContext, t: ModelsTab) -> tuple[Any, View]:
    """Returns the switch event (``app.ui`` chains every tab's view to it) and this tab's view."""

    def on_load(name):  # the tables follow from View (app.ui chains it to this event's success)
        try:
            ctx.load(name)
        except UserError as exc:
            raise refuse(exc) from None

    def view() -> list:
        logs = ctx.sets.training_logs()
        return [ctx.sets.describe(), ctx.sets.info(), gr.update(value=ctx.current), training_table(logs),
                training_figure(logs)]

    switch = t.load.click(on_load, [t.pick], None, api_visibility="private", concurrency_id="generate", concurrency_limit=1)
    return switch, View(view, [t.table, t.info, t.pick, t.train_table, t.train_plot])
