"""The playground in a real headless Chromium (playground.md, Tests): the page against the
real server, driven like a person would — through the file input, the controls found by
their accessible names, the keyboard — and checked by what is shown: the result image, its
headers, the warnings and errors in the server's words, the metadata and its placeholders,
and the curl command, which run with the shell gives the very same bytes.

One browser and one server for the session (the server with the defaults, and one with
fetch and API tokens for the source and token fields). Every test ends with no console
error except the network lines of the error responses it provoked; screenshots at desktop
and phone width, light and dark, are kept as artifacts.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import blurhash as reference_blurhash
import httpx
import numpy as np
import pytest
import pyvips
from axe_selenium_python import Axe
from PIL import Image
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.select import Select
from tests.browser import (  # noqa: F401 (the session's browser fixture)
    DESKTOP,
    PHONE,
    browser,
    color_scheme,
    console_errors,
    download,
    downloads,
    js,
    named,
    screenshot,
    viewport,
)
from tests.fetch_origin import SMALL_JPEG, Origin
from tests.serverproc import CORPUS, ServerProcess
from tests.waiting import wait_until

# blurhash-python reads pixels with an API Pillow 14 will remove; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:Image.Image.getdata:DeprecationWarning")

TOKEN = "playground-token-0123456789"
# Named from the start; `original` and `result` once they show an image.
NAMES = ("image", "curl command", "copy", "response headers", "warnings", "metadata", "zoom")


# --- helpers --------------------------------------------------------------------------------


def open_page(driver: WebDriver, base: str) -> None:
    console_errors(driver)  # what earlier tests left in the log is theirs
    driver.get(f"{base}/")  # the redirect to /playground, as a visitor would arrive
    wait_until(
        lambda: js(driver, "return document.body.dataset.ready === 'true'"),
        "the page to build its controls from /openapi.json",
    )
    assert driver.current_url == f"{base}/playground"


def upload(driver: WebDriver, path: Path) -> None:
    named(driver, "image").send_keys(str(path))


def type_into(driver: WebDriver, name: str, text: str) -> None:
    field = named(driver, name)
    field.clear()
    field.send_keys(text)


def choose(driver: WebDriver, name: str, value: str) -> None:
    Select(named(driver, name)).select_by_value(value)


def natural_width(driver: WebDriver, name: str) -> int:
    """0 while hidden (a hidden image has no accessible name: found by its alt text)."""
    image = driver.find_element(By.XPATH, f"//img[@alt='{name}']")
    return int(js(driver, "return arguments[0].hidden ? 0 : arguments[0].naturalWidth", image))


def shown_headers(driver: WebDriver) -> dict[str, str]:
    rows = js(
        driver,
        "return [...arguments[0].tBodies[0].rows].map((r) => [r.cells[0].textContent,"
        " r.cells[1].textContent])",
        named(driver, "response headers"),
    )
    return {name.lower(): value for name, value in rows}


def wait_result(driver: WebDriver, width: int, content_type: str) -> dict[str, str]:
    """Until the result image is `width` pixels wide and of `content_type`; its headers."""

    def done() -> dict[str, str] | None:
        headers = shown_headers(driver)
        ok = headers.get("content-type") == content_type and headers.get("x-image-width")
        return headers if ok and natural_width(driver, "result") == width else None

    return wait_until(done, f"a {width} px {content_type} result")


def alert_texts(driver: WebDriver) -> list[str]:
    """The server's text in each `role=alert` element (empty when there is no error)."""
    return list(
        js(
            driver,
            "return [...document.querySelectorAll('[role=alert]')]"
            ".map((a) => a.querySelector('pre')?.textContent ?? '')",
        )
    )


def wait_alert(driver: WebDriver, text: str) -> None:
    wait_until(lambda: text in alert_texts(driver), lambda: f"{text!r} in {alert_texts(driver)}")


def warnings_shown(driver: WebDriver) -> list[str]:
    return [li.text for li in named(driver, "warnings").find_elements(By.TAG_NAME, "li")]


def metadata_text(driver: WebDriver) -> str:
    return str(js(driver, "return arguments[0].textContent", named(driver, "metadata")))


