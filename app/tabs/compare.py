"""Compare: one prompt, two to four panels with their own settings, streamed together; judging; presets.

``layout()`` builds the components, ``wire()`` attaches the handlers. The handlers below work on
plain values (``PairRequest`` in, ``PanelView``s out) and are tested without a browser; the small
adapters in ``wire`` only move values between them and the components.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Iterator

import gradio as gr

from ..render import COMBINED, token_html
from ..service import (METHOD_LABELS, METHODS, PAIR_CONCURRENCY, PANEL_NAMES, VERDICTS, AlreadyJudged, AppContext, Pair, PairUpdate,
                       Setting, UserError, method_named, parse_chat)
from ..service import requests
from .common import DecodingControls, LooseNumber, LooseSlider, View, refuse

VERDICT_BUTTONS = {"A is better": "A", "B is better": "B", "Tie": "tie", "Both bad": "both_bad"}
METHOD_CHOICES = list(METHOD_LABELS.values())  # every method of the registry (``genarm_core.decoding.methods``)


# ---------------------------------------------------------------------------------------- handlers

@dataclass
class PanelInput:
    method: str
    n: Any
    weights: dict[str, Any]  # objective -> raw value, loaded set's objectives only
    options: dict[str, Any] = field(default_factory=dict)  # the method's own parameters (e.g. a block size)


#: every method option by name (``Method.options``): each panel has a box for each, shown with its method
OPTIONS = {name: opt for m in METHODS.values() for name, opt in m.options.items()}


def panel_setting(ctx: AppContext, p: PanelInput, where: str) -> Setting:
    """A panel's setting, checked against the loaded set: only the options its method has are read."""
    try:
        own = method_named(p.method).options
    except KeyError:  # an unknown method: ``ctx.setting`` refuses it, naming the panel
        own = {}
    options = {name: int(requests.number(p.options.get(name), f"{where}: {name}", integer=True)) for name in own}
    return ctx.setting(p.method, p.weights, p.n, where=where, options=options)


@dataclass
class PairRequest:
    shown_set: str
    prompt: str
    chat: bool
    beta: Any
    temperature: Any
    top_k: Any
    top_p: Any
    max_new_tokens: Any
    seed: Any
    blind: bool
    colour_by: str
    panels: list[PanelInput]
    judge: str = ""  # the set's judge that scores each panel after the pair is stored ("" = off)


@dataclass
class PanelView:
    text: str
    tokens: str
    reveal: str
    controls_visible: bool


@dataclass
class PairView:
    """What the page shows after one step of a generation."""

    notice: str
    pair: Pair | None
    votable: bool
    status: str
    panels: list[PanelView] = field(default_factory=list)
    #: a streamed update after the first: only the texts changed (the page redraws nothing else)
    text_only: bool = False


def judge_line(pair: Pair, i: int) -> str:
    """Panel ``i``'s score by the pair's judge, as a line under its setting ("" when none was asked)."""
    if pair.judge_scores is None:
        return ""
    name, values = pair.judge_scores
    value = values[pair.order[i]]
    shown = "does not apply to this prompt" if value is None else f"**{value:.3g}**"
    return f"  \njudge `{name}`: {shown}"


def panel_views(pair: Pair, colour_by: str) -> list[PanelView]:
    """Each panel of a finished pair; in blind mode before the vote nothing tells the sides apart
    (a judge's scores included: they are shown with the settings, after the vote)."""
    hidden = pair.hidden()
    out = []
    for i in range(len(pair.order)):
        r = pair.panel_result(i)
        if hidden:
            reveal = "*setting hidden until you vote*"
        else:
            fwd = f"{r.forwards_per_token:.3g} model forward{'' if r.forwards_per_token == 1 else 's'}"
            reveal = (f"`{pair.panel_label(i)}` · {r.n_tokens} tokens · {r.finish_reason} · {fwd} per token · "
                      f"{r.seconds_per_token * 1e3:.0f} ms per token (the panels decode as one batch)"
                      + (" (revealed)" if pair.blind else "") + judge_line(pair, i))
        # The weight sliders at position i belong to panel i's request (``settings`` is in request order).
        out.append(PanelView(r.text, token_html(r.trace, colour_by, neutral=hidden), reveal,
                             not hidden and pair.settings[i].uses_weights))
    return out


