"""The one generation loop: base + ARMs decoding together, row-batched, streamed.

Everything that generates (the dashboard, the CLI, sweeps, Best-of-N, benchmarks) calls
``GenARMEngine.stream`` or ``GenARMEngine.generate``. Per step: one KV-cached forward per
model group that is needed (``runner.ForwardGroup``, feeding only the newest token),
``log_softmax`` per model, the base restricted to the tokens that may come next (no special token
but EOS, no byte that breaks a character: ``tokens.TokenRules``), the combination of
``math.combine_logprobs``, then temperature / top-k / top-p and a per-row random draw.

Rows: each ``RowSpec`` is one prompt with its own weights. A Best-of-N row expands into N
internal rows that sample the base alone while the ARMs score them; the best by Σ α_i · r_i
is returned.
"""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence

import torch

from genarm_core.decoding.methods import Row, row_seed
from genarm_core.models.config import DecodingConfig, RowSpec
from genarm_core.models.loading import BASE, ModelSet
from genarm_core.decoding.prompt_cache import PromptCache
from genarm_core.decoding.runner import StaticForwardGroup, TrunkForwardGroup, cache_bucket, dynamic_group, forward_groups, path_logprobs
from genarm_core.decoding.step import DecodeStep, StepMath
from genarm_core.decoding.tokens import IncrementalText, TokenRules

#: An Event or a callable: True stops every row; a callable may instead return the indices of the row
#: specs to stop (the others decode on), e.g. one request of several sharing a batch.
CancelSignal = threading.Event | Callable[[], Any] | None
#: "dynamic": transformers' growing cache; "static": a preallocated cache with fixed-shape steps;
#: "graph": static, each step replayed as a CUDA graph; "auto": graph on CUDA, dynamic elsewhere.
DECODE_MODES = ("auto", "dynamic", "static", "graph")
#: Static decoders (caches, buffers, captured graphs) kept for reuse, least recently used dropped first.
MAX_STATIC_DECODERS = 4


class PromptTooLong(ValueError):
    """A prompt plus ``max_new_tokens`` does not fit a model's context."""


@dataclass
class RowResult:
    """The outcome of one row (one ``RowSpec``)."""

    index: int
    prompt: Any
    method: str
    weights: dict[str, float]
    text: str
    token_ids: list[int]
    prompt_ids: dict[str, list[int]]
    finish_reason: str  # "eos" | "length" | "stop" | "cancelled"
    latency_s: float
    scores: dict[str, float] = field(default_factory=dict)  # r_i(x, y) for every ARM that ran
    #: Σ_t [log π̃(y_t) − log π_base(y_t)] along the returned tokens (the KL to the base along the
    #: sampled path; 0 for the base alone and for Best-of-N, whose samples are the base's own)
    kl_to_base: float = 0.0
    #: the method's model forwards (row-steps of the base and of the ARMs it needs) per returned token
    forwards_per_token: float = 0.0
    trace: list[dict[str, Any]] | None = None
    candidates: list[dict[str, Any]] | None = None  # Best-of-N: every sample with its scores

    @property
    def n_tokens(self) -> int:
        return len(self.token_ids)

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "prompt": self.prompt if isinstance(self.prompt, str) else list(self.prompt),
                "method": self.method, "weights": self.weights, "completion": self.text, "token_ids": self.token_ids,
                "prompt_ids": self.prompt_ids, "finish_reason": self.finish_reason, "n_tokens": self.n_tokens,
                "latency_s": self.latency_s, "scores": self.scores, "kl_to_base": self.kl_to_base,
                "forwards_per_token": self.forwards_per_token, "trace": self.trace, "candidates": self.candidates}


@dataclass
class StreamEvent:
    """One step of a streamed generation. ``texts[i]`` is row i's text so far (empty for Best-of-N
    rows until they finish); ``results`` is filled on the last event only."""

    step: int
    texts: list[str]
    deltas: list[str]
    done: list[bool]
    results: list[RowResult] | None = None

    @property
    def finished(self) -> bool:
        return self.results is not None


def _layer_rows(runner: Any, stacked: bool = False) -> int:
    """Decoder layer-rows one step of a forward group computes (with its trunk, or ``stacked``: without)."""
    if isinstance(runner, TrunkForwardGroup):
        return runner.plan.stacked_layer_rows if stacked else runner.plan.layer_rows
    return runner.ids.shape[0] * int(getattr(runner.model.config, "num_hidden_layers", 0) or 0)


