"""``vemu show MODEL``: one model's numbers and where each comes from, and its paths.

For a teacher, the request paths of an architecture stage by stage, with what each stage
costs and which ``--set`` name changes it. For a researcher, the audit DESIGN.md promises:
every number of the model file beside the source it cites (resolved from
models/sources.toml) or the assumption it rests on, and ``--assumptions`` to list only the
numbers no source backs.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import textwrap
from pathlib import Path
from typing import Any

from ._core import ModelError
from .citations import Number, numbers, sources
from .model import KIND_DIRS, PARSERS, Architecture, Dist_, Host, PathStep, Stage, Workload, bundled, bundled_path, load, read_toml

KINDS = tuple(KIND_DIRS)
PAGE_BYTES_MAX = 4294967295  # the engine's byte limit: a stage whose page is this long counts one page
_PAIR = re.compile(r"([A-Za-z_]\w*)\s*=\s*([-+]?(?:\d[\d_]*(?:\.\d+)?(?:[eE][-+]?\d+)?|inf|nan))")


def resolve(name: str, kind: str | None) -> tuple[str, Host | Architecture | Workload, Path]:
    """The model NAME names: a bundled model (of ``kind``, or of whichever kind has it) or a
    model file (its kind from ``kind`` or its keys)."""
    p = Path(name)
    if name.endswith(".toml") or "/" in name or "\\" in name:
        if not p.is_file():
            raise ModelError("no such model file", file=name)
        data = read_toml(p)
        if kind is None:
            kind = ("architecture" if "paths" in data else "workload" if "flows" in data
                    else "host" if "ghz" in data else None)
            if kind is None:
                raise ModelError("cannot tell the model's kind (no `paths`, `flows` or `ghz`); give --kind "
                                 f"({', '.join(KINDS)})", file=name)
        return kind, PARSERS[kind](data, str(p)), p  # type: ignore[operator]
    kinds = [kind] if kind else [k for k in KINDS if name in bundled(k)]
    if not kinds:
        known = "; ".join(f"{k}s: {', '.join(bundled(k))}" for k in KINDS)
        raise ModelError(f"no bundled model '{name}' (a name from `vemu list`, or a model file path); {known}")
    if len(kinds) > 1:
        raise ModelError(f"'{name}' is a bundled {' and a '.join(kinds)}; say which with --kind")
    path = bundled_path(kinds[0], name, key="vemu show")
    return kinds[0], load(kinds[0], name), path


def _value(n: Number) -> str:
    """What the line sets: the value of a key line, the number pairs of an inline table."""
    code = n.code.rstrip(",").strip()
    if code.startswith("{"):
        return ", ".join(f"{k} = {v}" for k, v in _PAIR.findall(code))
    return code.split("=", 1)[1].strip() if "=" in code else code


def _from(n: Number) -> str:
    parts = list(n.cites) + (["assumption"] if n.assumption else [])
    return ", ".join(parts) if parts else "NOT TRACED"


def _cost(v: Any, params: dict[str, float], ghz: float | None, unit: str = "cycles") -> str:
    """A stage's cost as written, with the number a param name stands for (and microseconds
    at the host's clock when there is a host)."""
    if isinstance(v, Dist_):
        mean = _cost(v.mean, params, ghz, unit)
        return f"{v.dist}(mean {mean}{f', cv {v.cv:g}' if v.cv else ''})"
    if isinstance(v, str):
        if v in params:
            num = params[v]
            us = f", {num / (ghz * 1e3):.3g} us" if ghz and unit == "cycles" else ""
            return f"{v} = {num:g}{us}"
        return f"{v} (a host param)" if ghz is None else f"{v} (not defined)"
    us = f" ({v / (ghz * 1e3):.3g} us)" if ghz and unit == "cycles" and v else ""
    return f"{v:g} {unit}{us}" if unit else f"{v:g}"


