"""docs/openapi.yaml, the contract of the inference API: load it, and render it as Markdown.

    python -m serving.openapi            # (re)writes docs/api.md and the README route table (make api-docs)
    python -m serving.openapi --check    # exit 1 when either is out of date (tests/serving/test_openapi.py)

The reference is generated from the spec alone, so a reader offline sees exactly what the tests hold
the server to. Nothing here talks to a server.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
SPEC_PATH = REPO_ROOT / "docs" / "openapi.yaml"
REFERENCE_PATH = REPO_ROOT / "docs" / "api.md"
README_PATH = REPO_ROOT / "README.md"
TABLE_BEGIN = "<!-- api-table: generated from docs/openapi.yaml by `make api-docs`; do not edit -->"
TABLE_END = "<!-- api-table end -->"
METHODS = ("get", "put", "post", "delete", "patch", "options", "head")


def load_spec(path: Path = SPEC_PATH) -> dict[str, Any]:
    return yaml.safe_load(Path(path).read_text())


def operations(spec: dict) -> list[tuple[str, str, dict]]:
    """(METHOD, path, operation) in the spec's order."""
    return [
        (method.upper(), path, operation)
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    ]


def _resolve(spec: dict, node: Any) -> Any:
    while isinstance(node, dict) and "$ref" in node:
        target = spec
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def _ref_name(node: Any) -> str | None:
    return node["$ref"].rsplit("/", 1)[-1] if isinstance(node, dict) and "$ref" in node else None


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _request(spec: dict, operation: dict) -> str:
    body = _resolve(spec, operation.get("requestBody"))
    if not body:
        return "-"
    parts = []
    for media_type, content in body["content"].items():
        name = _ref_name(content.get("schema"))
        parts.append(f"`{media_type}`" + (f" ([{name}](docs/api.md#{name.lower()}))" if name else ""))
    return ", ".join(parts)


def _answers(spec: dict, operation: dict, link: str = "docs/api.md") -> str:
    out = []
    for status, response in operation["responses"].items():
        response = _resolve(spec, response)
        names = [_ref_name(c.get("schema")) for c in response.get("content", {}).values()]
        names = [n for n in names if n]
        out.append(f"{status}" + (f" [{names[0]}]({link}#{names[0].lower()})" if names else ""))
    return ", ".join(out)


def route_table(spec: dict) -> str:
    """The README's table of routes: one row per operation, request bodies and answers by schema."""
    lines = ["| route | request body | answers (status and schema) |", "|---|---|---|"]
    for method, path, operation in operations(spec):
        server = operation.get("servers", spec["servers"])[0]["url"]
        where = "" if operation.get("servers") is None else f" (on `{server}`)"
        lines.append(
            f"| `{method} {path}`{where}: {_cell(operation['summary'])} | {_request(spec, operation)} "
            f"| {_answers(spec, operation)} |"
        )
    return "\n".join(lines)


def _schema_rows(spec: dict, schema: dict, prefix: str = "") -> list[str]:
    """One table row per property; inline objects (and arrays of them) get rows of their own."""
    schema = _resolve(spec, schema)
    required = set(schema.get("required", []))
    rows = []
    for name, prop in schema.get("properties", {}).items():
        ref = _ref_name(prop) or next((_ref_name(p) for p in prop.get("allOf", [])), None)
        target = _resolve(spec, prop)
        kind = f"[{ref}](#{ref.lower()})" if ref else _kind(target)
        text = prop.get("description") or target.get("description", "")
        rows.append(f"| `{prefix}{name}` | {kind} | {'yes' if name in required else 'no'} | {_cell(text)} |")
        items = target.get("items", {}) if target.get("type") == "array" else {}
        if not ref and "properties" in items:
            rows += _schema_rows(spec, items, f"{prefix}{name}[].")
    return rows


def _kind(schema: dict) -> str:
    if "const" in schema:
        return f"`{json.dumps(schema['const'])}`"
    if "enum" in schema:
        return " \\| ".join(f"`{v}`" for v in schema["enum"])
    kind = schema.get("type", "any")
    limits = [f"{k} {schema[k]}" for k in ("minimum", "maximum", "minItems", "maxItems") if k in schema]
    if kind == "array" and "items" in schema:
        items = schema["items"]
        alternatives = [_ref_name(a) for a in items.get("oneOf", [])] or [_ref_name(items)]
        if all(alternatives):
            kind = "array of " + " or ".join(f"[{a}](#{a.lower()})" for a in alternatives)
        else:
            kind = f"array of {_kind(items)}"
    return kind + (f" ({', '.join(limits)})" if limits else "")


