"""`animated=true` over HTTP (animation.md): every frame of a GIF or WebP through every
geometry and effect, delays and loop count kept, gif ↔ webp, the warning for outputs that
cannot animate, `X-Image-Frames`, the frame and pixel limits, and the memory bound.

"Each frame equals the same operation applied to that frame as a still": the reference for
frame k is the input's frame k as the decoder renders it (a lossless PNG), sent through
/transform with the same query; animated WebP is compared losslessly, animated GIF against
the still as GIF (both quantised to a palette).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import pyvips
from tests.animations import (
    GifFrame,
    Pixels,
    encode_animation,
    frames_of,
    gif_bytes,
    info,
    mad,
    moving_square,
    palette,
    png,
    rgba,
    splice_gif_frames,
    still_frames,
    tiny_gif,
)
from tests.hardening import proc_status
from tests.pipeline_helpers import put_form, task
from tests.serverproc import CORPUS, ServerProcess
from tests.transform_support import TEXT, ok, put, size

DELAYS = [40, 80, 120, 60, 100]
COLOURS = palette([(250, 20, 20), (20, 250, 20), (20, 20, 250), (240, 240, 0), (0, 0, 0)])
CORPUS_GIF = (CORPUS / "gif-animated-10f.gif").read_bytes()
CORPUS_WEBP = (CORPUS / "webp-animated-10f.webp").read_bytes()
CORPUS_DELAYS = [3000] * 9 + [15000]
SOURCES = {
    "gif": encode_animation(moving_square(5, 48, 36), ".gif", DELAYS, 3),
    "gif-transparent": encode_animation(moving_square(5, 48, 36, alpha=True), ".gif", DELAYS, 0),
    "webp-alpha": encode_animation(
        moving_square(5, 48, 36, alpha=True, seed=2), ".webp", DELAYS, 0, lossless=True
    ),
    # Frames of their own sizes and places on the canvas, each with its own palette,
    # disposal to background, a transparent colour, a zero delay: the decoder composes full
    # frames from them. (No global palette: the GIF saver would reuse it, `reuse`, for
    # frames and stills alike, and dither resized pixels to its 5 colours.)
    "gif-subframes": gif_bytes(
        40,
        30,
        [
            GifFrame(bytes(i % 3 for i in range(40 * 30)), 40, 30, delay_cs=5, palette=COLOURS),
            GifFrame(bytes([3] * 12 * 9), 12, 9, left=4, top=3, delay_cs=0, palette=COLOURS),
            GifFrame(
                bytes([4, 5] * 50),
                10,
                10,
                left=25,
                top=15,
                transparent=5,
                disposal=2,
                palette=COLOURS,
            ),
            GifFrame(bytes([1] * 30 * 4), 30, 4, left=5, top=20, delay_cs=25, palette=COLOURS),
        ],
        loop=2,
    ),
}
OPERATIONS = [
    "",
    "width=24",
    "width=30&height=30",
    "width=30&height=20&position=left%20top",
    "width=40&height=40&fit=contain",
    "width=30&height=30&fit=contain&position=southeast&blur=1.5",
    "width=20&height=30&fit=fill",
    "width=25&height=25&fit=inside",
    "width=25&height=25&fit=outside",
    "width=24&kernel=nearest",
    "blur=true",
    "blur=2.5&width=30",
    "greyscale=true&width=30",
]
CANNOT_ANIMATE = "output cannot be animated; first frame used"


Stills = dict[tuple[str, str, str], list[Pixels]]


@pytest.fixture(scope="module")
def codecs(client: httpx.Client) -> dict[str, list[str]]:
    body: dict[str, list[str]] = client.get("/healthz").json()
    return body


@pytest.fixture(scope="module")
def stills() -> Stills:
    """(source, operation, still format) → each frame's output as a still (computed once)."""
    return {}


def decoded(r: httpx.Response) -> Pixels:
    return rgba(pyvips.Image.new_from_buffer(r.content, ""))


def reference(
    client: httpx.Client, cache: Stills, source: str, query: str, fmt: str
) -> list[Pixels]:
    """The same operation applied to each frame of `source` as a still image."""
    key = (source, query, fmt)
    if key not in cache:
        frames = still_frames(SOURCES[source])
        cache[key] = [decoded(ok(client, f"{query}&format={fmt}", f)) for f in frames]
    return cache[key]


def animated(client: httpx.Client, query: str, data: bytes) -> httpx.Response:
    r = ok(client, f"{query}&animated=true", data)
    assert "x-imaged-warnings" not in r.headers, r.headers["x-imaged-warnings"]
    return r


