"""A guarded YAML reader that remembers where every key came from.

:func:`load_yaml` accepts the plain data subset of YAML (mappings, sequences,
strings, numbers, booleans, null) and returns it with a :class:`SourceMap`
giving the line and column of every key and value, so schema errors can be
reported as ``FILE:LINE:COL: key.path: message``.

It refuses, as :class:`~geomask.errors.ConfigError` with every problem listed:

* any tag other than the core ones (``!!python/object`` and friends, ``!!binary``,
  ``!!set`` ...): the file is data, never code;
* duplicate keys in a mapping (YAML forbids them; PyYAML silently keeps the last);
* merge keys (``<<``) and non-string keys;
* alias bombs: at most :data:`MAX_ALIASES` alias uses and :data:`MAX_NODES` values
  once aliases are expanded;
* nesting deeper than :data:`MAX_DEPTH` and files larger than :data:`MAX_BYTES`.

Scalars are resolved with the YAML 1.2 core schema instead of PyYAML's YAML 1.1
rules, so ``NO``, ``on`` or ``y`` stay strings (only ``true``/``false`` are
booleans), ``2024-01-01`` stays a string, ``1e3`` is a number and a
leading-zero integer such as ``010`` is kept as the string ``"010"`` (YAML 1.1
reads it as octal 8, YAML 1.2 as 10) so a typed schema rejects it instead of
guessing.
"""

from __future__ import annotations

import errno
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from geomask.errors import ConfigError, Position, Problem, YamlError
from geomask.messages import name_too_long

__all__ = [
    "MAX_ALIASES",
    "MAX_BYTES",
    "MAX_DEPTH",
    "MAX_NODES",
    "Key",
    "SourceMap",
    "key_text",
    "load_yaml",
    "loads_yaml",
]

MAX_BYTES = 1_000_000
"""Largest YAML file accepted, in bytes."""
MAX_DEPTH = 16
"""Deepest nesting of mappings and sequences accepted."""
MAX_ALIASES = 100
"""Most alias uses (``*name``) accepted in one file."""
MAX_NODES = 200_000
"""Most values (after expanding aliases) accepted in one file."""

Key = tuple[str | int, ...]
"""A path into the loaded data: mapping keys and sequence indices."""

_CORE = "tag:yaml.org,2002:"
_ALLOWED_TAGS = {_CORE + t for t in ("str", "int", "float", "bool", "null", "map", "seq")}


@dataclass
class SourceMap:
    """Positions of the keys and values of a loaded document.

    Attributes
    ----------
    file : str
        The file as the user named it.
    keys : dict
        Key path -> position of the key itself (for list items: of the item).
    values : dict
        Key path -> position of the value.
    """

    file: str
    keys: dict[Key, Position] = field(default_factory=dict)
    values: dict[Key, Position] = field(default_factory=dict)

    def key_position(self, key: Key) -> Position | None:
        """Where ``key`` is written, or where its nearest written parent is."""
        for n in range(len(key), -1, -1):
            pos = self.keys.get(key[:n]) if n else self.values.get(())
            if pos is not None:
                return pos
        return None

    def value_position(self, key: Key) -> Position | None:
        """Where the value of ``key`` is written, falling back to the key or a parent."""
        return self.values.get(key) or self.key_position(key)


# --- scalar resolution: YAML 1.2 core schema ---------------------------------------------------


