"""Request parameters (`Param`, one entry of `params/table.py`) and their value kinds: how
one value is read in each validation mode.

The spec has one validator used in two modes (README "Architecture"): *query mode* reads
strings leniently — an invalid value is unset or clamped and reported as a reason text —
and *typed mode* reads the JSON values of a pipeline config fail-fast, turning what would
be a clamp into an error with the same text. A kind holds both readers, so a parameter of
`params/table.py` names its kind once and gets both modes (and its JSON Schema type).

Every reason text a client can see for a parameter value is defined here.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, ClassVar, Literal

from imaged.engine.formats import FORMATS, VALID_FORMATS_TEXT, normalise_format
from imaged.engine.options import BOX_BLUR, ParamWarning
from imaged.errors import BadRequest
from imaged.jsonfmt import replace_surrogates
from imaged.params.query import (
    QueryDict,
    QueryValue,
    parse_boolean,
    parse_decimal,
    parse_integer,
    value_text,
)

# --- reason texts (transform.md, pipeline.md) ---------------------------------------------

INTEGER_REASON = "must be a positive integer"
BOOL_REASON = "must be true, false, 1, or 0"
BLUR_REASON = "must be a boolean or number between 0.3 and 1000"
FORMAT_REASON = f"unknown format, valid: {VALID_FORMATS_TEXT}"
NUMBER_TYPE = "must be a number"
INTEGER_TYPE = "must be an integer"
BOOLEAN_TYPE = "must be a boolean"
STRING_TYPE = "must be a string"


def enum_reason(value: str, valid: tuple[str, ...]) -> str:
    return f"unknown value '{value}', valid: {', '.join(valid)}"


def format_error(value: str) -> str:
    """Typed mode's unknown-format text, which echoes the value (query mode does not)."""
    return f"unknown format '{value}', valid: {VALID_FORMATS_TEXT}"


def number_text(number: float) -> str:
    """`1` for integral values, else the shortest repr (`0.3`)."""
    return str(int(number)) if float(number).is_integer() else repr(float(number))


def range_reason(number: float, lo: float, hi: float, suffix: str = "") -> str | None:
    """The clamp text for `number` outside lo…hi (None when inside); the same text is the
    typed mode's error."""
    if number < lo:
        return f"must be at least {number_text(lo)}{suffix}"
    if number > hi:
        return f"must be at most {number_text(hi)}{suffix}"
    return None


def effort_suffix(fmt: str) -> str:
    return f" for {fmt}"


# --- context -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Context:
    """What a reader needs beyond the value: the server's dimension limit, and the output
    format of the request (effort's range depends on it)."""

    dimension_limit: int
    format: str = "jpeg"


Route = Literal["transform", "metadata"]
TRANSFORM_ROUTE: Route = "transform"
METADATA_ROUTE: Route = "metadata"
ALL_ROUTES: frozenset[Route] = frozenset({TRANSFORM_ROUTE, METADATA_ROUTE})
# A bound given by the server's `--dimension-limit` rather than a constant.
DIMENSION_LIMIT: Literal["dimension-limit"] = "dimension-limit"
Bound = float | Literal["dimension-limit"]


@dataclass(frozen=True)
class Param:
    """One request parameter.

    `option` parameters become fields of the engine's options (`TransformOptions` or
    `MetadataOptions`, same name) and are also a pipeline task's `transform` (or `metadata`)
    fields; the others (`url`, `strict`, …) are read by the HTTP layer and only need to be
    known. `default` is the value an unset parameter means (None: unset, decided later,
    e.g. by the preset).
    """

    name: str
    kind: Kind
    description: str
    routes: frozenset[Route]
    option: bool = True
    default: object = None
    minimum: Bound | None = None
    maximum: Bound | None = None
    choices: tuple[str, ...] = ()
    ranges: Mapping[str, tuple[int, int]] = field(default_factory=lambda: MappingProxyType({}))
    get_only: bool = False  # only meaningful on GET routes (known, and ignored, on PUT)
    required: bool = False  # a request without it fails (documented as required)
    example: object = None  # a typical value, shown in the API description

    def bounds(self, ctx: Context) -> tuple[float, float]:
        """(minimum, maximum) with `DIMENSION_LIMIT` resolved for this server."""
        return _resolve(self.minimum, ctx), _resolve(self.maximum, ctx)

    def schema(self, ctx: Context) -> dict[str, Any]:
        """The JSON Schema of a valid value (the API description, `server/openapi.py`): the
        kind's type, the bounds with `--dimension-limit` resolved (a per-format range gives
        the overall one plus `x-ranges`), the choices, the default and the example."""
        kind_type = self.kind.json_type
        schema: dict[str, Any] = {"type": kind_type if isinstance(kind_type, str) else [*kind_type]}
        if self.minimum is not None and self.maximum is not None:
            schema["minimum"], schema["maximum"] = self.bounds(ctx)
        if self.ranges:
            schema["minimum"] = min(lo for lo, _ in self.ranges.values())
            schema["maximum"] = max(hi for _, hi in self.ranges.values())
            schema["x-ranges"] = {fmt: [lo, hi] for fmt, (lo, hi) in self.ranges.items()}
        if self.choices:
            schema["enum"] = list(self.choices)
        if self.default is not None:
            schema["default"] = self.default
        if self.example is not None:
            schema["examples"] = [self.example]
        return schema


