"""The settings registry: strict integers, booleans, consistency with `Settings`, what the
registry can express (custom parsers, secrets, minimum 0, runtime defaults), and the
generated docs/configuration.md (and the README's excerpt) staying complete and in sync."""

from __future__ import annotations

import ast
import dataclasses
import re
import subprocess
import sys
import types
import typing
from typing import Any

import pytest

from imaged.errors import ConfigError
from imaged.resources import usable_cpus
from imaged.settings import (
    BY_NAME,
    REGISTRY,
    VALIDATION_ORDER,
    Fatal,
    Settings,
    computed,
    flag,
    integer,
    parse_bool,
    parse_int,
    parse_listen_address,
    registry_of,
    setting,
    text,
)
from imaged.settings_doc import render_markdown
from tests.serverproc import ROOT

DOCS = ROOT / "docs" / "configuration.md"
PIPELINE = (
    "Pipeline endpoint requires AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY environment variables"
)


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


def runtime_type(hint: Any) -> Any:
    """What `isinstance` can check of a field's annotation: `tuple[bytes, ...] | None` →
    `(tuple, NoneType)` (parameterised generics by their origin)."""
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return tuple(typing.get_origin(a) or a for a in args)
    return typing.get_origin(hint) or hint


def test_registry_is_consistent_with_settings() -> None:
    names = [s.name for s in REGISTRY]
    envs = [s.env for s in REGISTRY]
    flags = [f for s in REGISTRY for f in s.flags]
    assert len(set(envs)) == len(envs) and len(set(flags)) == len(flags)
    fields = [f.name for f in dataclasses.fields(Settings) if f.name != "sources"]
    assert names == fields  # one entry per field
    assert {s.name: s for s in REGISTRY} == BY_NAME
    hints = typing.get_type_hints(Settings)
    defaults = Settings()
    for entry in REGISTRY:
        assert getattr(defaults, entry.name) == entry.default_value(), entry.name
        assert isinstance(entry.default_value(), runtime_type(hints[entry.name])), entry.name
        assert all(f.startswith("-") for f in entry.flags)
        assert entry.kind != "int" or entry.fatals, entry.name  # a number can be invalid
        assert entry.help and entry.rule and entry.default_text, entry.name
        assert (entry.computed is None) or entry.default is None, entry.name


def test_validation_order_is_config_md() -> None:
    """The numbered checks of config.md, in order; every other setting after them in
    registry order (the extensions)."""
    numbered = [(s.order, s.name) for s in VALIDATION_ORDER if s.order is not None]
    assert numbered == [
        (1, "port"), (2, "concurrency"), (3, "body_limit"), (4, "pixel_limit"),
        (5, "dimension_limit"), (6, "allowed_hosts"), (7, "log_format"), (8, "log_level"),
        (9, "tls_cert"), (9, "tls_key"), (10, "mtls_ca"), (11, "max_pipeline_tasks"),
        (12, "enable_pipeline"),
    ]  # fmt: skip
    rest = [s for s in VALIDATION_ORDER if s.order is None]
    assert rest == [s for s in REGISTRY if s.order is None]
    assert all(s.extension or not s.fatals for s in rest)  # the original's are all numbered


def test_a_field_without_an_entry_is_an_error() -> None:
    @dataclasses.dataclass(frozen=True)
    class Forgotten:
        port: int = integer(("--port",), "PORT", "<n>", "a port", "Invalid port", default=1)
        other: int = 5

    with pytest.raises(TypeError, match=r"Forgotten\.other"):
        registry_of(Forgotten)


def test_spec_defaults() -> None:
    settings = Settings()
    assert settings.port == 8000 and settings.body_limit == 16777216
    assert settings.pixel_limit == 100000000 and settings.dimension_limit == 16384
    assert settings.max_pipeline_tasks == 10 and settings.log_format == "text"
    assert settings.log_level == "info" and settings.concurrency == usable_cpus().count
    assert settings.header_timeout <= 60 and settings.body_timeout <= 60
    assert settings.keepalive_timeout == 10 and settings.shutdown_timeout == 10
    assert BY_NAME["concurrency"].default_text.startswith("usable CPUs")


