"""ARGS (Khanov et al. 2024): each step the base's top-k tokens, each scored
log π_base(v) + Σ w_i · r_i(x, y_<t ∘ v) by the set's trajectory reward models; greedy at temperature
0, else sampled from softmax(score / T) over the k candidates. The scoring, with each reward model's
KV cache of the prefixes, is ``decoding.args.ArgsScorer``; here is what the method is."""

from __future__ import annotations

from .best_of_n import reward_models_missing
from .core import Method, weighted_names

MAX_K = 64


class Args(Method):
    name = "args"
    label = "ARGS"
    summary = ("ARGS (Khanov et al. 2024): each step the base's top-k tokens, each scored log π_base(v) + Σ w_i · "
               "r_i(x, y_<t ∘ v); greedy at temperature 0, else sampled from softmax(score / T) over the k candidates "
               "(the decoding's top-k / top-p do not apply on top); `n` is its k")
    cost = "1 + k × the reward models it ranks by"
    n_meaning = "candidates per step (k)"
    n_range = (1, MAX_K)
    default_n = 10  # the ARGS paper's k
    uses_reward_models = True
    needs_dynamic_cache = True  # its reward caches grow with the rows

    @property
    def n_name(self) -> str:
        return "ARGS's k"

    def short_name(self, n, options) -> str:
        return f"ARGS k={n}"

    def cache_rows(self, n: int) -> int:
        return 1 + n  # the base's row, and each reward model's cache expanded to the k candidates

    def problem(self, config, weights) -> str | None:
        return reward_models_missing(self.label, config, weights)

    def forwards_per_step(self, spec) -> float:
        return 1.0 + spec.n * len(weighted_names(spec.weights))

    def scorer(self, models, specs, batch_rows):
        from genarm_core.decoding.args import ArgsScorer

        weights = {n: [float(spec.weights.get(n, 0.0)) for spec in specs] for n in models.objectives}
        prompts = {n: [rm.encode_prompt(spec.prompt) for spec in specs] for n, rm in models.reward_models.items()
                   if any(weights[n])}
        return ArgsScorer(batch_rows, [spec.n for spec in specs], {n: w for n, w in weights.items() if any(w)},
                          models.reward_models, prompts)


METHOD = Args()
