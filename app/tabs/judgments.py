"""Judgments: the recorded judgments (filtered; select a row to read it whole), win rates, exports."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr
import pandas as pd

from ..render import pairwise_figure, win_rate_figure
from ..service import EXPORT_CHOICES, AppContext, UserError, judgment_filter, win_rates
from ..service.records import annotator_agreement, judge_agreement, skip_counts, pairwise_table, ratings_table
from .common import LooseNumber, LooseRadio, refuse

VERDICT_LABELS = {"A better": "A", "B better": "B", "tie": "tie", "both bad": "both_bad"}


# ---------------------------------------------------------------------------------------- handlers

def judgments_view(ctx: AppContext, annotator: str | None, objective: str | None, since: str | None,
                   study: Any = None, only: str | None = None):
    """(table, full frame, win-rate figure, ratings table, pairwise heatmaps, judge agreement, annotator choices, summary)
    for the filters. ``only``: an annotator who may see only their own judgments (``Access.own``): every
    view is of theirs, and the per-annotator table is their own row, measured against everyone's votes."""
    study_id = int(study) if study not in (None, "") else None
    flt = judgment_filter(only if only is not None else annotator, objective, since, study_id=study_id)
    table, full = ctx.records.judgments_table(flt)
    which = None if objective in (None, "", "overall") else objective
    rates = win_rates(full, which)
    title = f"Win rate by setting ({which or 'overall'} verdicts)"
    n = len(table)
    summary = ("No judgments match these filters yet." if n == 0 else
               f"{n} judgment{'s' if n != 1 else ''}; select a row to read its prompt and completions in full.")
    ratings = ratings_table(full, which)
    pairs = pairwise_figure(pairwise_table(full, which), f"Setting against setting ({which or 'overall'} verdicts)")
    agree = ctx.records_call(lambda: judge_agreement(ctx.store, full, which), "the judges' scores were not read")
    skips = ctx.records_call(lambda: skip_counts(ctx.store, flt.study_id), "the queue's skips were not read")
    if only is None:
        line, people = annotator_agreement(full, which, skips)
        choices = [""] + ctx.records.annotators()
    else:
        _, everyone = ctx.records.judgments_table(judgment_filter(None, objective, since, study_id=study_id))
        people = annotator_agreement(everyone, which, skips)[1]
        people = people[people["annotator"] == only].reset_index(drop=True)
        line = f"Your own judgments, {only}: the agreement between all annotators is shown to the admins."
        choices = [only]
    return (table, full, win_rate_figure(rates, title), ratings, pairs, agree, f"**Do the annotators agree?** {line}", people,
            choices, summary)


def judgment_detail(full: pd.DataFrame | None, row: int | None, history: list[dict[str, Any]] | None = None) -> str:
    """One judgment, whole: the prompt, both completions, the verdicts and the ones edits replaced
    (as Markdown, escaped)."""
    if full is None or full.empty or row is None or not 0 <= row < len(full):
        return ""
    r = full.iloc[row]
    esc = lambda text: str(text).replace("```", "ʼʼʼ")  # noqa: E731 - keep fenced blocks closed
    verdicts = ", ".join(f"{c[len('verdict_'):]}: {v}" for c, v in r.items() if c.startswith("verdict_") and isinstance(v, str))
    earlier = "".join(f"\n- was **{h['verdict']}**" + (f" ({', '.join(f'{k}: {v}' for k, v in h['objective_verdicts'].items())})"
                                                      if h["objective_verdicts"] else "")
                      + f", given {pd.Timestamp(h['given_at']).strftime('%Y-%m-%d %H:%M:%S')}, replaced "
                      f"{pd.Timestamp(h['replaced_at']).strftime('%Y-%m-%d %H:%M:%S')}" for h in history or [])
    changed = f"\n\nEarlier verdicts (latest counts):{earlier}" if earlier else ""
    return (f"**Judgment #{r.judgment_id}**: {r.verdict}{' (' + verdicts + ')' if verdicts else ''}{changed}\n\n"
            f"Prompt:\n```text\n{esc(r.prompt)}\n```\nA:\n```text\n{esc(r.completion_a)}\n```\nB:\n```text\n"
            f"{esc(r.completion_b)}\n```")


