"""The research record, as the dashboard needs it: save, judge, presets, views, exports, win rates.

``Records`` wraps the ``storage.Store``: database failures become ``UserError``s with the reason,
generations the database refused are kept and written first by the next save that succeeds, a
vote carries an idempotency key so that sending it again stores it once, and an export's
temporary folder is removed once its files have been served. Settings come back from storage as
data and become ``Setting``s here; labels and win-rate tables (presentation) are made here too.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import shutil
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from genarm_core.evaluation.metrics import cost_metrics
from genarm_core.models.config import DecodingConfig, Setting
from genarm_core.decoding.engine import RowResult
from storage.db import StorageError
from storage.export import count, export as export_judgments
from storage.spool import Spool, spool_path
from storage.store import JudgmentExists, JudgmentFilter, Store, parse_date

from .errors import AlreadyJudged, NotStoredError, UserError
from .requests import VERDICTS

log = logging.getLogger("genarm.app")

EXPORT_CHOICES = {"TRL preference JSONL": ("trl", ".jsonl"), "TRL preference Parquet": ("trl", ".parquet"),
                  "TRL conversational JSONL": ("trl-conversational", ".jsonl"), "Judgments CSV": ("csv", ".csv"),
                  "Battles JSONL (Elo)": ("battles", ".jsonl")}
#: Exports older than this are removed from the temporary folder (the browser has fetched them).
EXPORT_KEEP_S = 600.0
PREVIEW_CHARS = 160
#: Below this many judgments a setting's win rate or rating is not shown as a number.
MIN_JUDGMENTS = 5
#: What one judgment is worth to one side: a win 1, a loss 0, a tie or "both bad" ½ (the half-ties
#: win rate and the Bradley–Terry battles both count this way).
_SIDE_SCORE = {"wins": 1.0, "losses": 0.0, "ties": 0.5, "both_bad": 0.5}


def setting_name(setting: Setting, beta: float | None = None) -> str:
    """A setting's name on a page: its label, with β when it is not 1."""
    return setting.label + (f" β={beta:g}" if beta not in (None, 1.0) else "")


def judgment_filter(annotator: str | None = None, objective: str | None = None, since: str | None = None,
                    study_id: int | None = None, model_set: str | None = None) -> JudgmentFilter:
    since_dt = None
    if since and since.strip():
        try:
            since_dt = parse_date(since)
        except ValueError as exc:
            raise UserError(f"since: {exc}") from None
    return JudgmentFilter(since=since_dt, annotator=annotator or None,
                          objective=None if objective in (None, "", "overall") else objective,
                          study_id=study_id, model_set=model_set or None)


@dataclass
class Stored:
    """A judgment just recorded (or found again by its key)."""

    judgment_id: int
    annotator: str


def generation_record(r: RowResult, setting: Setting, cfg: DecodingConfig, model_set_id: int | None,
                      **extra: Any) -> dict[str, Any]:
    """A generation as the store takes it (``extra``: sweep_id, study_id, cell)."""
    prompt_text = r.prompt if isinstance(r.prompt, str) else "\n".join(f"{m['role']}: {m['content']}" for m in r.prompt)
    return dict(prompt=prompt_text, prompt_messages=None if isinstance(r.prompt, str) else list(r.prompt),
                completion=r.text, method=setting.method, weights=setting.weight_map, setting=setting.to_dict(),
                beta=cfg.beta, temperature=cfg.temperature, top_k=cfg.top_k, top_p=cfg.top_p,
                max_new_tokens=cfg.max_new_tokens, seed=cfg.seed, settings=cfg.to_dict(), n_tokens=r.n_tokens,
                latency_s=r.latency_s, finish_reason=r.finish_reason, scores=r.scores, trace=r.trace,
                model_set_id=model_set_id, **extra)


