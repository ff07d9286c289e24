"""Running a study: every cell through the one engine, stored; every judge's scores and verdicts stored.

A study is resumable and may run on several processes (``accelerate launch -m app.cli study
run``): the study's engine batches are fixed by the file (``Study.batches``), the batches with a
cell not yet stored are split between the processes with accelerate's
``PartialState.split_between_processes``, and each process writes its cells to the one database.
A batch is stored in one transaction, so a killed run loses at most the batches in flight; a
rerun skips every stored cell, and scores whatever a judge has not scored yet (a judge added
to the file later, or a run killed between storing and scoring).

Order per process: generate its batches (each judged by the scoring judges and the model-free
metrics right after it is stored); wait for the others; score anything left unscored; judge
the pairs (setting vs the reference on the same prompt and sample) with the pairwise judges.
"""

from __future__ import annotations

import dataclasses
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from genarm_core.models.config import ConfigError, ModelSetConfig
from genarm_core.evaluation.judges import Item, JudgeSpec, arm_judge_entry, build_judge
from genarm_core.evaluation.metrics import METRICS, cost_metrics
from genarm_core.evaluation.study import Cell, Study, ground_truth_key, load_prompt_records
from sqlalchemy.exc import IntegrityError

from storage.store import Store

from .errors import Cancelled, UserError
from .records import generation_record

#: A judge's ``path`` that means the model set's base model ("the base itself as judge").
BASE_PATH = "@base"
#: Pairs a pairwise judge is given at once (each is two prompts: both orders).
VERDICT_BATCH = 16


@dataclass
class StudyRun:
    """What one process did."""

    study_id: int
    created: bool
    cells: int  # in the study
    stored_before: int  # already stored when this run began
    generated: int  # by this process
    scores: int  # judge scores added by this process
    verdicts: int  # pairwise verdicts added by this process
    seconds: float


class _Single:
    """accelerate's ``PartialState`` for a plain single-process run (no launcher, nothing initialised)."""

    num_processes, process_index, is_main_process = 1, 0, True

    def wait_for_everyone(self) -> None:
        pass

    def split_between_processes(self, items):
        import contextlib

        return contextlib.nullcontext(items)


def process_state():
    """accelerate's ``PartialState`` when started by a launcher with several processes (``accelerate
    launch --multi_gpu --num_processes N``, or ``torchrun``), else a single process. Without CUDA the
    processes talk over gloo on the CPU; with it, each process's "cuda" is its own local GPU."""
    import os

    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return _Single()
    import torch
    from accelerate import PartialState

    state = PartialState(cpu=not torch.cuda.is_available())
    if torch.cuda.is_available():
        torch.cuda.set_device(state.local_process_index)
    return state


def study_judges(study: Study, config: ModelSetConfig, set_judges: bool = True) -> list[JudgeSpec]:
    """The model set's judges (unless ``set_judges`` is False), then the study's (a study entry
    replaces the set's of the same name);
    checked against the set: an ``arm`` judge names one of its objectives, and a reward model that
    is one of the guiding ARMs is marked self-scored."""
    specs = {j.name: j for j in config.judges} if set_judges else {}
    specs.update({j.name: j for j in study.judges})
    arm_paths = {o.model.adapter or o.model.path for o in config.objectives}
    out = []
    for spec in specs.values():
        if spec.options.get("path") == BASE_PATH:  # the set's own base model as a judge
            spec = dataclasses.replace(spec, options={**spec.options, "path": config.base.path,
                                                      "tokenizer": spec.options.get("tokenizer") or config.base.tokenizer})
        if spec.name in METRICS:
            raise ConfigError(f"{spec.source}: judges.{spec.name}: that name is a built-in metric; call the judge otherwise")
        if spec.objective is not None and spec.objective not in config.objective_names:
            raise ConfigError(f"{spec.source}: judges.{spec.name}.objective: {spec.objective!r} is not an "
                              f"objective of this model set ({', '.join(config.objective_names)})")
        if spec.model_path is not None and spec.model_path in arm_paths and not spec.self_scored:
            spec = dataclasses.replace(spec, self_scored=True)
        out.append(spec)
    return out


