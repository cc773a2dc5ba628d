"""Django adapter: ``MabwareMiddleware``, the ``MABWARE`` setting, system checks.

::

    INSTALLED_APPS = [..., "mabware.contrib.django"]           # system checks mabware.*
    MIDDLEWARE = [..., "mabware.contrib.django.MabwareMiddleware"]
    MABWARE = {
        "EXPERIMENTS": "myproject.experiments.EXPERIMENTS",     # or a list of Experiment
        "SECRET_KEYS": [os.environ["MABWARE_SECRET_KEY"]],      # `mabware keygen`
        "STORE": "file:/var/lib/myproject/mabware.state",
    }

    def home(request):
        arm = request.mabware["headline"]                       # arm.arm, arm.value
        request.mabware.reward("headline", 1.0)

``MABWARE`` takes the keys of ``mabware.contrib._config.SETTINGS`` plus
``EXPERIMENTS``; an unknown key is an error. The engine is built once per
process (``get_engine()``) and rebuilt when a test overrides ``MABWARE``.
"""

from mabware.contrib.django.middleware import MabwareMiddleware, build_engine, get_engine

__all__ = ["MabwareMiddleware", "build_engine", "get_engine"]
