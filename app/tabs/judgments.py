"""Judgments: the recorded judgments (filtered; select a row to read it whole), win rates, exports."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr
import pandas as pd

from ..render import win_rate_figure
from ..service import EXPORT_CHOICES, AppContext, UserError, judgment_filter
from .common import LooseRadio, refuse


# ---------------------------------------------------------------------------------------- handlers

def judgments_view(ctx: AppContext, annotator: str | None, objective: str | None, since: str | None):
    """(table, full frame, win-rate figure, annotator choices, summary) for the filters."""
    flt = judgment_filter(annotator, objective, since)
    table, full = ctx.records.judgments_table(flt)
    which = None if objective in (None, "", "overall") else objective
    rates = ctx.records.win_rates(flt, which)
    title = f"Win rate by setting ({which or 'overall'} verdicts)"
    n = len(table)
    summary = ("No judgments match these filters yet." if n == 0 else
               f"{n} judgment{'s' if n != 1 else ''}; select a row to read its prompt and completions in full.")
    return table, full, win_rate_figure(rates, title), [""] + ctx.records.annotators(), summary


def judgment_detail(full: pd.DataFrame | None, row: int | None) -> str:
    """One judgment, whole: the prompt, both completions and the verdicts (as Markdown, escaped)."""
    if full is None or full.empty or row is None or not 0 <= row < len(full):
        return ""
    r = full.iloc[row]
    esc = lambda text: str(text).replace("```", "ʼʼʼ")  # noqa: E731 - keep fenced blocks closed
    verdicts = ", ".join(f"{c[len('verdict_'):]}: {v}" for c, v in r.items() if c.startswith("verdict_") and isinstance(v, str))
    return (f"**Judgment #{r.judgment_id}**: {r.verdict}{' (' + verdicts + ')' if verdicts else ''}\n\n"
            f"Prompt:\n```text\n{esc(r.prompt)}\n```\nA:\n```text\n{esc(r.completion_a)}\n```\nB:\n```text\n"
            f"{esc(r.completion_b)}\n```")


def run_export(ctx: AppContext, choice: str, annotator: str | None, objective: str | None, since: str | None):
    files, summary = ctx.records.export(choice, judgment_filter(annotator, objective, since))
    return files, f"```\n{summary}\n```"


# ---------------------------------------------------------------------------------------- layout & wiring

@dataclass
class JudgmentsTab:
    annotator: Any
    objective: Any
    since: Any
    refresh: Any
    summary: Any
    table: Any
    full: Any
    detail: Any
    plot: Any
    fmt: Any
    export: Any
    files: Any
    export_status: Any


def layout(ctx: AppContext) -> JudgmentsTab:
    names = list(ctx.sets.objectives_of_all_sets())
    with gr.Row():
        annotator = gr.Dropdown(choices=[""], value="", label="Annotator", allow_custom_value=True)
        objective = gr.Dropdown(choices=["overall"] + names, value="overall", label="Objective")
        since = gr.Textbox(label="Since (YYYY-MM-DD)", placeholder="any date")
        refresh = gr.Button("Refresh", elem_id="refresh-judgments", scale=0, min_width=120)
    summary = gr.Markdown(elem_id="judgments-summary")
    table = gr.Dataframe(label="Recorded judgments", interactive=False, wrap=False, elem_id="judgments-table",
                         column_widths=["60px", "160px", "110px", "90px", "220px", "220px", "260px", "260px", "260px",
                                        "140px", "60px"], max_height=420)
    full = gr.State(None)
    detail = gr.Markdown(elem_id="judgment-detail")
    plot = gr.Plot(label="Win rate by setting", elem_id="judgments-plot")
    with gr.Row():
        fmt = LooseRadio(list(EXPORT_CHOICES), value="TRL preference JSONL", label="Export format")
        export = gr.Button("Export", elem_id="export-btn", scale=0, min_width=120)
    files = gr.File(label="Export files", file_count="multiple", interactive=False, elem_id="export-files", height=120)
    export_status = gr.Markdown()
    return JudgmentsTab(annotator, objective, since, refresh, summary, table, full, detail, plot, fmt, export, files,
                        export_status)


def wire(ctx: AppContext, t: JudgmentsTab, tab: gr.Tab) -> None:
    filters = [t.annotator, t.objective, t.since]
    outputs = [t.table, t.full, t.plot, t.annotator, t.summary, t.detail]

    def on_view(annotator, objective, since):
        try:
            table, full, fig, annotators, summary = judgments_view(ctx, annotator, objective, since)
        except UserError as exc:
            raise refuse(exc) from None
        return table, full, fig, gr.update(choices=annotators), summary, ""

    t.refresh.click(on_view, filters, outputs, api_visibility="private")
    for comp in (t.annotator, t.objective):
        comp.change(on_view, filters, outputs, api_visibility="private")
    t.since.submit(on_view, filters, outputs, api_visibility="private")
    tab.select(on_view, filters, outputs, api_visibility="private")

    def on_select(full, event: gr.SelectData):
        row = event.index[0] if isinstance(event.index, (list, tuple)) else event.index
        return judgment_detail(full, row)

    t.table.select(on_select, [t.full], [t.detail], api_visibility="private")

    def on_export(choice, annotator, objective, since):
        try:
            return run_export(ctx, choice, annotator, objective, since)
        except UserError as exc:
            raise refuse(exc) from None

    t.export.click(on_export, [t.fmt, *filters], [t.files, t.export_status], api_name="export")
