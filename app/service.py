"""What the dashboard does, without the dashboard: validation, generation, judging, sweeps.

The Gradio layer (``app.ui``) only lays out components and calls these functions; the API
endpoints call the same ones. Every generation and judgment is written through ``storage``.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

from genarm_core.config import METHODS, DecodingConfig, ModelSetConfig, RowSpec
from genarm_core.engine import GenARMEngine, RowResult
from genarm_core.loading import ModelSet, load_model_set
from genarm_core.prompts import PromptFileError, parse_prompt_lines, read_prompt_file
from storage.db import StorageError
from storage.store import Store, setting_label

METHOD_LABELS = {"GenARM": "genarm", "Base only": "base", "Best-of-N": "best_of_n"}


class UserError(ValueError):
    """Bad input from a person or an API client; the message is shown as it is."""


class NotStoredError(UserError):
    """The database refused a write; what was being written is kept in memory (``AppContext.save``)."""


@dataclass
class PanelSpec:
    """One panel's own settings."""

    method: str = "genarm"
    weights: dict[str, float] = field(default_factory=dict)
    n: int = 4

    def row(self, prompt: Any) -> RowSpec:
        return RowSpec(prompt, self.weights if self.method != "base" else {}, method=self.method,
                       n=self.n if self.method == "best_of_n" else 1)

    def label(self, beta: float) -> str:
        return setting_label(self.method, self.weights if self.method != "base" else {}, beta) + (
            f" (N={self.n})" if self.method == "best_of_n" else "")


@dataclass
class PairUpdate:
    """A streaming update: text per panel, whether all finished, and the stored generation ids."""

    texts: list[str]
    done: bool = False
    results: list[RowResult] | None = None
    generation_ids: list[int] | None = None
    warning: str | None = None


