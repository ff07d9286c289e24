"""Pure presentation helpers: the token-level reward view (HTML) and plot builders (plotly).

Everything user-supplied is HTML-escaped here; plot builders are plain functions from a
DataFrame to a Figure.
"""

from __future__ import annotations

import html
from typing import Any, Sequence

import pandas as pd

COMBINED = "combined shift"


def _colour(value: float, scale: float) -> str:
    """Green for tokens the objectives pushed up, red for pushed down; alpha by size."""
    a = max(0.0, min(1.0, abs(value) / scale)) * 0.85
    rgb = "22,163,74" if value >= 0 else "220,38,38"
    return f"rgba({rgb},{a:.2f})"


def token_html(trace: Sequence[dict[str, Any]] | None, colour_by: str = COMBINED, scale: float = 3.0) -> str:
    """Each generated token as a span coloured by how much the objectives changed its probability.

    ``colour_by`` = "combined shift": log π̃(y_t) − log π_base(y_t); or an objective name:
    log π_r(y_t) − log π_base(y_t) (what that objective alone thinks of the token, relative to
    the base). Hovering a token shows every number.
    """
    if not trace:
        return "<div class='genarm-tokens genarm-empty'>No token trace yet.</div>"
    spans = []
    for step in trace:
        base = step["base_logprob"]
        if colour_by == COMBINED:
            value = step.get("combined_logprob", base) - base
        else:
            value = step["arm_logprobs"].get(colour_by, base) - base
        tip = [f"token {step['id']}: {step['text']!r}", f"shift (combined − base): {step.get('combined_logprob', base) - base:+.3f}",
               f"base log-prob: {base:.3f}", f"sampled with log-prob: {step['logprob']:.3f}"]
        tip += [f"{name} ARM log-prob: {lp:.3f} (vs base {lp - base:+.3f})" for name, lp in step["arm_logprobs"].items()]
        text = html.escape(step["text"]).replace("\n", "↵<br>")
        spans.append(f"<span class='genarm-tok' style='background:{_colour(value, scale)}' "
                     f"title='{html.escape(chr(10).join(tip), quote=True)}'>{text}</span>")
    legend = (f"<div class='genarm-legend'>colour: {html.escape(colour_by)} "
              f"(<span style='background:{_colour(scale, scale)}'>pushed up</span> "
              f"<span style='background:{_colour(-scale, scale)}'>pushed down</span>); hover a token for numbers</div>")
    return f"<div class='genarm-tokens'>{''.join(spans)}</div>{legend}"


def win_rate_figure(rates: pd.DataFrame, title: str):
    """Bar chart of win rates by setting (from ``storage.store.win_rates``)."""
    import plotly.graph_objects as go

    fig = go.Figure()
    if rates.empty:
        fig.update_layout(title=f"{title}: no judgments yet", height=320)
        return fig
    fig.add_bar(x=rates["setting"], y=rates["win_rate"], name="win / (win+tie+lose)",
                text=[f"n={n}" for n in rates["n"]], textposition="outside")
    fig.add_bar(x=rates["setting"], y=rates["win_rate_half_ties"], name="(win + ½ tie) / n")
    fig.update_layout(title=title, yaxis=dict(range=[0, 1.1], title="win rate"), barmode="group", height=360,
                      margin=dict(t=50, b=80))
    return fig


def frontier_figure(df: pd.DataFrame, objectives: Sequence[str]):
    """Mean ARM score of one objective against another per weight setting: the trade-off frontier.

    Each point carries its setting label as ``customdata`` (the dashboard reads it on click).
    """
    import plotly.express as px

    score_cols = [f"score_{o}" for o in objectives if f"score_{o}" in df]
    if df.empty or not score_cols:
        import plotly.graph_objects as go

        return go.Figure().update_layout(title="no sweep results yet", height=360)
    means = df.groupby("setting", as_index=False)[score_cols].mean()
    if len(score_cols) >= 2:
        x, y = score_cols[0], score_cols[1]
        fig = px.scatter(means, x=x, y=y, color="setting", text="setting", custom_data=["setting"],
                         labels={x: f"mean {x[6:]} ARM score", y: f"mean {y[6:]} ARM score"})
        fig.update_traces(textposition="top center", marker=dict(size=12))
    else:
        fig = px.bar(means, x="setting", y=score_cols[0], custom_data=["setting"])
    fig.update_layout(title="Trade-off frontier: mean sequence reward per setting", height=420, showlegend=False)
    return fig


def weights_figure(df: pd.DataFrame, objectives: Sequence[str]):
    """Each objective's mean ARM score against its own weight (other weights averaged over)."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for o in objectives:
        w, s = f"w_{o}", f"score_{o}"
        if w in df and s in df:
            g = df.groupby(w, as_index=False)[s].mean()
            fig.add_scatter(x=g[w], y=g[s], mode="lines+markers", name=o)
    fig.update_layout(title="Mean ARM score against the objective's own weight", xaxis_title="weight α",
                      yaxis_title="mean sequence reward", height=360)
    return fig


def training_figure(logs: dict[str, dict[str, Any]]):
    """Each ARM's training curves: loss and training reward accuracy against the step (from the
    ``log_history.json`` that ``train-arm`` writes), one colour per objective."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=2, subplot_titles=("loss −log σ(β_r · margin)", "training reward accuracy"))
    colours = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2"]
    drawn = False
    for i, (name, entry) in enumerate(logs.items()):
        rows = [r for r in entry.get("history", []) if "loss" in r and "step" in r]
        if not rows:
            continue
        drawn = True
        colour = colours[i % len(colours)]
        steps = [r["step"] for r in rows]
        fig.add_scatter(x=steps, y=[r["loss"] for r in rows], mode="lines+markers", name=name,
                        line=dict(color=colour), row=1, col=1)
        if any("reward_accuracy" in r for r in rows):
            fig.add_scatter(x=steps, y=[r.get("reward_accuracy") for r in rows], mode="lines+markers", name=name,
                            line=dict(color=colour), showlegend=False, row=1, col=2)
    title = "ARM training curves" if drawn else "ARM training curves: no training log beside these ARMs"
    fig.update_layout(title=title, height=340, margin=dict(t=70))
    fig.update_xaxes(title_text="step")
    fig.update_yaxes(range=[0, 1.05], row=1, col=2)
    return fig


def training_table(logs: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """Held-out pairwise accuracy and margin before and after training, one row per ARM."""
    rows = []
    for name, entry in logs.items():
        m = entry.get("metrics") or {}
        before, after = m.get("before") or {}, m.get("after") or {}
        rows.append({"objective": name, "kind": m.get("kind"), "train pairs": m.get("train_pairs"),
                     "held-out pairs": after.get("pairs"), "accuracy before": before.get("pairwise_accuracy"),
                     "accuracy after": after.get("pairwise_accuracy"), "margin before": before.get("mean_margin"),
                     "margin after": after.get("mean_margin"), "train seconds": m.get("train_seconds")})
    table = pd.DataFrame(rows, columns=["objective", "kind", "train pairs", "held-out pairs", "accuracy before",
                                        "accuracy after", "margin before", "margin after", "train seconds"])
    return table.round({"accuracy before": 3, "accuracy after": 3, "margin before": 2, "margin after": 2,
                        "train seconds": 1})
