"""``mabware demo``: a real shop under a real server, learning while you watch.

Three parts, each usable on its own:

* ``mabware.demo.shop``: a small Starlette shop (one product page whose
  headline, price badge and button come from the ``offer`` experiment's
  arm, and a ``/buy`` that rewards it), wrapped by ``MabwareMiddleware`` on
  a ``file:`` store, with the dashboard mounted at ``/mabware/dashboard/``.
  ``create_app`` reads its settings from the environment, so
  ``uvicorn --factory mabware.demo.shop:create_app --workers 2`` runs it.
* ``mabware.demo.traffic``: a loopback-only visitor generator whose
  visitors buy with a hidden rate that depends on the arm they were shown.
* ``mabware.demo.run``: what ``mabware demo`` does: starts uvicorn with
  several workers in its own session, plays the traffic, stops everything,
  and prints what the store learned next to the hidden truth.

Nothing here is imported by the rest of mabware; it needs the ``server``
extra (uvicorn, httpx, and the dashboard's jinja2 and pygal).
"""

from __future__ import annotations

__all__: list[str] = []
