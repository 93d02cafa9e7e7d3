"""``vemu show MODEL``: one model's paths and numbers, and where each number comes from.

For a teacher, an architecture's request paths stage by stage, with what each stage costs
and which ``--set`` name changes it. For a researcher, the audit DESIGN.md promises: every
number of the model file beside the sources its comment cites (resolved from
models/sources.toml) or the assumption it rests on, and ``--assumptions`` to list only the
numbers no source backs. An experiment file shows its host, architecture and workload.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import math
import sys
import textwrap
from pathlib import Path
from typing import Any

from ._core import ModelError
from .citations import Number, common, key_str, numbers, sources
from .model import (KIND_DIRS, PARSERS, _set_entries, Architecture, Dist_, Host, PathStep, Stage, Workload, bundled,
                    bundled_path, is_vcpu, load, load_experiment, read_toml)

KINDS = tuple(KIND_DIRS)
DEFAULT_SENSITIVITY = Path(__file__).resolve().parent.parent / "results" / "sensitivity.csv"
PAGE_BYTES_MAX = 4294967295  # the engine's byte limit: a stage whose page is this long counts one page
Model = Host | Architecture | Workload


class Shown:
    """One model to show: its kind, the parsed model, the file its numbers are in, and the
    table of that file it sits under (() for a model file; ("architecture",) for an
    experiment file's inline architecture, ("experiment", "tenants", 0, "workload") for a
    tenant's inline workload); ``tenant`` names the tenant a workload belongs to."""

    def __init__(self, kind: str, model: Model, file: Path, prefix: tuple[Any, ...] = (), tenant: str = "",
                 exp: Any = None, overrides: dict[str, Any] | None = None):
        self.kind, self.model, self.file, self.prefix, self.tenant = kind, model, file, prefix, tenant
        self.exp = exp  # the experiment this model came from: its host and architecture price the stages
        self.overrides = overrides or {}  # the experiment file's [set] table


def resolve(name: str, kind: str | None, *, flag: str = "NAME") -> list[Shown]:
    """What NAME names: a bundled model (of ``kind``, or of whichever kind has that name), a
    model file (its kind from ``kind`` or its keys), or an experiment file (its models)."""
    if name.endswith(".toml") or "/" in name or "\\" in name:
        p = Path(name)
        if p.is_dir():
            raise ModelError("is a folder; give a model file or a bundled name", file=name)
        if not p.is_file():
            raise ModelError("is not a regular file; give a model file" if p.exists() else "no such model file",
                             file=name)
        data = read_toml(p)
        if set(data) & {"experiment", "set"} or any(isinstance(data.get(k), dict) for k in KINDS):
            shown = _experiment(p, data)  # an experiment file: its models (of one kind, if asked)
            return [x for x in shown if kind is None or x.kind == kind]
        if kind is None:
            kind = ("architecture" if "paths" in data else "workload" if "flows" in data
                    else "host" if "ghz" in data else None)
            if kind is None:
                raise ModelError("cannot tell the model's kind (no `paths`, `flows` or `ghz`, and not an "
                                 f"experiment); give --kind ({', '.join(KINDS)})", file=name)
        return [Shown(kind, PARSERS[kind](data, str(p)), p)]  # type: ignore[operator]
    kinds = [kind] if kind else [k for k in KINDS if name in bundled(k)]
    if not kinds:
        import difflib

        known = "; ".join(f"{k}s: {', '.join(bundled(k))}" for k in KINDS)
        close = difflib.get_close_matches(name, [n for k in KINDS for n in bundled(k)], n=1, cutoff=0.6)
        hint = f"did you mean '{close[0]}'? " if close else ""
        raise ModelError(f"no bundled model '{name}' (a name from `vemu list`, or a model file path); {hint}{known}")
    if len(kinds) > 1:
        raise ModelError(f"'{name}' is a bundled {' and a '.join(kinds)}; say which with --kind", key=flag)
    path = bundled_path(kinds[0], name, key=flag)
    return [Shown(kinds[0], load(kinds[0], name), path)]


def _experiment(p: Path, data: dict[str, Any]) -> list[Shown]:
    exp = load_experiment(p)  # validates the whole experiment, [set] included, as `vemu run` would
    raw_sets = data.get("set") if isinstance(data.get("set"), dict) else {}
    # as load_experiment reads them: an unquoted dotted key is a path, not a table value
    sets = {fk: fv for k, v in raw_sets.items() for fk, fv in _set_entries(k, v)}

    tenant_index = {t.name: i for i, t in enumerate(exp.tenants or ())}

    def shown(kind: str, model: Model, inline: bool, prefix: tuple[Any, ...], tenant: str = "") -> Shown:
        # the overrides that reach this model: a tenant's workload's are the tenant's
        mine = {k: v for k, v in sets.items() if not k.startswith("tenants.")
                or (tenant and k.split(".")[1] in (tenant, str(tenant_index.get(tenant)), "*"))}
        return Shown(kind, model, p if inline else Path(model.file), prefix if inline else (), tenant, exp, mine)

    out = [shown(k, getattr(exp, k), isinstance(data.get(k), dict), (k,)) for k in ("host", "architecture")]
    if exp.tenants:
        items = data["experiment"]["tenants"]

        def given(i: int, name: str) -> tuple[bool, tuple[Any, ...]]:
            """Whether tenant i's workload is a table of this file, and where its numbers are:
            the tenant's own entry, or the [set] line that gave it (the last such)."""
            if Path(exp.tenants[i].workload.file) != Path(p):
                return False, ()
            for k in reversed(list(raw_sets)):
                if isinstance(raw_sets[k], dict) and k in (f"tenants.{name}.workload", f"tenants.{i}.workload"):
                    return True, ("set", k)
            return True, ("experiment", "tenants", i, "workload")

        out += [shown("workload", t.workload, *given(i, t.name), t.name) for i, t in enumerate(exp.tenants)]
    else:
        out.append(shown("workload", exp.workload, isinstance(data.get("workload"), dict), ("workload",)))
    return out


def sensitivity_marks(csv_path: Path) -> tuple[dict[tuple[str, str], dict[tuple[Any, ...], list[dict[str, Any]]]], str]:
    """What the sensitivity study (its CSV, as `vemu reproduce` writes it) did with each
    number of the bundled models: (kind, model name) -> path in that model -> the ranges
    that moved it, per architecture. Also a line saying where the figures come from."""
    from .experiments.sensitivity import HOST, WORKLOAD, expand_key, load_ranges, locate
    from .provenance import read_csv

    where = str(csv_path)
    if not csv_path.is_file():
        raise ModelError("no sensitivity results here; `vemu reproduce --only sensitivity` writes them", file=where)
    try:
        header, rows, prov = read_csv(csv_path)
    except (UnicodeDecodeError, csv.Error) as e:
        raise ModelError(f"not a CSV that `vemu reproduce` wrote ({e})", file=where) from None
    numeric = {"low_value": "low", "high_value": "high", "usable_at_low": "usable_at_low",
               "usable_at_high": "usable_at_high", "baseline": "baseline", "swing": "swing"}
    missing = sorted({"architecture", "parameter", *numeric} - set(header))
    if missing:
        raise ModelError(f"no column {', '.join(missing)}: not a sensitivity.csv that `vemu reproduce` wrote",
                         file=where)
    if not rows:
        raise ModelError("has no rows; `vemu reproduce --only sensitivity` writes them", file=where)
    ranges = {r.label: r for r in load_ranges()}
    archs = set(bundled("architecture"))
    stale = [(r["architecture"], r["parameter"]) for r in rows
             if r["architecture"] not in archs or r["parameter"] not in ranges]
    if stale:
        raise ModelError(f"{len(stale)} of its {len(rows)} rows name an architecture or range the models no longer "
                         f"have ({stale[0][0]!r}, {stale[0][1]!r}): it is older than models/sensitivity.toml; "
                         "`vemu reproduce --only sensitivity` rewrites it", file=where)
    raws: dict[str, Any] = {}
    marks: dict[tuple[str, str], dict[tuple[Any, ...], list[dict[str, Any]]]] = {}
    for i, row in enumerate(rows, 1):
        a, rng = row["architecture"], ranges[row["parameter"]]
        if a not in raws:
            raws[a] = load_experiment(host=HOST, architecture=a, workload=WORKLOAD).raw
        entry: dict[str, Any] = {"architecture": a, "range": rng.label, "scale": rng.scale}
        for col, name in numeric.items():
            try:
                entry[name] = float(row[col])
            except (TypeError, ValueError):
                entry[name] = math.nan
            if not math.isfinite(entry[name]):
                raise ModelError(f"row {i}: {col} is {row[col]!r}, not a finite number", file=where)
        for k in rng.keys:
            for concrete in expand_key(raws[a], k, rng.match):
                kind, path = locate(raws[a], concrete)
                name = {"host": HOST, "architecture": a, "workload": WORKLOAD}[kind]
                marks.setdefault((kind, name), {}).setdefault(path, []).append(entry)
    rev = prov.get("git_revision", "?")
    return marks, f"{csv_path}, git {str(rev)[:12]}, {HOST} and {WORKLOAD} at saturation"


def _num(v: float) -> str:
    return f"{v:g}"


class _Pricer:
    """Writes a stage's costs: the param a name stands for, its value, and microseconds at
    the clock of the resource it runs on, as the engine prices it: the host's for the
    vCPUs and on-host resources, an off-host resource's own (an offload card, a host
    device of kind cpu). A resource whose clock is not known here gets no microseconds."""

    def __init__(self, params: dict[str, float], host: Host | None, arch: Architecture | None):
        self.params = params
        self.host = host
        self.clock: dict[str, float] = {}
        if host is not None:
            self.clock["vcpu"] = host.ghz
            self.clock.update({d.name: d.ghz for d in host.devices if d.kind == "cpu" and d.ghz})
        for r in (arch.resources if arch is not None else ()):
            ghz = (host.ghz if host is not None else None) if r.on_host else r.ghz
            if r.kind == "cpu" and ghz:
                self.clock[r.name] = ghz
        # the guest's own work (tenant stages on its vCPUs) takes 1 / (1 - share) as long, as
        # the engine prices it: the nested dimension of its page walks
        np_ = arch.nested_paging if arch is not None else 0.0
        share = params.get(np_) if isinstance(np_, str) else float(np_)
        self.paging = float(share) if isinstance(share, (int, float)) and 0 <= share < 1 else 0.0

    def ghz(self, on: str | None) -> float | None:
        return self.clock.get(on or "")

    def value(self, v: Any, unit: str, ghz: float | None = None, stretch: float = 1.0) -> str:
        """``v`` (a number, a param name or a distribution) in ``unit``; cycles also in us
        (``stretch`` times their time at ``ghz``: nested paging's 1 / (1 - share))."""
        if isinstance(v, Dist_):
            return f"{v.dist}(mean {self.value(v.mean, unit, ghz, stretch)}{f', cv {v.cv:g}' if v.cv else ''})"
        name = ""
        if isinstance(v, str):
            if v not in self.params:
                return f"{v} (a host param; --host gives its value)" if self.host is None else f"{v} (not defined)"
            name, v = f"{v} = ", self.params[v]
        us = f", {v * stretch / (ghz * 1e3):.3g} us" if unit == "cycles" and ghz and v else ""
        paged = f" (with nested paging's 1/(1 - {self.paging:g}))" if us and stretch != 1.0 else ""
        return f"{name}{_num(v)} {unit}{us}{paged}"

    def stage(self, s: Stage) -> str:
        ghz = self.ghz(s.on)
        stretch = 1.0 / (1.0 - self.paging) if self.paging and s.account == "tenant" and s.on and is_vcpu(s.on) else 1.0
        bits = [f"on {s.on}" if s.on else "no resource"]
        if s.cycles not in (0, 0.0):
            bits.append(self.value(s.cycles, "cycles", ghz, stretch))
        if s.per_byte not in (0, 0.0):
            bits.append(f"+ {self.value(s.per_byte, 'cycles')} per byte")
        if s.per_page not in (0, 0.0):
            beyond = self.value(s.unpaged_bytes, "B")
            if s.page_bytes >= PAGE_BYTES_MAX:  # one "page" however long: once per request with such a rest
                bits.append(f"+ {self.value(s.per_page, 'cycles', ghz, stretch)} once if the request has more than "
                            f"{beyond}")
            else:
                bits.append(f"+ {self.value(s.per_page, 'cycles', ghz, stretch)} per {_num(s.page_bytes)} B page"
                            + (f" beyond the first {beyond}" if s.unpaged_bytes else ""))
        if s.delay_us not in (0, 0.0):
            bits.append(f"delay {self.value(s.delay_us, 'us')}")
        if s.cycles or s.per_byte or s.per_page:
            bits.append(f"-> {s.account}")
        if s.batch > 1:
            bits.append(f"batch {s.batch}")
        if s.priority:
            bits.append(f"priority {s.priority}")
        if s.preempt:
            bits.append("preempts")
        if s.throttle_us not in (0, 0.0):
            bits.append(f"throttle {self.value(s.throttle_us, 'us')}")
        if s.queues != 1 and (s.batch > 1 or s.throttle_us not in (0, 0.0)):
            bits.append("a queue per unit" if s.queues == "units" else f"{s.queues} queues")
        if s.fork:
            bits.append(f"fork {s.fork}")
        if s.direction:
            bits.append(f"direction {s.direction}")
        return f"{s.name}: " + "; ".join(bits)

    def flows(self, flows: Any) -> dict[str, Any]:
        out = {}
        for f in flows:
            arrival = (f"closed, {f.clients} clients" + (f", think {self.value(f.think_us, 'us')}" if f.think_us else "")
                       if f.arrival == "closed" else f"{f.arrival}, {f.rate_per_s:g}/s{' per vCPU' if f.per_vcpu else ''}")
            out[f.name] = {"arrival": arrival, "classes": {
                c.name: {"weight": c.weight, "steps": [
                    f"path {st.path}, {self.value(st.bytes, 'B')}" + (f" x {st.count}" if st.count > 1 else "")
                    if isinstance(st, PathStep) else self.stage(st) for st in c.steps]}
                for c in f.classes}}
        return out


def _label(data: Any, key: tuple[Any, ...]) -> str:
    """The name (or path) of the list item the numbers sit in, e.g. a stage's name."""
    node, label = data, ""
    for k in key:
        try:
            node = node[k]
        except (KeyError, IndexError, TypeError):
            break
        if isinstance(k, int) and isinstance(node, dict):
            v = node.get("name", node.get("path"))
            label = v if isinstance(v, str) else ""  # an unnamed item: not its parent's name
    return label


def _row(n: Number, data: Any) -> dict[str, Any]:
    rest = [(leaf.key[len(n.path):], leaf.text) for leaf in n.leaves]
    value = ", ".join(f"{key_str(k)} = {t}" if k else t for k, t in rest)
    return {"line": n.line, "key": n.key, "label": _label(data, n.path), "value": value,
            "numbers": {key_str(leaf.key): leaf.text for leaf in n.leaves}, "sources": list(n.cites),
            "assumption": n.assumption, "comment": n.comment}


def describe(shown: Shown, host: Host | None = None, marks: dict[Any, Any] | None = None) -> dict[str, Any]:
    """Everything ``vemu show`` prints for one model, as plain data; with ``marks`` (from
    :func:`sensitivity_marks`) each number also says what the sensitivity study did with it.
    ``host`` prices the stages (default: the experiment's, for a model of an experiment)."""
    kind, model, exp = shown.kind, shown.model, shown.exp
    host = host if host is not None else (exp.host if exp is not None else None)
    arch = model if isinstance(model, Architecture) else (exp.architecture if exp is not None else None)
    data = read_toml(shown.file)
    nums = _under(numbers(shown.file), shown.prefix)
    src = sources()
    cited = dict.fromkeys([k for n in nums for k in n.cites] + [k for k in model.sources if k in src])
    out: dict[str, Any] = {
        "kind": kind, "name": model.name, "summary": model.summary, "file": str(shown.file),
        "numbers": [_row(n, data) for n in nums],  # sensitivity entries added below
        "counts": {"numbers": len(nums), "sourced": sum(bool(n.cites) for n in nums),
                   "assumption_only": sum(n.assumption and not n.cites for n in nums),
                   "untraced": sum(not n.traced for n in nums)},
        "sources": {k: {f: src[k][f] for f in ("title", "authors", "year", "tag", "where") if f in src[k]}
                    for k in cited},
    }
    if shown.prefix:
        out["table"] = key_str(shown.prefix)
    if shown.tenant:
        out["tenant"] = shown.tenant
    if shown.overrides:
        out["set"] = shown.overrides
    if marks is not None:
        # only the bundled file itself: a copy with the same name may say anything
        mine = marks.get((kind, model.name), {}) if not shown.prefix and _is_bundled(kind, model.name, shown.file) else {}
        # a range may move a leaf that is no number (a stage's `cycles` naming a param: the EOI
        # exits): it is shown on the first line that gives a number of the same table
        numeric = {leaf.key for n in nums for leaf in n.leaves}
        beside: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
        for path, entries in mine.items():
            if path not in numeric:
                host_line = next((leaf.key[:-1] for n in nums for leaf in n.leaves if leaf.key[:-1] == path[:-1]), None)
                if host_line is not None:
                    beside.setdefault(host_line, []).extend(entries)
        for n, row in zip(nums, out["numbers"]):
            row["sensitivity"] = [e for leaf in n.leaves for e in mine.get(leaf.key, [])]
            tables = list(dict.fromkeys(leaf.key[:-1] for leaf in n.leaves))
            row["sensitivity"] += [e for t in tables for e in beside.pop(t, [])]
        rows = out["numbers"]
        alone = [n for n in rows if n["assumption"] and not n["sources"]]
        out["sensitivity_coverage"] = {
            "lines_varied": sum(bool(n["sensitivity"]) for n in rows),
            "assumption_only_varied": sum(bool(n["sensitivity"]) for n in alone),
            "assumption_only_not_varied": [n["key"] for n in alone if not n["sensitivity"]]}
    if isinstance(model, Host):
        out["hardware"] = {"cores": model.cores, "ghz": model.ghz, "memory_gib": model.memory_gib}
        out["devices"] = {d.name: _device(d, _Pricer(dict(model.params), model, None)) for d in model.devices}
        out["params"] = dict(model.params)
        if model.idle_states:
            out["idle_states"] = [f"{st.name}: exit {st.exit_us:g} us, chosen for predicted idle >= "
                                  f"{st.residency_us:g} us" for st in model.idle_states]
        return out
    # an experiment's model is priced with the experiment's workload params too, as the
    # engine merges host, architecture and workload params
    workload = model if isinstance(model, Workload) else (exp.workload if exp is not None else None)
    pricer = _Pricer(_params(("host", host), ("architecture", arch), ("workload", workload)), host, arch)
    out["host"] = host.name if host else None
    if isinstance(model, Architecture):
        out["paths"] = {p: [pricer.stage(s) for s in stages] for p, stages in model.paths.items()}
        out["reserve"] = {"cores": model.reserve_cores, "memory_gib": model.reserve_memory_gib}
        np_ = model.nested_paging  # a param name or a number
        out["nested_paging"] = {"param": np_, "share": pricer.params.get(np_) if isinstance(np_, str) else float(np_)}
        out["resources"] = {r.name: {"kind": r.kind, "units": r.units, "on_host": r.on_host,
                                     **({"ghz": r.ghz} if r.ghz else {}),
                                     # a link's speed, a server's service time: as a host device's
                                     **({"detail": _device(r, pricer)} if r.kind != "cpu" else {})}
                            for r in model.resources}
        out["flows"] = pricer.flows(model.background)
    else:
        out["flows"] = pricer.flows(model.flows)  # type: ignore[union-attr]
    return out


def _under(nums: list[Number], prefix: tuple[Any, ...]) -> list[Number]:
    """The lines' numbers that sit under ``prefix`` (a line may also hold others: a tenant's
    vcpus beside its inline workload)."""
    out = []
    for n in nums:
        ls = [leaf for leaf in n.leaves if leaf.key[:len(prefix)] == prefix]
        if len(ls) == len(n.leaves):
            out.append(n)
        elif ls:
            at = common(ls)
            out.append(dataclasses.replace(n, leaves=tuple(ls), path=at, key=key_str(at)))
    return out


def _device(d: Any, pricer: "_Pricer") -> str:
    """A host device in words: a link's speed, a server's units and service time."""
    if d.kind == "link":
        return (f"link, {d.gbps:g} Gb/s" + (" each way" if d.duplex else "") + (f" x {d.units}" if d.units > 1 else "")
                + (f", {d.overhead_bytes:g} B of framing per " + (f"frame of at most {d.segment_bytes:g} B"
                   if d.segment_bytes else "packet") if d.overhead_bytes else ""))
    if d.kind == "server":
        return f"{d.units} parallel units, {pricer.value(d.service_us, 'us')} per request"
    return f"cpu x {d.units}" + (f" at {d.ghz:g} GHz, off the host" if d.ghz else "")


def _is_bundled(kind: str, name: str, file: Path) -> bool:
    return name in bundled(kind) and bundled_path(kind, name).resolve() == file.resolve()


def _params(*owners: tuple[str, Model | None]) -> dict[str, float]:
    """The params a stage may name, merged as the engine merges the host's, the
    architecture's and the workload's (and refusing a name two of them define, as it does)."""
    merged: dict[str, float] = {}
    owner: dict[str, str] = {}
    for kind, m in owners:
        for k, v in (m.params.items() if m is not None else ()):
            if k in merged:
                raise ModelError(f"param '{k}' is defined by both the {owner[k]} and the {kind}; the engine "
                                 "refuses this pair (rename one)", file=str(m.file), key=f"params.{k}")
            merged[k], owner[k] = v, kind
    return merged


def _wrap(text: str, indent: int, width: int = 100) -> str:
    return textwrap.fill(text, width=width, initial_indent=" " * indent, subsequent_indent=" " * indent)


def _swing_text(d: dict[str, Any], entries: list[dict[str, Any]]) -> str:
    """What the sensitivity study did with one line's numbers."""
    out = []
    for label in dict.fromkeys(e["range"] for e in entries):
        es = [e for e in entries if e["range"] == label]
        e = max(es, key=lambda e: e["swing"])
        rng = f"x{e['low']:g} to x{e['high']:g}" if e["scale"] else f"{e['low']:g} to {e['high']:g}"
        if d["kind"] == "architecture":
            out.append(f"sensitivity: '{label}' from {rng} puts the usable fraction at {e['usable_at_low']:.3f} "
                       f"and {e['usable_at_high']:.3f} (baseline {e['baseline']:.3f})")
        else:
            n = len({x["architecture"] for x in es})  # a range may set several keys of one line
            out.append(f"sensitivity: '{label}' from {rng} moves the usable fraction by up to {e['swing']:.3f} "
                       f"({e['architecture']}, baseline {e['baseline']:.3f}; {n} architecture"
                       f"{'' if n == 1 else 's'} varied)")
    return "; ".join(out)


def _coverage(d: dict[str, Any]) -> list[str]:
    """Which of the model's numbers the sensitivity study varies, and which it leaves alone."""
    cov, c = d.get("sensitivity_coverage"), d["counts"]
    if not cov or not cov["lines_varied"]:
        return [_wrap(f"sensitivity study ({d['sensitivity_source']}): varies nothing in this file", 2)]
    out = [_wrap(f"sensitivity study ({d['sensitivity_source']}): varies {cov['lines_varied']} of the "
                 f"{c['numbers']} lines, {cov['assumption_only_varied']} of the {c['assumption_only']} resting "
                 f"on an assumption alone", 2)]
    if cov["assumption_only_not_varied"]:
        out.append(_wrap("assumption-only lines it does not vary (its ranges are the numbers the headline could "
                         "turn on: models/sensitivity.toml): " + ", ".join(cov["assumption_only_not_varied"]), 4))
    return out


def render(d: dict[str, Any], *, assumptions_only: bool = False) -> str:
    c = d["counts"]
    where = f"{d['file']}" + (f", table [{d['table']}]" if d.get("table") else "")
    who = f" (tenant {d['tenant']})" if d.get("tenant") else ""
    lines = [f"{d['kind']} {d['name']}{who}: {d['summary']}", f"  file: {where}",
             f"  {c['numbers']} line{'' if c['numbers'] == 1 else 's'} give{'s' if c['numbers'] == 1 else ''} numbers: "
             f"{c['sourced']} cite a source, {c['assumption_only']} rest on "
             f"an assumption alone" + (f", {c['untraced']} NOT TRACED" if c["untraced"] else "")]
    if d.get("set"):
        lines.append(_wrap("the experiment's [set] overrides " + ", ".join(f"{k} = {v}" for k, v in d["set"].items())
                           + ": the costs of the paths include them, the numbers listed are the files' own", 2))
    if "sensitivity_source" in d:
        lines += _coverage(d)
    lines.append("")
    if not assumptions_only:
        if d["kind"] == "host":
            hw = d["hardware"]
            lines.append(f"{hw['cores']} hardware thread{'' if hw['cores'] == 1 else 's'} at {hw['ghz']:g} GHz, "
                         f"{hw['memory_gib']:g} GiB")
            lines += [f"device {name}: {text}" for name, text in d["devices"].items()]
            lines += [f"idle state {x}" for x in d.get("idle_states", [])]
            if d["params"]:
                lines.append(_wrap("params (stages name them: change one with --set NAME=VALUE): "
                                   + ", ".join(f"{k} = {v:g}" for k, v in d["params"].items()), 0))
            lines.append("")
        if d["kind"] == "architecture":
            r = d["reserve"]
            lines.append(f"reserve: {r['cores']} cores, {r['memory_gib']:g} GiB withheld from tenants")
            npg = d["nested_paging"]
            if npg["param"] not in (0, 0.0):
                named = f"{npg['param']} = " if isinstance(npg["param"], str) else ""
                share = f"{npg['share']:g}" if npg["share"] is not None else "?"
                lines.append(f"nested paging: {named}{share} of the guest's own time (its tenant stages on vcpu take "
                             "1/(1 - share) as long; charged to paging)")
            for name, res in d["resources"].items():
                at = "on the host" if res["on_host"] else "off the host (its cycles are not host cycles)"
                lines.append(f"resource {name}: " + (res["detail"] if "detail" in res else f"{res['kind']} x {res['units']}"
                             + (f" at {res['ghz']:g} GHz" if res.get("ghz") else "")) + f", {at}")
            lines += ["", "paths (stage by stage; a name is a param: change it with --set NAME=VALUE)"
                      + (f", microseconds at {d['host']}'s clock or the resource's own" if d.get("host")
                         else "; --host gives the host's params and clock") + ":"]
            for p, stages in d["paths"].items():
                lines.append(f"  {p}")
                lines += [f"    {i}. {s}" for i, s in enumerate(stages, 1)]
            lines.append("")
        if d.get("flows"):
            lines.append("flows:" if d["kind"] == "workload" else "background flows (the architecture's own work):")
            for f, fl in d["flows"].items():
                lines.append(f"  {f} ({fl['arrival']})")
                for cname, cl in fl["classes"].items():
                    lines.append(f"    {cname} (weight {cl['weight']:g})")
                    lines += [f"      {i}. {s}" for i, s in enumerate(cl["steps"], 1)]
            lines.append("")
    rows = [n for n in d["numbers"] if not assumptions_only or (n["assumption"] and not n["sources"])]
    lines.append("numbers resting on an assumption alone:" if assumptions_only
                 else "every number and where it comes from:")
    if not rows:
        lines.append("  none")
    for n in rows:
        what = n["key"] + (f' ("{n["label"]}")' if n["label"] else "")
        trace = ", ".join(n["sources"] + (["assumption"] if n["assumption"] else [])) or "NOT TRACED"
        lines.append(f"  {n['line']:>4}  {what}{' = ' if len(n['numbers']) == 1 else ': '}{n['value']}   [{trace}]")
        if n["comment"]:
            lines.append(_wrap(n["comment"], 8))
        if n.get("sensitivity"):
            lines.append(_wrap(_swing_text(d, n["sensitivity"]), 8))
    if d["sources"] and not assumptions_only:
        lines += ["", "sources (models/sources.toml):"]
        for k, s in d["sources"].items():
            lines.append(_wrap(f"{k}: {s.get('authors', '?')}, \"{s['title']}\", {s['year']}"
                               + (f" [{s['tag']}]" if s.get("tag") else ""), 2))
    return "\n".join(lines)


def cmd_show(a: argparse.Namespace) -> int:
    shown = resolve(a.model, a.kind)
    host = None
    if a.host is not None:
        if any(s.kind == "host" for s in shown):
            from .cli import UsageError
            raise UsageError("vemu show: --host prices an architecture's or a workload's stages; it does not "
                             "apply to a host" + (" (an experiment file names its own)" if len(shown) > 1 else ""))
        hosts = resolve(a.host, "host", flag="--host")
        if not hosts:
            raise ModelError("an experiment file without a host", file=a.host)
        host = hosts[0].model
        exps = [s.exp for s in shown if s.exp is not None]
        if exps and a.host in bundled("host"):
            # an experiment file's own overrides ([set] host.ghz, say) apply to the host that
            # replaces its own, as `vemu run FILE --host NAME` applies them; where the whole
            # experiment does not fit that host (its tenants' vCPUs), the host as bundled
            try:
                host = load_experiment(a.model, host=a.host).host
            except ModelError:
                pass
    marks, source = sensitivity_marks(Path(a.sensitivity)) if a.sensitivity is not None else (None, "")
    ds = [describe(s, host, marks) for s in shown]  # type: ignore[arg-type]
    if marks is not None:
        for d in ds:
            d["sensitivity_source"] = source
    if a.assumptions:
        for d in ds:
            d["numbers"] = [n for n in d["numbers"] if n["assumption"] and not n["sources"]]
            d["sources"] = {}
    if a.json:
        json.dump(ds[0] if len(ds) == 1 else {"experiment": a.model, "models": ds}, sys.stdout, indent=1)
        print()
    else:
        print("\n\n".join(render(d, assumptions_only=a.assumptions) for d in ds))
    return 0


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("show", help="a model's paths and numbers, each with its source or assumption")
    p.add_argument("model", help="a bundled host, architecture or workload (see `vemu list`), a model file, "
                                 "or an experiment file")
    p.add_argument("--kind", choices=KINDS, help="the model's kind, when a name or file leaves it open")
    p.add_argument("--host", help="price stages at this host's params and clock (bundled name or file)")
    p.add_argument("--assumptions", action="store_true",
                   help="list only the numbers no source backs (counts stay the whole file's)")
    p.add_argument("--sensitivity", nargs="?", const=str(DEFAULT_SENSITIVITY), metavar="CSV",
                   help="also say what the sensitivity study did with each number: its range and how far it "
                        "moved the headline (default: results/sensitivity.csv)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_show)
