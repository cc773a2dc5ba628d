"""Framework adapters: thin shells over ``mabware.engine`` (no logic of their own).

One module per framework; each imports its framework, so import only the
one you use: ``mabware.contrib.starlette``, ``.fastapi``, ``.quart``,
``.flask``, ``.django``.
"""
