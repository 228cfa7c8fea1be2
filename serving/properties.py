"""Read and write Java .properties files the way TorchServe's config.properties uses them.

Only `key=value` lines and `#` comments: TorchServe's own Python launcher reads the file the same way.
"""

from __future__ import annotations

from pathlib import Path


def read_properties(path: Path) -> dict[str, str]:
    """{key: value} of a .properties file; blank lines and comments skipped, order kept."""
    props: dict[str, str] = {}
    for number, line in enumerate(Path(path).read_text().splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith(("#", "!")):
            continue
        if "=" not in line:
            raise ValueError(f"{path}:{number}: expected key=value, got {line!r}")
        key, value = line.split("=", 1)
        props[key.strip()] = value.strip()
    return props


def write_properties(props: dict[str, str], path: Path) -> None:
    """Write `props` as key=value lines (values must be single-line)."""
    for key, value in props.items():
        if "\n" in str(value):
            raise ValueError(f"property {key} has a line break")
    Path(path).write_text("".join(f"{key}={value}\n" for key, value in props.items()))
