"""Pure presentation: the token-level reward view (HTML) and plot builders (plotly).

Everything user-supplied is HTML-escaped here; plot builders are plain functions from data to a
Figure, and a plot with nothing to show says so in words (no empty axes).
"""

from __future__ import annotations

import html
from typing import Any, Sequence

import pandas as pd

COMBINED = "combined shift"
COLOURS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#4b5563", "#db2777", "#65a30d"]


def _colour(value: float, scale: float) -> str:
    """Green for tokens the objectives pushed up, red for pushed down; alpha by size."""
    a = max(0.0, min(1.0, abs(value) / scale)) * 0.85
    rgb = "22,163,74" if value >= 0 else "220,38,38"
    return f"rgba({rgb},{a:.2f})"


def _tip(lines: list[str]) -> str:
    rows = "".join(f"<span class='genarm-tip-row'>{html.escape(line)}</span>" for line in lines)
    return f"<span class='genarm-tip' role='tooltip'>{rows}</span>"


def token_html(trace: Sequence[dict[str, Any]] | None, colour_by: str = COMBINED, scale: float = 3.0,
               neutral: bool = False) -> str:
    """Each generated token as a span coloured by how much the objectives changed its probability.

    ``colour_by`` = "combined shift": log π̃(y_t) − log π_base(y_t); or an objective name:
    log π_r(y_t) − log π_base(y_t). Hovering a token shows every number in a styled tooltip.
    ``neutral`` (blind mode before the vote): the same grey tokens for every panel and no numbers,
    so nothing tells an aligned panel from the base. Tokens with no text (EOS) are a small end mark.
    """
    if not trace:
        return "<div class='genarm-tokens genarm-empty'>The token view appears here after a generation.</div>"
    spans = []
    for step in trace:
        text = html.escape(step["text"]).replace("\n", "↵<br>")
        if not step["text"]:
            if step.get("eos"):
                spans.append("<span class='genarm-end' title='end of the answer'>∎</span>")
            continue
        if neutral:
            spans.append(f"<span class='genarm-tok genarm-neutral'>{text}</span>")
            continue
        base = step["base_logprob"]
        shift = step.get("combined_logprob", base) - base
        value = shift if colour_by == COMBINED else step["arm_logprobs"].get(colour_by, base) - base
        lines = [f"shift (combined − base): {shift:+.2f}", f"base log-prob: {base:.2f}",
                 f"sampled with log-prob: {step['logprob']:.2f}"]
        lines += [f"{name} ARM: {lp:.2f} ({lp - base:+.2f} vs base)" for name, lp in step["arm_logprobs"].items()]
        spans.append(f"<span class='genarm-tok' style='background:{_colour(value, scale)}' tabindex='0'>{text}"
                     f"{_tip(lines)}</span>")
    if neutral:
        legend = "<div class='genarm-legend'>token colours are hidden until you vote (blind mode)</div>"
    else:
        legend = (f"<div class='genarm-legend'>colour: {html.escape(colour_by)} "
                  f"(<span style='background:{_colour(scale, scale)}'>pushed up</span> "
                  f"<span style='background:{_colour(-scale, scale)}'>pushed down</span>); hover a token for numbers</div>")
    return f"<div class='genarm-tokens'>{''.join(spans)}</div>{legend}"


def empty_figure(title: str, message: str, height: int = 300):
    """A figure with no axes and a sentence saying what to do instead."""
    import plotly.graph_objects as go

    fig = go.Figure()
    fig.update_layout(title=title, height=height, xaxis=dict(visible=False), yaxis=dict(visible=False),
                      annotations=[dict(text=message, showarrow=False, xref="paper", yref="paper", x=0.5, y=0.5,
                                        font=dict(size=14, color="#6b7280"))],
                      plot_bgcolor="rgba(0,0,0,0)", margin=dict(t=60, b=20, l=20, r=20))
    return fig


def win_rate_figure(rates: pd.DataFrame, title: str):
    """Bar chart of win rates by setting (from ``app.service.win_rates``) with 95% interval bars and
    n; a setting with too few judgments gets no bar, only "not enough judgments (n=…)"."""
    import plotly.graph_objects as go

    if rates.empty:
        return empty_figure(title, "No judgments yet: generate a pair in the Compare tab and vote.")
    shown = rates.assign(win_rate=rates["win_rate"].where(rates["enough"]),
                         win_rate_half_ties=rates["win_rate_half_ties"].where(rates["enough"]))
    fig = go.Figure()
    for col, low, high, name, colour in (("win_rate", "win_rate_low", "win_rate_high", "win / (win + tie + lose)", COLOURS[0]),
                                         ("win_rate_half_ties", "half_ties_low", "half_ties_high", "(win + ½ tie) / n",
                                          COLOURS[2])):
        fig.add_bar(x=shown["setting"], y=shown[col], name=name, marker_color=colour,
                    error_y=dict(type="data", symmetric=False, array=(shown[high] - shown[col]).tolist(),
                                 arrayminus=(shown[col] - shown[low]).tolist(), thickness=1.2, width=4),
                    hovertemplate="%{x}: %{y:.2f}<extra>" + name + "</extra>")
    for _, r in rates.iterrows():
        label = f"n={r['n']}" if r["enough"] else f"not enough judgments (n={r['n']})"
        fig.add_annotation(x=r["setting"], y=r["win_rate_high"] if r["enough"] else 0.05, text=label, showarrow=False,
                           yshift=14, font=dict(size=11, color="#444" if r["enough"] else "#b45309"))
    fig.update_layout(title=title, yaxis=dict(range=[0, 1.2], title="win rate (95% CI)"), barmode="group", height=400,
                      margin=dict(t=60, b=90), legend=dict(orientation="h", y=1.12, x=1, xanchor="right"))
    return fig


