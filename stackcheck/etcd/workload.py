"""Concurrent etcd traffic during a fault, recorded for the linearizability checker.

Several clients, each bound to one member (round robin), issue a mix of writes of unique
values, linearizable reads and compare-and-set on a few shared keys, until stopped. Every
write and swapping CAS also puts ``<key>/log/<value>`` in the same transaction, so a lost
acknowledged write can be found after recovery. A sampler records which leader each member
names, and the scenario marks its fault window, for the timeline picture.
"""

from __future__ import annotations

import base64
import random
import threading
import time
from dataclasses import dataclass, field

from etcd3gw.client import Etcd3Client

from stackcheck.etcd import client_for, error_text
from stackcheck.etcd.linearizability import History, Op
from stackcheck.lab import EtcdAccess

#: share of operations: writes, reads, the rest compare-and-set
WRITES, READS = 0.35, 0.4
#: s between a client's operations (keeps a 2-core machine responsive); after a failure
PACE, PACE_AFTER_FAILURE = 0.03, 0.2
#: s between leader samples
SAMPLE_EVERY = 0.25


@dataclass
class Window:
    """A fault: what was done, and when (monotonic s) it began and was healed."""

    label: str
    start: float
    end: float | None = None
    #: members the fault makes unavailable by design (no write expected through them)
    down: list[str] = field(default_factory=list)


@dataclass
class Record:
    """What a scenario's traffic left: the history and what happened around it."""

    history: History
    clients: list[str]  # lane names, e.g. "c1@h1"
    keys: list[str]
    started: float
    stopped: float | None = None
    windows: list[Window] = field(default_factory=list)
    #: (time, {member: leader it names, or None when it does not answer})
    leaders: list[tuple[float, dict[str, str | None]]] = field(default_factory=list)

    def relative(self) -> History:
        """The history with times in seconds since the traffic started (for messages)."""
        return History.from_dict(self.to_dict())

    def to_dict(self) -> dict:
        """JSON-ready, times in seconds since the traffic started."""
        t0 = self.started

        def rel(t: float | None) -> float | None:
            return None if t is None or t == float("inf") else round(t - t0, 6)

        ops = []
        for op in self.history.to_dict()["ops"]:
            ops.append({**op, "call": rel(op["call"]), "ret": rel(op["ret"]),
                        "ended": rel(op["ended"])})
        return {
            "clients": self.clients, "keys": self.keys, "initial": self.history.initial,
            "duration": rel(self.stopped),
            "faults": [{"label": w.label, "start": rel(w.start), "end": rel(w.end),
                        "down": w.down} for w in self.windows],
            "leaders": [{"t": rel(t), "named": named} for t, named in self.leaders],
            "ops": ops,
        }


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _unb64(text: str) -> str:
    return base64.b64decode(text).decode()


def _error(exc: Exception) -> str:
    return error_text(exc)


def _refused(exc: Exception) -> bool:
    """The member refused the connection: the request never left, so it had no effect."""
    return "Connection refused" in str(getattr(exc, "detail_text", "") or exc)


