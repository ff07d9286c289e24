"""ARM training: preference-data loaders (``data``) and the GenARM-loss trainer (``trainer``)."""
