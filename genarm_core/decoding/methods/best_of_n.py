"""Best-of-N: N samples of the base, and the one the objectives rate highest is returned.

Two rankings: by the ARMs' sequence scores Σ_i α_i · Σ_t log π_ri(y_t) (``best_of_n``), or by the
set's trajectory reward models Σ_i w_i · r_i(x, y) (``bon_rm``, ``reward_models:``). Candidate 0
shares the plain base row's random stream, so Best-of-1 is the base's own sample.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

from .core import Method, Row, row_seed, weighted_names

MAX_N = 64


class BestOfN(Method):
    name = "best_of_n"
    label = "Best-of-N"
    summary = "N base samples, the best by Σ α_i · (the ARM's Σ log π_arm)"
    cost = "N × (1 + the ARMs it ranks by)"
    n_meaning = "samples"
    n_range = (1, MAX_N)
    default_n = 8
    streams = False
    kl_along_path = False  # it returns one of the base's own samples

    def kl_bound(self, n: int) -> float | None:
        """log N − (N − 1) / N (Beirami et al., 2024)."""
        return math.log(n) - (n - 1) / n

    def short_name(self, n, options) -> str:
        return f"Best-of-{n}"

    def batch_rows(self, n: int) -> int:
        return n

    def arms(self, weights: Mapping[str, float], objectives: Sequence[str]) -> tuple[str, ...]:
        return tuple(o for o in objectives if weights.get(o, 0.0) != 0)

    def expand(self, index, spec, seed, active) -> list[Row]:
        mine = self.arms(spec.weights, active)
        return [Row(index, [0.0] * len(active), row_seed(seed, spec.prompt, j), mine) for j in range(spec.n)]

    def value(self, spec, row: Row) -> float:
        """How the objectives rate one sample."""
        return sum(w * row.arm_sums.get(n, 0.0) for n, w in spec.weights.items() if w)

    def candidate(self, spec, row: Row) -> dict[str, Any]:
        return {"text": row.text, "token_ids": row.tokens, "scores": dict(row.arm_sums), "value": self.value(spec, row)}

    def choose(self, spec, rows: list[Row]) -> tuple[Row, list[dict[str, Any]]]:
        return max(rows, key=lambda r: self.value(spec, r)), [self.candidate(spec, r) for r in rows]


class BestOfNByRewardModel(BestOfN):
    name = "bon_rm"
    label = "Best-of-N (RM)"
    summary = "N base samples, the best by Σ w_i · r_i(x, y) of the `reward_models:`"
    cost = "N × (1 + the reward models it ranks by)"
    uses_reward_models = True

    def short_name(self, n, options) -> str:
        return f"Best-of-{n} by RM"

    def arms(self, weights, objectives) -> tuple[str, ...]:
        return ()  # it ranks by reward models, which read each sample once it is done

    def forwards_per_step(self, spec) -> float:
        return 1.0 + len(weighted_names(spec.weights))  # each sample: the base, then one reading per reward model

    def problem(self, config, weights) -> str | None:
        return reward_models_missing(self.label, config, weights)

    def value(self, spec, row: Row) -> float:
        return sum(w * row.rm_rewards.get(n, 0.0) for n, w in spec.weights.items() if w)

    def candidate(self, spec, row: Row) -> dict[str, Any]:
        return {**super().candidate(spec, row), "rm_rewards": dict(row.rm_rewards)}

    def after_decoding(self, models, specs, rows: list[Row]) -> None:
        """Each sample's r_i(x, y) under the reward models its spec weights (prompt in each one's own
        format + the sampled tokens), batched per reward model."""
        from genarm_core.models.reward_models import reward_of

        for name, rm in models.reward_models.items():
            mine = [r for r in rows if specs[r.spec_index].weights.get(name)]
            if not mine:
                continue
            seqs = [rm.encode_prompt(specs[r.spec_index].prompt) + r.tokens for r in mine]
            for r, value in zip(mine, reward_of(rm.model, rm.tokenizer, seqs)):
                r.rm_rewards[name] = value


def reward_models_missing(what: str, config, weights: Mapping[str, float]) -> str | None:
    """Why a method that ranks by trajectory reward models cannot run with these weights (None: it can)."""
    have = config.reward_model_specs
    missing = [o for o in weighted_names(weights) if o not in have]
    if not missing:
        return None
    return (f"{what} needs a trajectory reward model for {missing}; this model set has "
            f"{sorted(have) or 'none'} (add them under 'reward_models:' in its file; "
            "genarm train-rm trains one). Set those weights to 0, or choose another method.")


BEST_OF_N = BestOfN()
BON_RM = BestOfNByRewardModel()
