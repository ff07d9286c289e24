"""Models: what is loaded, and switching among the model sets the server allows."""

from __future__ import annotations

from pathlib import Path

import gradio as gr
import pandas as pd

from storage.db import StorageError

from ..service import AppContext, UserError
from .common import gr_error


def models_info(ctx: AppContext) -> str:
    m = ctx.models
    return (f"**{ctx.config.name}** from `{Path(ctx.model_sets[ctx.current]).name}` · shared vocabulary {m.vocab_size} tokens · "
            f"context {m.max_context()} tokens · max new tokens on this server: {ctx.config.max_new_tokens_cap}")


def build(ctx: AppContext) -> None:
    names = ctx.objectives
    models_table = gr.Dataframe(value=pd.DataFrame(ctx.models.describe()), interactive=False, label="Loaded models")
    info = gr.Markdown(models_info(ctx))
    with gr.Row():
        set_pick = gr.Dropdown(choices=sorted(ctx.model_sets), value=ctx.current, label="Model sets on this server")
        set_load = gr.Button("Load")

    def load_set(name):
        try:
            new_cfg = type(ctx.config).from_file(ctx.model_sets[name])
            if new_cfg.objective_names != names:
                raise UserError(f"{name!r} has objectives {new_cfg.objective_names}, this page was built for {names}; "
                                f"restart the app with --models pointing at it")
            ctx.load(name)
        except (UserError, ValueError, StorageError) as exc:
            raise gr_error(exc) from None
        return pd.DataFrame(ctx.models.describe()), models_info(ctx)

    set_load.click(load_set, [set_pick], [models_table, info], api_visibility="private",
                   concurrency_id="generate", concurrency_limit=1)
