"""The generation loop: the math holds end to end on tiny real models."""

import threading

import pytest
import torch

from genarm_core.models.config import DecodingConfig, RowSpec
from genarm_core.decoding.engine import GenARMEngine, PromptTooLong, row_seed
from genarm_core.decoding.math import combine_logprobs, restrict_logprobs, sample_from_logprobs, sampling_logprobs
from genarm_core.models.scoring import score_sequences
from genarm_core.decoding.tokens import TokenRules

from .conftest import assert_same_decoding, tiny_variant, write_lora_set

PROMPT = "Human: How do I bake bread? Assistant:"


def full_logprobs(lm, ids, V):
    """log_softmax of the last position, from a full forward (no cache)."""
    with torch.no_grad():
        logits = lm.model(input_ids=torch.tensor([ids])).logits[0, -1, :V]
    return torch.log_softmax(logits.float(), -1)


def test_zero_weights_sample_exactly_like_the_base_alone(engine, tiny_models):
    cfg = DecodingConfig(temperature=0.9, top_k=50, top_p=0.95, max_new_tokens=20, seed=7, stop_at_eos=False)
    zero = engine.generate([RowSpec(PROMPT, {"helpfulness": 0.0, "harmlessness": 0.0})], cfg)[0]
    base = engine.generate([RowSpec(PROMPT, method="base")], cfg)[0]
    assert zero.token_ids == base.token_ids
    # Reference: the base model alone, recomputed from scratch, same sampler and random stream, over
    # the tokens that may come next (no special token but EOS, no broken character).
    lm, V = tiny_models.base, tiny_models.vocab_size
    rules = TokenRules.for_tokenizer(lm.tokenizer, V, engine.eos_ids)
    ids = lm.encode_prompt(PROMPT)
    g = torch.Generator().manual_seed(row_seed(7, PROMPT))
    ref, state = [], torch.zeros(1, dtype=torch.long)
    for _ in range(20):
        allowed = restrict_logprobs(full_logprobs(lm, ids + ref, V).unsqueeze(0), rules.mask(state))
        token = sample_from_logprobs(sampling_logprobs(allowed, 0.9, 50, 0.95), torch.rand((), generator=g).reshape(1))
        ref.append(token.item())
        state = rules.advance(state, token)
    assert base.token_ids == ref


def test_kv_cached_trace_matches_full_recomputation(engine, tiny_models):
    weights = {"helpfulness": 1.5, "harmlessness": -0.7}
    cfg = DecodingConfig(beta=0.8, temperature=0.7, top_k=40, top_p=0.9, max_new_tokens=16, seed=3, trace=True, stop_at_eos=False)
    res = engine.generate([RowSpec(PROMPT, weights)], cfg)[0]
    assert len(res.trace) == 16
    V = tiny_models.vocab_size
    names = tiny_models.objectives
    prompt_ids = {m.name: m.encode_prompt(PROMPT) for m in tiny_models.members()}
    rules = TokenRules.for_tokenizer(tiny_models.tokenizer, V, engine.eos_ids)
    state = torch.zeros(1, dtype=torch.long)
    for t, step in enumerate(res.trace):
        prefix = res.token_ids[:t]
        base = restrict_logprobs(full_logprobs(tiny_models.base, prompt_ids["base"] + prefix, V).unsqueeze(0), rules.mask(state))[0]
        state = rules.advance(state, torch.tensor([step["id"]]))
        arms = torch.stack([full_logprobs(tiny_models.arms[n], prompt_ids[n] + prefix, V) for n in names])
        tok = step["id"]
        assert step["base_logprob"] == pytest.approx(base[tok].item(), abs=1e-4)
        for k, n in enumerate(names):
            assert step["arm_logprobs"][n] == pytest.approx(arms[k][tok].item(), abs=1e-4)
        combined = combine_logprobs(base.unsqueeze(0), arms.unsqueeze(1), torch.tensor([[weights[n] for n in names]]), 0.8)
        final = sampling_logprobs(combined, 0.7, 40, 0.9)
        assert step["combined_logprob"] == pytest.approx(combined[0, tok].item(), abs=1e-4)
        assert step["logprob"] == pytest.approx(final[0, tok].item(), abs=1e-4)
    # Sequence scores are the sums of the trace, and agree with the batched scorer.
    scores = score_sequences(tiny_models, [PROMPT], [res.token_ids])
    for n in names:
        assert res.scores[n] == pytest.approx(sum(s["arm_logprobs"][n] for s in res.trace), abs=1e-4)
        assert res.scores[n] == pytest.approx(scores[n][0], abs=1e-3)


