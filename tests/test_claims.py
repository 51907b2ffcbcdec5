"""Claims, rolling waves and sampling: the rules, the locks, the wave plan, an interrupted wave.

No lab: the locks are real file locks taken by real processes; the hosts are inventory models.
"""

from __future__ import annotations

import _thread
import multiprocessing
import threading
import time
from pathlib import Path

import pytest

from stackcheck import waves
from stackcheck.claims import (
    EXCLUSIVE,
    SHARED,
    SLOT,
    Claim,
    Held,
    Timeline,
    claims_for,
    conflict,
    parse_claim,
    timeline_svg,
    violations,
)
from stackcheck.lab import Host, Lab, SSHAccess
from stackcheck.sampling import disruptive_sample, matrix_plan, sample_pairs


def make_lab(tmp_path: Path, n: int, etcd: int = 3, nodes: int = 0, racks: int = 1) -> Lab:
    known = tmp_path / "known_hosts"
    known.touch()
    hosts = []
    for i in range(1, n + 1):
        roles = ["atomic", "docker", "flannel"]
        if i <= etcd:
            roles.append("etcd")
        if i > n - nodes:
            roles.append("node")
        hosts.append(Host(name=f"h{i}", address=f"10.9.{i % racks}.{i}", roles=roles))
    return Lab(ssh=SSHAccess(known_hosts=known), hosts=hosts)


# --- the rules --------------------------------------------------------------------------------

def test_a_host_cycle_claims_its_host_and_a_quorum_slot_only_on_etcd_members(tmp_path) -> None:
    lab = make_lab(tmp_path, 5, etcd=3)
    plain = {str(c) for c in claims_for("host", lab, lab.host("h5"))}
    member = {str(c) for c in claims_for("host", lab, lab.host("h1"))}
    assert plain == {"lab shared", "host:h5 exclusive"}
    assert member == {"lab shared", "etcd shared", "host:h1 exclusive",
                      "etcd-quorum slot (1 of 1)"}
    layer = {str(c) for c in claims_for("etcd-layer", lab)}
    assert layer == {"lab shared", "etcd exclusive", "host:h1 exclusive", "host:h2 exclusive",
                     "host:h3 exclusive"}


def test_what_conflicts(tmp_path) -> None:
    lab = make_lab(tmp_path, 5, etcd=3)

    def clash(a, b) -> bool:
        return any(conflict(x, y) for x in a for y in b)

    h4, h5 = (claims_for("host", lab, lab.host(n)) for n in ("h4", "h5"))
    assert not clash(h4, h5), "cycles of two hosts that are no etcd members conflict"
    assert clash(h4, claims_for("reads-host", lab, lab.host("h4")))
    assert not clash(h4, claims_for("reads-host", lab, lab.host("h5")))
    assert clash(h4, claims_for("reads-lab", lab)), "the data path uses every host"
    assert not clash(h4, claims_for("etcd-layer", lab)), "h4 is no etcd member"
    assert clash(claims_for("host", lab, lab.host("h1")), claims_for("etcd-layer", lab))
    assert clash(claims_for("lab", lab), claims_for("reads-host", lab, lab.host("h2")))
    with pytest.raises(ValueError, match="unknown claim kind 'hots'"):
        claims_for("hots", lab)


def test_claims_read_back_from_their_text() -> None:
    for claim in (Claim("etcd-quorum", SLOT, 2), Claim("host:h1", EXCLUSIVE), Claim("lab", SHARED)):
        assert parse_claim(str(claim)) == claim


# --- the locks: recorded intervals never overlap where claims conflict -------------------------

def _holder(lab_json: str, run_dir: str, name: str, kind: str, host: str | None,
            delay: float, hold_s: float) -> None:
    lab = Lab.from_json(lab_json)
    time.sleep(delay)
    claims = claims_for(kind, lab, lab.host(host) if host else None)
    with Timeline(Path(run_dir) / "claims.jsonl").holding(name, claims, Path(run_dir) / "locks"):
        time.sleep(hold_s)


def _run(lab: Lab, run_dir: Path, plan: list[tuple[str, str, str | None, float, float]]
         ) -> list[Held]:
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_holder, args=(lab.to_json(), str(run_dir), *p)) for p in plan]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    return Timeline(run_dir / "claims.jsonl").read()


