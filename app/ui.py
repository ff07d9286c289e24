"""The Gradio dashboard: the page frame; each tab lives in ``app.tabs`` (layout and events together).

Tabs: Compare (panels side by side, token view, judging, presets), Judgments (table, win-rate
charts, exports), Sweep (weight grid, trade-off frontier), Models (what is loaded), plus the
API-only endpoints. The work itself is in ``app.service``; per-user data lives in ``gr.State`` /
``gr.BrowserState``; the ``AppContext`` is passed in (no globals).
"""

from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from typing import Any  # noqa: E402

import gradio as gr  # noqa: E402

from .service import AppContext  # noqa: E402
from .tabs import api, compare, judgments, models, sweep  # noqa: E402

CSS = """
.genarm-tokens { font-family: ui-monospace, monospace; white-space: pre-wrap; line-height: 1.9; font-size: 0.92em; }
.genarm-tok { border-radius: 3px; padding: 1px 0; }
.genarm-legend { font-size: 0.8em; opacity: 0.8; margin-top: 4px; }
"""


def _theme() -> gr.themes.Base:
    # System fonts only: the default theme fetches web fonts, and the app must work offline.
    return gr.themes.Soft(font=["ui-sans-serif", "system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"])


def build_ui(ctx: AppContext, auth_enabled: bool = False) -> gr.Blocks:
    """Lay out the dashboard for ``ctx``'s model set and wire every event."""
    names = ctx.objectives
    with gr.Blocks(title="GenARM dashboard", analytics_enabled=False) as demo:
        gr.Markdown(f"## GenARM: test-time alignment across objectives\nModel set **{ctx.config.name}** · "
                    f"objectives: {', '.join(names) or 'none'} · move a slider per objective, compare, judge.")
        with gr.Tabs():
            with gr.Tab("Compare", id="compare"):
                decoding = compare.build(demo, ctx, auth_enabled)
            with gr.Tab("Judgments", id="judgments") as judgments_tab:
                judgments.build(ctx, judgments_tab)
            with gr.Tab("Sweep", id="sweep"):
                sweep.build(ctx, decoding)
            with gr.Tab("Models", id="models"):
                models.build(ctx)
        api.register(ctx)
    return demo


def launch_kwargs() -> dict[str, Any]:
    """What ``launch()`` needs besides host and port (Gradio 6 takes theme, CSS and page JS there)."""
    return {"theme": _theme(), "css": CSS, "js": sweep.CLICK_JS}


__all__ = ["build_ui", "launch_kwargs"]
