"""Settings from a framework's configuration: ``MABWARE_*`` keys or a ``MABWARE`` dict.

Flask and Quart read ``app.config["MABWARE_SECRET_KEYS"]`` and friends;
Django reads ``settings.MABWARE = {"SECRET_KEYS": ...}``. Both map onto the
``Engine`` keywords here, so every framework accepts the same settings.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mabware.exceptions import ConfigError

#: setting name (after the prefix) -> Engine keyword
SETTINGS: dict[str, str] = {
    "SECRET_KEYS": "secret_keys",
    "STORE": "store",
    "COOKIE_NAME": "cookie_name",
    "MAX_AGE": "max_age",
    "REWARDS": "rewards",
    "BOT_PATTERN": "bot_pattern",
    "TRUSTED_PROXIES": "trusted_proxies",
    "STRICT": "strict",
}

#: defaults a framework config gets with ``setdefault`` (the Engine's own)
DEFAULTS: dict[str, Any] = {"STORE": "memory:", "COOKIE_NAME": "mabware", "STRICT": False}


def engine_options(config: Mapping[str, Any], prefix: str = "MABWARE_") -> dict[str, Any]:
    """``Engine`` keywords from the config keys that are set.

    ``SECRET_KEYS`` may be a list or one comma-separated string (handy in
    an environment variable). Unknown ``MABWARE_*`` keys raise ConfigError
    naming them, so a typo does not silently fall back to a default.
    """
    options: dict[str, Any] = {}
    known = {prefix + name for name in SETTINGS} | {prefix + "EXPERIMENTS"}
    unknown = sorted(k for k in config if k.startswith(prefix) and k not in known)
    if unknown:
        raise ConfigError(
            f"unknown mabware setting(s) {unknown}; known: {sorted(known)}", payload=unknown
        )
    for name, keyword in SETTINGS.items():
        if prefix + name in config:
            options[keyword] = config[prefix + name]
    keys = options.get("secret_keys")
    if isinstance(keys, str):
        options["secret_keys"] = [k.strip() for k in keys.split(",") if k.strip()]
    if not options.get("secret_keys"):
        raise ConfigError(
            f"set {prefix}SECRET_KEYS to a list of cookie keys (newest first); "
            "`mabware keygen` prints a fresh one"
        )
    return options