def _resolve(bound: Bound | None, ctx: Context) -> float:
    if bound == DIMENSION_LIMIT:
        return ctx.dimension_limit
    assert bound is not None and not isinstance(bound, str)
    return bound


class InvalidValue(Exception):
    """Typed mode: the value's reason text; the caller adds the `<prefix><name>: ` part."""


Read = tuple[Any, str | None]  # (value or None for unset, reason text or None)


class Kind(ABC):
    """One kind of value. `json_type` is its JSON Schema type (for /openapi.json)."""

    json_type: ClassVar[str | tuple[str, ...]]

    @abstractmethod
    def from_query(self, param: Param, raw: QueryValue, ctx: Context) -> Read:
        """Query mode: the value (None = unset) and the warning reason, if any."""

    @abstractmethod
    def from_json(self, param: Param, value: Any, ctx: Context) -> Any:
        """Typed mode: the value (None = unset), or InvalidValue with the reason."""


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _json_integer(value: Any) -> int | None:
    """A JSON number with an integral value; null, absent and `""` mean unset [QUIRK]."""
    if value is None or value == "":
        return None
    if not _is_number(value):
        raise InvalidValue(NUMBER_TYPE)
    if isinstance(value, float) and not value.is_integer():  # also ±inf
        raise InvalidValue(INTEGER_TYPE)
    return int(value)


def _query_integer(raw: QueryValue) -> Read:
    """transform.md "Integer parameters" steps 1–2: empty → unset, invalid → warning."""
    if raw == "":
        return None, None
    number = parse_integer(raw)
    return number, None if number is not None else INTEGER_REASON


class Integer(Kind):
    """An integer clamped to the parameter's bounds (`width`, `height`, `quality`)."""

    json_type = "integer"

    def from_query(self, param: Param, raw: QueryValue, ctx: Context) -> Read:
        number, reason = _query_integer(raw)
        if number is None:
            return None, reason
        lo, hi = param.bounds(ctx)
        return _clamp(number, lo, hi)

    def from_json(self, param: Param, value: Any, ctx: Context) -> Any:
        return _json_ranged(_json_integer(value), *param.bounds(ctx))


def _clamp(number: float, lo: float, hi: float, suffix: str = "") -> Read:
    reason = range_reason(number, lo, hi, suffix)
    return (number, None) if reason is None else (min(max(number, lo), hi), reason)


def _json_ranged(number: float | None, lo: float, hi: float, suffix: str = "") -> Any:
    if number is None:
        return None
    reason = range_reason(number, lo, hi, suffix)
    if reason is not None:
        raise InvalidValue(reason)
    return number


class Effort(Kind):
    """An integer whose range depends on the output format; formats without a range drop
    a valid value silently (its type is still checked)."""

    json_type = "integer"

    def from_query(self, param: Param, raw: QueryValue, ctx: Context) -> Read:
        number, reason = _query_integer(raw)
        limits = param.ranges.get(ctx.format)
        if number is None or limits is None:
            return None, reason
        return _clamp(number, *limits, effort_suffix(ctx.format))

    def from_json(self, param: Param, value: Any, ctx: Context) -> Any:
        number = _json_integer(value)  # type errors apply to every format
        limits = param.ranges.get(ctx.format)
        if number is None or limits is None:
            return None
        return _json_ranged(number, *limits, effort_suffix(ctx.format))


