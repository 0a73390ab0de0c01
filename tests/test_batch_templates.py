"""Key templates: every placeholder, literal braces, `{dir}` at the top level, errors."""

from __future__ import annotations

import pytest

from imaged.batch.templates import TemplateError, parse_template, source_fields


def test_placeholders_of_the_spec_example() -> None:
    assert source_fields("2024/trip/IMG_0042.JPG") == {
        "path": "2024/trip/IMG_0042.JPG",
        "dir": "2024/trip",
        "name": "IMG_0042.JPG",
        "stem": "IMG_0042",
        "ext": "JPG",
    }


@pytest.mark.parametrize(
    ("key", "stem", "ext"),
    [("README", "README", ""), (".hidden", ".hidden", ""), ("a.tar.gz", "a.tar", "gz"),
     ("x.", "x", ""), ("ü n.PNG", "ü n", "PNG")],
)  # fmt: skip
def test_stem_and_extension(key: str, stem: str, ext: str) -> None:
    fields = source_fields(key)
    assert (fields["stem"], fields["ext"], fields["dir"]) == (stem, ext, "")


@pytest.mark.parametrize(
    ("template", "source", "expected"),
    [
        ("{dir}/{stem}.{format}", "2024/trip/a.JPG", "2024/trip/a.webp"),
        ("{dir}/{stem}.{format}", "a.JPG", "a.webp"),  # the `/` after an empty {dir} goes
        ("out/{dir}/{name}", "a.JPG", "out/a.JPG"),
        ("{dir}{name}", "d/a.JPG", "da.JPG"),
        ("{{{id}}}/{path}", "d/a.JPG", "{t1}/d/a.JPG"),
        ("{{}}{{x}}", "a", "{}{x}"),
        ("plain", "a", "plain"),
    ],
)
def test_expand(template: str, source: str, expected: str) -> None:
    assert parse_template(template).expand(source, "t1", "webp") == expected


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{foo}", "unknown placeholder {foo}"),
        ("{}", "unknown placeholder {}"),
        ("{Stem}", "unknown placeholder {Stem}"),
        ("{stem", "unmatched '{' (write '{{' for a literal brace)"),
        ("{st{em}", "unmatched '{' (write '{{' for a literal brace)"),
        ("a}", "unmatched '}' (write '}}' for a literal brace)"),
    ],
)
def test_invalid_templates(template: str, message: str) -> None:
    with pytest.raises(TemplateError) as info:
        parse_template(template)
    assert str(info.value) == message
