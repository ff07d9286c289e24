"""A study's report, from the database: per setting and judge, the mean with a 95% bootstrap
interval, win / tie / lose against the reference setting on the same prompt and sample, the KL
to the base, diversity, cost and n; as frames, markdown, CSV and plotly figures.

Win rates by a scoring judge pair each completion with the reference's on the same prompt and
sample (a win when its score is higher, a tie when equal); by a pairwise judge they are its
verdicts (a tie when its two orders disagreed). Intervals resample completions (or pairs),
seeded, so a report is the same every time it is made.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from genarm_core.config import Setting
from genarm_core.evaluation.metrics import METRICS
from genarm_core.evaluation.stats import Interval, bootstrap_mean, paired_win_rate
from storage.store import Store

from .errors import UserError
from .studies import cell_position

#: The metrics a report's main table shows, with their headers.
SHOWN_METRICS = {"kl_to_base": "KL to base", "distinct_2": "distinct-2", "rep_2": "rep-2", "length_tokens": "tokens",
                 "ended_eos": "ended (EOS)", "tokens_per_second": "tokens/s", "forwards_per_token": "forwards/token"}


@dataclass
class StudyReport:
    study: dict[str, Any]
    settings: list[str]  # labels, in the study's order
    reference: str
    judges: dict[str, dict[str, Any]]  # name -> entry (kind, self_scored, normalize...)
    scores: pd.DataFrame  # one row per (generation, judge): label, prompt_index, sample, judge, value
    summary: pd.DataFrame  # one row per setting: n, and judge / metric -> Interval
    wins: pd.DataFrame  # one row per (setting, judge): wins, ties, losses, win_rate (Interval), consistency
    weights: dict[str, dict[str, float]] = field(default_factory=dict)  # label -> weights

    @property
    def scoring_judges(self) -> list[str]:
        return [n for n, j in self.judges.items() if j.get("kind") != "llm_judge"]

    def judge_header(self, name: str) -> str:
        return f"{name} (self-scored)" if self.judges.get(name, {}).get("self_scored") else name

    def markdown(self) -> str:
        from genarm_core.tables import markdown_table

        lines = [f"## Study #{self.study['id']}: {self.study['name']}", "",
                 f"Mean per completion with a 95% bootstrap interval; reference: {self.reference}.", ""]
        cols = {"setting": "setting", "n": "n"}
        cols.update({j: self.judge_header(j) for j in self.scoring_judges})
        cols.update({m: h for m, h in SHOWN_METRICS.items() if m in self.summary.columns})
        table = self.summary[[c for c in cols if c in self.summary.columns]].copy()
        for c in table.columns:
            if c not in ("setting", "n"):
                table[c] = table[c].map(_fmt)
        lines.append(markdown_table(table, cols))
        if not self.wins.empty:
            lines += ["", f"Against {self.reference} on the same prompt and sample (win rate = win / n, 95% interval):", ""]
            w = self.wins.copy()
            w["judge"] = w["judge"].map(self.judge_header)
            w["win_rate"] = w["win_rate"].map(_fmt)
            w["win_rate_half_ties"] = w["win_rate_half_ties"].map(_fmt)
            w["consistent"] = w["consistent"].map(lambda x: "" if x is None or x != x else f"{x:.2f}")
            lines.append(markdown_table(w, {"setting": "setting", "judge": "judge", "wins": "win", "ties": "tie",
                                            "losses": "lose", "win_rate": "win rate", "win_rate_half_ties": "(win + ½ tie) / n",
                                            "consistent": "orders agree"}))
        return "\n".join(lines) + "\n"

    def csv_frames(self) -> dict[str, pd.DataFrame]:
        """The summary and win tables with each interval as value / low / high columns."""
        def expand(df: pd.DataFrame) -> pd.DataFrame:
            out = {}
            for c in df.columns:
                if df[c].map(lambda x: isinstance(x, Interval)).any():
                    out[c] = df[c].map(lambda x: x.value if isinstance(x, Interval) else None)
                    out[f"{c}_low"] = df[c].map(lambda x: x.low if isinstance(x, Interval) else None)
                    out[f"{c}_high"] = df[c].map(lambda x: x.high if isinstance(x, Interval) else None)
                    out[f"{c}_n"] = df[c].map(lambda x: x.n if isinstance(x, Interval) else None)
                else:
                    out[c] = df[c]
            return pd.DataFrame(out)

        return {"summary": expand(self.summary), "wins": expand(self.wins)}

    def frontier(self, x: str, y: str):
        """Mean of judge ``x`` against judge ``y`` per setting, with 95% interval bars; the reference marked."""
        import plotly.graph_objects as go

        for name in (x, y):
            if name not in self.summary.columns:
                raise UserError(f"no judge or metric {name!r} in this study; it has {', '.join(self.axis_choices())}")
        fig = go.Figure()
        for is_ref in (False, True):
            part = self.summary[(self.summary["setting"] == self.reference) == is_ref]
            xs, ys = list(part[x]), list(part[y])
            fig.add_trace(go.Scatter(
                x=[v.value for v in xs], y=[v.value for v in ys], mode="markers+text", text=list(part["setting"]),
                textposition="top center", name="reference" if is_ref else "settings",
                marker=dict(size=14 if is_ref else 10, symbol="star" if is_ref else "circle", color="#d62728" if is_ref else "#1f77b4"),
                error_x=dict(type="data", symmetric=False, array=[v.high - v.value for v in xs], arrayminus=[v.value - v.low for v in xs]),
                error_y=dict(type="data", symmetric=False, array=[v.high - v.value for v in ys], arrayminus=[v.value - v.low for v in ys]),
                customdata=list(part["setting"]), hovertemplate="%{customdata}<br>x %{x:.3f}<br>y %{y:.3f}<extra></extra>"))
        fig.update_layout(title=f"{self.study['name']}: {self.judge_header(y)} against {self.judge_header(x)} (95% intervals)",
                          xaxis_title=self.judge_header(x), yaxis_title=self.judge_header(y), template="plotly_white",
                          height=520, legend=dict(orientation="h", y=-0.15))
        return fig

    def win_rate_plot(self, objective: str):
        """Win rate against the reference by each judge, along one objective's weight (GenARM settings)."""
        import plotly.graph_objects as go

        fig = go.Figure()
        w = self.wins[self.wins["setting"].map(lambda s: s in self.weights and s.startswith("GenARM"))]
        for judge, part in w.groupby("judge", sort=False):
            part = part.assign(alpha=part["setting"].map(lambda s: self.weights[s].get(objective, 0.0))).sort_values("alpha")
            rates = list(part["win_rate_half_ties"])
            fig.add_trace(go.Scatter(
                x=list(part["alpha"]), y=[r.value for r in rates], mode="markers", name=self.judge_header(judge),
                text=list(part["setting"]), hovertemplate="%{text}<br>%{y:.2f}<extra></extra>",
                error_y=dict(type="data", symmetric=False, array=[r.high - r.value for r in rates],
                             arrayminus=[r.value - r.low for r in rates])))
        fig.add_hline(y=0.5, line_dash="dot", line_color="gray")
        fig.update_layout(title=f"{self.study['name']}: (win + ½ tie) / n against {self.reference}, by α_{objective}",
                          xaxis_title=f"α_{objective}", yaxis_title="win rate", yaxis_range=[0, 1], template="plotly_white",
                          height=460)
        return fig

    def axis_choices(self) -> list[str]:
        return [c for c in self.summary.columns if c not in ("setting", "n")]

    def write(self, out: str | Path, x: str | None = None, y: str | None = None) -> list[Path]:
        """Markdown, CSVs and the plots (HTML) into the folder ``out``; returns the files."""
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        stem = f"study_{self.study['id']}"
        files = [out / f"{stem}.md"]
        files[0].write_text(self.markdown(), encoding="utf-8")
        for name, frame in self.csv_frames().items():
            path = out / f"{stem}_{name}.csv"
            frame.to_csv(path, index=False)
            files.append(path)
        x, y = self.default_axes(x, y)
        if x and y:
            path = out / f"{stem}_frontier.html"
            self.frontier(x, y).write_html(path, include_plotlyjs="directory")
            files.append(path)
        objectives = sorted({o for w in self.weights.values() for o in w})
        for o in objectives:
            if not self.wins.empty:
                path = out / f"{stem}_winrate_{o}.html"
                self.win_rate_plot(o).write_html(path, include_plotlyjs="directory")
                files.append(path)
        return files

    def default_axes(self, x: str | None, y: str | None) -> tuple[str | None, str | None]:
        judges = self.scoring_judges
        independent = [j for j in judges if not self.judges[j].get("self_scored")]
        order = independent + [j for j in judges if j not in independent] + ["kl_to_base"]
        x = x or (order[0] if order else None)
        y = y or next((j for j in order if j != x), None)
        return x, y


