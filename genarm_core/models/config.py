"""Configuration dataclasses: decoding settings and the model-set file.

All configs validate on construction and round-trip through JSON (they are stored with every
generation). The model-set file is YAML; every error names the file and the field.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping


from genarm_core.decoding.methods import METHODS, method as method_named
from genarm_core.evaluation.judges import parse_judges
from genarm_core.evaluation.verdicts import VERDICTS
from genarm_core.models.files import ConfigError, _check, _finite_number, read_yaml_file, resolve_path
from genarm_core.models.formats import FormatError, PromptFormat


@dataclass(frozen=True)
class DecodingConfig:
    """How one batch is decoded. Weights are per row (see ``RowSpec``); the rest is shared."""

    beta: float = field(default=1.0, metadata={"help": "Global alignment strength β (> 0); ARM i is weighted α_i / β."})
    temperature: float = field(default=1.0, metadata={"help": "Sampling temperature; 0 means greedy."})
    top_k: int = field(default=0, metadata={"help": "Keep the k most likely tokens of the combined distribution; 0 = off."})
    top_p: float = field(default=1.0, metadata={"help": "Nucleus mass in (0, 1]; 1 = off."})
    max_new_tokens: int = field(default=64, metadata={"help": "Tokens to generate per row at most."})
    seed: int = field(default=0, metadata={"help": "Seed; every row of a batch uses it (A/B rows share random numbers)."})
    stop: tuple[str, ...] = field(default=(), metadata={"help": "Stop strings; the text is cut before the first one."})
    stop_at_eos: bool = field(default=True, metadata={"help": "End a row at the EOS token."})
    trace: bool = field(default=False, metadata={"help": "Record a per-token trace (under every ARM; those that do not steer a row are read after decoding)."})
    score_all: bool = field(default=False, metadata={"help": "Report r_i(x, y) for all objectives (ARMs that do not steer a row score it after decoding)."})

    def __post_init__(self) -> None:
        object.__setattr__(self, "beta", _finite_number(self.beta, "beta"))
        object.__setattr__(self, "temperature", _finite_number(self.temperature, "temperature"))
        object.__setattr__(self, "top_p", _finite_number(self.top_p, "top_p"))
        object.__setattr__(self, "stop", tuple(self.stop))
        _check(self.beta > 0, f"beta must be > 0, got {self.beta}")
        _check(self.temperature >= 0, f"temperature must be >= 0, got {self.temperature}")
        _check(isinstance(self.top_k, int) and self.top_k >= 0, f"top_k must be an integer >= 0, got {self.top_k!r}")
        _check(0 < self.top_p <= 1, f"top_p must be in (0, 1], got {self.top_p}")
        _check(isinstance(self.max_new_tokens, int) and self.max_new_tokens >= 1,
               f"max_new_tokens must be an integer >= 1, got {self.max_new_tokens!r}")
        _check(isinstance(self.seed, int), f"seed must be an integer, got {self.seed!r}")
        _check(all(isinstance(s, str) and s for s in self.stop), "stop strings must be non-empty strings")

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["stop"] = list(self.stop)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "DecodingConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        _check(not unknown, f"unknown decoding setting(s): {sorted(unknown)}")
        return cls(**d)


@dataclass(frozen=True)
class RowSpec:
    """One row of a batch: a prompt, one weight per objective, and the method.

    ``prompt`` is a string, or a list of ``{"role", "content"}`` messages for chat templates.
    For ``best_of_n``, the row expands into ``n`` base samples ranked by Σ_i α_i · r_i(x, y) (the ARMs'
    sequence scores); ``bon_rm`` ranks them by the trajectory reward models instead. For
    ``args``, ``n`` is ARGS's k (candidates per step) and the weights are the reward models' w_i.
    For ``prompted``, the base alone reads the prompt after the system prompts (``prompted:``) of
    the objectives whose weight is not 0 (the weights' sizes do not matter).
    """

    prompt: str | tuple[dict[str, str], ...]
    weights: dict[str, float] = field(default_factory=dict)
    method: str = "genarm"
    n: int = 1
    #: the method's parameters beyond N (``Method.options``, e.g. a block size)
    options: dict[str, int] = field(default_factory=dict)
    #: this row's own seed and length limit (None: the batch's ``DecodingConfig``), so that requests
    #: with other seeds or lengths can share one batch (the dashboard's ``PairBatcher``)
    seed: int | None = None
    max_new_tokens: int | None = None

    def __post_init__(self) -> None:
        if isinstance(self.prompt, list):
            object.__setattr__(self, "prompt", tuple(dict(m) for m in self.prompt))
        _check(isinstance(self.prompt, (str, tuple)), f"prompt must be text or a list of messages, got {type(self.prompt).__name__}")
        if isinstance(self.prompt, tuple):
            for m in self.prompt:
                _check(isinstance(m, dict) and "role" in m and "content" in m, "each chat message needs 'role' and 'content'")
        _check(self.method in METHODS, f"method must be one of {tuple(METHODS)}, got {self.method!r}")
        weights = {str(k): _finite_number(v, f"weight of '{k}'") for k, v in dict(self.weights).items()}
        object.__setattr__(self, "weights", weights)
        _check(isinstance(self.n, int) and self.n >= 1, f"n must be an integer >= 1, got {self.n!r}")
        m = METHODS[self.method]
        _check(m.n_meaning is not None or self.n == 1,
               f"n > 1 is only for methods {[k for k, v in METHODS.items() if v.n_meaning]}")
        object.__setattr__(self, "options", dict(self.options))
        problem = m.check_options(self.options)
        _check(problem is None, f"{problem}")
        _check(self.seed is None or (isinstance(self.seed, int) and not isinstance(self.seed, bool)),
               f"seed must be an integer, got {self.seed!r}")
        _check(self.max_new_tokens is None or (isinstance(self.max_new_tokens, int) and self.max_new_tokens >= 1),
               f"max_new_tokens must be an integer >= 1, got {self.max_new_tokens!r}")

    @property
    def method_(self):
        """The method itself (``decoding.methods``): what it needs, how its rows expand."""
        return METHODS[self.method]


@dataclass(frozen=True)
class Setting:
    """One way of decoding a prompt: the method, one weight per objective, N, and the method's options.

    The one notion of "a setting" everywhere: the dashboard's panels, the API, the CLI, sweeps,
    the database (its own column) and win-rate tables all use it. Canonical on construction, so
    that equal settings compare and hash equal: the method (``decoding.methods``) says which
    weights it keeps (zero weights do nothing; the base alone has none), whether N applies (else
    it is 1) and which options it has; weights are sorted by objective. ``ModelSetConfig.setting``
    builds one from raw input and checks it against a model set's weight ranges.
    """

    method: str = "genarm"
    weights: tuple[tuple[str, float], ...] = ()
    n: int = 1
    options: tuple[tuple[str, int], ...] = ()

    def __post_init__(self) -> None:
        try:
            m = method_named(self.method)
        except KeyError as exc:
            raise ConfigError(exc.args[0]) from None
        items = dict(self.weights).items() if not isinstance(self.weights, tuple) else self.weights
        weights = tuple(sorted((str(k), _finite_number(v, f"weight of '{k}'")) for k, v in items))
        _check(len({k for k, _ in weights}) == len(weights), "each objective may have one weight")
        _check(isinstance(self.n, int) and not isinstance(self.n, bool), f"N must be an integer, got {self.n!r}")
        if m.n_meaning is not None:
            problem = m.check_n(self.n)
            _check(problem is None, f"{problem}")
        options = dict(self.options) if not isinstance(self.options, tuple) else dict(self.options)
        problem = m.check_options(options)
        _check(problem is None, f"{problem}")
        object.__setattr__(self, "method", m.name)
        object.__setattr__(self, "weights", m.canonical_weights(weights))
        object.__setattr__(self, "n", self.n if m.n_meaning is not None else 1)
        object.__setattr__(self, "options", tuple(sorted({**{k: o.default for k, o in m.options.items()},
                                                          **options}.items())))

    @property
    def method_(self):
        """The method itself (``decoding.methods``)."""
        return METHODS[self.method]

    @property
    def weight_map(self) -> dict[str, float]:
        return dict(self.weights)

    @property
    def uses_weights(self) -> bool:
        """Whether weights act on this setting: GenARM steers by them and Best-of-N ranks its
        samples by them; "Base only" ignores them."""
        return self.method_.uses_weights

    @property
    def label(self) -> str:
        """A short name for people: ``GenARM helpfulness=1 harmlessness=0.5``, ``Base only``, ``Best-of-8 helpfulness=1``."""
        return self.method_.setting_label(self.weights, self.n, dict(self.options))

    @property
    def batch_rows(self) -> int:
        """Rows of an engine batch one prompt takes with this setting (Best-of-N: N)."""
        return self.method_.batch_rows(self.n)

    def row(self, prompt: Any) -> "RowSpec":
        return RowSpec(prompt, self.weight_map, method=self.method, n=self.n, options=dict(self.options))

    def to_dict(self) -> dict[str, Any]:
        """As stored: {method, weights, n}, and the method's options when it has any (settings stored
        before options existed read back equal)."""
        d: dict[str, Any] = {"method": self.method, "weights": self.weight_map, "n": self.n}
        if self.options:
            d["options"] = dict(self.options)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Setting":
        return cls(d.get("method", "genarm"), tuple((d.get("weights") or {}).items()), int(d.get("n", 1)),
                   tuple((d.get("options") or {}).items()))


# ---------------------------------------------------------------------------------------------
# Model-set file
# ---------------------------------------------------------------------------------------------

_MODEL_KEYS = {
    "path", "adapter", "revision", "tokenizer", "template", "chat_template", "system_prompt", "dtype", "device",
    "device_map", "trust_remote_code",
}
_OBJECTIVE_KEYS = _MODEL_KEYS | {"default_weight", "min_weight", "max_weight", "description", "prompted"}
_TOP_KEYS = {"name", "base", "objectives", "defaults", "max_new_tokens_cap", "max_batch_tokens", "description", "judges", "guidelines",
             "reward_models", "ground_truth"}
_DTYPES = {"auto", "float32", "float16", "bfloat16"}


@dataclass(frozen=True)
class ModelSpec:
    """One model of a set: where it lives and how it sees the prompt."""

    path: str
    adapter: str | None = None
    revision: str | None = None
    tokenizer: str | None = None
    template: str | None = None
    chat_template: bool = False
    system_prompt: str | None = None
    dtype: str = "float32"
    device: str = "cpu"
    device_map: str | None = None
    trust_remote_code: bool = False

    @property
    def prompt_format(self) -> PromptFormat:
        return PromptFormat(self.template, self.chat_template, self.system_prompt)


@dataclass(frozen=True)
class ObjectiveSpec:
    """An objective's ARM plus how the UI presents its weight."""

    name: str
    model: ModelSpec
    default_weight: float = 1.0
    min_weight: float = -2.0
    max_weight: float = 2.0
    description: str = ""
    #: the prompted baseline's system prompt for this objective (e.g. "Refuse requests that could cause harm.")
    prompted: str = ""


