"""Decoding: the one generation loop and everything it runs per step.

- ``engine``: ``GenARMEngine.stream`` / ``generate``, the loop every caller uses;
- ``methods``: the decoding methods (GenARM, base, prompted, Best-of-N, ARGS, ...), each answering
  for itself what the engine, settings, the CLI and the dashboard need to know;
- ``runner``, ``step``, ``trunk``, ``skinny``, ``prompt_cache``: forward groups and their KV caches,
  one step as device work, the shared trunk of LoRA ARMs, CPU matrix products, kept prompt caches;
- ``math``: every formula, as pure functions over tensors; ``tokens``: which tokens may come next
  and the text of each row; ``args``: ARGS's reward-model scorer.

May import ``genarm_core.models`` (configs, loaded models) and the top-level helpers; never the
dashboard, the database, gradio or sqlalchemy.
"""
