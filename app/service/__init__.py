"""What the dashboard does, without the dashboard: the only door from the UI to the engine and the database.

One idea a module:

- ``requests``: reading what a person or an API client sent (settings, decoding, verdicts, prompts, grids);
- ``modelsets``: the loaded model set, switching, what the Models tab shows;
- ``pairs``: a generated pair on a page, and blind mode's rules;
- ``records``: saving (with a buffer for database outages), judging (with idempotency keys),
  presets, judgment tables, exports, win rates;
- ``studies``, ``study_report``: studies (settings x prompts x samples, judged) and their reports; the Studies tab's runs.

``AppContext`` holds one of each for the server and is handed to every tab (no globals). The
Gradio tabs import this package and ``app.render`` only.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from genarm_core.decoding.methods import METHOD_LABELS, METHODS, method as method_named
from genarm_core.models.config import DecodingConfig, ModelSetConfig, Setting
from genarm_core.threads import release_openmp_threads
from storage.db import StorageError
from storage.spool import Spool
from storage.store import Store

from . import requests
from .access import Access
from .errors import AlreadyJudged, NotStoredError, UserError
from .batcher import PairBatcher
from .modelsets import ModelSets, human_count
from .pairs import PANEL_NAMES, Pair, PanelResult, swap_verdict
from .records import EXPORT_CHOICES, Records, Stored, judgment_filter, setting_name, win_rates
from .requests import VERDICTS, parse_chat, parse_grid, read_prompt_list
from .studies import MAX_COMPLETIONS_BY_ROLE, dashboard_study_spec

log = logging.getLogger(__name__)


STREAM_INTERVAL_S = 0.25  #: the shortest time between two streamed updates of a pair
#: Compare requests served at once (their pairs meet in one batch: ``PairBatcher``); more wait in Gradio's queue.
PAIR_CONCURRENCY = 8
#: The longest prompt (characters; a chat's messages each) a request may send, checked before tokenising.
MAX_PROMPT_CHARS = 20_000
MAX_COMMENT_CHARS = 5_000


@dataclass
class PairUpdate:
    """A streaming update: text per displayed panel; ``pair`` once every panel finished and was stored."""

    texts: list[str]
    done: bool = False
    pair: Pair | None = None
    results: list[PanelResult] | None = None
    warning: str | None = None


class AppContext:
    """The server's model sets, engine and records: one object handed to the UI."""

    def __init__(self, model_sets: dict[str, Path], store: Store, initial: str | None = None, panels: int = 2,
                 access: Access | None = None, spool: Spool | None = None):
        self.records = Records(store, spool)
        drained = self.records.drain()  # what a crash or an outage left in the spool goes in first
        if drained:
            log.warning("wrote %d spooled generations to the database", drained)
        self.store = store
        self.panels = panels
        self.access = access or Access()  # who sees whose judgments (``access``)
        self.sets = ModelSets(model_sets, initial)
        # Pairs requested together (several pages) are decoded as one batch, on the compute thread.
        self.batcher = PairBatcher(lambda: self.sets.engine, self.sets.compute.call)
        self.model_set_id: int | None = None
        self._judges: dict[str, Any] = {}  # the loaded set's judges built for the Compare tab, by name
        self._register()

    # ------------------------------------------------------------------ model sets

    def _register(self) -> None:
        spec = self.config.to_dict()
        spec["fingerprints"] = self.sets.models.fingerprints
        self.model_set_id = self.records_call(lambda: self.store.register_model_set(self.config.name, spec),
                                              "the model set was not registered")

    def load(self, name: str) -> None:
        self.sets.load(name)
        self._close_judges()
        self._register()

    # ------------------------------------------------------------------ a judge's score per panel

    def panel_judges(self) -> list[str]:
        """The loaded set's judges (``judges:``) that score one completion: what Compare can show per panel."""
        return [s.name for s in self.config.judges if s.scores]

    def default_panel_judge(self) -> str | None:
        """The judge Compare scores panels with until the user picks another: the first the set marks
        ``compare: true`` (cheap ones, such as rules); None (off) when it marks none."""
        return next((s.name for s in self.config.judges if s.scores and s.compare), None)

    def score_panels(self, pair: Pair, name: str) -> tuple[Pair, str]:
        """Score each panel of a stored pair with the set's judge ``name`` (built once, kept until the set
        changes) and store the scores as that judge's rows. Returns the pair carrying them
        (``judge_scores``, stored order) and a warning ("" when none): a judge that fails, or scores
        that could not be stored, say so there, and the pair stays as it was."""
        from genarm_core.evaluation.judges import Item, build_judge

        spec = next((s for s in self.config.judges if s.name == name and s.scores), None)
        if spec is None:
            raise UserError(f"judge: {name!r} is not a scoring judge of model set {self.current!r}; "
                            f"choose one of {self.panel_judges() or 'none (its file has no judges: section)'}")
        try:
            judge = self._judges.get(name) or self._judges.setdefault(name, build_judge(spec))
            values = judge.score([Item(pair.prompt, r.text, {}, dict(r.scores or {})) for r in pair.results])
        except Exception as exc:  # noqa: BLE001 - a judge is the user's code or model; its failure is reported, not raised
            log.warning("judge %r could not score pair %s: %s", name, pair.ids, exc)
            return pair, f"judge {name!r} could not score these panels: {exc}"
        finally:  # a model judge ran torch on this request thread: its OpenMP team goes (``ComputeThread``)
            release_openmp_threads()
        scored = replace(pair, judge_scores=(name, list(values)))
        rows = [{"generation_id": gid, "judge": name, "value": v, "self_scored": spec.self_scored}
                for gid, v in zip(pair.ids, values)]
        try:
            self.store.add_judge_scores(rows)
        except StorageError as exc:
            log.warning("judge %r's scores of pair %s were not stored: %s", name, pair.ids, exc)
            return scored, f"judge {name!r}'s scores are shown but were not stored: {exc}"
        return scored, ""

    def _close_judges(self) -> None:
        for judge in self._judges.values():
            judge.close()
        self._judges.clear()

    @property
    def current(self) -> str:
        return self.sets.current

    @property
    def model_sets(self) -> dict[str, Path]:
        return self.sets.files

    @property
    def config(self) -> ModelSetConfig:
        return self.sets.config

    @property
    def objectives(self) -> list[str]:
        return self.sets.objectives

    @property
    def models(self):
        return self.sets.models

    @property
    def engine(self):
        return self.sets.engine

    # ------------------------------------------------------------------ requests

    def decoding(self, beta: Any, temperature: Any, top_k: Any, top_p: Any, max_new_tokens: Any, seed: Any,
                 trace: bool = True) -> DecodingConfig:
        return requests.decoding(self.config, beta, temperature, top_k, top_p, max_new_tokens, seed, trace)

    def setting(self, method: Any, weights: Any, n: Any = 1, where: str = "", options: Any = None) -> Setting:
        return requests.setting(self.config, method, weights, n, where, options)

    def check_page(self, shown: str) -> None:
        """A page laid out for another model set must reload before it sends weights."""
        if shown != self.current:
            raise UserError(f"the server now serves model set {self.current!r} (switched in the Models tab since this "
                            f"page showed {shown!r}); reload the page")

    # ------------------------------------------------------------------ generation

    def fit_prompt(self, prompt: Any, max_new_tokens: int, settings: Sequence[Setting] = ()) -> tuple[Any, str | None]:
        """Check the prompt; cut a too-long text prompt from the left (keeping its end) with a warning.
        ``settings``: the panels' settings, whose rows may read more than the prompt (Prompted's system prompts)."""
        if (isinstance(prompt, str) and not prompt.strip()) or not prompt:
            raise UserError("prompt: the prompt is empty")
        for m in ([{"content": prompt}] if isinstance(prompt, str) else prompt):  # before any tokenising
            requests.text(m.get("content"), "prompt", MAX_PROMPT_CHARS)
        budget = self.models.max_context() - max_new_tokens
        rows = [s.row(prompt) for s in settings] or [Setting("base").row(prompt)]
        try:
            longest = max(len(ids) for row in rows for ids in self.engine.row_prompt_ids(row).values())
        except ValueError as exc:  # a row the set cannot decode (checked again, with the panel's name, by ``setting``)
            raise UserError(str(exc)) from None
        self._check_budget(settings, longest, max_new_tokens)
        if longest <= budget:
            return prompt, None
        if not isinstance(prompt, str):
            raise UserError(f"prompt: the conversation is {longest} tokens; at most {budget} fit with {max_new_tokens} new tokens")
        tok = self.models.tokenizer
        ids = tok(prompt, add_special_tokens=False)["input_ids"]
        if longest - len(ids) + 8 >= budget:  # what the prompt is wrapped in leaves it no room
            raise UserError(f"prompt: the templates and system prompts around it take {longest - len(ids)} tokens; "
                            f"with {max_new_tokens} new tokens at most {budget} fit")
        keep = max(1, len(ids) - (longest - budget) - 8)  # templates add tokens too: cut a little more
        return tok.decode(ids[-keep:]), (f"the prompt was {longest} tokens; only its last {keep} tokens were kept to fit "
                                         f"the model's context")

    def _check_budget(self, settings: Sequence[Setting], prompt_tokens: int, max_new_tokens: int) -> None:
        """Refuse, before any decoding, a request whose rows × (prompt + new tokens) exceed the server's
        budget (``ModelSets.token_budget``): two Best-of-64 panels on a long prompt would not fit in memory."""
        rows = sum(s.method_.cache_rows(s.n) for s in settings) or 1
        needed, allowed = rows * (min(prompt_tokens, self.models.max_context()) + max_new_tokens), self.sets.token_budget()
        if needed > allowed:
            raise UserError(f"request: {rows} rows of KV cache (the panels' N and candidates) × "
                            f"{prompt_tokens + max_new_tokens} tokens (prompt + max new tokens) = {needed:,} row-tokens; "
                            f"this server allows {allowed:,} per request (max_batch_tokens in the model-set file). "
                            "Lower N, the max new tokens or the prompt's length")

    def generate_pair(self, prompt: Any, settings: Sequence[Setting], cfg: DecodingConfig, blind: bool = False,
                      cancel: threading.Event | None = None, interval_s: float = STREAM_INTERVAL_S) -> Iterator[PairUpdate]:
        """Generate every panel in one batched run, streaming in display order; store them when done.

        Text updates come at most every ``interval_s`` seconds (the first at once): a page redraws
        per update, and on a small machine that work competes with decoding. The last update
        carries the stored ``Pair`` (None when the database refused it: the warning says so and
        the generations wait in memory)."""
        prompt, warning = self.fit_prompt(prompt, cfg.max_new_tokens, settings)
        order = Pair.display_order(len(settings), blind)
        sent = None
        rows = [s.row(prompt) for s in settings]
        finished = None
        for kind, value in self.batcher.stream(rows, cfg, cancel):
            if kind == "results":
                finished = value
                break
            now = time.monotonic()
            if sent is None or now - sent >= interval_s:
                sent = now
                yield PairUpdate(texts=[value[i] for i in order], warning=warning)
        results = [PanelResult(r.text, r.n_tokens, r.finish_reason, r.trace, r.scores, r.forwards_per_token,
                               r.latency_s / max(1, r.n_tokens)) for r in finished]
        try:
            ids = self.records.save(finished, settings, cfg, self.model_set_id)
        except NotStoredError as exc:
            yield PairUpdate(texts=[results[i].text for i in order], done=True, results=[results[i] for i in order],
                             warning="; ".join(w for w in (warning, str(exc)) if w))
            return
        pair = Pair(ids=ids, settings=list(settings), beta=cfg.beta, order=order, results=results, blind=blind,
                    prompt=prompt)
        yield PairUpdate(texts=[results[i].text for i in order], done=True, pair=pair,
                         results=[results[i] for i in order], warning=warning)

    def judge_pair(self, pair: Pair | None, verdict_shown: str, per_objective_shown: dict[str, str], annotator: str,
                   comment: str = "") -> Stored:
        """A vote on a page's pair; verdicts are about the panels as shown (blind mode un-swaps them)."""
        if pair is None:
            raise UserError("generate a pair first, and wait until both panels have finished")
        if pair.voted:
            raise UserError("this pair is already judged; generate a new one")
        per = {o: swap_verdict(v, pair.swapped) for o, v in per_objective_shown.items() if v and o in self.objectives}
        verdict, per = requests.verdicts(self.config, swap_verdict(verdict_shown, pair.swapped), per)
        annotator, comment = requests.name(annotator, "annotator"), requests.text(comment, "comment", MAX_COMMENT_CHARS)
        return self.records.judge(pair.ids, verdict, per, annotator=annotator, comment=comment, blind=pair.blind,
                                  swapped=pair.swapped, key=f"{pair.key}:{annotator}")

    def judge_api(self, generation_a: Any, generation_b: Any, verdict: Any, per_objective: Any, annotator: Any = "",
                  comment: Any = "", key: Any = None) -> Stored:
        """A vote through the API. Without a key of its own, a vote is keyed by its pair and
        annotator: sending it again (its answer lost) returns the stored one; the same key with
        another verdict or comment is refused (``AlreadyJudged``): a change is ``edit_api``."""
        a = requests.generation_id(generation_a, "generation_a_id")
        b = requests.generation_id(generation_b, "generation_b_id")
        verdict, per = requests.verdicts(self.config, verdict, per_objective)
        annotator = requests.name(annotator, "annotator")
        comment = requests.text(comment, "comment", MAX_COMMENT_CHARS)
        key = requests.text(key, "idempotency_key", requests.MAX_NAME_CHARS) if key else \
            self.records.default_key("api", a, b, annotator)
        return self.records.judge([a, b], verdict, per, annotator=annotator, comment=comment, key=key)

    def edit_api(self, judgment_id: Any, verdict: Any, per_objective: Any = None, annotator: Any = None,
                 comment: Any = None) -> Stored:
        """Change a judgment's verdict (an explicit edit; the earlier verdict stays in its history).

        ``annotator`` (None: not checked) must be the judgment's own; ``per_objective`` None or ""
        keeps the stored per-objective verdicts (a JSON object replaces them); ``comment`` None
        keeps the stored comment."""
        jid = requests.generation_id(judgment_id, "judgment_id", what="a judgment id")
        keep_per = per_objective is None or (isinstance(per_objective, str) and not per_objective.strip())
        verdict, per = requests.verdicts(self.config, verdict, "{}" if keep_per else per_objective)
        return self.records.edit(jid, verdict, None if keep_per else per,
                                 comment=None if comment is None else requests.text(comment, "comment", MAX_COMMENT_CHARS),
                                 annotator=None if annotator is None else requests.name(annotator, "annotator"))

    # ------------------------------------------------------------------ studies, prompts, storage

    def submit_study(self, prompts: Sequence[Any], settings: Sequence[Setting], cfg: DecodingConfig, samples: int = 1,
                     judges: Sequence[str] = (), name: str | None = None, owner: str | None = None) -> int:
        """Queue a study of ``settings`` (the base alone is added as the reference) on ``prompts`` (text,
        chats, or records with fields), judged by the set's ``judges`` named here and by each ARM's own
        score (self-scored), for a worker (``app.worker``: a separate process, so the live path keeps the
        server's cores). Returns the job's id. The study's size is capped by ``owner``'s role."""
        role = self.access.role(owner)
        if role not in MAX_COMPLETIONS_BY_ROLE:
            raise UserError(f"studies need the researcher role; {owner!r} is an {role}")
        spec, study_name = dashboard_study_spec(self, prompts, settings, cfg, samples, judges, name,
                                                MAX_COMPLETIONS_BY_ROLE[role])
        return self.records_call(lambda: self.store.enqueue_job("study", study_name, owner or "", spec),
                                 "the study was not queued")

    def jobs(self, viewer: str | None = None):
        """The job queue as a viewer may see it: an admin (or everyone, without logins) every job, others their own."""
        return self.records_call(lambda: self.store.jobs_frame(self.access.own(viewer)), "the job queue was not read")

    def job(self, job_id: int) -> dict[str, Any]:
        found = self.records_call(lambda: self.store.job(job_id), "the job was not read")
        if found is None:
            raise UserError(f"job: no job #{job_id}")
        return found

    def cancel_job(self, job_id: Any, viewer: str | None = None) -> str:
        """Cancel a job from any page: its owner or an admin; a queued job is cancelled at once, a running
        one after the batch in flight (what it stored stays, and running the same study again resumes it)."""
        jid = requests.generation_id(job_id, "job", what="a job number")
        job = self.job(jid)
        if not self.access.sees_all(viewer) and job["owner"] != (viewer or ""):
            raise UserError(f"job: #{jid} is {job['owner']!r}'s; only they or an admin can cancel it")
        status = self.records_call(lambda: self.store.cancel_job(jid), "the job was not cancelled")
        return {"cancelled": f"job #{jid} cancelled before it ran.",
                "running": f"job #{jid}: cancelling after the batch in flight (what is stored stays; run the same study "
                           "again to resume it)."}.get(status, f"job #{jid} is {status} already.")

    def study_report(self, study_id: int, rounds: int = 500):
        from .study_report import build_report

        return self.records_call(lambda: build_report(self.store, study_id, rounds), "the study was not read")

    def studies(self) -> list[dict[str, Any]]:
        return self.records_call(self.store.studies, "the studies were not read")

    def evaluation_prompts(self, n: int) -> list[str]:
        prompts = self.sets.evaluation_prompts(n)
        if prompts is None:
            raise UserError("prompts: this model set ships no held-out prompts (the built-in demo and smollm2 do); "
                            "paste or upload prompts")
        return prompts

    def records_call(self, fn: Callable[[], Any], what: str) -> Any:
        try:
            return fn()
        except StorageError as exc:
            raise UserError(f"{what}: {exc}") from None

    @property
    def pending(self) -> int:
        return self.records.pending

    def close(self) -> None:
        """At shutdown: what the spool holds goes to the database (if it takes it), then the store closes."""
        drained = self.records.drain()
        if drained:
            log.warning("wrote %d spooled generations to the database at shutdown", drained)
        left = self.records.pending
        if left:
            log.warning("%d generations stay in the spool %s; the next start writes them", left, self.records.spool.path)
        self.records.close()
        self.store.close()


__all__ = ["AppContext", "PAIR_CONCURRENCY", "UserError", "AlreadyJudged", "NotStoredError", "PairUpdate", "Pair", "PanelResult", "PANEL_NAMES", "VERDICTS",
           "EXPORT_CHOICES", "METHOD_LABELS", "METHODS", "method_named", "judgment_filter", "setting_name", "win_rates", "parse_chat", "parse_grid",
           "read_prompt_list", "human_count", "swap_verdict"]
