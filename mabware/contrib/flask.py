"""Flask extension: ``Mabware(app)``, ``MABWARE_*`` config, Flask-MAB style decorators.

::

    mab = Mabware(experiments=[headline])        # or mab.add_bandit("headline", headline)
    mab.init_app(app)                            # app.config["MABWARE_SECRET_KEYS"] = [...]

    @app.get("/")
    @mab.choose_arm("headline")                  # the arm's value, as keyword `headline`
    def home(headline): ...

    @app.post("/buy")
    @mab.reward_endpt("headline", 1.0)           # rewarded when the view answers < 400
    def buy(): ...

``init_app`` wraps ``app.wsgi_app`` in ``MabwareWSGIMiddleware`` (so
``request.environ["mabware"]``, or ``mab.arms()``, behaves as in any WSGI
app). The engine is built at the app's first request, so an app factory may
configure after ``init_app``. Settings are ``MABWARE_*`` config keys (as for
Quart); experiments come from the constructor, ``add_bandit`` and
``MABWARE_EXPERIMENTS``, all together.
"""

from __future__ import annotations

import functools
import threading
import weakref
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar, cast

from flask import Flask, current_app, request

from mabware.assignments import Assignments
from mabware.contrib._config import DEFAULTS, SETTINGS, engine_options
from mabware.engine import Engine
from mabware.exceptions import ConfigError, RewardError
from mabware.experiment import Experiment
from mabware.wsgi import MabwareWSGIMiddleware

__all__ = ["Mabware"]

View = TypeVar("View", bound=Callable[..., Any])
_KEY_FOR = {keyword: f"MABWARE_{name}" for name, keyword in SETTINGS.items()}


class Mabware:
    """Run mabware experiments in a Flask app.

    Args:
        app: the app, or None to call ``init_app`` later (app factories).
        experiments: experiments to run; more with ``add_bandit``.
        unit_id: ``environ -> str | None``, the visitor's stable id (see
            ``MabwareWSGIMiddleware``).
        consent: ``environ -> bool``; False serves default arms, uncounted.
        **engine_options: ``Engine`` settings; they override the config
            (``secret_keys=`` for ``MABWARE_SECRET_KEYS``, ``seed``, ...).
    """

    def __init__(
        self,
        app: Flask | None = None,
        *,
        experiments: Sequence[Experiment] | None = None,
        unit_id: Callable[[dict[str, Any]], str | None] | None = None,
        consent: Callable[[dict[str, Any]], bool] | None = None,
        **engine_options: Any,
    ) -> None:
        self._experiments = list(experiments or ())
        self.unit_id, self.consent = unit_id, consent
        self._options = engine_options
        self._used: list[tuple[str, float | None]] = []  # decorator targets, checked at build
        self._engines: weakref.WeakKeyDictionary[Flask, Engine] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Register on ``app``: config defaults, ``app.extensions["mabware"]``, the middleware."""
        for name, value in DEFAULTS.items():
            app.config.setdefault(f"MABWARE_{name}", value)
        app.extensions["mabware"] = self
        target: Any = app  # Flask documents replacing wsgi_app; mypy sees a method
        target.wsgi_app = _Lazy(self, app)

    def add_bandit(self, name: str, experiment: Experiment) -> None:
        """Add an experiment (Flask-MAB's ``add_bandit``); before the first request only."""
        if self._engines:
            raise ConfigError(
                f"add_bandit({name!r}) after the first request: the engine is built then; "
                "add experiments before the app serves (e.g. in the app factory)"
            )
        if getattr(experiment, "name", None) != name:
            raise ConfigError(
                f"add_bandit({name!r}, ...) got an experiment named "
                f"{getattr(experiment, 'name', experiment)!r}; the names must match",
                payload=name,
            )
        self._experiments.append(experiment)

    @property
    def engine(self) -> Engine:
        """The current app's ``Engine`` (inside an app context; built on first use)."""
        return self._engine(cast(Any, current_app)._get_current_object())

    def arms(self) -> Assignments:
        """The current request's assignments (``request.environ["mabware"]``)."""
        try:
            arms: Assignments = request.environ["mabware"]
        except KeyError:
            raise ConfigError(
                "no mabware assignments on this request: call Mabware(app) or "
                "mab.init_app(app) on this Flask app"
            ) from None
        return arms

    def choose_arm(self, experiment: str) -> Callable[[View], View]:
        """Pass the visitor's arm value of ``experiment`` to the view as that keyword."""
        self._used.append((experiment, None))

        def decorate(view: View) -> View:
            @functools.wraps(view)
            def choose(*args: Any, **kwargs: Any) -> Any:
                kwargs[experiment] = self.arms()[experiment].value
                return current_app.ensure_sync(view)(*args, **kwargs)

            return choose  # type: ignore[return-value]

        return decorate

    def reward_endpt(self, experiment: str, value: float = 1.0) -> Callable[[View], View]:
        """Reward ``experiment`` when this request's response is below 400.

        A view that raises or answers an error rewards nothing (Flask-MAB
        queued the reward before the view ran, whatever it answered). The
        value must lie in the experiment's ``reward_range``: checked when the
        engine is built.
        """
        self._used.append((experiment, value))

        def decorate(view: View) -> View:
            @functools.wraps(view)
            def reward(*args: Any, **kwargs: Any) -> Any:
                self.arms().reward_on_success(experiment, value)  # applied if the response < 400
                return current_app.ensure_sync(view)(*args, **kwargs)

            return reward  # type: ignore[return-value]

        return decorate

    def _engine(self, app: Flask) -> Engine:
        with self._lock:
            engine = self._engines.get(app)
            if engine is None:
                engine = self._engines[app] = self._build(app)
            return engine

    def _build(self, app: Flask) -> Engine:
        keyed = {_KEY_FOR[k]: v for k, v in self._options.items() if k in _KEY_FOR}
        options = engine_options({**app.config, **keyed})
        options.update((k, v) for k, v in self._options.items() if k not in _KEY_FOR)
        experiments = [*app.config.get("MABWARE_EXPERIMENTS", ()), *self._experiments]
        engine = Engine(experiments, **options)
        for name, value in self._used:
            if name not in engine.experiments:
                raise ConfigError(
                    f"a mabware decorator names experiment {name!r}, which is not registered; "
                    f"experiments are {sorted(engine.experiments)}",
                    payload=name,
                )
            try:
                if value is not None:
                    engine.experiments[name].check_reward(value)
            except RewardError as exc:
                raise ConfigError(f"reward_endpt({name!r}, {value!r}): {exc}") from exc
        return engine


class _Lazy:
    """``app.wsgi_app`` until the first request builds the engine, then the middleware."""

    def __init__(self, ext: Mabware, app: Flask) -> None:
        self.ext, self.app, self.inner = ext, app, app.wsgi_app
        self.middleware: MabwareWSGIMiddleware | None = None

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if self.middleware is None:  # a race builds two wrappers of one engine: harmless
            engine = self.ext._engine(self.app)
            self.middleware = MabwareWSGIMiddleware(
                self.inner, engine=engine, unit_id=self.ext.unit_id, consent=self.ext.consent
            )
        return self.middleware(environ, start_response)
