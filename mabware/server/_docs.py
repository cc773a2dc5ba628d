"""``GET /docs``: the OpenAPI document as a page that needs no JavaScript.

Each operation shows its parameters, request schema and answers. A GET
operation has a plain ``<form method="get">``; a form cannot fill a path
segment, so it goes through ``GET /docs/try/{operationId}``, which answers
a 303 to the operation's URL. A POST shows a curl line with an example body
(the schema's ``examples``). Rendered by jinja2 with autoescape on: every
text of the document, ids included, is escaped.
"""

from __future__ import annotations

import json
import re
import shlex
from typing import Any
from urllib.parse import quote, urlencode

import jinja2
from markupsafe import escape
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from mabware.server._problems import ProblemError

_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ info.title }} {{ info.version }}: API</title>
<style>
body{font:15px/1.5 system-ui,sans-serif;max-width:64rem;margin:2rem auto;padding:0 1rem;color:#222}
code,pre{font:13px/1.4 ui-monospace,monospace}
pre{background:#f5f5f5;padding:.6rem;overflow:auto;white-space:pre-wrap;word-break:break-all}
section{border-top:1px solid #ccc;margin-top:1.5rem}h2 code{font-size:1.1rem}
.m{display:inline-block;min-width:3.5rem;font-weight:bold}table{border-collapse:collapse}
td,th{border:1px solid #ddd;padding:.2rem .5rem;text-align:left;vertical-align:top}
form{background:#eef4ff;padding:.6rem}label{display:block;margin:.2rem 0}
</style></head><body>
<h1>{{ info.title }} <small>{{ info.version }}</small></h1>
<p>{{ info.description }}</p>
<p>The machine-readable document: <a href="{{ base }}/openapi.json">/openapi.json</a>
(OpenAPI {{ openapi }}).{% if secured %} This server needs
<code>Authorization: Bearer &lt;token&gt;</code> on every operation but /health;
a browser form cannot send it, so use the curl lines.{% endif %}</p>
<nav><ul>{% for op in operations %}
<li><a href="#{{ op.id }}"><span class="m">{{ op.method }}</span>{{ op.path }}</a>
 {{ op.summary }}</li>{% endfor %}
<li><a href="#schemas">Schemas</a></li></ul></nav>
{% for op in operations %}<section id="{{ op.id }}">
<h2><span class="m">{{ op.method }}</span> <code>{{ op.path }}</code></h2>
<p><strong>{{ op.summary }}</strong>{% if op.description %} {{ op.description }}{% endif %}</p>
{% if op.parameters %}<table><tr><th>parameter</th><th>in</th><th>required</th><th>schema</th>
</tr>{% for p in op.parameters %}<tr><td><code>{{ p.name }}</code></td><td>{{ p.in }}</td>
<td>{{ "yes" if p.required else "no" }}</td><td><code>{{ p.schema }}</code></td></tr>
{% endfor %}</table>{% endif %}
{% if op.body %}<p>Request body ({{ op.body.media_type }}): {{ op.body.schema|safe }}</p>{% endif %}
<p>Answers:</p><ul>{% for r in op.responses %}<li><code>{{ r.status }}</code>
{{ r.description }}{% if r.schema %} ({{ r.schema|safe }}){% endif %}</li>{% endfor %}</ul>
{% if op.method == "GET" %}<form method="get" action="{{ base }}/docs/try/{{ op.id }}">
{% for p in op.parameters if p.in in ("path", "query") %}<label>{{ p.name }}
<input name="{{ p.name }}"{% if p.required %} required{% endif %}></label>{% endfor %}
<button>Send {{ op.method }} {{ op.path }}</button></form>
{% else %}<pre>{{ op.curl }}</pre>{% endif %}
</section>{% endfor %}
<section id="schemas"><h2>Schemas</h2>{% for name, text in schemas %}
<h3 id="schema-{{ name }}">{{ name }}</h3><pre>{{ text }}</pre>{% endfor %}</section>
</body></html>
"""
_ENV = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
_PAGE = _ENV.from_string(_TEMPLATE)
_REF = "#/components/schemas/"


def _schema_link(schema: dict[str, Any]) -> str:
    """A named schema as a link to its section; any other as escaped JSON."""
    name = schema.get("$ref", "").removeprefix(_REF)
    if name:
        safe = escape(name)
        return f'<a href="#schema-{safe}">{safe}</a>'
    return str(escape(json.dumps(schema)))


def _operations(doc: dict[str, Any], base: str, secured: bool) -> list[dict[str, Any]]:
    out = []
    for path, methods in doc["paths"].items():
        for method, op in methods.items():
            request_body: dict[str, Any] = op.get("requestBody") or {}
            body: dict[str, Any] = request_body.get("content", {})
            media_type: str | None = next(iter(body), None)
            schema = body[media_type].get("schema") if media_type is not None else None
            responses = [
                {
                    "status": status,
                    "description": r["description"],
                    "schema": _schema_link(s) if (s := _first_schema(r)) else "",
                }
                for status, r in op["responses"].items()
            ]
            out.append(
                {
                    "id": op["operationId"],
                    "method": method.upper(),
                    "path": path,
                    "summary": op.get("summary", ""),
                    "description": op.get("description", ""),
                    "parameters": [
                        {
                            **p,
                            "required": p.get("required", False),
                            "schema": json.dumps(p["schema"]),
                        }
                        for p in op.get("parameters", [])
                    ],
                    "body": {"media_type": media_type, "schema": _schema_link(schema)}
                    if schema is not None
                    else None,
                    "responses": responses,
                    "curl": _curl(
                        doc, method, base + _example(path, op), media_type, schema, secured
                    ),
                }
            )
    return out


def _first_schema(response: dict[str, Any]) -> dict[str, Any] | None:
    for content in response.get("content", {}).values():
        if "schema" in content:
            schema: dict[str, Any] = content["schema"]
            return schema
    return None


def _example(path: str, op: dict[str, Any]) -> str:
    """``path`` with its parameters' examples in place (a curl line must run as shown)."""
    for p in op.get("parameters", []):
        if p["in"] == "path":
            path = path.replace("{" + p["name"] + "}", quote(p.get("example", p["name"]), safe=""))
    return path


def _curl(
    doc: dict[str, Any],
    method: str,
    url: str,
    media_type: str | None,
    schema: dict[str, Any] | None,
    secured: bool,
) -> str:
    parts = ["curl", "-X", method.upper(), url]
    if secured:
        parts += ["-H", "Authorization: Bearer $MABWARE_TOKEN"]
    if media_type == "application/json" and schema is not None:
        named = doc["components"]["schemas"][schema["$ref"].removeprefix(_REF)]
        example = named.get("examples", [{}])[0]
        parts += ["-H", "Content-Type: application/json", "-d", json.dumps(example)]
    elif media_type is not None:
        parts += ["-H", f"Content-Type: {media_type}", "--data-binary", "@push.msgpack"]
    # the placeholder stays a shell variable, everything else is quoted
    return " ".join(shlex.quote(p) for p in parts).replace(
        "'Authorization: Bearer $MABWARE_TOKEN'", '"Authorization: Bearer $MABWARE_TOKEN"'
    )


def render(doc: dict[str, Any], base: str, server: str) -> str:
    """The page for ``doc``.

    Args:
        doc: the OpenAPI document.
        base: the path of the server's root for links (``""``, or a mount prefix).
        server: the server's absolute URL for the curl lines.
    """
    secured = bool(doc.get("security"))
    return _PAGE.render(
        info=doc["info"],
        openapi=doc["openapi"],
        secured=secured,
        base=base,
        operations=_operations(doc, server, secured),
        schemas=[(n, json.dumps(s, indent=1)) for n, s in doc["components"]["schemas"].items()],
    )


async def page(request: Request, doc: dict[str, Any]) -> Response:
    """``GET /docs``."""
    server = str(request.base_url).rstrip("/")
    return HTMLResponse(render(doc, _base(request), server))


async def try_operation(request: Request, doc: dict[str, Any]) -> Response:
    """``GET /docs/try/{operation_id}``: 303 to the operation's URL, form fields filled in."""
    wanted = request.path_params["operation_id"]
    for path, methods in doc["paths"].items():
        op = methods.get("get")
        if op is None or op["operationId"] != wanted:
            continue
        fields = request.query_params
        query = {}
        for p in op.get("parameters", []):
            value = fields.get(p["name"], "")
            if p["in"] == "path":  # an empty segment would be another path: 404 here instead
                if not value:
                    raise ProblemError(422, f"the form needs {p['name']}")
                path = path.replace("{" + p["name"] + "}", quote(value, safe=""))
            elif p["in"] == "query" and value:
                query[p["name"]] = value
        url = _base(request) + path + ("?" + urlencode(query) if query else "")
        return RedirectResponse(url, status_code=303)
    raise ProblemError(404, f"no GET operation {wanted[:64]!r}")


def _base(request: Request) -> str:
    # root_path: the app may be mounted under a prefix behind a proxy
    return re.sub(r"/+$", "", request.scope.get("root_path", ""))
