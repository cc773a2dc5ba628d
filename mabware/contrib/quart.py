"""Quart: a Flask-style extension over the pure ASGI middleware.

::

    from quart import Quart
    from mabware import Experiment
    from mabware.contrib.quart import Mabware

    app = Quart(__name__)
    app.config["MABWARE_SECRET_KEYS"] = os.environ["MABWARE_SECRET_KEYS"]  # "new,old"
    mabware = Mabware(app, experiments=[Experiment("headline", ["control", "bold"])])

    @app.get("/")
    async def home():
        headline = mabware.arms()["headline"]
        ...

Settings are ``MABWARE_*`` config keys (see ``mabware.contrib._config``):
``MABWARE_SECRET_KEYS`` (required: a list, or one comma-separated string),
``MABWARE_STORE``, ``MABWARE_COOKIE_NAME``, ``MABWARE_MAX_AGE``,
``MABWARE_REWARDS``, ``MABWARE_BOT_PATTERN``, ``MABWARE_TRUSTED_PROXIES``,
``MABWARE_STRICT``, and ``MABWARE_EXPERIMENTS`` when the constructor gets
none. An unknown ``MABWARE_*`` key raises ``ConfigError`` naming it.

The middleware wraps ``app.asgi_app``, so it sees the server's ASGI
lifespan messages: the engine starts when the server starts serving the app
and is closed (its store flushed) when the server shuts down.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from quart import Quart, request

from mabware.asgi import MabwareMiddleware, Scope
from mabware.assignments import Assignments
from mabware.contrib._config import DEFAULTS, engine_options
from mabware.engine import Engine
from mabware.exceptions import ConfigError

__all__ = ["Mabware"]

_PREFIX = "MABWARE_"


class Mabware:
    """Runs mabware's experiments on a Quart app.

    Args:
        app: the app; or call ``init_app(app)`` later (application factories).
        experiments: the experiments; None reads ``MABWARE_EXPERIMENTS``.
        unit_id: ``scope -> str | None``, the visitor's stable id (see
            ``MabwareMiddleware``).
        consent: ``scope -> bool``; False serves default arms, uncounted.
        **engine_options: ``Engine`` keywords that have no config key
            (``clock``, ``seed``, ``cache_size``, ...); one that has a key
            overrides it. The secret keys must be in ``MABWARE_SECRET_KEYS``.

    Attributes:
        engine: the ``Engine`` built by ``init_app`` (one app per extension).
    """

    engine: Engine

    def __init__(
        self,
        app: Quart | None = None,
        experiments: Any = None,
        *,
        unit_id: Callable[[Scope], str | None] | None = None,
        consent: Callable[[Scope], bool] | None = None,
        **engine_options: Any,
    ) -> None:
        self.experiments = experiments
        self.unit_id = unit_id
        self.consent = consent
        self.engine_options = engine_options
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Quart) -> None:
        """Build the engine from the app's config and wrap ``app.asgi_app``.

        Raises:
            ConfigError: a missing or bad setting; the message says what to set.
        """
        for name, value in DEFAULTS.items():
            app.config.setdefault(_PREFIX + name, value)
        options = {**engine_options(app.config, _PREFIX), **self.engine_options}
        experiments = self.experiments
        if experiments is None:
            experiments = app.config.get(_PREFIX + "EXPERIMENTS")
        self.engine = Engine(experiments, **options)
        app.asgi_app = MabwareMiddleware(  # type: ignore[method-assign,assignment]
            app.asgi_app,  # type: ignore[arg-type]
            engine=self.engine,
            unit_id=self.unit_id,
            consent=self.consent,
        )
        app.extensions["mabware"] = self

    def arms(self) -> Assignments:
        """The current request's assignments (``quart.request.scope["mabware"]``).

        Raises:
            ConfigError: the app was not set up with ``Mabware(app)`` / ``init_app``.
        """
        scope: Scope = request.scope  # type: ignore[assignment]
        try:
            visit: Assignments = scope["mabware"]
        except KeyError:
            raise ConfigError(
                "no mabware assignments on this request: call Mabware(app) or "
                "mabware.init_app(app) on this Quart app"
            ) from None
        return visit