@pytest.mark.parametrize("query", OPERATIONS)
@pytest.mark.parametrize("source", list(SOURCES))
@pytest.mark.parametrize(("fmt", "extra", "still", "tolerance"), [
    ("webp", "&lossless=true", "png", 0.5),
    ("gif", "", "gif", 3.0),
])  # fmt: skip
def test_every_frame_is_the_still_operation(
    client: httpx.Client,
    stills: Stills,
    source: str,
    query: str,
    fmt: str,
    extra: str,
    still: str,
    tolerance: float,
) -> None:
    data = SOURCES[source]
    source_info = info(data)
    r = animated(client, f"{query}&format={fmt}{extra}", data)
    out = info(r.content)
    expected = reference(client, stills, source, query, still)
    assert out.frames == source_info.frames == len(expected)
    assert r.headers["x-image-frames"] == str(out.frames)
    assert size(r) == (out.width, out.height) == expected[0].shape[1::-1]
    assert out.loop == source_info.loop
    if fmt == "gif":  # centiseconds
        assert out.delays == [round(d / 10) * 10 for d in source_info.delays or []]
    else:  # libwebp stores delays of 10 ms or less as 100 ms (as browsers play them)
        assert out.delays == [d if d > 10 else 100 for d in source_info.delays or []]
    differences = [mad(a, e) for a, e in zip(frames_of(r.content), expected, strict=True)]
    assert max(differences) <= tolerance, differences


def test_corpus_animations_keep_frames_delays_and_loop(client: httpx.Client) -> None:
    for data in (CORPUS_GIF, CORPUS_WEBP):
        for fmt in ("webp", "gif"):
            r = animated(client, f"width=200&format={fmt}", data)
            assert r.headers["content-type"] == f"image/{fmt}"
            out = info(r.content)
            assert (out.width, out.height, out.frames) == (200, 154, 10)
            assert size(r) == (200, 154) and r.headers["x-image-frames"] == "10"
            assert out.delays == CORPUS_DELAYS and out.loop == 3


def test_corpus_frames_match_their_stills(client: httpx.Client) -> None:
    r = animated(client, "width=120&height=120&format=webp&lossless=true", CORPUS_GIF)
    got = frames_of(r.content)
    for frame, expected in zip(got, still_frames(CORPUS_GIF), strict=True):
        still = decoded(ok(client, "width=120&height=120&format=png", expected))
        assert mad(frame, still) <= 0.5


@pytest.mark.parametrize("loop", [0, 3])
def test_gif_to_webp_and_back(client: httpx.Client, loop: int) -> None:
    delays = [20, 50, 130, 70, 1000, 40]
    gif = encode_animation(moving_square(6, 50, 40, seed=loop), ".gif", delays, loop)
    webp = animated(client, "format=webp&width=40", gif).content
    back = animated(client, "format=gif", webp).content
    for data in (webp, back):
        out = info(data)
        assert (out.frames, out.delays, out.loop) == (6, delays, loop)
        assert (out.width, out.height) == (40, 32)
    for a, b in zip(frames_of(back), frames_of(webp), strict=True):
        assert mad(a, b) <= 4


def test_gif_stores_delays_to_the_nearest_10_ms(client: httpx.Client) -> None:
    webp = encode_animation(moving_square(4, 20, 20), ".webp", [44, 46, 123, 1000], 0)
    out = info(animated(client, "format=gif", webp).content)
    assert out.delays == [40, 50, 120, 1000]


def test_huge_loop_count_stays_finite_in_webp(client: httpx.Client) -> None:
    frames = [GifFrame(bytes([i] * 64), 8, 8, palette=COLOURS) for i in range(3)]
    gif = gif_bytes(8, 8, frames, loop=65535)
    assert info(gif).loop == 65536  # libvips counts plays: 65535 repeats + the first
    assert info(animated(client, "format=webp", gif).content).loop == 65535  # WebP's largest
    assert info(animated(client, "format=gif", gif).content).loop == 65536


