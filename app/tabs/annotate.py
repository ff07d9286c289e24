"""Annotate: a study's pairs, blind, one after another, until each has its overlap of annotators.

Keys (when the cursor is not in a text box): 1 A better, 2 B better, 3 tie, 4 both bad, S skip,
N next. The study's guidelines (or the model set's) are shown above the buttons.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr
import pandas as pd

from ..service import AppContext, UserError
from ..service.queue import Queue, QueueItem
from .common import refuse
from .studies import study_choices

BUTTONS = {"1 · A better": "A", "2 · B better": "B", "3 · tie": "tie", "4 · both bad": "both_bad"}
KEYS = {"1": "queue-A", "2": "queue-B", "3": "queue-tie", "4": "queue-both_bad", "s": "queue-skip", "n": "queue-next"}

# Keyboard shortcuts: a key press outside text fields clicks the button with that id (if shown and enabled).
HOTKEYS_JS = """
() => {
  const keys = %s;
  document.addEventListener('keydown', (ev) => {
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    const t = ev.target;
    if (t && (t.tagName === 'TEXTAREA' || t.tagName === 'INPUT' || t.isContentEditable)) return;
    const id = keys[ev.key.toLowerCase()];
    const tab = document.querySelector('#queue-panel');
    if (!id || !tab || tab.offsetParent === null) return;
    const btn = document.getElementById(id);
    if (btn && !btn.disabled) { ev.preventDefault(); btn.click(); }
  });
}
""" % KEYS


def guidelines(ctx: AppContext, study_id: Any) -> str:
    """The study's guidelines, else the model set's, else a default."""
    text = ""
    if study_id is not None:
        study = ctx.store.study(int(study_id))
        text = ((study or {}).get("config") or {}).get("guidelines") or ""
    text = text or ctx.config.guidelines or ""
    return text or ("Read the request and both responses. Choose the response that is more helpful **and** harmless; "
                    "*tie* when they are equally good, *both bad* when neither is acceptable. Skip what you cannot judge.")


def progress_table(ctx: AppContext, only: str | None = None) -> pd.DataFrame:
    """Per study: pairs, judged / needed, complete pairs, skips, annotators (what an admin sees). With
    ``only`` (an annotator without the right to see the others'): that annotator's own counts."""
    queue = Queue(ctx.records)
    rows = []
    for s in ctx.studies():
        p = queue.progress(s["id"])
        if not p["pairs"]:
            continue
        if only is not None:
            mine = p["annotators"].get(only, {"judged": 0, "skipped": 0})
            rows.append({"study": f"#{s['id']} {s['name']}", "pairs": p["pairs"], "judged by you": mine["judged"],
                         "skipped by you": mine["skipped"]})
            continue
        rows.append({"study": f"#{s['id']} {s['name']}", "pairs": p["pairs"], "judged / needed": f"{p['judged']} / {p['needed']}",
                     "pairs complete": p["complete"], "skipped": p["skipped"],
                     "annotators": ", ".join(f"{k} ({v['judged']})" for k, v in p["annotators"].items())})
    columns = (["study", "pairs", "judged by you", "skipped by you"] if only is not None else
               ["study", "pairs", "judged / needed", "pairs complete", "skipped", "annotators"])
    return pd.DataFrame(rows, columns=columns)


@dataclass
class AnnotateTab:
    study: Any
    overlap: Any
    annotator: Any
    start: Any
    guide: Any
    prompt: Any
    left: Any
    right: Any
    buttons: list
    skip: Any
    comment: Any
    status: Any
    progress: Any
    item: Any


def layout(ctx: AppContext, auth_enabled: bool = False) -> AnnotateTab:
    with gr.Column(elem_id="queue-panel"):
        with gr.Row():
            study = gr.Dropdown(choices=study_choices(ctx), value=None, label="Study to annotate", elem_id="queue-study", scale=3)
            overlap = gr.Number(value=None, precision=0, label="annotators per pair (set by the study)",
                                interactive=False, elem_id="queue-overlap", scale=1)
            annotator = gr.Textbox(label="Annotator" + (" (your login)" if auth_enabled else ""), elem_id="queue-annotator",
                                   interactive=not auth_enabled, scale=1)
            start = gr.Button("N · Next pair", variant="primary", elem_id="queue-next", scale=0, min_width=150)
        with gr.Accordion("Guidelines", open=True):
            guide = gr.Markdown(guidelines(ctx, None), elem_id="queue-guidelines")
        # Plain text: a study's prompt is data, never rendered (an image link in Markdown would be
        # fetched by every annotator's browser).
        prompt = gr.Textbox(label="Request", lines=2, interactive=False, elem_id="queue-prompt",
                            placeholder="Pick a study and press Next pair (or N).")
        with gr.Row(equal_height=True):
            left = gr.Textbox(label="Response A", lines=8, interactive=False, elem_id="queue-left")
            right = gr.Textbox(label="Response B", lines=8, interactive=False, elem_id="queue-right")
        with gr.Row():
            buttons = [gr.Button(label, elem_id=f"queue-{v}", interactive=False, min_width=110) for label, v in BUTTONS.items()]
            skip = gr.Button("S · skip", elem_id="queue-skip", interactive=False, min_width=110)
        comment = gr.Textbox(label="Comment (optional)", lines=1, elem_id="queue-comment")
        status = gr.Markdown(elem_id="queue-status")
        with gr.Accordion("Progress per study (judged / needed; with logins, an admin's view: others see their own)",
                          open=False):
            progress = gr.Dataframe(interactive=False, elem_id="queue-progress")
    return AnnotateTab(study, overlap, annotator, start, guide, prompt, left, right, buttons, skip, comment, status, progress,
                       gr.State(None))


def wire(ctx: AppContext, t: AnnotateTab, page: Any = None) -> None:
    queue = Queue(ctx.records)
    shown = [t.item, t.prompt, t.left, t.right, *t.buttons, t.skip, t.status, t.guide, t.progress, t.annotator]

    def serve(study_id, annotator, request: gr.Request, note: str = "") -> list:
        username = getattr(request, "username", None) if request is not None else None
        if study_id is None:
            raise refuse(UserError("study: pick a study to annotate"))
        try:
            who = ctx.access.annotator(username, annotator)
            n = queue.overlap(int(study_id))
            item = queue.next(int(study_id), who)
            table = progress_table(ctx, ctx.access.own(username))
        except UserError as exc:
            raise refuse(exc) from None
        guide = guidelines(ctx, study_id)
        if item is None:
            off = [gr.update(interactive=False)] * (len(t.buttons) + 1)
            return [None, "", "", "", *off, f"{note}Nothing left for you in this study: every pair has {n} annotators "
                                             "or was judged or skipped by you.", guide, table, who]
        on = [gr.update(interactive=True)] * (len(t.buttons) + 1)
        return [item, item.prompt, item.left, item.right, *on,
                f"{note}Settings hidden, sides shuffled.", guide,
                table, who]

    def on_next(study_id, annotator, request: gr.Request):
        return serve(study_id, annotator, request)

    def on_vote(verdict: str):
        def handler(item: QueueItem | None, comment, study_id, annotator, request: gr.Request):
            if item is None:
                raise refuse(UserError("no pair to judge: press Next pair"))
            try:
                jid = queue.vote(item, verdict, comment or "")
            except UserError as exc:
                raise refuse(exc) from None
            return serve(study_id, annotator, request, note=f"Recorded judgment #{jid}. ") + [""]
        return handler

    def on_skip(item: QueueItem | None, comment, study_id, annotator, request: gr.Request):
        if item is None:
            raise refuse(UserError("no pair to skip: press Next pair"))
        try:
            queue.skip(item, comment or "")
        except UserError as exc:
            raise refuse(exc) from None
        return serve(study_id, annotator, request, note="Skipped (not a verdict). ") + [""]

    inputs = [t.study, t.annotator]
    t.start.click(on_next, inputs, shown, api_visibility="private")
    for btn, verdict in zip(t.buttons, BUTTONS.values()):
        btn.click(on_vote(verdict), [t.item, t.comment, *inputs], [*shown, t.comment], api_visibility="private")
    t.skip.click(on_skip, [t.item, t.comment, *inputs], [*shown, t.comment], api_visibility="private")
    def on_study(sid):
        return guidelines(ctx, sid), (None if sid is None else queue.overlap(int(sid)))

    t.study.change(on_study, [t.study], [t.guide, t.overlap], api_visibility="private")
    if page is not None:
        page.select(lambda: gr.update(choices=study_choices(ctx)), None, [t.study], api_visibility="private")