def test_conflicting_checks_never_overlap_and_others_do(tmp_path: Path) -> None:
    lab = make_lab(tmp_path, 6, etcd=3)
    held = _run(lab, tmp_path, [
        ("cycle h4", "host", "h4", 0.0, 2.5),
        ("cycle h5", "host", "h5", 0.0, 2.5),    # beside h4: no conflict
        ("cycle h1", "host", "h1", 0.0, 0.6),    # etcd members: one at a time (tolerance 1)
        ("cycle h2", "host", "h2", 0.05, 0.6),
        ("reads h4", "reads-host", "h4", 0.3, 0.2),  # waits for h4's cycle
        ("reads h6", "reads-host", "h6", 0.3, 0.2),  # runs at once
        ("data path", "reads-lab", None, 0.5, 0.3),
        ("etcd scenario", "etcd-layer", None, 0.6, 0.4),
    ])
    assert len(held) == 8
    assert violations(held) == []
    spans = {h.check: h for h in held}

    def overlap(a: str, b: str) -> bool:
        return spans[a].start < spans[b].end and spans[b].start < spans[a].end

    assert overlap("cycle h4", "cycle h5"), "two cycles without conflict ran one after another"
    assert overlap("cycle h4", "reads h6")
    assert not overlap("cycle h4", "reads h4")
    assert not overlap("cycle h1", "cycle h2")


def test_an_etcd_scenario_runs_beside_the_cycle_of_a_host_that_is_no_member(tmp_path) -> None:
    lab = make_lab(tmp_path, 6, etcd=3)
    held = _run(lab, tmp_path, [("cycle h4", "host", "h4", 0.0, 2.0),
                                ("cycle h1", "host", "h1", 0.0, 0.3),
                                ("etcd scenario", "etcd-layer", None, 0.2, 0.5)])
    spans = {h.check: h for h in held}
    assert violations(held) == []
    assert spans["etcd scenario"].start >= spans["cycle h1"].end
    assert spans["etcd scenario"].start < spans["cycle h4"].end


def test_a_reader_of_the_lab_holds_no_host_while_it_waits_for_another(tmp_path) -> None:
    """Issue 27 (48 hosts, 4 workers): the data-path pods' setup held h1 (an etcd member)
    shared while it waited for h4's cycle, so h1's cycle, queued on h1, waited for every
    other host's cycle, and the etcd chain with it. A reader takes all its claims or none."""
    lab = make_lab(tmp_path, 6, etcd=3)
    held = _run(lab, tmp_path, [("cycle h4", "host", "h4", 0.0, 2.0),
                                ("data path", "reads-lab", None, 0.2, 0.3),
                                ("cycle h1", "host", "h1", 0.5, 0.3)])
    spans = {h.check: h for h in held}
    assert violations(held) == []
    assert spans["cycle h1"].end < spans["cycle h4"].end, (
        f"h1's cycle waited for h4's: {spans['cycle h1']}")
    assert spans["data path"].start >= spans["cycle h4"].end


def test_the_overlap_check_can_fail() -> None:
    def held(name: str, claims: list[str], start: float, end: float) -> Held:
        return Held(name, claims, start, start, end, "gw0")

    assert violations([held("a", ["host:h1 exclusive"], 0, 2),
                       held("b", ["host:h1 shared"], 1, 3)]) == [
        "a and b overlapped holding host:h1 exclusive / host:h1 shared"]
    slot = "etcd-quorum slot (1 of 1)"
    assert violations([held("a", [slot], 0, 2), held("b", [slot], 1, 3)]) == [
        "2 holders of etcd-quorum at once (capacity 1)"]
    assert "<svg" in timeline_svg([held("a", [slot], 0, 2)])


# --- waves ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("n", "etcd", "nodes", "cap", "expected_waves"), [
    (3, 3, 0, None, 3),     # every host an etcd member, tolerance 1
    (12, 3, 0, None, 3),    # 9 others spread over the 3 waves
    (12, 3, 0, 2, 6),       # --max-disrupted 2
    (48, 5, 0, None, 3),    # tolerance 2
    (4, 1, 2, None, 2),     # one node must stay schedulable
])
def test_waves_keep_every_layer_and_cover_each_host_once(
        tmp_path, n, etcd, nodes, cap, expected_waves) -> None:
    lab = make_lab(tmp_path, n, etcd=etcd, nodes=nodes)
    plan = waves.plan(lab, lab.hosts, cap)
    assert len(plan) == expected_waves
    assert sorted(h.name for w in plan for h in w) == sorted(h.name for h in lab.hosts)
    for wave in plan:
        assert waves.keeps_quorum(lab, wave) == []
        assert sum(h.has_role("etcd") for h in wave) <= max(1, lab.failure_tolerance)
        if nodes:
            assert sum(h.has_role("node") for h in wave) < nodes
        assert cap is None or len(wave) <= cap
    sizes = [len(w) for w in plan]
    assert max(sizes) - min(sizes) <= 1, f"uneven waves {sizes}"


