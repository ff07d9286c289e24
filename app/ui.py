"""The Gradio dashboard: layout and event wiring only (the work is in ``app.service``).

Tabs: Compare (panels side by side, token view, judging, presets), Judgments (table, win-rate
charts, exports), Sweep (weight grid, trade-off frontier), Models (what is loaded).
Per-user data lives in ``gr.State`` / ``gr.BrowserState``; the ``AppContext`` is passed in.
"""

from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import json  # noqa: E402
import random  # noqa: E402
import tempfile  # noqa: E402
from datetime import datetime, timezone  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import gradio as gr  # noqa: E402
import pandas as pd  # noqa: E402

from storage.export import export as export_judgments  # noqa: E402
from storage.store import VERDICTS, JudgmentFilter, parse_date, win_rates  # noqa: E402

from .render import COMBINED, frontier_figure, token_html, weights_figure, win_rate_figure  # noqa: E402
from .service import METHOD_LABELS, AppContext, UserError, parse_chat, parse_grid, read_prompt_list  # noqa: E402

PANEL_NAMES = "ABCD"
VERDICT_BUTTONS = {"A is better": "A", "B is better": "B", "Tie": "tie", "Both bad": "both_bad"}
EXPORT_CHOICES = {"TRL preference JSONL": ("trl", ".jsonl"), "TRL preference Parquet": ("trl", ".parquet"),
                  "TRL conversational JSONL": ("trl-conversational", ".jsonl"), "Judgments CSV": ("csv", ".csv"),
                  "Battles JSONL (Elo)": ("battles", ".jsonl")}
JUDGMENT_COLUMNS = ["judgment_id", "created_at", "annotator", "verdict", "setting_a", "setting_b", "prompt",
                    "completion_a", "completion_b", "comment", "blind", "swapped"]

CSS = """
.genarm-tokens { font-family: ui-monospace, monospace; white-space: pre-wrap; line-height: 1.9; font-size: 0.92em; }
.genarm-tok { border-radius: 3px; padding: 1px 0; }
.genarm-legend { font-size: 0.8em; opacity: 0.8; margin-top: 4px; }
"""


def _theme() -> gr.themes.Base:
    # System fonts only: the default theme fetches web fonts, and the app must work offline.
    return gr.themes.Soft(font=["ui-sans-serif", "system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"])


def _error(exc: Exception) -> gr.Error:
    return gr.Error(str(exc), print_exception=False)


def _swap(v: str, swapped: bool) -> str:
    return {"A": "B", "B": "A"}.get(v, v) if swapped else v