def change_verdict(ctx: AppContext, judgment_id: Any, verdict: Any, comment: Any, username: str | None) -> str:
    """The "Change a verdict" form: an explicit edit (the replaced verdict stays in the history).
    With a login only one's own judgments can be changed; without one the page has no identity
    to check, and the history shows every change."""
    stored = ctx.edit_api(judgment_id, VERDICT_LABELS.get(verdict, verdict), None, username or None,
                          None if not (comment or "").strip() else comment)
    n = len(ctx.records.history(stored.judgment_id))
    return f"Judgment #{stored.judgment_id} now reads {verdict}; {n} earlier verdict{'s' if n != 1 else ''} kept."


def study_choices(ctx: AppContext) -> list[tuple[str, Any]]:
    try:
        return [("all", "")] + [(f"#{s['id']} {s['name']}", s["id"]) for s in ctx.studies()]
    except UserError:
        return [("all", "")]


def run_export(ctx: AppContext, choice: str, annotator: str | None, objective: str | None, since: str | None,
               only: str | None = None):
    """``only``: an annotator who may export only their own judgments (``Access.own``)."""
    files, summary = ctx.records.export(choice, judgment_filter(only if only is not None else annotator, objective, since))
    return files, f"```\n{summary}\n```"


# ---------------------------------------------------------------------------------------- layout & wiring

@dataclass
class JudgmentsTab:
    annotator: Any
    objective: Any
    since: Any
    study: Any
    refresh: Any
    summary: Any
    table: Any
    full: Any
    detail: Any
    plot: Any
    ratings: Any
    pairs: Any
    agreement: Any
    people_line: Any
    people: Any
    edit_id: Any
    edit_verdict: Any
    edit_comment: Any
    edit: Any
    edit_status: Any
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
        study = gr.Dropdown(choices=study_choices(ctx), value="", label="Study", elem_id="judgments-study")
        refresh = gr.Button("Refresh", elem_id="refresh-judgments", scale=0, min_width=120)
    summary = gr.Markdown(elem_id="judgments-summary")
    table = gr.Dataframe(label="Recorded judgments", interactive=False, wrap=False, elem_id="judgments-table",
                         column_widths=["60px", "160px", "110px", "90px", "220px", "220px", "260px", "260px", "260px",
                                        "140px", "60px"], max_height=420)
    full = gr.State(None)
    detail = gr.Markdown(elem_id="judgment-detail")
    with gr.Accordion("Change a verdict", open=False, elem_id="edit-judgment"):
        gr.Markdown("A vote is never overwritten by voting again: change it here. The verdict it replaces is kept in "
                    "the judgment's history (shown in its detail); ratings and exports use the latest.")
        with gr.Row():
            edit_id = LooseNumber(label="Judgment #", precision=0, value=None, elem_id="edit-judgment-id")
            edit_verdict = LooseRadio(list(VERDICT_LABELS), label="New verdict", elem_id="edit-judgment-verdict")
            edit_comment = gr.Textbox(label="Comment (empty keeps the stored one)")
            edit = gr.Button("Save change", elem_id="edit-judgment-btn", scale=0, min_width=120)
        edit_status = gr.Markdown(elem_id="edit-judgment-status")
    plot = gr.Plot(label="Win rate by setting", elem_id="judgments-plot")
    ratings = gr.Dataframe(label="Bradley–Terry ratings (ties as half a win; Base only = 1000 when judged; bootstrap "
                                 "95% CI, 200 rounds; `genarm stats ratings` prints the same)", interactive=False,
                           elem_id="ratings-table", max_height=300)
    pairs = gr.Plot(label="Setting against setting: win fraction (95% CI on hover) and battle counts",
                    elem_id="judgments-pairs")
    agreement = gr.Dataframe(label="Automatic judges against these judgments (on pairs a study judged too: which judge "
                                   "to trust on this data)", interactive=False, elem_id="judge-agreement", max_height=260)
    people_line = gr.Markdown(elem_id="annotator-agreement")
    people = gr.Dataframe(label="Per annotator (majority of the others on the same pair; left side chosen when blind: 0.5 "
                                "is no position bias; seconds from the pair being ready to the vote)", interactive=False,
                          elem_id="annotator-table", max_height=300)
    with gr.Row():
        fmt = LooseRadio(list(EXPORT_CHOICES), value="TRL preference JSONL", label="Export format")
        export = gr.Button("Export", elem_id="export-btn", scale=0, min_width=120)
    files = gr.File(label="Export files", file_count="multiple", interactive=False, elem_id="export-files", height=120)
    export_status = gr.Markdown()
    return JudgmentsTab(annotator, objective, since, study, refresh, summary, table, full, detail, plot, ratings, pairs, agreement, people_line, people, edit_id, edit_verdict,
                        edit_comment, edit, edit_status, fmt, export, files, export_status)