def curl_text(driver: WebDriver) -> str:
    return str(js(driver, "return arguments[0].textContent", named(driver, "curl command")))


def run_curl(driver: WebDriver, folder: Path) -> None:
    """The page's curl command, run by the shell in `folder` (where the source file is)."""
    command = curl_text(driver)
    run = subprocess.run(
        ["bash", "-c", command], cwd=folder, capture_output=True, timeout=60, check=False
    )
    assert run.returncode == 0, run.stderr


def assert_no_console_errors(driver: WebDriver, *statuses: int) -> None:
    """No error in the console but the network lines of the `statuses` answered on purpose
    (Chromium logs every failed response as `... status of 400 (Bad Request)`)."""
    allowed = tuple(f"status of {s} " for s in statuses)
    errors = [
        e
        for e in console_errors(driver)
        if not (e["source"] == "network" and any(a in e["message"] for a in allowed))
    ]
    assert errors == []


def photo(tmp_path: Path, name: str = SMALL_JPEG) -> Path:
    """A corpus image copied where the curl command may write its output beside it."""
    path = tmp_path / Path(name).name
    shutil.copyfile(CORPUS / name, path)
    return path


def pixels(data_url: str) -> np.ndarray:
    """The RGB pixels of a `data:image/png;base64,...` URL."""
    import base64

    png = base64.b64decode(data_url.split(",", 1)[1])
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


# --- the default server -----------------------------------------------------------------------


@pytest.fixture
def page(browser: WebDriver, server: ServerProcess) -> WebDriver:  # noqa: F811
    open_page(browser, server.url)
    return browser


@pytest.fixture(scope="module")
def document(client: httpx.Client) -> dict[str, Any]:
    result: dict[str, Any] = client.get("/openapi.json").json()
    return result


def test_every_parameter_has_a_control_built_from_the_api_description(
    page: WebDriver, document: dict[str, Any]
) -> None:
    for name in NAMES:
        assert named(page, name).accessible_name == name
    transform = document["paths"]["/transform"]["put"]["parameters"]
    metadata = document["paths"]["/metadata"]["put"]["parameters"]
    free_text = {"sig", "expires"}  # signed GET URLs only: PUT never needs them
    for param in [*transform, *metadata]:
        if param["in"] != "query" or param["name"] in free_text:
            continue
        schema = param["schema"]
        control = named(page, param["name"])
        if "enum" in schema:
            values = [o.get_attribute("value") for o in Select(control).options]
            assert [v for v in values if v] == schema["enum"], param["name"]
            assert control.get_attribute("value") == schema.get("default", "")
        elif schema["type"] == "integer" and "x-ranges" not in schema:
            assert control.get_attribute("min") == str(schema["minimum"])
            assert control.get_attribute("max") == str(schema["maximum"])
        elif schema["type"] == "boolean" and "default" in schema:
            assert control.get_attribute("type") == "checkbox"
            assert control.is_selected() == schema["default"]
    # effort's range follows the chosen format (x-ranges)
    ranges = next(p for p in transform if p["name"] == "effort")["schema"]["x-ranges"]
    choose(page, "format", "webp")
    assert named(page, "effort").get_attribute("max") == str(ranges["webp"][1])
    choose(page, "format", "png")
    assert named(page, "effort").get_attribute("min") == str(ranges["png"][0])
    # no source field without fetch, no token field without tokens
    assert not named(page, "image").get_attribute("hidden")
    assert js(page, "return document.getElementById('url-field').hidden")
    assert js(page, "return document.getElementById('token-field').hidden")
    assert_no_console_errors(page)


