"""The playground's files (`server/playground/`): every file the page refers to is served,
nothing outside the server is referred to, the whole page is under 150 KB, a wheel ships it,
and the browser tests say how to install a missing Chromium (playground.md)."""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from importlib import resources
from pathlib import Path

import pytest

from imaged.server import playground
from tests.browser import INSTALL, missing_browser, start_browser
from tests.serverproc import ROOT

FOLDER = Path(str(resources.files(playground)))
# What a file can load: HTML src/href, CSS url(), JavaScript imports and fetches of
# literal paths (the API calls with computed paths go to TRANSFORM and METADATA).
REFERENCE = {
    ".html": re.compile(r'\b(?:src|href)="([^"]+)"'),
    ".css": re.compile(r"\burl\(([^)]+)\)"),
    ".js": re.compile(r'\bfrom\s+"([^"]+)"|\bfetch\("([^"]+)"|^const [A-Z]+ = "(/[^"]*)";', re.M),
}


def served_paths() -> set[str]:
    return {playground.asset_path(name) for name in playground.MEDIA_TYPES}


def references(name: str) -> list[str]:
    text = (FOLDER / name).read_text()
    pattern = REFERENCE.get(Path(name).suffix)
    return [next(g for g in m.groups() if g) for m in pattern.finditer(text)] if pattern else []


def test_every_file_of_the_folder_is_served() -> None:
    files = {p.name for p in FOLDER.iterdir() if p.is_file() and p.suffix != ".py"}
    assert files == set(playground.MEDIA_TYPES)


def test_the_page_refers_only_to_its_own_files_and_the_api() -> None:
    seen = set()
    for name in playground.MEDIA_TYPES:
        for ref in references(name):
            path = ref if ref.startswith("/") else f"{playground.PAGE}/{ref.removeprefix('./')}"
            seen.add(path)
    api = {"/openapi.json", "/transform", "/metadata"}  # playground.md: nothing else
    assert seen == (served_paths() - {playground.PAGE}) | api


def test_the_whole_page_is_under_150_kb() -> None:
    total = sum((FOLDER / name).stat().st_size for name in playground.MEDIA_TYPES)
    assert total < 150_000, total


def test_a_wheel_ships_the_page(tmp_path: Path) -> None:
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet",
         "--wheel-dir", str(tmp_path), str(ROOT)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert build.returncode == 0, build.stderr
    (wheel,) = tmp_path.glob("imaged-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        for name in playground.MEDIA_TYPES:
            shipped = archive.read(f"imaged/server/playground/{name}")
            assert shipped == (FOLDER / name).read_bytes(), name


def test_a_missing_browser_says_how_to_install_it(tmp_path: Path) -> None:
    absent = tmp_path / "chromium"
    message = missing_browser(chromium=absent)
    assert message is not None and str(absent) in message and INSTALL in message
    assert "apt-get install" in message and "chromium-driver" in message
    assert "\n" not in message
    driver = tmp_path / "chromedriver"
    driver.write_text("")  # there, but not executable
    assert str(driver) in (missing_browser(chromium=absent, driver=driver) or "")


def test_without_a_browser_the_browser_tests_fail_and_say_how_to_install_it(
    tmp_path: Path,
) -> None:
    with pytest.raises(pytest.fail.Exception) as failed:  # a failure, not a skip
        start_browser(chromium=tmp_path / "chromium")
    assert INSTALL in str(failed.value)