def wire(ctx: AppContext, t: JudgmentsTab, tab: gr.Tab) -> None:
    filters = [t.annotator, t.objective, t.since, t.study]
    export_filters = filters[:3]  # the export API's arguments stay (format, annotator, objective, since)
    outputs = [t.table, t.full, t.plot, t.ratings, t.pairs, t.agreement, t.people_line, t.people, t.annotator, t.summary, t.detail]

    def own(request: gr.Request | None) -> str | None:
        return ctx.access.own(getattr(request, "username", None) if request is not None else None)

    def annotator_box(annotators: list[str], only: str | None) -> Any:
        if only is None:
            return gr.update(choices=annotators)
        return gr.update(choices=annotators, value=only, interactive=False)

    def on_view(annotator, objective, since, study, request: gr.Request):
        only = own(request)
        try:
            table, full, fig, ratings, pairs, agree, line, people, annotators, summary = judgments_view(
                ctx, annotator, objective, since, study, only)
        except UserError as exc:
            raise refuse(exc) from None
        return table, full, fig, ratings, pairs, agree, line, people, annotator_box(annotators, only), summary, ""

    t.refresh.click(on_view, filters, outputs, api_visibility="private")
    for comp in (t.annotator, t.objective, t.study):
        comp.input(on_view, filters, outputs, api_visibility="private")  # a person's choice, not a value the view sets
    t.since.submit(on_view, filters, outputs, api_visibility="private")
    tab.select(on_view, filters, outputs, api_visibility="private")
    tab.select(lambda: gr.update(choices=study_choices(ctx)), None, [t.study], api_visibility="private")

    def on_select(full, event: gr.SelectData):
        row = event.index[0] if isinstance(event.index, (list, tuple)) else event.index
        if full is None or full.empty or row is None or not 0 <= row < len(full):
            return "", gr.skip()
        jid = int(full.iloc[row].judgment_id)
        try:
            history = ctx.records.history(jid)
        except UserError as exc:
            raise refuse(exc) from None
        return judgment_detail(full, row, history), jid

    t.table.select(on_select, [t.full], [t.detail, t.edit_id], api_visibility="private")

    def on_edit(request: gr.Request, judgment_id, verdict, comment, annotator, objective, since, study):
        username = getattr(request, "username", None) if request is not None else None
        try:
            status = change_verdict(ctx, judgment_id, verdict, comment, username)
            table, full, fig, ratings, pairs, agree, line, people, annotators, summary = judgments_view(
                ctx, annotator, objective, since, study, ctx.access.own(username))
        except UserError as exc:
            raise refuse(exc) from None
        return (status, table, full, fig, ratings, pairs, agree, line, people, annotator_box(annotators, ctx.access.own(username)),
                summary, "")

    t.edit.click(on_edit, [t.edit_id, t.edit_verdict, t.edit_comment, *filters], [t.edit_status, *outputs],
                 api_visibility="private")

    def on_export(choice, annotator, objective, since, request: gr.Request):
        try:
            return run_export(ctx, choice, annotator, objective, since, own(request))
        except UserError as exc:
            raise refuse(exc) from None

    t.export.click(on_export, [t.fmt, *export_filters], [t.files, t.export_status], api_name="export")
