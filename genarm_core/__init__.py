"""GenARM: reward-guided generation with autoregressive reward models, for several objectives.

Nothing heavy is imported here: ``import genarm_core`` does not import torch. Import from the
submodules: ``genarm_core.decoding.engine.GenARMEngine``, ``genarm_core.models.loading.load_model_set``,
``genarm_core.models.config.DecodingConfig`` / ``RowSpec``, ``genarm_core.decoding.math`` (the formulas).
"""

__version__ = "0.1.0"