def test_batched_equals_unbatched_with_padding(engine):
    prompts = ["Hi", PROMPT, "Tell me a joke about a very lazy dog, please."]
    weights = [{"helpfulness": 1.0}, {"harmlessness": 2.0}, {}]
    cfg = DecodingConfig(temperature=0, max_new_tokens=12, trace=True, stop_at_eos=False)
    batched = engine.generate([RowSpec(p, w) for p, w in zip(prompts, weights)], cfg)
    assert_same_decoding([engine.generate([RowSpec(p, w)], cfg)[0] for p, w in zip(prompts, weights)], batched, 1e-4)
    sampled = DecodingConfig(temperature=1.0, max_new_tokens=12, seed=11, stop_at_eos=False)
    batched = engine.generate([RowSpec(p, w) for p, w in zip(prompts, weights)], sampled)
    assert [engine.generate([RowSpec(p, w)], sampled)[0].token_ids for p, w in zip(prompts, weights)] == [b.token_ids for b in batched]


def test_same_seed_same_text_and_ab_rows_share_randomness(engine):
    cfg = DecodingConfig(temperature=1.0, max_new_tokens=15, seed=5, stop_at_eos=False)
    a1, a2 = engine.generate([RowSpec(PROMPT, {"helpfulness": 1.0}), RowSpec(PROMPT, {"helpfulness": 1.0})], cfg)
    assert a1.token_ids == a2.token_ids  # identical settings in one batch: identical output
    # Different prompts in one batch draw independent random numbers.
    assert row_seed(5, PROMPT) != row_seed(5, PROMPT + " ") and row_seed(5, PROMPT) == row_seed(5, PROMPT)
    again = engine.generate([RowSpec(PROMPT, {"helpfulness": 1.0})], cfg)[0]
    assert again.text == a1.text
    other = engine.generate([RowSpec(PROMPT, {"helpfulness": 1.0})], DecodingConfig(temperature=1.0, max_new_tokens=15, seed=6, stop_at_eos=False))[0]
    assert other.token_ids != a1.token_ids


def test_weights_steer_the_distribution(engine):
    cfg = DecodingConfig(temperature=0, max_new_tokens=1, trace=True)
    plain, steered = engine.generate([RowSpec(PROMPT, {}), RowSpec(PROMPT, {"helpfulness": 5.0})], cfg)
    assert plain.trace[0]["combined_logprob"] == plain.trace[0]["base_logprob"]
    assert steered.trace[0]["combined_logprob"] != steered.trace[0]["base_logprob"]


def test_zero_weight_skips_that_arms_forward(tiny_models):
    engine = GenARMEngine(tiny_models, prompt_cache_mb=0)  # every prefill runs: one forward per step + 1
    calls = {n: 0 for n in tiny_models.objectives}
    hooks = [tiny_models.arms[n].model.register_forward_hook(lambda *a, n=n: calls.__setitem__(n, calls[n] + 1))
             for n in calls]
    try:
        engine.generate([RowSpec(PROMPT, {"helpfulness": 1.0, "harmlessness": 0.0})], DecodingConfig(max_new_tokens=5, stop_at_eos=False))
        assert calls == {"helpfulness": 5, "harmlessness": 0}
        engine.generate([RowSpec(PROMPT, {"helpfulness": 1.0})], DecodingConfig(max_new_tokens=5, trace=True, stop_at_eos=False))
        # a trace reports every ARM, but one that does not steer is read after decoding: one forward, not 5
        assert calls["harmlessness"] == 1
    finally:
        for h in hooks:
            h.remove()


def test_stream_deltas_add_up_and_stop_conditions(engine):
    cfg = DecodingConfig(temperature=1.0, max_new_tokens=30, seed=1, stop_at_eos=False)
    rows = [RowSpec(PROMPT, {"helpfulness": 1.0}), RowSpec(PROMPT, method="base")]
    pieces = ["", ""]
    events = list(engine.stream(rows, cfg))
    for ev in events[:-1]:
        for i, d in enumerate(ev.deltas):
            pieces[i] += d
    final = events[-1].results
    assert events[-1].finished and [r.finish_reason for r in final] == ["length", "length"]
    assert [len(r.token_ids) for r in final] == [30, 30]
    for i in range(2):
        assert (pieces[i] + events[-1].deltas[i]) == final[i].text
    # Stop string: text cut before it.
    text = final[0].text
    some = next(text[i:i + 3] for i in range(3, len(text) - 3) if text[i:i + 3].strip())  # always exists: 30 tokens
    stopped = engine.generate(rows[:1], DecodingConfig(temperature=1.0, max_new_tokens=30, seed=1, stop=(some,), stop_at_eos=False))[0]
    assert stopped.finish_reason == "stop"
    assert some not in stopped.text and stopped.text == text[: text.find(some)]