def run_pair(ctx: AppContext, req: PairRequest) -> Iterator[PairView]:
    """Generate every panel; stream; end with a stored, votable pair (or a refusal that clears the old one)."""
    ctx.check_page(req.shown_set)
    settings = [panel_setting(ctx, p, f"panel {PANEL_NAMES[i]}") for i, p in enumerate(req.panels)]
    cfg = ctx.decoding(req.beta, req.temperature, req.top_k, req.top_p, req.max_new_tokens, req.seed)
    prompt = parse_chat(req.prompt or "") if req.chat else req.prompt
    update: PairUpdate
    streamed = 0
    for update in ctx.generate_pair(prompt, settings, cfg, blind=req.blind):
        notice = f"⚠️ {update.warning}" if update.warning else ""
        if not update.done:
            yield PairView(notice, None, False, "", [PanelView(t, "", "", not req.blind and s.uses_weights)
                                                      for t, s in zip(update.texts, settings)], text_only=streamed > 0)
            streamed += 1
            continue
        if update.pair is None:  # shown, not stored: nothing to vote on
            yield PairView(notice, None, False, "Not stored, so this pair cannot be judged (see the warning above).",
                           [PanelView(r.text, token_html(r.trace, req.colour_by), "", s.uses_weights)
                            for r, s in zip(update.results, settings)])
            return
        pair = update.pair
        status = "All panels finished: judge them below." if pair.votable else ""
        if req.judge:  # the buttons unlock once the scores are in, so no vote races them (slow judges are off by default)
            yield PairView(notice, pair, False, f"Scoring each panel with judge `{req.judge}`…",
                           panel_views(pair, req.colour_by))
            pair, warning = ctx.score_panels(pair, req.judge)
            notice = "  \n".join(f"⚠️ {w}" for w in (update.warning, warning) if w)
            if pair.hidden():
                status += f" Judge `{req.judge}`'s scores are shown with the settings, after your vote."
        yield PairView(notice, pair, pair.votable, status, panel_views(pair, req.colour_by))


def rescore(ctx: AppContext, pair: Pair | None, judge: str, colour_by: str) -> tuple[Pair | None, str, list[PanelView]]:
    """The page's pair scored by another judge (or its scores dropped: ``judge`` ""): (pair, notice, panels)."""
    if pair is None:
        return None, "", []
    if not judge:
        pair = replace(pair, judge_scores=None)
        return pair, "", panel_views(pair, colour_by)
    pair, warning = ctx.score_panels(pair, judge)
    return pair, f"⚠️ {warning}" if warning else "", panel_views(pair, colour_by)


def vote(ctx: AppContext, pair: Pair | None, verdict: str, per_objective: dict[str, str], annotator: str, comment: str,
         colour_by: str) -> tuple[Pair, str, list[PanelView]]:
    """Record a vote on the page's pair; returns the voted pair, the status line and the revealed panels."""
    try:
        stored = ctx.judge_pair(pair, verdict, per_objective, annotator, comment)
    except AlreadyJudged as exc:  # judged on another page: say so, and offer no buttons again
        pair = pair.voted_copy()
        return pair, f"Not recorded: {exc}", panel_views(pair, colour_by)
    pair = pair.voted_copy()
    who = f" by {stored.annotator}" if stored.annotator else ""
    return pair, f"Recorded judgment #{stored.judgment_id}{who}.", panel_views(pair, colour_by)


REMEMBER_ANNOTATOR_JS = "(typed, saved) => (typed && typed.trim()) ? typed : (saved || '')"


def remembered_annotator(typed: str, saved: str, username: str | None) -> Any:
    """The annotator box on page load: the logged-in user, else what this browser remembered —
    unless something was typed already (the load can finish after a person started typing)."""
    if username:
        return username
    if (typed or "").strip():
        return gr.skip()
    return saved or ""


def apply_preset(ctx: AppContext, name: str) -> dict[str, float]:
    weights = ctx.records.presets().get(name)
    if weights is None:
        raise UserError("preset: choose a saved preset first")
    return weights


# ---------------------------------------------------------------------------------------- layout

@dataclass
class Panel:
    method: Any
    n: Any
    options: dict[str, Any]  # option name -> its box (every method's options; those of the panel's method shown)
    sliders_box: Any
    sliders: dict[str, Any]  # objective -> slider (every objective of every set)
    reveal: Any
    text: Any
    tokens: Any


@dataclass
class CompareTab:
    prompt: Any
    generate: Any
    stop: Any
    blind: Any
    live: Any
    chat: Any
    decoding: DecodingControls
    max_new: Any
    colour_by: Any
    judge: Any
    notice: Any
    panels: list[Panel]
    votes: list[Any]
    objective_verdicts: dict[str, Any]
    annotator: Any
    comment: Any
    status: Any
    pair: Any
    saved_annotator: Any
    preset_name: Any
    preset_from: Any
    preset_save: Any
    preset_pick: Any
    preset_to: Any
    preset_apply: Any


