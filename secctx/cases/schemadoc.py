"""The reference tables of fixtures/cases/README.md, generated from the case schema.

    python -m secctx.cases.schemadoc            # print the tables
    python -m secctx.cases.schemadoc --write    # put them into the README between the markers
    python -m secctx.cases.schemadoc --check    # exit 1 if the README's copy is stale

Every table comes from secctx/schema/case.schema.json (its titles, descriptions
and lists), so a new key, skip feature or expect key needs an edit there only.
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from ..core import paths
from . import SCHEMA, options, resolve

README = paths.CASES_README
BEGIN = "<!-- schema:begin -->"
END = "<!-- schema:end -->"
WRITE_COMMAND = "python -m secctx.cases.schemadoc --write"
ROOT_HEADING = "case file"


def render() -> str:
    """The generated part of the README, without the markers."""
    objects: list[tuple[str, dict]] = []
    lists: list[dict] = []
    _collect(SCHEMA, ROOT_HEADING, objects, lists, set())
    out = [f"<!-- Generated from secctx/schema/case.schema.json by `{WRITE_COMMAND}`: "
           "edit the schema, not this part. -->", ""]
    for heading, node in objects:
        out += _object_table(heading, node)
    for node in lists:
        out += _list_table(node)
    return "\n".join(out).rstrip() + "\n"


def generated_part(readme: str) -> str | None:
    """What the README holds between the markers, or None without them."""
    start, end = readme.find(BEGIN), readme.find(END)
    if start < 0 or end < start:
        return None
    return readme[start + len(BEGIN):end].strip("\n") + "\n"


def splice(readme: str, block: str) -> str:
    start, end = readme.find(BEGIN), readme.find(END)
    if start < 0 or end < start:
        raise ValueError(f"the README has no {BEGIN} ... {END} markers")
    return readme[:start + len(BEGIN)] + "\n" + block + readme[end:]


# --- walking the schema ------------------------------------------------------

def _target(node: dict) -> dict:
    """The definition a $ref leads to, without the referring node's own keywords
    (a key's description is not its type's)."""
    while "$ref" in node:
        node = resolve({"$ref": node["$ref"]})
    return node


def _collect(node: dict, heading: str | None, objects: list, lists: list, seen: set) -> None:
    """Mappings and choice lists reachable from node, each once, in the order met."""
    node = _target(node)
    key = heading or node.get("title")
    if options(node):
        if node.get("title") and node["title"] not in seen:
            seen.add(node["title"])
            lists.append(node)
        return
    if "properties" in node and key:
        if key in seen:
            return
        seen.add(key)
        objects.append((key, node))
        for prop in node["properties"].values():
            _collect(prop, None, objects, lists, seen)
    for sub in [node.get("items"), node.get("additionalProperties"), node.get("propertyNames")]:
        if isinstance(sub, dict):
            _collect(sub, None, objects, lists, seen)
    for branch in node.get("anyOf", []) + node.get("oneOf", []):
        _collect(branch, None, objects, lists, seen)


def _object_table(heading: str, node: dict) -> list[str]:
    props = node["properties"]
    with_check = any("x-check" in p for p in props.values())
    required = set(node.get("required", []))
    out = [f"### {heading}", ""]
    if node.get("description") and heading != ROOT_HEADING:
        out += [_text(node["description"]), ""]
    out.append("| key | required | value |" + (" check |" if with_check else "") + " meaning |")
    out.append("|---|---|---|" + ("---|" if with_check else "") + "---|")
    for name, prop in props.items():
        meaning = prop.get("description") or resolve(prop).get("description", "")
        check = f" `{prop['x-check']}` |" if with_check and "x-check" in prop else (" |" if with_check else "")
        out.append(f"| `{name}` | {'yes' if name in required else ''} | {_shape(prop)} |{check} "
                   f"{_cell(meaning)} |")
    return out + [""]


def _list_table(node: dict) -> list[str]:
    out = [f"### {node['title']}", ""]
    if node.get("description"):
        out += [_text(node["description"]), ""]
    opts = options(node)
    if any("description" in o for o in opts):
        out += ["| value | meaning |", "|---|---|"]
        out += [f"| `{_yaml(o['const'])}` | {_cell(o.get('description', ''))} |" for o in opts]
    else:
        out.append(", ".join(f"`{_yaml(o['const'])}`" for o in opts))
    return out + [""]


# --- phrasing ----------------------------------------------------------------

def _shape(node: dict, many: bool = False) -> str:
    """What kind of value a key takes, in words, linking to the tables below."""
    node = resolve(node)
    title = node.get("title")
    opts = options(node)
    if opts and title:
        return _link(title, many)
    if opts:
        return " or ".join(f"`{_yaml(o['const'])}`" for o in opts)
    if "const" in node:
        return f"`{_yaml(node['const'])}`"
    alternatives = node.get("anyOf") or node.get("oneOf")
    if alternatives:
        return " or ".join(_shape(a, many) for a in alternatives)
    kind = node.get("type")
    if kind == "object" and "properties" in node:
        return _link(title, many) if title else "`{" + ", ".join(node["properties"]) + "}`"
    if kind == "object" and isinstance(node.get("additionalProperties"), dict):
        key = resolve(node.get("propertyNames", {})).get("title", "key")
        return f"mapping from {key} to {_shape(node['additionalProperties'])}"
    if kind == "array":
        return f"list of {_shape(node['items'], True)}" + (" (at least one)" if node.get("minItems") else "")
    if kind == "boolean":
        return "`true` or `false`"
    if kind == "null":
        return "`null`"
    word = title or {"string": "text", "integer": "integer"}.get(kind, kind or "anything")
    return _plural(word) if many else word


def _link(title: str, many: bool) -> str:
    return f"[{_plural(title) if many else title}](#{_anchor(title)})"


def _plural(word: str) -> str:
    if word.endswith("y") and not word.endswith(("ay", "ey", "oy")):
        return word[:-1] + "ies"
    return word + "s"


def _anchor(heading: str) -> str:
    """GitHub's anchor of a Markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _yaml(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _text(text: str) -> str:
    """Prose for Markdown: < outside code spans is escaped (no HTML tags)."""
    parts = text.split("`")
    for i in range(0, len(parts), 2):
        parts[i] = parts[i].replace("<", "&lt;")
    return "`".join(parts)


def _cell(text: str) -> str:
    return _text(" ".join(text.split())).replace("|", "\\|")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m secctx.cases.schemadoc", description=__doc__.splitlines()[0])
    parser.add_argument("--readme", type=Path, default=README)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help="update the README between the markers")
    mode.add_argument("--check", action="store_true", help="exit 1 if the README's tables are stale")
    args = parser.parse_args(argv)
    block = render()
    if not (args.write or args.check):
        sys.stdout.write(block)
        return 0
    readme = args.readme.read_text()
    if args.check:
        if generated_part(readme) != block:
            print(f"{args.readme}: the schema tables are stale; run `{WRITE_COMMAND}`", file=sys.stderr)
            return 1
        return 0
    updated = splice(readme, block)
    if updated != readme:
        args.readme.write_text(updated)
        print(f"updated {args.readme}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