class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 core scalar resolution (see the module docstring)."""


_Loader.yaml_implicit_resolvers = {}
for _tag, _regexp, _first in [
    ("bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    ("null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
    ("int", r"^(?:[-+]?(?:0|[1-9][0-9]*)|0x[0-9a-fA-F]+|0o[0-7]+)$", "-+0123456789"),
    (
        "float",
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+\.[0-9]*|[0-9]+(?=[eE]))(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
        "-+0123456789.",
    ),
    ("merge", r"^(?:<<)$", "<"),
]:
    _Loader.add_implicit_resolver(_CORE + _tag, re.compile(_regexp), list(_first))


def _construct_int(loader: yaml.SafeLoader, node: ScalarNode) -> int:
    text = str(loader.construct_scalar(node))
    if text.startswith("0o"):
        return int(text[2:], 8)
    if text.startswith("0x"):
        return int(text[2:], 16)
    return int(text.replace("_", ""))


_Loader.add_constructor(_CORE + "int", _construct_int)  # type: ignore[arg-type]


# --- loading ------------------------------------------------------------------------------------


def _pos(mark: Any) -> Position:
    return Position(mark.line + 1, mark.column + 1)


def _show_tag(tag: str) -> str:
    return "!!" + tag[len(_CORE) :] if tag.startswith(_CORE) else tag


def key_text(key: Key) -> str:
    """``steps[0].kernel.sigma`` for the key path ``("steps", 0, "kernel", "sigma")``."""
    out = ""
    for part in key:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


class _Builder:
    """Turns a composed node tree into plain data, checking limits and recording positions."""

    def __init__(self, file: str, loader: _Loader, aliases: int = 0) -> None:
        self.file = file
        self.loader = loader
        self.aliases = aliases
        self.source = SourceMap(file)
        self.problems: list[Problem] = []
        self.nodes = 0

    def problem(self, node: Node, key: Key, message: str) -> None:
        self.problems.append(Problem(self.file, _pos(node.start_mark), key_text(key), message))

    def abort(self, node: Node, message: str) -> YamlError:
        """The error for a limit exceeded at ``node``: reading stops at once."""
        return _abort(self.file, _pos(node.start_mark), message)

    def build(self, node: Node, key: Key, depth: int) -> Any:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            if self.aliases:
                raise self.abort(
                    node, f"more than {MAX_NODES} values once aliases are expanded (an alias bomb?)"
                )
            raise self.abort(node, f"more than {MAX_NODES} values: too large for a pipeline, split it")
        if depth > MAX_DEPTH:
            raise self.abort(node, f"nesting deeper than {MAX_DEPTH} levels")
        self.source.values.setdefault(key, _pos(node.start_mark))
        if node.tag not in _ALLOWED_TAGS:
            self.problem(node, key, f"tag {_show_tag(node.tag)} is not allowed: write plain YAML values")
            return None
        if isinstance(node, MappingNode):
            return self.mapping(node, key, depth)
        if isinstance(node, SequenceNode):
            return [self.build(item, (*key, i), depth + 1) for i, item in enumerate(node.value)]
        try:
            return self.loader.construct_object(node, deep=True)
        except yaml.YAMLError as e:
            self.problem(node, key, f"invalid {_show_tag(node.tag)} value {node.value!r} ({e})")
            return None

    def mapping(self, node: MappingNode, key: Key, depth: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        seen: dict[str, Position] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _CORE + "merge":
                self.problem(key_node, key, "merge keys (<<) are not supported: write the keys out")
                continue
            name = None
            if isinstance(key_node, ScalarNode) and key_node.tag in _ALLOWED_TAGS:
                name = self.loader.construct_object(key_node)
            if not isinstance(name, str):
                shown = key_node.value if isinstance(key_node, ScalarNode) else "a collection"
                self.problem(key_node, key, f"keys must be text, got {shown!r}: quote the key")
                continue
            child = (*key, name)
            where = _pos(key_node.start_mark)
            if name in seen:
                first = seen[name]
                self.problem(
                    key_node,
                    child,
                    f"duplicate key (first given at line {first.line}): keep only one",
                )
                continue
            seen[name] = where
            self.source.keys[child] = where
            out[name] = self.build(value_node, child, depth + 1)
        return out


def _abort(file: str, position: Position | None, message: str) -> YamlError:
    """The error for a file over a limit (nesting, aliases, values): reading stops at once."""
    return YamlError([Problem(file, position, "", message)])


def _prescan(text: str, file: str) -> int:
    """Check depth and alias counts on the event stream, before anything is composed; return the
    number of alias uses."""
    depth = 0
    aliases = 0
    for event in yaml.parse(text, Loader=_Loader):
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            depth += 1
            if depth > MAX_DEPTH:
                raise _abort(file, _pos(event.start_mark), f"nesting deeper than {MAX_DEPTH} levels")
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            depth -= 1
        elif isinstance(event, yaml.AliasEvent):
            aliases += 1
            if aliases > MAX_ALIASES:
                raise _abort(
                    file,
                    _pos(event.start_mark),
                    f"more than {MAX_ALIASES} aliases (*name): write the values out",
                )
    return aliases


_PLACEHOLDER = re.compile(r"\{([A-Za-z_]\w*)\}")


def _placeholder_hint(text: str, mark: Any) -> str:
    """A hint when a syntax error sits on a line with an unquoted ``{stem}``-style placeholder.

    In a flow mapping (``output: {path: out/{stem}.tif}``) YAML reads ``{`` as the start of another
    mapping; the value must be quoted.
    """
    if mark is None:
        return ""
    lines = text.splitlines()
    line = lines[mark.line] if 0 <= mark.line < len(lines) else ""
    found = _PLACEHOLDER.search(line)
    if found is None:
        return ""
    return (
        f" (YAML reads the {{ of {found.group(0)} as the start of a mapping: quote the value, e.g. "
        f'"out/{found.group(0)}.tif")'
    )


def load_yaml(path: str | Path, *, display: str | None = None) -> tuple[Any, SourceMap]:
    """Read one YAML document from ``path`` with the guards described in the module docstring.

    Parameters
    ----------
    path : str or Path
        The YAML file.
    display : str or None
        How to name the file in messages (default: ``path`` as given).

    Returns
    -------
    (data, source_map)
        Plain data (dict, list, str, int, float, bool, None) and the positions of its keys and values.

    Raises
    ------
    ConfigError
        The file cannot be read, or is a :class:`YamlError` with every problem found.
    """
    file = display if display is not None else str(path)
    p = Path(path)
    try:
        size = p.stat().st_size
        if size > MAX_BYTES:
            raise ConfigError(f"{file}: {size} bytes is too large for a pipeline (limit {MAX_BYTES})")
        # At most MAX_BYTES + 1 bytes, whatever stat said: a stream (/dev/stdin, a FIFO, /dev/zero)
        # reports size 0 and may never end.
        with p.open("rb") as stream:
            raw = stream.read(MAX_BYTES + 1)
        if len(raw) > MAX_BYTES:
            raise ConfigError(f"{file}: more than {MAX_BYTES} bytes is too large for a pipeline")
        text = raw.decode("utf-8")
    except FileNotFoundError as e:
        raise ConfigError(f"{file}: no such file: check the path") from e
    except IsADirectoryError as e:
        raise ConfigError(f"{file}: is a folder, not a YAML file") from e
    except UnicodeDecodeError as e:
        raise ConfigError(f"{file}: not UTF-8 text ({e.reason} at byte {e.start})") from e
    except OSError as e:
        if e.errno == errno.ENAMETOOLONG:
            raise ConfigError(f"{file}: {name_too_long(path) or 'file name too long'}; shorten it") from e
        raise ConfigError(f"{file}: cannot read ({e.strerror or e})") from e
    return loads_yaml(text, file=file)


def _check_characters(text: str, file: str) -> None:
    """Raise :class:`YamlError` at the first character YAML does not allow (a NUL byte, a control code)."""
    bad = yaml.reader.Reader.NON_PRINTABLE.search(text)
    if bad is None:
        return
    start = bad.start()
    line = text.count("\n", 0, start) + 1
    column = start - (text.rfind("\n", 0, start) + 1) + 1
    code = ord(bad.group()[0])
    what = "a NUL byte" if code == 0 else f"the control character U+{code:04X}"
    raise YamlError(
        [Problem(file, Position(line, column), "", f"{what}: a pipeline is text; remove it or save as UTF-8")]
    )


def loads_yaml(text: str, *, file: str = "<string>") -> tuple[Any, SourceMap]:
    """Like :func:`load_yaml`, for YAML already in memory."""
    if len(text.encode("utf-8")) > MAX_BYTES:
        raise ConfigError(f"{file}: too large for a pipeline (limit {MAX_BYTES} bytes)")
    _check_characters(text, file)
    loader = _Loader(text)
    try:
        aliases = _prescan(text, file)
        node = loader.get_single_node()
        if node is None:
            raise YamlError([Problem(file, Position(1, 1), "", "the file is empty: see `geomask schema`")])
        builder = _Builder(file, loader, aliases)
        data = builder.build(node, (), 0)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = _pos(mark) if mark is not None else None
        what = " ".join(x for x in (e.context, e.problem) if x) + _placeholder_hint(text, mark)
        raise YamlError([Problem(file, where, "", f"YAML syntax error: {what}")]) from e
    except yaml.YAMLError as e:
        raise YamlError([Problem(file, None, "", f"YAML error: {e}")]) from e
    finally:
        loader.dispose()
    if builder.problems:
        raise YamlError(builder.problems)
    return data, builder.source