def test_an_interrupted_wave_restores_every_host_it_started(tmp_path) -> None:
    lab = make_lab(tmp_path, 4, etcd=0)
    restored, started = [], []

    def work(host: Host, interrupted: threading.Event) -> waves.Outcome:
        started.append(host.name)
        try:
            if host.name == "h2":
                _thread.interrupt_main()  # Ctrl-C while the wave runs
            time.sleep(2.0)  # long enough for a loaded main thread to see it meanwhile
        finally:
            restored.append(host.name)
        return waves.Outcome()

    with pytest.raises(KeyboardInterrupt):
        waves.run(lab.hosts, work, grace=10)
    assert "h2" in started
    assert sorted(restored) == sorted(started), "a host of the wave was left unrestored"


def test_a_wave_reports_each_hosts_outcome(tmp_path) -> None:
    lab = make_lab(tmp_path, 3, etcd=0)

    def work(host: Host, interrupted: threading.Event) -> waves.Outcome:
        return waves.Outcome(AssertionError(host.name) if host.name == "h2" else None)

    out = waves.run(lab.hosts, work)
    assert {n: type(o.error).__name__ for n, o in out.items()} == {
        "h1": "NoneType", "h2": "AssertionError", "h3": "NoneType"}


def test_rolling_keeps_the_limits_and_a_slow_host_holds_back_only_its_place(tmp_path) -> None:
    lab = make_lab(tmp_path, 8, etcd=3)  # tolerance 1: one member at a time
    planned = waves.plan(lab, lab.hosts)
    assert max(len(w) for w in planned) == 3
    lock = threading.Lock()
    changing: set[str] = set()
    seen: list[set[str]] = []
    ends: dict[str, float] = {}

    def work(host: Host, interrupted: threading.Event) -> waves.Outcome:
        with lock:
            changing.add(host.name)
            seen.append(set(changing))
        time.sleep(1.2 if host.name == "h1" else 0.2)  # h1: a slow member
        with lock:
            changing.discard(host.name)
            ends[host.name] = time.monotonic()
        return waves.Outcome()

    order = [h for w in planned for h in w]
    out = waves.run(order, work, fits=waves.window(lab, planned))
    assert sorted(out) == sorted(h.name for h in lab.hosts)
    assert max(len(s) for s in seen) == 3, "as many at once as the largest wave"
    for moment in seen:
        assert len(moment & {"h1", "h2", "h3"}) <= 1, f"two etcd members down at once: {moment}"
    others = [n for n in ends if n not in ("h1", "h2", "h3")]
    assert all(ends[n] < ends["h1"] for n in others), (
        "hosts that are no members should roll on while the slow member changes")


# --- sampling ---------------------------------------------------------------------------------

def test_sampled_matrix_has_every_host_k_times_each_way_and_every_rack_pair(tmp_path) -> None:
    lab = make_lab(tmp_path, 60, racks=4)
    labels = [h.name for h in lab.hosts]
    pairs, why = matrix_plan(lab, labels, "run-1", full=False)
    assert pairs is not None and "sample" in why
    for name in labels:
        assert sum(a == name for a, _ in pairs) >= 8
        assert sum(b == name for _, b in pairs) >= 8
    racks = {h.name: h.address.rsplit(".", 1)[0] for h in lab.hosts}
    assert {(racks[a], racks[b]) for a, b in pairs} >= {
        (x, y) for x in set(racks.values()) for y in set(racks.values())}
    assert all(a != b for a, b in pairs)
    assert sample_pairs(labels, {}, "run-1") != sample_pairs(labels, {}, "run-2"), (
        "successive runs should cover different pairs")
    assert matrix_plan(lab, labels, "run-1", full=True)[0] is None
    assert matrix_plan(lab, labels[:12], "run-1", full=False)[0] is None


def test_disruptive_sample_has_one_host_per_role_and_rack_and_rotates(tmp_path) -> None:
    lab = make_lab(tmp_path, 48, etcd=3, racks=2)
    one = disruptive_sample(lab, lab.hosts, "run-1")
    two = disruptive_sample(lab, lab.hosts, "run-2")
    assert {"h1", "h2"} <= set(one), "the first host of each rack"
    assert len(one) <= 2 * 4 + 2
    assert set(one) != set(two)
    assert all(why for why in one.values())


def test_evidence_of_a_wave_thread_is_captured_for_its_own_check() -> None:
    from stackcheck_reports import evidence

    def thread_work(out: list) -> None:
        with evidence.captured() as events:
            with evidence.step("reboot h4"):
                evidence.attach_text("h4: boot id", "before a\nafter b")
            evidence.measure("atomic reboot", 1.5)
        out.extend(events)

    out: list = []
    worker = threading.Thread(target=thread_work, args=(out,))
    worker.start()
    worker.join()
    assert [e[0] for e in out] == ["step", "attach", "end", "label", "attach"]
    assert out[0][1] == "reboot h4" and out[3][2] == "atomic reboot=1.5"
    evidence.replay(out)  # without an Allure run: nothing happens, nothing breaks