class Traffic:
    """Concurrent clients through ``members`` (name -> endpoint); ``start`` / ``stop``."""

    def __init__(self, access: EtcdAccess, members: dict[str, str], prefix: str,
                 clients: int = 6, keys: int = 3, timeout: float = 10.0, seed: int = 0) -> None:
        self.access = access
        self.members = members
        self.prefix = prefix.rstrip("/")
        names = list(members)
        self.bound = {f"c{i + 1}@{names[i % len(names)]}": names[i % len(names)]
                      for i in range(clients)}
        self.keys = [f"{self.prefix}/k{i}" for i in range(keys)]
        self.timeout = timeout
        self.rng = random.Random(seed)
        self.record = Record(History(), list(self.bound), self.keys, time.monotonic())
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._ids: dict[str, str] = {}  # member id (decimal) -> name

    # --- lifecycle ---

    def start(self) -> Traffic:
        self.record.started = time.monotonic()
        for client, member in self.bound.items():
            seed = self.rng.random()
            self._threads.append(threading.Thread(target=self._run, args=(client, member, seed),
                                                  name=f"traffic-{client}", daemon=True))
        self._threads.append(threading.Thread(target=self._sample, name="traffic-leaders",
                                              daemon=True))
        for thread in self._threads:
            thread.start()
        return self

    def stop(self, wait: bool = True) -> Record:
        """Stop every client after its current operation (each is bounded by ``timeout``);
        ``wait=False`` (an interrupted run) does not wait for them (they are daemons)."""
        self._stop.set()
        for thread in self._threads if wait else []:
            thread.join(self.timeout + 5)
        self.record.stopped = time.monotonic()
        return self.record

    def fault(self, label: str, down: list[str]) -> Window:
        """Mark the start of a fault that makes ``down`` unavailable by design."""
        window = Window(label, time.monotonic(), down=list(down))
        self.record.windows.append(window)
        return window

    @staticmethod
    def healed(window: Window) -> None:
        window.end = time.monotonic()

    def __enter__(self) -> Traffic:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        if not self._stop.is_set():
            self.stop()

    def probe(self, member: str, kinds: tuple[str, ...] = ("write", "read")) -> list[Op]:
        """One operation of each kind through ``member``, concurrently, by a client of its
        own (``probe@<member>``), recorded in the history like the others; returns them."""
        client = f"probe@{member}"
        if client not in self.record.clients:
            self.record.clients.append(client)
        key = self.keys[0]
        done: list[Op] = []

        def run(kind: str) -> None:
            etcd = client_for(self.access, self.members[member], self.timeout)
            if kind == "write":
                done.append(self._write(etcd, client, key, f"{client}-{time.monotonic_ns()}"))
            else:
                done.append(self._read(etcd, client, key, {}))
            etcd.session.close()

        threads = [threading.Thread(target=run, args=(k,), daemon=True) for k in kinds]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(self.timeout + 5)
        return done

    # --- the clients ---

    def _run(self, client: str, member: str, seed: float) -> None:
        rng = random.Random(seed)
        etcd = client_for(self.access, self.members[member], self.timeout)
        last_seen: dict[str, str | None] = {}
        seq = 0
        while not self._stop.is_set():
            key = rng.choice(self.keys)
            roll = rng.random()
            seq += 1
            value = f"{client}-{seq}"
            if roll < WRITES:
                op = self._write(etcd, client, key, value)
            elif roll < WRITES + READS:
                op = self._read(etcd, client, key, last_seen)
            else:
                op = self._cas(etcd, client, key, last_seen.get(key), value, last_seen)
            self._stop.wait(PACE if op.outcome == "ok" else PACE_AFTER_FAILURE)
        etcd.session.close()

    def _puts(self, key: str, value: str) -> list[dict]:
        return [{"request_put": {"key": _b64(k), "value": _b64(value)}}
                for k in (key, f"{key}/log/{value}")]

    def _write(self, etcd: Etcd3Client, client: str, key: str, value: str) -> Op:
        history = self.record.history
        op = history.call("write", value, client=client, key=key)
        try:
            etcd.transaction({"compare": [], "success": self._puts(key, value), "failure": []})
        except Exception as exc:  # noqa: BLE001 - outcome unknown, recorded as such
            history.fail(op, definite=_refused(exc), error=_error(exc))
            return op
        history.ok(op)
        return op

    def _read(self, etcd: Etcd3Client, client: str, key: str,
              last_seen: dict[str, str | None]) -> Op:
        history = self.record.history
        op = history.call("read", client=client, key=key)
        try:
            values = etcd.get(key)  # linearizable (the gateway's default)
        except Exception as exc:  # noqa: BLE001 - a failed read has no effect
            history.fail(op, error=_error(exc))
            return op
        got = values[0].decode() if values else None
        history.ok(op, got)
        last_seen[key] = got
        return op

    def _cas(self, etcd: Etcd3Client, client: str, key: str, expect: str | None, value: str,
             last_seen: dict[str, str | None]) -> Op:
        history = self.record.history
        op = history.call("cas", value, client=client, key=key, expect=expect)
        compare = ({"key": _b64(key), "result": "EQUAL", "target": "CREATE",
                    "create_revision": "0"} if expect is None else
                   {"key": _b64(key), "result": "EQUAL", "target": "VALUE",
                    "value": _b64(expect)})
        txn = {"compare": [compare], "success": self._puts(key, value),
               "failure": [{"request_range": {"key": _b64(key)}}]}
        try:
            answer = etcd.transaction(txn)
        except Exception as exc:  # noqa: BLE001 - outcome unknown, recorded as such
            history.fail(op, definite=_refused(exc), error=_error(exc))
            return op
        if answer.get("succeeded"):
            history.ok(op, swapped=True)
            last_seen[key] = value
            return op
        ranges = [r.get("response_range", {}) for r in answer.get("responses", [])]
        kvs = ranges[0].get("kvs", []) if ranges else []
        seen = _unb64(kvs[0]["value"]) if kvs and "value" in kvs[0] else None
        history.ok(op, seen, swapped=False)
        last_seen[key] = seen
        return op

    # --- leaders over time ---

    def _sample(self) -> None:
        etcds = {name: client_for(self.access, ep, 1.0) for name, ep in self.members.items()}
        while not self._stop.is_set():
            statuses: dict[str, dict | None] = {}
            for name, etcd in etcds.items():
                try:
                    statuses[name] = etcd.status()
                    self._ids[str(statuses[name]["header"]["member_id"])] = name  # type: ignore[index]
                except Exception:  # noqa: BLE001 - a stopped member answers nothing
                    statuses[name] = None
            named: dict[str, str | None] = {}
            for name, status in statuses.items():
                leader = str(status.get("leader", "0")) if status else None
                named[name] = None if leader is None else "none" if leader == "0" else (
                    self._ids.get(leader, f"{int(leader):x}"))
            self.record.leaders.append((time.monotonic(), named))
            self._stop.wait(SAMPLE_EVERY)
        for etcd in etcds.values():
            etcd.session.close()


def logged(etcd: Etcd3Client, key: str) -> set[str]:
    """Values whose log entry under ``key`` is present (a linearizable read)."""
    return {value.decode() for value, _ in etcd.get_prefix(f"{key}/log/")}
