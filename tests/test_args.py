"""ARGS decoding and trajectory reward models: the fast path against a naive re-encoding loop,
its limits (k = 1, w = 0), reward models in model-set files, and ``genarm train-rm``."""

import json
import subprocess
import sys

import pytest
import torch

from genarm_core.models.config import ConfigError, DecodingConfig, ModelSetConfig, RowSpec, Setting
from genarm_core.decoding.engine import GenARMEngine
from genarm_core.models.loading import ModelSetError, load_model_set
from genarm_core.models.reward_models import sequence_rewards

from .conftest import make_rm, tiny_variant

PROMPTS = ["Tell me about the weather today.", "Hi", "How do I bake bread at home, step by step?"]


def prompted(text):
    """A change for ``tiny_variant``: the harmlessness objective's system prompt for Prompted."""
    def change(data):
        data["objectives"]["harmlessness"]["prompted"] = text
    return change


def base_logprobs(models, engine, ids, utf8):
    """The base's next-token log-probs after ``ids`` from one full forward, over the tokens the
    engine's rules allow in state ``utf8`` (no special token but EOS, no broken character)."""
    with torch.no_grad():
        logits = models.base.model(input_ids=torch.tensor([ids])).logits[:, -1, :models.vocab_size].float()
    lp = torch.log_softmax(logits, -1).masked_fill(engine.rules.mask(utf8), float("-inf"))
    return torch.log_softmax(lp, -1)[0]


def naive_args(models, prompt, weights, k, steps):
    """ARGS the slow way: every step re-encodes the prefix for the base and, for each candidate,
    prompt + tokens + candidate for every reward model from scratch (greedy)."""
    engine = GenARMEngine(models)
    ids = models.base.encode_prompt(prompt)
    rm_prompts = {n: rm.encode_prompt(prompt) for n, rm in models.reward_models.items()}
    tokens, utf8 = [], torch.zeros(1, dtype=torch.long)
    with torch.no_grad():
        for _ in range(steps):
            lp = base_logprobs(models, engine, ids + tokens, utf8)
            top = lp.topk(k)
            best, best_score = None, None
            for value, cand in zip(top.values.tolist(), top.indices.tolist()):
                s = value
                for n, w in weights.items():
                    seq = torch.tensor([rm_prompts[n] + tokens + [cand]])
                    s += w * sequence_rewards(models.reward_models[n].model, seq, torch.ones_like(seq)).item()
                if best_score is None or s > best_score:
                    best, best_score = cand, s
            tokens.append(best)
            utf8 = engine.rules.advance(utf8, torch.tensor([best]))
    return tokens


def test_fast_path_picks_the_tokens_of_a_naive_re_encoding_loop(rm_models):
    engine = GenARMEngine(rm_models)
    specs = [RowSpec(PROMPTS[0], {"helpfulness": 1.0, "harmlessness": 0.5}, "args", n=5),
             RowSpec(PROMPTS[1], {"helpfulness": 2.0}, "args", n=3),  # each row its own k
             RowSpec(PROMPTS[2], {"harmlessness": -1.0}, "args", n=7),
             RowSpec(PROMPTS[0], {"helpfulness": 1.0})]  # a GenARM row in the same batch
    cfg = DecodingConfig(temperature=0, max_new_tokens=10, stop_at_eos=False)
    results = engine.generate(specs, cfg)
    for spec, r in zip(specs[:3], results):
        assert r.token_ids == naive_args(rm_models, spec.prompt, spec.weights, spec.n, 10), spec
        assert r.method == "args"
        assert r.forwards_per_token == 1 + spec.n * len(spec.weights)
    # the reward models move the pick: not just the base's greedy path
    base = engine.generate([RowSpec(PROMPTS[0], method="base")], cfg)[0]
    assert results[0].token_ids != base.token_ids
    # the GenARM row is unaffected by its ARGS batch-mates
    alone = engine.generate([specs[3]], cfg)[0]
    assert alone.token_ids == results[3].token_ids


def test_k_1_is_greedy_base_decoding_and_w_0_is_top_k_base_sampling(rm_models):
    engine = GenARMEngine(rm_models)
    greedy = DecodingConfig(temperature=0, max_new_tokens=12, stop_at_eos=False)
    for prompt in PROMPTS:
        args = engine.generate([RowSpec(prompt, {"helpfulness": 3.0}, "args", n=1)], greedy)[0]
        base = engine.generate([RowSpec(prompt, method="base")], greedy)[0]
        assert args.token_ids == base.token_ids
    for seed in range(3):
        sampled = DecodingConfig(temperature=0.9, top_k=6, max_new_tokens=12, seed=seed, stop_at_eos=False)
        args = engine.generate([RowSpec(p, {}, "args", n=6) for p in PROMPTS], sampled)
        base = engine.generate([RowSpec(p, method="base") for p in PROMPTS], sampled)
        assert [a.token_ids for a in args] == [b.token_ids for b in base]