def test_fatals_declared_for_allowed_hosts_are_the_ones_raised() -> None:
    """The check lives in fetch/hosts.py; the registry's copy of its texts (for the docs)
    must be what it raises."""
    entry = BY_NAME["allowed_hosts"]
    raised = []
    for pattern in ("(a+)+$", "ex\\.(com"):
        with pytest.raises(ConfigError) as info:
            entry.read(pattern)
        raised.append(Fatal(info.value.message, *info.value.fields, check=""))
    assert [dataclasses.replace(f, check="") for f in entry.fatals] == raised


# --- what the extensions will need: each is one entry -------------------------------------


def _index_list(raw: str) -> tuple[str, ...]:
    """A comma list whose bad item is reported by position, never by value."""
    items = tuple(item.strip() for item in raw.split(","))
    for index, item in enumerate(items):
        if len(item) < 4:
            raise ConfigError("Invalid demo key", index=index)
    return items


def _leaky(raw: str) -> str:
    raise ConfigError("Invalid demo token", value=raw)


def _budget() -> int:
    return 3 * 1024


@dataclasses.dataclass(frozen=True)
class Demo:
    """Settings of the kinds the extensions add, declared exactly as in `Settings`."""

    keys: tuple[str, ...] | None = setting(
        ("--demo-keys",), "DEMO_KEYS", "<keys>", "signing keys", parse=_index_list,
        default=None, rule="comma-separated list", example="abcd,efgh", secret=True,
        empty_is_unset=True, fatals=(Fatal("Invalid demo key", field="index"),),
    )  # fmt: skip
    token: str | None = text(
        ("--demo-token",), "DEMO_TOKEN", "<token>", "a token", parse=_leaky, secret=True
    )
    size: int = integer(
        ("--demo-size",), "DEMO_SIZE", "<n>", "a size", "Invalid demo size", default=5, minimum=0
    )
    budget: int = integer(
        ("--demo-budget",), "DEMO_BUDGET", "<bytes>", "a budget", "Invalid demo budget",
        default=computed(_budget, "three kibibytes"), minimum=0,
    )  # fmt: skip
    access_log: bool = flag(("--demo-access-log",), "DEMO_ACCESS_LOG", "log every request")


DEMO = {s.name: s for s in registry_of(Demo)}


def test_custom_parser_with_index_errors() -> None:
    keys = DEMO["keys"]
    assert keys.read("abcd, efgh") == ("abcd", "efgh")
    assert keys.read("") is None and keys.read(None) is None  # empty = not configured
    with pytest.raises(ConfigError) as info:
        keys.read("abcd,,efgh")
    assert (info.value.message, info.value.fields) == ("Invalid demo key", {"index": 1})
    assert keys.fatals == (Fatal("Invalid demo key", "index", "keys"),)


def test_secrets_are_never_printed() -> None:
    demo = Demo(keys=("s3cr3t-key",), token="s3cr3t-token")
    assert "s3cr3t" not in repr(demo)  # logging the settings object leaks nothing
    with pytest.raises(ConfigError) as info:
        DEMO["token"].read("s3cr3t-token")  # a parser that would log the value
    assert info.value.fields == {}
    with_default = dataclasses.replace(DEMO["token"], default="s3cr3t")
    assert with_default.default_text == "(secret)"
    with pytest.raises(ValueError, match="secret"):
        text(("--x",), "X", "<x>", "x", secret=True, fatals=(Fatal("Invalid x"),))


def test_minimum_zero_and_runtime_default() -> None:
    size = DEMO["size"]
    assert size.read("0") == 0 and size.rule == "decimal integer 0 or more"
    with pytest.raises(ConfigError):
        size.read("-1")
    assert Demo().budget == 3072 and DEMO["budget"].default_text == "three kibibytes"
    assert DEMO["budget"].default is None and Demo().access_log is False


# --- the generated docs -------------------------------------------------------------------


def test_docs_are_generated_from_the_registry() -> None:
    assert DOCS.read_text() == render_markdown(), (
        "docs/configuration.md is stale: run "
        "`python -m imaged.settings --markdown > docs/configuration.md`"
    )


def _section(text: str, title: str) -> str:
    return text.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def _table(section: str) -> list[list[str]]:
    lines = [line for line in section.splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in line.strip("|").split(" | ")] for line in lines[2:]]