def test_width_and_format_give_the_result_and_a_curl_command_with_the_same_bytes(
    page: WebDriver,
    tmp_path: Path,
    downloads: Path,  # noqa: F811
) -> None:
    source = photo(tmp_path)
    upload(page, source)
    wait_until(lambda: natural_width(page, "original") == 640, "the original shown")
    type_into(page, "width", "300")
    choose(page, "format", "webp")
    headers = wait_result(page, 300, "image/webp")
    assert headers["x-image-width"] == "300"
    assert headers["x-image-height"] == "225"
    result = download(page, named(page, "download result.webp"), downloads)
    assert Image.open(io.BytesIO(result)).size == (300, 225)
    facts = page.find_element(By.ID, "facts").text
    assert "300 × 225" in facts and "webp" in facts
    assert f"{len(result) / 1000:.1f} kB" in facts
    assert f"{100 * len(result) / source.stat().st_size:.1f} %" in facts
    assert f"{headers['x-response-time-ms']} ms" in facts

    # both images at the same display scale
    original, shown = named(page, "original"), named(page, "result")
    scale = original.size["width"] / 640
    assert abs(shown.size["width"] - 300 * scale) <= 1
    choose(page, "zoom", "1")
    wait_until(lambda: named(page, "result").size["width"] == 300, "100 % zoom")
    assert named(page, "original").size["width"] == 640

    command = curl_text(page)
    assert "width=300" in command and "format=webp" in command
    run_curl(page, tmp_path)
    assert (tmp_path / "result.webp").read_bytes() == result
    assert_no_console_errors(page)


def test_a_corrupt_file_shows_the_servers_error_text(
    page: WebDriver, client: httpx.Client, tmp_path: Path
) -> None:
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes((CORPUS / SMALL_JPEG).read_bytes()[:2000])
    expected = client.put("/transform", content=corrupt.read_bytes())
    assert expected.status_code == 400
    upload(page, corrupt)
    wait_alert(page, expected.text)
    assert natural_width(page, "result") == 0
    assert_no_console_errors(page, 400)


def test_exif_shows_the_camera_make(page: WebDriver, tmp_path: Path) -> None:
    upload(page, photo(tmp_path))
    wait_until(lambda: '"format": "jpeg"' in metadata_text(page), "the metadata")
    assert '"make"' not in metadata_text(page)
    named(page, "exif").click()
    wait_until(lambda: '"make": "NIKON"' in metadata_text(page), "the camera make")
    assert_no_console_errors(page)


def test_warnings_one_per_line_and_strict_shows_the_400_text(
    page: WebDriver, client: httpx.Client, tmp_path: Path
) -> None:
    source = photo(tmp_path)
    lenient = client.put("/transform?width=0&quality=500", content=source.read_bytes())
    strict = client.put("/transform?width=0&quality=500&strict=true", content=source.read_bytes())
    assert strict.status_code == 400
    upload(page, source)
    type_into(page, "width", "0")
    type_into(page, "quality", "500")
    expected = lenient.headers["X-Imaged-Warnings"].split("; ")
    assert len(expected) == 2
    wait_until(lambda: warnings_shown(page) == expected, lambda: f"{warnings_shown(page)}")
    choose(page, "strict", "true")
    wait_alert(page, strict.text)
    assert "strict=true" in curl_text(page) and "quality=500" in curl_text(page)
    assert_no_console_errors(page, 400)


def test_the_placeholders_are_the_images_the_hashes_encode(page: WebDriver, tmp_path: Path) -> None:
    upload(page, photo(tmp_path))
    named(page, "thumbhash").click()
    named(page, "blurhash").click()
    wait_until(lambda: '"blurhash"' in metadata_text(page), "the hashes")
    thumb = named(page, "thumbhash placeholder")
    blur = named(page, "blurhash placeholder")
    wait_until(lambda: js(page, "return arguments[0].naturalWidth", blur) > 0, "decoded")
    text = js(page, "return document.getElementById('blurhash-text').textContent")
    decoded = pixels(blur.get_attribute("src") or "")
    height, width = decoded.shape[:2]
    assert (width, height) == (32, 24)  # the 640 × 480 source's shape
    expected = np.array(reference_blurhash.decode(text, width, height), dtype=np.int16)
    assert np.abs(decoded.astype(np.int16) - expected.reshape(decoded.shape)).max() <= 1

    # ThumbHash: the image's own shape and colours (its DC is the mean colour)
    thumb_pixels = pixels(thumb.get_attribute("src") or "")
    assert thumb_pixels.shape[1] == 32 and 22 <= thumb_pixels.shape[0] <= 25  # about 4:3
    small = pyvips.Image.thumbnail(str(CORPUS / SMALL_JPEG), 100).numpy()[..., :3]
    assert np.abs(thumb_pixels.mean(axis=(0, 1)) - small.mean(axis=(0, 1))).max() < 12
    top, bottom = thumb_pixels[:8].mean(), thumb_pixels[-8:].mean()
    assert np.sign(top - bottom) == np.sign(small[:25].mean() - small[-25:].mean())
    assert_no_console_errors(page)


