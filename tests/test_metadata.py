"""Metadata extraction in-process (`engine/metadata.py`): the decode-once path and the
bounded-memory path (a fresh sequential decode per pass) give the same answer."""

from __future__ import annotations

from pathlib import Path

import pytest

from imaged.engine import metadata
from imaged.engine.options import Limits, MetadataOptions
from tests.serverproc import CORPUS

ALL = MetadataOptions(exif=True, stats=True, thumbhash=True)


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("jpeg-small-nikon-p6000-gps.jpg", "jpeg"),
        ("png-rgba-opaque-bird.png", "png"),
        ("png-rgb16.png", "png"),
        ("orientation/Landscape_6.jpg", "jpeg"),
        ("gif-animated-10f.gif", "gif"),
    ],
)
def test_over_the_memory_cap_every_pass_decodes_again(
    monkeypatch: pytest.MonkeyPatch, name: str, fmt: str
) -> None:
    data = Path(CORPUS, name).read_bytes()
    in_memory = metadata.extract(data, fmt, ALL, Limits())
    loads: list[str] = []
    real_load = metadata.load

    def counting_load(*args: object, **kwargs: object) -> object:
        loads.append(str(args[1]))
        return real_load(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(metadata, "DECODE_IN_MEMORY", 0)
    monkeypatch.setattr(metadata, "load", counting_load)
    streamed = metadata.extract(data, fmt, ALL, Limits())
    assert streamed.fields == in_memory.fields
    assert set(in_memory.fields) >= {"stats", "thumbhash"}
    assert loads == [fmt] * 3  # grey, colour histogram, thumbhash (stats reads the first)
