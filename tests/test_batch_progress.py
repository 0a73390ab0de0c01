"""The summary line, the totals behind it, and the plain and bar progress outputs."""

from __future__ import annotations

import io
import re

from imaged.batch.progress import BarProgress, PlainProgress, Totals, make_progress

OK = {"status": "success", "tasks": [
    {"id": "a", "status": "success", "output": {"size": 100}},
    {"id": "b", "status": "success", "output": {"size": 23}},
]}  # fmt: skip
PART = {"status": "failed", "tasks": [
    {"id": "a", "status": "success", "output": {"size": 7}},
    {"id": "b", "status": "failed", "error": "x"},
]}  # fmt: skip


def test_summary_counts_sources_outputs_and_bytes() -> None:
    totals = Totals()
    for record in (OK, PART, {"status": "failed", "error": "unreadable"}):
        totals.add(record)
    assert re.fullmatch(
        r"processed 3 sources: 1 succeeded, 2 failed, 3 outputs, 130 bytes in "
        r"\d+\.\d s \(\d+\.\d images/s\)",
        totals.summary(),
    )


def test_plain_progress_prints_at_most_every_interval_and_at_the_end() -> None:
    stream = io.StringIO()
    progress = PlainProgress(stream, interval=3600)
    progress.listed(10)  # within the interval: nothing
    progress.start(2)
    totals = Totals()
    totals.add(OK)
    progress.update(totals)  # within the interval: nothing
    totals.add(PART)
    progress.update(totals)  # the last one: always
    lines = stream.getvalue().splitlines()
    assert lines[0] == "listed 2 sources"
    assert re.fullmatch(
        r"progress: 2/2 sources, 1 failed, \d+\.\d images/s, elapsed 0:00:\d\d, ETA 0:00:00",
        lines[1],
    )
    assert len(lines) == 2


def test_bar_shows_counts_and_failures() -> None:
    stream = io.StringIO()
    bar = BarProgress(stream)
    bar.listed(5)
    bar.start(2)
    totals = Totals()
    totals.add(PART)
    bar.update(totals)
    bar.close()
    text = stream.getvalue()
    assert "listing" in text
    assert "1/2" in text
    assert "failed=1" in text


def test_auto_is_plain_without_a_tty() -> None:
    assert isinstance(make_progress("auto", io.StringIO()), PlainProgress)
    assert isinstance(make_progress("bar", io.StringIO()), BarProgress)
