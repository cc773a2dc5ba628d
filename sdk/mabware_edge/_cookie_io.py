"""Reading the visitor's cookie from a request and writing it back.

Both ways keep the middleware's rules, so one visitor can move between the
middleware and the SDK: a refused cookie is treated as absent; an entry is
honoured while its experiment version matches and its arm still exists;
entries of experiments this process does not know are written back as they
were; the issue time is kept; the cookie is rewritten only when it changes;
and the ``rewarded`` flag of a ``once`` decision travels in it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mabware_edge._decision import COOKIE, COUNTED, Cookie, CookieEntry, Decision

if TYPE_CHECKING:
    from mabware_edge._cookie import CookieCodec
    from mabware_edge._events import Events
    from mabware_edge._feed import View
    from mabware_edge._ledger import Ledger


def token_of(name: str, header: str | bytes | None) -> str | None:
    """The value of cookie ``name`` in a Cookie header, or ``header`` if it is a bare value."""
    if header is None:
        return None
    text = header.decode("latin-1") if isinstance(header, bytes) else header
    if "=" not in text:  # a token never holds "=": this is the value itself
        return text.strip() or None
    for part in text.split(";"):
        key, _, value = part.partition("=")
        if key.strip() == name:
            return value.strip().strip('"')  # the first one: browsers send the most specific first
    return None


def read(
    codec: CookieCodec, header: str | bytes | None, view: View | None, log: Events, ledger: Ledger
) -> Cookie:
    """``EdgeClient.read_cookie``.

    A ``once`` decision whose cookie says it was rewarded is noted as such,
    so a second reward is a duplicate wherever the first one was counted.
    """
    token = token_of(codec.name, header)
    if token is None:
        return Cookie({})
    decoded = codec.decode(token)
    if decoded.reason is not None:
        log(decoded.reason, f"cookie ignored: {decoded.reason}")
        return Cookie({}, token=token, reason=decoded.reason)
    honoured = {}
    experiments = view.experiments if view is not None else {}
    seq = view.seq if view is not None else None
    for name, entry in decoded.entries.items():
        e = experiments.get(name)
        if e is not None and entry.version == e.version and entry.arm in e.index:
            i = e.index[entry.arm]
            if entry.rewarded:
                with ledger.lock:
                    ledger.mark_rewarded(entry.decision)
            honoured[name] = Decision(
                name,
                entry.arm,
                e.payloads[i],
                entry.decision,
                e.allocation[i],
                seq,
                COOKIE,
                e.version,
                entry.assigned,
            )
    return Cookie(
        honoured,
        token=token,
        issued=decoded.issued,
        entries=decoded.entries,
        rotated=decoded.rotated,
    )


def header(
    codec: CookieCodec,
    decisions: list[Decision],
    cookie: Cookie | None,
    view: View | None,
    ledger: Ledger,
    now: int,
    secure: bool,
    errors: Events,
) -> str | None:
    """``EdgeClient.cookie_header``."""
    valid = cookie is not None and cookie.token is not None and cookie.reason is None
    before = dict(cookie.entries) if cookie is not None and valid else {}
    entries = dict(before)
    for d in decisions:
        if d.reason in COUNTED and d.arm is not None and d.version is not None:
            old = entries.get(d.experiment)
            kept = old is not None and old.decision == d.decision_id and old.rewarded
            entries[d.experiment] = CookieEntry(d.arm, d.version, d.decision_id, d.assigned, kept)
    with ledger.lock:  # a once reward counted here shows in the cookie
        for name, entry in entries.items():
            if not entry.rewarded and ledger.rewarded(entry.decision):
                entries[name] = entry._replace(rewarded=True)
    rotated = cookie is not None and cookie.rotated
    if (valid and entries == before and not rotated) or (not entries and cookie is None):
        return None
    if not entries and cookie is not None and cookie.token is None:
        return None  # no cookie came, none is needed
    issued = cookie.issued if cookie is not None and valid else now
    known = view.experiments if view is not None else {}
    token, _, dropped = codec.fit(issued, entries, known=known, secure=secure)
    if dropped:
        errors("cookie:dropped", f"{dropped} cookie entries dropped to fit 4093 bytes")
    return codec.header(token, secure=secure)
