"""Reading JSON request bodies strictly: every refusal names the field.

The REST API's bodies are small JSON objects. What a lenient parser lets
through, this module refuses with a problem that names the field, the
value received and what is allowed (RFC 9457 extension members ``field``,
``received``, ``allowed``):

* ``NaN``, ``Infinity``, ``-Infinity`` (Python's ``json`` accepts them) and
  numbers that overflow a float (``1e999``): 422;
* a number sent as a string (``"0.5"``), ``true`` / ``false`` where a
  number is expected (a ``bool`` is an ``int`` in Python), ``null``: 422;
* a body over its limit: 413, decided while the body streams in, so a
  client streaming a gigabyte costs the server at most the limit in memory;
* a content type other than ``application/json``: 415.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any, NoReturn, TypeGuard

from starlette.requests import Request

from mabware.server._problems import INVALID_FIELD, ProblemError

#: the largest JSON body accepted on the REST API (/reward, /decision, ...), in bytes
MAX_JSON_BODY = 64 * 1024
JSON = "application/json"
#: the deepest nesting of a JSON body's members (the same bound as a /sync push)
MAX_DEPTH = 32

# What a string may hold, as JSON Schema patterns that /openapi.json publishes
# and this module checks with ``re``: one rule for both, so a client that
# follows the schema is never refused for a character. (``str.isprintable``
# cannot be written as a pattern: it depends on which code points the Unicode
# database has assigned.) Control characters (C0, DEL, C1) break logs,
# headers and pages. Lone surrogates are refused in every member of a body
# before any of this (``_problem_inside``); a query string cannot carry them.
_NO_CONTROL = r"\x00-\x1f\x7f-\x9f"
#: any text: no control character
TEXT_PATTERN = rf"^[^{_NO_CONTROL}]*$"
#: an experiment or arm id: text without "/" (an id must be one URL path segment)
ID_PATTERN = rf"^[^{_NO_CONTROL}/]*$"
_TEXT = re.compile(TEXT_PATTERN)
_ID = re.compile(ID_PATTERN)
_SURROGATE = re.compile(r"[\ud800-\udfff]")


class NonFinite(str):
    """A number JSON cannot carry (``NaN``, ``Infinity``, ``1e999``), kept as its text.

    Parsing goes on, so the refusal can name the field that held it (422)
    rather than failing the whole body (400).
    """


def _float(text: str) -> float | NonFinite:
    value = float(text)
    return value if math.isfinite(value) else NonFinite(text)


async def read_body(request: Request, limit: int, what: str) -> bytes:
    """The body, refused with 413 as soon as it is known to exceed ``limit`` bytes."""
    too_large = ProblemError(413, f"{what} is at most {limit} bytes")
    declared = request.headers.get("Content-Length")
    if declared is not None:
        if not declared.isdigit():
            raise ProblemError(400, f"Content-Length must be a number of bytes, got {declared!r}")
        if int(declared) > limit:
            raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():  # a chunked body declares no length
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def check_media_type(request: Request, expected: str) -> None:
    """415 unless the request's Content-Type is ``expected`` (parameters ignored)."""
    media_type = request.headers.get("Content-Type", "").partition(";")[0].strip().lower()
    if media_type != expected:
        got = repr(media_type) if media_type else "none"
        raise ProblemError(
            415, f"the body must be {expected}, got {got}", headers={"Accept-Post": expected}
        )


