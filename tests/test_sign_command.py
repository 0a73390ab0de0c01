"""`imaged sign` (access.md, "The `sign` command") as a real process, and the subcommand
dispatch of `cli.main` that leaves the server's own command line unchanged. Signatures are
recomputed with plain `hmac` (tests/access_support.py)."""

from __future__ import annotations

import re
import time

from imaged.cli import SUBCOMMANDS
from tests.access_support import KEY_NEW, KEY_OLD, KEYS, mac, signed
from tests.serverkit import run_cli_many
from tests.serverproc import run_cli

EXAMPLE = "/transform?url=https%3A%2F%2Fa.example%2Fp.jpg&width=300"
NO_KEY = "no signing key: pass --key or set SIGNING_KEYS\n"


def test_signs_with_the_first_configured_key() -> None:
    result = run_cli(["sign", EXAMPLE], {"SIGNING_KEYS": KEYS})
    assert (result.returncode, result.stdout, result.stderr) == (0, signed(EXAMPLE) + "\n", "")


def test_key_option_beats_the_environment() -> None:
    result = run_cli(["sign", "--key", KEY_OLD, EXAMPLE], {"SIGNING_KEYS": KEY_NEW})
    assert result.stdout == signed(EXAMPLE, KEY_OLD) + "\n"
    # --key alone, and a --key with surrounding whitespace and capitals
    expected = signed("/metadata", KEY_OLD) + "\n"
    for key in (KEY_OLD, f" {KEY_OLD.upper()} "):
        assert run_cli(["sign", f"--key={key}", "/metadata"]).stdout == expected


def test_expires_options_are_signed() -> None:
    before = int(time.time())
    expires_in = run_cli(["sign", "--expires-in", "3600", EXAMPLE], {"SIGNING_KEYS": KEYS})
    after = int(time.time())
    match = re.fullmatch(
        rf"{re.escape(EXAMPLE)}&expires=(\d+)&sig=([\w-]{{43}})\n", expires_in.stdout
    )
    assert match, expires_in.stdout
    assert before + 3600 <= int(match[1]) <= after + 3600
    assert match[2] == mac(KEY_NEW, f"{EXAMPLE}&expires={match[1]}".encode())
    fixed = run_cli(["sign", "--expires", "1767225600", "/metadata"], {"SIGNING_KEYS": KEYS})
    assert fixed.stdout == signed("/metadata?expires=1767225600") + "\n"


def test_errors_exit_1_on_stderr_without_the_key() -> None:
    env = {"SIGNING_KEYS": KEYS}
    cases = [
        (["sign", EXAMPLE], None, NO_KEY),
        (["sign", EXAMPLE], {"SIGNING_KEYS": ""}, NO_KEY),  # empty: none configured
        (["sign", "--key", "ab" * 31, EXAMPLE], None, "Invalid signing key\n"),
        (["sign", "--key", "xyz", EXAMPLE], env, "Invalid signing key\n"),
        (
            ["sign", EXAMPLE],
            {"SIGNING_KEYS": f"{KEY_NEW},{'ab' * 31}"},
            "Invalid signing key index=1\n",
        ),
        (["sign", f"{EXAMPLE}&sig=abc"], env, "already signed\n"),
        (["sign", "--expires", "1", "/t?expires=2"], env, "already has an expires parameter\n"),
        (["sign", "--expires-in", "0", EXAMPLE], env, "Invalid expires-in value=0\n"),
        (["sign", "--expires-in", "1e3", EXAMPLE], env, "Invalid expires-in value=1e3\n"),
        (["sign", "--expires", "+5", EXAMPLE], env, "invalid expires\n"),
        (["sign", "--expires", "1234567890123", EXAMPLE], env, "invalid expires\n"),
        (
            ["sign", "https://a.example/transform?width=1"],
            env,
            "the path and query must start with '/' (sign the path, not the whole URL)\n",
        ),
    ]
    results = run_cli_many([(args, env) for args, env, _ in cases])
    for (args, _, stderr), result in zip(cases, results, strict=True):
        assert (result.returncode, result.stdout, result.stderr) == (1, "", stderr), args
        assert KEY_NEW not in result.stderr and "ab" * 31 not in result.stderr


def test_usage_errors_exit_1() -> None:
    cases = [
        ["sign"],  # PATH_AND_QUERY is required
        ["sign", "--expires", "1", "--expires-in", "1", EXAMPLE],  # one or the other
        ["sign", "--bogus", EXAMPLE],
        ["sign", "/a", "/b"],
    ]
    for args, result in zip(cases, run_cli_many([(a, None) for a in cases]), strict=True):
        assert result.returncode == 1 and result.stdout == "", args
        assert result.stderr.startswith("imaged sign: error: "), result.stderr
        assert "Try 'imaged sign --help'." in result.stderr


def test_help_and_dispatch() -> None:
    """`imaged sign --help` is the command's help; the server's help lists the commands;
    `sign` anywhere but first is the server's usage error, as any positional is."""
    sign_help, server_help, late, positional = run_cli_many(
        [
            (["sign", "--help"], None),
            (["--help"], None),
            (["--port", "1", "sign"], None),
            (["serve"], None),
        ]
    )
    assert sign_help.returncode == 0 and sign_help.stdout.startswith("usage: imaged sign ")
    for option in ("--key", "--expires-in", "--expires", "PATH_AND_QUERY"):
        assert option in sign_help.stdout
    assert server_help.returncode == 0
    words = " ".join(server_help.stdout.split())  # argparse wraps the epilog
    for name, command in SUBCOMMANDS.items():
        assert f"imaged {name} ({command.summary})" in words
    for result in (late, positional):
        assert result.returncode == 1 and "imaged: error:" in result.stderr
