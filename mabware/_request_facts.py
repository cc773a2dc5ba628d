"""Facts about a request the engine needs, from its raw headers: plain functions.

The middlewares pass header strings; these turn them into what the engine
decides on (our cookie's value, whether the visitor is a bot, whether the
request came over https), with no framework objects involved.
"""

from __future__ import annotations

import re
from collections.abc import Collection

#: User agents of crawlers, link previewers and uptime monitors (case-insensitive).
DEFAULT_BOT_PATTERN = (
    r"bot\b|bot/|crawl|spider|slurp|mediapartners|facebookexternalhit|bingpreview|"
    r"embedly|lighthouse|pingdom|uptimerobot"
)
_BOT_CACHE_SIZE = 1024


class BotTest:
    """``bot_test(user_agent) -> bool``: a regular expression with a small cache.

    Args:
        pattern: searched case-insensitively; None says nobody is a bot.
    """

    def __init__(self, pattern: str | None) -> None:
        self._search = re.compile(pattern, re.IGNORECASE).search if pattern else None
        self._seen: dict[str, bool] = {}

    def __call__(self, user_agent: str) -> bool:
        if self._search is None or not user_agent:
            return False
        known = self._seen.get(user_agent)
        if known is None:
            known = self._search(user_agent) is not None
            if len(self._seen) >= _BOT_CACHE_SIZE:
                self._seen.clear()  # cheap, and the common agents come right back
            self._seen[user_agent] = known
        return known


def is_secure(
    scheme: str, client: str | None, forwarded_proto: str | None, trusted: Collection[str]
) -> bool:
    """https, or ``X-Forwarded-Proto: https`` from a trusted proxy (anyone can send it)."""
    if scheme in ("https", "wss"):
        return True
    if forwarded_proto and client in trusted:
        return forwarded_proto.split(",")[0].strip().lower() == "https"
    return False


def cookie_value(header: str | None, prefix: str) -> str | None:
    """Our cookie's value in a ``Cookie`` header (``prefix`` is ``"name="``), or None."""
    if not header:
        return None
    at = header.find(prefix)
    while at != -1:
        if at == 0 or header[at - 1] in "; ":  # a whole name, not the tail of another
            end = header.find(";", at)
            value = header[at + len(prefix) : end if end != -1 else None].strip()
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]  # our tokens need no quoting, but a proxy may add it
            return value
        at = header.find(prefix, at + 1)
    return None
