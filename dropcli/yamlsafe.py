"""Reading YAML that someone else may have written: a config file, a `--set` value, a run folder's config.yaml.

PyYAML's SafeLoader already refuses `!!python` tags. What it does not refuse, and what this module does:

- **size**: a text over MAX_BYTES is refused before it is parsed;
- **alias bombs**: `a: &a [x, x]`, `b: &b [*a, *a]`, ... is a few hundred bytes that stands for billions of
  values once anything walks it (a repr in an error message, a JSON dump). The node graph is measured as if
  every alias were expanded (memoized, so measuring is cheap) and refused over MAX_NODES; a self-referring
  alias is refused outright;
- **deep nesting**: more than MAX_DEPTH levels is refused, measured before libyaml builds any node (its
  recursive composer crashes the whole process on ~25,000 levels);
- **duplicate keys**: YAML says keys are unique; PyYAML keeps the last silently, so a second `regularizer:`
  section would wipe the first;
- **numbers**: YAML 1.2 reads `1e3` and `1e-3` as numbers; PyYAML (YAML 1.1) as text, which made
  `epochs: 1e3` an error while `lr: 1e-3` passed (as text that pydantic converted).

`brief` describes a value in an error message without expanding or echoing it whole.
"""

from __future__ import annotations

import re
import reprlib
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

MAX_BYTES = 1 << 20  # 1 MiB: a config is a few hundred bytes; a run folder's resolved config ~1.5 KB
MAX_NODES = 10_000  # values after alias expansion; the whole resolved config has ~70
MAX_NUMBER_CHARS = 100  # digits of a number (a seed has 10, a float's repr 25)
INT_TAG, FLOAT_TAG = "tag:yaml.org,2002:int", "tag:yaml.org,2002:float"
MAX_DEPTH = 64  # nesting of sections / lists (a config has 3 levels)
# libyaml's composer builds nested collections by recursion in C: ~25,000 levels (a 60 KB file of brackets)
# crashed the process with a segfault, before any check could run. A text with more collection indicators
# than this has its depth measured first, from libyaml's events, which it produces without recursion.
DEPTH_SCAN_FROM = 2_000


class YamlError(ValueError):
    """The text is not YAML dropcli will read; the message says why in one line (no position prefix)."""


class MalformedYaml(YamlError):
    """Not YAML at all (as opposed to YAML that is refused for its size or shape)."""


class _Loader(yaml.SafeLoader):
    """SafeLoader + YAML 1.2 exponent floats. Its own resolver table: yaml.SafeLoader is left untouched."""


# libyaml's parser, where PyYAML was built with it: ~8x faster than the pure-Python one (a report reads a
# thousand config.yaml files). The checks below work on its nodes the same way.
_FastLoader: Any = type("_FastLoader", (yaml.CSafeLoader,), {}) if yaml.__with_libyaml__ else _Loader
for _loader in {_Loader, _FastLoader}:
    _loader.add_implicit_resolver(
        "tag:yaml.org,2002:float",
        re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
        list("-+0123456789"),
    )
NON_PRINTABLE = yaml.reader.Reader.NON_PRINTABLE  # what PyYAML's own reader refuses


def load(text: str) -> Any:
    """Parse one YAML document safely (see the module docstring); raises YamlError."""
    if len(text) > MAX_BYTES:
        raise YamlError(f"{len(text):,} characters; a config may have at most {MAX_BYTES:,}")
    unprintable = NON_PRINTABLE.search(text)
    if unprintable:  # refused before any parsing, as PyYAML's reader does (libyaml's is laxer)
        raise MalformedYaml(f"not YAML text: unacceptable character #x{ord(unprintable.group()):04x}: special "
                            f"characters are not allowed")
    try:
        check_depth(text)
        loader = _FastLoader(text)
    except yaml.YAMLError as error:
        raise MalformedYaml(f"not YAML text: {brief(str(error))}") from None
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        check_node(node)
        return loader.construct_document(node)
    except RecursionError:
        raise YamlError(f"nested more than {MAX_DEPTH} levels deep") from None
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise MalformedYaml(f"{where}malformed YAML: {error.problem or error.context}") from None
    except yaml.YAMLError as error:
        raise MalformedYaml(f"malformed YAML: {brief(str(error))}") from None
    finally:
        loader.dispose()


def check_depth(text: str) -> None:
    """YamlError when collections nest deeper than MAX_DEPTH, found from the parser's events (iterative), for
    a text that could nest that deep at all: every collection starts with, or has in its first entry, one of
    `[ { - ? :`, so their count bounds the depth (a config has a hundred or so)."""
    if sum(text.count(indicator) for indicator in "[{-?:") <= DEPTH_SCAN_FROM:
        return
    depth = 0
    for event in yaml.parse(text, Loader=_FastLoader):
        if isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
            depth += 1
            if depth > MAX_DEPTH:
                raise YamlError(f"nested more than {MAX_DEPTH} levels deep")
        elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
            depth -= 1


def check_node(root: Node) -> None:
    """Refuse alias bombs, self-referring aliases, deep nesting and duplicate keys, before constructing."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()

    def size(node: Node, depth: int) -> int:
        if id(node) in sizes:
            return sizes[id(node)]
        if id(node) in open_nodes:
            raise YamlError(f"line {node.start_mark.line + 1}: an alias refers to the value that contains it")
        if depth > MAX_DEPTH:
            raise YamlError(f"nested more than {MAX_DEPTH} levels deep")
        open_nodes.add(id(node))
        if isinstance(node, ScalarNode):
            check_number(node)
            total = 1
        elif isinstance(node, SequenceNode):
            total = 1 + sum(size(child, depth + 1) for child in node.value)
        else:
            assert isinstance(node, MappingNode)
            check_unique_keys(node)
            total = 1 + sum(size(key, depth + 1) + size(value, depth + 1) for key, value in node.value)
        open_nodes.discard(id(node))
        if total > MAX_NODES:
            raise YamlError(f"stands for more than {MAX_NODES:,} values once its aliases (*name) are expanded; "
                            f"a config needs fewer than 100")
        sizes[id(node)] = total
        return total

    size(root, 0)


def check_number(node: ScalarNode) -> None:
    """A number of more than MAX_NUMBER_CHARS characters is refused before it is read: Python refuses to read
    an integer of over 4,300 digits (a traceback), and no setting needs more than a handful."""
    if node.tag in (INT_TAG, FLOAT_TAG) and len(node.value) > MAX_NUMBER_CHARS:
        raise YamlError(f"line {node.start_mark.line + 1}: a number of {len(node.value):,} characters; a setting "
                        f"takes at most {MAX_NUMBER_CHARS}")


def check_unique_keys(node: MappingNode) -> None:
    seen: set[str] = set()
    for key, _ in node.value:
        if not isinstance(key, ScalarNode) or key.value == "<<":  # merge keys may repeat by design
            continue
        if key.value in seen:
            raise YamlError(f"line {key.start_mark.line + 1}: the key {brief(key.value)} appears twice in one "
                            f"mapping; the second would silently replace the first")
        seen.add(key.value)


_brief = reprlib.Repr()
_brief.maxstring = _brief.maxother = 80
_brief.maxlist = _brief.maxtuple = _brief.maxdict = _brief.maxset = 6
_brief.maxlevel = 3


def brief(value: Any) -> str:
    """repr(value), cut to about 80 characters and 3 levels: safe on huge or alias-shared values."""
    return _brief.repr(value)
