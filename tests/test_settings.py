"""The settings registry: strict integers, booleans, consistency with `Settings`, and the
generated docs/configuration.md staying complete and in sync."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest

from imaged.errors import ConfigError
from imaged.settings import REGISTRY, Settings, parse_bool, parse_int
from imaged.settings_doc import render_markdown
from tests.serverproc import ROOT

DOCS = ROOT / "docs" / "configuration.md"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("8000", 8000), (" 42 ", 42), ("\t9\n", 9), ("+7", 7), ("007", 7), ("65535", 65535)],
)
def test_parse_int_accepts_decimal_integers(raw: str, expected: int) -> None:
    assert parse_int(raw, "Invalid port", 1, 65535) == expected


@pytest.mark.parametrize(
    "raw",
    ["8000abc", "3.7", "1e3", "", " ", "0x10", "0o7", "0b1", "1_000", "٣", "١٢", "Infinity",
     "NaN", "--1", "+-1", "1 2", "0", "-1", "65536", "99999999999999999999999"],
)  # fmt: skip
def test_parse_int_rejects_everything_else(raw: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_int(raw, "Invalid port", 1, 65535)
    assert info.value.message == "Invalid port"
    assert info.value.fields == {"value": raw}  # the raw string, unstripped


def test_parse_int_has_no_upper_bound_by_default() -> None:
    assert parse_int("99999999999999999999999", "x") == 99999999999999999999999


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("true", True), ("TRUE", True), ("1", True), ("false", False), ("False", False),
     ("FALSE", False), ("0", False), ("", True), ("yes", True), ("no", True), ("off", True),
     (" false", True), ("00", True)],
)  # fmt: skip
def test_parse_bool(raw: str, expected: bool) -> None:
    assert parse_bool(raw) is expected


def test_registry_is_consistent_with_settings() -> None:
    names = [s.name for s in REGISTRY]
    envs = [s.env for s in REGISTRY]
    flags = [f for s in REGISTRY for f in s.flags]
    assert len(set(names)) == len(names) and len(set(envs)) == len(envs)
    assert len(set(flags)) == len(flags)
    fields = {f.name for f in dataclasses.fields(Settings)}
    assert set(names) == fields
    defaults = Settings()
    for setting in REGISTRY:
        if setting.default is not None:
            assert getattr(defaults, setting.name) == setting.default, setting.name
        if setting.kind == "int":
            assert setting.error, setting.name
        assert all(f.startswith("-") for f in setting.flags)


def test_spec_defaults() -> None:
    settings = Settings()
    assert settings.port == 8000 and settings.body_limit == 16777216
    assert settings.pixel_limit == 100000000 and settings.dimension_limit == 16384
    assert settings.max_pipeline_tasks == 10 and settings.log_format == "text"
    assert settings.log_level == "info" and settings.concurrency >= 1
    assert settings.header_timeout <= 60 and settings.body_timeout <= 60
    assert settings.keepalive_timeout == 10 and settings.shutdown_timeout == 10


def test_docs_are_generated_from_the_registry() -> None:
    assert DOCS.read_text() == render_markdown(), (
        "docs/configuration.md is stale: run "
        "`python -m imaged.settings --markdown > docs/configuration.md`"
    )


def test_docs_mention_every_flag_env_and_message() -> None:
    text = DOCS.read_text()
    for setting in REGISTRY:
        for flag in setting.flags:
            assert f"`{flag}`" in text, flag
        assert f"`{setting.env}`" in text, setting.env
        if setting.error:
            assert setting.error in text, setting.error
    for message in (
        "Both --tls-cert and --tls-key must be provided for TLS",
        "TLS certificate file not found",
        "TLS key file not found",
        "mTLS CA certificate file not found",
        "--mtls-ca requires TLS to be enabled (--tls-cert and --tls-key)",
        "Pipeline endpoint requires AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
        "Invalid allowed-hosts regex: pattern may cause catastrophic backtracking",
        "Refusing to overwrite existing non-socket at UNIX path",
        "Timeout reached, forcing exit",
        "VIPS_CONCURRENCY",
    ):
        assert message in text, message


def test_markdown_command() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "imaged.settings", "--markdown"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=30,
    )
    assert result.returncode == 0
    assert result.stdout == render_markdown()
    bad = subprocess.run(
        [sys.executable, "-m", "imaged.settings"], capture_output=True, text=True, timeout=30
    )
    assert bad.returncode == 1 and "usage" in bad.stderr