def test_usable_with_the_keyboard_alone(page: WebDriver, tmp_path: Path) -> None:
    upload(page, photo(tmp_path))
    wait_result(page, 640, "image/jpeg")
    js(page, "document.activeElement.blur()")
    seen: list[str] = []
    actions = ActionChains(page)
    for _ in range(60):
        actions.send_keys(Keys.TAB).perform()
        seen.append(page.switch_to.active_element.accessible_name)
        if seen[-1] == "width":
            actions.send_keys("200", Keys.ENTER).perform()  # Enter keeps the page
    for name in ("image", "width", "format", "quality", "strict", "zoom", "copy", "exif"):
        assert name in seen, seen
    wait_result(page, 200, "image/jpeg")
    assert_no_console_errors(page)


def test_copy_puts_the_command_on_the_clipboard(
    page: WebDriver, server: ServerProcess, tmp_path: Path
) -> None:
    page.execute_cdp_cmd(
        "Browser.grantPermissions",
        {"origin": server.url, "permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"]},
    )
    upload(page, photo(tmp_path))
    type_into(page, "width", "123")
    wait_until(lambda: "width=123" in curl_text(page), "the command")
    named(page, "copy").click()
    wait_until(lambda: page.find_element(By.ID, "copy-status").text == "Copied", "copied")
    copied = page.execute_async_script(
        "navigator.clipboard.readText().then(arguments[0], (e) => arguments[0](String(e)))"
    )
    assert copied == curl_text(page)
    assert_no_console_errors(page)


def test_the_newest_settings_win(page: WebDriver, tmp_path: Path) -> None:
    upload(page, photo(tmp_path))
    wait_result(page, 640, "image/jpeg")
    field = named(page, "width")
    for text in ("1", "2", "3", Keys.BACKSPACE * 3, "4", "5", "6"):
        field.send_keys(text)  # each keystroke restarts the debounce and aborts older calls
    wait_result(page, 456, "image/jpeg")
    assert "width=456" in curl_text(page)
    assert_no_console_errors(page)


def test_the_page_loads_only_its_own_small_files(page: WebDriver, server: ServerProcess) -> None:
    entries = js(
        page,
        "return [...performance.getEntriesByType('navigation'),"
        " ...performance.getEntriesByType('resource')]"
        ".map((e) => [e.name, e.initiatorType, e.transferSize])",
    )
    assert all(name.startswith(f"{server.url}/") for name, _, _ in entries), entries
    files = [
        (name, size) for name, kind, size in entries if kind not in ("fetch", "xmlhttprequest")
    ]
    assert {name.rsplit("/", 1)[-1] for name, _ in files} >= {"playground", "playground.js"}
    assert sum(size for _, size in files) < 150_000
    assert_no_console_errors(page)


