"""Where each number of a model file comes from.

DESIGN.md's rule: every number in a bundled model traces to a published source or is
marked ``assumption:`` with its reason. The trace is the line's comment, which names keys of
``models/sources.toml`` each followed by a colon (``li2020: vmcall exit+entry ...``), or
``assumption:``. TOML parsers drop comments, so this module reads a model file line by
line: for every line that gives a number it returns the key the number sits under, the
comment, and the sources and assumptions the comment names. ``vemu show`` prints it; the
test suite requires every bundled number to have one or the other.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

from .model import MODELS_DIR

NUMBER_VALUE = re.compile(r"=\s*\[?\s*[-+]?(\d|inf\b|nan\b)")
STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'[^\']*\'')
CITATION = re.compile(r"([A-Za-z][\w.+-]*):")
_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*$")
_KEY = re.compile(r"""^\s*("[^"]*"|'[^']*'|[A-Za-z0-9_.\-]+)\s*=""")
_NAME = re.compile(r"""\b(?:name|path)\s*=\s*("[^"]*"|'[^']*')""")


@dataclass(frozen=True)
class Number:
    """One line of a model file that gives a number."""

    line: int  # 1-based
    key: str  # where it sits: "params.exit_cycles", "paths.net_rx.stages[2]", "flows[0].clients"
    label: str  # the inline table's name or path, if the line is one ("" otherwise)
    code: str  # the line without its comment, stripped
    comment: str  # stripped
    cites: tuple[str, ...]  # keys of sources.toml the comment names, in order, once each
    assumption: bool  # the comment says `assumption:`

    @property
    def traced(self) -> bool:
        return bool(self.cites) or self.assumption


@lru_cache(maxsize=1)
def sources() -> Mapping[str, Mapping[str, Any]]:
    """models/sources.toml: key -> title, authors, year, where, tag, note."""
    return tomllib.loads((MODELS_DIR / "sources.toml").read_text(encoding="utf-8"))


def _blank(text: str) -> str:
    """The text with every string literal emptied (same quotes, nothing inside)."""
    return STRING.sub(lambda m: '""' if m.group(0).startswith('"') else "''", text)


def code_and_comment(line: str) -> tuple[str, str]:
    """Splits a TOML line into code and comment at the first '#' outside a string."""
    quote, i = "", 0
    while i < len(line):
        c = line[i]
        if quote:
            if c == "\\" and quote == '"':
                i += 1  # an escaped character of a basic string
            elif c == quote:
                quote = ""
        elif c in "\"'":
            quote = c
        elif c == "#":
            return line[:i], line[i + 1:]
        i += 1
    return line, ""


def gives_number(code: str) -> bool:
    """Whether a line's code (no comment) sets a number, outside any string."""
    return NUMBER_VALUE.search(_blank(code)) is not None


def numbers(path: Path | str, known: Mapping[str, Any] | None = None) -> list[Number]:
    """Every line of the model file at ``path`` that gives a number, with its trace.

    ``known`` is the set of source keys a comment may cite (default: models/sources.toml);
    a ``word:`` in a comment that is not a known key is prose, not a citation."""
    known = sources() if known is None else known
    out: list[Number] = []
    table = ""
    counts: dict[str, int] = {}  # arrays of tables seen so far: [[flows]] -> flows[0], flows[1] ...
    array: str | None = None  # the key of an open multi-line array (stages = [ ...)
    item = 0
    in_multiline = False
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if line.count('"""') % 2 == 1:
            in_multiline = not in_multiline
            continue
        if in_multiline:
            continue
        code, comment = code_and_comment(line)
        head = _HEADER.match(_blank(code))  # a header has no strings but a quoted key's
        if head:
            name = head.group(2)
            if head.group(1) == "[[":
                counts[name] = counts.get(name, -1) + 1
                table = f"{name}[{counts[name]}]"
            else:
                table = name
            array = None
            continue
        label = ""
        bare = _blank(code)  # for the structure: brackets inside strings do not count
        m, mb = _KEY.match(code), _KEY.match(bare)
        if array is not None and bare.lstrip().startswith("]"):
            array = None
        if m and mb and array is None:
            key = f"{table}.{m.group(1)}" if table else m.group(1)
            rest = bare[mb.end():].strip()
            if rest.startswith("[") and "]" not in rest:  # a multi-line array begins
                array, item = key, 0
        elif array is not None and bare.lstrip().startswith("{"):
            key = f"{array}[{item}]"
            item += 1
            nm = _NAME.search(line)
            label = nm.group(1)[1:-1] if nm else ""
        else:  # any other line (a continuation, say) counts too, under what encloses it
            key = array or table
        if not gives_number(code):
            continue
        words = CITATION.findall(comment)
        cites = tuple(dict.fromkeys(w for w in words if w in known))
        out.append(Number(n, key, label, code.strip(), comment.strip(), cites, "assumption" in words))
    return out


__all__ = ["Number", "numbers", "sources", "code_and_comment", "gives_number", "CITATION"]
