"""A one-file Django project with two experiments; from examples/ run
``gunicorn -w 1 django_app:application`` (WSGI) or ``uvicorn django_app:asgi``.

GET / shows the visitor's headline, GET /buy rewards it, GET /stats is this
process's report. One worker: the ``memory:`` store is per process.
"""

import os

from django.conf import settings
from django.core.asgi import get_asgi_application
from django.core.wsgi import get_wsgi_application
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path
from django.utils.html import format_html

from mabware import Experiment
from mabware.contrib.django import get_engine
from mabware.testing import TEST_KEYS

settings.configure(
    ALLOWED_HOSTS=["127.0.0.1", "localhost"],
    SECRET_KEY=os.environ.get("DJANGO_SECRET_KEY", "demo-only"),  # Django's, not mabware's
    ROOT_URLCONF=__name__,
    INSTALLED_APPS=["mabware.contrib.django"],  # system checks
    MIDDLEWARE=["mabware.contrib.django.MabwareMiddleware"],
    MABWARE={
        "EXPERIMENTS": [
            Experiment(
                "headline",
                {"control": "Welcome back", "bold": "Big sale today"},
                default_arm="control",
            ),
            Experiment("button", {"green": "#2e7d32", "orange": "#ef6c00"}),
        ],
        # DEMO FALLBACK: TEST_KEYS are public. Never use them in production: set
        # MABWARE_SECRET_KEY to the output of `mabware keygen`.
        "SECRET_KEYS": [os.environ.get("MABWARE_SECRET_KEY", TEST_KEYS[0])],
        "STORE": "memory:",
    },
)


def home(request: HttpRequest) -> HttpResponse:
    headline, button = request.mabware["headline"], request.mabware["button"]
    page = '<h1>{}</h1><a href="/buy" style="background: {}">Buy now</a><p>arm={}</p>'
    return HttpResponse(format_html(page, headline.value, button.value, headline.arm))


def buy(request: HttpRequest) -> HttpResponse:
    request.mabware.reward("headline", 1.0)
    return HttpResponse("Thank you!")


def stats(request: HttpRequest) -> JsonResponse:
    return JsonResponse(get_engine().report())


urlpatterns = [path("", home), path("buy", buy), path("stats", stats)]
application = app = get_wsgi_application()
asgi = get_asgi_application()