def test_screenshots_at_desktop_and_phone_width(page: WebDriver, tmp_path: Path) -> None:
    upload(page, photo(tmp_path, "png-rgba-2048x1536.png"))  # transparency: the checkerboard
    type_into(page, "width", "480")
    choose(page, "format", "webp")
    named(page, "exif").click()
    named(page, "thumbhash").click()
    named(page, "blurhash").click()
    wait_result(page, 480, "image/webp")
    wait_until(lambda: '"blurhash"' in metadata_text(page), "the hashes")
    shots = [screenshot(page, "playground-desktop", DESKTOP)]
    viewport(page, PHONE)
    try:
        overflow = js(page, "return document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0  # nothing wider than a phone
        frame = page.find_element(By.ID, "original-frame").size["width"]
        assert abs(named(page, "original").size["width"] - frame) <= 2  # fit: the frame's width
        result_top = named(page, "result").rect["y"]
        assert result_top < named(page, "width").rect["y"]  # the result before the settings
    finally:
        viewport(page, None)
    shots.append(screenshot(page, "playground-phone", PHONE))
    with color_scheme(page, "dark"):
        assert js(page, "return matchMedia('(prefers-color-scheme: dark)').matches")
        text_colour = js(page, "return getComputedStyle(document.body).color")
        assert text_colour != "rgb(27, 30, 36)"  # the dark palette's text colour took over
        shots.append(screenshot(page, "playground-desktop-dark", DESKTOP))
        shots.append(screenshot(page, "playground-phone-dark", PHONE))
    for shot in shots:
        assert shot.stat().st_size > 10_000
    assert_no_console_errors(page)


# --- a server with fetch and API tokens ---------------------------------------------------------


@pytest.fixture(scope="module")
def origin() -> Iterator[Origin]:
    with Origin() as running:
        yield running


@pytest.fixture(scope="module")
def configured() -> Iterator[ServerProcess]:
    args = ["--enable-fetch", "--allowed-hosts", r"^127\.0\.0\.1$", "--disable-ssrf-protection"]
    with ServerProcess([*args, "--api-tokens", TOKEN, "--concurrency", "2"]) as proc:
        yield proc


@pytest.fixture
def configured_page(browser: WebDriver, configured: ServerProcess) -> WebDriver:  # noqa: F811
    open_page(browser, configured.url)
    return browser


def test_the_token_field_sends_the_token(configured_page: WebDriver, tmp_path: Path) -> None:
    page = configured_page
    upload(page, photo(tmp_path))
    wait_alert(page, "missing or invalid API token")
    type_into(page, "API token", TOKEN)
    named(page, "API token").send_keys(Keys.TAB)  # `change`
    wait_result(page, 640, "image/jpeg")
    assert all(text == "" for text in alert_texts(page))
    command = curl_text(page)
    assert '"Authorization: Bearer $IMAGED_TOKEN"' in command and TOKEN not in command
    assert_no_console_errors(page, 401)


def test_a_url_instead_of_an_upload(configured_page: WebDriver, origin: Origin) -> None:
    page = configured_page
    source = origin.url(f"/img/{SMALL_JPEG}")
    type_into(page, "url", source)
    named(page, "url").send_keys(Keys.TAB)
    type_into(page, "width", "160")
    wait_result(page, 160, "image/jpeg")
    wait_until(lambda: natural_width(page, "original") == 640, "the original shown")
    command = curl_text(page)
    assert "-X PUT" not in command and "url=http" in command and "width=160" in command
    wait_until(lambda: '"width": 640' in metadata_text(page), "the source's metadata")
    assert_no_console_errors(page)


# --- more of the controls (default server) ------------------------------------------------------


def test_a_format_list_is_negotiated_with_the_accept_it_sends(
    page: WebDriver, tmp_path: Path
) -> None:
    upload(page, photo(tmp_path))
    type_into(page, "width", "100")
    type_into(page, "format list", "avif,webp")
    type_into(page, "Accept", "image/webp")
    headers = wait_result(page, 100, "image/webp")
    assert headers["vary"] == "Accept"
    assert not named(page, "format").is_enabled()  # the list overrides it
    command = curl_text(page)
    assert "format=avif,webp" in command and "-H 'Accept: image/webp'" in command
    type_into(page, "Accept", "image/avif")
    wait_result(page, 100, "image/avif")
    run_curl(page, tmp_path)  # its output is named after the format the server chose
    assert (tmp_path / "result.avif").read_bytes()[4:12] == b"ftypavif"
    assert_no_console_errors(page)


def test_blur_takes_a_flag_or_a_sigma_and_every_control_resets(
    page: WebDriver, tmp_path: Path
) -> None:
    upload(page, photo(tmp_path))
    choose(page, "blur", "number")
    type_into(page, "blur value", "2.5")
    type_into(page, "width", "200")
    choose(page, "lossless", "true")
    choose(page, "format", "webp")
    wait_until(lambda: "blur=2.5" in curl_text(page), "blur=2.5")
    wait_result(page, 200, "image/webp")
    assert "lossless=true" in curl_text(page)
    named(page, "reset width").click()
    wait_until(lambda: "width=" not in curl_text(page), "width reset")
    assert named(page, "width").get_attribute("value") == ""
    choose(page, "blur", "true")
    wait_until(lambda: "blur=true" in curl_text(page), "blur=true")
    named(page, "Reset all").click()
    wait_until(lambda: "?" not in curl_text(page), "every parameter reset")
    assert Select(named(page, "format")).first_selected_option.get_attribute("value") == "jpeg"
    wait_result(page, 640, "image/jpeg")
    assert_no_console_errors(page)


# A small PNG made in the page (a canvas), wrapped as a File in a DataTransfer.
MAKE_FILE = """
const canvas = document.createElement("canvas");
canvas.width = 120; canvas.height = 80;
const context = canvas.getContext("2d");
context.fillStyle = "#3a6"; context.fillRect(0, 0, 120, 80);
return new Promise((resolve) => canvas.toBlob((blob) => {
  const data = new DataTransfer();
  data.items.add(new File([blob], arguments[0], { type: "image/png" }));
  resolve(data);
}, "image/png"));
"""


def test_an_image_can_be_dropped_or_pasted(page: WebDriver) -> None:
    js(
        page,
        f"""return (async () => {{
          const data = await (async () => {{ {MAKE_FILE} }})();
          const zone = document.getElementById("drop");
          zone.dispatchEvent(new DragEvent("drop", {{ dataTransfer: data, bubbles: true,
                                                      cancelable: true }}));
        }})();""",
        "dropped.png",
    )
    wait_until(lambda: "dropped.png" in curl_text(page), "the dropped file")
    wait_result(page, 120, "image/jpeg")
    js(
        page,
        f"""return (async () => {{
          const data = await (async () => {{ {MAKE_FILE} }})();
          document.dispatchEvent(new ClipboardEvent("paste", {{ clipboardData: data }}));
        }})();""",
        "pasted.png",
    )
    wait_until(lambda: "pasted.png" in curl_text(page), "the pasted file")
    wait_until(lambda: natural_width(page, "original") == 120, "the pasted original")
    assert_no_console_errors(page)


def test_formats_the_browser_cannot_show_are_said_and_downloadable(
    page: WebDriver,
    tmp_path: Path,
    downloads: Path,  # noqa: F811
) -> None:
    upload(page, photo(tmp_path, "tiff-rgb16-adobergb-fujixt2.tiff"))
    wait_result(page, 317, "image/jpeg")  # the server reads what Chromium cannot show
    frame = page.find_element(By.ID, "original-frame")
    wait_until(lambda: "cannot display" in frame.text, "the original's note")
    assert natural_width(page, "original") == 0
    choose(page, "format", "tiff")
    wait_until(lambda: shown_headers(page).get("content-type") == "image/tiff", "a TIFF")
    result_frame = page.find_element(By.ID, "result-frame")
    wait_until(lambda: "cannot display tiff" in result_frame.text, "the result's note")
    saved = download(page, named(page, "download result.tiff"), downloads)
    assert pyvips.Image.new_from_buffer(saved, "").width == 317
    assert_no_console_errors(page)


# axe-core 3.1.1 predates HTML's `<div>` groups inside `<dl>` (valid HTML, allowed by axe
# since 3.3): its `dlitem` rule would flag the facts list for that alone.
AXE_OPTIONS = json.dumps({"rules": {"dlitem": {"enabled": False}}})  # pasted into JS as is


def test_an_accessibility_audit_finds_nothing(page: WebDriver, tmp_path: Path) -> None:
    upload(page, photo(tmp_path))
    type_into(page, "quality", "500")  # a warning
    for flag in ("exif", "thumbhash", "blurhash"):
        named(page, flag).click()
    wait_until(lambda: warnings_shown(page), "the warning")
    wait_until(lambda: '"blurhash"' in metadata_text(page), "the hashes")
    for scheme in ("light", "dark"):
        with color_scheme(page, scheme):
            audit = Axe(page)
            audit.inject()
            violations = audit.run(options=AXE_OPTIONS)["violations"]
        found = {v["id"]: [n["target"] for n in v["nodes"]] for v in violations}
        assert found == {}, scheme
    assert_no_console_errors(page)
