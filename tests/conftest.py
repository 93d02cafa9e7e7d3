"""Shared fixtures: hypothesis profiles, the tandem benchmark, small experiment builders.

Hypothesis profiles are chosen by the ``HYPOTHESIS_PROFILE`` environment variable:
``dev`` (the default) runs the usual number of examples, ``ci`` fewer; neither has a
deadline, since an example's time depends on the engine run it makes, not on hypothesis.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile("dev", deadline=None, max_examples=100)
settings.register_profile(
    "ci", deadline=None, max_examples=30, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))

REPO = Path(__file__).resolve().parents[1]
# CI clones the repository with `shared/` beside it: <root>/main (this repo) and <root>/shared.
TANDEM_PATH = REPO.parent / "shared" / "bench" / "tandem.toml"

# Mean sojourn of the tandem by Jackson's theorem: each station is an M/M/1 at rate 800/s,
# sum of 1/(mu_i - lambda) = 1/(2000-800) + 1/(1428.57-800) + 1/(1111.1-800) s = 5.6385 ms.
TANDEM_RATE = 800.0
TANDEM_SERVICE_S = (0.5e-3, 0.7e-3, 0.9e-3)
TANDEM_MEAN_SOJOURN_US = sum(1e6 / (1 / s - TANDEM_RATE) for s in TANDEM_SERVICE_S)


def _off_host_cpu(cores: int = 1) -> dict[str, Any]:
    return {"kind": "cpu", "cores": cores, "ghz": 1.0, "on_host": False}


# The experiment of shared/bench/tandem.toml, inline, so no test depends on shared/ being
# present (test_tandem_file_matches_inline checks the two agree when it is).
TANDEM: dict[str, Any] = {
    "host": {"name": "bench", "summary": "benchmark host", "cores": 1, "ghz": 1.0, "memory_gib": 1},
    "architecture": {
        "name": "tandem",
        "summary": "three stations in series",
        "resources": {"s1": _off_host_cpu(), "s2": _off_host_cpu(), "s3": _off_host_cpu()},
        "paths": {
            "tandem": {
                "stages": [
                    {"name": "one", "on": "s1", "cycles": {"dist": "exp", "mean": 500000}, "account": "tenant"},
                    {"name": "two", "on": "s2", "cycles": {"dist": "exp", "mean": 700000}, "account": "tenant"},
                    {"name": "three", "on": "s3", "cycles": {"dist": "exp", "mean": 900000}, "account": "tenant"},
                ]
            }
        },
    },
    "workload": {
        "name": "tandem",
        "summary": "open Poisson arrivals",
        "flows": [{"name": "jobs", "arrival": "poisson", "rate_per_s": 800, "steps": [{"path": "tandem"}]}],
    },
}


def experiment(
    resources: dict[str, Any],
    paths: dict[str, list[dict[str, Any]]],
    flows: list[dict[str, Any]],
    *,
    duration_s: float,
    warmup_s: float | None = None,
    seed: int = 1,
) -> dict[str, Any]:
    """An inline experiment on a one-core 1 GHz host (so ``cycles`` are nanoseconds)."""
    return {
        "host": {"name": "h", "cores": 1, "ghz": 1.0, "memory_gib": 1},
        "architecture": {"name": "a", "resources": resources,
                         "paths": {k: {"stages": v} for k, v in paths.items()}},
        "workload": {"name": "w", "flows": flows},
        "experiment": {"duration_s": duration_s, "warmup_s": duration_s / 20 if warmup_s is None else warmup_s,
                       "seed": seed},
    }


def station(
    arrival: dict[str, Any],
    cycles: Any,
    *,
    duration_s: float,
    cores: int = 1,
    capacity: int | None = None,
    warmup_s: float | None = None,
) -> dict[str, Any]:
    """One off-host station ``s`` (path ``p``, flow ``f``) fed by ``arrival`` (flow keys)."""
    res = _off_host_cpu(cores)
    if capacity is not None:
        res["capacity"] = capacity
    return experiment({"s": res}, {"p": [{"on": "s", "cycles": cycles}]},
                      [dict(arrival, name="f", steps=[{"path": "p"}])], duration_s=duration_s, warmup_s=warmup_s)


@pytest.fixture
def tandem_spec() -> dict[str, Any]:
    """A fresh deep copy of the inline tandem experiment (tests may change it)."""
    return copy.deepcopy(TANDEM)


@pytest.fixture
def tandem_path() -> Path:
    """shared/bench/tandem.toml; the test is skipped when shared/ is not beside the repo."""
    if not TANDEM_PATH.is_file():
        pytest.skip(f"{TANDEM_PATH} is absent (shared/ is not beside the repository)")
    return TANDEM_PATH


@pytest.fixture
def tandem_file(tmp_path: Path) -> Path:
    """The inline tandem written as an experiment TOML file (no dependency on shared/)."""
    p = tmp_path / "tandem.toml"
    p.write_text(to_toml(TANDEM))
    return p


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{_toml_key(k)} = {_toml_value(x)}" for k, x in v.items()) + " }"
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(type(v).__name__)


def _toml_key(k: str) -> str:
    return k if k.replace("_", "").replace("-", "").isalnum() else _toml_value(k)


def to_toml(doc: dict[str, Any]) -> str:
    """A minimal TOML writer for experiment dicts: one [table] per top-level key, the rest
    as inline tables (enough for these tests; tomllib reads it back identically)."""
    out = []
    for section, body in doc.items():
        out.append(f"[{section}]")
        for k, v in body.items():
            out.append(f"{_toml_key(k)} = {_toml_value(v)}")
        out.append("")
    return "\n".join(out)
