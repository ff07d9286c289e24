"""Values every storage module checks or writes, in a leaf module both ``store`` and ``studies`` import
(the verdicts a judgment may hold; JSON that PostgreSQL takes)."""

from __future__ import annotations

import math
from typing import Any

from genarm_core.evaluation.verdicts import VERDICTS  # noqa: F401 - re-exported: the one definition (a leaf)


def clean_json(value: Any) -> Any:
    """JSON cannot hold NaN/inf (PostgreSQL refuses them): store them as None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): clean_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean_json(v) for v in value]
    return value