class AppContext:
    """The loaded model set, its engine and the store: one object handed to the UI (no globals).

    ``model_sets`` maps a display name to a model-set file the server allows; the browser can
    choose among them, never name a path of its own. The lock keeps two model-set switches from
    racing; generations are serialised by the app's queue.
    """

    def __init__(self, model_sets: dict[str, Path], store: Store, initial: str | None = None, panels: int = 2):
        if not model_sets:
            raise ValueError("at least one model set is needed")
        self.model_sets = dict(model_sets)
        self.store = store
        self.panels = panels
        self._lock = threading.Lock()
        # Generations the database refused (unreachable, locked, full): kept here and written first
        # by the next save that succeeds, so a database outage loses nothing while the app runs.
        self._pending: list[dict[str, Any]] = []
        self._pending_lock = threading.Lock()
        self.models: ModelSet | None = None
        self.engine: GenARMEngine | None = None
        self.model_set_id: int | None = None
        self.current = ""
        self.load(initial or next(iter(self.model_sets)))

    # ------------------------------------------------------------------ model sets

    def load(self, name: str) -> None:
        if name not in self.model_sets:
            raise UserError(f"unknown model set {name!r}; choose one of {sorted(self.model_sets)}")
        with self._lock:
            # Load the new set before dropping the old one: a set that fails to load leaves the
            # dashboard on the set it had (load_model_set itself keeps nothing half-loaded).
            models = load_model_set(self.model_sets[name])
            old = self.models
            self.models, self.engine, self.current = models, GenARMEngine(models), name
            if old is not None:
                old.close()
            spec = models.config.to_dict()
            spec["fingerprints"] = models.fingerprints
            self.model_set_id = self.store.register_model_set(models.config.name, spec)

    @property
    def config(self) -> ModelSetConfig:
        assert self.models is not None
        return self.models.config

    @property
    def objectives(self) -> list[str]:
        return self.config.objective_names

    def training_logs(self) -> dict[str, dict[str, Any]]:
        """Per loaded ARM, what its training left beside it (``train-arm`` writes both files):
        ``history`` (the Trainer's log entries) and ``metrics`` (held-out accuracy before/after).
        ARMs from elsewhere (a hub id, another tool) simply have none."""
        import json

        out: dict[str, dict[str, Any]] = {}
        for name, arm in self.models.arms.items():
            folder = Path(arm.spec.adapter or arm.spec.path)
            entry: dict[str, Any] = {}
            for key, file in (("history", "log_history.json"), ("metrics", "metrics.json")):
                try:
                    entry[key] = json.loads((folder / file).read_text())
                except (OSError, ValueError):
                    continue
            if entry:
                out[name] = entry
        return out

    def objectives_of_all_sets(self) -> dict[str, Any]:
        """Every objective of every model set this server offers (the loaded set's first), each with
        the settings of the first set that names it: the page lays out one slider per objective and
        shows those of the loaded set, so switching sets needs no new page."""
        out: dict[str, Any] = {o.name: o for o in self.config.objectives}
        for name, path in self.model_sets.items():
            if name == self.current:
                continue
            try:
                cfg = ModelSetConfig.from_file(path)
            except ValueError:
                continue  # a broken file is reported when someone tries to load it
            for o in cfg.objectives:
                out.setdefault(o.name, o)
        return out

    # ------------------------------------------------------------------ validation

    def decoding(self, beta: Any, temperature: Any, top_k: Any, top_p: Any, max_new_tokens: Any, seed: Any,
                 trace: bool = True) -> DecodingConfig:
        try:
            beta, temperature, top_p = float(beta), float(temperature), float(top_p)
            top_k, max_new_tokens, seed = int(top_k), int(max_new_tokens), int(seed)
        except (TypeError, ValueError):
            raise UserError("decoding settings must be numbers") from None
        cap = self.config.max_new_tokens_cap
        if max_new_tokens > cap:
            raise UserError(f"max new tokens is {max_new_tokens}; this server allows at most {cap}")
        try:
            return DecodingConfig(beta=beta, temperature=temperature, top_k=top_k, top_p=top_p,
                                  max_new_tokens=max_new_tokens, seed=seed, stop=self.config.defaults.stop, trace=trace)
        except ValueError as exc:
            raise UserError(str(exc)) from None

    def panel(self, method: str, weights: dict[str, Any], n: Any = 4) -> PanelSpec:
        method = METHOD_LABELS.get(method, method)
        if method not in METHODS:
            raise UserError(f"method must be one of {list(METHOD_LABELS)}, got {method!r}")
        clean: dict[str, float] = {}
        for obj in self.config.objectives:
            raw = weights.get(obj.name, 0.0)
            try:
                w = float(raw)
            except (TypeError, ValueError):
                raise UserError(f"weight of {obj.name!r} must be a number, got {raw!r}") from None
            if not math.isfinite(w) or not obj.min_weight <= w <= obj.max_weight:
                raise UserError(f"weight of {obj.name!r} must be between {obj.min_weight:g} and {obj.max_weight:g}, got {raw!r}")
            clean[obj.name] = w
        unknown = set(weights) - set(clean)
        if unknown:
            raise UserError(f"unknown objective(s) {sorted(unknown)}; this model set has {self.objectives}")
        try:
            n = int(n)
        except (TypeError, ValueError):
            raise UserError("N must be an integer") from None
        if method == "best_of_n" and not 1 <= n <= 16:
            raise UserError("Best-of-N needs 1 <= N <= 16")
        return PanelSpec(method, clean, n)

    def fit_prompt(self, prompt: Any, max_new_tokens: int) -> tuple[Any, str | None]:
        """Check the prompt; cut a too-long text prompt from the left (keeping its end) with a warning."""
        if isinstance(prompt, str):
            if not prompt.strip():
                raise UserError("the prompt is empty")
        elif not prompt:
            raise UserError("the prompt is empty")
        assert self.engine is not None and self.models is not None
        budget = self.models.max_context() - max_new_tokens
        longest = max(len(ids) for ids in self.engine.prompt_ids(prompt).values())
        if longest <= budget:
            return prompt, None
        if not isinstance(prompt, str):
            raise UserError(f"the conversation is {longest} tokens; at most {budget} fit with {max_new_tokens} new tokens")
        tok = self.models.tokenizer
        ids = tok(prompt, add_special_tokens=False)["input_ids"]
        # Templates add tokens too: cut a little more than the difference.
        keep = max(1, len(ids) - (longest - budget) - 8)
        cut = tok.decode(ids[-keep:])
        return cut, f"the prompt was {longest} tokens; only its last {keep} tokens were kept to fit the model's context"

    # ------------------------------------------------------------------ generation

    def generate(self, prompt: Any, panels: Sequence[PanelSpec], cfg: DecodingConfig,
                 cancel: threading.Event | None = None) -> Iterator[PairUpdate]:
        """Generate every panel in one batched run, streaming; store every generation when done."""
        if self.engine is None:
            raise UserError("no model set is loaded")
        prompt, warning = self.fit_prompt(prompt, cfg.max_new_tokens)
        rows = [p.row(prompt) for p in panels]
        last = None
        for event in self.engine.stream(rows, cfg, cancel):
            last = event
            if not event.finished:
                yield PairUpdate(texts=event.texts, warning=warning)
        assert last is not None and last.results is not None
        try:
            ids = self.save(last.results, cfg)
        except NotStoredError as exc:
            ids, warning = None, "; ".join(w for w in (warning, str(exc)) if w)
        yield PairUpdate(texts=[r.text for r in last.results], done=True, results=last.results,
                         generation_ids=ids, warning=warning)

    def save(self, results: Sequence[RowResult], cfg: DecodingConfig, sweep_id: int | None = None) -> list[int]:
        """Store generations (after any the database refused earlier); returns their ids.

        Raises:
            NotStoredError: the database refused the write; the records are kept for the next save.
        """
        records = []
        for r in results:
            prompt_text = r.prompt if isinstance(r.prompt, str) else "\n".join(f"{m['role']}: {m['content']}" for m in r.prompt)
            records.append(dict(
                prompt=prompt_text, prompt_messages=None if isinstance(r.prompt, str) else list(r.prompt),
                completion=r.text, method=r.method, weights=r.weights, beta=cfg.beta, temperature=cfg.temperature,
                top_k=cfg.top_k, top_p=cfg.top_p, max_new_tokens=cfg.max_new_tokens, seed=cfg.seed,
                settings={**cfg.to_dict(), "n": len(r.candidates) if r.candidates else 1}, n_tokens=r.n_tokens,
                latency_s=r.latency_s, finish_reason=r.finish_reason, scores=r.scores, trace=r.trace,
                model_set_id=self.model_set_id, sweep_id=sweep_id))
        with self._pending_lock:
            batch = self._pending + records
            try:
                ids = self.store.add_generations(batch)
            except StorageError as exc:
                self._pending = batch
                raise NotStoredError(f"not stored: {exc}. {len(batch)} generation(s) are kept in memory and will be "
                                     f"written with the next one once the database is back (judging needs them stored)") from None
            self._pending = []
        return ids[len(batch) - len(records):]

    @property
    def pending(self) -> int:
        """How many generations wait for the database."""
        return len(self._pending)

    def judge(self, generation_ids: Sequence[int], verdict: str, objective_verdicts: dict[str, str] | None = None,
              annotator: str = "", comment: str = "", blind: bool = False, swapped: bool = False) -> int:
        """Record a verdict on the first two generations of a finished pair. ``verdict`` is about A and B
        as stored (the caller un-swaps blind displays)."""
        if not generation_ids or len(generation_ids) < 2:
            raise UserError("generate a pair first, and wait until both panels have finished")
        try:
            return self.store.add_judgment(int(generation_ids[0]), int(generation_ids[1]), verdict,
                                           objective_verdicts or {}, annotator=annotator or "", comment=comment or "",
                                           blind=blind, swapped=swapped)
        except ValueError as exc:
            raise UserError(str(exc)) from None
        except StorageError as exc:
            raise UserError(f"the judgment was not stored: {exc}. Vote again once the database is back") from None

    # ------------------------------------------------------------------ sweeps

    def sweep(self, prompts: Sequence[Any], grid: dict[str, Sequence[float]], cfg: DecodingConfig, samples: int = 1,
              cancel: threading.Event | None = None, batch_rows: int = 64, name: str = "sweep") -> Iterator[tuple[float, Any]]:
        """Run every weight setting of ``grid`` (a product over objectives) on every prompt.

        Yields ``(fraction done, None)`` while running and ``(1.0, (sweep_id, frame))`` at the end,
        where ``frame`` has one row per completion with ``w_<obj>`` and ``score_<obj>`` columns.
        Rows of different settings and prompts run batched together.
        """
        import pandas as pd

        if not prompts:
            raise UserError("no prompts to sweep")
        names = [n for n in self.objectives if n in grid] or self.objectives
        for n, values in grid.items():
            if n not in self.objectives:
                raise UserError(f"unknown objective {n!r} in the grid")
            if not values:
                raise UserError(f"no weights for {n!r}")
        points = [dict(zip(names, combo)) for combo in itertools.product(*(grid.get(n, [0.0]) for n in names))]
        if len(points) * len(prompts) * samples > 20000:
            raise UserError("that sweep is larger than 20,000 completions; use fewer prompts or grid points")
        for p in points:
            self.panel("genarm", p)  # range checks
        cfg = dataclasses.replace(cfg, trace=False, score_all=True)
        try:
            sweep_id = self.store.create_sweep(name, {"grid": {k: list(v) for k, v in grid.items()}, "samples": samples,
                                                      "prompts": len(prompts), "settings": cfg.to_dict(),
                                                      "model_set": self.current})
        except StorageError as exc:
            raise UserError(f"the sweep was not started: {exc}") from None
        jobs = [(point, prompt) for point in points for prompt in prompts]
        records = []
        done = 0
        for s in range(samples):  # each sample is a run over every job, with its own seed
            run_cfg = dataclasses.replace(cfg, seed=cfg.seed + s)
            for start in range(0, len(jobs), batch_rows):
                if cancel is not None and cancel.is_set():
                    raise UserError("sweep cancelled")
                group = jobs[start:start + batch_rows]
                results = self.engine.generate([RowSpec(pr, pt) for pt, pr in group], run_cfg, cancel)
                ids = self.save(results, run_cfg, sweep_id=sweep_id)
                for (pt, pr), r, gid in zip(group, results, ids):
                    records.append({"generation_id": gid, "setting": setting_label("genarm", pt, cfg.beta),
                                    "prompt": pr if isinstance(pr, str) else str(pr), "completion": r.text, "sample": s,
                                    **{f"w_{k}": v for k, v in pt.items()},
                                    **{f"score_{k}": v for k, v in r.scores.items()}})
                done += len(group)
                yield done / (len(jobs) * samples), None
        yield 1.0, (sweep_id, pd.DataFrame.from_records(records))


