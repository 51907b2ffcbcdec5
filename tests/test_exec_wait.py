"""The data-path pods' exec wait on a loaded machine: patient while the container runs and
each exec merely times out, at once on a final word (container exited, CrashLoopBackOff...),
and always saying what the last exec and the pod said.

No lab: the pods are stand-ins whose ``run`` and ``word`` answer as recorded (Docker 20.10's
``docker inspect`` and Kubernetes v1.20.2 pod statuses from lab hw4a, 2026-12-03; see the
constants). The old wait (60 s of 10-s execs, no look at the pod) fails the first three.
"""

from __future__ import annotations

import datetime as dt
import time

from kubernetes import client

from stackcheck.kubernetes.pods import Why, pod_word
from stackcheck_fixtures import pods as pods_fixture
from stackcheck_fixtures.pods import docker_word, exec_wait

#: `docker inspect -f DOCKER_STATE` on h2 of lab hw4a (docker.io 20.10, busybox container)
RUNNING = (0, "running|0|2026-12-03T16:07:53.611300063Z|0|false|\n", "")
EXITED = (0, "exited|3|2026-12-03T16:07:54.344500803Z|0|false|\n", "")
PAUSED = (0, "paused|0|2026-12-03T16:07:53.611300063Z|0|false|\n", "")
GONE = (1, "\n", "Error: No such object: hw4rec\n")
#: `docker exec` of a paused container, same host
PAUSED_EXEC = ("Error response from daemon: Container hw4rec is paused, unpause the container "
               "before exec\n")


class _SlowPod:
    """A pod whose exec answers only when allowed ``needs`` s (a loaded host), else times
    out like ``timeout N docker exec`` (no output, after N s). Seconds scaled down 100x."""

    label = "h2"

    def __init__(self, needs: float, word: tuple[int, str, str] = RUNNING,
                 output: str = "") -> None:
        self.needs, self.words, self.output, self.tries = needs, word, output, []

    def run(self, command: str, timeout: float = 10) -> str:
        self.tries.append(timeout)
        if timeout >= self.needs:
            time.sleep(self.needs)
            return "ready\n"
        time.sleep(timeout)
        return self.output

    def word(self) -> Why:
        return docker_word(*self.words)


def _scaled(pod, timeout: float, limit: float) -> str | None:
    """exec_wait with its seconds scaled down 100x (tries 0.1, 0.2, 0.3 s)."""
    return exec_wait(pod, timeout / 100, limit / 100, tries=(0.1, 0.2, 0.3), pause=0.005)


def test_a_running_container_slower_than_10_s_per_exec_is_waited_for() -> None:
    """Seen at load 20+: every 10-s exec timed out, the container running all along."""
    pod = _SlowPod(needs=0.25)  # answers a 30-s exec, never a 10-s one
    assert _scaled(pod, 60, 180) is None
    assert pod.tries[:3] == [0.1, 0.2, 0.3]


def test_a_slow_pod_is_waited_for_past_the_base_timeout_but_not_past_the_limit() -> None:
    pod = _SlowPod(needs=1e9)  # never answers, the container running
    started = time.monotonic()
    why = _scaled(pod, 6, 18)
    took = time.monotonic() - started
    assert why is not None and 0.17 <= took < 0.7, (took, why)
    assert why.startswith("h2's pod did not answer an exec in 0 s: last exec (")
    assert why.endswith("the pod: container running since 2026-12-03T16:07:53.611300063Z")


def test_an_exited_container_ends_the_wait_at_once_with_docker_s_word() -> None:
    pod = _SlowPod(needs=1e9, word=EXITED, output="Error response from daemon: Container "
                   "abc is not running\n")
    started = time.monotonic()
    why = _scaled(pod, 60, 180)
    assert time.monotonic() - started < 0.3 and len(pod.tries) == 1  # one 0.1-s try
    assert why == ("h2's pod will not take an exec: last exec (1 tries, the last 0 s of 0.1): "
                   "Error response from daemon: Container abc is not running; the pod: "
                   "container exited (exit code 3)")


def test_a_paused_container_ends_the_wait_at_once() -> None:
    why = _scaled(_SlowPod(needs=1e9, word=PAUSED, output=PAUSED_EXEC), 60, 180)
    assert why is not None and why.endswith(
        "is paused, unpause the container before exec; the pod: container paused (an exec "
        "waits for nothing)"), why


def test_a_refusing_exec_on_a_running_container_gets_the_base_timeout_only() -> None:
    """Fast refusals are no slowness: no extension (a real fault is not hidden)."""

    class Refuses(_SlowPod):
        def run(self, command: str, timeout: float = 10) -> str:
            self.tries.append(timeout)
            return "OCI runtime exec failed: exec failed: container_linux.go:380\n"

    started = time.monotonic()
    why = _scaled(Refuses(needs=0), 6, 180)
    assert time.monotonic() - started < 0.3, why
    assert why is not None and "OCI runtime exec failed" in why


