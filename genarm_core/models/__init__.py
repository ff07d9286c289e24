"""Models and their files: what a model set is and how it is loaded.

- ``config``: the dataclass configs (``DecodingConfig``, ``RowSpec``, ``Setting``, the model-set file);
  ``files``: the leaf every config reader uses (``ConfigError``, YAML files, paths);
- ``loading``, ``formats``, ``vocab``: loading with safe defaults, how each model reads a prompt,
  vocabulary checks; ``reward_models``, ``scoring``: trajectory reward models and sequence scores;
- ``cache``, ``builtin``, ``tiny``, ``prompts``: the build cache, the built-in sets' names, tiny
  random models for tests, the prompt-file rule.

May import ``genarm_core.decoding.math`` (pure math) and the top-level helpers; never the
dashboard, the database, gradio or sqlalchemy.
"""