_ROLES = {"user": "user", "human": "user", "assistant": "assistant", "system": "system"}


def parse_chat(text: str) -> list[dict[str, str]]:
    """A multi-turn prompt typed as lines ``User: …`` / ``Assistant: …`` (``System:`` too) -> messages.

    Lines without a role marker continue the previous message; text with no marker at all is one
    user message. The conversation must end with a user turn (the model answers it).
    """
    import re

    messages: list[dict[str, str]] = []
    for line in text.splitlines():
        m = re.match(r"^\s*(user|human|assistant|system)\s*:\s?(.*)$", line, flags=re.IGNORECASE)
        if m:
            messages.append({"role": _ROLES[m.group(1).lower()], "content": m.group(2)})
        elif messages:
            messages[-1]["content"] += "\n" + line
        elif line.strip():
            messages.append({"role": "user", "content": line})
    messages = [{"role": m["role"], "content": m["content"].strip()} for m in messages]
    if not messages or not any(m["content"] for m in messages):
        raise UserError("the prompt is empty")
    if messages[-1]["role"] != "user":
        raise UserError("a chat prompt must end with a 'User:' turn for the model to answer")
    return messages


def parse_grid(text: str, objectives: Sequence[str]) -> dict[str, list[float]]:
    """``"helpfulness: 0, 1, 2; harmlessness: 0, 2"`` -> ``{"helpfulness": [0, 1, 2], "harmlessness": [0, 2]}``.

    ``a:b:n`` inside the list expands to n evenly spaced values from a to b.
    """
    grid: dict[str, list[float]] = {}
    for part in text.replace("\n", ";").split(";"):
        if not part.strip():
            continue
        name, sep, values = part.partition(":")
        name = name.strip()
        if not sep or name not in objectives:
            raise UserError(f"grid: expected 'objective: w1, w2, ...' with an objective of {list(objectives)}, got {part.strip()!r}")
        out: list[float] = []
        for v in values.split(","):
            v = v.strip()
            if not v:
                continue
            parts = v.split(":")
            try:
                if len(parts) == 3:  # a:b:n
                    a, b, n = float(parts[0]), float(parts[1]), int(parts[2])
                elif len(parts) == 1:
                    out.append(float(v))
                    continue
                else:
                    raise ValueError
            except ValueError:
                raise UserError(f"grid: {v!r} is neither a number nor 'from:to:count' such as 0:2:5") from None
            if not 1 <= n <= 101:
                raise UserError(f"grid: {v!r} asks for {n} values; give between 1 and 101")
            out += [a + (b - a) * i / max(1, n - 1) for i in range(n)]
        grid[name] = out
    if not grid:
        raise UserError("the grid is empty; e.g. 'helpfulness: 0, 1, 2; harmlessness: 0, 1, 2'")
    return grid


def read_prompt_list(text: str | None = None, path: str | None = None, limit: int = 500) -> list[Any]:
    """Prompts from pasted lines and/or an uploaded file (``genarm_core.prompts`` says which lines count)."""
    prompts: list[Any] = []
    try:
        if text:
            prompts += parse_prompt_lines(text.splitlines(), "pasted list")
        if path:
            prompts += read_prompt_file(path)
    except PromptFileError as exc:
        raise UserError(str(exc)) from None
    if len(prompts) > limit:
        raise UserError(f"{len(prompts)} prompts; at most {limit} per sweep")
    return prompts
