"""Links: serialisation time, lanes, and full-duplex ports with independent directions."""

import math

import pytest

from emulator._core import ModelError
from emulator.model import load_experiment
from emulator.simulation import Simulation, run


def link_spec(duplex, rx_direction="rx"):
    rx = {"on": "nic"} | ({"direction": rx_direction} if rx_direction else {})
    return {
        "host": {"name": "h", "cores": 2, "ghz": 1.0, "memory_gib": 1,
                 "devices": {"nic": {"kind": "link", "gbps": 10, "overhead_bytes": 20, "duplex": duplex}}},
        "architecture": {"name": "a", "paths": {"rx": {"stages": [rx]}, "tx": {"stages": [{"on": "nic"}]}}},
        "workload": {"name": "w", "flows": [{"name": "f", "arrival": "poisson", "rate_per_s": 100_000,
                                             "steps": [{"path": "rx", "bytes": 980}, {"path": "tx", "bytes": 480}]}]},
        "experiment": {"duration_s": 0.5, "warmup_s": 0.01},
    }


def test_a_duplex_port_serialises_each_direction_on_its_own():
    d = run(link_spec(True)).to_dict()["resources"]
    # (980 + 20) B x 8 / 10 Gb/s x 1e5/s = 0.08 receive; (480 + 20) B ... = 0.04 transmit.
    # Poisson arrivals: 5e4 packets each way, so the utilisation's relative sd is ~0.5%
    assert math.isclose(d["nic.rx"]["utilization"], 0.08, rel_tol=0.03)
    assert math.isclose(d["nic.tx"]["utilization"], 0.04, rel_tol=0.03)
    assert "nic" not in d


def test_a_simplex_link_carries_both_directions_on_one_wire():
    spec = link_spec(False, rx_direction=None)
    d = run(spec).to_dict()["resources"]
    assert math.isclose(d["nic"]["utilization"], 0.12, rel_tol=0.03)


def test_direction_needs_a_duplex_link():
    with pytest.raises(ModelError, match=r"direction.*duplex"):
        load_experiment(link_spec(False))


def test_bad_direction_is_named():
    with pytest.raises(ModelError, match=r"direction.*'up' is not one of rx, tx"):
        load_experiment(link_spec(True, rx_direction="up"))


def test_a_design_style_stage_on_the_bundled_nic_transmits():
    # DESIGN.md's example architecture puts `{ name = "wire", on = "nic" }` at the end of
    # net_tx; on a bundled host it must run, on the transmit direction
    arch = {"name": "mine", "paths": {p: {"stages": [{"name": "stack", "on": "vcpu", "cycles": 2000}, {"name": "wire", "on": "nic"}]}
                                      for p in ("net_tx", "net_rx", "blk_read", "blk_write")}}
    exp = load_experiment({"experiment": {"host": "xeon-2017", "workload": "web"}, "architecture": arch},
                          duration_s=0.001, warmup_s=0.0002)
    d = Simulation(exp).run().to_dict()["resources"]
    assert d["nic.tx"]["utilization"] > 0 and d["nic.rx"]["utilization"] == 0


def test_the_bundled_nic_speed_can_be_set():
    slow = run(host="xeon-2017", architecture="bare-metal", workload="kv-cache", sets=["host.devices.nic.gbps=10"],
               duration_s=0.002, warmup_s=0.0005).to_dict()
    assert slow["resources"]["nic.tx"]["utilization"] > 0.99  # a 10 Gb/s port is the bottleneck


@pytest.mark.parametrize("nbytes,frames", [(0, 1), (1, 1), (1448, 1), (1449, 2), (2048, 2), (16384, 12)])
def test_a_request_larger_than_a_frame_pays_framing_per_frame(nbytes, frames):
    # A TSO send of 16 KiB leaves the NIC as ceil(16384 / 1448) = 12 frames, each with its
    # preamble, gap and headers; without segment_bytes it is one frame (the old behaviour).
    # Deterministic: a periodic flow far below the link's capacity never queues, so every
    # request's latency is its serialisation time exactly.
    def spec(segment):
        nic = {"kind": "link", "gbps": 8, "overhead_bytes": 90} | ({"segment_bytes": 1448} if segment else {})
        return {"host": {"name": "h", "cores": 1, "ghz": 1.0, "memory_gib": 1, "devices": {"nic": nic}},
                "architecture": {"name": "a", "paths": {"tx": {"stages": [{"on": "nic"}]}}},
                "workload": {"name": "w", "flows": [{"name": "f", "arrival": "periodic", "rate_per_s": 1000,
                                                     "steps": [{"path": "tx", "bytes": nbytes}]}]},
                "experiment": {"duration_s": 0.01, "warmup_s": 0.0}}
    for segment, n in ((True, frames), (False, 1)):
        lat = run(spec(segment)).to_dict()["flows"]["f"]["latency_us"]
        # 8 Gb/s is one byte per ns
        assert lat["mean"] == pytest.approx((nbytes + 90 * n) / 1000, rel=1e-9)
        assert lat["max"] == pytest.approx(lat["mean"], rel=1e-9)


@pytest.mark.parametrize("nic,words", [
    ({"segment_bytes": 1448}, "give overhead_bytes too"),
    ({"overhead_bytes": 90, "segment_bytes": 0}, "segment_bytes"),
    ({"overhead_bytes": 1e6, "segment_bytes": 1}, "segment_bytes"),
])
def test_bad_segment_bytes_are_named(nic, words):
    spec = link_spec(False, rx_direction=None)
    spec["host"]["devices"]["nic"] = {"kind": "link", "gbps": 1e-3} | nic
    with pytest.raises(ModelError, match=words):
        load_experiment(spec)