def test_eos_ends_each_row_on_its_own(tiny_models):
    eng = GenARMEngine(tiny_models)
    cfg = DecodingConfig(temperature=0, max_new_tokens=12, stop_at_eos=False)
    rows = [RowSpec(PROMPT), RowSpec("Tell me a joke.")]
    free = eng.generate(rows, cfg)
    eos = free[0].token_ids[3]
    assert eos not in free[1].token_ids, "pick prompts whose greedy outputs differ"
    eng.eos_ids = {eos}  # pretend that token is EOS
    ended, other = eng.generate(rows, DecodingConfig(temperature=0, max_new_tokens=12))
    first = free[0].token_ids.index(eos)
    assert ended.finish_reason == "eos" and ended.token_ids == free[0].token_ids[: first + 1]
    assert other.finish_reason == "length" and other.token_ids == free[1].token_ids


def test_cancel_stops_generation(engine):
    cancel = threading.Event()
    seen = 0
    for ev in engine.stream([RowSpec(PROMPT, {"helpfulness": 1.0})], DecodingConfig(max_new_tokens=200, stop_at_eos=False), cancel):
        seen += 1
        if seen == 3:
            cancel.set()
    assert ev.finished and ev.results[0].finish_reason == "cancelled" and len(ev.results[0].token_ids) == 4


def test_best_of_n_picks_the_highest_weighted_score(engine, tiny_models):
    weights = {"helpfulness": 1.0, "harmlessness": 0.5}
    res = engine.generate([RowSpec(PROMPT, weights, method="best_of_n", n=4)], DecodingConfig(max_new_tokens=8, seed=2, stop_at_eos=False))[0]
    assert len(res.candidates) == 4
    values = [c["value"] for c in res.candidates]
    assert res.text == res.candidates[values.index(max(values))]["text"]
    sc = score_sequences(tiny_models, [PROMPT] * 4, [c["token_ids"] for c in res.candidates])
    for i, c in enumerate(res.candidates):
        assert c["value"] == pytest.approx(sum(w * sc[n][i] for n, w in weights.items()), abs=1e-3)
    # Candidate 0 is a plain base sample with the shared seed.
    base = engine.generate([RowSpec(PROMPT, method="base")], DecodingConfig(max_new_tokens=8, seed=2, stop_at_eos=False))[0]
    assert res.candidates[0]["token_ids"] == base.token_ids


def test_bad_requests_are_clear_errors(engine):
    with pytest.raises(ValueError, match="unknown objective"):
        engine.generate([RowSpec(PROMPT, {"nope": 1.0})], DecodingConfig())
    with pytest.raises(PromptTooLong):
        engine.generate([RowSpec(PROMPT * 200)], DecodingConfig(max_new_tokens=10))
    with pytest.raises(ValueError, match="empty"):
        engine.generate([RowSpec("")], DecodingConfig())
    with pytest.raises(ValueError, match="temperature"):
        DecodingConfig(temperature=-1)
    with pytest.raises(ValueError, match="number"):
        RowSpec(PROMPT, {"helpfulness": "a lot"})
    with pytest.raises(ValueError, match="finite"):
        RowSpec(PROMPT, {"helpfulness": float("nan")})


def test_templates_give_each_model_its_own_prompt_ids(tiny_set, tiny_tokenizer):
    from genarm_core.models.loading import load_model_set

    def templated(data):
        data["base"] = {"path": "./base"}
        data["objectives"] = {"helpfulness": {"path": "./help", "template": "Human: {prompt} Assistant:"}}
    eng = GenARMEngine(load_model_set(tiny_variant(tiny_set, "templated_help.yaml", templated)))
    res = eng.generate([RowSpec("bake bread?", {"helpfulness": 1.0})], DecodingConfig(max_new_tokens=3))[0]
    assert res.prompt_ids["base"] == tiny_tokenizer("bake bread?").input_ids
    assert res.prompt_ids["helpfulness"] == tiny_tokenizer("Human: bake bread? Assistant:").input_ids


