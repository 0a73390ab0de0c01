"""Metadata query flags (`exif`, `stats`, `thumbhash`, …) → MetadataOptions + warnings."""

from __future__ import annotations

from imaged.engine.options import MetadataOptions, ParamWarning
from imaged.params.kinds import METADATA_ROUTE, read_query
from imaged.params.query import QueryDict, unknown_parameters
from imaged.params.table import METADATA_CONTEXT, known, options_of

_FLAGS = options_of(METADATA_ROUTE)


def parse_metadata_query(values: QueryDict) -> tuple[MetadataOptions, list[ParamWarning]]:
    warnings = unknown_parameters(values, known(METADATA_ROUTE))
    fields = read_query(values, _FLAGS, METADATA_CONTEXT, warnings)
    return MetadataOptions(**fields), warnings
