"""``python -m benchmarks.compare_page``: how long a pair takes on the real Compare tab, against the engine.

One process, one model set (default: the built-in ``smollm2``), the page's own default settings
(GenARM at the default weights in panel A, the base alone in panel B, the token view on). Each
round, in rotated order:

- **page**: a real headless Chromium (Debian's ``chromium``, driven by Playwright) types the prompt,
  clicks Generate and waits until the vote buttons unlock (the pair is decoded, stored and shown;
  watched by a MutationObserver, so the wait itself takes no CPU);
- **service**: ``AppContext.generate_pair`` on the same request, every update consumed;
- **engine**: ``GenARMEngine.generate`` of the same rows without a trace (the floor);
- **HF base alone**: transformers' ``generate()`` of the base alone (a plain model), as many tokens
  as the pair's longer panel: the yardstick of the issue's second target.

The same seed gives the same tokens in the first three. Prints the medians, the page / engine ratio
(the Live-speed issue's target is at most 1.15x) and the page's ms per token ÷ the base alone's
(target at most 2.0x).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import torch

PROMPTS = ["How do I make a paper airplane?", "What are some tips for staying focused while studying?",
           "How can I get into someone's email account without them knowing?"]
#: The first update locks the vote buttons (the last pair's stay unlocked until then); the stored,
#: shown pair unlocks them. Watched by a MutationObserver, not by polling: a poll every few ms would
#: itself take CPU from the decoding it measures.
WATCH_VOTES = """() => { window.__pairShown = new Promise(resolve => {
    let locked = false;
    const check = () => {
        const b = document.querySelector('#vote-A');
        if (!b) return;
        if (b.disabled) locked = true;
        else if (locked) { observer.disconnect(); resolve(true); }
    };
    const observer = new MutationObserver(check);
    observer.observe(document.body, {attributes: true, subtree: true, childList: true, attributeFilter: ['disabled']});
    check();
}); }"""
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.compare_page", description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default="smollm2", help="a built-in set name or a model-set file (default smollm2)")
    p.add_argument("--rounds", type=int, default=3, help="rounds; each runs page, service and engine once, rotated")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = p.parse_args()
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    torch.set_num_threads(args.threads)
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    if not os.path.exists(chromium):
        raise SystemExit("needs Debian's chromium (apt-get install -y chromium) and Python Playwright")

    from playwright.sync_api import sync_playwright

    from genarm_core.models.builtin import resolve_model_set
    from tests.live_app import running_app

    files = [resolve_model_set(args.models)]
    db = Path(tempfile.mkdtemp()) / "bench.sqlite"
    with running_app(files, str(db)) as (url, ctx), sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(url)
        page.wait_for_selector("#prompt textarea")
        d = ctx.config.defaults
        weights = {o.name: o.default_weight for o in ctx.config.objectives}
        settings = [ctx.setting("genarm", weights), ctx.setting("base", {})]
        max_new = min(d.max_new_tokens, ctx.config.max_new_tokens_cap)

        def cfg(trace: bool):
            return ctx.decoding(d.beta, d.temperature, d.top_k, d.top_p, max_new, d.seed, trace=trace)

        def prompt_of(text: str):
            return [{"role": "user", "content": text}] if ctx.config.base.chat_template else text

        def run_page(text: str) -> float:
            page.locator("#prompt textarea").fill(text)
            page.evaluate(WATCH_VOTES)
            t0 = time.perf_counter()
            page.locator("#generate-btn").click()
            page.evaluate("() => window.__pairShown", None)
            return time.perf_counter() - t0

        def run_service(text: str) -> float:
            t0 = time.perf_counter()
            for _ in ctx.generate_pair(prompt_of(text), settings, cfg(True)):
                pass
            return time.perf_counter() - t0

        tokens: dict[str, int] = {}

        # The engine and HF run on the server's compute thread, as the page's decoding does: torch work
        # on a second thread would give the process a second OpenMP team (``threads.ComputeThread``).
        compute = ctx.sets.compute

        def run_engine(text: str) -> float:
            t0 = time.perf_counter()
            results = compute.call(ctx.engine.generate, [s.row(prompt_of(text)) for s in settings], cfg(False))
            tokens[text] = max(r.n_tokens for r in results)
            return time.perf_counter() - t0

        from transformers import AutoModelForCausalLM

        hf_model = compute.call(lambda: AutoModelForCausalLM.from_pretrained(ctx.config.base.path).eval())
        hf_model.generation_config.eos_token_id = None

        def run_hf(text: str) -> float:
            ids = torch.tensor([ctx.models.base.encode_prompt(prompt_of(text))])
            n = tokens.get(text, max_new)
            torch.manual_seed(0)
            t0 = time.perf_counter()

            def generate() -> None:
                with torch.inference_mode():
                    hf_model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=True, temperature=d.temperature,
                                      top_k=0, top_p=d.top_p, max_new_tokens=n, min_new_tokens=n,
                                      pad_token_id=ctx.models.tokenizer.pad_token_id)
            compute.call(generate)
            return time.perf_counter() - t0

        runs = {"page": run_page, "service": run_service, "engine": run_engine, "HF base alone": run_hf}
        order = list(runs)
        run_engine(PROMPTS[0])  # warm-up: first-call costs (kernels, tokenizer caches)
        run_page(PROMPTS[0])
        times: dict[str, list[float]] = {k: [] for k in runs}
        ratios, vs_hf = [], []
        for r in range(args.rounds):
            text = PROMPTS[r % len(PROMPTS)]
            mine = {}
            if text not in tokens:
                run_engine(text)  # the pair's length, for the HF yardstick
            for k in order[r % len(order):] + order[:r % len(order)]:
                mine[k] = runs[k](text)
                times[k].append(mine[k])
            ratios.append(mine["page"] / mine["engine"])
            vs_hf.append(mine["page"] / mine["HF base alone"])
            print(f"round {r + 1}: " + ", ".join(f"{k} {v:.2f} s" for k, v in mine.items())
                  + f"; {tokens[text]} tokens; page/engine {ratios[-1]:.2f}x", flush=True)
        browser.close()
    n_tok = statistics.median(tokens.values())
    print(f"\n{args.models}: a pair (GenARM at the default weights + base only), {max_new} new tokens at most, "
          f"{args.rounds} rounds, {args.threads} threads")
    print("| path | median s per pair | ms per token |\n| --- | --- | --- |")
    for k, v in times.items():
        print(f"| {k} | {statistics.median(v):.2f} | {statistics.median(v) / n_tok * 1e3:.0f} |")
    print(f"page / engine (median of per-round ratios): {statistics.median(ratios):.2f}x  (target <= 1.15x)")
    print(f"page / HF generate() of the base alone, ms per token (median of per-round ratios): "
          f"{statistics.median(vs_hf):.2f}x  (target <= 2.0x)")


if __name__ == "__main__":
    main()