def layout(ctx: AppContext, auth_enabled: bool) -> CompareTab:
    """The Compare tab's components, inside the current ``gr.Tab``. There is one slider per
    objective of every model set the server offers; those of the loaded set are visible."""
    all_objectives = ctx.sets.objectives_of_all_sets()
    current = set(ctx.objectives)
    defaults = ctx.config.defaults
    prompt = gr.Textbox(label="Prompt", lines=3, placeholder="Ask something…", elem_id="prompt")
    with gr.Row(elem_classes=["genarm-toolbar"]):
        generate = gr.Button("Generate", variant="primary", elem_id="generate-btn", scale=0, min_width=140)
        stop = gr.Button("Stop", variant="stop", elem_id="stop-btn", scale=0, min_width=100)
        blind = gr.Checkbox(label="Blind mode (hide settings, shuffle sides)", value=False, elem_id="blind")
        live = gr.Checkbox(label="Regenerate when a slider is released", value=True, elem_id="live")
        chat = gr.Checkbox(label="Multi-turn chat (lines 'User: …' / 'Assistant: …')", elem_id="chat",
                           value=ctx.config.base.chat_template)
    with gr.Accordion("Decoding settings (shared by all panels)", open=False):
        with gr.Row(elem_classes=["genarm-decoding"]):
            beta = LooseNumber(value=defaults.beta, label="β (alignment strength)", minimum=0.01, min_width=150)
            temperature = LooseSlider(0, 2, value=defaults.temperature, step=0.05, label="temperature (0 = greedy)",
                                      min_width=180)
            top_k = LooseNumber(value=defaults.top_k, label="top-k (0 = off)", precision=0, minimum=0, min_width=130)
            top_p = LooseSlider(0.05, 1, value=defaults.top_p, step=0.05, label="top-p", min_width=160)
            max_new = LooseSlider(1, ctx.config.max_new_tokens_cap,
                                  value=min(defaults.max_new_tokens, ctx.config.max_new_tokens_cap), step=1,
                                  label="max new tokens", min_width=180, elem_id="max-new")
            seed = LooseNumber(value=defaults.seed, label="seed", precision=0, min_width=130, elem_id="seed")
        colour_by = gr.Radio([COMBINED, *ctx.objectives], value=COMBINED, label="Colour tokens by")
    notice = gr.Markdown(elem_id="notice")
    panels: list[Panel] = []
    with gr.Row(equal_height=False):
        for i in range(ctx.panels):
            p = PANEL_NAMES[i]
            base_only = i == 1
            with gr.Column(elem_classes=["genarm-panel"]):
                gr.Markdown(f"### {p}")
                method = gr.Radio(METHOD_CHOICES, value=METHOD_LABELS["base" if base_only else "genarm"],
                                  label=f"Method {p}", elem_id=f"method-{p}")
                n = LooseSlider(1, 16, value=4, step=1, label="N (" + "; ".join(
                    f"{m.label}: {m.n_meaning}" for m in METHODS.values() if m.n_meaning) + ")", visible=False,
                                elem_id=f"n-{p}")
                options = {name: LooseNumber(value=opt.default, precision=0, minimum=opt.low, maximum=opt.high,
                                             label=f"{name} ({opt.help})", visible=False, elem_id=f"opt-{p}-{name}")
                           for name, opt in OPTIONS.items()}
                with gr.Group(visible=not base_only, elem_id=f"sliders-{p}") as box:
                    sliders = {o.name: LooseSlider(o.min_weight, o.max_weight, value=o.default_weight, step=0.1,
                                                   label=f"{o.name} weight", info=o.description or None,
                                                   elem_id=f"w-{p}-{o.name}", visible=o.name in current)
                               for o in all_objectives.values()}
                reveal = gr.Markdown(elem_id=f"reveal-{p}")
                text = gr.Textbox(label=f"Completion {p}", lines=8, interactive=False, elem_id=f"out-{p}")
                tokens = gr.HTML(elem_id=f"tokens-{p}")
            panels.append(Panel(method, n, options, box, sliders, reveal, text, tokens))
    gr.Markdown("#### Judge")
    with gr.Row():
        votes = [gr.Button(label, interactive=False, elem_id=f"vote-{v}") for label, v in VERDICT_BUTTONS.items()]
    with gr.Accordion("Per-objective verdicts (optional)", open=False):
        objective_verdicts = {o: gr.Radio(list(VERDICTS), value=None, label=f"More {o}:", elem_id=f"verdict-{o}",
                                          visible=o in current) for o in all_objectives}
    with gr.Row():
        annotator = gr.Textbox(label="Annotator", placeholder="your name (remembered in this browser)",
                               elem_id="annotator", interactive=not auth_enabled)
        comment = gr.Textbox(label="Comment", elem_id="comment")
        judge = gr.Dropdown(judge_choices(ctx), value=ctx.default_panel_judge() or "",
                            label="Automatic judge per panel (a judge of the set; shown with each setting)",
                            elem_id="panel-judge")
    status = gr.Markdown(elem_id="judge-status")
    with gr.Accordion("Presets (named weight settings)", open=False):
        with gr.Row():
            preset_name = gr.Textbox(label="Name", elem_id="preset-name")
            preset_from = gr.Radio(list(PANEL_NAMES[:ctx.panels]), value="A", label="From panel")
            preset_save = gr.Button("Save preset")
        with gr.Row():
            preset_pick = gr.Dropdown(choices=sorted(_presets(ctx)), label="Preset", allow_custom_value=False)
            preset_to = gr.Radio(list(PANEL_NAMES[:ctx.panels]), value="A", label="Apply to panel")
            preset_apply = gr.Button("Apply")
    return CompareTab(prompt, generate, stop, blind, live, chat, DecodingControls(beta, temperature, top_k, top_p, seed),
                      max_new, colour_by, judge, notice, panels, votes, objective_verdicts, annotator, comment, status,
                      gr.State(None), gr.BrowserState("", storage_key="genarm-annotator"), preset_name, preset_from,
                      preset_save, preset_pick, preset_to, preset_apply)


