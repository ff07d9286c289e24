"""The built-in demo world: a generated corpus, a tiny base model and one real ARM per objective."""
