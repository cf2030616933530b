"""mkdocs hooks: the reference pages are generated from the code at build time, so they cannot drift from it.

A page holds a marker comment and the hook puts the generated Markdown in its place:

    <!-- generated: config -->   every config key: type, default, allowed values, meaning (the pydantic schema)
    <!-- generated: cli -->      every command, its arguments and options (the Typer app, walked as click commands)
    <!-- generated: python -->   the public functions of `import dropcli` (mkdocstrings renders their docstrings)

The meanings live in one place: the schema's `Field(description=...)`, the commands' docstrings and `help=`,
the functions' docstrings. tests/test_docs.py imports this file to check the config reference.
"""

from __future__ import annotations

import html
import inspect
import re
from collections.abc import Callable
from types import ModuleType
from typing import Any

import yaml

MARKER = re.compile(r"<!-- generated: (\w+) -->")
GENERIC_MAX_LENGTH = 4096  # every text value has it (config.MAX_TEXT_LENGTH): said once in the page, not per key


# ---------------------------------------------------------------------------------------------------------
# The config reference, walked from Config.model_json_schema(): whatever sections the schema holds, and
# whichever package defines them, appear here with the descriptions their fields carry.


def config_reference() -> str:
    from dropcli.config import Config

    schema = Config.model_json_schema()
    definitions = schema.get("$defs", {})
    parts = [section_markdown("", "Top level", schema, definitions, level=2)]
    return "\n".join(parts)


def section_markdown(prefix: str, title: str, node: dict[str, Any], definitions: dict[str, Any], level: int) -> str:
    """A heading, the section's description, a table of its keys, then each nested section the same way."""
    rows, nested = [], []
    for name, field in node.get("properties", {}).items():
        key = f"{prefix}{name}"
        sections = [resolve(ref, definitions) for ref in section_refs(field)]
        rows.append(key_row(key, field, sections))
        nested.extend((key, section) for section in sections)
    heading = "#" * level + f" {title}"
    intro = node.get("description", "")
    table = ["| key | takes | default | meaning |", "| --- | --- | --- | --- |", *rows]
    text = "\n".join(part for part in (heading, "", intro, "", *table, "") if part is not None)
    for key, section in nested:
        variant = f" ({section['title']})" if sum(1 for k, _ in nested if k == key) > 1 else ""
        text += "\n" + section_markdown(f"{key}.", f"`{key}`{variant}", section, definitions, level + 1)
    return text


def section_refs(field: dict[str, Any]) -> list[str]:
    """The sections (pydantic models) a field holds: one, or one per variant of a union."""
    options = field.get("anyOf") or field.get("oneOf") or [field]
    return [option["$ref"] for option in options if "$ref" in option]


def resolve(ref: str, definitions: dict[str, Any]) -> dict[str, Any]:
    return definitions[ref.rsplit("/", 1)[-1]]


def key_row(key: str, field: dict[str, Any], sections: list[dict[str, Any]]) -> str:
    meaning = field.get("description", "")
    if sections and not meaning:
        meaning = sections[0].get("description", "")
    default = "" if sections and field.get("default") is not None else f"`{flow(field.get('default'))}`"
    if "default" not in field:
        default = "required"
    cells = [f"`{key}`", value_text(field), default, meaning or "—"]
    return "| " + " | ".join(cell.replace("|", "\\|").replace("\n", " ") for cell in cells) + " |"


def flow(value: Any) -> str:
    """A default as the YAML a user would write: null, true, [256, 256], {patience: 10}."""
    return yaml.safe_dump(value, default_flow_style=True, width=10_000).strip().removesuffix("...").strip()


