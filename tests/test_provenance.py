"""Provenance: what a result file's ``#`` lines say made it, and that they say it of the
runs the file holds."""

import json
import shutil
import subprocess
from pathlib import Path

import pytest

import emulator.provenance as prov
from emulator import sweep as sw
from emulator.model import load_experiment
from emulator.provenance import ModelsChanged, model_hashes, provenance, read_csv


def test_the_engine_build_and_numpy_are_recorded():
    from emulator import _native
    import hashlib
    import numpy

    p = provenance({})
    version, build = p["engine"].split()
    assert build == hashlib.sha256(Path(_native.__file__).read_bytes()).hexdigest()[:12]
    assert p["numpy"] == numpy.__version__
    assert "models_dir" not in p  # the bundled tree: no line


def test_an_experiment_names_every_bundled_file_it_read_tenants_included():
    spec = {"experiment": {"host": "xeon-2017", "architecture": "kvm-virtio",
                           "tenants": [{"name": "a", "vcpus": 2, "workload": "kv-cache"},
                                       {"name": "b", "vcpus": 2, "workload": "compute"}]}}
    assert load_experiment(spec).bundled == (("architecture", "kvm-virtio"), ("host", "xeon-2017"),
                                             ("workload", "compute"), ("workload", "kv-cache"))
    # a tenant's workload replaced by --set: the file read is the one named there
    assert ("workload", "packet-echo") in load_experiment(spec, sets=["tenants.b.workload=packet-echo"]).bundled


def test_a_sweep_of_tenants_hashes_their_workloads(tmp_path):
    spec = {"experiment": {"host": "xeon-2017", "architecture": "kvm-virtio", "duration_s": 0.0005,
                           "warmup_s": 0.0001,
                           "tenants": [{"name": "a", "vcpus": 2, "workload": "kv-cache"},
                                       {"name": "b", "vcpus": 2, "workload": "packet-echo"}]}}
    pl = sw.plan(spec, vary={"exit_cycles": "1000,2000"}, replications=2, seed=1)
    assert ("workload", "kv-cache") in pl.models and ("workload", "packet-echo") in pl.models
    assert set(pl.model_hashes) == {"architectures/kvm-virtio", "hosts/xeon-2017", "workloads/kv-cache",
                                    "workloads/packet-echo"}


def _tree(tmp_path, monkeypatch):
    """A copy of the bundled host file that provenance hashes in place of the real one."""
    (tmp_path / "hosts").mkdir()
    shutil.copy(prov.MODELS_DIR / "hosts" / "xeon-2017.toml", tmp_path / "hosts" / "xeon-2017.toml")
    monkeypatch.setattr(prov, "MODELS_DIR", tmp_path)
    return tmp_path / "hosts" / "xeon-2017.toml"


def test_a_model_edited_while_the_runs_went_is_an_error_naming_it(tmp_path, monkeypatch):
    f = _tree(tmp_path, monkeypatch)
    models = [("host", "xeon-2017")]
    before = model_hashes(models)
    assert provenance({}, models, since=before)["models"] == before  # unchanged: the lines are written
    f.write_text(f.read_text() + "\n# an edit\n")
    with pytest.raises(ModelsChanged, match=r"hosts/xeon-2017\.toml changed while the runs went: nothing written"):
        provenance({}, models, since=before)
    # a file the snapshot did not take is not judged by it
    assert provenance({}, models, since={})["models"] != before


def test_a_sweep_whose_model_changed_writes_nothing_and_exits_1(tmp_path, monkeypatch):
    f = _tree(tmp_path, monkeypatch)
    pl = sw.plan({"experiment": {"host": "xeon-2017", "architecture": "bare-metal", "workload": "compute",
                                 "duration_s": 0.0005, "warmup_s": 0.0001}},
                 vary={"exit_cycles": "1000"}, replications=2, seed=1)
    pl.model_hashes.update(model_hashes(pl.models))  # as if planned against the copy
    f.write_text(f.read_text() + "\n# an edit\n")
    out = tmp_path / "s.csv"
    with pytest.raises(ModelsChanged):
        sw.write(out, pl, ["point"], [{"point": 0}])
    assert not out.exists() and not sw.summary_path(out).exists()


def test_git_revision_is_unknown_inside_another_repository(tmp_path, monkeypatch):
    """An installed copy under some other project's work tree (its .venv, say) is not that
    project's commit."""
    if shutil.which("git") is None:
        pytest.skip("no git")
    outer = tmp_path / "proj"
    pkg = outer / "site" / "emulator"
    pkg.mkdir(parents=True)
    for cmd in (["init", "-q"], ["-c", "user.email=a@b", "-c", "user.name=a", "commit", "-q", "--allow-empty", "-m", "x"]):
        subprocess.run(["git", "-C", str(outer), *cmd], check=True, capture_output=True)
    monkeypatch.setattr(prov, "__file__", str(pkg / "provenance.py"))
    assert prov.git_revision() == "unknown"


def test_a_bench_table_names_the_files_it_timed_and_the_compiler():
    from emulator import bench

    inputs = bench.bench_inputs()
    assert {Path(p).name for p in inputs} == {"tandem.toml", "tandem_c.c", "tandem_simpy.py"}
    assert all(len(h) == 12 or h == "missing" for h in inputs.values())
    assert bench.compiler_version(None) == "none"
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc:
        assert bench.compiler_version(cc) and "\n" not in bench.compiler_version(cc)
