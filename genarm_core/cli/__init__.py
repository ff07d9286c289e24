"""The command line: ``genarm generate | train-arm | train-rm | demo | smollm2`` (``main``) and the
options generated from the config dataclasses (``options``). The subcommands of a room live in it
(``training.cli``, ``demo.cli``, ``smollm2.cli``). May import every other room of ``genarm_core``."""
