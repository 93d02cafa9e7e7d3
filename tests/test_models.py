"""The bundled models: they load, they are complete, and every number is traced.

DESIGN.md's rule is that every parameter traces to a published source or is marked
`assumption:` with its reason. This is checked line by line: a line of a bundled model
that gives a number must carry a comment naming a key of models/sources.toml followed by
a colon, or `assumption:`.
"""

import re
import tomllib

import pytest

from emulator.model import MODELS_DIR, REQUIRED_PATHS, bundled, load

SOURCES = tomllib.loads((MODELS_DIR / "sources.toml").read_text())
MODEL_FILES = sorted(p for d in ("hosts", "architectures", "workloads") for p in (MODELS_DIR / d).glob("*.toml"))
NUMBER_VALUE = re.compile(r"=\s*\[?\s*[-+]?(\d|inf\b|nan\b)")
STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'[^\']*\'')
CITATION = re.compile(r"([A-Za-z][\w.+-]*):")


def test_the_lineup_is_bundled():
    assert set(bundled("architecture")) >= {
        "bare-metal", "emulated", "xen-pv", "xen-aws-2013", "xen-aws-2017",
        "kvm-virtio", "sriov", "sriov-posted", "nitro"}
    assert set(bundled("host")) >= {"xeon-2017"} and len(bundled("host")) >= 2
    assert set(bundled("workload")) >= {"web", "kv-cache", "storage", "streaming", "compute", "cloud-mix"}


@pytest.mark.parametrize("kind", ["host", "architecture", "workload"])
def test_every_bundled_model_loads(kind):
    for name in bundled(kind):
        m = load(kind, name)
        assert m.name == name


@pytest.mark.parametrize("name", bundled("architecture"))
def test_every_architecture_has_the_four_paths(name):
    a = load("architecture", name)
    assert set(REQUIRED_PATHS) <= set(a.paths)


def test_sources_are_complete():
    for key, s in SOURCES.items():
        assert {"title", "year"} <= set(s), key


@pytest.mark.parametrize("kind", ["host", "architecture", "workload"])
def test_source_lists_name_known_sources(kind):
    for name in bundled(kind):
        for key in load(kind, name).sources:
            assert key in SOURCES, f"{kind} {name}: unknown source '{key}'"


def _code_and_comment(line):
    """Splits a TOML line into code and comment, ignoring '#' inside strings."""
    code = STRING.sub(lambda m: '""' if m.group(0).startswith('"') else "''", line)
    if "#" not in code:
        return code, ""
    i = code.index("#")
    # find the same '#' in the original line: strings were replaced by equal-or-shorter text
    # so search from the right for the comment start that leaves balanced quotes
    j = len(line) - (len(code) - i)
    while j >= 0 and line[j] != "#":
        j -= 1
    return code[:i], line[j + 1:]


@pytest.mark.parametrize("path", MODEL_FILES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_every_number_is_traced(path):
    bad = []
    in_multiline = False
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if line.count('"""') % 2 == 1:
            in_multiline = not in_multiline
            continue
        if in_multiline:
            continue
        code, comment = _code_and_comment(line)
        if not NUMBER_VALUE.search(code):
            continue
        keys = CITATION.findall(comment)
        if not any(k == "assumption" or k in SOURCES for k in keys):
            bad.append(f"{path.name}:{n}: {line.strip()[:90]}")
    assert not bad, "numbers without a source or `assumption:` comment:\n" + "\n".join(bad)


def test_the_tracing_check_can_fail(tmp_path):
    line = "cores = 8"
    assert NUMBER_VALUE.search(_code_and_comment(line)[0])
    assert not CITATION.findall(_code_and_comment(line)[1])
    code, comment = _code_and_comment('name = "a # b"  # assumption: why')
    assert not NUMBER_VALUE.search(code) and "assumption" in CITATION.findall(comment)


def test_the_experiment_files_models_readme_shows_are_valid(tmp_path):
    # A reader copies these; each must load as printed (one once set a reserve its dom0
    # did not fit in). Loading validates and compiles without running.
    from emulator.model import load_experiment

    text = (MODELS_DIR / "README.md").read_text()
    blocks = [b for b in re.findall(r"```toml\n(.*?)```", text, re.S) if b.lstrip().startswith("[experiment]")]
    assert len(blocks) >= 2
    for i, b in enumerate(blocks):
        f = tmp_path / f"example-{i}.toml"
        f.write_text(b)
        load_experiment(f)