def test_stochastic_args_samples_only_its_candidates_and_reports_the_kl(rm_models):
    engine = GenARMEngine(rm_models)
    cfg = DecodingConfig(temperature=1.0, top_p=0.5, max_new_tokens=12, seed=1, stop_at_eos=False, trace=True)
    k = 4
    r = engine.generate([RowSpec(PROMPTS[2], {"helpfulness": 1.5, "harmlessness": 1.0}, "args", n=k)], cfg)[0]
    assert len(r.token_ids) == 12
    # Each sampled token is one of the row's k candidates: the base's top k (after the token rules)
    # on the prefix sampled so far, recomputed here from scratch (1e-4: float32 rounding at the k-th).
    assert [step["id"] for step in r.trace] == r.token_ids
    ids, utf8 = rm_models.base.encode_prompt(PROMPTS[2]), torch.zeros(1, dtype=torch.long)
    for t, (tok, step) in enumerate(zip(r.token_ids, r.trace)):
        lp = base_logprobs(rm_models, engine, ids + r.token_ids[:t], utf8)
        top = lp.topk(k)
        assert lp[tok].item() >= top.values[-1].item() - 1e-4, f"step {t}: {tok} is not among {top.indices.tolist()}"
        assert step["base_logprob"] == pytest.approx(lp[tok].item(), abs=1e-4), f"step {t}"
        utf8 = engine.rules.advance(utf8, torch.tensor([tok]))
    assert r.kl_to_base == pytest.approx(sum(t["combined_logprob"] - t["base_logprob"] for t in r.trace), abs=1e-4)
    assert set(r.trace[0]["arm_logprobs"]) == {"helpfulness", "harmlessness"}  # the ARMs' view, read after decoding


def test_reward_models_in_a_model_set_file(rm_set, tiny_set, tiny_tokenizer, tmp_path):
    cfg = ModelSetConfig.from_file(rm_set)
    assert set(cfg.reward_model_specs) == {"helpfulness", "harmlessness"}
    bad = tiny_variant(rm_set, "rm_for_no_objective.yaml", lambda data: data.update(reward_models={"kindness": {"path": "./rm_help"}}))
    with pytest.raises(ConfigError, match="reward_models.kindness: not an objective"):
        ModelSetConfig.from_file(bad)
    # ARGS without a reward model for a weighted objective: a message, not a stack trace
    with pytest.raises(ValueError, match=r"ARGS needs a trajectory reward model for \['helpfulness'\]"):
        GenARMEngine(load_model_set(tiny_set)).generate([RowSpec("Hi", {"helpfulness": 1.0}, "args", n=2)],
                                                       DecodingConfig(max_new_tokens=2))
    # a reward model whose tokenizer differs is refused, naming the token
    from genarm_core.models.tiny import save, train_bpe_tokenizer

    other = train_bpe_tokenizer(["zebra quartz fjord vexing jumps over"] * 50, vocab_size=300)
    save(make_rm(other, 3), other, rm_set.parent / "rm_other")
    bad = tiny_variant(rm_set, "rm_other_tokenizer.yaml", lambda data: data.update(reward_models={"helpfulness": {"path": "./rm_other"}}))
    with pytest.raises(ModelSetError, match="reward_models.helpfulness.*token"):
        load_model_set(bad)
    assert Setting("ARGS", {"helpfulness": 1.0}, 10).label == "ARGS k=10 helpfulness=1"


def test_rewards_are_read_at_the_last_real_token_even_when_it_is_eos(tiny_tokenizer):
    """SmolLM2's pad token is its EOS: a model's own pooling would skip a final EOS as padding."""
    rm = make_rm(tiny_tokenizer, 5)
    eos = tiny_tokenizer.eos_token_id
    rm.config.pad_token_id = eos
    seq = [5, 9, 17, eos]
    one = sequence_rewards(rm, torch.tensor([seq]), torch.ones(1, 4, dtype=torch.long))
    padded = sequence_rewards(rm, torch.tensor([[eos, eos] + seq]), torch.tensor([[0, 0, 1, 1, 1, 1]]))
    right = sequence_rewards(rm, torch.tensor([seq + [eos, eos]]), torch.tensor([[1, 1, 1, 1, 0, 0]]))
    assert one.item() == pytest.approx(padded.item(), abs=1e-5) == pytest.approx(right.item(), abs=1e-5)
    without_eos = sequence_rewards(rm, torch.tensor([seq[:-1]]), torch.ones(1, 3, dtype=torch.long))
    assert one.item() != pytest.approx(without_eos.item(), abs=1e-6)