def value_text(node: dict[str, Any]) -> str:
    """What a key takes, in words: "number ≥ 0, < 1", "integer > 0 or null", "one of `adam`, `sgd`"."""
    if "$ref" in node:
        return "mapping (below)"
    options = node.get("anyOf") or node.get("oneOf")
    if options:
        texts = dict.fromkeys(value_text(option) for option in options)
        return " or ".join(sorted(texts, key=lambda text: text != "null"))  # "null or integer > 0, ≤ 1024"
    if "enum" in node:
        return "one of " + ", ".join(f"`{value}`" for value in node["enum"])
    if "const" in node:
        return f"`{node['const']}`"
    kind = node.get("type")
    if kind == "array":
        return f"list of {value_text(node.get('items', {}))}"
    name = {"integer": "integer", "number": "number", "string": "text", "boolean": "true / false",
            "null": "null", "object": "mapping"}.get(str(kind), str(kind or "any"))
    bounds = [f"{sign} {number(node[word])}" for word, sign in (("exclusiveMinimum", ">"), ("minimum", "≥"),
                                                                 ("exclusiveMaximum", "<"), ("maximum", "≤"))
              if word in node]
    if "pattern" in node:
        bounds.append(f"matching `{node['pattern']}`")
    if node.get("maxLength", GENERIC_MAX_LENGTH) != GENERIC_MAX_LENGTH:
        bounds.append(f"at most {node['maxLength']} characters")
    return " ".join([name, ", ".join(bounds)]).strip()


def number(value: float) -> str:
    """2³² rather than 4294967296: a bound that is a large power of two reads as one."""
    if isinstance(value, int) and value >= 2**16 and value & (value - 1) == 0:
        return "2" + str(value.bit_length() - 1).translate(str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹"))
    return str(value)


def config_keys(markdown: str) -> set[str]:
    """The dotted keys a config reference names (its tables' first column)."""
    return set(re.findall(r"^\| `([^`]+)` \|", markdown, flags=re.MULTILINE))


# ---------------------------------------------------------------------------------------------------------
# The CLI reference, walked from the Typer app's click commands (what `dropcli COMMAND --help` prints).


def cli_reference() -> str:
    import typer

    from dropcli.cli import app

    group = typer.main.get_command(app)
    root = typer.Context(group, info_name="dropcli")
    parts = [command_markdown(group, root, "dropcli", with_usage=True)]
    for name in group.list_commands(root):  # type: ignore[attr-defined]
        command = group.get_command(root, name)  # type: ignore[attr-defined]
        context = typer.Context(command, info_name=name, parent=root)
        parts.append(command_markdown(command, context, f"dropcli {name}", with_usage=True))
    return "\n".join(parts)


def command_markdown(command: Any, context: Any, call: str, with_usage: bool) -> str:
    lines = [f"## `{call}`", ""]
    for paragraph in inspect.cleandoc(command.help or "").replace("\b", "").split("\n\n"):
        lines += [escape(paragraph), ""]
    if with_usage:
        lines += ["```text", f"{call} {' '.join(command.collect_usage_pieces(context))}", "```", ""]
    records = [(param, param.get_help_record(context)) for param in command.get_params(context)]
    shown = [record for _param, record in records if record is not None]
    if shown:
        lines += ["| argument or option | meaning |", "| --- | --- |"]
        for names, meaning in shown:
            cell = escape(" ".join(meaning.split())).replace("|", "\\|")
            lines.append(f"| `{names}` | {cell or '—'} |")  # a pipe in a code span does not split a row
        lines.append("")
    return "\n".join(lines)


def escape(text: str) -> str:
    """Help text is plain text: `<name>` must show, not vanish as an HTML tag; newlines inside a paragraph join."""
    return html.escape(" ".join(text.split()), quote=False)


# ---------------------------------------------------------------------------------------------------------
# The Python API: what `import dropcli` offers, rendered by mkdocstrings from the docstrings.


def public_functions(module: ModuleType) -> list[str]:
    names = getattr(module, "__all__", None) or [name for name, value in vars(module).items()
                                                 if not name.startswith("_") and callable(value)
                                                 and not isinstance(value, ModuleType | type)]
    return sorted(names)


def python_reference() -> str:
    import dropcli

    members = public_functions(dropcli)
    options = ["show_root_heading: false", "show_object_full_path: true", "members:"]
    return "\n".join(["::: dropcli", "    options:", *[f"      {option}" for option in options],
                      *[f"        - {name}" for name in members], ""])


GENERATORS: dict[str, Callable[[], str]] = {"config": config_reference, "cli": cli_reference,
                                            "python": python_reference}


def on_page_markdown(markdown: str, **_: Any) -> str:
    def generated(match: re.Match[str]) -> str:  # in a div of its own, for the stylesheet (docs/stylesheets)
        return f'<div class="generated-reference" markdown>\n\n{GENERATORS[match.group(1)]()}\n\n</div>'

    return MARKER.sub(generated, markdown)
