"""Output key templates of a batch config (batch.md, "Config and key templates").

A template is parsed once, when the config is validated, into literal text and placeholder
names; expanding it for one source key is then a plain join. `{{` and `}}` are literal
braces; any other brace that does not open or close a known placeholder is a config error.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

PLACEHOLDERS = ("path", "dir", "name", "stem", "ext", "id", "format")
UNKNOWN_PLACEHOLDER = "unknown placeholder {{{name}}}"
UNMATCHED_OPEN = "unmatched '{' (write '{{' for a literal brace)"
UNMATCHED_CLOSE = "unmatched '}' (write '}}' for a literal brace)"


class TemplateError(ValueError):
    """The template text is not valid; the message is the part after `...output.key: `."""


@dataclass(frozen=True)
class KeyTemplate:
    """Alternating parts: a `str` is literal text, a 1-tuple names a placeholder."""

    parts: tuple[str | tuple[str], ...]

    def expand(self, source_key: str, task_id: str, fmt: str) -> str:
        values = source_fields(source_key)
        values["id"] = task_id
        values["format"] = fmt
        out: list[str] = []
        drop_slash = False
        for part in self.parts:
            if isinstance(part, tuple):
                value = values[part[0]]
                out.append(value)
                # `{dir}` at the top level is empty: a `/` right after it is dropped.
                drop_slash = part[0] == "dir" and value == ""
                continue
            if drop_slash and part.startswith("/"):
                part = part[1:]
            drop_slash = False
            out.append(part)
        return "".join(out)


def source_fields(source_key: str) -> dict[str, str]:
    """`{path}` … `{ext}` of a source key relative to `--source` (`/`-separated)."""
    directory, name = posixpath.split(source_key)
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem:  # `README` or `.hidden`: no extension
        stem, ext = name, ""
    return {"path": source_key, "dir": directory, "name": name, "stem": stem, "ext": ext}


def parse_template(text: str) -> KeyTemplate:
    """`TemplateError` for an unknown placeholder or an unmatched brace."""
    parts: list[str | tuple[str]] = []
    literal: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char in "{}" and text.startswith(char * 2, i):
            literal.append(char)
            i += 2
            continue
        if char == "}":
            raise TemplateError(UNMATCHED_CLOSE)
        if char == "{":
            end = text.find("}", i + 1)
            if end < 0 or "{" in text[i + 1 : end]:
                raise TemplateError(UNMATCHED_OPEN)
            name = text[i + 1 : end]
            if name not in PLACEHOLDERS:
                raise TemplateError(UNKNOWN_PLACEHOLDER.format(name=name))
            if literal:
                parts.append("".join(literal))
                literal = []
            parts.append((name,))
            i = end + 1
            continue
        literal.append(char)
        i += 1
    if literal:
        parts.append("".join(literal))
    return KeyTemplate(tuple(parts))
