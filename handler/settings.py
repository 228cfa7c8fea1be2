"""The handler's limits and threads: defaults here, overridden by the `handler:` section of the model
config packed in the .mar, then by `CATSDOGS_<KEY>` environment variables (deployment settings).

    Settings.resolve({"max_instances": 16}, os.environ)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from handler.preprocess import DEFAULT_MAX_PIXELS

ENV_PREFIX = "CATSDOGS_"


@dataclasses.dataclass(frozen=True)
class Settings:
    max_pixels: int = DEFAULT_MAX_PIXELS  # decompression-bomb guard, per image
    max_instances: int = 32  # images in one KServe v1 / OIP v2 request
    threads: int = 1  # inference-runtime threads per worker: one per worker avoids oversubscription

    @classmethod
    def resolve(cls, config: Mapping[str, Any] | None, environ: Mapping[str, str]) -> Settings:
        """Build from a config mapping and the environment; unknown keys and non-positive values raise."""
        fields = {f.name for f in dataclasses.fields(cls)}
        values: dict[str, Any] = dict(config or {})
        unknown = sorted(set(values) - fields)
        if unknown:
            raise ValueError(f"unknown handler setting(s) {unknown}; known: {sorted(fields)}")
        for name in fields:
            env_value = environ.get(ENV_PREFIX + name.upper())
            if env_value:
                values[name] = env_value
        return cls(**{name: _positive_int(name, value) for name, value in values.items()})


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
        raise ValueError(f"handler setting {name} must be an integer, got {value!r}")
    try:
        number = int(value)
    except (TypeError, ValueError) as e:
        raise ValueError(f"handler setting {name} must be an integer, got {value!r}") from e
    if number < 1:
        raise ValueError(f"handler setting {name} must be a positive integer, got {value!r}")
    return number
