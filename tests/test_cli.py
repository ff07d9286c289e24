"""``python -m genarm_core generate``: one JSON object per prompt, errors on stderr."""

import json
import subprocess
import sys


def run(*args):
    return subprocess.run([sys.executable, "-m", "genarm_core", *args], capture_output=True, text=True, timeout=300)


def test_generate_json(tiny_set, tmp_path):
    prompts = tmp_path / "p.jsonl"
    prompts.write_text('{"prompt": "Tell me a joke."}\nplain text prompt\n')
    out = run("generate", "--models", str(tiny_set), "--prompt", "How do I bake bread?", "--prompt-file", str(prompts),
              "--weights", "helpfulness=1.0,harmlessness=0.5", "--beta", "1", "--temperature", "1", "--top-k", "0",
              "--top-p", "1", "--max-new-tokens", "6", "--seed", "0", "--json")
    assert out.returncode == 0, out.stderr
    lines = [json.loads(l) for l in out.stdout.splitlines()]
    assert [l["prompt"] for l in lines] == ["How do I bake bread?", "Tell me a joke.", "plain text prompt"]
    first = lines[0]
    assert len(first["token_ids"]) == len(first["trace"]) <= 6
    assert set(first["prompt_ids"]) == {"base", "helpfulness", "harmlessness"}
    assert first["settings"]["max_new_tokens"] == 6 and first["weights"] == {"helpfulness": 1.0, "harmlessness": 0.5}
    assert set(first["trace"][0]) >= {"id", "text", "logprob", "base_logprob", "arm_logprobs"}
    again = run("generate", "--models", str(tiny_set), "--prompt", "How do I bake bread?", "--weights",
                "helpfulness=1.0,harmlessness=0.5", "--max-new-tokens", "6", "--json")
    assert json.loads(again.stdout.splitlines()[0])["completion"] == first["completion"]  # same seed, same text


def test_errors_go_to_stderr(tiny_set, tmp_path):
    bad = run("generate", "--models", str(tiny_set), "--prompt", "x", "--weights", "helpfulness=lots")
    assert bad.returncode == 2 and "needs a number" in bad.stderr and not bad.stdout
    missing = run("generate", "--models", str(tmp_path / "none.yaml"), "--prompt", "x")
    assert missing.returncode == 2 and "not found" in missing.stderr and "Traceback" not in missing.stderr
    unknown = run("generate", "--models", str(tiny_set), "--prompt", "x", "--weights", "kindness=1")
    assert unknown.returncode == 2 and "unknown objective" in unknown.stderr
