"""Studies: settings x prompts x samples, judged by independent judges; the frontier by any two of
them; click a point to read its completions beside the reference's; reopen earlier studies.

A run here is a study like ``genarm study run`` (``app.service.studies``), on the loaded model set,
stored in the app's database: the base alone is always the reference, and every ARM's own score is
recorded as a self-scored judge beside the set's judges picked here.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd

from ..render import empty_figure
from ..service import AppContext, UserError, parse_grid, read_prompt_list
from ..service import requests as req

#: The most held-out prompts a dashboard study takes (the built-in sets ship fewer).
MAX_HELD_OUT = 1000
from .common import DecodingControls, LooseSlider, View, refuse

SOURCES = ["Held-out prompts of this set", "Pasted list", "Uploaded file"]
WIN_COLUMNS = ["setting", "judge", "win", "tie", "lose", "win rate (95% CI)", "(win + ½ tie) / n", "orders agree"]

# Plotly click → hidden textbox bridge. Gradio's Plot has no click event, so the page binds
# plotly_click on the frontier (re-binding whenever a new figure replaces the old one) and writes
# the clicked point's setting, as JSON, into a hidden textbox whose change event the server hears.
CLICK_JS = """
() => {
  const bind = () => {
    document.querySelectorAll('#study-frontier .js-plotly-plot').forEach((plot) => {
      if (plot.__genarmClick || typeof plot.on !== 'function') return;
      plot.__genarmClick = true;
      plot.on('plotly_click', (ev) => {
        const pt = ev && ev.points && ev.points[0];
        const data = pt && pt.customdata;
        const setting = Array.isArray(data) ? data[0] : data;
        const box = document.querySelector('#study-clicked textarea, #study-clicked input');
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

def study_prompts(ctx: AppContext, source: str, n: Any, pasted: str, upload: str | None) -> list[Any]:
    if source == SOURCES[0]:
        count = req.number(n if n not in (None, "") else 2, "held-out prompts", integer=True)
        if not 1 <= count <= MAX_HELD_OUT:
            raise UserError(f"held-out prompts: a whole number from 1 to {MAX_HELD_OUT}, got {n!r}")
        records = ctx.sets.evaluation_records(count)
        if records is None:
            raise UserError("prompts: this model set ships no held-out prompts (the built-in demo and smollm2 do); "
                            "paste or upload prompts")
        return records
    if source == SOURCES[2]:
        if not upload:
            raise UserError("prompt file: upload a prompt file first")
        return read_prompt_list(path=upload)
    return read_prompt_list(text=pasted)


def study_settings(ctx: AppContext, grid: str, best_of: str) -> list[Any]:
    """The GenARM grid's settings, then Best-of-N at the set's default weights for each N listed."""
    from ..service.studies import grid_settings

    settings = grid_settings(ctx.config, parse_grid(grid, ctx.objectives)) if (grid or "").strip() else []
    defaults = {o.name: o.default_weight for o in ctx.config.objectives}
    for part in (best_of or "").replace(";", ",").split(","):
        if not part.strip():
            continue
        try:
            n = int(part)
        except ValueError:
            raise UserError(f"Best-of-N: N must be whole numbers separated by commas, got {part.strip()!r}") from None
        settings.append(ctx.setting("best_of_n", defaults, n, where="Best-of-N"))
    return list(dict.fromkeys(settings))


def default_grid(objectives: list[str]) -> str:
    return "; ".join(f"{n}: 0, 1, 2" for n in objectives)


def judge_choices(ctx: AppContext) -> tuple[list[tuple[str, str]], list[str]]:
    """The set's judges as (label, name), and those picked by default (all but slow pairwise LLM judges)."""
    choices = [(f"{j.name} ({j.kind.replace('_', ' ')})", j.name) for j in ctx.config.judges]
    return choices, [j.name for j in ctx.config.judges if j.scores]


def study_choices(ctx: AppContext) -> list[tuple[str, int]]:
    try:
        studies = ctx.studies()
    except UserError:
        return []
    return [(f"#{s['id']} {s['name']} ({s['cells']} completions)", s["id"]) for s in studies]


def win_rows(report: Any) -> pd.DataFrame:
    if report is None or report.wins.empty:
        return pd.DataFrame(columns=WIN_COLUMNS)
    w = report.wins
    return pd.DataFrame({
        "setting": w["setting"], "judge": w["judge"].map(report.judge_header), "win": w["wins"], "tie": w["ties"],
        "lose": w["losses"], "win rate (95% CI)": w["win_rate"].map(str), "(win + ½ tie) / n": w["win_rate_half_ties"].map(str),
        "orders agree": w["consistent"].map(lambda x: "" if x is None or x != x else f"{x:.2f}")})


def summary_rows(report: Any) -> pd.DataFrame:
    from ..service.study_report import SHOWN_METRICS, _fmt

    if report is None:
        return pd.DataFrame(columns=["setting", "n"])
    cols = ["setting", "n", *report.scoring_judges, *[m for m in SHOWN_METRICS if m in report.summary.columns]]
    table = report.summary[cols].copy()
    for c in cols[2:]:
        table[c] = table[c].map(_fmt)
    names = {j: report.judge_header(j) for j in report.scoring_judges}
    return table.rename(columns={**names, **SHOWN_METRICS})


def axis_updates(report: Any, x: str | None = None, y: str | None = None) -> tuple[Any, Any]:
    from ..service.study_report import SHOWN_METRICS

    if report is None:
        return gr.update(choices=[], value=None), gr.update(choices=[], value=None)
    choices = [(report.judge_header(j), j) for j in report.scoring_judges]
    choices += [(h, m) for m, h in SHOWN_METRICS.items() if m in report.summary.columns]
    names = [c[1] for c in choices]
    x0, y0 = report.default_axes(x if x in names else None, y if y in names else None)
    return gr.update(choices=choices, value=x0), gr.update(choices=choices, value=y0)


def frontier(report: Any, x: str | None, y: str | None):
    if report is None or not x or not y:
        return empty_figure("Frontier", "No study yet: pick prompts, settings and judges above, then Run study "
                                        "(or open an earlier one).", 460)
    try:
        if (x, y) == report.safety_axes():  # drawn as OR-Bench draws it: both axes 0..1, the aim marked
            return report.safety_frontier()
        return report.frontier(x, y)
    except UserError:
        return empty_figure("Frontier", "Pick two judges or metrics of this study.", 460)


def clicked_setting(payload: str | None, report: Any) -> str | None:
    """The setting named by the page's click payload, if it is one of this study's."""
    try:
        label = json.loads(payload or "{}").get("setting")
    except (json.JSONDecodeError, AttributeError):
        return None
    if report is None or label not in report.settings:
        return None
    return label


def point_rows(report: Any, label: str | None) -> pd.DataFrame:
    if report is None or not label:
        return pd.DataFrame(columns=["prompt", "sample", "completion", "reference"])
    return report.completions_of(label)


def report_files(report: Any) -> list[str]:
    folder = Path(tempfile.mkdtemp(prefix="genarm-study-"))
    return [str(p) for p in report.write(folder, png=False) if p.suffix in (".md", ".csv")]


def show(report: Any, x: str | None = None, y: str | None = None, message: str = "") -> tuple:
    """Every output of the tab for a report (after a run, on opening an earlier study)."""
    xu, yu = axis_updates(report, x, y)
    x0, y0 = xu.get("value"), yu.get("value")
    first = report.settings[1] if report is not None and len(report.settings) > 1 else None
    return (report, xu, yu, frontier(report, x0, y0), summary_rows(report), win_rows(report),
            gr.update(choices=report.settings if report else [], value=first), point_rows(report, first),
            report_files(report) if report is not None else None, message)


# ---------------------------------------------------------------------------------------- layout & wiring

JOB_COLUMNS = ["job", "study", "owner", "status", "progress", "message", "asked (UTC)"]


def job_rows(jobs: Any) -> pd.DataFrame:
    """The job queue for people: newest first, progress as a percentage."""
    if jobs is None or jobs.empty:
        return pd.DataFrame(columns=JOB_COLUMNS)
    return pd.DataFrame({"job": jobs["id"], "study": [f"#{int(i)}" if i == i and i is not None else "" for i in jobs["study_id"]],
                         "owner": jobs["owner"].replace("", "—"), "status": jobs["status"],
                         "progress": [f"{p:.0%}" for p in jobs["progress"]], "message": jobs["message"],
                         "asked (UTC)": [pd.Timestamp(t).strftime("%Y-%m-%d %H:%M:%S") for t in jobs["created_at"]]})


@dataclass
class StudiesTab:
    source: Any
    n_prompts: Any
    pasted: Any
    upload: Any
    grid: Any
    best_of: Any
    judges: Any
    samples: Any
    max_new: Any
    run: Any
    cancel: Any
    status: Any
    jobs: Any
    job_id: Any
    cancel_job: Any
    refresh: Any
    timer: Any
    page_job: Any
    earlier: Any
    open: Any
    x: Any
    y: Any
    frontier: Any
    summary: Any
    wins: Any
    clicked: Any
    point: Any
    point_table: Any
    files: Any
    report: Any


def source_fields(source: str) -> tuple[bool, bool, bool]:
    """Which of (held-out count, pasted box, upload) a prompt source uses: only those are shown."""
    return source == SOURCES[0], source == SOURCES[1], source == SOURCES[2]


def layout(ctx: AppContext) -> StudiesTab:
    has_held = ctx.sets.evaluation_prompts(2) is not None
    first = SOURCES[0] if has_held else SOURCES[1]
    shown = source_fields(first)
    with gr.Row():
        source = gr.Radio(SOURCES, value=first, label="Prompts", elem_id="study-source")
        n_prompts = LooseSlider(3, 60, value=12, step=3, label="held-out prompts (as many of each kind: benign, "
                                                               "borderline-safe, harmful)", visible=shown[0])
    pasted = gr.Textbox(label="Pasted prompts (one per line)", lines=4, elem_id="study-pasted", visible=shown[1])
    upload = gr.File(label="Prompt file: one per line (text, {\"prompt\": ...}, or a JSON list of chat messages)",
                     type="filepath", file_types=[".jsonl", ".json", ".txt"], visible=shown[2], height=140)
    with gr.Row():
        grid = gr.Textbox(value=default_grid(ctx.objectives), label="GenARM weight grid (objective: values; … or from:to:count)",
                          elem_id="study-grid", scale=3)
        best_of = gr.Textbox(value="", label="Best-of-N at the default weights (N, comma-separated)", elem_id="study-best-of",
                             scale=1)
    choices, picked = judge_choices(ctx)
    judges = gr.CheckboxGroup(choices, value=picked, label="Judges of this model set (each ARM's own score is always "
                                                            "recorded too, marked self-scored)", elem_id="study-judges")
    with gr.Row():
        samples = LooseSlider(1, 8, value=1, step=1, label="samples per prompt", scale=1, elem_id="study-samples")
        max_new = LooseSlider(1, ctx.config.max_new_tokens_cap, value=min(32, ctx.config.max_new_tokens_cap), step=1,
                              label="max new tokens", elem_id="study-max-new", scale=1)
    with gr.Row():
        run = gr.Button("Run study", variant="primary", elem_id="study-run", scale=0, min_width=140)
        cancel = gr.Button("Cancel", variant="stop", scale=0, min_width=100, elem_id="study-cancel")
    status = gr.Markdown("Pick prompts, settings and judges, then **Run study**: it joins the job queue, and a worker "
                         "(a separate process: Compare stays fast meanwhile) runs every setting and the base alone (the "
                         "reference) on every prompt, batched; each completion is stored, then judged. Its report opens "
                         "here when it is done.", elem_id="study-status")
    with gr.Accordion("Job queue (yours; an admin sees everyone's)", open=True):
        jobs = gr.Dataframe(value=job_rows(None), interactive=False, wrap=True, elem_id="study-jobs", max_height=260)
        with gr.Row():
            job_id = gr.Number(value=None, precision=0, label="job #", elem_id="study-job-id", scale=0, min_width=120)
            cancel_job = gr.Button("Cancel job", scale=0, min_width=120, elem_id="study-cancel-job")
            refresh = gr.Button("Refresh", scale=0, min_width=100, elem_id="study-refresh")
    timer = gr.Timer(2.0, active=False)
    with gr.Row():
        earlier = gr.Dropdown(choices=study_choices(ctx), value=None, label="Earlier studies", elem_id="study-earlier",
                              scale=3)
        open_ = gr.Button("Open", scale=0, min_width=100, elem_id="study-open")
    with gr.Row():
        x = gr.Dropdown(choices=[], label="Frontier x axis", elem_id="study-x")
        y = gr.Dropdown(choices=[], label="Frontier y axis", elem_id="study-y")
    frontier_plot = gr.Plot(value=frontier(None, None, None), label="Frontier (click a point to read it)",
                            elem_id="study-frontier")
    summary = gr.Dataframe(value=summary_rows(None), interactive=False, wrap=True, label="Mean per completion (95% CI)",
                           elem_id="study-summary")
    wins = gr.Dataframe(value=win_rows(None), interactive=False, wrap=True,
                        label="Against the base alone, same prompt and sample", elem_id="study-wins")
    clicked = gr.Textbox(visible="hidden", elem_id="study-clicked")
    point = gr.Dropdown(choices=[], label="Completions of setting (beside the reference's)", elem_id="study-point")
    point_table = gr.Dataframe(value=point_rows(None, None), interactive=False, wrap=True, elem_id="study-point-table",
                               max_height=420)
    files = gr.File(label="Report (markdown and CSV)", interactive=False, file_count="multiple", height=120)
    return StudiesTab(source, n_prompts, pasted, upload, grid, best_of, judges, samples, max_new, run, cancel, status,
                      jobs, job_id, cancel_job, refresh, timer, gr.State(None), earlier, open_, x, y, frontier_plot,
                      summary, wins, clicked, point, point_table, files, gr.State(None))


def wire(ctx: AppContext, t: StudiesTab, decoding: DecodingControls, page: Any = None) -> View:
    """``page``: the tab itself; opening it refreshes the list of earlier studies (others' runs included)."""
    outputs = [t.report, t.x, t.y, t.frontier, t.summary, t.wins, t.point, t.point_table, t.files, t.status]

    def login(request: gr.Request | None) -> str | None:
        return getattr(request, "username", None) if request is not None else None

    def on_run(source, n, pasted, upload, grid, best_of, judges, samples, max_new, beta, temp, top_k, top_p, seed,
               request: gr.Request):
        """Queue the study for a worker; the page follows the job (the timer) and opens its report when done."""
        try:
            prompts = study_prompts(ctx, source, n, pasted, upload)
            settings = study_settings(ctx, grid, best_of)
            cfg = ctx.decoding(beta, temp, top_k, top_p, max_new, seed, trace=False)
            n_samples = req.number(samples or 1, "samples per prompt", integer=True)
            job_id = ctx.submit_study(prompts, settings, cfg, samples=n_samples, judges=list(judges or []),
                                      owner=login(request))
        except (UserError, ValueError) as exc:
            raise refuse(UserError(str(exc))) from None
        message = (f"Queued as job #{job_id}: {len(settings) + 1} settings (with the base alone) × {len(prompts)} prompts × "
                   f"{n_samples} samples. A worker runs it; its progress is below, and its report opens here when it is done.")
        return message, job_id, job_rows(ctx.jobs(login(request))), gr.Timer(active=True), job_id

    def on_tick(page_job, request: gr.Request):
        """Follow this page's job: the queue's progress, and its report once it is done (then the timer stops)."""
        if page_job is None:
            return {t.timer: gr.Timer(active=False)}
        try:
            job = ctx.job(int(page_job))
            table = job_rows(ctx.jobs(login(request)))
        except UserError as exc:
            return {t.status: f"⚠️ {exc}", t.timer: gr.Timer(active=False)}
        if job["status"] in ("queued", "running"):
            waiting = "" if job["status"] == "running" else " (waiting for a worker: the dashboard starts one; `genarm worker --db ...` adds more)"
            return {t.jobs: table, t.status: f"Job #{job['id']}: {job['status']}, {job['progress']:.0%}{waiting}. {job['message']}"}
        out = {t.jobs: table, t.timer: gr.Timer(active=False), t.page_job: None,
               t.earlier: gr.update(choices=study_choices(ctx), value=job["study_id"])}
        if job["status"] != "done" or job["study_id"] is None:
            return {**out, t.status: f"Job #{job['id']} {job['status']}: {job['message']}"}
        report = ctx.study_report(int(job["study_id"]))
        message = (f"Job #{job['id']} done: study #{job['study_id']}, {len(report.completions)} completions over "
                   f"{len(report.settings)} settings, stored and judged. Click a point of the frontier (or pick a setting "
                   "below) to read its completions beside the base's.")
        return {**out, **dict(zip(outputs, show(report, message=message)))}

    def on_cancel(page_job, job_id, request: gr.Request):
        """Cancel the job typed in the job box, else this page's own; its owner or an admin only."""
        target = job_id if job_id not in (None, "") else page_job
        if target is None:
            return "No job to cancel: type its number in the job box (or run a study on this page).", gr.skip()
        try:
            message = ctx.cancel_job(target, login(request))
        except UserError as exc:
            raise refuse(exc) from None
        return message, job_rows(ctx.jobs(login(request)))

    def on_refresh(request: gr.Request):
        return job_rows(ctx.jobs(login(request)))

    def on_open(study_id):
        if study_id is None:
            raise refuse(UserError("earlier studies: pick one to open"))
        try:
            report = ctx.study_report(int(study_id))
        except UserError as exc:
            raise refuse(exc) from None
        return show(report, message=f"Study #{report.study['id']} ({report.study['name']}) opened.")

    d = decoding
    t.run.click(on_run, [t.source, t.n_prompts, t.pasted, t.upload, t.grid, t.best_of, t.judges, t.samples, t.max_new,
                         d.beta, d.temperature, d.top_k, d.top_p, d.seed],
                [t.status, t.page_job, t.jobs, t.timer, t.job_id], api_visibility="private")
    t.timer.tick(on_tick, [t.page_job], [*outputs, t.jobs, t.timer, t.page_job, t.earlier], api_visibility="private",
                 show_progress="hidden")
    for button in (t.cancel, t.cancel_job):
        button.click(on_cancel, [t.page_job, t.job_id], [t.status, t.jobs], api_visibility="private")
    t.refresh.click(on_refresh, None, [t.jobs], api_visibility="private")
    t.open.click(on_open, [t.earlier], outputs, api_visibility="private")
    if page is not None:
        def on_page(request: gr.Request):
            return gr.update(choices=study_choices(ctx)), job_rows(ctx.jobs(login(request)))

        page.select(on_page, None, [t.earlier, t.jobs], api_visibility="private")
    t.source.change(lambda source: [gr.update(visible=v) for v in source_fields(source)], [t.source],
                    [t.n_prompts, t.pasted, t.upload], api_visibility="private")
    for axis in (t.x, t.y):
        axis.input(frontier, [t.report, t.x, t.y], [t.frontier], api_visibility="private")
    t.point.change(point_rows, [t.report, t.point], [t.point_table], api_visibility="private")
    t.clicked.change(lambda payload, rep: clicked_setting(payload, rep) or gr.skip(), [t.clicked, t.report], [t.point],
                     api_visibility="private")

    def view() -> list:
        has_held = ctx.sets.evaluation_prompts(2) is not None
        choices, picked = judge_choices(ctx)
        return [default_grid(ctx.objectives), gr.update(value=SOURCES[0] if has_held else SOURCES[1]),
                gr.update(choices=choices, value=picked), gr.update(choices=study_choices(ctx))]

    return View(view, [t.grid, t.source, t.judges, t.earlier])
