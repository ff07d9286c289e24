"""The Gradio dashboard: the page frame; each tab lives in ``app.tabs`` (``layout()`` then ``wire()``).

Tabs: Compare (panels side by side, token view, judging, presets), Annotate (a study's pairs, blind,
with overlap, guidelines, skip and keys), Judgments (table, win-rate
charts, exports), Studies (settings x prompts judged by independent judges, the frontier), Models (what is loaded), plus the
API-only endpoints. The work itself is in ``app.service``; per-user data lives in ``gr.State`` /
``gr.BrowserState``; the ``AppContext`` is passed in (no globals).
"""

from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from typing import Any  # noqa: E402

import gradio as gr  # noqa: E402

from .guard import guard  # noqa: E402
from .service import AppContext  # noqa: E402
from .tabs import annotate, api, compare, judgments, models, studies  # noqa: E402

CSS = """
.genarm-tokens { font-family: ui-monospace, monospace; white-space: pre-wrap; line-height: 1.9; font-size: 0.92em; }
.genarm-tok { border-radius: 3px; padding: 1px 0; position: relative; cursor: default; }
.genarm-neutral { background: rgba(107, 114, 128, 0.12); }
.genarm-end { color: #9ca3af; font-size: 0.8em; padding-left: 2px; }
.genarm-tip { display: none; position: absolute; left: 0; top: 1.9em; z-index: 50; min-width: 16em; padding: 6px 8px;
  background: #111827; color: #f9fafb; border-radius: 6px; font-size: 0.85em; line-height: 1.4; white-space: nowrap;
  box-shadow: 0 4px 14px rgba(0, 0, 0, 0.25); }
.genarm-tip-row { display: block; }
.genarm-tok:hover .genarm-tip, .genarm-tok:focus .genarm-tip { display: block; }
.genarm-legend { font-size: 0.8em; opacity: 0.8; margin-top: 4px; }
.genarm-empty { opacity: 0.6; font-style: italic; }
/* unticked checkboxes keep a visible box */
input[type=checkbox] { border: 1.5px solid #6b7280 !important; }
/* decoding settings: labels on one line */
.genarm-decoding label span, .genarm-decoding .head { white-space: nowrap; }
#judgments-table td { white-space: nowrap; }
"""


#: The largest upload the server accepts (a prompt file).
MAX_UPLOAD = "20mb"


def _theme() -> gr.themes.Base:
    # System fonts only: the default theme fetches web fonts, and the app must work offline.
    return gr.themes.Soft(font=["ui-sans-serif", "system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"])


def _header(ctx: AppContext) -> str:
    return (f"## GenARM: test-time alignment across objectives\nModel set **{ctx.config.name}** · "
            f"objectives: {', '.join(ctx.objectives) or 'none'} · move a slider per objective, compare, judge.")


def build_ui(ctx: AppContext, auth_enabled: bool = False) -> gr.Blocks:
    """Lay out the dashboard for the model sets ``ctx`` offers and wire every event."""
    with gr.Blocks(title="GenARM dashboard", analytics_enabled=False, delete_cache=(3600, 3600)) as demo:
        header = gr.Markdown(_header(ctx), elem_id="header")
        shown_set = gr.State(ctx.current)  # the model set this page was laid out for / last shown
        with gr.Tabs(elem_id="tabs") as tabs:
            with gr.Tab("Compare", id="compare") as compare_page:
                compare_tab = compare.layout(ctx, auth_enabled)
            with gr.Tab("Annotate", id="annotate") as annotate_page:
                annotate_tab = annotate.layout(ctx, auth_enabled)
            with gr.Tab("Judgments", id="judgments") as judgments_tab:
                judgments_parts = judgments.layout(ctx)
            with gr.Tab("Studies", id="studies") as studies_page:
                studies_tab = studies.layout(ctx)
            with gr.Tab("Models", id="models") as models_page:
                models_tab = models.layout(ctx)
        compare_view = compare.wire(demo, ctx, compare_tab, shown_set)
        judgments.wire(ctx, judgments_parts, judgments_tab)
        annotate.wire(ctx, annotate_tab, annotate_page)
        studies_view = studies.wire(ctx, studies_tab, compare_tab.decoding, studies_page)
        switch, models_view = models.wire(ctx, models_tab)
        api.register(ctx)

        # Every tab shows the loaded model set: after a switch in the Models tab, and on page load
        # when the server switched since the page was built (nothing changes otherwise).
        outputs = [shown_set, header, *compare_view.outputs, *studies_view.outputs, *models_view.outputs]

        def show_loaded(shown: str) -> list:
            if shown == ctx.current:
                return [gr.skip()] * len(outputs)
            return [ctx.current, _header(ctx), *compare_view.fn(), *studies_view.fn(), *models_view.fn()]

        demo.load(show_loaded, [shown_set], outputs, api_visibility="private")
        switch.success(show_loaded, [shown_set], outputs, api_visibility="private")

        def show_role(request: gr.Request):
            """A login sees the tabs its role may use (the server checks every action anyway: ``guard``)."""
            who = getattr(request, "username", None) if request is not None else None
            researcher = ctx.access.may(who, "researcher")
            return (gr.update(visible=researcher), gr.update(visible=researcher),
                    gr.update(visible=ctx.access.may(who, "admin")),
                    gr.skip() if researcher else gr.update(selected="annotate"))  # an annotator starts where they work

        if auth_enabled:
            demo.load(show_role, None, [compare_page, studies_page, models_page, tabs], api_visibility="private")
        guard(demo, ctx.access)  # every handler registered above checks the caller's role
    return demo


def launch_kwargs() -> dict[str, Any]:
    """What ``launch()`` needs besides host and port (Gradio 6 takes theme, CSS and page JS there)."""
    js = f"() => {{ ({studies.CLICK_JS.strip()})(); ({annotate.HOTKEYS_JS.strip()})(); }}"
    # Uploads are prompt files: a few MB at most (Gradio refuses bigger ones before they reach a handler).
    return {"theme": _theme(), "css": CSS, "js": js, "max_file_size": MAX_UPLOAD}


__all__ = ["build_ui", "launch_kwargs"]