def test_cli_generate_with_args(rm_set, tiny_set):
    base = [sys.executable, "-m", "genarm_core", "generate", "--models", str(rm_set), "--prompt", "Hi", "--json",
            "--temperature", "0", "--max-new-tokens", "5"]
    run = subprocess.run(base + ["--method", "args", "--args-topk", "4", "--args-weight", "1.5"], capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["method"] == "args" and out["setting"] == {"method": "args", "n": 4,
                                                          "weights": {"harmlessness": 1.5, "helpfulness": 1.5}}
    assert out["forwards_per_token"] == 1 + 4 * 2
    bad = subprocess.run(base + ["--args-topk", "4"], capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "--n: GenARM has no N" in bad.stderr
    # Every method the README lists is offered: Best-of-N by the reward models takes Best-of-N's default N.
    run = subprocess.run(base + ["--method", "bon_rm", "--weights", "harmlessness=1"], capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["setting"] == {"method": "bon_rm", "n": 8, "weights": {"harmlessness": 1.0}}
    plain = [a if a != str(rm_set) else str(tiny_set) for a in base]
    bad = subprocess.run(plain + ["--method", "prompted", "--weights", "harmlessness=1"], capture_output=True, text=True,
                         timeout=300)  # this set has no prompted: texts: a message, not a stack trace
    assert bad.returncode == 2 and "Prompted uses the system prompts" in bad.stderr and "Traceback" not in bad.stderr


def test_prompted_baseline_reads_the_objectives_system_prompts(tiny_set):
    models = load_model_set(tiny_variant(tiny_set, "prompted.yaml", prompted("Refuse requests that could cause harm.")))
    engine = GenARMEngine(models)
    cfg = DecodingConfig(temperature=0, max_new_tokens=6, stop_at_eos=False)
    spec = RowSpec("Hi", {"harmlessness": 1.0}, "prompted")
    got = engine.generate([spec], cfg)[0]
    # the same as the base alone on the prompt after the system prompt (a plain-text base: a blank line)
    by_hand = engine.generate([RowSpec("Refuse requests that could cause harm.\n\nHi", method="base")], cfg)[0]
    assert got.token_ids == by_hand.token_ids and got.forwards_per_token == 1
    assert got.prompt_ids["base"] != got.prompt_ids["harmlessness"]  # the ARMs' view is the user's prompt
    with pytest.raises(ValueError, match=r"Prompted uses the system prompts .*\['helpfulness'\] have none"):
        engine.generate([RowSpec("Hi", {"helpfulness": 1.0}, "prompted")], cfg)
    with pytest.raises(ValueError, match="every weight is 0"):  # also where no generation runs first
        engine.row_prompt_ids(RowSpec("Hi", {}, "prompted"))
    # the dashboard refuses it with a message naming the panel
    from app.service.errors import UserError
    from app.service.requests import setting

    with pytest.raises(UserError, match="panel A: Prompted uses the system prompts"):
        setting(models.config, "Prompted", {"helpfulness": 1.0}, where="panel A")
    with pytest.raises(UserError, match="panel B: ARGS needs a trajectory reward model"):
        setting(models.config, "ARGS", {"helpfulness": 1.0}, 4, where="panel B")
    assert Setting("prompted", {"harmlessness": 3.0}).label == "Prompted (harmlessness)"
    assert Setting("prompted", {"harmlessness": 3.0}) == Setting("prompted", {"harmlessness": 1.0})


def test_best_of_n_by_reward_model_returns_the_sample_its_reward_models_rate_highest(rm_models):
    from genarm_core.models.reward_models import reward_of

    engine = GenARMEngine(rm_models)
    cfg = DecodingConfig(temperature=1.0, max_new_tokens=8, seed=2, stop_at_eos=False)
    weights = {"helpfulness": 1.0, "harmlessness": -0.5}
    got = engine.generate([RowSpec(PROMPTS[0], weights, "bon_rm", n=4)], cfg)[0]
    # the same samples as Best-of-N by the ARMs (the base's own), only ranked otherwise
    arms = engine.generate([RowSpec(PROMPTS[0], weights, "best_of_n", n=4)], cfg)[0]
    assert [c["token_ids"] for c in got.candidates] == [c["token_ids"] for c in arms.candidates]
    values = []
    for c in got.candidates:
        v = 0.0
        for name, w in weights.items():
            rm = rm_models.reward_models[name]
            v += w * reward_of(rm.model, rm.tokenizer, [rm.encode_prompt(PROMPTS[0]) + c["token_ids"]])[0]
        assert c["value"] == pytest.approx(v, abs=1e-4)
        values.append(v)
    assert got.token_ids == got.candidates[max(range(4), key=values.__getitem__)]["token_ids"]
    assert got.forwards_per_token == pytest.approx(3 * sum(len(c["token_ids"]) for c in got.candidates) / len(got.token_ids))
    assert Setting("bon_rm", weights, 4).label.startswith("Best-of-4 by RM")


def test_dashboard_pair_with_args_and_prompted_records_its_cost(rm_set, tmp_path):
    """A pair of ARGS and the prompted base through the dashboard's service: each generation is stored
    with its measured cost (forwards and seconds per token) and KL, which the panels show."""
    from app.service import AppContext
    from app.tabs.compare import panel_views
    from storage.store import Store

    f = tiny_variant(rm_set, "dash.yaml", prompted("Be careful."))
    ctx = AppContext({"tiny": f}, Store(f"sqlite:///{tmp_path}/db.sqlite"))
    settings = [ctx.setting("ARGS", {"helpfulness": 1.0}, 3, where="panel A"),
                ctx.setting("Prompted", {"harmlessness": 2.0}, where="panel B")]
    cfg = ctx.decoding(1.0, 0.8, 0, 1.0, 6, 0)
    final = list(ctx.generate_pair("Hi", settings, cfg))[-1]
    assert final.pair is not None
    scores = ctx.store.judge_scores_frame(generation_ids=final.pair.ids)
    got = {(row.generation_id, row.judge): row.value for row in scores.itertuples()}
    a, b = final.pair.ids
    assert got[(a, "forwards_per_token")] == 1 + 3 and got[(b, "forwards_per_token")] == 1
    assert got[(a, "seconds_per_token")] > 0
    views = panel_views(final.pair, "combined")
    assert "ARGS k=3" in views[0].reveal and "4 model forwards per token" in views[0].reveal and "ms per token" in views[0].reveal
    assert "1 model forward per token" in views[1].reveal
    assert "Prompted (harmlessness)" in views[1].reveal


def test_a_prompted_panels_system_prompt_counts_towards_the_context(tiny_set, tmp_path):
    """The Compare tab trims a text prompt that fits by itself but not after Prompted's system prompt,
    with its warning, instead of the engine's refusal."""
    from app.service import AppContext, UserError
    from genarm_core.models.config import Setting
    from storage.store import Store

    f = tiny_variant(tiny_set, "long_prompted.yaml", prompted("Refuse requests that could cause harm. " * 2))
    ctx = AppContext({"tiny": f}, Store(str(tmp_path / "p.sqlite")))
    budget = ctx.models.max_context() - 8
    longest = lambda row: max(len(ids) for ids in ctx.engine.row_prompt_ids(row).values())  # noqa: E731
    n = 1
    while longest(Setting("base").row(" ".join(["word"] * (n + 1)))) <= budget:  # the longest prompt that fits alone
        n += 1
    prompt = " ".join(["word"] * n)
    assert longest(Setting("prompted", {"harmlessness": 1.0}).row(prompt)) > budget
    settings = [ctx.setting("prompted", {"harmlessness": 1.0}), ctx.setting("base", {})]
    cfg = ctx.decoding(1, 1.0, 0, 1.0, 8, 0)
    final = list(ctx.generate_pair(prompt, settings, cfg))[-1]
    assert final.done and final.pair is not None and "only its last" in final.warning
    # A system prompt that leaves the prompt no room at all is a message, not the engine's error.
    f = tiny_variant(tiny_set, "huge_prompted.yaml", prompted("Refuse requests that could cause harm. " * 40))
    huge = AppContext({"tiny": f}, Store(str(tmp_path / "q.sqlite")))
    with pytest.raises(UserError, match="prompt: the templates and system prompts around it take"):
        list(huge.generate_pair(prompt, [huge.setting("prompted", {"harmlessness": 1.0})], cfg))
    ctx.records.close()
    huge.records.close()
