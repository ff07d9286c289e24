"""Judgments: the recorded judgments (filtered), win-rate charts, and every export format."""

from __future__ import annotations

import os
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import gradio as gr
import pandas as pd

from storage.db import StorageError
from storage.export import export as export_judgments
from storage.store import win_rates

from ..render import win_rate_figure
from ..service import AppContext, UserError
from .common import gr_error, judgment_filter

EXPORT_CHOICES = {"TRL preference JSONL": ("trl", ".jsonl"), "TRL preference Parquet": ("trl", ".parquet"),
                  "TRL conversational JSONL": ("trl-conversational", ".jsonl"), "Judgments CSV": ("csv", ".csv"),
                  "Battles JSONL (Elo)": ("battles", ".jsonl")}
JUDGMENT_COLUMNS = ["judgment_id", "created_at", "annotator", "verdict", "setting_a", "setting_b", "prompt",
                    "completion_a", "completion_b", "comment", "blind", "swapped"]


def build(ctx: AppContext, tab: gr.Tab) -> None:
    """Lay out the Judgments tab inside ``tab`` (refreshed whenever it is selected)."""
    names = list(ctx.objectives_of_all_sets())
    with gr.Row():
        f_annot = gr.Dropdown(choices=[""] + ctx.store.annotators(), value="", label="Annotator", allow_custom_value=True)
        f_obj = gr.Dropdown(choices=["overall"] + names, value="overall", label="Objective")
        f_since = gr.Textbox(label="Since (YYYY-MM-DD)", placeholder="any date")
        refresh = gr.Button("Refresh", elem_id="refresh-judgments")
    judg_table = gr.Dataframe(label="Recorded judgments", interactive=False, wrap=True, elem_id="judgments-table")
    judg_plot = gr.Plot(label="Win rate by setting")
    with gr.Row():
        exp_fmt = gr.Radio(list(EXPORT_CHOICES), value="TRL preference JSONL", label="Export format")
        exp_btn = gr.Button("Export", elem_id="export-btn")
    exp_files = gr.File(label="Export files", file_count="multiple", interactive=False, elem_id="export-files")
    exp_status = gr.Markdown()

    def judgment_view(annot, obj, since):
        try:
            df = ctx.store.judgments_frame(judgment_filter(annot, obj, since))
            annotators = ctx.store.annotators()
        except (UserError, StorageError) as exc:
            raise gr_error(exc) from None
        objective = None if obj in (None, "", "overall") else obj
        rates = win_rates(df, objective)
        if df.empty:
            table = pd.DataFrame(columns=JUDGMENT_COLUMNS)
        else:
            table = df[[c for c in JUDGMENT_COLUMNS if c in df] + [c for c in df if c.startswith("verdict_")]]
        return (table, win_rate_figure(rates, f"Win rate by setting ({objective or 'overall'} verdicts)"),
                gr.update(choices=[""] + annotators))

    filters, view_outputs = [f_annot, f_obj, f_since], [judg_table, judg_plot, f_annot]
    refresh.click(judgment_view, filters, view_outputs, api_visibility="private")
    for comp in (f_annot, f_obj):
        comp.change(judgment_view, filters, view_outputs, api_visibility="private")
    tab.select(judgment_view, filters, view_outputs, api_visibility="private")

    def do_export(fmt_label, annot, obj, since):
        if fmt_label not in EXPORT_CHOICES:
            raise gr.Error(f"unknown export format {fmt_label!r}; choose one of {list(EXPORT_CHOICES)}",
                           print_exception=False)
        fmt, suffix = EXPORT_CHOICES[fmt_label]
        folder = Path(tempfile.mkdtemp(prefix="genarm-export-"))
        stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
        try:
            summary = export_judgments(ctx.store, fmt, folder / f"genarm-{fmt}-{stamp}{suffix}",
                                       judgment_filter(annot, obj, since))
        except (UserError, StorageError) as exc:
            raise gr_error(exc) from None
        return summary.files, f"```\n{str(summary).replace(str(folder) + os.sep, '')}\n```"

    exp_btn.click(do_export, [exp_fmt, *filters], [exp_files, exp_status], api_name="export")
