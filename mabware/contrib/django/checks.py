"""System checks ``mabware.E001``-``E005`` and ``W001``: each names what to fix.

E001 no ``MABWARE`` dict; E002 ``SECRET_KEYS`` missing or unusable; E003
``EXPERIMENTS`` not a list of ``Experiment`` (or a dotted path that does not
import); E004 ``STORE`` not a store URL; E005 any other bad setting (the
engine's own message); W001 the middleware is not in ``MIDDLEWARE``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from django.conf import settings
from django.core import checks

from mabware.contrib._config import engine_options
from mabware.contrib.django.middleware import build_engine, load_experiments, mabware_settings
from mabware.cookies import CookieCodec
from mabware.exceptions import ConfigError
from mabware.experiment import Experiment
from mabware.store import open_store

MIDDLEWARE_PATHS = (
    "mabware.contrib.django.MabwareMiddleware",
    "mabware.contrib.django.middleware.MabwareMiddleware",
)
HINTS = {  # code -> (what the message is about, how to fix it)
    "E001": ("", 'MABWARE = {"EXPERIMENTS": [...], "SECRET_KEYS": [...]} in settings'),
    "E002": ("MABWARE['SECRET_KEYS']: ", "run `mabware keygen`; put its key first in the list"),
    "E003": ("", "MABWARE['EXPERIMENTS'] = [Experiment(...), ...] or 'myproject.module.LIST'"),
    "E004": ("MABWARE['STORE']: ", "use one of the store URLs the message lists"),
    "E005": ("settings.MABWARE: ", "fix or remove the setting the message names"),
}


def check_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Every problem with ``settings.MABWARE`` and ``MIDDLEWARE``."""
    found = _error("E001", mabware_settings)
    if not found:
        conf = mabware_settings()
        found = [
            *_error("E002", lambda: _secret_keys(conf)),
            *_error("E003", lambda: _experiments(conf)),
            *_error("E004", lambda: open_store(conf.get("STORE", "memory:"), [])),
        ] or _error("E005", lambda: build_engine(conf))
    if not set(MIDDLEWARE_PATHS).intersection(settings.MIDDLEWARE):
        found.append(
            checks.Warning(
                "MabwareMiddleware is not in settings.MIDDLEWARE: requests get no arms",
                hint=f"add {MIDDLEWARE_PATHS[0]!r} to MIDDLEWARE",
                id="mabware.W001",
            )
        )
    return found


def _secret_keys(conf: Mapping[str, Any]) -> None:
    keys = engine_options({"SECRET_KEYS": conf.get("SECRET_KEYS")}, prefix="")["secret_keys"]
    CookieCodec(keys)


def _experiments(conf: Mapping[str, Any]) -> None:
    experiments = load_experiments(conf)
    if (
        not isinstance(experiments, list | tuple)
        or not experiments
        or not all(isinstance(e, Experiment) for e in experiments)
    ):
        raise ConfigError(
            "MABWARE['EXPERIMENTS'] must be a non-empty list of mabware.Experiment "
            f"(or the dotted path of one), got {experiments!r}"
        )


def _error(code: str, check: Callable[[], object]) -> list[checks.CheckMessage]:
    try:
        check()
    except ConfigError as exc:
        about, hint = HINTS[code]
        return [checks.Error(f"{about}{exc}", hint=hint, id=f"mabware.{code}")]
    return []
