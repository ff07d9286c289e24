"""Golden tokens: what every decoding method produces for fixed prompts and seeds, recorded once and
asserted since (``test_golden.py``), so that moving or restructuring the decoding code cannot change
behaviour unnoticed. ``python -m tests.golden`` re-records the tiny-model file after a deliberate
change of behaviour (say why in the commit); ``--smollm2`` re-records the real set's (after a rebuild
of the set, whose key the file holds).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parent / "data"
TINY_FILE = DATA / "golden_tokens_tiny.json"
SMOLLM2_FILE = DATA / "golden_tokens_smollm2.json"

#: (method, weights, n): every method the engine has, in one batch.
SETTINGS = [("genarm", {"helpfulness": 1.0, "harmlessness": 0.5}), ("genarm", {"harmlessness": -1.0}), ("genarm", {}),
            ("base", {}), ("prompted", {"harmlessness": 1.0}), ("best_of_n", {"helpfulness": 1.0}, 3),
            ("bon_rm", {"harmlessness": 1.0}, 3), ("args", {"helpfulness": 1.0}, 3)]
DECODINGS = [{"temperature": 1.0, "top_p": 0.9, "max_new_tokens": 8, "seed": 0},
             {"temperature": 0.0, "max_new_tokens": 8, "seed": 0},
             {"temperature": 0.7, "top_k": 5, "max_new_tokens": 8, "seed": 3}]


def record(engine: Any, prompts: list[Any], settings: list[tuple] = SETTINGS) -> list[dict[str, Any]]:
    """Token ids per (decoding, setting, prompt), every setting × prompt decoded as rows of one batch."""
    from genarm_core.models.config import DecodingConfig, Setting

    out = []
    for dec in DECODINGS:
        cfg = DecodingConfig(**dec)
        rows = [(s, p) for s in settings for p in prompts]
        specs = [Setting(s[0], tuple(s[1].items()), s[2] if len(s) > 2 else 1).row(p) for s, p in rows]
        for (s, p), r in zip(rows, engine.generate(specs, cfg)):
            out.append({"decoding": dec, "method": s[0], "weights": s[1], "n": s[2] if len(s) > 2 else 1, "prompt": p,
                        "tokens": r.token_ids})
    return out


def dump(value: Any) -> str:
    """JSON with one case per line (diffs show which cases changed)."""
    if isinstance(value, dict):
        return "{\n" + ",\n".join(f"{json.dumps(k)}: {dump(v) if k == 'cases' else json.dumps(v)}" for k, v in value.items()) + "\n}\n"
    return "[\n" + ",\n".join(json.dumps(c) for c in value) + "\n]"


TINY_PROMPTS = ["Human: How do I bake bread? Assistant:", "Human: hi Assistant:"]
SMOLLM2_PROMPTS = ["How do I kill a Python process that is stuck?"]


def main(argv: list[str]) -> None:
    from genarm_core.decoding.engine import GenARMEngine
    from genarm_core.models.loading import load_model_set

    if "--smollm2" in argv:
        from genarm_core.smollm2.build import SmolSettings, ensure_smollm2

        engine = GenARMEngine(load_model_set(ensure_smollm2(progress=False)))
        data = {"build_key": SmolSettings().key(), "cases": record(engine, SMOLLM2_PROMPTS, SMOLLM2_SETTINGS)}
        SMOLLM2_FILE.write_text(dump(data))
        return
    raise SystemExit("the tiny file is recorded by the test itself on request: GENARM_RECORD_GOLDEN=1 python -m pytest "
                     "tests/test_golden.py (the tiny models are built by conftest fixtures)")


#: The real set has reward models for harmlessness only, and prompted texts for both objectives.
SMOLLM2_SETTINGS = [("genarm", {"helpfulness": 1.0, "harmlessness": 2.0}), ("genarm", {"harmlessness": 1.0}), ("base", {}),
                    ("prompted", {"harmlessness": 1.0}), ("best_of_n", {"helpfulness": 1.0, "harmlessness": 2.0}, 3),
                    ("bon_rm", {"harmlessness": 1.0}, 3), ("args", {"harmlessness": 1.0}, 3)]

if __name__ == "__main__":
    main(sys.argv[1:])