def judge_choices(ctx: AppContext) -> list[tuple[str, str]]:
    """The per-panel judge's choices: off, then the loaded set's judges that score one completion."""
    return [("off", ""), *((name, name) for name in ctx.panel_judges())]


def _presets(ctx: AppContext) -> dict[str, dict[str, float]]:
    try:
        return ctx.records.presets()
    except UserError:
        return {}


# ---------------------------------------------------------------------------------------- wiring

def wire(demo: gr.Blocks, ctx: AppContext, t: CompareTab, shown_set: gr.State) -> View:
    """Attach every handler of the tab, one feature at a time; handlers return their updates keyed by
    component (what is not named stays as it is)."""
    inputs = CompareInputs(t, shown_set, ctx)
    _wire_generation(ctx, t, inputs)
    _wire_controls(ctx, t)
    _wire_judging(demo, ctx, t)
    _wire_presets(ctx, t, inputs)
    return _loaded_set_view(ctx, t)


class CompareInputs:
    """The components a generation reads, and how their values become a ``PairRequest``."""

    def __init__(self, t: CompareTab, shown_set: gr.State, ctx: AppContext):
        d = t.decoding
        self.t, self.ctx = t, ctx
        self.shared = [shown_set, t.prompt, t.chat, d.beta, d.temperature, d.top_k, d.top_p, t.max_new, d.seed, t.blind,
                       t.colour_by, t.judge]
        self.panels = [c for p in t.panels for c in (p.method, p.n, *p.options.values(), *p.sliders.values())]

    def read_panels(self, values: list) -> list[PanelInput]:
        """``self.panels`` values -> one ``PanelInput`` a panel (weights of the loaded set's objectives)."""
        panels, loaded = [], set(self.ctx.objectives)
        for p in self.t.panels:
            width = 2 + len(p.options) + len(p.sliders)
            method, n, *rest = values[:width]
            values = values[width:]
            opts, ws = rest[:len(p.options)], rest[len(p.options):]
            panels.append(PanelInput(method, n, {o: w for o, w in zip(p.sliders, ws) if o in loaded},
                                     dict(zip(p.options, opts))))
        return panels

    def request(self, values: list) -> PairRequest:
        shown, prompt, chat, beta, temp, top_k, top_p, max_new, seed, blind, colour, judge = values[:len(self.shared)]
        return PairRequest(shown, prompt, bool(chat), beta, temp, top_k, top_p, max_new, seed, bool(blind), colour,
                           self.read_panels(values[len(self.shared):]), judge or "")


def _votes(t: CompareTab, on: bool) -> dict:
    return {b: gr.update(interactive=on) for b in t.votes}


