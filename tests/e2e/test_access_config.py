"""Access-control settings on the real process (access.md, config.md): FATAL lines that name
the index and never the value, their place in the validation order, empty = none, the
startup counts, and no secret anywhere in the log, --help, error bodies or /healthz."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest
from tests.access_support import KEY_NEW, KEY_OLD, KEYS, TOKEN, TOKEN_2, TOKENS, signed
from tests.fetch_origin import SMALL_JPEG, Origin
from tests.hardening import raw_request
from tests.serverproc import CORPUS, ServerProcess, run_cli
from tests.test_cli import Case, assert_fatal, fatal_line

KEY = "Invalid signing key"
TOKEN_ERROR = "Invalid API token"
SECRETS = [KEY_NEW, KEY_OLD, KEY_NEW.upper(), KEY_OLD.upper(), TOKEN, TOKEN_2]
JPEG = (CORPUS / SMALL_JPEG).read_bytes()


def test_invalid_signing_keys_name_their_index() -> None:
    short, odd = "ab" * 31, "ab" * 32 + "c"
    cases: list[Case] = [
        ([], {"SIGNING_KEYS": "zz" * 32}, fatal_line(KEY, index="0")),
        ([], {"SIGNING_KEYS": short}, fatal_line(KEY, index="0")),
        ([], {"SIGNING_KEYS": odd}, fatal_line(KEY, index="0")),
        ([], {"SIGNING_KEYS": "0x" + KEY_NEW}, fatal_line(KEY, index="0")),
        ([], {"SIGNING_KEYS": f"{KEY_NEW},,{KEY_OLD}"}, fatal_line(KEY, index="1")),
        ([], {"SIGNING_KEYS": f"{KEY_NEW},{KEY_OLD},"}, fatal_line(KEY, index="2")),
        ([], {"SIGNING_KEYS": " "}, fatal_line(KEY, index="0")),
        (["--signing-keys", f"{KEY_NEW},{short}"], None, fatal_line(KEY, index="1")),
        ([f"--signing-keys={odd}"], {"SIGNING_KEYS": KEYS}, fatal_line(KEY, index="0")),
    ]
    assert_fatal(cases)


def test_invalid_api_tokens_name_their_index() -> None:
    cases: list[Case] = [
        ([], {"API_TOKENS": "a" * 15}, fatal_line(TOKEN_ERROR, index="0")),
        ([], {"API_TOKENS": "a" * 257}, fatal_line(TOKEN_ERROR, index="0")),
        ([], {"API_TOKENS": "token-with!bang-0123"}, fatal_line(TOKEN_ERROR, index="0")),
        ([], {"API_TOKENS": "token with-space-0123"}, fatal_line(TOKEN_ERROR, index="0")),
        ([], {"API_TOKENS": "token=in-the-middle0"}, fatal_line(TOKEN_ERROR, index="0")),
        ([], {"API_TOKENS": "tökén-0123456789abcd"}, fatal_line(TOKEN_ERROR, index="0")),
        ([], {"API_TOKENS": f"{TOKEN},short"}, fatal_line(TOKEN_ERROR, index="1")),
        ([], {"API_TOKENS": f"{TOKEN},"}, fatal_line(TOKEN_ERROR, index="1")),
        (["--api-tokens", f"{TOKEN},{TOKEN_2},x"], None, fatal_line(TOKEN_ERROR, index="2")),
    ]
    assert_fatal(cases)


def test_validated_after_the_existing_checks_keys_before_tokens() -> None:
    bad_key, bad_token = {"SIGNING_KEYS": "zz"}, {"API_TOKENS": "x"}
    pipeline = (
        "Pipeline endpoint requires AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY environment "
        "variables"
    )
    cases: list[Case] = [
        (["--port", "abc"], {**bad_key, **bad_token}, fatal_line("Invalid port", value="abc")),
        (
            ["--max-pipeline-tasks", "0"],
            bad_key,
            fatal_line("Invalid max-pipeline-tasks", value="0"),
        ),
        (["--enable-pipeline"], {**bad_key, **bad_token}, fatal_line(pipeline)),
        ([], {**bad_key, **bad_token}, fatal_line(KEY, index="0")),
    ]
    assert_fatal(cases)


def test_valid_lists_with_spaces_are_accepted_and_help_shows_no_secret() -> None:
    env = {"SIGNING_KEYS": f" {KEY_NEW} ,\t{KEY_OLD.upper()}", "API_TOKENS": f"{TOKEN}, {TOKEN_2}"}
    result = run_cli(["--help"], env)
    assert result.returncode == 0 and "--signing-keys" in result.stdout
    assert "SIGNING_KEYS" in result.stdout and "API_TOKENS" in result.stdout
    for secret in SECRETS:
        assert secret not in result.stdout + result.stderr


def test_empty_values_mean_none_configured() -> None:
    """`SIGNING_KEYS=` and `API_TOKENS=`: 0.2.3's behaviour, 0.2.3's startup log."""
    with (
        Origin() as origin,
        ServerProcess(
            ["--enable-fetch", "--disable-ssrf-protection"], {"SIGNING_KEYS": "", "API_TOKENS": ""}
        ) as proc,
    ):
        url = quote(origin.url(f"/img/{SMALL_JPEG}"), safe="")
        assert raw_request(proc.port, "GET", f"/metadata?url={url}").status == 200
        assert raw_request(proc.port, "PUT", "/metadata", JPEG).status == 200
        lines = proc.lines()
    assert not [line for line in lines if " INFO signing " in line or " INFO api " in line]


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_startup_counts_and_no_secret_in_the_log(log_format: str) -> None:
    """Every kind of request, accepted and refused, at debug level: the log has the counts
    and the request lines, and none of the keys or tokens, in either format."""
    args = ["--enable-fetch", "--disable-ssrf-protection", "-L", "debug", "-l", log_format]
    with Origin() as origin, ServerProcess(args, {"SIGNING_KEYS": KEYS, "API_TOKENS": TOKENS}) as p:
        url = quote(origin.url(f"/img/{SMALL_JPEG}"), safe="")
        answers = [
            raw_request(p.port, "GET", signed(f"/metadata?url={url}")),
            raw_request(p.port, "GET", signed(f"/metadata?url={url}", KEY_OLD)),
            raw_request(p.port, "GET", f"/metadata?url={url}&sig={'A' * 43}"),
            raw_request(p.port, "GET", f"/metadata?url={url}"),
            raw_request(
                p.port, "GET", f"/metadata?url={url}", headers={"Authorization": f"Bearer {TOKEN}"}
            ),
            raw_request(p.port, "PUT", "/metadata", JPEG, {"Authorization": f"Bearer {TOKEN}"}),
            raw_request(p.port, "PUT", "/metadata", JPEG, {"Authorization": f"Bearer {TOKEN}x"}),
            raw_request(p.port, "PUT", "/metadata", JPEG, {"Authorization": f"Basic {TOKEN_2}"}),
            raw_request(p.port, "PUT", "/nothing", JPEG, {"Authorization": f"Bearer {TOKEN_2}"}),
            raw_request(p.port, "GET", "/healthz"),
        ]
        assert [a.status for a in answers] == [200, 200, 403, 403, 200, 200, 401, 401, 404, 200]
        p.wait_log("/healthz")  # the last request line is written
        log = p.log()
    for answer in answers:
        for secret in SECRETS:
            assert secret not in answer.text and secret not in str(answer.headers)
    for secret in SECRETS:
        assert secret not in log, secret
    lines = log.splitlines()
    listening = next(i for i, line in enumerate(lines) if "server listening" in line)
    if log_format == "text":
        assert lines[listening - 2].endswith(" INFO signing keys=2")
        assert lines[listening - 1].endswith(" INFO api tokens=2")
        assert sum(" DEBUG request " in line for line in lines) == len(answers)
    else:
        records = [json.loads(line) for line in lines[listening - 2 : listening]]
        assert [(r["msg"], r.get("keys"), r.get("tokens")) for r in records] == [
            ("signing", 2, None),
            ("api", None, 2),
        ]
