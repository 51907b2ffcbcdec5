"""A failed check ends with its own frame and one message, never the harness's internals.

For the harness's own exceptions (``stackcheck``'s: a wait that timed out, a fault that
could not be injected or healed, a command that failed) and for a check's ``assert`` with a
message, the report keeps only the frames of the checks and fixtures (no library source, no
pytest or client-library frames, no exception chain), names the exception by its short name,
and shows the message alone: no ``+ where`` expansions of pytest's assertion rewriting (the
message already says what was expected and seen), no ``<… object at 0x…>`` reprs, and text
that was escaped into a repr (``\\n``) quoted as lines again.

A bare ``assert`` (no message) keeps pytest's explanation: it is all there is. ``--tb=native``
and ``--full-trace`` keep pytest's report untouched.
"""

from __future__ import annotations

import re
import sysconfig
from pathlib import Path

import pytest
from _pytest._code.code import ExceptionChainRepr, ReprEntry, ReprFileLocation, Traceback

import stackcheck
from stackcheck.errors import CommandFailed
from stackcheck.faults import FaultError

LIBRARY = Path(stackcheck.__file__).resolve().parent
#: where third-party and standard-library code lives (pytest, pluggy, etcd3gw, threading…)
_OUTSIDE = tuple({Path(sysconfig.get_paths()[key]).resolve()
                  for key in ("stdlib", "platstdlib", "purelib", "platlib")})
_OBJECT_REPR = re.compile(r"<([\w.]+?)(?: object)? at 0x[0-9a-fA-F]+>")
_REWRITE = "\nassert "


def library_frame(path: Path | str) -> bool:
    """Is ``path`` the harness's library, a third-party package or the standard library?"""
    resolved = Path(path).resolve()
    return resolved.is_relative_to(LIBRARY) or any(resolved.is_relative_to(p) for p in _OUTSIDE)


def clean(text: str, unescape: bool = False) -> str:
    """No object reprs (``<StrictParamikoBackend>`` for ``<stackcheck.ssh.Strict… object at
    0x7f…>``); with ``unescape`` (a check's message, where data was put through repr()), the
    escaped newlines back as indented lines."""
    text = _OBJECT_REPR.sub(lambda m: f"<{m.group(1).rsplit('.', 1)[-1]}>", text)
    return text.replace("\\n", "\n    ") if unescape else text


def own_message(exc: BaseException) -> str | None:
    """The message a person should read for ``exc``, or None to leave pytest's report."""
    if isinstance(exc, AssertionError):
        text = str(exc)
        if not text or text.startswith("assert "):
            return None  # a bare assert: pytest's explanation is the only message
        cut = text.find(_REWRITE)
        return clean(text[:cut] if cut >= 0 else text, unescape=True)
    if type(exc).__module__.split(".")[0] == LIBRARY.name:
        # a failed command is quoted as it ran (its own \n stays); other messages carry data
        # put through repr() (a wait's "last seen")
        return clean(str(exc), unescape=not isinstance(exc, (CommandFailed, FaultError)))
    return None


def _message_lines(name: str, message: str) -> list[str]:
    first, *rest = f"{name}: {message}".splitlines() or [name]
    return [first, *rest]


def shape(item: pytest.Item, call: pytest.CallInfo, report: pytest.TestReport) -> None:
    """Rewrite ``report.longrepr`` (and the exception Allure records) as described above."""
    excinfo = call.excinfo
    if excinfo is None or not report.failed or isinstance(report.longrepr, str):
        return
    message = own_message(excinfo.value)
    config = item.config
    style = config.getoption("tbstyle", "auto")
    if message is None or style == "native" or config.getoption("fulltrace", False):
        return
    exc = excinfo.value
    name = type(exc).__name__
    exc.args = (message,)  # what Allure and the short summary show
    own = [entry for entry in excinfo.traceback if not library_frame(entry.path)]
    if style == "auto" and len(own) > 2:  # as pytest's: only the first and last in full
        own = [own[0], *(e.with_repr_style("short") for e in own[1:-1]), own[-1]]
    if own:
        excinfo.traceback = Traceback(own)
    style = "long" if style == "auto" else style
    longrepr = excinfo.getrepr(funcargs=False, showlocals=config.getoption("showlocals", False),
                               style=style, tbfilter=False, truncate_locals=True, chain=False)
    lines = _message_lines(name, message)
    if isinstance(longrepr, ExceptionChainRepr) and longrepr.reprtraceback.reprentries:
        entry = longrepr.reprtraceback.reprentries[-1]
        if isinstance(entry, ReprEntry):
            kept = [line for line in entry.lines if not line.startswith("E ")]
            indent = next((line[1:len(line) - len(line[1:].lstrip())]
                           for line in entry.lines if line.startswith("E ")), "   ")
            entry.lines = [*kept, *(f"E{indent}{line}" for line in lines)]
            if entry.reprfileloc is not None:
                entry.reprfileloc.message = name
        crash = longrepr.reprcrash
        if crash is None and own:
            crash = ReprFileLocation(str(own[-1].path), own[-1].lineno + 1, "")
            longrepr.reprcrash = crash
            longrepr.chain[-1] = (longrepr.chain[-1][0], crash, longrepr.chain[-1][2])
        if crash is not None:
            crash.message = lines[0]
    report.longrepr = longrepr