def _panels(t: CompareTab, views: list[PanelView], text_only: bool = False) -> dict:
    """A ``PanelView`` each into its panel's components (``text_only``: a streamed update, the texts alone)."""
    out: dict = {}
    for p, v in zip(t.panels, views):
        out[p.text] = v.text
        if not text_only:
            out |= {p.tokens: v.tokens, p.reveal: v.reveal, p.sliders_box: gr.update(visible=v.controls_visible)}
    return out


def _wire_generation(ctx: AppContext, t: CompareTab, inputs: CompareInputs) -> None:
    """Generate (button, Enter, a released slider when live), streamed; Stop."""
    outputs = [t.notice, t.pair, *t.votes, t.status, *[c for p in t.panels for c in (p.text, p.tokens, p.reveal,
                                                                                    p.sliders_box)]]

    def show(view: PairView) -> dict:
        if view.text_only:  # the page redraws nothing but the texts
            return _panels(t, view.panels, text_only=True)
        return {t.notice: view.notice, t.pair: view.pair, t.status: view.status, **_votes(t, view.votable),
                **_panels(t, view.panels)}

    def on_generate(*values):
        try:
            for view in run_pair(ctx, inputs.request(list(values))):
                yield show(view)
        except UserError as exc:  # no old pair stays votable, and the status says why
            yield {t.notice: f"⚠️ {exc}", t.pair: None, t.status: f"Nothing generated: {exc}", **_votes(t, False)}
            raise refuse(exc) from None

    # "minimal": a timer beside the streaming texts. Gradio's full progress animates an overlay on every
    # output while the pair decodes, which cost the browser 3-4 CPU-seconds a pair on a 2-core machine,
    # taken from decoding (``benchmarks.compare_page``; README, Benchmarks).
    # Several pages at once: their pairs are decoded together (``PairBatcher``), so they need not queue here.
    events = dict(api_visibility="private", concurrency_id="pairs", concurrency_limit=PAIR_CONCURRENCY,
                  show_progress="minimal")
    read = inputs.shared + inputs.panels
    gen = t.generate.click(on_generate, read, outputs, **events)
    sub = t.prompt.submit(on_generate, read, outputs, **events)

    def on_release(live, *values):
        if not live or not str(values[1] or "").strip():
            yield {}
            return
        yield from on_generate(*values)

    releases = [s.release(on_release, [t.live, *read], outputs, **events) for p in t.panels for s in p.sliders.values()]
    t.stop.click(None, None, None, cancels=[gen, sub, *releases], api_visibility="private")


def _wire_controls(ctx: AppContext, t: CompareTab) -> None:
    """Each panel shows only the controls its method uses; the token colouring follows its radio."""
    for p in t.panels:
        def on_method(label, p=p):
            m = method_named(label)
            return {p.sliders_box: gr.update(visible=m.uses_weights), p.n: gr.update(visible=m.n_meaning is not None),
                    **{box: gr.update(visible=name in m.options) for name, box in p.options.items()}}

        p.method.change(on_method, p.method, [p.sliders_box, p.n, *p.options.values()], api_visibility="private")

    def recolour(pair, colour):
        if pair is None:
            return {}
        return {p.tokens: v.tokens for p, v in zip(t.panels, panel_views(pair, colour))}

    t.colour_by.change(recolour, [t.pair, t.colour_by], [p.tokens for p in t.panels], api_visibility="private")