def pairwise_figure(pairs: pd.DataFrame, title: str, min_battles: int = 5):
    """Two heatmaps: the row setting's win fraction against the column setting (with its 95% CI and
    n on hover; blank below ``min_battles``), and the number of battles between them."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    if pairs.empty:
        return empty_figure(title, "No judged pairs yet.", 300)
    order = list(pd.concat([pairs["setting"], pairs["opponent"]]).value_counts().index)
    idx = {n: i for i, n in enumerate(order)}
    k = len(order)
    frac = [[None] * k for _ in range(k)]
    count = [[0] * k for _ in range(k)]
    text = [[""] * k for _ in range(k)]
    hover = [["no battles"] * k for _ in range(k)]
    for r in pairs.itertuples(index=False):
        i, j = idx[r.setting], idx[r.opponent]
        count[i][j] = int(r.battles)
        hover[i][j] = (f"{r.setting} vs {r.opponent}<br>(win + ½ tie) / n = {r.win_fraction:.2f} "
                       f"[{r.low:.2f}, {r.high:.2f}], n = {r.battles}")
        if r.battles >= min_battles:
            frac[i][j] = r.win_fraction
            text[i][j] = f"{r.win_fraction:.2f}"
        else:
            text[i][j] = f"n={r.battles}"
            hover[i][j] += " (not enough judgments)"
    short = [n if len(n) <= 28 else n[:26] + "…" for n in order]
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.22,
                        subplot_titles=("win fraction of the row against the column", "battles"))
    fig.add_trace(go.Heatmap(z=frac, x=short, y=short, text=text, texttemplate="%{text}", hovertext=hover,
                             hoverinfo="text", zmin=0, zmax=1, colorscale="RdBu", showscale=False), row=1, col=1)
    fig.add_trace(go.Heatmap(z=count, x=short, y=short, text=count, texttemplate="%{text}", hoverinfo="z",
                             colorscale="Blues", showscale=False), row=1, col=2)
    fig.update_yaxes(autorange="reversed")
    fig.update_xaxes(tickangle=-30)
    fig.update_layout(title=dict(text=title, x=0), height=max(340, 130 + 45 * k), margin=dict(t=80, l=10, r=10))
    return fig


def training_figure(logs: dict[str, dict[str, Any]]):
    """Each ARM's training curves: loss and training reward accuracy against the step (from the
    ``log_history.json`` that ``train-arm`` writes), one colour per objective."""
    from plotly.subplots import make_subplots

    drawn = {name: [r for r in e.get("history", []) if "loss" in r and "step" in r] for name, e in logs.items()}
    drawn = {k: v for k, v in drawn.items() if v}
    if not drawn:
        return empty_figure("ARM training curves", "No training log beside these ARMs (trained elsewhere).", 300)
    fig = make_subplots(rows=1, cols=2, subplot_titles=("loss", "reward accuracy of the training batches"))
    for i, (name, rows) in enumerate(drawn.items()):
        colour = COLOURS[i % len(COLOURS)]
        steps = [r["step"] for r in rows]
        fig.add_scatter(x=steps, y=[r["loss"] for r in rows], mode="lines+markers", name=name,
                        line=dict(color=colour), row=1, col=1)
        if any("reward_accuracy" in r for r in rows):
            fig.add_scatter(x=steps, y=[r.get("reward_accuracy") for r in rows], mode="lines+markers", name=name,
                            line=dict(color=colour), showlegend=False, row=1, col=2)
    fig.update_layout(title="ARM training curves", height=340, margin=dict(t=70))
    fig.update_xaxes(title_text="optimiser step")
    fig.update_yaxes(range=[0, 1.05], row=1, col=2)
    return fig


def training_table(logs: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """Held-out pairwise accuracy and margin before and after training, one row per ARM."""
    columns = ["objective", "kind", "train pairs", "held-out pairs", "accuracy before", "accuracy after",
               "margin before", "margin after", "train time"]
    rows = []
    for name, entry in logs.items():
        m = entry.get("metrics") or {}
        before, after = m.get("before") or {}, m.get("after") or {}
        fmt = lambda v, d=2: "—" if v is None else f"{v:.{d}f}"  # noqa: E731
        secs = m.get("train_seconds")
        rows.append({"objective": name, "kind": m.get("kind") or "—", "train pairs": m.get("train_pairs") or "—",
                     "held-out pairs": after.get("pairs") or "—", "accuracy before": fmt(before.get("pairwise_accuracy")),
                     "accuracy after": fmt(after.get("pairwise_accuracy")), "margin before": fmt(before.get("mean_margin")),
                     "margin after": fmt(after.get("mean_margin")),
                     "train time": "—" if secs is None else f"{secs:.0f} s"})
    return pd.DataFrame(rows, columns=columns)