@pytest.fixture(scope="module")
def lora_set(tmp_path_factory, tiny_set):
    """Two LoRA ARMs on the tiny base's own weights: loaded once, run as rows of one forward."""
    qv = {"target_modules": ["q_proj", "v_proj"]}
    return write_lora_set(tmp_path_factory.mktemp("lora_set"), tiny_set.parent / "base",
                          {"helpfulness": qv, "harmlessness": qv}, seed=0, name="lora.yaml")


@pytest.mark.parametrize("which", ["separate models", "shared LoRA base"])
def test_static_cache_decoding_equals_dynamic(which, tiny_models, lora_set):
    """The preallocated cache with fixed-shape in-place steps (what CUDA graphs replay) gives the
    same tokens and per-token log-probs as the growing cache, batched and one row at a time."""
    from genarm_core.models.loading import load_model_set

    models = tiny_models if which == "separate models" else load_model_set(lora_set)
    if which == "shared LoRA base":
        assert models.arms["helpfulness"].adapter_name is not None  # one group, per-row adapters
    dynamic, static = GenARMEngine(models, decode="dynamic"), GenARMEngine(models, decode="static")
    rows = [RowSpec(PROMPT, {"helpfulness": 1.5, "harmlessness": -0.5}), RowSpec("Hi", method="base"),
            RowSpec("Tell me a joke about a very lazy dog, please.", {"harmlessness": 2.0})]
    cfg = DecodingConfig(temperature=0.9, top_k=40, top_p=0.95, max_new_tokens=14, seed=4, trace=True, stop_at_eos=False)
    # The last two batches reuse the static caches and buffers of earlier ones of the same shape
    # and row layout (which ARM runs beside which row: what a captured graph replays), loaded with
    # other prompts of other lengths and other weights.
    again = [RowSpec(rows[2].prompt, {"helpfulness": 0.5, "harmlessness": 1.0}), RowSpec(PROMPT, method="base"),
             RowSpec("Hi", {"harmlessness": 1.0})]
    for i, batch in enumerate((rows, rows[:1], [RowSpec("Hi", {"helpfulness": 2.0, "harmlessness": 1.0})], again)):
        a, b = dynamic.generate(batch, cfg), static.generate(batch, cfg)
        assert static.last_decode["mode"] == "static"
        assert static.last_decode["reused"] == (i >= 2)
        assert_same_decoding(a, b, 1e-4)
    with pytest.raises(ValueError, match="CUDA"):
        GenARMEngine(models, decode="graph").generate(rows[:1], cfg)


@pytest.mark.parametrize("decode", ["dynamic", "static"])
def test_queueing_the_next_step_ahead_changes_nothing(tiny_models, decode):
    """On CUDA the next step is queued before the host books the current one (EOS, stop strings,
    streamed text, cancel); the events and results must be those of the plain loop, step by step."""
    plain = GenARMEngine(tiny_models, decode=decode, queue_ahead=False)
    ahead = GenARMEngine(tiny_models, decode=decode, queue_ahead=True)
    rows = [RowSpec(PROMPT, {"helpfulness": 1.0}), RowSpec("Tell me a joke.", method="base"),
            RowSpec(PROMPT, {"harmlessness": 1.0}, method="best_of_n", n=3)]
    eos = plain.generate(rows[:1], DecodingConfig(temperature=0.8, max_new_tokens=16, seed=5))[0].token_ids[4]
    for eng in (plain, ahead):
        eng.eos_ids = {eos}  # a token that does come up, so rows end early and at different steps

    def run(eng, cfg, cancel_after=None):
        cancel = threading.Event()
        events = []
        for ev in eng.stream(rows, cfg, cancel):
            events.append((ev.step, ev.texts, ev.deltas, ev.done))
            if cancel_after is not None and len(events) == cancel_after:
                cancel.set()
        results = [{k: v for k, v in r.to_dict().items() if k != "latency_s"} for r in ev.results]
        return events, results

    text = plain.generate(rows[:1], DecodingConfig(temperature=0.8, max_new_tokens=16, seed=6, stop_at_eos=False))[0].text
    stop = next(text[i:i + 2] for i in range(2, len(text) - 2) if text[i:i + 2].strip())
    for cfg, cancel_after in ((DecodingConfig(temperature=0.8, max_new_tokens=16, seed=5, trace=True), None),
                              (DecodingConfig(temperature=0.8, max_new_tokens=16, seed=6, stop=(stop,)), None),
                              (DecodingConfig(temperature=0, max_new_tokens=16), None),
                              (DecodingConfig(temperature=0.8, max_new_tokens=40, seed=7, stop_at_eos=False), 3)):
        assert run(ahead, cfg, cancel_after) == run(plain, cfg, cancel_after)
    reasons = {r["finish_reason"] for cfg in (DecodingConfig(temperature=0.8, max_new_tokens=16, seed=5),)
               for r in run(ahead, cfg)[1]}
    assert "eos" in reasons  # the early ends were exercised