class GenARMEngine:
    """Decodes with a ``ModelSet``. Holds no per-request state: safe to share between requests
    that run one after another (the app serialises them through its queue)."""

    def __init__(self, model_set: ModelSet, decode: str = "auto", queue_ahead: bool | None = None,
                 static_decoders: int = MAX_STATIC_DECODERS, shared_trunk: bool = True, prompt_cache_mb: float = 256):
        """``decode``: one of ``DECODE_MODES``. ``queue_ahead``: queue each step's device work before
        the previous step's host bookkeeping (None: on CUDA, where the two overlap; the tokens are
        the same either way). ``static_decoders``: how many static decoders (KV caches sized for
        batch × cache length, and their graphs) to keep for reuse; each holds its caches' memory.
        ``shared_trunk``: LoRA ARMs on the top layers share the base's bottom layers (``trunk``; the
        dynamic cache only; the same numbers either way). ``prompt_cache_mb``: how much prompt KV
        cache to keep for the next request's prefill (``prompt_cache``; 0: none)."""
        if decode not in DECODE_MODES:
            raise ValueError(f"decode must be one of {DECODE_MODES}, got {decode!r}")
        self.models = model_set
        self.decode = decode
        self.queue_ahead = queue_ahead
        self.static_decoders = max(1, static_decoders)
        self.shared_trunk = shared_trunk
        self.prompt_cache = PromptCache(int(prompt_cache_mb * 2**20)) if prompt_cache_mb > 0 else None
        self.tokenizer = model_set.tokenizer
        self.eos_ids = self._eos_ids()
        self.rules = TokenRules.for_tokenizer(self.tokenizer, model_set.vocab_size, self.eos_ids).to(model_set.base.device)
        self.last_decode: dict[str, Any] = {}
        # A static decode step (its runners' caches and buffers, its math, its graph) by what it bakes in.
        self._static: OrderedDict[tuple, DecodeStep] = OrderedDict()
        self._ids_memo: OrderedDict[str, dict[str, list[int]]] = OrderedDict()  # row -> its models' prompt ids

    def _decode_mode(self, groups: list) -> str:
        """``auto``: CUDA graphs when every model is on a CUDA device, else the dynamic cache."""
        if self.decode != "auto":
            if self.decode == "graph" and not all(g[0].device.type == "cuda" for g in groups):
                raise ValueError("decode='graph' needs every model on a CUDA device")
            return self.decode
        return "graph" if all(g[0].device.type == "cuda" for g in groups) else "dynamic"

    def _eos_ids(self) -> set[int]:
        eos = self.tokenizer.eos_token_id
        ids = set(eos if isinstance(eos, list) else [eos]) if eos is not None else set()
        gen_eos = getattr(getattr(self.models.base.model, "generation_config", None), "eos_token_id", None)
        if gen_eos is not None:
            ids |= set(gen_eos if isinstance(gen_eos, list) else [gen_eos])
        return {i for i in ids if i is not None and i < self.models.vocab_size}

    # ------------------------------------------------------------------ helpers

    def check_weights(self, weights: dict[str, float]) -> None:
        unknown = set(weights) - set(self.models.arms)
        if unknown:
            raise ValueError(f"unknown objective(s) {sorted(unknown)}; this model set has {self.models.objectives}")

    def prompt_ids(self, prompt: Any) -> dict[str, list[int]]:
        """Token ids each model is fed for the prompt (through its own template)."""
        return {m.name: m.encode_prompt(prompt) for m in self.models.members()}

    def row_prompt_ids(self, spec: RowSpec) -> dict[str, list[int]]:
        """Token ids each model is fed for a row: the base reads the prompt its method gives it (a
        Prompted row's base reads the objectives' system prompts first), the ARMs the prompt itself.
        Kept for the last few rows (a page measures a prompt before it is decoded: one tokenisation)."""
        key = json.dumps([spec.prompt if isinstance(spec.prompt, str) else list(spec.prompt), spec.method,
                          sorted(spec.weights.items())], sort_keys=True)
        if key in self._ids_memo:
            self._ids_memo.move_to_end(key)
            return {name: list(ids) for name, ids in self._ids_memo[key].items()}
        ids = self.prompt_ids(spec.prompt)
        base_prompt = self.base_prompt(spec)
        if base_prompt is not spec.prompt:
            ids[BASE] = self.models.base.encode_prompt(base_prompt)
        self._ids_memo[key] = ids
        while len(self._ids_memo) > 64:
            self._ids_memo.popitem(last=False)
        return {name: list(v) for name, v in ids.items()}

    def base_prompt(self, spec: RowSpec) -> Any:
        """The prompt the base reads for a row (its method's: the prompt itself, or e.g. the prompted
        baseline's system prompts and then the prompt)."""
        return spec.method_.base_prompt(spec, self.models.config, self.models.base.spec.chat_template)

    def _expand(self, rows: Sequence[RowSpec], cfg: DecodingConfig) -> tuple[list[Row], list[str]]:
        """Internal rows and the ARMs that run in the loop (``active``): those some row steers or
        ranks by (its method says which). Each ARM runs only beside the rows that need it; what a
        trace or ``score_all`` reports of the others is read after decoding (``_fill_paths``)."""
        objectives = self.models.objectives
        for spec in rows:
            self.check_weights(spec.weights)
            problem = self.models.config.method_problem(spec.method, spec.weights)
            if problem:
                raise ValueError(problem)
        active = [n for n in objectives if any(n in spec.method_.arms(spec.weights, objectives) for spec in rows)]
        internal: list[Row] = []
        for i, spec in enumerate(rows):
            internal.extend(spec.method_.expand(i, spec, cfg.seed if spec.seed is None else spec.seed, active))
        return internal, active

    def _by_method(self, rows: Sequence[RowSpec], internal: list[Row]):
        """(method, its specs, the batch rows of those specs) for each method in the batch."""
        out = {}
        for b, r in enumerate(internal):
            spec = rows[r.spec_index]
            out.setdefault(spec.method, (spec.method_, [], []))
            out[spec.method][1].append(spec)
            out[spec.method][2].append(b)
        return list(out.values())

    # ------------------------------------------------------------------ the loop

    @torch.inference_mode()
    def stream(self, rows: Sequence[RowSpec], config: DecodingConfig, cancel: CancelSignal = None) -> Iterator[StreamEvent]:
        """Generate every row together, yielding a ``StreamEvent`` after every step.

        Raises:
            ValueError: unknown objective, empty prompt. PromptTooLong: prompt + max_new_tokens
            exceeds a model's context.
        """
        if not rows:
            raise ValueError("no rows to generate")
        cfg = config
        internal, active = self._expand(rows, cfg)
        members = [self.models.base] + [self.models.arms[n] for n in active]
        prompt_ids = [self.row_prompt_ids(spec) for spec in rows]
        ctx = self.models.max_context()
        limits = [min(cfg.max_new_tokens, spec.max_new_tokens or cfg.max_new_tokens) for spec in rows]
        for spec, ids, limit in zip(rows, prompt_ids, limits):
            for name, p in ids.items():
                if not p:
                    raise ValueError(f"the prompt is empty for model '{name}'")
                if len(p) + limit > ctx:
                    raise PromptTooLong(f"prompt of {len(p)} tokens + max_new_tokens {limit} exceeds the "
                                        f"context of {ctx} tokens (model '{name}')")
        B = len(internal)
        base_device = self.models.base.device
        groups = forward_groups(members)
        methods = self._by_method(rows, internal)
        scorers = [s for m, specs, rows_of in methods if (s := m.scorer(self.models, specs, rows_of)) is not None]
        if len(scorers) > 1:
            raise ValueError("one batch can hold one method whose scorer replaces the distribution (ARGS)")
        args = scorers[0] if scorers else None
        # Methods that make rows continue from others (blockwise search) reorder the rows' caches between steps.
        hooks = [h for m, specs, rows_of in methods
                 if (h := m.block_hook(self.models, specs, [internal[b] for b in rows_of], rows_of)) is not None]
        dynamic = any(m.needs_dynamic_cache for m, _, _ in methods)  # e.g. ARGS: its reward caches are dynamic
        mode = "dynamic" if dynamic else self._decode_mode(groups)
        # The base runs every row; an ARM only the rows that steer or rank by it.
        layout = [{m.name: [b for b, r in enumerate(internal) if m.name == BASE or m.name in r.needs] for m in g}
                  for g in groups]
        feeds = [{name: [prompt_ids[internal[b].spec_index][name] for b in idx] for name, idx in lay.items()}
                 for lay in layout]
        alphas = torch.tensor([r.alphas for r in internal], dtype=torch.float32, device=base_device).reshape(B, len(active))
        reused = False
        if mode == "dynamic":
            runners = [dynamic_group(g, f, self.models.vocab_size, lay, B, self.shared_trunk, self.prompt_cache)
                       for g, f, lay in zip(groups, feeds, layout)]
            math = StepMath(self.rules, active, alphas, cfg, args)
            decode = DecodeStep(runners, math)
        else:
            runners, math, decode, reused = self._static_decoder(mode, groups, feeds, layout, active, alphas, cfg, ctx)
        gens = [torch.Generator().manual_seed(r.seed) for r in internal]
        uniforms = (lambda: torch.stack([torch.rand((), generator=g) for g in gens])) if cfg.temperature > 0 else (
            lambda: torch.zeros(B))
        # On CUDA the next step is queued before this step's bookkeeping (text, stop strings, the
        # event), so the host works while the device computes; the device work is the same. A step
        # queued after every row has finished is discarded. On the CPU there is nothing to overlap.
        ahead = (base_device.type == "cuda" if self.queue_ahead is None else self.queue_ahead) and not hooks
        stop_check = self._stop_checker(cancel)
        t0 = time.perf_counter()

        lps = self._collect(r.prefill() for r in runners)
        if args is not None:
            args.prefill()
        for h in hooks:
            h.prefill()
        tokens, utf8, packed = math(lps, torch.zeros(B, dtype=torch.long, device=base_device), uniforms().to(base_device))
        values = packed.cpu().tolist()  # the one read-back per step
        first_token_s = time.perf_counter() - t0
        for step in range(cfg.max_new_tokens):
            last = step == cfg.max_new_tokens - 1
            if ahead and not last:
                tokens, utf8, packed = decode(tokens, utf8, uniforms())
            self._record(internal, values, active, cfg, t0, limits)
            for h in hooks:
                source = h.after_step(step, internal, last)
                if source is not None:
                    tokens, utf8 = self._continue_from(source, runners, internal, tokens, utf8)
            cancelled = stop_check()  # True: every row; a set of row indices: those rows (one request of several)
            if cancelled:
                for r in internal:
                    if not r.done and (cancelled is True or r.spec_index in cancelled):
                        r.done, r.finish_reason, r.finished_at = True, "cancelled", time.perf_counter() - t0
            all_done = all(r.done for r in internal)
            if last or all_done:
                for r in internal:
                    if not r.done:
                        r.done, r.finish_reason, r.finished_at = True, "length", time.perf_counter() - t0
                break
            yield self._event(step, rows, internal)
            if not ahead:
                tokens, utf8, packed = decode(tokens, utf8, uniforms())
            values = packed.cpu().tolist()
        for h in hooks:
            h.finish(internal)
        self._fill_paths(internal, active, cfg, prompt_ids)
        for m, _, rows_of in methods:
            m.after_decoding(self.models, rows, [internal[b] for b in rows_of])
        results = self._results(rows, internal, prompt_ids)
        self.last_decode = {"mode": mode, "reused": reused, "graph_replayed": decode.captured,
                            "capture_seconds": None if reused else decode.capture_seconds,
                            "layer_rows_per_step": sum(_layer_rows(r) for r in runners),
                            "stacked_layer_rows_per_step": sum(_layer_rows(r, stacked=True) for r in runners),
                            "prompt_cache_hits": sum(bool(getattr(r, "prompt_cache_hit", None)) for r in runners),
                            "first_token_seconds": first_token_s,
                            "blocks": [d for h in hooks for d in getattr(h, "decisions", [])]}
        yield self._event(step, rows, internal, results)

    def generate(self, rows: Sequence[RowSpec], config: DecodingConfig, cancel: CancelSignal = None) -> list[RowResult]:
        """Run ``stream`` to the end and return one ``RowResult`` per row."""
        event = None
        for event in self.stream(rows, config, cancel):
            pass
        assert event is not None and event.results is not None
        return event.results

    def release_static(self) -> None:
        """Drop every kept static decoder (their KV caches and graphs) and the kept prompt caches,
        e.g. before loading more models."""
        self._static.clear()
        if self.prompt_cache is not None:
            self.prompt_cache.clear()

    def _static_decoder(self, mode: str, groups: list, feeds: list, layout: list, active: list[str], alphas: torch.Tensor,
                        cfg: DecodingConfig, context: int):
        """Static caches, step math and decode step for this batch: reused when an earlier generation
        had the same groups, batch size, cache buckets, active ARMs and sampling settings (what a
        captured graph has baked in), else built (and, for ``graph``, captured on the first step).

        Returns ``(runners, math, decode, reused)``.
        """
        buckets = tuple(cache_bucket(max(len(p) for f in feed.values() for p in f) + cfg.max_new_tokens, context)
                        for feed in feeds)
        rows_key = tuple(tuple((name, tuple(idx)) for name, idx in lay.items()) for lay in layout)
        key = (mode, tuple(tuple((id(m.model), m.name) for m in g) for g in groups), alphas.shape[0], rows_key, buckets,
               tuple(active), cfg.beta, cfg.temperature, cfg.top_k, cfg.top_p)
        found = self._static.get(key)
        if found is not None:
            self._static.move_to_end(key)
            for runner, feed in zip(found.runners, feeds):
                runner.load(feed)
            found.math.cfg = cfg
            found.math.alphas.copy_(alphas)
            return found.runners, found.math, found, True
        runners = [StaticForwardGroup(g, f, self.models.vocab_size, c, lay, alphas.shape[0])
                   for g, f, c, lay in zip(groups, feeds, buckets, layout)]
        math = StepMath(self.rules, active, alphas, cfg)
        decode = self._static[key] = DecodeStep(runners, math, graph=mode == "graph")
        while len(self._static) > self.static_decoders:
            self._static.popitem(last=False)
        return runners, math, decode, False

    # ------------------------------------------------------------------ bookkeeping

    @staticmethod
    def _collect(parts) -> dict[str, torch.Tensor]:
        out: dict[str, torch.Tensor] = {}
        for p in parts:
            out.update(p)
        return out

    @staticmethod
    def _stop_checker(cancel: CancelSignal) -> Callable[[], bool]:
        if cancel is None:
            return lambda: False
        if isinstance(cancel, threading.Event):
            return cancel.is_set
        return cancel

    def _record(self, internal: list[Row], values: list[list[float]], active: list[str], cfg: DecodingConfig,
                t0: float, limits: Sequence[int] | None = None) -> None:
        """Book one step: ``values`` is ``StepMath``'s packed (P, B) read-back as lists; ``limits``: each
        row spec's most new tokens (a row that reaches its own ends there, "length")."""
        tok_list, states, base_picked = values[0], values[1], values[2]
        arm_picked = values[3:3 + len(active)]
        comb_picked, final_picked = values[3 + len(active)], values[4 + len(active)]
        now = time.perf_counter() - t0
        for b, row in enumerate(internal):
            if row.done:
                continue
            tok = int(tok_list[b])
            row.tokens.append(tok)
            row.utf8 = int(states[b])
            for k, name in enumerate(active):
                if name in row.needs:
                    row.arm_sums[name] = row.arm_sums.get(name, 0.0) + arm_picked[k][b]
            row.kl += comb_picked[b] - base_picked[b]
            before = row.text
            if row.detok is None:
                row.detok = IncrementalText(self.tokenizer)
            row.text = row.detok.push(tok, bool(row.utf8))  # an open character's bytes are held back
            if cfg.trace:
                piece = row.text[len(before):] if row.text.startswith(before) else row.text
                row.trace.append({
                    "id": tok, "text": piece, "eos": tok in self.eos_ids, "logprob": final_picked[b],
                    "combined_logprob": comb_picked[b], "base_logprob": base_picked[b],
                    "arm_logprobs": {name: arm_picked[k][b] for k, name in enumerate(active) if name in row.needs},
                })
            if cfg.stop_at_eos and tok in self.eos_ids:
                row.done, row.finish_reason, row.finished_at = True, "eos", now
                continue
            if limits is not None and len(row.tokens) >= limits[row.spec_index]:
                row.done, row.finish_reason, row.finished_at = True, "length", now
            for s in cfg.stop:
                cut = row.text.find(s)
                if cut >= 0:
                    row.text = row.text[:cut]
                    row.done, row.finish_reason, row.finished_at = True, "stop", now
                    break

    @staticmethod
    def _continue_from(source: list[int], runners: list, internal: list[Row], tokens: torch.Tensor,
                       utf8: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Batch row b continues from row ``source[b]``: its KV caches in every forward group, its
        booked tokens and text, and the token it feeds next (blockwise search). Its random stream
        stays its own, so the rows diverge again."""
        for r in runners:
            r.reorder(source)
        copies = {b: internal[a] for b, a in enumerate(source) if a != b}
        for b, src in copies.items():
            row = internal[b]
            row.tokens, row.text, row.utf8 = list(src.tokens), src.text, src.utf8
            row.detok = src.detok.copy() if src.detok is not None else None
            row.done, row.finish_reason, row.finished_at = src.done, src.finish_reason, src.finished_at
            row.trace = [dict(e) for e in src.trace]
            row.arm_sums, row.kl, row.rm_rewards = dict(src.arm_sums), src.kl, dict(src.rm_rewards)
        index = torch.as_tensor(source, device=tokens.device)
        return tokens[index], utf8[index]

    def _event(self, step: int, rows, internal, results: list[RowResult] | None = None) -> StreamEvent:
        texts, deltas, done = [], [], []
        for i, spec in enumerate(rows):
            mine = [r for r in internal if r.spec_index == i]
            if not spec.method_.streams:  # its text is known once the method has chosen, at the end
                finished = all(r.done for r in mine)
                text = results[i].text if results else ""
                texts.append(text), deltas.append(text), done.append(finished)
                continue
            r = mine[0]
            shown = r.text
            deltas.append(shown[len(r.emitted):] if shown.startswith(r.emitted) else shown)
            r.emitted = shown
            texts.append(shown)
            done.append(r.done)
        return StreamEvent(step=step, texts=texts, deltas=deltas, done=done, results=results)

    def _fill_paths(self, internal: list[Row], active: list[str], cfg: DecodingConfig,
                    prompt_ids: list[dict[str, list[int]]]) -> None:
        """The ARM values a row did not compute in the loop, read after decoding by one
        teacher-forced forward over prompt + completion (``runner.path_logprobs``, batched per
        model): its score under every ARM that ran in the batch (every ARM with ``score_all`` or a
        trace) and, with a trace, each token's log-prob under each of them. Equal to what the loop
        would have read within float rounding (tested to 1e-5)."""
        wanted = self.models.objectives if (cfg.trace or cfg.score_all) else active
        todo = {n: [b for b, r in enumerate(internal) if n not in r.needs] for n in wanted}
        todo = {n: idx for n, idx in todo.items() if idx}
        if not todo:
            return
        arms = [self.models.arms[n] for n in todo]
        for group in forward_groups(arms):
            paths = {m.name: [(prompt_ids[internal[b].spec_index][m.name], internal[b].tokens) for b in todo[m.name]]
                     for m in group}
            values = path_logprobs(group, paths, self.models.vocab_size)
            for m in group:
                for b, lps in zip(todo[m.name], values[m.name]):
                    row = internal[b]
                    row.arm_sums[m.name] = float(sum(lps))
                    for entry, lp in zip(row.trace, lps):
                        entry["arm_logprobs"][m.name] = lp
        order = self.models.objectives
        for row in internal:  # objectives in the set's order, whichever way they were computed
            row.arm_sums = {n: row.arm_sums[n] for n in order if n in row.arm_sums}
            for entry in row.trace:
                entry["arm_logprobs"] = {n: entry["arm_logprobs"][n] for n in order if n in entry["arm_logprobs"]}

    def _results(self, rows, internal, prompt_ids) -> list[RowResult]:
        results = []
        for i, spec in enumerate(rows):
            mine = [r for r in internal if r.spec_index == i]
            chosen, candidates = spec.method_.choose(spec, mine)
            results.append(RowResult(
                index=i, prompt=spec.prompt, method=spec.method, weights=dict(spec.weights), text=chosen.text,
                token_ids=list(chosen.tokens), prompt_ids=prompt_ids[i], finish_reason=chosen.finish_reason,
                latency_s=max(r.finished_at for r in mine), scores=dict(chosen.arm_sums), kl_to_base=chosen.kl,
                forwards_per_token=spec.method_.forwards_per_token(spec, mine, chosen),
                trace=chosen.trace if chosen.trace else None, candidates=candidates,
            ))
        return results


__all__ = ["GenARMEngine", "RowResult", "StreamEvent", "PromptTooLong", "BASE", "row_seed"]