class Records:
    """Everything the dashboard writes and reads, for one ``Store``."""

    def __init__(self, store: Store, spool: Spool | None = None):
        self.store = store
        # Generations the database refused (unreachable, locked, full) wait on disk (``storage.spool``)
        # and are written before the next save, at start and at shutdown: an outage or a crash loses nothing.
        self.spool = spool if spool is not None else Spool(spool_path(store.url))
        self._lock = threading.Lock()
        self._export_root = Path(tempfile.mkdtemp(prefix="genarm-exports-"))

    # ------------------------------------------------------------------ generations

    @property
    def pending(self) -> int:
        """Generations waiting in the spool for the database."""
        return len(self.spool)

    def drain(self) -> int:
        """Write the spooled generations to the database now; returns how many. A database that still
        refuses keeps them spooled (logged, not raised): the next save or start tries again."""
        with self._lock:
            try:
                return self.spool.drain(self.store.add_generations)
            except StorageError as exc:
                log.warning("%d spooled generations are still waiting for the database: %s", len(self.spool), exc)
                return 0

    def save(self, results: Sequence[RowResult], settings: Sequence[Setting], cfg: DecodingConfig,
             model_set_id: int | None) -> list[int]:
        """Store generations, with their measured cost and path metrics (as the ``metric`` judge scores a
        study stores for its cells), after any the spool holds; returns their ids.

        Raises:
            NotStoredError: the database refused the write; the generations are in the spool (on disk),
            written with the next save that succeeds, or when the server starts or stops.
        """
        records = [generation_record(r, setting, cfg, model_set_id, uid=uuid.uuid4().hex)
                   for r, setting in zip(results, settings)]
        scores = [cost_metrics(r.text, r.n_tokens, r.finish_reason, r.latency_s, r.kl_to_base, r.forwards_per_token, r.trace)
                  for r in results]
        with self._lock:
            try:
                self.spool.drain(self.store.add_generations)
                return self.store.add_generations(records, scores)
            except StorageError as exc:
                self.spool.append(records, scores)
                raise NotStoredError(f"not stored: {exc}. {count(len(self.spool), 'generation')} kept in the spool on "
                                     f"disk, written once the database is back (judging needs them stored)") from None

    # ------------------------------------------------------------------ judgments

    def default_key(self, kind: str, *parts: Any) -> str:
        """The idempotency key of a vote whose client sent none: the same for the same vote (so a vote
        sent again is stored once) and unguessable, an HMAC of its parts under the database's secret."""
        digest = hmac.new(self.store.secret("vote-keys"), "|".join(map(str, (kind, *parts))).encode(), hashlib.sha256)
        return f"{kind}:{digest.hexdigest()[:32]}"

    def judge(self, generation_ids: Sequence[int], verdict: str, per_objective: dict[str, str], annotator: str = "",
              comment: str = "", blind: bool = False, swapped: bool = False, key: str | None = None) -> Stored:
        """Record a verdict on the first two generations of a pair (A and B as stored)."""
        if not generation_ids or len(generation_ids) < 2:
            raise UserError("generate a pair first, and wait until both panels have finished")
        try:
            jid = self.store.add_judgment(int(generation_ids[0]), int(generation_ids[1]), verdict, per_objective,
                                          annotator=annotator or "", comment=comment or "", blind=blind,
                                          swapped=swapped, idempotency_key=key)
        except JudgmentExists as exc:
            raise AlreadyJudged(f"{exc} (the Judgments tab's \"Change a verdict\", or the API's /edit_judgment); "
                                f"this vote was not stored", exc.judgment_id) from None
        except ValueError as exc:
            raise UserError(str(exc)) from None
        except StorageError as exc:
            raise UserError(f"the judgment was not stored: {exc}. Vote again once the database is back") from None
        return Stored(jid, annotator or "")

    def edit(self, judgment_id: int, verdict: str, per_objective: dict[str, str] | None, comment: str | None = None,
             annotator: str | None = None) -> Stored:
        """Change a stored judgment's verdict; the one it replaces is kept in its history."""
        try:
            jid = self.store.edit_judgment(judgment_id, verdict, per_objective, comment=comment, annotator=annotator)
        except ValueError as exc:
            raise UserError(str(exc)) from None
        except StorageError as exc:
            raise UserError(f"the change was not stored: {exc}. Try again once the database is back") from None
        return Stored(jid, annotator or "")

    def history(self, judgment_id: int) -> list[dict[str, Any]]:
        return self._read(lambda: self.store.judgment_history(judgment_id))

    def annotators(self) -> list[str]:
        return self._read(self.store.annotators)

    def judgments(self, flt: JudgmentFilter) -> pd.DataFrame:
        """The stored judgments with their settings as ``Setting``s (raw frame, for tables and rates)."""
        df = self._read(lambda: self.store.judgments_frame(flt))
        for side in ("a", "b"):
            if f"setting_{side}" in df:
                df[f"setting_{side}"] = [Setting.from_dict(s) for s in df[f"setting_{side}"]]
        return df

    def judgments_table(self, flt: JudgmentFilter) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(table for people, the full frame): human column names, times to the second, long texts
        cut short (the full frame holds them whole, for a row's detail view)."""
        df = self.judgments(flt)
        columns = ["#", "when (UTC)", "annotator", "verdict", "A", "B", "prompt", "completion A", "completion B",
                   "comment", "blind"]
        if df.empty:
            return pd.DataFrame(columns=columns), df
        cut = lambda t: t if len(t) <= PREVIEW_CHARS else t[:PREVIEW_CHARS].rstrip() + " …"  # noqa: E731
        table = pd.DataFrame({
            "#": df["judgment_id"],
            "when (UTC)": [pd.Timestamp(t).strftime("%Y-%m-%d %H:%M:%S") for t in df["created_at"]],
            "annotator": df["annotator"].replace("", "—"),
            "verdict": df["verdict"].map({"A": "A better", "B": "B better", "tie": "tie", "both_bad": "both bad"}),
            "A": [setting_name(s, b) for s, b in zip(df["setting_a"], df["beta_a"])],
            "B": [setting_name(s, b) for s, b in zip(df["setting_b"], df["beta_b"])],
            "prompt": [cut(p) for p in df["prompt"]],
            "completion A": [cut(c) for c in df["completion_a"]],
            "completion B": [cut(c) for c in df["completion_b"]],
            "comment": df["comment"],
            "blind": ["yes" if b else "" for b in df["blind"]],
        })
        if "ground_truth" in df:  # given texts, not settings: say so, with the known answer
            gold = df["ground_truth"].map(lambda a: f"ground truth (answer {a})" if isinstance(a, str) else None)
            table["A"] = gold.where(gold.notna(), table["A"])
            table["B"] = gold.where(gold.notna(), table["B"])
        for col in [c for c in df if c.startswith("verdict_")]:
            table[f"{col[len('verdict_'):]} verdict"] = df[col].fillna("")
        return table, df

    def win_rates(self, flt: JudgmentFilter, objective: str | None = None) -> pd.DataFrame:
        return win_rates(self.judgments(flt), objective)

    # ------------------------------------------------------------------ presets

    def presets(self) -> dict[str, dict[str, float]]:
        return self._read(self.store.presets)

    def save_preset(self, name: str, setting: Setting) -> None:
        from .requests import name as checked_name

        name = checked_name(name, "preset name")
        if not name:
            raise UserError("preset name: give the preset a name")
        try:
            self.store.save_preset(name, setting.weight_map)
        except StorageError as exc:
            raise UserError(f"the preset was not saved: {exc}") from None

    # ------------------------------------------------------------------ exports

    def export(self, choice: str, flt: JudgmentFilter) -> tuple[list[str], str]:
        """Write one export format into a fresh temporary folder; returns (files, summary).

        Earlier exports' folders are removed once they are ``EXPORT_KEEP_S`` old (their files were
        served); all of them go when the app closes (``close``)."""
        if choice not in EXPORT_CHOICES:
            raise UserError(f"export format: choose one of {list(EXPORT_CHOICES)}, got {choice!r}")
        self._prune_exports()
        fmt, suffix = EXPORT_CHOICES[choice]
        folder = Path(tempfile.mkdtemp(prefix="export-", dir=self._export_root))
        stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
        try:
            summary = export_judgments(self.store, fmt, folder / f"genarm-{fmt}-{stamp}{suffix}", flt,
                                       label=lambda s, beta: setting_name(Setting.from_dict(s), beta))
        except StorageError as exc:
            shutil.rmtree(folder, ignore_errors=True)
            raise UserError(f"the export failed: {exc}") from None
        return summary.files, str(summary).replace(str(folder) + "/", "")

    def _prune_exports(self) -> None:
        now = time.time()
        for old in self._export_root.glob("export-*"):
            if now - old.stat().st_mtime > EXPORT_KEEP_S:
                shutil.rmtree(old, ignore_errors=True)

    def close(self) -> None:
        shutil.rmtree(self._export_root, ignore_errors=True)

    # ------------------------------------------------------------------ helpers

    @staticmethod
    def _read(fn):
        try:
            return fn()
        except StorageError as exc:
            raise UserError(f"the database cannot be read: {exc}") from None


def without_ground_truth(judgments: pd.DataFrame) -> pd.DataFrame:
    """Judgments of real pairs only: a study's ground-truth pairs check annotators, they rate nothing."""
    if judgments.empty or "ground_truth" not in judgments:
        return judgments
    return judgments[judgments["ground_truth"].isna()]


def win_rates(judgments: pd.DataFrame, objective: str | None = None, rounds: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Win rate of every setting (with its β) against whatever it was compared with, with
    bootstrap 95% intervals (over the setting's judgments, seeded).

    Each judgment counts once for each side's setting. ``win_rate`` = win / (win + tie + lose)
    (GENARM.md §6); ``win_rate_half_ties`` = (win + ½ tie) / n; "both bad" counts as a tie for
    both. ``*_low`` / ``*_high`` bound each rate; ``enough`` is False below ``MIN_JUDGMENTS``
    (a page says "not enough judgments" there instead of drawing one vote as 100%). Settings are
    ``Setting``s (data); ``setting`` is their name for people.
    """
    from genarm_core.evaluation.stats import bootstrap_mean

    col = f"verdict_{objective}" if objective else "verdict"
    cols = ["setting", "n", "wins", "ties", "losses", "both_bad", "win_rate", "win_rate_low", "win_rate_high",
            "win_rate_half_ties", "half_ties_low", "half_ties_high", "enough"]
    judgments = without_ground_truth(judgments)
    if judgments.empty or col not in judgments:
        return pd.DataFrame(columns=cols)
    outcomes: dict[tuple[Setting, float], list[str]] = {}
    for _, r in judgments.iterrows():
        v = r[col]
        if not isinstance(v, str) or v not in VERDICTS:
            continue
        for side, other in (("a", "B"), ("b", "A")):
            kind = "wins" if v == side.upper() else "losses" if v == other else "ties" if v == "tie" else "both_bad"
            outcomes.setdefault((r[f"setting_{side}"], r[f"beta_{side}"]), []).append(kind)
    rows = []
    for (setting, beta), kinds in outcomes.items():
        t = {k: kinds.count(k) for k in ("wins", "ties", "losses", "both_bad")}
        plain = bootstrap_mean([float(k == "wins") for k in kinds], rounds, seed)
        half = bootstrap_mean([_SIDE_SCORE[k] for k in kinds], rounds, seed)
        rows.append({"setting": setting_name(setting, beta), "n": len(kinds), **t, "win_rate": plain.value,
                     "win_rate_low": plain.low, "win_rate_high": plain.high, "win_rate_half_ties": half.value,
                     "half_ties_low": half.low, "half_ties_high": half.high, "enough": len(kinds) >= MIN_JUDGMENTS})
    return pd.DataFrame(rows, columns=cols).sort_values("win_rate", ascending=False, ignore_index=True)


def battles(judgments: pd.DataFrame, objective: str | None = None) -> list[tuple[str, str, float]]:
    """Judgments as (setting A, setting B, outcome) battles: A better 1, B better 0, tie and both bad
    ½ (as ``win_rates`` counts them). Judgments without this objective's verdict are left out."""
    col = f"verdict_{objective}" if objective else "verdict"
    judgments = without_ground_truth(judgments)
    if judgments.empty or col not in judgments:
        return []
    outcome = {"A": _SIDE_SCORE["wins"], "B": _SIDE_SCORE["losses"], "tie": _SIDE_SCORE["ties"],
               "both_bad": _SIDE_SCORE["both_bad"]}
    return [(setting_name(r["setting_a"], r["beta_a"]), setting_name(r["setting_b"], r["beta_b"]), outcome[r[col]])
            for _, r in judgments.iterrows() if isinstance(r[col], str) and r[col] in outcome]


def annotator_agreement(judgments: pd.DataFrame, objective: str | None = None,
                        skips: dict[str, int] | None = None) -> tuple[str, pd.DataFrame]:
    """Do the people agree? (a summary line: agreement rate and Krippendorff's α over pairs judged by
    two or more named annotators, with n; per-annotator table). Unnamed votes are left out."""
    from genarm_core.evaluation.agreement import agreement_rate, annotator_table, krippendorff_alpha, oriented

    col = f"verdict_{objective}" if objective else "verdict"
    cols = ["annotator", "judgments", "agrees with the others' majority", "items with a majority",
            "left side chosen (blind, decisive)", "blind decisive", "median seconds", "ground-truth accuracy",
            "ground-truth pairs", "share skipped"]
    if judgments.empty or col not in judgments:
        return "No judgments by named annotators yet.", pd.DataFrame(columns=cols)
    rows, gold = [], {}
    for r in judgments.to_dict("records"):
        label = r.get(col)
        if not isinstance(label, str) or not (r.get("annotator") or "").strip():
            continue
        answer = r.get("ground_truth")
        if isinstance(answer, str):  # a ground-truth pair: scored against its answer, not in the agreement
            gold.setdefault(r["annotator"], []).append(r["verdict"] == answer)
            continue
        item, label = oriented(int(r["generation_a_id"]), int(r["generation_b_id"]), label)
        left = oriented(int(r["generation_a_id"]), int(r["generation_b_id"]), "B" if r.get("swapped") else "A")[1]
        ready, at = r.get("pair_ready_at"), r.get("created_at")
        seconds = (at - ready).total_seconds() if ready is not None and at is not None else None
        rows.append({"item": item, "annotator": r["annotator"], "label": label, "blind": bool(r.get("blind")),
                     "shown_left": left, "seconds": seconds})
    if not rows and not gold:
        return "No judgments by named annotators yet.", pd.DataFrame(columns=cols)
    triples = [(x["item"], x["annotator"], x["label"]) for x in rows]
    rate, pairs = agreement_rate(triples)
    alpha, items = krippendorff_alpha(triples)
    what = f"{objective} verdicts" if objective else "overall verdicts"
    if items == 0:
        line = f"No pair has been judged by two or more annotators yet ({what})."
    else:
        line = (f"{items} pair{'s' if items != 1 else ''} judged by two or more annotators ({what}): annotator pairs agree "
                f"{rate:.2f} of the time (n = {pairs}); Krippendorff's α (nominal) = "
                + ("– (needs 2 such pairs and 2 different verdicts)" if alpha is None else f"{alpha:.2f}") + ".")
    table = pd.DataFrame(annotator_table(rows), columns=cols)
    for who, marks in gold.items():
        if who not in set(table["annotator"]):
            table.loc[len(table), ["annotator", "judgments"]] = [who, 0]
        i = table.index[table["annotator"] == who][0]
        table.loc[i, "ground-truth accuracy"] = round(sum(marks) / len(marks), 2)
        table.loc[i, "ground-truth pairs"] = len(marks)
    for who, n in (skips or {}).items():  # the queue's skips: skipped / (judged + skipped)
        if who in set(table["annotator"]):
            i = table.index[table["annotator"] == who][0]
            table.loc[i, "share skipped"] = round(n / (n + int(table.loc[i, "judgments"] or 0)), 2)
    return line, table


def skip_counts(store: Store, study_id: int | None = None) -> dict[str, int]:
    """Skips per annotator in the annotation queue (of one study, or all)."""
    q = store.queue_frame(study_id)
    return q.loc[q["status"] == "skipped", "annotator"].value_counts().to_dict() if not q.empty else {}


def judge_agreement(store: Store, judgments: pd.DataFrame, objective: str | None = None) -> pd.DataFrame:
    """Each automatic judge that scored (or judged) people's judged pairs, against the people's
    verdicts on them: n, the share of the same outcome (A better, B better, or tie; "both bad"
    counts as a tie, a scoring judge's equal scores too) and Cohen's κ."""
    from genarm_core.evaluation.metrics import METRICS
    from genarm_core.evaluation.stats import cohen_kappa

    cols = ["judge", "self-scored", "pairs", "same verdict", "Cohen's κ"]
    col = f"verdict_{objective}" if objective else "verdict"
    if judgments.empty or col not in judgments:
        return pd.DataFrame(columns=cols)
    pairs = [(int(a), int(b), {"A": "A", "B": "B"}.get(v, "tie"))
             for a, b, v in zip(judgments["generation_a_id"], judgments["generation_b_id"], judgments[col]) if isinstance(v, str)]
    ids = sorted({i for a, b, _ in pairs for i in (a, b)})
    if not ids:
        return pd.DataFrame(columns=cols)
    scores = store.judge_scores_frame(generation_ids=ids)
    scores = scores[~scores["judge"].isin(METRICS)]
    value = {(g, j): v for g, j, v in zip(scores["generation_id"], scores["judge"], scores["value"])
             if v is not None and v == v}  # a rule that does not apply stored no value (NULL, read as NaN)
    self_scored = dict(zip(scores["judge"], scores["self_scored"]))
    rows = []
    for judge in dict.fromkeys(scores["judge"]):
        mine, theirs = [], []
        for a, b, human in pairs:
            if (a, judge) in value and (b, judge) in value:
                x, y = value[(a, judge)], value[(b, judge)]
                mine.append("A" if x > y else "B" if y > x else "tie")
                theirs.append(human)
        agree, kappa, n = cohen_kappa(mine, theirs)
        if n:
            rows.append({"judge": judge, "self-scored": "yes" if self_scored.get(judge) else "", "pairs": n,
                         "same verdict": round(agree, 2), "Cohen's κ": None if kappa is None else round(kappa, 2)})
    verdicts = store.judge_verdicts_frame()
    if not verdicts.empty:
        given = {}
        for j, a, b, v in zip(verdicts["judge"], verdicts["generation_a_id"], verdicts["generation_b_id"], verdicts["verdict"]):
            given[(j, a, b)] = v
            given[(j, b, a)] = {"A": "B", "B": "A"}.get(v, v)
        for judge in dict.fromkeys(verdicts["judge"]):
            both = [(given[(judge, a, b)], human) for a, b, human in pairs if (judge, a, b) in given]
            agree, kappa, n = cohen_kappa([x for x, _ in both], [y for _, y in both])
            if n:
                rows.append({"judge": judge, "self-scored": "", "pairs": n, "same verdict": round(agree, 2),
                             "Cohen's κ": None if kappa is None else round(kappa, 2)})
    return pd.DataFrame(rows, columns=cols)


def pairwise_table(judgments: pd.DataFrame, objective: str | None = None, rounds: int = 200,
                   seed: int = 0) -> pd.DataFrame:
    """Each setting against each other it was judged beside (either side): battles, and the row
    setting's win fraction (win + ½ tie) / n with a seeded bootstrap 95% interval. One row per
    ordered (setting, opponent)."""
    from genarm_core.evaluation.stats import bootstrap_mean

    cols = ["setting", "opponent", "battles", "win_fraction", "low", "high"]
    fights = battles(judgments, objective)
    if not fights:
        return pd.DataFrame(columns=cols)
    outcomes: dict[tuple[str, str], list[float]] = {}
    for a, b, o in fights:
        if a == b:
            continue
        outcomes.setdefault((a, b), []).append(o)
        outcomes.setdefault((b, a), []).append(1.0 - o)
    rows = []
    for (a, b), values in outcomes.items():
        iv = bootstrap_mean(values, rounds, seed)
        rows.append({"setting": a, "opponent": b, "battles": iv.n, "win_fraction": iv.value, "low": iv.low, "high": iv.high})
    return pd.DataFrame(rows, columns=cols)


def ratings_table(judgments: pd.DataFrame, objective: str | None = None, anchor: str | None = None, rounds: int = 200,
                  seed: int = 0) -> pd.DataFrame:
    """Bradley–Terry rating per setting with its bootstrap 95% interval and battle count, best first.

    ``anchor`` (a setting's name; default "Base only" when it was judged, else the most judged
    setting) is fixed at 1000. Settings with fewer than ``MIN_JUDGMENTS`` battles are listed with
    "not enough judgments" instead of a number."""
    from genarm_core.evaluation.ratings import bootstrap_ratings

    cols = ["setting", "rating", "95% CI", "battles", "note"]
    fights = battles(judgments, objective)
    if not fights:
        return pd.DataFrame(columns=cols)
    played = pd.Series([n for a, b, _ in fights for n in (a, b)]).value_counts()
    if anchor is None:
        anchor = "Base only" if "Base only" in played else str(played.index[0])
    elif anchor not in played:
        raise UserError(f"anchor: no judgments of {anchor!r}; judged settings: {sorted(played.index)}")
    rows = []
    for name, iv in bootstrap_ratings(fights, anchor, rounds=rounds, seed=seed).items():
        enough = iv.n >= MIN_JUDGMENTS
        rows.append({"setting": name, "rating": round(iv.value) if enough else None,
                     "95% CI": f"[{iv.low:.0f}, {iv.high:.0f}]" if enough else "",
                     "battles": iv.n, "note": "anchor" if name == anchor else "" if enough else "not enough judgments"})
    df = pd.DataFrame(rows, columns=cols).astype({"rating": "Int64"})
    return df.sort_values("rating", ascending=False, na_position="last", ignore_index=True)