def build_ui(ctx: AppContext, auth_enabled: bool = False) -> gr.Blocks:
    """Lay out the dashboard for ``ctx``'s model set and wire every event."""
    objectives = list(ctx.config.objectives)
    names = [o.name for o in objectives]
    defaults = ctx.config.defaults
    n_panels = ctx.panels

    with gr.Blocks(title="GenARM dashboard", analytics_enabled=False) as demo:
        pair_state = gr.State(None)
        sweep_state = gr.State(None)
        saved_annotator = gr.BrowserState("", storage_key="genarm-annotator")

        gr.Markdown(f"## GenARM: test-time alignment across objectives\nModel set **{ctx.config.name}** · "
                    f"objectives: {', '.join(names) or 'none'} · move a slider per objective, compare, judge.")
        with gr.Tabs():
            # ------------------------------------------------------------------ Compare
            with gr.Tab("Compare", id="compare"):
                prompt = gr.Textbox(label="Prompt", lines=3, placeholder="Ask something…", elem_id="prompt")
                with gr.Row():
                    gen_btn = gr.Button("Generate", variant="primary", elem_id="generate-btn")
                    stop_btn = gr.Button("Stop", variant="stop", elem_id="stop-btn")
                    blind = gr.Checkbox(label="Blind mode (hide settings, shuffle sides)", value=False, elem_id="blind")
                    live = gr.Checkbox(label="Regenerate when a slider is released", value=True, elem_id="live")
                    chat = gr.Checkbox(label="Multi-turn chat (lines 'User: …' / 'Assistant: …')", elem_id="chat",
                                       value=ctx.config.base.chat_template)
                with gr.Accordion("Decoding settings (shared by all panels)", open=False):
                    with gr.Row():
                        beta = gr.Number(value=defaults.beta, label="β (alignment strength)", minimum=0.01)
                        temperature = gr.Slider(0, 2, value=defaults.temperature, step=0.05, label="temperature (0 = greedy)")
                        top_k = gr.Number(value=defaults.top_k, label="top-k (0 = off)", precision=0, minimum=0)
                        top_p = gr.Slider(0.05, 1, value=defaults.top_p, step=0.05, label="top-p")
                        max_new = gr.Slider(1, ctx.config.max_new_tokens_cap, value=min(defaults.max_new_tokens, ctx.config.max_new_tokens_cap),
                                            step=1, label="max new tokens")
                        seed = gr.Number(value=defaults.seed, label="seed", precision=0)
                    colour_by = gr.Radio([COMBINED, *names], value=COMBINED, label="Colour tokens by")
                notice = gr.Markdown(elem_id="notice")

                panels: list[dict[str, Any]] = []
                with gr.Row(equal_height=False):
                    for i in range(n_panels):
                        p = PANEL_NAMES[i]
                        with gr.Column():
                            gr.Markdown(f"### {p}")
                            with gr.Group(visible=True) as group:
                                method = gr.Radio(list(METHOD_LABELS), value="Base only" if i == 1 else "GenARM",
                                                  label=f"Method {p}", elem_id=f"method-{p}")
                                n = gr.Slider(2, 16, value=4, step=1, label="N (Best-of-N)", visible=False)
                                method.change(lambda m: gr.update(visible=m == "Best-of-N"), method, n,
                                              api_visibility="private")
                                sliders = [gr.Slider(o.min_weight, o.max_weight, value=o.default_weight, step=0.1,
                                                     label=f"{o.name} weight", info=o.description or None,
                                                     elem_id=f"w-{p}-{o.name}") for o in objectives]
                            reveal = gr.Markdown(elem_id=f"reveal-{p}")
                            text = gr.Textbox(label=f"Completion {p}", lines=8, interactive=False, elem_id=f"out-{p}")
                            tokens = gr.HTML(elem_id=f"tokens-{p}")
                        panels.append({"group": group, "method": method, "n": n, "sliders": sliders, "reveal": reveal,
                                       "text": text, "tokens": tokens})

                gr.Markdown("#### Judge")
                with gr.Row():
                    vote_btns = [gr.Button(label, interactive=False, elem_id=f"vote-{v}") for label, v in VERDICT_BUTTONS.items()]
                with gr.Accordion("Per-objective verdicts (optional)", open=False):
                    obj_verdicts = [gr.Radio(list(VERDICTS), value=None, label=f"More {o}:", elem_id=f"verdict-{o}") for o in names]
                with gr.Row():
                    annotator = gr.Textbox(label="Annotator", placeholder="your name (remembered in this browser)",
                                           elem_id="annotator", interactive=not auth_enabled)
                    comment = gr.Textbox(label="Comment", elem_id="comment")
                judge_status = gr.Markdown(elem_id="judge-status")
                with gr.Accordion("Presets (named weight settings)", open=False):
                    with gr.Row():
                        preset_name = gr.Textbox(label="Name", elem_id="preset-name")
                        preset_from = gr.Radio(list(PANEL_NAMES[:n_panels]), value="A", label="From panel")
                        preset_save = gr.Button("Save preset")
                    with gr.Row():
                        preset_pick = gr.Dropdown(choices=sorted(ctx.store.presets()), label="Preset", allow_custom_value=False)
                        preset_to = gr.Radio(list(PANEL_NAMES[:n_panels]), value="A", label="Apply to panel")
                        preset_apply = gr.Button("Apply")

            # ------------------------------------------------------------------ Judgments
            with gr.Tab("Judgments", id="judgments") as judgments_tab:
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

            # ------------------------------------------------------------------ Sweep
            with gr.Tab("Sweep", id="sweep"):
                has_heldout = (Path(ctx.model_sets[ctx.current]).parent / "heldout.json").exists()
                with gr.Row():
                    src = gr.Radio(["Demo held-out prompts", "Pasted list", "Uploaded JSONL"],
                                   value="Demo held-out prompts" if has_heldout else "Pasted list", label="Prompts")
                    n_heldout = gr.Slider(2, 100, value=10, step=1, label="held-out prompts (half benign, half harmful)")
                pasted = gr.Textbox(label="Pasted prompts (one per line)", lines=4)
                upload = gr.File(label="JSONL with {\"prompt\": ...} per line", type="filepath", file_types=[".jsonl", ".json", ".txt"])
                with gr.Row():
                    grid = gr.Textbox(value="; ".join(f"{n}: 0, 1, 2" for n in names), label="Weight grid (objective: values; …)")
                    samples = gr.Slider(1, 8, value=1, step=1, label="samples per point")
                    sweep_max_new = gr.Slider(1, ctx.config.max_new_tokens_cap, value=min(32, ctx.config.max_new_tokens_cap),
                                              step=1, label="max new tokens")
                with gr.Row():
                    sweep_btn = gr.Button("Run sweep", variant="primary")
                    sweep_stop = gr.Button("Cancel", variant="stop")
                sweep_status = gr.Markdown()
                with gr.Row():
                    frontier = gr.Plot(label="Frontier")
                    by_weight = gr.Plot(label="Score against weight")
                point = gr.Dropdown(choices=[], label="Read the completions of a setting")
                point_table = gr.Dataframe(interactive=False, wrap=True)
                sweep_file = gr.File(label="Sweep results (CSV)", interactive=False)

            # ------------------------------------------------------------------ Models
            with gr.Tab("Models", id="models"):
                models_table = gr.Dataframe(value=pd.DataFrame(ctx.models.describe()), interactive=False, label="Loaded models")
                models_info = gr.Markdown(_models_info(ctx))
                with gr.Row():
                    set_pick = gr.Dropdown(choices=sorted(ctx.model_sets), value=ctx.current, label="Model sets on this server")
                    set_load = gr.Button("Load")

        # ============================================================== events
        panel_inputs = []
        for p in panels:
            panel_inputs += [p["method"], p["n"], *p["sliders"]]
        shared = [prompt, beta, temperature, top_k, top_p, max_new, seed, blind, colour_by, chat]
        stream_outputs = [notice, pair_state, *vote_btns, judge_status]
        for p in panels:
            stream_outputs += [p["text"], p["tokens"], p["reveal"], p["group"]]

        def read_panels(values: tuple) -> list:
            out, k = [], 0
            per = 2 + len(names)
            for _ in range(n_panels):
                method, n, *ws = values[k:k + per]
                out.append(ctx.panel(method, dict(zip(names, ws)), n))
                k += per
            return out

        def run_pair(prompt_text, beta_v, temp_v, topk_v, topp_v, maxnew_v, seed_v, blind_v, colour_v, chat_v, *values):
            try:
                specs = read_panels(values)
                the_prompt = parse_chat(prompt_text or "") if chat_v else prompt_text
                cfg = ctx.decoding(beta_v, temp_v, topk_v, topp_v, maxnew_v, seed_v)
                order = list(range(n_panels))
                swapped = bool(blind_v) and n_panels >= 2 and random.random() < 0.5
                if swapped:
                    order[0], order[1] = 1, 0
                idle_votes = [gr.update(interactive=False) for _ in vote_btns]
                for upd in ctx.generate(the_prompt, specs, cfg):
                    # While streaming the pair state stays empty, so nothing can be judged yet.
                    out = [f"⚠️ {upd.warning}" if upd.warning else "", None, *idle_votes, ""]
                    if not upd.done:
                        for disp in range(n_panels):
                            row = order[disp]
                            out += [upd.texts[row], "", "", gr.update(visible=not blind_v)]
                        yield out
                        continue
                    labels = [specs[r].label(cfg.beta) for r in order]
                    state = {"ids": [upd.generation_ids[r] for r in range(n_panels)], "order": order, "swapped": swapped,
                             "labels": labels, "traces": [upd.results[r].trace for r in order], "blind": bool(blind_v),
                             "voted": False, "prompt": prompt_text}
                    out = [out[0], state, *[gr.update(interactive=True) for _ in vote_btns],
                           "Both finished: judge them below." if n_panels >= 2 else ""]
                    for disp in range(n_panels):
                        r = upd.results[order[disp]]
                        info = ("*settings hidden until you vote*" if blind_v else
                                f"`{labels[disp]}` · {r.n_tokens} tokens · {r.finish_reason}")
                        out += [r.text, token_html(r.trace, colour_v), info, gr.update(visible=not blind_v)]
                    yield out
            except UserError as exc:
                raise _error(exc) from None

        gen_event = gen_btn.click(run_pair, shared + panel_inputs, stream_outputs, api_visibility="private",
                                  concurrency_id="generate", concurrency_limit=1)
        prompt_submit = prompt.submit(run_pair, shared + panel_inputs, stream_outputs, api_visibility="private",
                                      concurrency_id="generate", concurrency_limit=1)

        def run_if_live(live_v, *args):
            if not live_v or not str(args[0] or "").strip():
                yield [gr.skip()] * len(stream_outputs)
                return
            yield from run_pair(*args)

        release_events = []
        for p in panels:
            for s in p["sliders"]:
                release_events.append(s.release(run_if_live, [live, *shared, *panel_inputs], stream_outputs,
                                                 api_visibility="private", concurrency_id="generate", concurrency_limit=1))
        stop_btn.click(None, None, None, cancels=[gen_event, prompt_submit, *release_events], api_visibility="private")

        def recolour(state, colour_v):
            if not state:
                return [gr.skip()] * n_panels
            return [token_html(t, colour_v) for t in state["traces"]]

        colour_by.change(recolour, [pair_state, colour_by], [p["tokens"] for p in panels], api_visibility="private")

        def vote(verdict_display: str):
            def handler(request: gr.Request, state, annot, comm, saved, *obj_vs):
                try:
                    if not state:
                        raise UserError("generate a pair first, and wait until both panels have finished")
                    if state.get("voted"):
                        raise UserError("this pair is already judged; generate a new one")
                    who = (request.username if request is not None and getattr(request, "username", None) else annot) or ""
                    swapped = state["swapped"]
                    per_obj = {o: _swap(v, swapped) for o, v in zip(names, obj_vs) if v}
                    jid = ctx.judge(state["ids"], _swap(verdict_display, swapped), per_obj, annotator=who,
                                    comment=comm, blind=state["blind"], swapped=swapped)
                except UserError as exc:
                    raise _error(exc) from None
                state = {**state, "voted": True}
                reveals = [f"`{lab}`" + (" (revealed)" if state["blind"] else "") for lab in state["labels"]]
                return [state, f"Recorded judgment #{jid}" + (f" by {who}" if who else "") + ".", who or saved,
                        *[gr.update(interactive=False) for _ in vote_btns], *reveals,
                        *[gr.update(visible=True) for _ in panels], *[None for _ in obj_verdicts], ""]
            return handler

        vote_outputs = [pair_state, judge_status, saved_annotator, *vote_btns, *[p["reveal"] for p in panels],
                        *[p["group"] for p in panels], *obj_verdicts, comment]
        for btn, v in zip(vote_btns, VERDICT_BUTTONS.values()):
            btn.click(vote(v), [pair_state, annotator, comment, saved_annotator, *obj_verdicts], vote_outputs,
                      api_visibility="private")

        def remembered_annotator(saved: str, request: gr.Request) -> str:
            user = getattr(request, "username", None) if request is not None else None
            return user or saved or ""

        demo.load(remembered_annotator, [saved_annotator], [annotator], api_visibility="private")

        def save_preset(name, panel_name, *values):
            try:
                spec = read_panels(values)[PANEL_NAMES.index(panel_name)]
                ctx.store.save_preset(name, spec.weights)
            except (UserError, ValueError) as exc:
                raise _error(exc) from None
            gr.Info(f"Saved preset {name!r}")
            return gr.update(choices=sorted(ctx.store.presets()), value=name.strip())

        preset_save.click(save_preset, [preset_name, preset_from, *panel_inputs], [preset_pick], api_visibility="private")

        def apply_preset(name, panel_name):
            weights = ctx.store.presets().get(name)
            if weights is None:
                raise gr.Error("choose a saved preset first", print_exception=False)
            idx = PANEL_NAMES.index(panel_name)
            out = []
            for i, p in enumerate(panels):
                for o in names:
                    out.append(gr.update(value=weights.get(o, 0.0)) if i == idx else gr.skip())
                out.append(gr.update(value="GenARM") if i == idx else gr.skip())
            return out

        preset_outputs = []
        for p in panels:
            preset_outputs += [*p["sliders"], p["method"]]
        preset_apply.click(apply_preset, [preset_pick, preset_to], preset_outputs, api_visibility="private")

        # ---------------------------------------------------------- Judgments tab
        def judgment_view(annot, obj, since):
            try:
                flt = _filter(annot, obj, since)
            except UserError as exc:
                raise _error(exc) from None
            df = ctx.store.judgments_frame(flt)
            objective = None if obj in (None, "", "overall") else obj
            rates = win_rates(df, objective)
            table = df[[c for c in JUDGMENT_COLUMNS if c in df] + [c for c in df if c.startswith("verdict_")]] if not df.empty else pd.DataFrame(columns=JUDGMENT_COLUMNS)
            return (table, win_rate_figure(rates, f"Win rate by setting ({objective or 'overall'} verdicts)"),
                    gr.update(choices=[""] + ctx.store.annotators()))

        view_outputs = [judg_table, judg_plot, f_annot]
        refresh.click(judgment_view, [f_annot, f_obj, f_since], view_outputs, api_visibility="private")
        for comp in (f_annot, f_obj):
            comp.change(judgment_view, [f_annot, f_obj, f_since], view_outputs, api_visibility="private")
        judgments_tab.select(judgment_view, [f_annot, f_obj, f_since], view_outputs, api_visibility="private")

        def do_export(fmt_label, annot, obj, since):
            try:
                fmt, suffix = EXPORT_CHOICES[fmt_label]
                flt = _filter(annot, obj, since)
            except KeyError:
                raise gr.Error(f"unknown export format {fmt_label!r}; choose one of {list(EXPORT_CHOICES)}", print_exception=False) from None
            except UserError as exc:
                raise _error(exc) from None
            folder = Path(tempfile.mkdtemp(prefix="genarm-export-"))
            stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
            summary = export_judgments(ctx.store, fmt, folder / f"genarm-{fmt}-{stamp}{suffix}", flt)
            return summary.files, f"```\n{str(summary).replace(str(folder) + os.sep, '')}\n```"

        exp_btn.click(do_export, [exp_fmt, f_annot, f_obj, f_since], [exp_files, exp_status], api_name="export")

        # ---------------------------------------------------------- Sweep tab
        def run_sweep(src_v, n_held, pasted_v, upload_v, grid_v, samples_v, maxnew_v, beta_v, temp_v, topk_v, topp_v,
                      seed_v, progress=gr.Progress()):
            try:
                prompts = _sweep_prompts(ctx, src_v, int(n_held), pasted_v, upload_v)
                g = parse_grid(grid_v, names)
                cfg = ctx.decoding(beta_v, temp_v, topk_v, topp_v, maxnew_v, seed_v, trace=False)
                result = None
                progress(0, desc="sweeping")
                for frac, res in ctx.sweep(prompts, g, cfg, samples=int(samples_v)):
                    progress(frac, desc="sweeping")
                    result = res
            except UserError as exc:
                raise _error(exc) from None
            sweep_id, df = result
            path = Path(tempfile.mkdtemp(prefix="genarm-sweep-")) / f"sweep-{sweep_id}.csv"
            df.to_csv(path, index=False)
            settings = sorted(df["setting"].unique())
            return (df, frontier_figure(df, names), weights_figure(df, names),
                    gr.update(choices=settings, value=settings[0] if settings else None),
                    _point_rows(df, settings[0] if settings else None), str(path),
                    f"Sweep #{sweep_id}: {len(df)} completions over {len(settings)} settings × {len(prompts)} prompts, stored.")

        sweep_event = sweep_btn.click(run_sweep, [src, n_heldout, pasted, upload, grid, samples, sweep_max_new, beta,
                                                  temperature, top_k, top_p, seed],
                                      [sweep_state, frontier, by_weight, point, point_table, sweep_file, sweep_status],
                                      api_visibility="private", concurrency_id="generate", concurrency_limit=1)
        sweep_stop.click(None, None, None, cancels=[sweep_event], api_visibility="private")
        point.change(lambda df, s: _point_rows(df, s), [sweep_state, point], [point_table], api_visibility="private")

        # ---------------------------------------------------------- Models tab
        def load_set(name):
            try:
                new_cfg = type(ctx.config).from_file(ctx.model_sets[name])
                if new_cfg.objective_names != names:
                    raise UserError(f"{name!r} has objectives {new_cfg.objective_names}, this page was built for {names}; "
                                    f"restart the app with --models pointing at it")
                ctx.load(name)
            except (UserError, ValueError) as exc:
                raise _error(exc) from None
            return pd.DataFrame(ctx.models.describe()), _models_info(ctx)

        set_load.click(load_set, [set_pick], [models_table, models_info], api_visibility="private",
                       concurrency_id="generate", concurrency_limit=1)

        # ---------------------------------------------------------- API-only endpoints
        def generate_pair(prompt: str, weights_a: str = "{}", method_a: str = "genarm", weights_b: str = "{}",
                          method_b: str = "base", beta: float = 1.0, temperature: float = 1.0, top_k: int = 0,
                          top_p: float = 1.0, max_new_tokens: int = 32, seed: int = 0) -> str:
            """Generate panels A and B in one batched run; returns JSON with completions and stored generation ids."""
            try:
                specs = [ctx.panel(method_a, _json_weights(weights_a)), ctx.panel(method_b, _json_weights(weights_b))]
                cfg = ctx.decoding(beta, temperature, top_k, top_p, max_new_tokens, seed)
                final = None
                for final in ctx.generate(prompt, specs, cfg):
                    pass
            except UserError as exc:
                raise _error(exc) from None
            return json.dumps({"generation_ids": final.generation_ids, "completions": final.texts,
                               "settings": cfg.to_dict(), "labels": [s.label(cfg.beta) for s in specs],
                               "scores": [r.scores for r in final.results], "warning": final.warning})

        def record_judgment(generation_a_id: int, generation_b_id: int, verdict: str, objective_verdicts: str = "{}",
                            annotator: str = "", comment: str = "") -> str:
            """Record a verdict (A, B, tie, both_bad) on two stored generations of the same prompt."""
            try:
                per_obj = json.loads(objective_verdicts or "{}")
                if not isinstance(per_obj, dict):
                    raise UserError("objective_verdicts must be a JSON object")
                jid = ctx.judge([generation_a_id, generation_b_id], verdict, per_obj, annotator=annotator, comment=comment)
            except (UserError, json.JSONDecodeError) as exc:
                raise _error(exc) from None
            return json.dumps({"judgment_id": jid})

        gr.api(generate_pair, api_name="generate_pair", concurrency_id="generate", concurrency_limit=1)
        gr.api(record_judgment, api_name="record_judgment")
    return demo