def test_docs_validation_table_is_every_fatal_in_check_order() -> None:
    """Every FATAL text of every entry is a row, in the order the CLI checks them, numbered
    as config.md numbers them (the extensions after 12, one number each)."""
    rows = _table(_section(DOCS.read_text(), "Validation order and fatal errors"))
    expected = []
    step = 0
    for entry in VALIDATION_ORDER:
        step = entry.order if entry.order is not None else step + bool(entry.fatals)
        for fatal in entry.fatals:
            field = f"`{fatal.field}=`" if fatal.field else ""
            expected.append([str(step), fatal.check, f"`{fatal.message}`", field])
    assert rows == expected
    assert [row[0] for row in rows][:15] == [str(n) for n in (1, 2, 3, 4, 5, 6, 6, 7, 8, 9, 9,
                                                              9, 10, 10, 11)]  # fmt: skip
    assert rows[15][:3] == ["12", rows[15][1], f"`{PIPELINE}`"]


def test_docs_describe_every_setting() -> None:
    text = DOCS.read_text()
    settings_rows = _table(_section(text, "Settings"))
    by_env = {row[1].strip("`"): row for row in settings_rows}
    for entry in REGISTRY:
        row = by_env[entry.env]
        for flag_text in entry.flags:
            assert f"`{flag_text}`" in row[0], flag_text
        assert entry.default_text in row[2] and entry.rule.replace("|", "\\|") == row[3]
        for fatal in entry.fatals:
            assert f"`{fatal.message}`" in row[4], fatal.message
    empty_sentence = text.split('an empty value means "not set"')[0].rsplit("For\n", 1)[1]
    assert set(re.findall(r"`([A-Z_]+)`", empty_sentence)) == {
        s.env for s in REGISTRY if s.empty_is_unset
    }
    for entry in REGISTRY:
        if entry.metavar == "<seconds>":  # the timeouts table
            assert f"| `{entry.flags[-1]}` | {entry.default_text} s |" in text, entry.name
    for message in (
        "Refusing to overwrite existing non-socket at UNIX path",
        "Timeout reached, forcing exit",
        "VIPS_CONCURRENCY",
    ):
        assert message in text, message


