"""Where each number of a model file comes from.

DESIGN.md's rule: every number in a bundled model traces to a published source or is
marked ``assumption:`` with its reason. The trace is the comment on the number's line,
which names keys of ``models/sources.toml`` each followed by a colon (``li2020: vmcall
exit+entry ...``), or ``assumption:``. TOML parsers drop comments, so this module reads a
model file itself: a small scanner of TOML's structure (tables, arrays of tables, dotted
and quoted keys, arrays and inline tables over any number of lines, the four kinds of
string) that finds every number, the key path it sits at and its line, and pairs each line
that gives a number with its comment. It does not check the file: that is tomllib's job,
and callers read a file with tomllib first. ``vemu show`` prints the result; the tests
require every bundled number to have a trace, and check the scanner's paths and values
against tomllib's reading of the same file.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping, Union

from .model import MODELS_DIR

Key = tuple[Union[str, int], ...]  # a path into the parsed document: names and list indices

CITATION = re.compile(r"([A-Za-z][\w.+-]*):")
_NUMBER = re.compile(r"[+-]?(?:inf|nan|0x[0-9A-Fa-f_]+|0o[0-7_]+|0b[01_]+"
                     r"|\d[\d_]*(?:\.\d[\d_]*)?(?:[eE][+-]?\d[\d_]*)?)")
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_BARE_VALUE_END = set(",]}#\n\r \t")


@dataclass(frozen=True)
class Leaf:
    """One number of the file: where it sits, its text as written, its line (1-based)."""

    key: Key
    text: str
    line: int
    offset: int  # where the text starts in the document


@dataclass(frozen=True)
class Number:
    """One line of a model file that gives one or more numbers, and the line's trace."""

    line: int  # 1-based
    path: Key  # the path the line's numbers share (for one number, its own)
    key: str  # the same as text: "params.exit_cycles", "paths.net_rx.stages[2]", "flows[0].clients"
    leaves: tuple[Leaf, ...]  # the numbers on the line
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


def key_str(key: Key) -> str:
    """A path as text: names joined by dots (quoted where a bare key could not say them),
    list indices in brackets: ``paths.net_rx.stages[2]``."""
    out = ""
    for k in key:
        if isinstance(k, int):
            out += f"[{k}]"
        else:
            name = k if _BARE_KEY.fullmatch(k) else '"' + k.replace("\\", "\\\\").replace('"', '\\"') + '"'
            out += f".{name}" if out else name
    return out