class Boolean(Kind):
    """`""`/`true`/`1` → true, `false`/`0` → false; anything else is true with a warning."""

    json_type = "boolean"

    def from_query(self, param: Param, raw: QueryValue, ctx: Context) -> Read:
        flag, valid = parse_boolean(raw)
        return flag, None if valid else BOOL_REASON

    def from_json(self, param: Param, value: Any, ctx: Context) -> Any:
        if value is None:
            return None
        if not isinstance(value, bool):
            raise InvalidValue(BOOLEAN_TYPE)
        return value


class Enum(Kind):
    """Exact, case-sensitive membership of the parameter's choices."""

    json_type = "string"

    def from_query(self, param: Param, raw: QueryValue, ctx: Context) -> Read:
        if raw == "":
            return None, None
        if isinstance(raw, str) and raw in param.choices:
            return raw, None
        return None, enum_reason(value_text(raw), param.choices)

    def from_json(self, param: Param, value: Any, ctx: Context) -> Any:
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            raise InvalidValue(STRING_TYPE)
        if value not in param.choices:
            raise InvalidValue(enum_reason(value, param.choices))
        return value


class Blur(Kind):
    """A boolean (box blur) or a Gaussian σ within the parameter's bounds."""

    json_type = ("boolean", "number")

    def from_query(self, param: Param, raw: QueryValue, ctx: Context) -> Read:
        if raw in ("false", "0"):
            return None, None
        if raw in ("", "true", "1"):
            return BOX_BLUR, None
        number = parse_decimal(raw) if isinstance(raw, str) else None
        if number is None or not math.isfinite(number):
            return None, BLUR_REASON
        return _clamp(number, *param.bounds(ctx))

    def from_json(self, param: Param, value: Any, ctx: Context) -> Any:
        if value is None or value is False:
            return None
        if value is True:
            return BOX_BLUR
        if not _is_number(value) or not math.isfinite(value):
            raise InvalidValue(BLUR_REASON)
        return float(_json_ranged(value, *param.bounds(ctx)))


class Format(Kind):
    """An output format id or alias. Query mode reads a comma list and negotiates it against
    `Accept` (`params/transform.py`), so only the typed reader lives here."""

    json_type = "string"

    def from_query(self, param: Param, raw: QueryValue, ctx: Context) -> Read:
        raise NotImplementedError("query-mode formats are negotiated (negotiate_format)")

    def from_json(self, param: Param, value: Any, ctx: Context) -> Any:
        if not isinstance(value, str):
            raise InvalidValue(STRING_TYPE)
        fmt = normalise_format(value)
        if fmt not in FORMATS:
            raise InvalidValue(format_error(value))
        return fmt


class Text(Kind):
    """A string read by the HTTP layer itself (`url`, `sig`, `expires`): never warned."""

    json_type = "string"

    def from_query(self, param: Param, raw: QueryValue, ctx: Context) -> Read:
        return value_text(raw), None

    def from_json(self, param: Param, value: Any, ctx: Context) -> Any:
        return value


def read_query(
    values: QueryDict, params: Iterable[Param], ctx: Context, warnings: list[ParamWarning]
) -> dict[str, Any]:
    """Query mode over `params` in order: the fields that were set; warnings are appended
    (their `value` is the raw value, list items joined with `,`)."""
    fields: dict[str, Any] = {}
    for param in params:
        raw = values.get(param.name)
        if raw is None:
            continue
        value, reason = param.kind.from_query(param, raw, ctx)
        if reason is not None:
            warnings.append(ParamWarning(param.name, value_text(raw), reason))
        if value is not None:
            fields[param.name] = value
    return fields


def read_json(
    spec: Mapping[str, Any], params: Iterable[Param], ctx: Context, prefix: str
) -> dict[str, Any]:
    """Typed mode over `params` in order: the fields that were set, or BadRequest
    `<prefix><name>: <reason>` for the first invalid one. Unknown keys are ignored."""
    fields: dict[str, Any] = {}
    for param in params:
        try:
            value = param.kind.from_json(param, spec.get(param.name), ctx)
        except InvalidValue as exc:
            raise BadRequest(replace_surrogates(f"{prefix}{param.name}: {exc}")) from None
        if value is not None:
            fields[param.name] = value
    return fields


INTEGER = Integer()
EFFORT = Effort()
BOOLEAN = Boolean()
ENUM = Enum()
BLUR = Blur()
FORMAT = Format()
TEXT = Text()
