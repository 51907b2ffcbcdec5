"""Redaction: text leaves the harness only after secrets are removed from it.

Removes PEM private-key blocks, values of secret-looking keys (kubeconfig
``client-key-data``/``token``, clouds.yaml ``password``, env ``*_PASSWORD=``),
``Authorization`` headers, passwords in URLs, and any literal registered with
:func:`register_secret` (e.g. the lab's key files).
"""

from __future__ import annotations

import base64
import re
from typing import Any

MASK = "[REDACTED]"

_SECRET_WORDS = (
    r"client-key-data|password|passwd|passphrase|secret|token|private[-_]?key|api[-_]?key"
    r"|credential"
)
_KEY = rf"[\w.-]*(?:{_SECRET_WORDS})[\w.-]*"

_PEM = re.compile(
    r"-----BEGIN ((?:[A-Z0-9]+ )*)PRIVATE KEY-----[\s\S]*?"
    r"(?:-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----|\Z)"
)
# "password": "x" / 'token': 'x' (JSON, Python reprs), also escaped quotes inside.
_QUOTED = re.compile(
    rf"""(?i)(?P<k>(?P<q>["']){_KEY}(?P=q)\s*[:=]\s*)(?P<v>(?P<q2>["'])(?:\\.|(?!(?P=q2)).)*(?P=q2)|[^\s,}}\]]+)"""
)
# YAML / INI lines: password: x, client-key-data: LS0t..., token = x
_LINE = re.compile(
    rf"(?im)^(?P<k>[ \t]*(?:-[ \t]+)?{_KEY}[ \t]*[:=][ \t]*)(?P<v>(?!\[REDACTED\])[^\s#].*)$"
)
# inside a sentence: "... kubeconfig token: abc.def ..." (values of 6+ characters)
_INLINE = re.compile(rf"(?i)(?P<k>\b{_KEY}[ \t]*[:=][ \t]*)(?P<v>(?!\[REDACTED\])[^\s,;'\"]{{6,}})")
# env vars and CLI flags: OS_PASSWORD=x, --token=x, --password x
_ENV = re.compile(r"(?i)(?P<k>\b[A-Z0-9_]*(?:PASSWORD|TOKEN|SECRET)[A-Z0-9_]*=)(?P<v>\S+)")
_FLAG = re.compile(rf"(?i)(?P<k>--{_KEY}(?:=|\s+))(?P<v>[^\s-]\S*)")
_AUTH = re.compile(
    r"(?i)(?P<k>\b(?:proxy-)?authorization[\"']?\s*[:=]\s*[\"']?(?:(?:bearer|basic|token|digest|negotiate)\s+)?)"
    r"(?P<v>[^\s\"',}]+)"
)
_URL_PASSWORD = re.compile(r"(?P<k>[a-z][a-z0-9+.-]*://[^/\s:@]+:)(?P<v>[^@\s/]+)(?=@)")

_registered: set[str] = set()


def register_secret(value: str | bytes) -> None:
    """Remove this literal (and its base64 form, and each long line of it) wherever it appears."""
    text = value.decode(errors="replace") if isinstance(value, bytes) else value
    text = text.strip()
    if len(text) < 8:
        return
    _registered.add(text)
    _registered.add(base64.b64encode(text.encode()).decode())
    _registered.update(line.strip() for line in text.splitlines() if len(line.strip()) >= 24)


def _mask_value(match: re.Match[str]) -> str:
    value = match.group("v")
    quote = value[0] if value[:1] in ("'", '"') and value[-1:] == value[:1] else ""
    return f"{match.group('k')}{quote}{MASK}{quote}"


def redact(text: str) -> str:
    """``text`` with every secret it holds replaced by ``[REDACTED]``."""
    for secret in sorted(_registered, key=len, reverse=True):
        text = text.replace(secret, MASK)
    text = _PEM.sub(lambda m: f"-----BEGIN {m.group(1)}PRIVATE KEY----- {MASK}", text)
    for pattern in (_AUTH, _QUOTED, _ENV, _FLAG, _LINE, _INLINE, _URL_PASSWORD):
        text = pattern.sub(_mask_value, text)
    return text


def redact_obj(obj: Any) -> Any:
    """A copy of a JSON-like object with secret-looking keys masked and strings redacted."""
    if isinstance(obj, dict):
        return {
            k: MASK if re.fullmatch(_KEY, str(k), re.I) and obj[k] not in (None, "")
            else redact_obj(v)
            for k, v in obj.items()
        }
    if isinstance(obj, list | tuple):
        return [redact_obj(v) for v in obj]
    if isinstance(obj, str):
        return redact(obj)
    return obj