def _fmt(v: Any) -> str:
    if isinstance(v, Interval):
        return str(v) if v.n else "–"
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    return f"{v:.2f}" if isinstance(v, float) else str(v)


def build_report(store: Store, study_id: int, rounds: int = 1000, seed: int = 0) -> StudyReport:
    """The report of a stored study (what is stored so far, if it is still running)."""
    study = store.study(study_id)
    if study is None:
        raise UserError(f"no study #{study_id} in this database; 'genarm study list' shows them")
    config = study["config"]
    labels = [Setting.from_dict(s).label for s in config.get("settings", [])]
    reference = Setting.from_dict(config.get("reference") or {"method": "base"}).label
    judges = dict(config.get("judges") or {})
    gens = store.generations_frame(study_id=study_id)
    if gens.empty:
        raise UserError(f"study #{study_id} has no stored completions yet; run it first")
    pos = gens["cell"].map(cell_position)
    gens["setting"] = gens["setting"].map(Setting.from_dict)
    info = pd.DataFrame({"generation_id": gens["id"], "label": gens["setting"].map(lambda s: s.label),
                         "prompt_index": pos.map(lambda p: p[0]), "sample": pos.map(lambda p: p[1])})
    weights = {s.label: s.weight_map for s in gens["setting"]}
    raw = store.judge_scores_frame(study_id=study_id)
    scores = raw.merge(info, on="generation_id")
    # Tokens per second of each completion (from its latency), as one more metric.
    tps = gens[["id", "n_tokens", "latency_s"]].rename(columns={"id": "generation_id"}).merge(info, on="generation_id")
    tps = tps.assign(judge="tokens_per_second", value=[n / s if s and n else None for n, s in zip(tps["n_tokens"], tps["latency_s"])])
    scores = pd.concat([scores, tps[scores.columns.intersection(tps.columns)]], ignore_index=True)
    scores["value"] = pd.to_numeric(scores["value"], errors="coerce")
    scores = _normalise(scores, judges, reference)
    settings = [s for s in labels if s in set(info["label"])]
    judge_names = [j for j in judges if judges[j].get("kind") != "llm_judge"]
    rows = []
    for label in settings:
        part = scores[scores["label"] == label]
        row: dict[str, Any] = {"setting": label, "n": int((info["label"] == label).sum())}
        for name in judge_names + [m for m in [*METRICS, "tokens_per_second"]]:
            values = part.loc[part["judge"] == name, "value"].tolist()
            row[name] = bootstrap_mean(values, rounds, seed)
        rows.append(row)
    summary = pd.DataFrame(rows)
    wins = _wins(store, study_id, scores, info, settings, reference, judges, judge_names, rounds, seed)
    return StudyReport(study, settings, reference, judges, scores, summary, wins, weights)


