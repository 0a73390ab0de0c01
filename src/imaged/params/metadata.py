"""`exif`, `stats`, `thumbhash` query flags → MetadataOptions + warnings."""

from __future__ import annotations

from imaged.engine.options import MetadataOptions, ParamWarning
from imaged.params.query import (
    BOOL_REASON,
    QueryDict,
    parse_boolean,
    unknown_parameters,
    value_text,
)

KNOWN = frozenset({"url", "exif", "stats", "thumbhash", "strict"})


def parse_metadata_query(values: QueryDict) -> tuple[MetadataOptions, list[ParamWarning]]:
    warnings = unknown_parameters(values, KNOWN)
    flags: dict[str, bool] = {}
    for name in ("exif", "stats", "thumbhash"):
        if name not in values:
            flags[name] = False
            continue
        flag, valid = parse_boolean(values[name])
        if not valid:
            warnings.append(ParamWarning(name, value_text(values[name]), BOOL_REASON))
        flags[name] = flag
    return MetadataOptions(**flags), warnings