def crossing_square(frames: int, width: int, height: int) -> list[pyvips.Image]:
    """A saturated square crossing a dull, slightly changing background from left to right:
    what a smart crop of each frame alone would follow."""
    side = height // 2
    out = []
    for index in range(frames):
        background = pyvips.Image.black(width, height).new_from_image([70 + 15 * index] * 3)
        square = pyvips.Image.black(side, side).new_from_image([230, 20, 40])
        left = index * (width - side) // (frames - 1)
        frame = background.insert(square, left, height // 4).cast("uchar")
        out.append(frame.copy(interpretation="srgb"))
    return out


@pytest.mark.parametrize("position", ["attention", "entropy"])
def test_smart_crop_window_is_chosen_on_the_first_frame(
    client: httpx.Client, position: str
) -> None:
    """The window is the first frame's smart crop, and every later frame is cut at the same
    place (no jitter) although stills of those frames would be cut elsewhere."""
    data = encode_animation(crossing_square(6, 96, 48), ".gif", [100] * 6)
    query = f"width=40&height=40&position={position}"
    r = animated(client, f"{query}&format=webp&lossless=true", data)
    got = frames_of(r.content)
    assert len(got) == 6
    frames = still_frames(data)
    first = rgba(
        pyvips.Image.new_from_buffer(ok(client, f"{query}&format=png", frames[0]).content, "")
    )
    assert mad(got[0], first) <= 0.5
    resized = [  # cover scales 96×48 → 80×40, then cuts 40×40
        decoded(ok(client, "height=40&format=png", f)) for f in frames
    ]
    lefts = [x for x in range(41) if mad(resized[0][:, x : x + 40], got[0]) <= 0.5]
    assert lefts, "the first frame's window is not a 40×40 cut of the resized frame"
    left = lefts[0]
    moved = 0
    for index, frame in enumerate(got):
        assert mad(frame, resized[index][:, left : left + 40]) <= 0.5, index
        moved += mad(decoded(ok(client, f"{query}&format=png", frames[index])), frame) > 0.5
    assert moved, "every still picked the same window: the test would not see jitter"


def test_outputs_that_cannot_animate_take_the_first_frame(
    client: httpx.Client, codecs: dict[str, list[str]]
) -> None:
    first = still_frames(SOURCES["gif"])[0]
    for fmt in ("jpeg", "png", "avif", "heic", "jxl", "tiff", "raw"):
        if fmt not in codecs["encoders"]:
            continue
        r = ok(client, f"width=24&format={fmt}&animated=true", SOURCES["gif"])
        assert r.headers["x-imaged-warnings"] == f"animated: {fmt} {CANNOT_ANIMATE}"
        assert "x-image-frames" not in r.headers
        still = ok(client, f"width=24&format={fmt}", first)
        assert size(r) == size(still) == (24, 18)
        if fmt in ("png", "raw", "tiff"):  # lossless: the very first frame
            assert r.content == still.content


def test_strict_mode_refuses_the_first_frame(client: httpx.Client) -> None:
    r = put(client, "format=jpeg&animated=true&strict=true", SOURCES["gif"])
    assert r.status_code == 400 and r.headers["content-type"] == TEXT
    assert r.text == (
        "Invalid parameters:\n"
        '- animated: jpeg output cannot be animated; first frame used (got "true")'
    )
    assert put(client, "format=gif&animated=true&strict=true", SOURCES["gif"]).status_code == 200


def test_negotiation_is_unchanged_and_warns(client: httpx.Client) -> None:
    r = ok(client, "format=avif,webp&animated=1", CORPUS_GIF, {"Accept": "image/avif"})
    assert r.headers["content-type"] == "image/avif" and r.headers["vary"] == "Accept"
    assert r.headers["x-imaged-warnings"] == f"animated: avif {CANNOT_ANIMATE}"
    r = ok(client, "format=avif,webp&animated=1", CORPUS_GIF, {"Accept": "image/webp"})
    assert r.headers["content-type"] == "image/webp" and r.headers["x-image-frames"] == "10"


def test_parameter_warnings_come_before_the_animation_warning(client: httpx.Client) -> None:
    r = ok(client, "format=png&animated=yes&zzz=1", SOURCES["gif"])
    assert r.headers["x-imaged-warnings"] == (
        f"zzz: unknown parameter; animated: must be true, false, 1, or 0; "
        f"animated: png {CANNOT_ANIMATE}"
    )
    r = put(client, "format=gif&animated=yes&strict=1", SOURCES["gif"])
    assert r.status_code == 400
    assert r.text == 'Invalid parameters:\n- animated: must be true, false, 1, or 0 (got "yes")'


def test_without_animated_only_the_first_frame_is_used(client: httpx.Client) -> None:
    for query in ("format=webp", "format=webp&animated=false", "format=webp&animated=0"):
        r = ok(client, query, CORPUS_GIF)
        assert "x-image-frames" not in r.headers and "x-imaged-warnings" not in r.headers
        assert info(r.content).frames == 1
    r = ok(client, "format=jpeg&animated=false", CORPUS_GIF)
    assert "x-imaged-warnings" not in r.headers


def test_a_single_frame_input_is_a_still(client: httpx.Client) -> None:
    for data in (
        png(moving_square(1, 30, 20)[0]),
        encode_animation(moving_square(1, 30, 20), ".gif"),
    ):
        for fmt in ("gif", "webp", "jpeg"):
            plain = ok(client, f"width=20&format={fmt}", data)
            with_flag = ok(client, f"width=20&format={fmt}&animated=true", data)
            assert with_flag.content == plain.content
            assert "x-imaged-warnings" not in with_flag.headers
            assert "x-image-frames" not in with_flag.headers


def test_identical_frames_merged_by_the_encoder_are_counted_as_written(
    client: httpx.Client,
) -> None:
    frames = moving_square(3, 20, 20)
    data = encode_animation([frames[0], frames[1], frames[2]], ".webp", [100, 200, 300], 0)
    # Cutting the 20×20 frames to their top-right 4×4 corner, which the square never
    # reaches, makes frames 2 and 3 identical (frame 1 differs: see the gradient's blue).
    r = animated(client, "format=gif&width=4&height=4&position=right%20top", data)
    out = info(r.content)
    assert r.headers.get("x-image-frames", "1") == str(out.frames)
    assert sum(out.delays or []) == 600


# --- limits ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def limited() -> Iterator[httpx.Client]:
    # The corpus animation: 10 frames of 370×285 = 105 450 pixels each.
    args = ["--max-frames", "5", "--pixel-limit", "600000", "--input-side-limit", "400"]
    with ServerProcess(["--concurrency", "2", *args]) as proc, proc.client() as c:
        yield c


def test_frame_limit(limited: httpx.Client) -> None:
    """More frames than --max-frames → 400 with `animated=true` only."""
    r = put(limited, "format=webp&animated=true&width=50", tiny_gif(6))
    assert (r.status_code, r.text) == (400, "image: Input image has too many frames (6 > 5)")
    r = ok(limited, "format=webp&animated=true&width=50", tiny_gif(5))
    assert r.headers["x-image-frames"] == "5"
    r = ok(limited, "format=webp&width=50", tiny_gif(6))  # only the first frame is decoded
    assert "x-image-frames" not in r.headers


def test_frame_limit_is_checked_before_the_pixel_limit(limited: httpx.Client) -> None:
    r = put(limited, "format=webp&animated=true&width=50", CORPUS_WEBP)  # 1 054 500 pixels
    assert (r.status_code, r.text) == (400, "image: Input image has too many frames (10 > 5)")
    five = encode_animation(moving_square(5, 370, 285), ".gif", [100] * 5, 0)
    r = ok(limited, "format=webp&animated=true&width=50", five)  # 527 250 pixels
    assert r.headers["x-image-frames"] == "5"


def test_pixel_limit_over_all_frames_with_the_same_text(
    start_server: Callable[..., ServerProcess],
) -> None:
    server = start_server("--pixel-limit", "1000000")
    with server.client() as client:
        r = put(client, "format=webp&animated=true&width=50", CORPUS_WEBP)  # 1 054 500 pixels
        assert (r.status_code, r.text) == (400, "image: Input image exceeds pixel limit")
        r = put(client, "format=webp&width=50", CORPUS_WEBP)
        assert r.status_code == 200
        # The output frames are held until the save: padding them beyond the limit is refused.
        query = "format=gif&width=500&height=500&fit=contain"  # 5 frames of 250 000 pixels
        r = put(client, f"{query}&animated=true", SOURCES["gif"])
        assert (r.status_code, r.text) == (400, "image: Processed animation exceeds pixel limit")
        r = put(client, query, SOURCES["gif"])
        assert r.status_code == 200 and size(r) == (500, 500)


def test_side_limits_apply_to_one_frame(limited: httpx.Client) -> None:
    """A strip of 5 frames 300 px high is 1500 px: over the input side limit (400) and,
    as output, over WebP's 16383 px only if it counted as one image."""
    tall = encode_animation(moving_square(5, 60, 300), ".gif", [100] * 5, 0)
    r = ok(limited, "format=webp&animated=true", tall)
    assert size(r) == (60, 300) and r.headers["x-image-frames"] == "5"


def test_encoder_side_limit_applies_to_one_frame(client: httpx.Client) -> None:
    frames = moving_square(60, 8, 300)
    data = encode_animation(frames, ".gif", [100] * 60, 0)  # a strip of 18 000 px
    r = animated(client, "format=webp", data)
    assert size(r) == (8, 300) and info(r.content).frames == 60


def test_dimension_limit_applies_to_one_frame(start_server: Callable[..., ServerProcess]) -> None:
    server = start_server("--dimension-limit", "100")
    with server.client() as client:
        r = ok(client, "format=webp&animated=true&width=300", CORPUS_GIF)
        assert r.headers["x-imaged-warnings"] == "width: must be at most 100"
        assert size(r) == (100, 77) and r.headers["x-image-frames"] == "10"


# --- memory -------------------------------------------------------------------------------------

MIB = 1024 * 1024


@functools.cache
def two_hundred_frames() -> bytes:
    """200 frames of 1000×1000: a gradient, then a square at a new place in every frame."""
    side = 1000
    x = (pyvips.Image.xyz(side, side)[0] * 255 / side).cast("uchar")
    background = x.bandjoin([x.rot90(), (pyvips.Image.black(side, side) + 90).cast("uchar")])
    background = background.copy(interpretation="srgb")
    square = pyvips.Image.black(120, 120).new_from_image([255, 40, 0]).cast("uchar")
    two = encode_animation([background, background.insert(square, 10, 10)], ".gif", [40, 40], 0)
    return splice_gif_frames(two, 200)


def test_memory_grows_with_the_output_not_with_frames_times_input() -> None:
    """animation.md: a 200-frame 1000×1000 GIF → 200 px within +150 MiB peak RSS (the
    benchmark's figure is about half of that; all frames decoded at once would be 760 MiB)."""
    data = two_hundred_frames()
    assert info(data).frames == 200
    args = ["--concurrency", "1", "--pixel-limit", "300000000"]
    with ServerProcess(args) as server, server.client() as client:
        warm = animated(client, "format=webp&width=20", SOURCES["gif"])
        assert warm.status_code == 200
        before = proc_status(server.proc.pid, "VmRSS")
        r = animated(client, "format=webp&width=200", data)
        peak = proc_status(server.proc.pid, "VmHWM")
        assert size(r) == (200, 200) and r.headers["x-image-frames"] == "200"
        assert peak - before <= 150 * MIB, f"+{(peak - before) / MIB:.0f} MiB"


def test_a_long_animation_is_stopped_at_the_time_limit() -> None:
    """Every frame's pipeline stays reachable by the kill while it renders."""
    args = ["--concurrency", "1", "--pixel-limit", "300000000", "--operation-timeout", "1"]
    with ServerProcess(args) as server, server.client() as client:
        r = put(client, "format=gif&width=500&animated=true", two_hundred_frames())
        assert (r.status_code, r.text) == (400, "image: processing time limit of 1 s exceeded")
        assert ok(client, "format=gif&animated=true", SOURCES["gif"]).status_code == 200


# --- pipeline -------------------------------------------------------------------------------


def test_pipeline_outputs_report_their_frames(tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ["--enable-pipeline", "--output-dir", str(out), "--concurrency", "2"]
    env = {"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""}
    tasks = [
        task("anim", "webp", "b", "anim.webp", width=100, animated=True),
        task("gif", "gif", "b", "anim.gif", animated=True, metadata={}),
        task("still", "jpeg", "b", "still.jpg", width=100, animated=True),
        task("first", "webp", "b", "first.webp", width=100),
    ]
    with ServerProcess(args, env) as server, server.client() as client:
        response = put_form(client, {"tasks": tasks}, CORPUS_GIF)
    assert response.status_code == 200, response.text
    results = {t["id"]: t for t in json.loads(response.text)["tasks"]}
    assert all(t["status"] == "success" for t in results.values()), results
    anim = results["anim"]["output"]
    assert list(anim) == ["format", "width", "height", "frames", "size", "url"]
    assert (anim["width"], anim["height"], anim["frames"]) == (100, 77, 10)
    assert info((out / "b" / "anim.webp").read_bytes()).frames == 10
    assert results["gif"]["output"]["frames"] == 10
    assert results["gif"]["metadata"]["pages"] == 10  # metadata of the output: unchanged
    for still in ("still", "first"):  # no warnings channel: the first frame, not a failure
        assert "frames" not in results[still]["output"]
    assert info((out / "b" / "first.webp").read_bytes()).frames == 1
