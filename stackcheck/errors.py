"""One-line, human descriptions of the errors the lab's client libraries raise.

paramiko, etcd3gw (over requests/urllib3) and the kubernetes client fail with long chains
of exceptions whose last line is often bare (``etcd3gw.exceptions.ConnectionTimeoutError``
with no text). A person needs one line naming what was reached and what happened.
"""

from __future__ import annotations

import socket

from stackcheck.lab import Host, SSHAccess

MAX_LINE = 200


def trim(text: str, limit: int = 500) -> str:
    """``text`` cut to about ``limit`` characters by whole lines, keeping the last lines
    (where errors say what failed), with a marker saying what was left out; a single line
    too long is cut at a word boundary, never mid-word."""
    text = text.strip()
    if len(text) <= limit:
        return text
    lines = text.splitlines()
    kept: list[str] = []
    size = 0
    for line in reversed(lines):
        if kept and size + len(line) + 1 > limit:
            break
        kept.insert(0, line)
        size += len(line) + 1
    dropped = len(lines) - len(kept)
    if len(kept) == 1 and len(kept[0]) > limit:
        words = kept[0].split(" ")
        tail: list[str] = []
        for word in reversed(words):
            if tail and sum(len(w) + 1 for w in tail) + len(word) > limit:
                break
            tail.insert(0, word)
        kept = [f"[…{len(words) - len(tail)} words trimmed] " + " ".join(tail)]
    if dropped:
        kept.insert(0, f"[…{dropped} earlier line(s) trimmed]")
    return "\n".join(kept)


def cut_line(line: str, limit: int = MAX_LINE) -> str:
    """``line`` shortened to at most ``limit`` chars at a word boundary, marked with '…'."""
    if len(line) <= limit:
        return line
    space = line.rfind(" ", 0, limit - 2)
    return line[: space if space > limit // 2 else limit - 2] + " …"


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    while exc is not None and exc not in seen:
        seen.append(exc)
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return seen


def _texts(exc: BaseException) -> str:
    parts = []
    for item in _chain(exc):
        parts.append(type(item).__name__)
        parts.append(str(getattr(item, "detail_text", "") or ""))
        parts.append(str(item))
        reason = getattr(item, "reason", None)
        if reason is not None:
            parts.append(str(reason))
        errors = getattr(item, "errors", None)  # paramiko's NoValidConnectionsError
        if isinstance(errors, dict):
            parts.extend(f"{type(e).__name__} {e}" for e in errors.values())
    return " ".join(parts).lower()


def network_reason(exc: BaseException) -> str | None:
    """'connection refused', 'timed out', … if ``exc`` is a failure to reach a peer."""
    text = _texts(exc)
    for needle, reason in (
        ("connection refused", "connection refused"),
        ("no route to host", "no route to host"),
        ("network is unreachable", "network unreachable"),
        ("name or service not known", "name does not resolve"),
        ("certificate verify failed", "TLS certificate not trusted"),
        ("sslerror", "TLS handshake failed"),
        ("timed out", "timed out"),
        ("timeout", "timed out"),
        ("connection reset", "connection reset"),
        ("remotedisconnected", "connection closed by the peer"),
        ("connection aborted", "connection closed by the peer"),
        ("max retries exceeded", "no connection"),
    ):
        if needle in text:
            return reason
    if any(isinstance(e, (socket.timeout, TimeoutError)) for e in _chain(exc)):
        return "timed out"
    return None


def ssh_error(exc: BaseException, host: Host, access: SSHAccess) -> str:
    """Why SSH to ``host`` failed, e.g. ``no SSH on 10.0.0.13:22 within 10 s``."""
    import paramiko

    where = f"{host.address}:{access.port}"
    timeout = f"{access.connect_timeout:g} s"
    for item in _chain(exc):
        if isinstance(item, paramiko.BadHostKeyException):
            return f"host key of {where} differs from known_hosts (possible impostor)"
        if isinstance(item, paramiko.SSHException) and "not found in known_hosts" in str(item):
            return f"host key of {where} is not in known_hosts {access.known_hosts}"
        if isinstance(item, paramiko.AuthenticationException):
            return f"SSH on {where} refused the key for user {access.user}"
    reason = network_reason(exc)
    if reason == "timed out":
        return f"no SSH on {where} within {timeout}"
    if reason:
        return f"no SSH on {where}: {reason}"
    return f"SSH to {where} failed: {short(exc)}"


def etcd_error(exc: BaseException) -> str:
    """Why an etcd call failed, in a few words (the gateway's own message if it sent one)."""
    reason = network_reason(exc)
    if reason:
        return reason
    detail = str(getattr(exc, "detail_text", "") or "").strip()
    if detail:
        return f"{type(exc).__name__}: {cut_line(detail.splitlines()[0])}"
    return short(exc)


def short(exc: BaseException) -> str:
    """``Type: first line of the message`` of ``exc``, at most one line."""
    text = str(exc).strip()
    first = cut_line(text.splitlines()[0]) if text else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


class CommandFailed(RuntimeError):
    """A command on a host exited non-zero; the message says what ran and what it printed."""


#: exit statuses whose meaning is known whatever the command (coreutils ``timeout``)
_KNOWN_STATUS = {124: "its time limit ran out", 137: "it was killed"}


def quoted(text: str, limit: int = 800) -> str:
    """Command output as indented lines (``    | line``), trimmed by whole lines."""
    return "\n".join(f"    | {line}" for line in trim(text, limit).splitlines())


def command_failure(command: str, exit_status: int, stdout: str = "", stderr: str = "",
                    host: str = "") -> str:
    """``[h1: ]`cmd` exited 1: the one line it printed``, or for several lines the same with
    the output quoted below them; says so when it printed nothing."""
    meaning = _KNOWN_STATUS.get(exit_status)
    status = f"exited {exit_status}" + (f" ({meaning})" if meaning else "")
    ran = f"{host + ': ' if host else ''}`{cut_line(' '.join(command.split()), 300)}` {status}"
    printed = (stderr or "").strip() or (stdout or "").strip()
    if not printed:
        return f"{ran} and printed nothing"
    lines = trim(printed).splitlines()
    if len(lines) == 1:
        return f"{ran}: {lines[0]}"
    return f"{ran}; it printed:\n{quoted(printed)}"