def _normalise(scores: pd.DataFrame, judges: dict[str, dict[str, Any]], reference: str) -> pd.DataFrame:
    """Apply each reward model's ``normalize`` ((x − mean) / std; ``reference``: the reference setting's)."""
    scores = scores.copy()
    for name, entry in judges.items():
        norm = entry.get("normalize")
        if norm is None:
            continue
        rows = scores["judge"] == name
        if norm == "reference":
            ref = scores.loc[rows & (scores["label"] == reference), "value"].dropna()
            if len(ref) < 2 or ref.std() == 0:
                continue
            mean, std = float(ref.mean()), float(ref.std())
        else:
            mean, std = float(norm["mean"]), float(norm["std"])
        scores.loc[rows, "value"] = (scores.loc[rows, "value"] - mean) / std
    return scores


def _wins(store: Store, study_id: int, scores: pd.DataFrame, info: pd.DataFrame, settings: list[str], reference: str,
          judges: dict[str, dict[str, Any]], judge_names: list[str], rounds: int, seed: int) -> pd.DataFrame:
    out = []
    if reference not in settings:
        return pd.DataFrame(columns=["setting", "judge", "wins", "ties", "losses", "win_rate", "win_rate_half_ties", "consistent"])
    for name in judge_names:
        table = scores[scores["judge"] == name].pivot_table(index=["prompt_index", "sample"], columns="label", values="value",
                                                           aggfunc="first")
        if reference not in table.columns:
            continue
        for label in settings:
            if label == reference or label not in table.columns:
                continue
            wr = paired_win_rate(_nan_none(table[label]), _nan_none(table[reference]), rounds=rounds, seed=seed)
            out.append({"setting": label, "judge": name, "wins": wr.wins, "ties": wr.ties, "losses": wr.losses,
                        "win_rate": wr.win_rate, "win_rate_half_ties": wr.win_rate_half_ties, "consistent": None})
    verdicts = store.judge_verdicts_frame(study_id=study_id)
    if not verdicts.empty:
        label_of = dict(zip(info["generation_id"], info["label"]))
        verdicts = verdicts.assign(label=verdicts["generation_a_id"].map(label_of))
        for (name, label), part in verdicts.groupby(["judge", "label"], sort=False):
            outcome = [{"A": 1.0, "B": 0.0}.get(v, 0.5) for v in part["verdict"]]
            wins, losses = outcome.count(1.0), outcome.count(0.0)
            out.append({"setting": label, "judge": name, "wins": wins, "ties": len(outcome) - wins - losses, "losses": losses,
                        "win_rate": bootstrap_mean([float(o == 1.0) for o in outcome], rounds, seed),
                        "win_rate_half_ties": bootstrap_mean(outcome, rounds, seed),
                        "consistent": float(np.mean(part["consistent"].astype(bool)))})
    order = {s: i for i, s in enumerate(settings)}
    frame = pd.DataFrame(out, columns=["setting", "judge", "wins", "ties", "losses", "win_rate", "win_rate_half_ties", "consistent"])
    return frame.sort_values("setting", key=lambda s: s.map(order), kind="stable").reset_index(drop=True)


def _nan_none(series: pd.Series) -> list[float | None]:
    return [None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v) for v in series]


def find_study(store: Store, ref: str) -> int:
    """A study id from ``ref``: an id, or a study file (its newest study of that name)."""
    if ref.isdigit():
        return int(ref)
    from genarm_core.config import ConfigError
    from genarm_core.evaluation.study import load_study

    try:
        name = load_study(ref).name
    except ConfigError as exc:
        raise UserError(str(exc)) from None
    for s in store.studies():
        if s["name"] == name:
            return s["id"]
    raise UserError(f"no study named {name!r} in this database; run it first ('genarm study run {ref}')")