def _wire_judging(demo: gr.Blocks, ctx: AppContext, t: CompareTab) -> None:
    """The per-panel judge, the vote buttons, the remembered annotator."""
    reveals = [p.reveal for p in t.panels]

    def on_judge(pair, judge, colour):
        """Score the shown pair with another judge; the vote buttons are locked meanwhile (a vote
        cast during the scoring would be overwritten by the scored, unvoted pair)."""
        if pair is None:
            yield {}
            return
        yield _votes(t, False)
        votable = pair.votable
        try:
            pair, notice, views = rescore(ctx, pair, judge or "", colour)
        except UserError as exc:
            yield _votes(t, votable)
            raise refuse(exc) from None
        yield {t.pair: pair, t.notice: notice, **{p.reveal: v.reveal for p, v in zip(t.panels, views)},
               **_votes(t, votable)}

    t.judge.input(on_judge, [t.pair, t.judge, t.colour_by], [t.pair, t.notice, *reveals, *t.votes],
                  api_visibility="private", concurrency_id="generate", concurrency_limit=1)

    names = list(t.objective_verdicts)
    vote_outputs = [t.pair, t.status, t.saved_annotator, *t.votes, *[c for p in t.panels for c in (p.reveal, p.tokens,
                                                                                                    p.sliders_box)],
                    *t.objective_verdicts.values(), t.comment]

    def on_vote(verdict: str):
        def handler(request: gr.Request, pair, annotator, comment, saved, colour, *per):
            who = (getattr(request, "username", None) if request is not None else None) or annotator or ""
            try:
                pair, status, views = vote(ctx, pair, verdict, dict(zip(names, per)), who, comment, colour)
            except UserError as exc:
                raise refuse(exc) from None
            revealed = {c: u for c, u in _panels(t, views).items() if c not in {p.text for p in t.panels}}
            return {t.pair: pair, t.status: status, t.saved_annotator: who or saved, **_votes(t, False), **revealed,
                    **{box: None for box in t.objective_verdicts.values()}, t.comment: ""}
        return handler

    for btn, verdict in zip(t.votes, VERDICT_BUTTONS.values()):
        btn.click(on_vote(verdict), [t.pair, t.annotator, t.comment, t.saved_annotator, t.colour_by,
                                     *t.objective_verdicts.values()], vote_outputs, api_visibility="private")

    def on_load(typed, saved, request: gr.Request):
        return remembered_annotator(typed, saved, getattr(request, "username", None) if request is not None else None)

    if t.annotator.interactive is False:  # a login names the annotator: the server knows it, nobody can type
        demo.load(on_load, [t.annotator, t.saved_annotator], [t.annotator], api_visibility="private")
    else:
        # The remembered name goes into the box in the browser, at once: a server round trip reads the
        # box as it was when the page loaded and could overwrite what a person typed meanwhile.
        demo.load(None, [t.annotator, t.saved_annotator], [t.annotator], js=REMEMBER_ANNOTATOR_JS,
                  api_visibility="private")


def _wire_presets(ctx: AppContext, t: CompareTab, inputs: CompareInputs) -> None:
    """Save a panel's weights under a name; apply a saved one to a panel (which becomes GenARM)."""
    def on_save_preset(name, panel_name, *values):
        try:
            p = inputs.read_panels(list(values))[PANEL_NAMES.index(panel_name)]
            setting = panel_setting(ctx, p, f"panel {panel_name}")
            ctx.records.save_preset(name, setting)
            choices = sorted(ctx.records.presets())
        except UserError as exc:
            raise refuse(exc) from None
        gr.Info(f"Saved preset {name.strip()!r}")
        return gr.update(choices=choices, value=name.strip())

    t.preset_save.click(on_save_preset, [t.preset_name, t.preset_from, *inputs.panels], [t.preset_pick],
                        api_visibility="private")

    def on_apply_preset(name, panel_name):
        try:
            weights = apply_preset(ctx, name)
        except UserError as exc:
            raise refuse(exc) from None
        p = t.panels[PANEL_NAMES.index(panel_name)]
        return {p.method: gr.update(value=METHOD_LABELS["genarm"]),
                **{slider: gr.update(value=weights.get(o, 0.0)) for o, slider in p.sliders.items()}}

    t.preset_apply.click(on_apply_preset, [t.preset_pick, t.preset_to],
                         [c for p in t.panels for c in (*p.sliders.values(), p.method)], api_visibility="private")


def _loaded_set_view(ctx: AppContext, t: CompareTab) -> View:
    """What the tab shows of the loaded set (on page load and after a switch): its sliders, its verdicts, its judges."""
    outputs = [t.pair, *t.votes, *[s for p in t.panels for s in p.sliders.values()], *t.objective_verdicts.values(),
               t.colour_by, t.judge]

    def view() -> list:
        loaded = {o.name: o for o in ctx.config.objectives}
        out: dict = {t.pair: None, **_votes(t, False)}
        for p in t.panels:
            for name, slider in p.sliders.items():
                o = loaded.get(name)
                out[slider] = (gr.update(visible=True, minimum=o.min_weight, maximum=o.max_weight, value=o.default_weight,
                                         info=o.description or None) if o else gr.update(visible=False))
        out |= {box: gr.update(visible=name in loaded, value=None) for name, box in t.objective_verdicts.items()}
        out[t.colour_by] = gr.update(choices=[COMBINED, *loaded], value=COMBINED)
        out[t.judge] = gr.update(choices=judge_choices(ctx), value=ctx.default_panel_judge() or "")
        return [out[c] for c in outputs]  # ``View`` is read by position (app.ui chains every tab's views)

    return View(view, outputs)