def check_settings(study: Study, config: ModelSetConfig) -> None:
    """Every setting's objectives and weights are the model set's (the message names the setting)."""
    for s in study.settings:
        try:
            config.setting(s.method, s.weight_map, s.n)
        except ConfigError as exc:
            raise ConfigError(f"{study.source}: settings: {s.label}: {exc}") from None


def _rows(batch: Sequence[Cell]) -> int:
    return sum(c.setting.batch_rows for c in batch)


class StudyRunner:
    """One study on one loaded model set and one store (one process's part of it)."""

    def __init__(self, study: Study, store: Store, engine: Any, models_yaml: str | Path,
                 state: Any = None, progress: bool = True, log: Callable[[str], None] | None = None,
                 set_judges: bool = True):
        self.engine, self.store = engine, store
        self.config: ModelSetConfig = engine.models.config
        self.state = state or _Single()
        self.progress = progress and self.state.is_main_process
        self.log = log or (lambda msg: print(msg, file=sys.stderr))
        check_settings(study, self.config)
        self.study = study.with_records(load_prompt_records(study, models_yaml))
        self.specs = study_judges(study, self.config, set_judges)
        self.judges = [build_judge(s) for s in self.specs]
        spec = self.config.to_dict()
        spec.pop("source", None)
        spec["fingerprints"] = engine.models.fingerprints
        config = {**self.study.to_dict(), "judges": {s.name: {**s.to_dict(), "self_scored": s.self_scored} for s in self.specs}}
        # The main process registers the model set and opens the study (and stores the ground truth)
        # before the others look them up: two processes creating the same rows at once could fail on the
        # unique keys or a locked SQLite file. One barrier each, so they match.
        if not self.state.is_main_process:
            self.state.wait_for_everyone()
        self.model_set_id = store.register_model_set(self.config.name, spec)
        self.study_id, self.created = store.open_study(self.study.name, self.study.key(spec), config)
        self.cells = {c.key: c for c in self.study.cells()}
        self._store_ground_truth()
        if self.state.is_main_process:
            self.state.wait_for_everyone()

    def ground_truth(self) -> list[dict[str, str]]:
        """The study's ground-truth pairs, then its model set's (``ground_truth:`` in either file)."""
        own = [dict(g) for g in self.study.ground_truth]
        return own + [dict(g) for g in self.config.ground_truth if dict(g) not in own]

    def _store_ground_truth(self) -> None:
        """The ground-truth pairs as two generations each (the given texts, method base), once."""
        stored = self.store.study_cells(self.study_id)
        records = []
        for i, g in enumerate(self.ground_truth()):
            for side in ("a", "b"):
                key = ground_truth_key(i, side)
                if key not in stored:
                    records.append({"prompt": g["prompt"], "completion": g[side], "method": "base", "weights": {},
                                    "setting": {"method": "base", "weights": {}, "n": 1}, "n_tokens": 0, "latency_s": 0.0,
                                    "beta": 1.0, "temperature": 0.0, "top_k": 0, "top_p": 1.0, "max_new_tokens": 1, "seed": 0,
                                    "finish_reason": "given", "scores": {}, "settings": {"ground_truth": g["answer"]},
                                    "model_set_id": self.model_set_id, "study_id": self.study_id, "cell": key})
        if records and self.state.is_main_process:
            try:
                self.store.add_generations(records)
            except IntegrityError:  # another run stored them a moment ago (the (study, cell) key)
                if len(self.store.study_cells(self.study_id)) == len(stored):
                    raise

    # ------------------------------------------------------------------ items

    def _item(self, cell: Cell, completion: str, arm_scores: dict[str, float]) -> Item:
        record = self.study.prompts[cell.prompt_index]
        return Item(record["prompt"], completion, {k: v for k, v in record.items() if k != "prompt"}, dict(arm_scores or {}))

    def _score(self, rows: Sequence[dict[str, Any]]) -> int:
        """Score stored generations (``id``, ``cell``, ``completion``, ``scores`` and the metric inputs)
        with every scoring judge that has not scored them, and the metrics; store the scores."""
        if not rows:
            return 0
        ids = [r["id"] for r in rows]
        added = 0
        for judge in [j for j in self.judges if j.spec.scores]:
            done = self.store.scored(ids, judge.name)
            todo = [r for r in rows if r["id"] not in done]
            if not todo:
                continue
            try:
                values = judge.score([self._item(self.cells[r["cell"]], r["completion"], r.get("scores")) for r in todo])
            except Exception as exc:  # noqa: BLE001 - a judge is user code; its failure is named, the cells stay stored
                raise UserError(f"judge {judge.name!r} ({judge.kind}) failed: {type(exc).__name__}: {exc}. The completions "
                                "are stored; fix the judge and run the study again to score them") from None
            added += self.store.add_judge_scores([{"generation_id": r["id"], "judge": judge.name, "value": v,
                                                   "self_scored": judge.self_scored} for r, v in zip(todo, values)])
        done = self.store.scored(ids, METRICS[0])
        todo = [r for r in rows if r["id"] not in done]
        metric_rows = [{"generation_id": r["id"], "judge": name, "value": value}
                       for r in todo for name, value in cost_metrics(r["completion"], r["n_tokens"], r["finish_reason"],
                                                                     r["latency_s"], r.get("kl_to_base"),
                                                                     r.get("forwards_per_token")).items()]
        return added + self.store.add_judge_scores(metric_rows)

    # ------------------------------------------------------------------ phases

    def run(self, cancel: threading.Event | None = None) -> StudyRun:
        """Every phase to the end (see the module docstring)."""
        outcome = None
        for outcome in self.steps(cancel):
            pass
        return outcome

    def steps(self, cancel: threading.Event | None = None):
        """The run as a generator: yields the fraction of this process's rows done after each batch
        (then 1.0 while judging), and finally the ``StudyRun``."""
        t0 = time.perf_counter()
        # Every process must split the same list: all read the stored cells before any stores its first
        # batch (else a process that reads late sees fewer pending batches, the splits disagree, and the
        # batches between them are run by no one: seen as 20 of 24 cells stored, exit 0).
        self.state.wait_for_everyone()
        stored = {k: v for k, v in self.store.study_cells(self.study_id).items() if k in self.cells}
        pending = [b for b in self.study.batches() if any(c.key not in stored for c in b)]
        self.state.wait_for_everyone()
        generated = scores = verdicts = 0
        with self.state.split_between_processes(pending) as mine:
            mine = list(mine)
            # The bar counts engine rows (a Best-of-N cell is N of them), so its estimate is honest
            # when the settings cost differently.
            total = sum(_rows(b) for b in mine)
            if self.state.is_main_process:
                self.log(f"study {self.study.name!r} (#{self.study_id}): {len(self.cells)} cells, {len(stored)} stored, "
                         f"{sum(len(b) for b in pending)} in {len(pending)} batches to run"
                         + (f" on {self.state.num_processes} processes" if self.state.num_processes > 1 else ""))
            from tqdm.auto import tqdm

            bar = tqdm(total=total, desc=f"study {self.study.name}", unit="row", disable=not self.progress)
            done = 0
            for batch in mine:
                if cancel is not None and cancel.is_set():
                    bar.close()
                    raise Cancelled(f"study #{self.study_id} cancelled: {len(stored) + generated} of {len(self.cells)} cells are "
                                    "stored; run the same study again to resume from there")
                g, s = self._run_batch(batch)
                generated, scores = generated + g, scores + s
                bar.update(_rows(batch))
                done += _rows(batch)
                yield done / max(1, total)
            bar.close()
        self.state.wait_for_everyone()
        scores += self._score_left()
        self.state.wait_for_everyone()
        verdicts = self._judge_pairs()
        self.state.wait_for_everyone()
        yield StudyRun(self.study_id, self.created, len(self.cells), len(stored), generated, scores, verdicts,
                       time.perf_counter() - t0)

    def _run_batch(self, batch: list[Cell]) -> tuple[int, int]:
        cfg = dataclasses.replace(self.study.decoding, seed=self.study.seed + batch[0].sample, trace=False,
                                  score_all=any(j.spec.reads_arm_scores for j in self.judges))
        results = self.engine.generate([c.setting.row(self.study.prompts[c.prompt_index]["prompt"]) for c in batch], cfg)
        stored = self.store.study_cells(self.study_id)  # another run may have stored some meanwhile
        keep = [(c, r) for c, r in zip(batch, results) if c.key not in stored]
        if not keep:
            return 0, 0
        records = [generation_record(r, c.setting, cfg, self.model_set_id, study_id=self.study_id, cell=c.key) for c, r in keep]
        ids = self.store.add_generations(records)
        rows = [{"id": i, "cell": c.key, "completion": r.text, "scores": r.scores, "n_tokens": r.n_tokens,
                 "finish_reason": r.finish_reason, "latency_s": r.latency_s, "kl_to_base": r.kl_to_base,
                 "forwards_per_token": r.forwards_per_token} for i, (c, r) in zip(ids, keep)]
        return len(keep), self._score(rows)

    def _stored_rows(self) -> list[dict[str, Any]]:
        frame = self.store.generations_frame(study_id=self.study_id)
        if frame.empty:
            return []
        metrics = self.store.judge_scores_frame(study_id=self.study_id)
        known = {(g, j): v for g, j, v in zip(metrics["generation_id"], metrics["judge"], metrics["value"])}
        rows = []
        for r in frame.to_dict("records"):
            if r["cell"] not in self.cells:
                continue
            rows.append({**r, "kl_to_base": known.get((r["id"], "kl_to_base")),
                         "forwards_per_token": known.get((r["id"], "forwards_per_token")),
                         "scores": {k[len("score_"):]: v for k, v in r.items() if k.startswith("score_") and v == v}})
        return rows

    def _score_left(self) -> int:
        """Score what no judge of this run has scored (a new judge; a kill between store and score).
        The KL and forwards of such a generation are lost with its result; they stay unknown (None)."""
        rows = self._stored_rows()
        with self.state.split_between_processes(rows) as mine:
            return self._score(list(mine))

    def _judge_pairs(self) -> int:
        pairwise = [j for j in self.judges if j.spec.pairwise]
        if not pairwise:
            return 0
        rows = {r["cell"]: r for r in self._stored_rows()}
        ref = self.study.reference
        pairs = []
        for key, r in rows.items():
            cell = self.cells[key]
            if cell.setting == ref:
                continue
            ref_row = rows.get(Cell(ref, cell.prompt_index, cell.sample).key)
            if ref_row is not None:
                pairs.append((cell, r, ref_row))
        done = self.store.judge_verdicts_frame(study_id=self.study_id)
        have = set(zip(done["judge"], done["generation_a_id"], done["generation_b_id"]))
        added = 0
        with self.state.split_between_processes(pairs) as mine:
            mine = list(mine)
            todo_by = {j.name: [p for p in mine if (j.name, p[1]["id"], p[2]["id"]) not in have] for j in pairwise}
            from tqdm.auto import tqdm

            bar = tqdm(total=sum(len(t) for t in todo_by.values()), desc=f"pairwise judges {self.study.name}",
                       unit="pair", disable=not self.progress)
            for judge in pairwise:
                todo = todo_by[judge.name]
                for start in range(0, len(todo), VERDICT_BATCH):
                    chunk = todo[start:start + VERDICT_BATCH]
                    out = judge.verdicts([(self._item(c, a["completion"], {}), self._item(c, b["completion"], {}))
                                          for c, a, b in chunk])
                    added += self.store.add_judge_verdicts([
                        {"study_id": self.study_id, "judge": judge.name, "generation_a_id": a["id"],
                         "generation_b_id": b["id"], "verdict": v.verdict, "consistent": v.consistent, "details": v.details}
                        for (c, a, b), v in zip(chunk, out)])
                    bar.update(len(chunk))
            bar.close()
        return added

    def close(self) -> None:
        for j in self.judges:
            j.close()