def render(spec: dict) -> str:
    """docs/api.md: overview, the route table, each operation with its answers and examples, schemas."""
    info = spec["info"]
    out = [
        f"# {info['title']} {info['version']}",
        "",
        "<!-- Generated from docs/openapi.yaml by `make api-docs` (serving/openapi.py); do not edit. -->",
        "",
        info["summary"],
        "",
        info["description"].strip(),
        "",
        "Servers: " + ", ".join(f"`{s['url']}` ({s['description']})" for s in spec["servers"]),
        "",
        "## Routes",
        "",
        route_table(spec).replace("(docs/api.md#", "(#"),
        "",
    ]
    for method, path, operation in operations(spec):
        out += [f"## `{method} {path}`", "", f"**{operation['summary']}**", ""]
        if operation.get("description"):
            out += [operation["description"].strip(), ""]
        for server in operation.get("servers", []):
            out += [f"Served on `{server['url']}`: {server['description']}.", ""]
        for parameter in operation.get("parameters", []):
            out += [f"Path parameter `{parameter['name']}`: {parameter['description']}", ""]
        body = _resolve(spec, operation.get("requestBody"))
        if body:
            out += ["Request body: " + _request(spec, operation).replace("(docs/api.md#", "(#"), ""]
            if body.get("description"):
                out += [body["description"].strip(), ""]
            for content in body["content"].values():
                if "example" in content:
                    out += ["```json", json.dumps(content["example"], indent=2), "```", ""]
        out += ["| status | meaning | body |", "|---|---|---|"]
        examples = []
        for status, response in operation["responses"].items():
            response = _resolve(spec, response)
            contents = response.get("content", {})
            kinds = [
                f"`{media}`"
                + (
                    f" [{_ref_name(c['schema'])}](#{_ref_name(c['schema']).lower()})"
                    if _ref_name(c.get("schema"))
                    else ""
                )
                for media, c in contents.items()
            ]
            out.append(f"| {status} | {_cell(response['description'])} | {', '.join(kinds) or 'none'} |")
            for media, content in contents.items():
                if "example" in content:
                    example = content["example"]
                    text = example if isinstance(example, str) else json.dumps(example, indent=2)
                    examples += [f"{status} example:", "", "```" + ("json" if "json" in media else "text"),
                                 text.rstrip(), "```", ""]  # fmt: skip
        out += ["", *examples]
    out += ["## Schemas", ""]
    for name, schema in spec["components"]["schemas"].items():
        out += [f"### {name}", ""]
        if schema.get("description"):
            out += [" ".join(schema["description"].split()), ""]
        rows = _schema_rows(spec, schema)
        if rows:
            out += ["| field | type | required | meaning |", "|---|---|---|---|", *rows, ""]
        else:
            out += [f"Type: {_kind(schema)}", ""]
        for keyword in ("anyOf", "oneOf"):
            if keyword in schema:
                alternatives = [_ref_name(a) or json.dumps(a) for a in schema[keyword]]
                out += [f"{keyword}: " + ", ".join(f"`{a}`" for a in alternatives), ""]
    return "\n".join(out).rstrip() + "\n"


def with_table(readme: str, spec: dict) -> str:
    """README text with the generated route table between its markers."""
    before, found, rest = readme.partition(TABLE_BEGIN)
    _, found_end, after = rest.partition(TABLE_END)
    if not (found and found_end):
        raise ValueError(f"README.md lacks the markers {TABLE_BEGIN!r} ... {TABLE_END!r}")
    return f"{before}{TABLE_BEGIN}\n{route_table(spec)}\n{TABLE_END}{after}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when a rendering is out of date")
    args = parser.parse_args(argv)
    spec = load_spec()
    wanted = {REFERENCE_PATH: render(spec), README_PATH: with_table(README_PATH.read_text(), spec)}
    stale = [path for path, text in wanted.items() if not path.exists() or path.read_text() != text]
    if args.check:
        for path in stale:
            print(
                f"{path.relative_to(REPO_ROOT)} is out of date with docs/openapi.yaml: run `make api-docs`",
                file=sys.stderr,
            )
        return 1 if stale else 0
    for path in stale:
        path.write_text(wanted[path])
        print(f"wrote {path.relative_to(REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
