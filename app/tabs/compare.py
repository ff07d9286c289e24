"""Compare: one prompt, two to four panels with their own weights, streamed together; judging; presets."""

from __future__ import annotations

import random
from typing import Any

import gradio as gr

from storage.db import StorageError
from storage.store import VERDICTS

from ..render import COMBINED, token_html
from ..service import METHOD_LABELS, AppContext, UserError, parse_chat
from .common import PANEL_NAMES, DecodingControls, View, gr_error

VERDICT_BUTTONS = {"A is better": "A", "B is better": "B", "Tie": "tie", "Both bad": "both_bad"}


def _swap(v: str, swapped: bool) -> str:
    return {"A": "B", "B": "A"}.get(v, v) if swapped else v


def build(demo: gr.Blocks, ctx: AppContext, auth_enabled: bool, shown_set: gr.State) -> tuple[DecodingControls, View]:
    """Lay out the Compare tab inside the current ``gr.Tab`` and wire its events.

    There is one slider per objective of every model set the server offers; those of the loaded
    set are shown (the returned ``View`` re-applies that after a switch or on page load). Weights
    are read for the loaded set's objectives only; ``shown_set`` holds the set this page shows.
    """
    all_objectives = ctx.objectives_of_all_sets()
    names = list(all_objectives)  # component order; ctx.objectives is what is loaded now
    current = set(ctx.objectives)
    defaults = ctx.config.defaults
    n_panels = ctx.panels
    pair_state = gr.State(None)
    saved_annotator = gr.BrowserState("", storage_key="genarm-annotator")

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
        colour_by = gr.Radio([COMBINED, *ctx.objectives], value=COMBINED, label="Colour tokens by")
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
                    method.change(lambda m: gr.update(visible=m == "Best-of-N"), method, n, api_visibility="private")
                    sliders = [gr.Slider(o.min_weight, o.max_weight, value=o.default_weight, step=0.1,
                                         label=f"{o.name} weight", info=o.description or None,
                                         elem_id=f"w-{p}-{o.name}", visible=o.name in current)
                               for o in all_objectives.values()]
                reveal = gr.Markdown(elem_id=f"reveal-{p}")
                text = gr.Textbox(label=f"Completion {p}", lines=8, interactive=False, elem_id=f"out-{p}")
                tokens = gr.HTML(elem_id=f"tokens-{p}")
            panels.append({"group": group, "method": method, "n": n, "sliders": sliders, "reveal": reveal,
                           "text": text, "tokens": tokens})

    gr.Markdown("#### Judge")
    with gr.Row():
        vote_btns = [gr.Button(label, interactive=False, elem_id=f"vote-{v}") for label, v in VERDICT_BUTTONS.items()]
    with gr.Accordion("Per-objective verdicts (optional)", open=False):
        obj_verdicts = [gr.Radio(list(VERDICTS), value=None, label=f"More {o}:", elem_id=f"verdict-{o}",
                                 visible=o in current) for o in names]
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

    # ------------------------------------------------------------------ generating
    panel_inputs = []
    for p in panels:
        panel_inputs += [p["method"], p["n"], *p["sliders"]]
    shared = [shown_set, prompt, beta, temperature, top_k, top_p, max_new, seed, blind, colour_by, chat]
    stream_outputs = [notice, pair_state, *vote_btns, judge_status]
    for p in panels:
        stream_outputs += [p["text"], p["tokens"], p["reveal"], p["group"]]

    def read_panels(values: tuple) -> list:
        out, k = [], 0
        per = 2 + len(names)
        loaded = set(ctx.objectives)
        for _ in range(n_panels):
            method, n, *ws = values[k:k + per]
            out.append(ctx.panel(method, {o: w for o, w in zip(names, ws) if o in loaded}, n))
            k += per
        return out

    def run_pair(shown, prompt_text, beta_v, temp_v, topk_v, topp_v, maxnew_v, seed_v, blind_v, colour_v, chat_v, *values):
        try:
            if shown != ctx.current:
                raise UserError(f"the server now serves model set {ctx.current!r} (switched in the Models tab since "
                                f"this page showed {shown!r}); reload the page")
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
                stored = upd.generation_ids is not None
                state = {"ids": upd.generation_ids, "order": order, "swapped": swapped,
                         "labels": labels, "traces": [upd.results[r].trace for r in order], "blind": bool(blind_v),
                         "voted": False, "prompt": prompt_text}
                status = ("Both finished: judge them below." if stored else
                          "Not stored, so this pair cannot be judged (see the warning above).") if n_panels >= 2 else ""
                out = [out[0], state if stored else None, *[gr.update(interactive=stored) for _ in vote_btns], status]
                for disp in range(n_panels):
                    r = upd.results[order[disp]]
                    hidden = bool(blind_v) and stored  # nothing to vote on: nothing to hide
                    info = ("*settings hidden until you vote*" if hidden else
                            f"`{labels[disp]}` · {r.n_tokens} tokens · {r.finish_reason}")
                    out += [r.text, token_html(r.trace, colour_v), info, gr.update(visible=not hidden)]
                yield out
        except UserError as exc:
            raise gr_error(exc) from None

    gen_event = gen_btn.click(run_pair, shared + panel_inputs, stream_outputs, api_visibility="private",
                              concurrency_id="generate", concurrency_limit=1)
    prompt_submit = prompt.submit(run_pair, shared + panel_inputs, stream_outputs, api_visibility="private",
                                  concurrency_id="generate", concurrency_limit=1)

    def run_if_live(live_v, *args):
        if not live_v or not str(args[1] or "").strip():
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

    # ------------------------------------------------------------------ judging
    def vote(verdict_display: str):
        def handler(request: gr.Request, state, annot, comm, saved, *obj_vs):
            try:
                if not state:
                    raise UserError("generate a pair first, and wait until both panels have finished")
                if state.get("voted"):
                    raise UserError("this pair is already judged; generate a new one")
                who = (request.username if request is not None and getattr(request, "username", None) else annot) or ""
                swapped = state["swapped"]
                per_obj = {o: _swap(v, swapped) for o, v in zip(names, obj_vs) if v and o in ctx.objectives}
                jid = ctx.judge(state["ids"], _swap(verdict_display, swapped), per_obj, annotator=who,
                                comment=comm, blind=state["blind"], swapped=swapped)
            except UserError as exc:
                raise gr_error(exc) from None
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

    # ------------------------------------------------------------------ presets
    def save_preset(name, panel_name, *values):
        try:
            spec = read_panels(values)[PANEL_NAMES.index(panel_name)]
            ctx.store.save_preset(name, spec.weights)
            choices = sorted(ctx.store.presets())
        except (UserError, ValueError, StorageError) as exc:
            raise gr_error(exc) from None
        gr.Info(f"Saved preset {name!r}")
        return gr.update(choices=choices, value=name.strip())

    preset_save.click(save_preset, [preset_name, preset_from, *panel_inputs], [preset_pick], api_visibility="private")

    def apply_preset(name, panel_name):
        try:
            weights = ctx.store.presets().get(name)
        except StorageError as exc:
            raise gr_error(exc) from None
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
    # ------------------------------------------------------------------ the loaded set's view
    def view() -> list:
        loaded = {o.name: o for o in ctx.config.objectives}
        out: list = [None, *[gr.update(interactive=False) for _ in vote_btns]]
        for _ in panels:
            for name in names:
                o = loaded.get(name)
                out.append(gr.update(visible=True, minimum=o.min_weight, maximum=o.max_weight, value=o.default_weight,
                                     info=o.description or None) if o else gr.update(visible=False))
        out += [gr.update(visible=name in loaded, value=None) for name in names]
        out.append(gr.update(choices=[COMBINED, *loaded], value=COMBINED))
        return out

    view_outputs = [pair_state, *vote_btns, *[s for p in panels for s in p["sliders"]], *obj_verdicts,
                    colour_by]
    return DecodingControls(beta, temperature, top_k, top_p, seed), View(view, view_outputs)
