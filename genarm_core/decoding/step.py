"""One decoding step as device work only: the models' forwards, then the math that picks a token.

``StepMath`` is GenARM's per-step formula over the forward groups' log-probs: the base restricted
to the tokens that may come next, the weighted combination, temperature / top-k / top-p, and the
inverse-CDF draw from per-row uniforms. It reads nothing back to the host, and packs everything
the host needs (token, UTF-8 state, the picked log-probs) into one (P, B) tensor, so a step costs
one device-to-host copy.

``DecodeStep`` runs the forward groups and ``StepMath`` for each new token. With ``graph=True``
(CUDA, static caches) the whole step is captured once as a CUDA graph and replayed per token:
one launch instead of hundreds of kernels, which is where a small model's time goes on a GPU.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import torch

from genarm_core.models.config import DecodingConfig
from genarm_core.models.loading import BASE
from genarm_core.decoding.math import combine_logprobs, restrict_logprobs, sample_from_logprobs, sampling_logprobs
from genarm_core.decoding.tokens import TokenRules

log = logging.getLogger(__name__)


class StepMath:
    """Pick each row's next token from the members' log-probs.

    Args:
        rules: what may be sampled. active: the ARMs that run, in ``alphas`` column order.
        alphas: (B, K) weights. cfg: β, temperature, top-k, top-p.

    ``__call__(lps, utf8, uniforms)`` -> ``(tokens (B,), utf8 (B,), packed (4 + K, B) float64)`` with
    packed rows: token, new UTF-8 state, the base's log-prob of the token, each ARM's, the combined
    one and the final sampling one (0 when greedy).
    """

    def __init__(self, rules: TokenRules, active: list[str], alphas: torch.Tensor, cfg: DecodingConfig,
                 args: Any = None):
        """``args``: an ``args.ArgsScorer`` for the batch's ARGS rows, whose distribution it replaces."""
        self.rules, self.active, self.alphas, self.cfg, self.args = rules, active, alphas, cfg, args

    def __call__(self, lps: dict[str, torch.Tensor], utf8: torch.Tensor, uniforms: torch.Tensor):
        cfg, device = self.cfg, self.alphas.device
        # "The base" is the base model over the tokens that may come next, renormalised; with all
        # weights zero a row samples exactly from it.
        base_lp = restrict_logprobs(lps[BASE].to(device), self.rules.mask(utf8))
        arm_lp = torch.stack([lps[n].to(device) for n in self.active]) if self.active else None
        combined = combine_logprobs(base_lp, arm_lp, self.alphas if self.active else None, cfg.beta)  # (B, V)
        scores = None
        if self.args is not None:
            # ARGS rows: π̃ = softmax(s) over their k candidates, sampled at the temperature alone
            scores = self.args.candidate_scores(base_lp)
            rows = torch.as_tensor(self.args.rows, device=device)
            combined = combined.index_copy(0, rows, torch.log_softmax(scores, dim=-1))
        if cfg.temperature == 0:
            tokens = combined.argmax(-1)
            final = None
        else:
            final = sampling_logprobs(combined, cfg.temperature, cfg.top_k, cfg.top_p)
            if scores is not None:
                final = final.index_copy(0, rows, torch.log_softmax(scores / cfg.temperature, dim=-1))
            tokens = sample_from_logprobs(final, uniforms.to(device))
        if self.args is not None:
            self.args.keep(tokens)
        idx = tokens.unsqueeze(-1)

        def pick(t: torch.Tensor) -> torch.Tensor:
            return t.gather(-1, idx).squeeze(-1).double()

        new_utf8 = self.rules.advance(utf8, tokens)
        rows = [tokens.double(), new_utf8.double(), pick(base_lp)]
        rows += [pick(arm_lp[k]) for k in range(len(self.active))]
        rows += [pick(combined), pick(final) if final is not None else torch.zeros_like(rows[0])]
        return tokens, new_utf8, torch.stack(rows)


class DecodeStep:
    """Feed the chosen tokens to every forward group and pick the next ones.

    ``graph=True`` (the groups must be ``StaticForwardGroup``s: fixed shapes, in-place updates)
    runs the first step eagerly, which also warms up every kernel and library handle the step
    uses, then captures the step as a CUDA graph (capture records the kernels without running
    them, so no state moves) and replays it for every later step, also in later generations
    that reuse this object. If capture fails the steps run eagerly, with a warning.
    ``capture_seconds`` reports the capture cost.
    """

    def __init__(self, runners: list[Any], math: StepMath, graph: bool = False):
        self.runners, self.math, self.graph = runners, math, graph
        self.capture_seconds: float | None = None
        self._graph: Any = None
        self._inputs: tuple[torch.Tensor, ...] | None = None
        self._outputs: tuple[torch.Tensor, ...] | None = None

    @property
    def captured(self) -> bool:
        """Whether a graph was captured (later steps replay it)."""
        return self._graph is not None

    def _eager(self, tokens: torch.Tensor, utf8: torch.Tensor, uniforms: torch.Tensor):
        lps: dict[str, torch.Tensor] = {}
        for r in self.runners:
            lps.update(r.step(tokens))
        return self.math(lps, utf8, uniforms)

    def __call__(self, tokens: torch.Tensor, utf8: torch.Tensor, uniforms: torch.Tensor):
        if self._graph is not None:
            tok_in, utf8_in, unif_in = self._inputs
            tok_in.copy_(tokens, non_blocking=True)
            utf8_in.copy_(utf8, non_blocking=True)
            unif_in.copy_(uniforms, non_blocking=True)
            self._graph.replay()
            tok_out, utf8_out, packed = self._outputs
            return tok_out.clone(), utf8_out.clone(), packed
        out = self._eager(tokens, utf8, uniforms)
        if self.graph:
            self._capture(tokens, utf8, uniforms)
        return out

    def _capture(self, tokens: torch.Tensor, utf8: torch.Tensor, uniforms: torch.Tensor) -> None:
        device = tokens.device
        torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        self._inputs = (tokens.clone(), utf8.clone(), uniforms.to(device).clone())
        try:
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                self._outputs = self._eager(*self._inputs)
            self._graph = graph
        except Exception as exc:  # noqa: BLE001 - a model whose forward cannot be captured still decodes
            log.warning("CUDA graph capture failed (%s); decoding eagerly with the static cache", exc)
            self._outputs = None
        self.graph = False  # captured, or given up: never try again
        torch.cuda.synchronize(device)
        self.capture_seconds = time.perf_counter() - t0