class _Scanner:
    def __init__(self, text: str):
        self.s = text
        self.i = 0
        self.line = 1
        self.comments: dict[int, tuple[int, str]] = {}  # line -> (offset of '#' in the text, comment)
        self.leaves: list[Leaf] = []
        self.arrays: dict[Key, int] = {}  # array-of-tables paths -> index of their latest table

    def _peek(self, n: int = 1) -> str:
        return self.s[self.i:self.i + n]

    def _advance(self, n: int = 1) -> None:
        self.line += self.s.count("\n", self.i, self.i + n)
        self.i += n

    def _space(self, newlines: bool) -> None:
        """Skips blanks, and with ``newlines`` also line ends and comments (recorded)."""
        while self.i < len(self.s):
            c = self.s[self.i]
            if c in " \t":
                self.i += 1
            elif c == "#":
                end = self.s.find("\n", self.i)
                end = len(self.s) if end < 0 else end
                self.comments[self.line] = (self.i, self.s[self.i + 1:end])
                self.i = end
            elif newlines and c in "\r\n":
                self._advance()
            else:
                return

    def _string(self) -> str:
        q = self.s[self.i]
        if self._peek(3) == q * 3:  # multi-line; up to two more quotes may end it ("""a"""")
            end = self.s.find(q * 3, self.i + 3)
            while q == '"' and end > 0 and _escaped(self.s, end):
                end = self.s.find(q * 3, end + 1)
            end = len(self.s) if end < 0 else end + 3
            while end < len(self.s) and self.s[end] == q:
                end += 1
            raw = self.s[self.i + 3:end - 3]
            self._advance(end - self.i)
            return raw
        j = self.i + 1
        while j < len(self.s) and self.s[j] != q and self.s[j] != "\n":
            j += 2 if (q == '"' and self.s[j] == "\\") else 1
        raw = self.s[self.i + 1:j]
        self._advance(j + 1 - self.i)
        return tomllib.loads(f"v = {q}{raw}{q}")["v"] if q == '"' else raw

    def _key(self) -> list[str]:
        parts = []
        while True:
            self._space(False)
            if self._peek() in ('"', "'"):
                parts.append(self._string())
            else:
                m = _BARE_KEY.match(self.s, self.i)
                if not m:
                    raise ValueError(f"line {self.line}: expected a key")
                parts.append(m.group(0))
                self._advance(m.end() - self.i)
            self._space(False)
            if self._peek() != ".":
                return parts
            self._advance()

    def _value(self, key: Key) -> None:
        c = self._peek()
        if c in ('"', "'"):
            self._string()
        elif c == "[":
            self._advance()
            n = 0
            while True:
                self._space(True)
                if self._peek() == "]":
                    break
                self._value(key + (n,))
                self._space(True)
                if self._peek() == ",":
                    self._advance()
                    n += 1
                elif self._peek() == "]":
                    break
                else:
                    raise ValueError(f"line {self.line}: expected ',' or ']'")
            self._advance()
        elif c == "{":
            self._advance()
            while True:
                self._space(True)
                if self._peek() == "}":
                    break
                self._pair(key)
                self._space(True)
                if self._peek() == ",":
                    self._advance()
            self._advance()
        else:  # a bare value: number, boolean or date
            j = self.i
            while j < len(self.s) and self.s[j] not in _BARE_VALUE_END:
                j += 1
            if j < len(self.s) and self.s[j] == " " and re.fullmatch(r"\d{4}-\d\d-\d\d", self.s[self.i:j]):
                j += 1  # a date and a time separated by a space: one value
                while j < len(self.s) and self.s[j] not in _BARE_VALUE_END:
                    j += 1
            text = self.s[self.i:j]
            if _NUMBER.fullmatch(text):
                self.leaves.append(Leaf(key, text, self.line, self.i))
            self._advance(j - self.i)

    def _pair(self, table: Key) -> None:
        """``key = value`` under ``table`` (a document's line, or an item of an inline table)."""
        k = self._key()
        if self._peek() != "=":
            raise ValueError(f"line {self.line}: expected '='")
        self._advance()
        self._space(False)
        self._value(table + tuple(k))

    def _table(self, parts: list[str], array: bool) -> Key:
        key: Key = ()
        for n, p in enumerate(parts):
            key += (p,)
            if n == len(parts) - 1 and array:
                self.arrays[key] = self.arrays.get(key, -1) + 1
            if key in self.arrays:
                key += (self.arrays[key],)
        return key

    def document(self) -> None:
        table: Key = ()
        while True:
            self._space(True)
            if self.i >= len(self.s):
                return
            if self._peek() == "[":
                array = self._peek(2) == "[["
                self._advance(2 if array else 1)
                parts = self._key()
                self._advance(2 if array else 1)
                table = self._table(parts, array)
            else:
                self._pair(table)


def _escaped(s: str, i: int) -> bool:
    """Whether s[i] follows an odd number of backslashes."""
    n = 0
    while i - n - 1 >= 0 and s[i - n - 1] == "\\":
        n += 1
    return n % 2 == 1


def leaves(text: str) -> tuple[list[Leaf], dict[int, tuple[int, str]]]:
    """Every number of a TOML document (text that tomllib accepts), and the comment of each
    line that has one (line -> offset of its '#' in the text, the comment)."""
    sc = _Scanner(text)
    sc.document()
    return sc.leaves, sc.comments


def numbers(path: Path | str, known: Mapping[str, Any] | None = None) -> list[Number]:
    """Every line of the model file at ``path`` that gives a number, with its trace.

    ``known`` is the set of source keys a comment may cite (default: models/sources.toml);
    a ``word:`` in a comment that is not a known key is prose, not a citation."""
    known = sources() if known is None else known
    text = Path(path).read_text(encoding="utf-8-sig")  # as the model loader reads it: a byte-order mark is not data
    found, comments = leaves(text)
    starts = [0] + [i + 1 for i, c in enumerate(text) if c == "\n"]  # offset of each line
    by_line: dict[int, list[Leaf]] = {}
    for leaf in found:
        by_line.setdefault(leaf.line, []).append(leaf)
    out = []
    for line, ls in sorted(by_line.items()):
        at, comment = comments.get(line, (None, ""))
        end = text.find("\n", starts[line - 1])
        code = text[starts[line - 1]:at if at is not None else (len(text) if end < 0 else end)]
        words = CITATION.findall(comment)
        at = common(ls)
        out.append(Number(line, at, key_str(at), tuple(ls), code.strip(), comment.strip(),
                          tuple(dict.fromkeys(w for w in words if w in known)), "assumption" in words))
    return out


def common(ls: list[Leaf]) -> Key:
    """The longest path all the leaves share (for one leaf, its own path)."""
    key = ls[0].key
    for leaf in ls[1:]:
        n = 0
        while n < min(len(key), len(leaf.key)) and key[n] == leaf.key[n]:
            n += 1
        key = key[:n]
    return key


__all__ = ["Leaf", "Number", "numbers", "leaves", "sources", "key_str", "CITATION"]