async def json_object(request: Request, *, limit: int = MAX_JSON_BODY) -> dict[str, Any]:
    """The request's JSON object body; 413 / 415 / 400 / 422 otherwise.

    No body at all (and so no Content-Type) is a missing body, 422; a body
    of another type, or one that does not say its type, is a 415.
    """
    typed = "Content-Type" in request.headers
    if typed:
        check_media_type(request, JSON)
    body = await read_body(request, limit, "a JSON body")
    if not typed:
        if not body:
            missing("(body)", "a JSON object")
        check_media_type(request, JSON)
    try:
        doc = json.loads(body, parse_constant=NonFinite, parse_float=_float)
    except RecursionError:
        raise ProblemError(400, "the JSON body is nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProblemError(400, f"the body is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        invalid("(body)", doc, "a JSON object")
    for field, value in doc.items():
        problem = _problem_inside(field, value)
        if problem is not None:
            safe = field.encode("utf-8", "backslashreplace").decode()
            invalid(safe, None if safe != field else value, problem)
    return doc


def _problem_inside(field: str, value: Any) -> str | None:
    """What no answer could carry inside one member, or None.

    ``"\\ud800"`` is valid JSON, but no UTF-8 answer (nor a problem that
    quotes it) could echo a lone surrogate; and a value nested deeper than
    ``MAX_DEPTH`` is no settings document, only a way to make every later
    ``json.dumps`` recurse. Iterative, so the check itself cannot recurse.
    """
    stack: list[tuple[Any, int]] = [(field, 0), (value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            return f"a value at most {MAX_DEPTH} levels deep"
        if isinstance(item, str):
            if _SURROGATE.search(item) is not None:
                return "text without lone surrogates (\\ud800-\\udfff)"
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
        elif isinstance(item, dict):
            stack.extend((k, depth + 1) for k in item)
            stack.extend((v, depth + 1) for v in item.values())
    return None


def invalid(field: str, received: Any, allowed: str, *, status: int = 422) -> NoReturn:
    """Raise the problem for one bad field."""
    shown = _shown(received)
    raise ProblemError(
        status,
        f"{field}: expected {allowed}, got {shown}",
        type=INVALID_FIELD,
        title="Invalid field",
        extra={"field": field, "received": shown, "allowed": allowed},
    )


def missing(field: str, allowed: str) -> NoReturn:
    """Raise the problem for a required field that is absent."""
    raise ProblemError(
        422,
        f"{field} is required: {allowed}",
        type=INVALID_FIELD,
        title="Invalid field",
        extra={"field": field, "received": None, "allowed": allowed},
    )


def _shown(value: Any) -> str:
    """A short JSON rendering of what the client sent (never the whole of a big value)."""
    if isinstance(value, NonFinite):
        text = str(value)
    else:
        try:
            text = json.dumps(value, allow_nan=True)
        except (TypeError, ValueError):
            text = repr(value)
        except RecursionError:  # json.loads nests deeper than json.dumps can from here
            text = "(nested too deeply to show)"
    return text if len(text) <= 80 else text[:77] + "..."


def string(
    doc: Mapping[str, Any],
    field: str,
    *,
    required: bool = True,
    max_length: int = 120,
    ident: bool = False,
) -> str | None:
    """A string of 1-``max_length`` characters: ``TEXT_PATTERN``, or ``ID_PATTERN`` if ``ident``."""
    allowed = _string_rule(max_length, ident)
    if field not in doc:
        if required:
            missing(field, allowed)
        return None
    value = doc[field]
    if not _is_string(value, max_length, ident):
        invalid(field, value, allowed)
    return value


def _string_rule(max_length: int, ident: bool) -> str:
    what = "control characters or '/'" if ident else "control characters"
    return f"a string of 1-{max_length} characters, no {what}"


def _is_string(value: Any, max_length: int, ident: bool) -> TypeGuard[str]:
    return (
        type(value) is str
        and 0 < len(value) <= max_length
        and (_ID if ident else _TEXT).fullmatch(value) is not None  # $ would pass a final \n
    )


def number(
    doc: Mapping[str, Any],
    key: str,
    low: float = -math.inf,
    high: float = math.inf,
    *,
    field: str | None = None,
    low_open: bool = False,
) -> float:
    """A finite JSON number in ``[low, high]`` (not a string, not a boolean).

    ``field`` names the member in a refusal (default: ``key``); ``low_open``
    excludes ``low`` itself.
    """
    field = field or key
    allowed = _number_rule(low, high, low_open)
    if key not in doc:
        missing(field, allowed)
    value = doc[key]
    if isinstance(value, bool) or not isinstance(value, int | float):
        invalid(field, value, allowed)  # NonFinite is a str: refused here too
    try:
        as_float = float(value)
    except OverflowError:  # an integer too large for a float
        invalid(field, value, allowed)
    if not math.isfinite(as_float) or not low <= as_float <= high or (low_open and as_float == low):
        invalid(field, value, allowed)
    return as_float


def _number_rule(low: float, high: float, low_open: bool) -> str:
    if math.isinf(low) and math.isinf(high):
        return "a number"
    if math.isinf(high):
        return f"a number {'>' if low_open else '>='} {low:g}"
    return f"a number in {'(' if low_open else '['}{low:g}, {high:g}]"


def integer(doc: Mapping[str, Any], key: str, low: int, *, field: str | None = None) -> int:
    """A JSON integer ``>= low``: ``3`` or ``3.0`` (JSON Schema's integer), not ``true``."""
    field = field or key
    allowed = f"an integer >= {low}"
    if key not in doc:
        missing(field, allowed)
    value = doc[key]
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if type(value) is not int or value < low:
        invalid(field, doc[key], allowed)
    return value


def string_list(
    doc: Mapping[str, Any],
    field: str,
    *,
    min_items: int,
    max_items: int = 100,
    max_length: int = 120,
) -> list[str]:
    """A list of unique ids (``ID_PATTERN``)."""
    allowed = f"a list of {min_items}-{max_items} unique strings, each " + _string_rule(
        max_length, True
    ).removeprefix("a string ")
    if field not in doc:
        missing(field, allowed)
    value = doc[field]
    if (
        not isinstance(value, list)
        or not min_items <= len(value) <= max_items
        or not all(_is_string(v, max_length, True) for v in value)
        or len(set(value)) != len(value)
    ):
        invalid(field, value, allowed)
    return list(value)


def mapping(doc: Mapping[str, Any], key: str, *, field: str | None = None) -> dict[str, Any]:
    """An optional JSON object (absent or null: empty)."""
    value = doc.get(key, {})
    if value is None:
        return {}
    if not isinstance(value, dict):
        invalid(field or key, value, "a JSON object")
    return value


def only(doc: Mapping[str, Any], fields: Sequence[str], *, within: str | None = None) -> None:
    """422 for a member the endpoint does not know (a typo must not pass silently).

    ``within`` names the object that holds them (``guardrails``), if not the body.
    """
    for name in doc:
        if name not in fields:
            invalid(
                f"{within}.{name}" if within else name,
                doc[name],
                f"no such field; the fields are {', '.join(fields)}",
            )