def _stage_line(s: Stage, params: dict[str, float], ghz: float | None) -> str:
    bits = [f"on {s.on}" if s.on else "no resource"]
    if s.cycles not in (0, 0.0):
        bits.append(_cost(s.cycles, params, ghz))
    if s.per_byte not in (0, 0.0):
        bits.append(f"+ {_cost(s.per_byte, params, None, '')} per byte")
    if s.per_page not in (0, 0.0):
        beyond = _cost(s.unpaged_bytes, params, None, "B")
        if s.page_bytes >= PAGE_BYTES_MAX:  # one "page" however long: once per request with such a rest
            bits.append(f"+ {_cost(s.per_page, params, ghz)} once if the request has more than {beyond}")
        else:
            bits.append(f"+ {_cost(s.per_page, params, ghz)} per {s.page_bytes:g} B page"
                        + (f" beyond the first {beyond}" if s.unpaged_bytes else ""))
    if s.delay_us not in (0, 0.0):
        bits.append(f"delay {_cost(s.delay_us, params, None, 'us')}")
    if s.cycles or s.per_byte or s.per_page:
        bits.append(f"-> {s.account}")
    for flag, val, show in (("batch", s.batch, s.batch > 1), ("priority", s.priority, s.priority),
                            ("throttle", f"{s.throttle_us} us", s.throttle_us), ("fork", s.fork, s.fork),
                            ("direction", s.direction, s.direction)):
        if show:
            bits.append(f"{flag} {val}")
    return f"{s.name}: " + "; ".join(bits)


def _flows(flows: Any, params: dict[str, float], ghz: float | None) -> dict[str, Any]:
    out = {}
    for f in flows:
        arrival = (f"closed, {f.clients} clients" if f.arrival == "closed"
                   else f"{f.arrival}, {f.rate_per_s:g}/s{' per vCPU' if f.per_vcpu else ''}")
        out[f.name] = {"arrival": arrival, "classes": {
            c.name: {"weight": c.weight, "steps": [
                (f"path {st.path}, {_cost(st.bytes, params, None, 'B')}" + (f" x {st.count}" if st.count > 1 else ""))
                if isinstance(st, PathStep) else _stage_line(st, params, ghz) for st in c.steps]}
            for c in f.classes}}
    return out


def describe(kind: str, model: Host | Architecture | Workload, path: Path, host: Host | None = None) -> dict[str, Any]:
    """Everything ``vemu show`` prints, as plain data."""
    nums = numbers(path)
    src = sources()
    cited = list(dict.fromkeys(k for n in nums for k in n.cites) | dict.fromkeys(
        k for k in getattr(model, "sources", ()) if k in src))
    out: dict[str, Any] = {
        "kind": kind, "name": model.name, "summary": model.summary, "file": str(path),
        "numbers": [{"line": n.line, "key": n.key, "label": n.label, "value": _value(n), "sources": list(n.cites),
                     "assumption": n.assumption, "comment": n.comment} for n in nums],
        "counts": {"numbers": len(nums), "sourced": sum(bool(n.cites) for n in nums),
                   "assumption_only": sum(n.assumption and not n.cites for n in nums),
                   "untraced": sum(not n.traced for n in nums)},
        "sources": {k: {f: src[k][f] for f in ("title", "authors", "year", "tag", "where") if f in src[k]}
                    for k in cited},
    }
    if isinstance(model, Architecture):
        params = dict(host.params) if host else {}
        params.update(model.params)
        ghz = host.ghz if host else None
        out["host"] = host.name if host else None
        out["paths"] = {p: [_stage_line(s, params, ghz) for s in stages] for p, stages in model.paths.items()}
        out["reserve"] = {"cores": model.reserve_cores, "memory_gib": model.reserve_memory_gib}
        out["resources"] = {r.name: {"kind": r.kind, "units": r.units, "on_host": r.on_host,
                                     **({"ghz": r.ghz} if r.ghz else {})} for r in model.resources}
        out["flows"] = _flows(model.background, params, ghz)
    elif isinstance(model, Workload):
        out["flows"] = _flows(model.flows, dict(model.params), None)
    else:
        out["devices"] = {d.name: {"kind": d.kind, "units": d.units} for d in model.devices}  # type: ignore[union-attr]
        out["params"] = dict(model.params)
    return out


def _wrap(text: str, indent: int, width: int = 100) -> str:
    return textwrap.fill(text, width=width, initial_indent=" " * indent, subsequent_indent=" " * indent)


