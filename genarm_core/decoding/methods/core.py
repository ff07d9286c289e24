"""What a decoding method is: the contract every method answers, and the engine's rows.

A method is one small class (a subclass of ``Method``) in a file of its own. It answers what the
engine, a ``Setting``, the model-set check, the command line and the dashboard would otherwise each
decide for themselves: which settings are valid (does N apply, its range, the defaults), the
setting's label, what the model set must provide, which ARMs run beside its rows, how its rows
expand and how the returned completion is chosen, the prompt the base reads, its forwards per
token. The engine keeps the one generation loop and asks the method at each of those points.

``Row`` is one row of an engine batch: a ``RowSpec`` (a prompt with its setting) owns one or more
(Best-of-N owns N). The engine books every step's token into it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Mapping, Sequence

if TYPE_CHECKING:  # types only: nothing heavy at import time, no circle through the configs
    from genarm_core.decoding.tokens import IncrementalText
    from genarm_core.models.config import ModelSetConfig, RowSpec
    from genarm_core.models.loading import ModelSet

Weights = tuple[tuple[str, float], ...]


def row_seed(seed: int, prompt: Any, candidate: int = 0) -> int:
    """The random stream of one row: a stable hash of (seed, prompt, candidate).

    Rows with the same prompt and seed (the A/B panels) share random numbers, so they differ only
    by their weights; different prompts in one batch get independent streams.
    """
    key = json.dumps([seed, prompt if isinstance(prompt, str) else list(prompt), candidate], sort_keys=True)
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "little") & ((1 << 63) - 1)


@dataclass
class Row:
    """An internal batch row (a Best-of-N spec owns several)."""

    spec_index: int
    alphas: list[float]  # one per active ARM
    seed: int
    needs: tuple[str, ...] = ()  # the ARMs this row steers or ranks by: they run beside it in the loop
    tokens: list[int] = field(default_factory=list)
    text: str = ""  # always whole characters (an open character's bytes are held back)
    detok: "IncrementalText | None" = None  # keeps ``text`` up to date token by token
    utf8: int = 0  # continuation bytes the text still awaits (tokens.TokenRules)
    emitted: str = ""
    done: bool = False
    finish_reason: str = "length"
    finished_at: float = 0.0
    trace: list[dict[str, Any]] = field(default_factory=list)
    arm_sums: dict[str, float] = field(default_factory=dict)
    kl: float = 0.0  # Σ (combined − base) log-prob of the tokens taken
    rm_rewards: dict[str, float] = field(default_factory=dict)  # r_i(x, y) of the sample under the reward models
    #: row-steps of model forwards this row cost beyond the base and its ARMs (a reward model's readings)
    extra_forwards: float = 0.0


@dataclass(frozen=True)
class Option:
    """A whole-number parameter of a method beyond N (e.g. a block size): its default, range and help."""

    default: int
    low: int
    high: int
    help: str


class Method:
    """A decoding method. Subclasses set the class attributes and override what differs.

    The defaults describe the simplest method: one row per prompt, the base alone, no N, the
    weights dropped at zero, the text streamed as it is decoded.
    """

    #: the name in code, files, the database and the CLI (``--method``)
    name: ClassVar[str]
    #: the name on a page (the panels' radios, tables)
    label: ClassVar[str]
    #: one line for the README's table of methods, and the CLI's help
    summary: ClassVar[str]
    #: its cost per token in model forwards, in words (the README's table)
    cost: ClassVar[str]
    #: what N means for it ("samples", "candidates per step"); None: N does not apply (always 1)
    n_meaning: ClassVar[str | None] = None
    n_range: ClassVar[tuple[int, int]] = (1, 1)
    default_n: ClassVar[int] = 1
    #: parameters beyond N (name -> ``Option``), part of a setting (``Setting.options``)
    options: ClassVar[dict[str, Option]] = {}
    #: whether the weights act on it (GenARM steers by them, Best-of-N ranks by them; the base ignores them)
    uses_weights: ClassVar[bool] = True
    #: whether it ranks by the set's trajectory reward models (``reward_models:``) rather than its ARMs
    uses_reward_models: ClassVar[bool] = False
    #: whether a row's text is shown as it is decoded (False: when the method has chosen, at the end)
    streams: ClassVar[bool] = True
    #: whether its rows need the dynamic KV cache (its own caches grow with the rows, or rows are reordered)
    needs_dynamic_cache: ClassVar[bool] = False
    #: whether the KL to the base along the sampled path measures it (False: it returns base samples, and
    #: its distribution's KL is only bounded: ``kl_bound``)
    kl_along_path: ClassVar[bool] = True

    # ------------------------------------------------------------------ a setting

    def canonical_weights(self, weights: Weights) -> Weights:
        """The weights a setting keeps (sorted by objective already): zero weights do nothing."""
        return tuple((k, v) for k, v in weights if v != 0)

    def check_n(self, n: int) -> str | None:
        """Why ``n`` is not valid for this method (None: it is)."""
        low, high = self.n_range
        if self.n_meaning is None:
            return None if n == 1 else f"N does not apply to {self.label} (only 1)"
        return None if low <= n <= high else f"{self.n_name} must be between {low} and {high}, got {n}"

    @property
    def n_name(self) -> str:
        """How N is called for this method in messages and labels."""
        return "N"

    def check_options(self, options: Mapping[str, Any]) -> str | None:
        """Why these option values are not valid (None: they are). Unknown names are refused."""
        unknown = sorted(set(options) - set(self.options))
        if unknown:
            return f"{self.label} has no option {unknown}; its options: {sorted(self.options) or 'none'}"
        for key, value in options.items():
            opt = self.options[key]
            if isinstance(value, bool) or not isinstance(value, int) or not opt.low <= value <= opt.high:
                return f"{key} must be a whole number between {opt.low} and {opt.high}, got {value!r}"
        return None

    def setting_label(self, weights: Weights, n: int, options: Mapping[str, int]) -> str:
        """A short name for people: ``GenARM helpfulness=1 harmlessness=0.5``."""
        ws = " ".join(f"{k}={v:g}" for k, v in weights)
        name = self.short_name(n, options)
        return f"{name} {ws}" if ws else f"{name} (all weights 0)"

    def short_name(self, n: int, options: Mapping[str, int]) -> str:
        """The label's method part (``Best-of-8``, ``ARGS k=10``)."""
        return self.label

    def problem(self, config: "ModelSetConfig", weights: Mapping[str, float]) -> str | None:
        """Why ``config``'s set cannot decode this method with ``weights`` (None: it can)."""
        return None

    def kl_bound(self, n: int) -> float | None:
        """An upper bound on the KL of its distribution to the base, where one is known (None: not known)."""
        return None

    def batch_rows(self, n: int) -> int:
        """Rows of an engine batch one prompt takes with this method (what batch sizes count)."""
        return 1

    def cache_rows(self, n: int) -> int:
        """Rows of KV cache one prompt may hold at once with this method (what memory budgets count)."""
        return self.batch_rows(n)

    # ------------------------------------------------------------------ decoding

    def arms(self, weights: Mapping[str, float], objectives: Sequence[str]) -> tuple[str, ...]:
        """The ARMs that run beside this method's rows in the loop (steering or ranking by them)."""
        return ()

    def base_prompt(self, spec: "RowSpec", config: "ModelSetConfig", chat: bool) -> Any:
        """The prompt the base reads for a row (``chat``: the base reads through a chat template)."""
        return spec.prompt

    def expand(self, index: int, spec: "RowSpec", seed: int, active: Sequence[str]) -> list[Row]:
        """The engine rows of one ``RowSpec`` (``active``: the batch's ARMs, in ``Row.alphas`` order)."""
        return [Row(index, [0.0] * len(active), row_seed(seed, spec.prompt))]

    def choose(self, spec: "RowSpec", rows: list[Row]) -> tuple[Row, list[dict[str, Any]] | None]:
        """The row whose completion is returned, and every candidate with its value (None: no candidates)."""
        return rows[0], None

    def forwards_per_step(self, spec: "RowSpec") -> float:
        """Model forwards one of its rows costs per step (the base, plus each ARM it needs)."""
        return 1.0 + len(self.arms(spec.weights, list(spec.weights)))

    def forwards_per_token(self, spec: "RowSpec", rows: list[Row], chosen: Row) -> float:
        """The method's model forwards per returned token: every row-step it took (the batch may run
        more ARMs for scores or a trace; those are not the method's cost)."""
        steps = sum(len(r.tokens) for r in rows)
        extra = sum(r.extra_forwards for r in rows)
        return (self.forwards_per_step(spec) * steps + extra) / max(1, len(chosen.tokens))

    def scorer(self, models: "ModelSet", specs: Sequence["RowSpec"], batch_rows: list[int]) -> Any:
        """An object that replaces these rows' distribution each step (ARGS), or None."""
        return None

    def after_decoding(self, models: "ModelSet", specs: Sequence["RowSpec"], rows: list[Row]) -> None:
        """Work once decoding ended, before ``choose`` (e.g. reward models reading each sample)."""

    def block_hook(self, models: "ModelSet", specs: Sequence["RowSpec"], rows: list[Row], batch_rows: list[int]) -> Any:
        """An object called after each step that may make rows continue from others (blockwise
        search), or None. See ``blockwise.BlockSearch`` for its contract."""
        return None


def weighted_names(weights: Mapping[str, float]) -> list[str]:
    """The objectives with a non-zero weight."""
    return [o for o, w in weights.items() if w]
