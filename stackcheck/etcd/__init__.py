"""etcd clients for a lab (etcd3gw over the v3 HTTP gateway, TLS with client certs)."""

from __future__ import annotations

import json
import re
from urllib.parse import urlsplit

import requests
from etcd3gw.client import Etcd3Client

from stackcheck.errors import command_failure, cut_line, network_reason
from stackcheck.errors import trim as trim  # re-exported for the etcd suite
from stackcheck.lab import EtcdAccess

#: the reason inside a urllib3 error: "[Errno 111] Connection refused", "Read timed out."
_REASON = re.compile(r"\[Errno -?\d+\] ([^'\")]+)|(Read timed out|timed out|"
                     r"Connection reset by peer|Connection aborted)")

def session_for(access: EtcdAccess) -> requests.Session:
    """An HTTP session with the lab's client certificate, trusting the lab CA only (an
    environment CA bundle such as REQUESTS_CA_BUNDLE would override it)."""
    session = requests.Session()
    session.trust_env = False
    if access.ca_file:
        session.verify = str(access.ca_file)
    if access.cert_file and access.key_file:
        session.cert = (str(access.cert_file), str(access.key_file))
    return session


def client_for(access: EtcdAccess, endpoint: str, timeout: float = 5.0) -> Etcd3Client:
    """A client of one endpoint. The lab CA is pinned even if REQUESTS_CA_BUNDLE is set."""
    url = urlsplit(endpoint)
    return Etcd3Client(
        host=url.hostname or "",
        port=url.port or 2379,
        protocol=url.scheme,
        timeout=timeout,
        session=session_for(access),
    )


def clients(access: EtcdAccess, timeout: float = 5.0) -> dict[str, Etcd3Client]:
    """One client per endpoint, keyed by endpoint URL."""
    return {ep: client_for(access, ep, timeout) for ep in access.endpoints}


def member_id(status: dict) -> str:
    """The id of the member that answered a status call (decimal string)."""
    return str(status["header"]["member_id"])


def leader_id(status: dict) -> str:
    """The id of the leader a member names in its status (decimal string; "0": none)."""
    return str(status.get("leader") or "0")


def hex_id(member_id_: str | int) -> str:
    """A member id as etcdctl prints it (hex), from the decimal the gateway returns."""
    try:
        return f"{int(member_id_):x}"
    except (TypeError, ValueError):
        return str(member_id_)


def error_text(exc: Exception) -> str:
    """An etcd client error as one short phrase on one line (of several, the last: where
    errors say what failed).

    etcd3gw's connection errors have an empty message and urllib3's whole story as detail:
    only its reason is kept (``does not answer (ConnectionFailedError: Connection refused)``).
    An HTTP error keeps etcd's own message (``etcdserver: request timed out``).
    """
    text = str(exc).strip()
    name = type(exc).__name__
    detail = getattr(exc, "detail_text", None)
    detail = detail.strip() if isinstance(detail, str) else ""
    if not text and detail:
        reason = _REASON.search(detail)
        cause = network_reason(exc)  # the preflight's words: TLS, timeout, refusal
        if cause in ("TLS certificate not trusted", "TLS handshake failed") or (
                cause and not reason):
            return f"does not answer ({name}: {cause})"
        if reason or "Connection" in name:
            why = (reason.group(1) or reason.group(2)).strip() if reason else "no reason given"
            return f"does not answer ({name}: {why})"
        text = detail
    elif detail:
        try:
            body = json.loads(detail)
            said = body.get("error") or body.get("message") if isinstance(body, dict) else None
        except ValueError:
            said = detail
        text = f"{text}: {said}" if said else text
    if not text:
        return f"does not answer ({name})"
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return cut_line(f"{name}: {lines[-1] if len(lines) > 1 else text}", 300)


def endpoint_host(endpoint: str) -> str:
    """The host part of an endpoint URL."""
    return urlsplit(endpoint).hostname or ""


def statuses(access: EtcdAccess, timeout: float = 5.0) -> dict[str, dict | Exception]:
    """``maintenance/status`` of every endpoint, or the error it raised."""
    out: dict[str, dict | Exception] = {}
    for endpoint, client in clients(access, timeout).items():
        try:
            out[endpoint] = client.status()
        except Exception as exc:  # noqa: BLE001 - an unreachable member is data here
            out[endpoint] = exc
    return out


def etcdctl_args(access: EtcdAccess, endpoints: list[str]) -> list[str]:
    """etcdctl (v3 API) arguments reaching ``endpoints`` with the lab's TLS files."""
    args = ["etcdctl", f"--endpoints={','.join(endpoints)}", "--command-timeout=10s"]
    if access.ca_file:
        args.append(f"--cacert={access.ca_file}")
    if access.cert_file and access.key_file:
        args += [f"--cert={access.cert_file}", f"--key={access.key_file}"]
    return args


def hashkv(access: EtcdAccess, revision: int) -> dict[str, int]:
    """``endpoint hashkv`` at ``revision`` for every endpoint (needs etcdctl on this machine).

    The v3 HTTP gateway of etcd 3.4 maps only the whole-backend Hash, so HashKV goes
    through etcdctl's gRPC client.
    """
    import os
    import shutil
    import subprocess

    if shutil.which("etcdctl") is None:
        raise FileNotFoundError("etcdctl is not installed on this machine (Debian etcd-client)")
    args = [*etcdctl_args(access, access.endpoints), "endpoint", "hashkv", f"--rev={revision}",
            "-w", "json"]
    env = {**os.environ, "ETCDCTL_API": "3"}
    done = subprocess.run(args, capture_output=True, text=True, timeout=30, env=env, check=False)
    if done.returncode != 0:  # one line: etcdctl's last (its JSON warnings come first)
        said = [line for line in done.stderr.strip().splitlines() if line.strip()]
        raise RuntimeError(command_failure(f"etcdctl endpoint hashkv --rev={revision}",
                                           done.returncode, stderr=said[-1] if said else ""))
    return {item["Endpoint"]: int(item["HashKV"]["hash"]) for item in json.loads(done.stdout)}
