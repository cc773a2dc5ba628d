"""``MabwareMiddleware``: the engine around every Django request, sync or async.

Django's own pattern for a middleware that runs in either mode: sync when
the chain below it is sync (WSGI), a coroutine when it is async (ASGI), so
it adds no sync/async switch of its own. It calls the sans-IO engine directly:
``request.mabware`` is the visit; the cookie goes into ``response.cookies``
(parsed from the engine's Set-Cookie value, so its value and attributes are
the engine's, it is sent once, and Django's test client keeps it); status
and latency (until the view returns; a streamed body is not timed) feed
the arm SLOs.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.core.signals import setting_changed
from django.utils.module_loading import import_string

from mabware.assignments import Assignments
from mabware.contrib._config import DEFAULTS, engine_options
from mabware.engine import Engine
from mabware.exceptions import ConfigError

_engine: Engine | None = None
_lock = threading.Lock()


def mabware_settings() -> Mapping[str, Any]:
    """``settings.MABWARE``; ConfigError when it is not set."""
    conf = getattr(settings, "MABWARE", None)
    if not isinstance(conf, Mapping):
        raise ConfigError(
            'set settings.MABWARE = {"EXPERIMENTS": [...], "SECRET_KEYS": [...]} '
            f"(a dict), got {conf!r}"
        )
    return conf


def load_experiments(conf: Mapping[str, Any]) -> Any:
    """``conf["EXPERIMENTS"]``, importing it when it is a dotted path."""
    experiments = conf.get("EXPERIMENTS")
    if isinstance(experiments, str):
        try:
            experiments = import_string(experiments)
        except ImportError as exc:
            raise ConfigError(
                f"MABWARE['EXPERIMENTS'] = {experiments!r} cannot be imported: {exc}",
                payload=experiments,
                original_error=exc,
            ) from exc
    return experiments


def build_engine(conf: Mapping[str, Any] | None = None) -> Engine:
    """A new ``Engine`` from ``conf`` (default: ``settings.MABWARE``)."""
    conf = mabware_settings() if conf is None else conf
    return Engine(load_experiments(conf), **engine_options({**DEFAULTS, **conf}, prefix=""))


def get_engine() -> Engine:
    """This process's engine, built (and started) on first use."""
    global _engine
    with _lock:
        if _engine is None:
            _engine = build_engine()
            _engine.start()
        return _engine


def _settings_changed(*, setting: str, **kwargs: Any) -> None:
    global _engine
    with _lock:
        if setting == "MABWARE" and _engine is not None:
            _engine.close()
            _engine = None


setting_changed.connect(_settings_changed)


class MabwareMiddleware:
    """Assign arms to every request: ``request.mabware`` is its ``Assignments``."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        self.get_response = get_response
        self.engine = get_engine()
        self.async_mode = iscoroutinefunction(get_response)
        if self.async_mode:  # Django's way to say "await me" without swapping __call__
            markcoroutinefunction(self)

    def __call__(self, request: Any) -> Any:
        if self.async_mode:
            return self.__acall__(request)
        started, visit = time.perf_counter(), self._begin(request)
        return self._end(visit, started, self.get_response(request))

    async def __acall__(self, request: Any) -> Any:
        started, visit = time.perf_counter(), self._begin(request)
        return self._end(visit, started, await self.get_response(request))

    def _begin(self, request: Any) -> Assignments:
        engine, meta = self.engine, request.META
        request.mabware = visit = engine.begin(
            meta.get("HTTP_COOKIE"),
            secure=engine.is_secure(
                request.scheme, meta.get("REMOTE_ADDR"), meta.get("HTTP_X_FORWARDED_PROTO")
            ),
            user_agent=meta.get("HTTP_USER_AGENT", ""),
            path=request.path_info,
        )
        return visit

    def _end(self, visit: Assignments, started: float, response: Any) -> Any:
        set_cookie = self.engine.respond(visit, response.status_code)
        if set_cookie is not None:
            response.cookies.load(set_cookie)
        self.engine.finish(visit, response.status_code, time.perf_counter() - started)
        return response