def test_readme_configuration_agrees_with_the_registry() -> None:
    """The README's short table and timeout sentence repeat some defaults for the reader;
    they must be the registry's."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    by_env = {s.env: s for s in REGISTRY}
    rows = _table(section)
    assert rows
    for _flags, variables, default in rows:
        envs = re.findall(r"`([A-Z_]+)`", variables)
        values = re.findall(r"`([^`]+)`", default)
        assert envs and all(env in by_env for env in envs), variables
        if len(values) == len(envs):
            for env, value in zip(envs, values, strict=True):
                assert by_env[env].default_text.startswith(value), (env, value)
    mentions = re.findall(r"`(--[a-z-]+)`, (\d+) s", section)
    assert len(mentions) == 4
    by_flag = {f: s for s in REGISTRY for f in s.flags}
    for flag_text, seconds in mentions:
        assert by_flag[flag_text].default_text == seconds, flag_text


def test_settings_does_not_import_its_docs() -> None:
    """The renderer depends on the registry, never the reverse (no import cycle)."""
    tree = ast.parse((ROOT / "src" / "imaged" / "settings.py").read_text())
    imported = {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    } | {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not any(name and "settings_doc" in name for name in imported), imported


def test_markdown_command() -> None:
    for module in ("imaged.settings", "imaged.settings_doc"):
        result = subprocess.run(
            [sys.executable, "-m", module, "--markdown"],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=30,
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout == render_markdown()
    bad = subprocess.run(
        [sys.executable, "-m", "imaged.settings"], capture_output=True, text=True, timeout=30
    )
    assert bad.returncode == 1 and "usage" in bad.stderr


# --- access control (access.md) -----------------------------------------------------------


def test_api_tokens_are_rfc_6750_b64tokens_of_16_to_256_characters() -> None:
    tokens = BY_NAME["api_tokens"]
    every_char = "AZaz09-._~+/" + "x" * 4 + "=="
    accepted = ["a" * 16, "b" * 256, every_char, "abcdefghijklmnop=", " padded-token-0123 "]
    assert tokens.read(",".join(accepted)) == tuple(t.strip() for t in accepted)
    assert tokens.read("") is None and tokens.read(None) is None
    for index, bad in enumerate(
        ["a" * 15, "a" * 257, "=" * 16, "abcdefgh=ijklmnop", "tab\tinside-012345"]
    ):
        with pytest.raises(ConfigError) as info:
            tokens.read(",".join([*accepted[:index], bad]))
        assert (info.value.message, info.value.fields) == ("Invalid API token", {"index": index})


def test_signing_keys_are_hex_of_32_bytes_or_more() -> None:
    keys = BY_NAME["signing_keys"]
    assert keys.read(f" {'AB' * 32} ,\t{'cd' * 40}") == (b"\xab" * 32, b"\xcd" * 40)
    assert keys.read("") is None and keys.read(None) is None
    for raw, index in [("ab" * 32 + ",", 1), ("," + "ab" * 32, 0), ("ab" * 31, 0), (" ", 0),
                       ("ab" * 32 + ",,", 1), ("ab" * 64 + ",zz" + "ab" * 32, 1)]:  # fmt: skip
        with pytest.raises(ConfigError) as info:
            keys.read(raw)
        assert (info.value.message, info.value.fields) == ("Invalid signing key", {"index": index})


def test_access_settings_are_secrets() -> None:
    keys, tokens = BY_NAME["signing_keys"], BY_NAME["api_tokens"]
    assert keys.secret and tokens.secret and keys.empty_is_unset and tokens.empty_is_unset
    settings = Settings(signing_keys=(b"\xab" * 32,), api_tokens=("secret-token-0123456",))
    assert "abab" not in repr(settings) and "secret-token" not in repr(settings)
    names = [s.name for s in VALIDATION_ORDER]
    last_numbered = max(i for i, s in enumerate(VALIDATION_ORDER) if s.order is not None)
    assert last_numbered < names.index("signing_keys") < names.index("api_tokens")


# --- observability.md: the metrics address ---------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "host", "port", "url"),
    [
        ("127.0.0.1:9100", "127.0.0.1", 9100, "http://127.0.0.1:9100"),
        ("[::1]:9100", "::1", 9100, "http://[::1]:9100"),
        ("[::]:1", "::", 1, "http://[::]:1"),
        ("0.0.0.0:65535", "0.0.0.0", 65535, "http://0.0.0.0:65535"),
        ("localhost:9100", "localhost", 9100, "http://localhost:9100"),
        ("metrics-1.internal:80", "metrics-1.internal", 80, "http://metrics-1.internal:80"),
    ],
)
def test_metrics_addresses(raw: str, host: str, port: int, url: str) -> None:
    address = parse_listen_address(raw)
    assert (address.host, address.port, address.url) == (host, port, url)
    assert Settings(metrics_listen=raw).metrics_address == address
    assert BY_NAME["metrics_listen"].read(raw) == raw


@pytest.mark.parametrize(
    "raw",
    ["9100", ":9100", "::1:9100", "[::1]", "[::1]9100", "127.0.0.1:", "127.0.0.1:0",
     "127.0.0.1:65536", "127.0.0.1:+80", "127.0.0.1: 80", " 127.0.0.1:80", "999.1.1.1:80",
     "1.2.3:80", "[1.2.3.4]:80", "a b:80", "-a:80", "a_b:80",
     "http://127.0.0.1:9100", "127.0.0.1:9100/metrics", "\x01"],
)  # fmt: skip
def test_invalid_metrics_addresses(raw: str) -> None:
    with pytest.raises(ConfigError) as info:
        BY_NAME["metrics_listen"].read(raw)
    assert (info.value.message, info.value.fields) == ("Invalid metrics address", {"value": raw})
    assert BY_NAME["metrics_listen"].read("") is None  # empty = not set, like HOST
    assert Settings().metrics_address is None


def test_observability_defaults() -> None:
    settings = Settings()
    assert (settings.metrics_listen, settings.access_log, settings.shutdown_delay) == (
        None,
        False,
        0,
    )
    delay = BY_NAME["shutdown_delay"]
    assert delay.read("0") == 0 and delay.read("3600") == 3600
    for raw in ("-1", "3601", "1.5", ""):
        with pytest.raises(ConfigError, match=r"^Invalid shutdown delay$"):
            delay.read(raw)