def render(d: dict[str, Any], *, assumptions_only: bool = False) -> str:
    c = d["counts"]
    lines = [f"{d['kind']} {d['name']}: {d['summary']}", f"  file: {d['file']}",
             f"  {c['numbers']} numbers: {c['sourced']} cite a source, {c['assumption_only']} rest on an "
             f"assumption alone" + (f", {c['untraced']} NOT TRACED" if c["untraced"] else ""), ""]
    if d["kind"] == "architecture" and not assumptions_only:
        r = d["reserve"]
        lines.append(f"reserve: {r['cores']} cores, {r['memory_gib']:g} GiB withheld from tenants")
        for name, res in d["resources"].items():
            where = "on the host" if res["on_host"] else "off the host (its cycles are not host cycles)"
            lines.append(f"resource {name}: {res['kind']} x {res['units']}"
                         + (f" at {res['ghz']:g} GHz" if res.get("ghz") else "") + f", {where}")
        lines += ["", "paths (stage by stage; a name is a param: change it with --set NAME=VALUE)"
                  + (f", costs at {d['host']}'s clock" if d.get("host") else "; --host resolves host params") + ":"]
        for p, stages in d["paths"].items():
            lines.append(f"  {p}")
            lines += [f"    {i}. {s}" for i, s in enumerate(stages, 1)]
        lines.append("")
    if d.get("flows") and not assumptions_only:
        lines.append("flows:" if d["kind"] == "workload" else "background flows (the architecture's own work):")
        for f, fl in d["flows"].items():
            lines.append(f"  {f} ({fl['arrival']})")
            for cname, cl in fl["classes"].items():
                lines.append(f"    {cname} (weight {cl['weight']:g})")
                lines += [f"      {i}. {s}" for i, s in enumerate(cl["steps"], 1)]
        lines.append("")
    rows = [n for n in d["numbers"] if not assumptions_only or (n["assumption"] and not n["sources"])]
    lines.append("numbers resting on an assumption alone:" if assumptions_only else "every number and where it comes from:")
    if not rows:
        lines.append("  none")
    for n in rows:
        what = n["key"] + (f' "{n["label"]}"' if n["label"] else "")
        lines.append(f"  {n['line']:>4}  {what}{': ' if n['key'].endswith(']') else ' = '}{n['value']}   [{', '.join(n['sources'] + (['assumption'] if n['assumption'] else [])) or 'NOT TRACED'}]")
        if n["comment"]:
            lines.append(_wrap(n["comment"], 8))
    shown = dict.fromkeys(k for n in rows for k in n["sources"]) if assumptions_only else d["sources"]
    if shown:
        lines += ["", "sources (models/sources.toml):"]
        for k in shown:
            s = d["sources"][k]
            lines.append(_wrap(f"{k}: {s.get('authors', '?')}, \"{s['title']}\", {s['year']}"
                               + (f" [{s['tag']}]" if s.get("tag") else ""), 2))
    return "\n".join(lines)


def cmd_show(a: argparse.Namespace) -> int:
    kind, model, path = resolve(a.model, a.kind)
    host = None
    if a.host is not None:
        if kind != "architecture":
            from .cli import UsageError
            raise UsageError("vemu show: --host resolves an architecture's costs; it does not apply to a "
                             f"{kind}")
        host = resolve(a.host, "host")[1]  # type: ignore[assignment]
    d = describe(kind, model, path, host)  # type: ignore[arg-type]
    if a.json:
        if a.assumptions:
            d["numbers"] = [n for n in d["numbers"] if n["assumption"] and not n["sources"]]
        json.dump(d, sys.stdout, indent=1)
        print()
    else:
        print(render(d, assumptions_only=a.assumptions))
    return 0


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("show", help="a model's paths and numbers, each with its source or assumption")
    p.add_argument("model", help="a bundled host, architecture or workload (see `vemu list`), or a model file")
    p.add_argument("--kind", choices=KINDS, help="the model's kind, when a name or file leaves it open")
    p.add_argument("--host", help="an architecture's costs at this host's params and clock (bundled name or file)")
    p.add_argument("--assumptions", action="store_true", help="list only the numbers no source backs")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_show)