def _json_weights(text: Any) -> dict[str, Any]:
    if isinstance(text, dict):
        return text
    try:
        w = json.loads(text or "{}")
    except json.JSONDecodeError:
        raise UserError(f"weights must be a JSON object such as {{\"helpfulness\": 1.0}}, got {text!r}") from None
    if not isinstance(w, dict):
        raise UserError("weights must be a JSON object")
    return w


def _filter(annot: str | None, obj: str | None, since: str | None) -> JudgmentFilter:
    since_dt = None
    if since and since.strip():
        try:
            since_dt = parse_date(since)
        except ValueError as exc:
            raise UserError(f"'since': {exc}") from None
    return JudgmentFilter(since=since_dt, annotator=annot or None,
                          objective=None if obj in (None, "", "overall") else obj)


def _sweep_prompts(ctx: AppContext, src: str, n_held: int, pasted: str, upload: str | None) -> list[Any]:
    if src == "Demo held-out prompts":
        path = Path(ctx.model_sets[ctx.current])
        if not (path.parent / "heldout.json").exists():
            raise UserError("this model set has no held-out prompts (only the demo does); paste or upload prompts")
        from genarm_core.demo.evaluate import sample_held_out

        return [p.text for p in sample_held_out(path, max(1, n_held // 2))]
    if src == "Uploaded JSONL":
        if not upload:
            raise UserError("upload a JSONL file first")
        return read_prompt_list(path=upload)
    return read_prompt_list(text=pasted)


def _point_rows(df: pd.DataFrame | None, setting: str | None) -> pd.DataFrame:
    if df is None or df.empty or not setting:
        return pd.DataFrame(columns=["prompt", "completion"])
    cols = ["prompt", "completion", *[c for c in df if c.startswith("score_")]]
    return df[df["setting"] == setting][cols]


def _models_info(ctx: AppContext) -> str:
    m = ctx.models
    return (f"**{ctx.config.name}** from `{Path(ctx.model_sets[ctx.current]).name}` · shared vocabulary {m.vocab_size} tokens · "
            f"context {m.max_context()} tokens · max new tokens on this server: {ctx.config.max_new_tokens_cap}")


def launch_kwargs() -> dict[str, Any]:
    return {"theme": _theme(), "css": CSS}


__all__ = ["build_ui", "launch_kwargs"]