def test_docker_s_word_on_its_containers() -> None:
    assert docker_word(*RUNNING) == Why(
        "container running since 2026-12-03T16:07:53.611300063Z", alive=True)
    assert docker_word(*EXITED) == Why("container exited (exit code 3)", final=True)
    assert docker_word(*PAUSED).final
    assert docker_word(*GONE) == Why("container gone: Error: No such object: hw4rec", True)
    slow = docker_word(124, "", "")
    assert not slow.final and not slow.alive
    assert pods_fixture.INSPECT_TIMEOUT >= 10  # a loaded host's docker inspect


def _status(state: client.V1ContainerState, phase: str = "Running",
            restarts: int = 0) -> client.V1Pod:
    return client.V1Pod(
        metadata=client.V1ObjectMeta(name="pod-h2"),
        status=client.V1PodStatus(phase=phase, container_statuses=[client.V1ContainerStatus(
            name="c", image="stackcheck/busybox:latest", image_id="", ready=True,
            restart_count=restarts, state=state)]))


def _event(reason: str, message: str, count: int, pod: str = "pod-h2") -> client.CoreV1Event:
    return client.CoreV1Event(metadata=client.V1ObjectMeta(name="e"), type="Warning",
                              reason=reason, message=message, count=count,
                              involved_object=client.V1ObjectReference(name=pod))


#: the kubelet's warning on every pod of lab hw4a (no cluster DNS), recorded 2026-12-03 on
#: its pod "ok" (here involving pod-h2)
NO_DNS = _event("MissingClusterDNS", 'pod: "ok_hw4rec(6b436553-d168-4c75-a009-613a5833'
                '3b59)". kubelet does not have ClusterDNS IP configured and cannot create Pod '
                'using "ClusterFirst" policy. Falling back to "Default" policy.', 4)


def test_the_cluster_s_word_on_a_running_pod() -> None:
    """As recorded on lab hw4a (v1.20.2): a busybox pod bound to h2, running."""
    running = _status(client.V1ContainerState(running=client.V1ContainerStateRunning(
        started_at=dt.datetime(2026, 12, 3, 16, 9, 3, tzinfo=dt.UTC))))
    word = pod_word(running, [NO_DNS])
    assert word.alive and not word.final
    assert word.text == "phase Running; container c running since 2026-12-03T16:09:03+00:00"


def test_crash_loop_back_off_is_final() -> None:
    """As recorded on lab hw4a (v1.20.2): `sh -c 'exit 1'` bound to h2, 45 s on."""
    crashing = _status(client.V1ContainerState(waiting=client.V1ContainerStateWaiting(
        reason="CrashLoopBackOff", message="back-off 20s restarting failed container=c "
        "pod=crash_hw4rec(e29a3547-d6ad-487b-b4dc-aa89816dbbd2)")), restarts=2)
    word = pod_word(crashing, [
        NO_DNS, _event("BackOff", "Back-off restarting failed container", 4), NO_DNS])
    assert word.final and not word.alive
    assert word.text == (
        "phase Running; container c waiting: CrashLoopBackOff: back-off 20s restarting failed "
        "container=c pod=crash_hw4rec(e29a3547-d6ad-487b-b4dc-aa89816dbbd2); 2 restart(s); "
        "last warning: BackOff: Back-off restarting failed container (x4)")


def test_a_sandbox_that_keeps_failing_is_final_once_retried() -> None:
    pending = client.V1Pod(metadata=client.V1ObjectMeta(name="pod-h2"),
                           status=client.V1PodStatus(phase="Pending"))
    message = 'Failed to create pod sandbox: rpc error: code = Unknown desc = failed to start'
    assert not pod_word(pending, [_event("FailedCreatePodSandBox", message, 1)]).final
    assert pod_word(pending, [_event("FailedCreatePodSandBox", message, 3)]).final


def test_the_api_servers_word_in_one_line() -> None:
    """The body is the Status kube-apiserver v1.20.2 answered in our machines lab's CI run
    (2026-12-03, etcd rejoining after a member's reboot): a person sees its message, not
    the client's dump of headers."""
    from kubernetes.client import ApiException

    from stackcheck.kubernetes import api_said

    exc = ApiException(status=500, reason="Internal Server Error")
    exc.body = ('{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",'
                '"message":"etcdserver: request timed out","code":500}')
    assert api_said(exc) == "500 Internal Server Error: etcdserver: request timed out"
    exc.body = b"upstream connect error"
    assert api_said(exc) == "500 Internal Server Error: upstream connect error"
    exc.body = None
    assert api_said(exc) == "500 Internal Server Error"
