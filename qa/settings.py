"""Settings that come from an argument, else an environment variable, else a default."""

from __future__ import annotations

import os


def positive_int(value: int | None, env: str, default: int, unit: str, name: str) -> int:
    """`value`, else $`env`, else `default`: a whole number >= 1.

    Args:
        unit: what the number counts, for messages ("bytes", "characters").
        name: what the argument is called, for messages.

    Raises:
        ValueError: the argument or the variable is not a whole number >= 1.
    """
    if value is None:
        raw = os.environ.get(env, "").strip()
        if not raw:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ValueError(f"{env} must be a whole number of {unit}, got {raw!r}") from None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a whole number of {unit} >= 1, got {value!r}")
    return value


def env_float(env: str) -> float | None:
    """$`env` as a number, or None when it is unset or empty.

    Raises:
        ValueError: the variable is set but is not a number.
    """
    raw = os.environ.get(env, "").strip()
    if not raw:
        return None
    try:
        return float(raw)
    except ValueError:
        raise ValueError(f"{env} must be a number, got {raw!r}") from None
