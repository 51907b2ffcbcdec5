"""Opt-in trace of what a conformance run sends to the lab (pytest plugin, benchmarks only).

Load it with ``-p benchmarks.trace`` and set ``STACKCHECK_TRACE=<dir>`` (with the repo root on
PYTHONPATH so xdist workers find it). Every process (controller, each worker) appends JSON lines
to ``<dir>/trace-<worker>.jsonl``:

* ``ssh``: a command run over SSH (testinfra's paramiko backend): host, command, exit status,
  a hash of its output, and ``internal`` when testinfra runs it for itself (OS detection);
* ``http``: an HTTP request (etcd's v3 gateway, through requests): method, URL, body, status;
* ``local``: a command run on this machine with ``subprocess.run`` (e.g. ``etcdctl``);
* ``connect``: an SSH connection being opened;
* ``lock``: time spent waiting for the lab lock (shared or exclusive);
* ``test``: one check's whole run protocol (setup, call, teardown), its worker and markers;
* ``wait``: each ``stackcheck.waits.wait_for`` of the process, at the end.

Every event has wall-clock ``t0``/``t1``, the test it ran in and the thread that ran it.
``benchmarks/replay.py`` replays a trace without pytest to measure the floor. The hooks wrap
library methods in the traced processes only; nothing changes when the plugin is not loaded.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paramiko
import pytest
import requests
from testinfra.backend.paramiko import ParamikoBackend

ENV = "STACKCHECK_TRACE"

_state = threading.local()
_lock = threading.Lock()
_out: Any = None
_current_test = "<session>"


def _emit(event: dict[str, Any]) -> None:
    if _out is None:
        return
    event.setdefault("test", _current_test)
    event.setdefault("thread", threading.get_ident())
    line = json.dumps(event, default=str)
    with _lock:
        _out.write(line + "\n")


@contextlib.contextmanager
def _op() -> Iterator[bool]:
    """True for the outermost traced operation of this thread (nested ones are not recorded)."""
    outer = not getattr(_state, "busy", False)
    _state.busy = True
    try:
        yield outer
    finally:
        if outer:
            _state.busy = False


def _harness_internal() -> bool:
    """True when testinfra itself runs the command (OS detection), not a check."""
    frame = sys._getframe(2)
    while frame is not None:
        if frame.f_code.co_filename.endswith("testinfra/modules/systeminfo.py"):
            return True
        frame = frame.f_back
    return False


def _wrap_ssh() -> None:
    original = ParamikoBackend._exec_command

    def exec_command(self: ParamikoBackend, command: bytes) -> tuple[int, bytes, bytes]:
        with _op() as outer:
            t0 = time.time()
            rc, out, err = original(self, command)
            if outer:
                _emit({"k": "ssh", "host": self.host.name, "port": self.host.port or 22,
                       "user": self.host.user, "cmd": command.decode(errors="replace"),
                       "rc": rc, "out": hashlib.sha1(out).hexdigest()[:12],
                       "internal": _harness_internal(), "t0": t0, "t1": time.time()})
            return rc, out, err

    ParamikoBackend._exec_command = exec_command  # type: ignore[method-assign]

    original_connect = paramiko.SSHClient.connect

    def connect(self: paramiko.SSHClient, hostname: str, *args: Any, **kwargs: Any) -> None:
        t0 = time.time()
        original_connect(self, hostname, *args, **kwargs)
        _emit({"k": "connect", "host": hostname, "t0": t0, "t1": time.time()})

    paramiko.SSHClient.connect = connect  # type: ignore[method-assign]


def _wrap_http() -> None:
    original = requests.Session.send

    def send(self: requests.Session, request: requests.PreparedRequest,
             **kwargs: Any) -> requests.Response:
        with _op() as outer:
            t0 = time.time()
            body = request.body.encode() if isinstance(request.body, str) else request.body
            event = {"k": "http", "method": request.method, "url": request.url,
                     "body": base64.b64encode(body).decode() if body else None,
                     "content_type": request.headers.get("Content-Type"),
                     "timeout": kwargs.get("timeout"), "t0": t0}
            try:
                response = original(self, request, **kwargs)
            except Exception as exc:
                if outer:
                    _emit({**event, "status": f"error:{type(exc).__name__}", "t1": time.time()})
                raise
            if outer:
                _emit({**event, "status": response.status_code, "t1": time.time()})
            return response

    requests.Session.send = send  # type: ignore[method-assign]


def _wrap_subprocess() -> None:
    original = subprocess.run

    def run(args: Any, *pargs: Any, **kwargs: Any) -> subprocess.CompletedProcess:
        with _op() as outer:
            t0 = time.time()
            done = original(args, *pargs, **kwargs)
            if outer and _current_test != "<session>":
                _emit({"k": "local", "argv": args, "rc": done.returncode,
                       "timeout": kwargs.get("timeout"), "t0": t0, "t1": time.time()})
            return done

    subprocess.run = run


def _wrap_lab_lock() -> None:
    """Time spent waiting for claims (``stackcheck.claims.hold``: the lab lock and the rest)."""
    import stackcheck.claims

    original = stackcheck.claims.hold

    @contextlib.contextmanager
    def hold(claims: Any, lock_dir: Path, timeout: float = 3600,
             cancelled: Any = None) -> Iterator[None]:
        t0 = time.time()
        with original(claims, lock_dir, timeout, cancelled):
            exclusive = any(c.mode != "shared" for c in claims)
            _emit({"k": "lock", "exclusive": exclusive, "t0": t0, "t1": time.time()})
            yield

    stackcheck.claims.hold = hold


def _worker(config: pytest.Config) -> str:
    workerinput = getattr(config, "workerinput", None)
    return workerinput["workerid"] if workerinput else "main"


def pytest_configure(config: pytest.Config) -> None:
    global _out
    folder = os.environ.get(ENV)
    if not folder:
        return
    Path(folder).mkdir(parents=True, exist_ok=True, mode=0o700)
    _out = open(Path(folder) / f"trace-{_worker(config)}.jsonl", "a", buffering=1)  # noqa: SIM115
    _wrap_ssh()
    _wrap_http()
    _wrap_subprocess()
    _wrap_lab_lock()
    _emit({"k": "process", "worker": _worker(config), "pid": os.getpid(),
           "t0": time.time(), "t1": time.time()})


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None):
    global _current_test
    _current_test = item.nodeid
    t0 = time.time()
    try:
        return (yield)
    finally:
        _emit({"k": "test", "worker": _worker(item.config), "t0": t0, "t1": time.time(),
               "disruptive": item.get_closest_marker("disruptive") is not None})
        _current_test = "<session>"


def pytest_sessionfinish(session: pytest.Session) -> None:
    from stackcheck.waits import RECORDS

    for record in RECORDS:
        data = record.to_dict()
        _emit({"k": "wait", **data, "test": data["test"] or "<session>",
               "t0": record.started, "t1": record.started + record.seconds})


def pytest_unconfigure(config: pytest.Config) -> None:
    global _out
    if _out is not None:
        _out.close()
        _out = None
