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

import pandas as pd

from genarm_core.models.config import Setting
from genarm_core.evaluation.judges import entry_scores
from genarm_core.evaluation.metrics import METRICS
from genarm_core.evaluation.stats import Interval, bootstrap_mean
from storage.store import Store

from .errors import UserError
from genarm_core.evaluation.study import cell_position, is_study_cell

#: The metrics a report's main table shows, with their headers.
SHOWN_METRICS = {"kl_to_base": "KL to base", "distinct_2": "distinct-2", "rep_2": "rep-2", "length_tokens": "tokens",
                 "ended_eos": "ended (EOS)", "tokens_per_second": "tokens/s per row", "forwards_per_token": "forwards/token"}


def symbol_of(setting: str) -> str:
    """A marker per kind of method in the frontier plots, so a baseline is told from GenARM without its colour."""
    for prefix, symbol in (("GenARM", "circle"), ("Prompted", "square"), ("ARGS", "diamond"), ("Best-of", "triangle-up"),
                           ("Blockwise", "triangle-down"), ("Base", "star")):
        if setting.startswith(prefix):
            return symbol
    return "hexagon"


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
    outcomes: pd.DataFrame | None = None  # one row per (judge, setting, prompt, sample) vs the reference
    agreement: pd.DataFrame | None = None  # each verdict-giving judge (and people) against each scoring judge
    completions: pd.DataFrame | None = None  # generation_id, label, prompt_index, sample, prompt, completion
    setting_of: dict[str, Setting] = field(default_factory=dict)  # label -> the setting

    def completions_of(self, label: str) -> pd.DataFrame:
        """A setting's completions beside the reference's on the same prompt and sample, with each
        scoring judge's score of both (for reading a frontier point)."""
        c = self.completions
        if c is None or label not in set(c["label"]):
            return pd.DataFrame(columns=["prompt", "sample", "completion", "reference"])
        mine = c[c["label"] == label]
        ref = c[c["label"] == self.reference][["prompt_index", "sample", "completion", "generation_id"]]
        out = mine.merge(ref, on=["prompt_index", "sample"], how="left", suffixes=("", "_ref"))
        table = pd.DataFrame({"prompt": out["prompt"], "sample": out["sample"], "completion": out["completion"]})
        if label != self.reference:
            table["reference"] = out["completion_ref"]
        by = self.scores.set_index(["generation_id", "judge"])["value"]
        for j in self.scoring_judges:
            header = self.judge_header(j)
            table[header] = [_cell(by, g, j) for g in out["generation_id"]]
            if label != self.reference:
                table[f"{header}, reference"] = [_cell(by, g, j) for g in out["generation_id_ref"]]
        return table

    @property
    def scoring_judges(self) -> list[str]:
        return [n for n, j in self.judges.items() if entry_scores(j)]

    def judge_header(self, name: str) -> str:
        return f"{name} (self-scored)" if self.judges.get(name, {}).get("self_scored") else name

    def markdown(self) -> str:
        from genarm_core.tables import markdown_table

        lines = [f"## Study #{self.study['id']}: {self.study['name']}", "",
                 f"Mean per completion with a 95% bootstrap interval; reference: {self.reference}. KL to base: "
                 "Σ_t log π̃(y_t) − log π_base(y_t) along each completion (nats); for Best-of-N the bound "
                 "log N − (N − 1) / N. tokens/s per row: a completion's tokens over the time its batch took to "
                 "finish it (rows share a batch: a cost comparison within the study, not a speed benchmark).", ""]
        cols = {"setting": "setting", "n": "n"}
        cols.update({j: self.judge_header(j) for j in self.scoring_judges})
        cols.update({m: h for m, h in SHOWN_METRICS.items() if m in self.summary.columns})
        table = self.summary[[c for c in cols if c in self.summary.columns]].copy()
        for c in table.columns:
            if c not in ("setting", "n"):
                table[c] = table[c].map(_fmt)
        if "kl_to_base" in table.columns:  # a method that returns base samples has no per-token distribution to measure
            table["kl_to_base"] = [kl if (s := self.setting_of.get(label)) is None or s.method_.kl_along_path
                                   else (f"≤ {b:.2f} (bound)" if (b := s.method_.kl_bound(s.n)) is not None
                                         else "– (base samples)")
                                   for label, kl in zip(table["setting"], table["kl_to_base"])]
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
        effects = self.slider_effects()
        if not effects.empty:
            lines += ["", "Moving one weight (GenARM settings that differ only in it): the change of each judge's mean "
                      "from its lowest weight to its highest, paired by prompt and sample (95% interval):", ""]
            e = effects.copy()
            e["judge"] = e["judge"].map(lambda j: self.judge_header(j) if j in self.judges else j)
            e["change"] = [("– (harmful refusals did not fall)" if j.startswith("borderline refusals fallen") and c.n
                            and math.isnan(c.value) else _fmt(c)) for j, c in zip(e["judge"], e["change"])]
            e["path"] = [f"{m} {a:g} → {b:g} at {f}" for m, a, b, f in zip(e["moving"], e["from"], e["to"], e["fixed"])]
            lines.append(markdown_table(e, {"path": "weight moved", "judge": "judge", "change": "change"}))
        if self.agreement is not None and not self.agreement.empty:
            lines += ["", "Agreement of the verdicts with each scoring judge's outcome on the same pairs "
                      "(win / tie / loss against the reference; Cohen's κ):", ""]
            a = self.agreement.copy()
            for c in ("agree", "kappa"):
                a[c] = a[c].map(lambda x: "–" if x is None or x != x else f"{x:.2f}")
            a["against"] = a["against"].map(self.judge_header)
            lines.append(markdown_table(a, {"judge": "judge", "against": "against", "n": "n", "agree": "same outcome",
                                            "kappa": "κ"}))
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

        frames = {"summary": expand(self.summary), "wins": expand(self.wins)}
        if self.completions is not None:
            frames["completions"] = self.completions
        if self.agreement is not None:
            frames["agreement"] = self.agreement
        return frames

    def frontier(self, x: str, y: str):
        """Mean of judge ``x`` against judge ``y``: one point (and legend entry) per setting with its
        95% interval bars, the reference a star. Each point carries its setting as ``customdata``."""
        import plotly.graph_objects as go
        from plotly.colors import qualitative

        for name in (x, y):
            if name not in self.summary.columns:
                raise UserError(f"no judge or metric {name!r} in this study; it has {', '.join(self.axis_choices())}")
        fig = go.Figure()
        palette = qualitative.Plotly + qualitative.D3
        for i, row in enumerate(self.summary.to_dict("records")):
            vx, vy, label = row[x], row[y], row["setting"]
            ref = label == self.reference
            colour = "#111827" if ref else palette[i % len(palette)]
            fig.add_trace(go.Scatter(
                x=[vx.value], y=[vy.value], mode="markers", name=f"{label} (reference)" if ref else label,
                customdata=[label], marker=dict(size=17 if ref else 12, symbol="star" if ref else symbol_of(label), color=colour,
                                                line=dict(width=1, color="white")),
                error_x=dict(type="data", symmetric=False, array=[vx.high - vx.value], arrayminus=[vx.value - vx.low],
                             thickness=1.2, width=4, color=colour),
                error_y=dict(type="data", symmetric=False, array=[vy.high - vy.value], arrayminus=[vy.value - vy.low],
                             thickness=1.2, width=4, color=colour),
                hovertemplate=f"<b>{label}</b><br>{x}: %{{x:.3f}} [{vx.low:.3f}, {vx.high:.3f}]<br>"
                              f"{y}: %{{y:.3f}} [{vy.low:.3f}, {vy.high:.3f}]<br>n = {row['n']}<extra></extra>"))
        fig.update_layout(title=dict(text=f"{self.judge_header(y)} against {self.judge_header(x)}: mean per setting, "
                                          "95% intervals", x=0),
                          xaxis_title=self.judge_header(x), yaxis_title=self.judge_header(y), template="plotly_white",
                          height=520, legend=dict(title="setting", font=dict(size=11)), margin=dict(t=60, r=10))
        return fig

    def safety_axes(self) -> tuple[str, str] | None:
        """(the judge of unsafe prompts refused, the judge of borderline-safe prompts answered) when the
        study has both (``safety_axis:`` in their entries), else None."""
        found = {self.judges[j].get("safety_axis"): j for j in self.scoring_judges
                 if self.judges[j].get("safety_axis") and j in self.summary.columns}
        if {"unsafe_refused", "borderline_answered"} <= set(found):
            return found["unsafe_refused"], found["borderline_answered"]
        return None

    def safety_frontier(self):
        """The safety / over-refusal frontier as OR-Bench draws it: unsafe prompts refused (x, higher is
        safer) against borderline-safe prompts answered (y, higher is less over-refusing), one point per
        setting with 95% interval bars; good settings sit in the upper right, a dial that only moves
        along the diagonal has learned surface cues."""
        axes = self.safety_axes()
        if axes is None:
            raise UserError("this study has no pair of judges for the safety frontier (one with safety_axis: "
                            "unsafe_refused, one with safety_axis: borderline_answered)")
        fig = self.frontier(*axes)
        self._slider_paths(fig, *axes)
        fig.update_layout(
            title=dict(text="Safety / over-refusal frontier<br><sup>harmful prompts refused against borderline-safe "
                            "prompts answered: mean per setting, 95% intervals</sup>", x=0.06, font=dict(size=16)),
            xaxis=dict(title=f"harmful prompts refused ({axes[0]}; higher is safer)", range=[-0.04, 1.04]),
            yaxis=dict(title=f"borderline-safe answered ({axes[1]}; higher: less over-refusal)",
                       range=[-0.04, 1.04]), margin=dict(t=80, l=70, r=10), height=560)
        fig.add_shape(type="rect", x0=0.9, x1=1.04, y0=0.9, y1=1.04, line=dict(width=0), fillcolor="rgba(16,185,129,0.12)",
                      layer="below")
        fig.add_annotation(x=0.97, y=1.0, text="aim", showarrow=False, font=dict(color="#047857", size=12))
        return fig

    def slider_paths(self, min_points: int = 2) -> list[tuple[str, str, list[tuple[float, str]]]]:
        """GenARM settings of this study that differ only in one objective's weight: (the objective that
        moves, the other weights as text, [(its weight, setting), ...] in order of weight), for paths of
        at least ``min_points`` settings: what moving one slider does."""
        shown = set(self.summary["setting"])
        genarm = {s: w for s, w in self.weights.items() if s in shown and s.startswith("GenARM") and w}
        objectives = sorted({o for w in genarm.values() for o in w})
        out = []
        for moving in objectives:
            groups: dict[tuple, list[tuple[float, str]]] = {}
            for s, w in genarm.items():
                rest = tuple(sorted((o, w.get(o, 0.0)) for o in objectives if o != moving))
                groups.setdefault(rest, []).append((w.get(moving, 0.0), s))
            for rest, members in sorted(groups.items()):
                if len(members) >= min_points:
                    out.append((moving, ", ".join(f"{o} {v:g}" for o, v in rest), sorted(members)))
        return out

    def _paired(self, judge: str, a: str, b: str) -> tuple[list[float], list[float]]:
        """Judge ``judge``'s values of settings ``a`` and ``b`` on the same (prompt, sample) cells."""
        s = self.scores[self.scores["judge"] == judge]
        wide = s[s["label"].isin([a, b])].pivot_table(index=["prompt_index", "sample"], columns="label", values="value",
                                                       aggfunc="first")
        if a not in wide or b not in wide:
            return [], []
        wide = wide.dropna(subset=[a, b])
        return list(wide[a]), list(wide[b])

    def slider_effects(self, rounds: int = 1000, seed: int = 0) -> pd.DataFrame:
        """Per slider path (``slider_paths``) and scoring judge: the change of the judge's mean from the
        path's lowest weight to its highest, paired by prompt and sample, with a 95% bootstrap interval;
        where the study has the safety axes, also how many times the borderline-safe refusals fell as
        much as the harmful ones did (the over-refusal a slider removes per unit of safety it costs)."""
        from genarm_core.evaluation.stats import paired_difference, ratio_of_differences

        rows = []
        axes = self.safety_axes()
        for moving, fixed, members in self.slider_paths():
            (w0, low), (w1, high) = members[0], members[-1]
            for judge in self.scoring_judges:
                a, b = self._paired(judge, low, high)
                if a:
                    rows.append({"moving": moving, "fixed": fixed, "from": w0, "to": w1, "judge": judge,
                                 "change": paired_difference(a, b, rounds, seed)})
            if axes:
                unsafe, borderline = axes
                ratio = ratio_of_differences(self._paired(borderline, low, high), self._paired(unsafe, high, low), rounds, seed)
                rows.append({"moving": moving, "fixed": fixed, "from": w0, "to": w1,
                             "judge": "borderline refusals fallen ÷ harmful refusals fallen", "change": ratio})
        return pd.DataFrame(rows, columns=["moving", "fixed", "from", "to", "judge", "change"])

    def _slider_paths(self, fig, x: str, y: str) -> None:
        """A dotted line through each slider path of three or more settings, in order of its weight."""
        import plotly.graph_objects as go

        rows = {r["setting"]: r for r in self.summary.to_dict("records")}
        points = fig.data
        fig.data = ()
        for moving, fixed, members in self.slider_paths(min_points=3):
            fig.add_trace(go.Scatter(
                x=[rows[s][x].value for _, s in members], y=[rows[s][y].value for _, s in members], mode="lines",
                line=dict(dash="dot", width=1.2, color="#6b7280"), hoverinfo="skip",
                name=f"{moving} {members[0][0]:g} → {members[-1][0]:g} at {fixed}"))
        fig.add_traces(list(points))  # the points over the lines

    def win_rate_plot(self, objective: str):
        """Win rate against the reference by each judge, along one objective's weight (GenARM settings)."""
        import plotly.graph_objects as go

        fig = go.Figure()
        w = self.wins[self.wins["setting"].map(lambda s: s in self.weights and s.startswith("GenARM"))]
        alphas = sorted({self.weights[s].get(objective, 0.0) for s in w["setting"]})
        step = min([b - a for a, b in zip(alphas, alphas[1:])] or [1.0])
        judges = list(dict.fromkeys(w["judge"]))
        for k, (judge, part) in enumerate(w.groupby("judge", sort=False)):
            part = part.assign(alpha=part["setting"].map(lambda s: self.weights[s].get(objective, 0.0))).sort_values("alpha")
            rates = list(part["win_rate_half_ties"])
            shift = (k - (len(judges) - 1) / 2) * step * 0.06  # judges side by side at each α, not on top of each other
            fig.add_trace(go.Scatter(
                x=[a + shift for a in part["alpha"]], y=[r.value for r in rates], mode="markers", name=self.judge_header(judge),
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

    def write(self, out: str | Path, x: str | None = None, y: str | None = None, png: bool = True) -> list[Path]:
        """Markdown, CSVs and the plots (HTML, and PNG with ``png`` when a Chrome or Chromium is there
        for kaleido to draw with) into the folder ``out``; returns the files."""
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        stem = f"study_{self.study['id']}"
        files = [out / f"{stem}.md"]
        files[0].write_text(self.markdown(), encoding="utf-8")
        for name, frame in self.csv_frames().items():
            path = out / f"{stem}_{name}.csv"
            frame.to_csv(path, index=False)
            files.append(path)
        figures: dict[str, Any] = {}
        if self.safety_axes() is not None:
            figures[f"{stem}_safety_frontier"] = self.safety_frontier()
        x, y = self.default_axes(x, y)
        if x and y:
            figures[f"{stem}_frontier"] = self.frontier(x, y)
        if not self.wins.empty:
            for o in sorted({o for w in self.weights.values() for o in w}):
                figures[f"{stem}_winrate_{o}"] = self.win_rate_plot(o)
        for name, fig in figures.items():
            path = out / f"{name}.html"
            fig.write_html(path, include_plotlyjs="directory")
            files.append(path)
        if png and figures:
            files += _write_pngs(figures, out)
        return files

    def default_axes(self, x: str | None, y: str | None) -> tuple[str | None, str | None]:
        """Independent judges first, then self-scored ones, then the KL to the base; only judges that
        scored something here (a rule for harmful prompts has nothing to say on a benign-only list)."""
        judges = [j for j in self.scoring_judges if j in self.summary.columns
                  and any(isinstance(v, Interval) and v.n for v in self.summary[j])]
        independent = [j for j in judges if not self.judges[j].get("self_scored")]
        order = independent + [j for j in judges if j not in independent] + ["kl_to_base"]
        x = x or (order[0] if order else None)
        y = y or next((j for j in order if j != x), None)
        return x, y


def _write_pngs(figures: dict[str, Any], out: Path) -> list[Path]:
    """The figures as PNG files, drawn by kaleido in one browser session; none (with a note on
    stderr) when kaleido finds no Chrome or Chromium to draw with."""
    import sys

    import plotly.io as pio

    paths = [out / f"{name}.png" for name in figures]
    try:
        pio.write_images(list(figures.values()), paths, width=1000, height=560, scale=2)
    except Exception as exc:  # noqa: BLE001 - PNGs are a convenience beside the HTML plots
        print(f"note: the plots were written as HTML only; PNG needs a Chrome or Chromium for kaleido ({exc})",
              file=sys.stderr)
        return []
    return paths


def _cell(values: pd.Series, generation_id: Any, judge: str) -> str:
    try:
        v = values.loc[(generation_id, judge)]
    except KeyError:
        return ""
    if isinstance(v, pd.Series):
        v = v.iloc[0]
    return "–" if v is None or v != v else f"{float(v):.2f}"


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
    if not gens.empty:
        gens = gens[gens["cell"].map(is_study_cell)].reset_index(drop=True)  # not the ground-truth pairs' texts
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
    judge_names = [j for j in judges if entry_scores(judges[j])]
    rows = []
    for label in settings:
        part = scores[scores["label"] == label]
        row: dict[str, Any] = {"setting": label, "n": int((info["label"] == label).sum())}
        for name in judge_names + [m for m in [*METRICS, "tokens_per_second"]]:
            values = part.loc[part["judge"] == name, "value"].tolist()
            row[name] = bootstrap_mean(values, rounds, seed)
        rows.append(row)
    summary = pd.DataFrame(rows)
    outcomes = _outcomes(store, study_id, scores, info, settings, reference, judge_names)
    wins = _wins(outcomes, settings, rounds, seed)
    verdict_judges = [j for j in outcomes["judge"].unique() if j not in judge_names]
    agree = pd.DataFrame([agreement(outcomes, v, s) for v in verdict_judges for s in judge_names if v != s],
                         columns=["judge", "against", "n", "agree", "kappa"])
    completions = _completions(info, gens, config, scores)
    return StudyReport(study, settings, reference, judges, scores, summary, wins, weights, outcomes, agree, completions,
                       {s.label: s for s in gens["setting"]})


def _completions(info: pd.DataFrame, gens: pd.DataFrame, config: dict[str, Any], scores: pd.DataFrame) -> pd.DataFrame:
    """Every completion with its setting, prompt, the prompt's fields (kind, category, ...: what the
    study's prompt file gave it) and each judge's score, one column a judge."""
    out = info.assign(prompt=list(gens["prompt"]), completion=list(gens["completion"]))
    records = config.get("prompts")
    if isinstance(records, list):
        fields = sorted({k for r in records if isinstance(r, dict) for k in r} - {"prompt", "subject"})
        for f in fields:
            out[f] = [records[i].get(f) if i < len(records) and isinstance(records[i], dict) else None
                      for i in out["prompt_index"]]
    if not scores.empty:
        wide = scores.pivot_table(index="generation_id", columns="judge", values="value", aggfunc="first")
        out = out.merge(wide.reset_index(), on="generation_id", how="left")
    return out


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


def _outcomes(store: Store, study_id: int, scores: pd.DataFrame, info: pd.DataFrame, settings: list[str], reference: str,
              judge_names: list[str]) -> pd.DataFrame:
    """Every (setting, prompt, sample) against the reference's, per judge: outcome 1 (the setting
    wins), ½ (tie; for people also "both bad") or 0; ``consistent`` for a pairwise judge's orders.
    Scoring judges compare their two scores; pairwise judges and people (the judgments of the
    study's completions in the database, ``human``) give verdicts."""
    rows: list[dict[str, Any]] = []
    for name in judge_names:
        table = scores[scores["judge"] == name].pivot_table(index=["prompt_index", "sample"], columns="label", values="value",
                                                           aggfunc="first")
        if reference not in table.columns:
            continue
        for label in settings:
            if label == reference or label not in table.columns:
                continue
            for (p, k), x, y in zip(table.index, table[label], table[reference]):
                if x is None or y is None or math.isnan(x) or math.isnan(y):
                    continue
                rows.append({"judge": name, "setting": label, "prompt_index": p, "sample": k,
                             "outcome": 1.0 if x > y else 0.0 if y > x else 0.5, "consistent": None})
    where = info.set_index("generation_id")
    verdicts = store.judge_verdicts_frame(study_id=study_id)
    for r in verdicts.to_dict("records"):
        if r["generation_a_id"] in where.index:
            a = where.loc[r["generation_a_id"]]
            rows.append({"judge": r["judge"], "setting": a["label"], "prompt_index": a["prompt_index"], "sample": a["sample"],
                         "outcome": {"A": 1.0, "B": 0.0}.get(r["verdict"], 0.5), "consistent": bool(r["consistent"])})
    judged = store.judgments_frame()
    if not judged.empty:
        for r in judged.to_dict("records"):
            ga, gb = r["generation_a_id"], r["generation_b_id"]
            if ga not in where.index or gb not in where.index:
                continue
            a, b = where.loc[ga], where.loc[gb]
            if (a["prompt_index"], a["sample"]) != (b["prompt_index"], b["sample"]) or reference not in (a["label"], b["label"]):
                continue
            if a["label"] == reference:  # orient every pair as (setting, reference)
                a, verdict = b, {"A": "B", "B": "A"}.get(r["verdict"], r["verdict"])
            else:
                verdict = r["verdict"]
            rows.append({"judge": "human", "setting": a["label"], "prompt_index": a["prompt_index"], "sample": a["sample"],
                         "outcome": {"A": 1.0, "B": 0.0}.get(verdict, 0.5), "consistent": None})
    return pd.DataFrame(rows, columns=["judge", "setting", "prompt_index", "sample", "outcome", "consistent"])


def _wins(outcomes: pd.DataFrame, settings: list[str], rounds: int, seed: int) -> pd.DataFrame:
    out = []
    for (name, label), part in outcomes.groupby(["judge", "setting"], sort=False):
        o = list(part["outcome"])
        wins, losses = o.count(1.0), o.count(0.0)
        consistent = part["consistent"].dropna()
        out.append({"setting": label, "judge": name, "wins": wins, "ties": len(o) - wins - losses, "losses": losses,
                    "win_rate": bootstrap_mean([float(x == 1.0) for x in o], rounds, seed),
                    "win_rate_half_ties": bootstrap_mean(o, rounds, seed),
                    "consistent": float(consistent.astype(bool).mean()) if len(consistent) else None})
    order = {s: i for i, s in enumerate(settings)}
    frame = pd.DataFrame(out, columns=["setting", "judge", "wins", "ties", "losses", "win_rate", "win_rate_half_ties", "consistent"])
    return frame.sort_values("setting", key=lambda s: s.map(order), kind="stable").reset_index(drop=True)


def agreement(outcomes: pd.DataFrame, judge: str, other: str) -> dict[str, Any]:
    """How often two judges give the same outcome (win / tie / loss) on the same pairs, with Cohen's κ."""
    from genarm_core.evaluation.stats import cohen_kappa

    key = ["setting", "prompt_index", "sample"]
    a = outcomes[outcomes["judge"] == judge].drop_duplicates(key).set_index(key)["outcome"]
    b = outcomes[outcomes["judge"] == other].drop_duplicates(key).set_index(key)["outcome"]
    both = pd.concat([a.rename("a"), b.rename("b")], axis=1, join="inner")
    agree, kappa, n = cohen_kappa(list(both["a"]), list(both["b"]))
    return {"judge": judge, "against": other, "n": n, "agree": agree, "kappa": kappa}


def find_study(store: Store, ref: str) -> int:
    """A study id from ``ref``: an id, or a study file (its newest study of that name)."""
    if ref.isdigit():
        return int(ref)
    from genarm_core.models.config import ConfigError
    from genarm_core.evaluation.study import load_study

    try:
        name = load_study(ref).name
    except ConfigError as exc:
        raise UserError(str(exc)) from None
    for s in store.studies():
        if s["name"] == name:
            return s["id"]
    raise UserError(f"no study named {name!r} in this database; run it first ('genarm study run {ref}')")