# ---------------------------------------------------------------------------------------- the dashboard's studies

#: The most completions one dashboard study may ask for (a file-run study has no such cap).
MAX_COMPLETIONS = 20000


def grid_settings(config: ModelSetConfig, grid: dict[str, Sequence[float]]) -> list[Any]:
    """Every point of a weight grid (a product over the named objectives) as a checked GenARM ``Setting``."""
    import itertools

    from .requests import setting as check_setting

    names = [n for n in config.objective_names if n in grid]
    for n, values in grid.items():
        if n not in config.objective_names:
            raise UserError(f"grid: unknown objective {n!r}")
        if not values:
            raise UserError(f"grid: no weights for {n!r}")
    points = [dict(zip(names, combo)) for combo in itertools.product(*(grid[n] for n in names))]
    return [check_setting(config, "genarm", p, where="grid") for p in points]


def arm_judge_name(objective: str) -> str:
    return f"{objective} ARM"


#: The most completions one study may ask for, by the role of who asks (an annotator runs no study).
MAX_COMPLETIONS_BY_ROLE = {"researcher": MAX_COMPLETIONS, "admin": 10 * MAX_COMPLETIONS}


def dashboard_study_spec(ctx: Any, prompts: Sequence[Any], settings: Sequence[Any], cfg: Any, samples: int = 1,
                         judges: Sequence[str] = (), name: str | None = None,
                         max_completions: int = MAX_COMPLETIONS) -> tuple[dict[str, Any], str]:
    """A study from the Studies tab as a job's spec (for ``AppContext.submit_study``): the loaded set, the
    base alone as the reference, the judges picked and each ARM's own score; checked whole (and against
    ``max_completions``) before it is queued. Returns (spec, name)."""
    from datetime import datetime

    from genarm_core.evaluation.study import parse_study

    if not prompts:
        raise UserError("prompts: none to run")
    if not settings:
        raise UserError("settings: give a weight grid or a Best-of-N")
    config: ModelSetConfig = ctx.config
    known = {j.name for j in config.judges}
    unknown = [j for j in judges if j not in known]
    if unknown:
        raise UserError(f"judges: {unknown} are not judges of this model set ({', '.join(sorted(known)) or 'it declares none'})")
    records = [p if isinstance(p, dict) else {"prompt": list(p) if not isinstance(p, str) else p} for p in prompts]
    total = samples * len(records) * (1 + sum(s.batch_rows for s in settings))
    if total > max_completions:
        raise UserError(f"that study is {total:,} completions, more than the {max_completions:,} your role may run; "
                        "use fewer prompts, settings or samples")
    own = {j.name: j.to_dict() for j in config.judges if j.name in judges}
    arms = {arm_judge_name(o): arm_judge_entry(o) for o in config.objective_names}
    decoding = {k: v for k, v in cfg.to_dict().items() if k not in ("trace", "score_all")}
    name = name or f"dashboard {datetime.now():%Y-%m-%d %H:%M:%S}"
    data = {"name": name, "model_set": str(Path(ctx.sets.files[ctx.sets.current]).resolve()), "prompts": records,
            "samples": samples, "seed": decoding.pop("seed"), "decoding": decoding,
            "settings": ["base", *[s.to_dict() for s in settings]], "judges": {**own, **arms}}
    try:
        parse_study(data, "the Studies tab")
    except ConfigError as exc:
        raise UserError(str(exc)) from None
    return {"study": data, "root": ".", "set_judges": False}, name  # only the judges picked here


def job_spec(study_file: str) -> tuple[dict[str, Any], str]:
    """A study file as a job's spec (what a worker on any machine can run): its data, with a prompt
    file's prompts read now (the worker may not have the file) and the model-set path made absolute
    (a built-in set's name stays a name). Returns (spec, the study's name).

    Raises:
        ConfigError: the file is not a valid study (naming the field), before anything is queued.
    """
    from genarm_core.evaluation.study import BUILTIN_PROMPTS, BUILTIN_STUDIES, load_study
    from genarm_core.models.builtin import is_builtin
    from genarm_core.models.files import read_yaml_file
    from genarm_core.models.prompts import read_prompt_records

    path = Path(BUILTIN_STUDIES.get(str(study_file), study_file))
    study = load_study(path)  # checked whole here: a bad file is refused before it is queued
    data = dict(read_yaml_file(path, "study file"))
    if isinstance(data.get("prompts"), str) and data["prompts"] not in BUILTIN_PROMPTS:
        data["prompts"] = read_prompt_records(study.prompts)
    if not is_builtin(str(data["model_set"])):
        data["model_set"] = str(Path(study.model_set).resolve())
    return {"study": data, "root": str(path.resolve().parent), "set_judges": True}, study.name