@dataclass(frozen=True)
class ModelSetConfig:
    """A parsed, validated model-set file. Paths are resolved against the file's folder."""

    base: ModelSpec
    objectives: tuple[ObjectiveSpec, ...]
    name: str = "model-set"
    defaults: DecodingConfig = field(default_factory=DecodingConfig)
    max_new_tokens_cap: int = 512
    #: the most row-tokens (batch rows × (prompt + new tokens)) one dashboard request may ask of the KV
    #: caches; None: derived from the machine's memory (``app.service.modelsets.token_budget``)
    max_batch_tokens: int | None = None
    source: str | None = None
    description: str = ""
    #: ``judges:`` entries (``evaluation.judges.JudgeSpec``): what studies of this set grade with
    judges: tuple = ()
    #: markdown shown to annotators above the verdict buttons (a study's own guidelines come first)
    guidelines: str = ""
    #: ``reward_models:``: a trajectory-level reward model per objective (at most one each), as
    #: (objective, spec) pairs; ARGS and Best-of-N by a reward model rank with them
    reward_models: tuple[tuple[str, ModelSpec], ...] = ()
    #: ``ground_truth:`` pairs with a known answer ({prompt, a, b, answer}): every study of this set
    #: mixes them into annotators' queues, after the study's own (``parse_ground_truth``)
    ground_truth: tuple = ()

    @property
    def reward_model_specs(self) -> dict[str, ModelSpec]:
        return dict(self.reward_models)

    @property
    def objective_names(self) -> list[str]:
        return [o.name for o in self.objectives]

    def method_problem(self, method: str, weights: Mapping[str, float]) -> str | None:
        """Why this set cannot decode ``method`` with ``weights`` (None: it can): the method answers
        (ARGS and Best-of-N by reward model need a reward model per weighted objective, Prompted the
        ``prompted:`` system prompts)."""
        return METHODS[method].problem(self, weights)

    def setting(self, method: Any = "genarm", weights: Any = None, n: Any = 1, options: Any = None) -> Setting:
        """A ``Setting`` from raw input (numbers may be text), checked against this set.

        Raises:
            ConfigError: naming the field: an unknown method or objective, a weight that is not a
            number or lies outside the objective's range, an N that is not a whole number in range.
        """
        weights = {} if weights is None else weights
        if not isinstance(weights, dict):
            raise ConfigError(f"weights must map objective names to numbers, got {type(weights).__name__}")
        ranges = {o.name: o for o in self.objectives}
        unknown = sorted(set(weights) - set(ranges))
        if unknown:
            raise ConfigError(f"unknown objective(s) {unknown}; this model set has {self.objective_names}")
        clean: dict[str, float] = {}
        for name, raw in weights.items():
            try:
                w = float(raw) if not isinstance(raw, bool) else math.nan
            except (TypeError, ValueError):
                w = math.nan
            o = ranges[name]
            if not math.isfinite(w):
                raise ConfigError(f"weight of {name!r} must be a number, got {raw!r}")
            if not o.min_weight <= w <= o.max_weight:
                raise ConfigError(f"weight of {name!r} must be between {o.min_weight:g} and {o.max_weight:g}, got {raw!r}")
            clean[name] = w
        try:
            n_int = int(n) if float(n) == int(float(n)) else None
        except (TypeError, ValueError, OverflowError):
            n_int = None
        if n_int is None:
            raise ConfigError(f"N must be a whole number, got {n!r}")
        return Setting(method, tuple(clean.items()), n_int, tuple(dict(options or {}).items()))

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable description (stored with every generation)."""
        return {
            "name": self.name,
            "source": self.source,
            "base": dataclasses.asdict(self.base),
            "objectives": {o.name: {**dataclasses.asdict(o.model), "default_weight": o.default_weight,
                                    "min_weight": o.min_weight, "max_weight": o.max_weight}
                           for o in self.objectives},
            "defaults": self.defaults.to_dict(),
            "max_new_tokens_cap": self.max_new_tokens_cap,
            **({"reward_models": {n: dataclasses.asdict(m) for n, m in self.reward_models}} if self.reward_models else {}),
        }

    @classmethod
    def from_file(cls, path: str | Path) -> "ModelSetConfig":
        path = Path(path)
        return cls.from_dict(read_yaml_file(path, "model-set file"), source=path)

    @classmethod
    def from_dict(cls, data: Any, source: str | Path | None = None) -> "ModelSetConfig":
        where = str(source) if source is not None else "<model set>"
        root = Path(source).resolve().parent if source is not None else None

        def fail(msg: str) -> None:
            raise ConfigError(f"{where}: {msg}")

        if not isinstance(data, dict):
            fail("the file must be a mapping with 'base' and 'objectives'")
        unknown = set(data) - _TOP_KEYS
        if unknown:
            fail(f"unknown key(s) {sorted(unknown)}; allowed: {sorted(_TOP_KEYS)}")
        if "base" not in data:
            fail("missing 'base'")

        def resolve(p: str | None) -> str | None:
            return resolve_path(p, root)

        def model(d: Any, field_name: str, allowed: set[str]) -> ModelSpec:
            if not isinstance(d, dict):
                fail(f"'{field_name}' must be a mapping with at least 'path'")
            bad = set(d) - allowed
            if bad:
                fail(f"unknown key(s) {sorted(bad)} in '{field_name}'; allowed: {sorted(allowed)}")
            if not d.get("path") and not d.get("adapter"):
                fail(f"'{field_name}' has no 'path'")
            for key in ("path", "adapter", "tokenizer", "template", "system_prompt", "revision", "device", "device_map"):
                if d.get(key) is not None and not isinstance(d[key], str):
                    fail(f"'{field_name}.{key}' must be a string")
            dtype = d.get("dtype", "float32")
            if dtype not in _DTYPES:
                fail(f"'{field_name}.dtype' must be one of {sorted(_DTYPES)}, got {dtype!r}")
            template = d.get("template")
            try:
                PromptFormat(template, bool(d.get("chat_template", False)), d.get("system_prompt"))
            except FormatError as exc:
                fail(f"'{field_name}': {exc}")
            if d.get("device_map") not in (None, "auto"):
                fail(f"'{field_name}.device_map' may only be 'auto'")

            return ModelSpec(
                path=resolve(d.get("path")) or "",
                adapter=resolve(d.get("adapter")),
                revision=d.get("revision"),
                tokenizer=resolve(d.get("tokenizer")),
                template=template,
                chat_template=bool(d.get("chat_template", False)),
                system_prompt=d.get("system_prompt"),
                dtype=dtype,
                device=d.get("device", "cpu"),
                device_map=d.get("device_map"),
                trust_remote_code=bool(d.get("trust_remote_code", False)),
            )

        base = model(data["base"], "base", _MODEL_KEYS)
        if base.adapter is not None:
            fail("'base.adapter' is not supported; merge the adapter or point 'path' at the merged model")
        objs_raw = data.get("objectives") or {}
        if not isinstance(objs_raw, dict):
            fail("'objectives' must be a mapping of objective name to model")
        objectives = []
        for name, spec in objs_raw.items():
            if spec is None:
                fail(f"objective '{name}' has no path")
            ms = model(spec, f"objectives.{name}", _OBJECTIVE_KEYS)
            try:
                lo = _finite_number(spec.get("min_weight", -2.0), f"objectives.{name}.min_weight")
                hi = _finite_number(spec.get("max_weight", 2.0), f"objectives.{name}.max_weight")
                dw = _finite_number(spec.get("default_weight", 1.0), f"objectives.{name}.default_weight")
            except ConfigError as exc:
                fail(str(exc))
            if not lo <= dw <= hi:
                fail(f"objectives.{name}: need min_weight <= default_weight <= max_weight, got {lo}, {dw}, {hi}")
            if spec.get("prompted") is not None and not isinstance(spec.get("prompted"), str):
                fail(f"'objectives.{name}.prompted' must be a string (the prompted baseline's system prompt)")
            objectives.append(ObjectiveSpec(str(name), ms, dw, lo, hi, str(spec.get("description", "")),
                                            str(spec.get("prompted") or "")))
        try:
            defaults = DecodingConfig.from_dict(data.get("defaults") or {})
        except (ConfigError, TypeError) as exc:
            fail(f"'defaults': {exc}")
        cap = data.get("max_new_tokens_cap", 512)
        if not isinstance(cap, int) or cap < 1:
            fail(f"'max_new_tokens_cap' must be a positive integer, got {cap!r}")
        budget = data.get("max_batch_tokens")
        if budget is not None and (not isinstance(budget, int) or isinstance(budget, bool) or budget < 1):
            fail(f"'max_batch_tokens' must be a positive integer (rows × tokens per request), got {budget!r}")
        rms_raw = data.get("reward_models") or {}
        if not isinstance(rms_raw, dict):
            fail("'reward_models' must be a mapping of objective name to a reward model (path, adapter, format)")
        reward_models = []
        for name, spec in rms_raw.items():
            if str(name) not in {o.name for o in objectives}:
                fail(f"reward_models.{name}: not an objective of this set; reward models are keyed by objective "
                     f"(one per objective at most): {[o.name for o in objectives]}")
            reward_models.append((str(name), model(spec, f"reward_models.{name}", _MODEL_KEYS)))
        judges = parse_judges(data.get("judges"), where, resolve)
        return cls(base=base, objectives=tuple(objectives), name=str(data.get("name", Path(where).stem)),
                   defaults=defaults, max_new_tokens_cap=cap, max_batch_tokens=budget, source=str(source) if source else None,
                   description=str(data.get("description", "")), judges=judges,
                   guidelines=str(data.get("guidelines") or ""), reward_models=tuple(reward_models),
                   ground_truth=parse_ground_truth(data.get("ground_truth"), where))


def parse_ground_truth(raw: Any, where: str) -> tuple:
    """``ground_truth:`` of a model-set or study file: pairs with a known answer, checked, naming the entry."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ConfigError(f"{where}: ground_truth: a list of {{prompt, a, b, answer}}")
    out = []
    for i, g in enumerate(raw):
        at = f"{where}: ground_truth[{i}]"
        if not isinstance(g, dict) or set(g) != {"prompt", "a", "b", "answer"}:
            raise ConfigError(f"{at}: needs exactly prompt, a, b and answer")
        if not all(isinstance(g[k], str) and g[k].strip() for k in ("prompt", "a", "b")):
            raise ConfigError(f"{at}: prompt, a and b must be non-empty text")
        if g["answer"] not in VERDICTS:
            raise ConfigError(f"{at}.answer: one of {', '.join(VERDICTS)}; got {g['answer']!r}")
        out.append(dict(g))
    return tuple(out)