def test_static_decoders_kept_are_bounded_and_can_be_released(tiny_models):
    eng = GenARMEngine(tiny_models, decode="static", static_decoders=1)
    cfg = DecodingConfig(temperature=0, max_new_tokens=4)
    one, two = [RowSpec(PROMPT)], [RowSpec(PROMPT), RowSpec("Hi")]
    for batch, reused in ((one, False), (one, True), (two, False), (one, False)):  # one kept: two evicts one
        eng.generate(batch, cfg)
        assert eng.last_decode["reused"] == reused
    eng.release_static()
    eng.generate(one, cfg)
    assert not eng.last_decode["reused"]


@pytest.mark.parametrize("which", ["separate models", "shared LoRA base"])
def test_values_read_after_decoding_equal_the_in_loop_ones(which, tiny_models, lora_set, monkeypatch):
    """An ARM runs in the loop only beside the rows it steers or ranks; what a trace or score_all
    reports of the others (a base-only panel's ARMs, a zero weight, a Best-of-N winner's view of
    an ARM it was not ranked by) is one teacher-forced forward after decoding. It equals what the
    loop read when every ARM ran beside every row (the old path), within 1e-5 in float32."""
    from genarm_core.models.loading import load_model_set

    models = tiny_models if which == "separate models" else load_model_set(lora_set)
    engine = GenARMEngine(models, decode="dynamic")
    rows = [RowSpec(PROMPT, {"helpfulness": 1.5}), RowSpec("Hi", method="base"),
            RowSpec("Tell me a joke about a very lazy dog, please.", {"harmlessness": 2.0}, "best_of_n", n=3)]
    cfg = DecodingConfig(temperature=0.9, top_p=0.95, max_new_tokens=12, seed=3, trace=True, stop_at_eos=False)
    posthoc = engine.generate(rows, cfg)
    # the base-only row's ARMs did not run in the loop
    assert engine._expand(rows, cfg)[0][1].needs == ()

    expand = GenARMEngine._expand

    def every_arm_in_the_loop(self, rows, cfg):
        internal, _ = expand(self, rows, cfg)
        active = self.models.objectives
        for r in internal:
            spec = rows[r.spec_index]
            r.alphas = [spec.weights.get(n, 0.0) if spec.method == "genarm" else 0.0 for n in active]
            r.needs = tuple(active)
        return internal, active

    monkeypatch.setattr(GenARMEngine, "_expand", every_arm_in_the_loop)
    inloop = engine.generate(rows, cfg)
    assert_same_decoding(posthoc, inloop, 1e-5)
    for a, b in zip(posthoc, inloop):
        assert a.scores.keys() == b.scores.keys() == set(models.objectives)
        for name in models.objectives:
            assert a.scores[name] == pytest.approx(b.scores[name], abs=1e-5)
        assert all(list(step["arm_logprobs"]) == models.objectives for step in a.trace)
    for ca, cb in zip(posthoc[2].candidates, inloop[2].candidates):
        assert ca["token_ids"] == cb["token_ids"]
        assert ca["scores"] == pytest.approx(cb["scores"], abs=1e-5)


def test_a_pair_runs_four_rows_not_six(tiny_models):
    """GenARM with two ARMs beside the base alone: the base runs both rows, each ARM only the GenARM row."""
    from genarm_core.decoding.runner import ForwardGroup

    seen = []
    init = ForwardGroup.__init__

    def spy(self, *a, **kw):
        init(self, *a, **kw)
        seen.append({m.name: len(self.rows[m.name]) for m in self.members})

    engine = GenARMEngine(tiny_models, decode="dynamic")
    rows = [RowSpec(PROMPT, {"helpfulness": 1.0, "harmlessness": 1.0}), RowSpec(PROMPT, method="base")]
    ForwardGroup.__init__ = spy
    try:
        engine.generate(rows, DecodingConfig(max_new_tokens=3, trace=True))
    finally:
        ForwardGroup.__init__ = init
    assert sum(sum(g.values()) for g in seen) == 4
