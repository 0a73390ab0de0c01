"""The command line (config.md): precedence, strict numbers, booleans, FATAL lines in their
order, usage errors, --help and --version. FATAL/usage cases run the real `python -m imaged`;
the precedence matrix uses `cli.resolve` directly (same code, no process per case)."""

from __future__ import annotations

import re
import typing
from pathlib import Path

import pytest

from imaged.cli import UsageError, resolve
from imaged.errors import ConfigError
from imaged.settings import REGISTRY, VALIDATION_ORDER, Setting, Settings
from tests.serverkit import LINE_TIME, run_cli_many
from tests.test_settings import runtime_type

# Every integer setting of the registry: (flag, env, FATAL message).
NUMERIC = [(s.flags[-1], s.env, s.fatals[0].message) for s in REGISTRY if s.kind == "int"]
NOT_INTEGERS = ["8000abc", "3.7", "1e3", "", "   ", "0x10", "1_000", "٣", "Infinity", "0", "-5"]
# Integer settings whose range starts at 0 (e.g. `--result-cache-size`, 0 = off).
ZERO_ALLOWED = {s.env: s.name for s in REGISTRY if s.rule.startswith("decimal integer 0")}


def fatal_line(message: str, **fields: str) -> re.Pattern[str]:
    rendered = "".join(f" {k}={v}" for k, v in fields.items())
    return re.compile(f"{LINE_TIME} FATAL {re.escape(message + rendered)}")


Case = tuple[list[str], dict[str, str] | None, re.Pattern[str]]


def assert_fatal(cases: list[Case]) -> None:
    """Each case exits 1 with exactly one FATAL line (text format) and nothing on stderr."""
    results = run_cli_many([(args, env) for args, env, _ in cases])
    for (args, env, pattern), result in zip(cases, results, strict=True):
        lines = result.stdout.splitlines()
        assert result.returncode == 1, (args, env, result)
        assert len(lines) == 1 and pattern.fullmatch(lines[0]), (args, env, result.stdout)
        assert result.stderr == "", (args, env, result.stderr)


# --- FATAL lines (real process) ----------------------------------------------------------


def test_numbers_must_be_entire_decimal_integers() -> None:
    cases: list[Case] = []
    for _flag, env, message in NUMERIC:
        cases.append(([], {env: "8000abc"}, fatal_line(message, value="8000abc")))
    cases += [
        (["--port", "3.7"], None, fatal_line("Invalid port", value="3.7")),
        (["--operation-timeout=1e3"], None, fatal_line("Invalid operation timeout", value="1e3")),
        (["-c", ""], None, fatal_line("Invalid concurrency", value="")),
        (["-b", " 1 2 "], None, fatal_line("Invalid body limit", value='" 1 2 "')),
        (["-x=0"], None, fatal_line("Invalid pixel limit", value="0")),
        (["-d", "-5"], None, fatal_line("Invalid dimension limit", value="-5")),
        (["-p", "65536"], None, fatal_line("Invalid port", value="65536")),
        (["--header-timeout", "61"], None, fatal_line("Invalid header timeout", value="61")),
        (["--body-timeout", "61"], None, fatal_line("Invalid body timeout", value="61")),
        # past Python's 4300-digit int() limit: still the option's FATAL line
        (["-p", "9" * 5000], None, fatal_line("Invalid port", value="9" * 5000)),
        ([], {"CONCURRENCY": "1" * 5000}, fatal_line("Invalid concurrency", value="1" * 5000)),
        # present but empty counts as set
        ([], {"PORT": ""}, fatal_line("Invalid port", value="")),
        ([], {"LOG_LEVEL": ""}, fatal_line(LEVEL_MESSAGE, value="")),
    ]
    assert_fatal(cases)


# (flag, env, FATAL message, raw) for every integer setting and each value it refuses: `0` is
# valid where the minimum is 0 (e.g. --shutdown-delay).
REFUSED = [
    (flag, env, message, raw)
    for flag, env, message in NUMERIC
    for raw in NOT_INTEGERS
    if not (raw == "0" and "integer 0" in next(s.rule for s in REGISTRY if s.env == env))
]


@pytest.mark.parametrize(("flag", "env", "message", "raw"), REFUSED)
def test_every_non_integer_is_the_options_error(
    flag: str, env: str, message: str, raw: str
) -> None:
    for args, environ in (([f"{flag}={raw}"], {}), ([], {env: raw})):
        if raw == "0" and env in ZERO_ALLOWED:
            assert getattr(resolve(args, environ), ZERO_ALLOWED[env]) == 0
            continue
        with pytest.raises(ConfigError) as info:
            resolve(args, environ)
        assert (info.value.message, info.value.fields) == (message, {"value": raw})


LEVEL_MESSAGE = "Invalid log level (must be 'debug', 'info', 'warn', or 'error')"
FORMAT_MESSAGE = "Invalid log format (must be 'json' or 'text')"
BACKTRACKING = "Invalid allowed-hosts regex: pattern may cause catastrophic backtracking"
PORT = "Invalid port"
TLS_BOTH = "Both --tls-cert and --tls-key must be provided for TLS"
TLS_CERT = "TLS certificate file not found"
TLS_KEY = "TLS key file not found"
MTLS_CA = "mTLS CA certificate file not found"
MTLS_NEEDS_TLS = "--mtls-ca requires TLS to be enabled (--tls-cert and --tls-key)"
PIPELINE = (
    "Pipeline endpoint requires AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY environment variables"
)


def test_other_fatal_messages(tmp_path: Path) -> None:
    cert, key, ca = tmp_path / "cert.pem", tmp_path / "key.pem", tmp_path / "ca.pem"
    for path in (cert, key, ca):
        path.write_text("x")
    missing = str(tmp_path / "nope.pem")
    directory = str(tmp_path)  # a directory is not a certificate file
    spaced = '"1 2"'  # a value with a space is quoted
    cases: list[Case] = [
        (["--log-format", "JSON"], None, fatal_line(FORMAT_MESSAGE, value="JSON")),
        (["--log-format", "json "], None, fatal_line(FORMAT_MESSAGE, value='"json "')),
        ([], {"LOG_FORMAT": "xml"}, fatal_line(FORMAT_MESSAGE, value="xml")),
        (["-L", "WARN"], None, fatal_line(LEVEL_MESSAGE, value="WARN")),
        (["-L", "warning"], None, fatal_line(LEVEL_MESSAGE, value="warning")),
        (["--allowed-hosts", "(a+)+$"], None, fatal_line(BACKTRACKING, value="(a+)+$")),
        (["-a", "ex\\.(com"], None, fatal_line("Invalid allowed-hosts regex", value="ex\\.(com")),
        ([], {"ALLOWED_HOSTS": "["}, fatal_line("Invalid allowed-hosts regex", value="[")),
        (["--tls-cert", str(cert)], None, fatal_line(TLS_BOTH)),
        ([], {"TLS_KEY": str(key)}, fatal_line(TLS_BOTH)),
        (["--tls-cert", missing, "--tls-key", missing], None, fatal_line(TLS_CERT, path=missing)),
        (["--tls-cert", str(cert), "--tls-key", missing], None, fatal_line(TLS_KEY, path=missing)),
        (
            ["--tls-cert", directory, "--tls-key", str(key)],
            None,
            fatal_line(TLS_CERT, path=directory),
        ),
        (["--mtls-ca", missing], None, fatal_line(MTLS_CA, path=missing)),
        ([], {"MTLS_CA": missing}, fatal_line(MTLS_CA, path=missing)),  # before "requires TLS"
        (["--mtls-ca", str(ca)], None, fatal_line(MTLS_NEEDS_TLS)),
        (["--enable-pipeline"], None, fatal_line(PIPELINE)),
        ([], {"ENABLE_PIPELINE": "true", "AWS_ACCESS_KEY_ID": "a"}, fatal_line(PIPELINE)),
        (["-P"], {"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "b"}, fatal_line(PIPELINE)),
        # FATAL lines are text whatever the configured format and level say
        (["--log-format", "json", "--port", "abc"], None, fatal_line(PORT, value="abc")),
        (
            [],
            {"LOG_FORMAT": "json", "LOG_LEVEL": "error", "PORT": "1 2"},
            fatal_line(PORT, value=spaced),
        ),
    ]
    assert_fatal(cases)


def test_validation_order(tmp_path: Path) -> None:
    """All invalid at once; fixing them one by one reveals the next check of config.md."""
    real = tmp_path / "real.pem"
    real.write_text("x")
    missing = str(tmp_path / "missing.pem")
    steps: list[tuple[list[str], re.Pattern[str]]] = [
        (["--port", "x"], fatal_line("Invalid port", value="x")),
        (["--concurrency", "x"], fatal_line("Invalid concurrency", value="x")),
        (["--body-limit", "x"], fatal_line("Invalid body limit", value="x")),
        (["--pixel-limit", "x"], fatal_line("Invalid pixel limit", value="x")),
        (["--dimension-limit", "x"], fatal_line("Invalid dimension limit", value="x")),
        (["--allowed-hosts", "("], fatal_line("Invalid allowed-hosts regex", value="(")),
        (["--log-format", "x"], fatal_line(FORMAT_MESSAGE, value="x")),
        (["--log-level", "x"], fatal_line(LEVEL_MESSAGE, value="x")),
        (["--tls-cert", missing, "--tls-key", str(real)], fatal_line(TLS_CERT, path=missing)),
        (["--mtls-ca", missing], fatal_line(MTLS_CA, path=missing)),
        (["--max-pipeline-tasks", "x"], fatal_line("Invalid max-pipeline-tasks", value="x")),
        (["--enable-pipeline"], fatal_line(PIPELINE)),
        (["--queue-limit", "x"], fatal_line("Invalid queue limit", value="x")),
        (["--shutdown-timeout", "x"], fatal_line("Invalid shutdown timeout", value="x")),
    ]
    cases: list[Case] = []
    for i, (_, pattern) in enumerate(steps):
        cases.append(([a for later, _p in steps[i:] for a in later], None, pattern))
    assert_fatal(cases)


def test_every_failing_setting_in_validation_order() -> None:
    """Every setting whose value can be invalid, all invalid at once: fixing them one by one
    (from the environment) reveals each one's FATAL in the registry's validation order."""
    invalid = {s.env: "\x01" for s in VALIDATION_ORDER if _rejects(s, "\x01")}
    seen = []
    environ = dict(invalid)
    while True:
        try:
            resolve([], environ)
        except ConfigError as exc:
            seen.append(exc.message)
            env = next(s.env for s in REGISTRY if exc.message in [f.message for f in s.fatals])
            del environ[env]
            continue
        break
    order = [s for s in VALIDATION_ORDER if s.env in invalid]
    assert seen == [s.fatals[0].message for s in order]
    assert len(seen) == len(invalid) >= 17  # every integer and choice setting


def _rejects(entry: Setting, raw: str) -> bool:
    try:
        entry.read(raw)
    except ConfigError:
        return True
    return False


# --- usage errors, help, version -----------------------------------------------------------


USAGE_ERRORS = [
    ["--bogus"],
    ["-z"],
    ["--port"],
    ["--host"],
    ["--port", "--host", "x"],
    ["serve"],
    ["--port", "8000", "extra"],
    ["--enable-fetch", "-1"],
    ["--unix"],
    ["--por", "8000"],  # no abbreviations
    ["--", "x"],
]


def test_usage_errors_exit_1_help_and_version() -> None:
    help_cases: list[list[str]] = [["--help"], ["-h"], ["--port", "abc", "--help"]]
    version_cases: list[list[str]] = [["--version"], ["-V"]]
    all_cases = USAGE_ERRORS + help_cases + version_cases
    results = run_cli_many([(args, None) for args in all_cases])
    for args, result in zip(USAGE_ERRORS, results, strict=False):
        assert result.returncode == 1, (args, result)
        assert result.stderr.startswith("imaged: error:"), (args, result.stderr)
        assert result.stdout == "", args
    for result in results[len(USAGE_ERRORS) : -len(version_cases)]:
        assert result.returncode == 0
        text = " ".join(result.stdout.split())
        for setting in REGISTRY:
            for flag in setting.flags:
                assert flag in text, flag
            assert f"[env {setting.env}]" in text, setting.env
        assert "--version" in text and "-V" in text
    for result in results[-len(version_cases) :]:
        assert (result.returncode, result.stdout, result.stderr) == (0, "0.2.3\n", "")


# --- precedence and parsing (cli.resolve, the code main() runs) -------------------------


def test_defaults() -> None:
    settings = resolve([], {})
    assert settings == Settings()
    assert settings.port == 8000 and settings.host is None and settings.unix is None
    assert settings.body_limit == 16777216 and settings.pixel_limit == 100000000
    assert settings.dimension_limit == 16384 and settings.max_pipeline_tasks == 10
    assert (settings.log_format, settings.log_level) == ("text", "info")
    assert not settings.enable_fetch and not settings.enable_pipeline
    assert (settings.header_timeout, settings.body_timeout) == (30, 60)
    assert (settings.keepalive_timeout, settings.shutdown_timeout) == (10, 10)
    assert settings.effective_queue_limit >= max(64, 4 * settings.concurrency)


def test_flag_beats_env_beats_default() -> None:
    assert resolve([], {"PORT": "3000"}).port == 3000
    assert resolve(["--port", "4000"], {"PORT": "3000"}).port == 4000
    assert resolve(["-p", "4000"], {"PORT": "junk"}).port == 4000  # env not even parsed
    assert resolve([], {"HOST": "0.0.0.0"}).host == "0.0.0.0"
    assert resolve(["-H", "::1"], {"HOST": "0.0.0.0"}).host == "::1"
    assert resolve([], {"CONCURRENCY": " 3 "}).concurrency == 3
    assert resolve(["-c", "+2"], {"CONCURRENCY": "3"}).concurrency == 2
    assert resolve([], {"LOG_LEVEL": "debug"}).log_level == "debug"
    assert resolve(["-L", "warn"], {"LOG_LEVEL": "debug"}).log_level == "warn"
    assert resolve([], {"UNIX_SOCKET": "/tmp/x.sock"}).unix == "/tmp/x.sock"
    assert resolve(["--body-limit=10"], {"BODY_LIMIT": "20"}).body_limit == 10
    assert resolve(["--port=1", "--port=2"], {}).port == 2  # the last flag wins


def _examples(directory: Path) -> dict[str, str]:
    """Every setting's env variable → its example value; the path examples are created as
    files in `directory` (the working directory), so the file checks pass."""
    for entry in REGISTRY:
        if entry.kind == "path":
            (directory / entry.example).write_text("x")
    return {entry.env: entry.example for entry in REGISTRY}


def test_every_setting_round_trips_from_flag_and_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each entry, from every one of its flags and from its variable, arrives in `Settings`
    typed as the field says and different from its default. The other settings are set to
    their examples too, so the checks between settings (TLS pair, mTLS, pipeline) pass."""
    monkeypatch.chdir(tmp_path)
    examples = _examples(tmp_path)
    hints = typing.get_type_hints(Settings)
    for entry in REGISTRY:
        expected = entry.read(entry.example)
        assert isinstance(expected, runtime_type(hints[entry.name])), entry.name
        if entry.computed is None:
            assert expected != entry.default, entry.name
        others = {env: value for env, value in examples.items() if env != entry.env}
        from_env = resolve([], {**others, entry.env: entry.example})
        assert getattr(from_env, entry.name) == expected, entry.env
        for flag in entry.flags:
            for args in ([flag, entry.example], [f"{flag}={entry.example}"]):
                from_flag = resolve(args, others)
                assert getattr(from_flag, entry.name) == expected, args
        loser = "false" if entry.kind == "bool" else "\x01"  # differs, or is invalid
        beaten = resolve([entry.flags[0], entry.example], {**others, entry.env: loser})
        assert getattr(beaten, entry.name) == expected, entry.name


def test_all_settings_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    examples = _examples(tmp_path)
    from_env = resolve([], examples)
    args = [a for entry in REGISTRY for a in (entry.flags[-1], entry.example)]
    from_flags = resolve(args, {})
    for entry in REGISTRY:
        expected = entry.read(entry.example)
        assert getattr(from_env, entry.name) == getattr(from_flags, entry.name) == expected


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        ([], {}, False),
        (["--enable-fetch"], {}, True),
        (["-f"], {}, True),
        (["--enable-fetch", "false"], {}, False),
        (["--enable-fetch", "FALSE"], {}, False),
        (["--enable-fetch=0"], {}, False),
        (["-f", "0"], {}, False),
        (["--enable-fetch", "true"], {}, True),
        (["--enable-fetch=1"], {}, True),
        (["--enable-fetch="], {}, True),  # empty → true (QUIRK)
        (["--enable-fetch", "no"], {}, True),  # anything else → true (QUIRK)
        (["--enable-fetch", "off"], {}, True),
        (["--enable-fetch", "--port", "9000"], {}, True),  # next arg is an option
        ([], {"ENABLE_FETCH": "false"}, False),
        ([], {"ENABLE_FETCH": "False"}, False),
        ([], {"ENABLE_FETCH": "0"}, False),
        ([], {"ENABLE_FETCH": ""}, True),
        ([], {"ENABLE_FETCH": "yes"}, True),
        ([], {"ENABLE_FETCH": " false"}, True),
        (["--enable-fetch", "false"], {"ENABLE_FETCH": "true"}, False),
        (["--enable-fetch"], {"ENABLE_FETCH": "0"}, True),
    ],
)
def test_boolean_flags(args: list[str], env: dict[str, str], expected: bool) -> None:
    assert resolve(args, env).enable_fetch is expected


def test_boolean_flag_followed_by_option_keeps_that_option() -> None:
    settings = resolve(["--enable-fetch", "--port", "9000", "-P", "false"], {})
    assert settings.enable_fetch and settings.port == 9000 and not settings.enable_pipeline
    assert resolve(["--disable-ssrf-protection"], {}).disable_ssrf_protection


def test_empty_text_settings_mean_unset() -> None:
    settings = resolve(
        [], {"HOST": "", "UNIX_SOCKET": "", "ALLOWED_HOSTS": "", "TLS_CERT": "", "TLS_KEY": ""}
    )
    assert settings.host is None and settings.unix is None and settings.allowed_hosts is None
    assert settings.tls_cert is None and not settings.tls


def test_pipeline_credentials_or_output_dir(tmp_path: Path) -> None:
    creds = {"AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b"}
    assert resolve(["--enable-pipeline"], creds).enable_pipeline
    local = resolve(["-P", "--output-dir", str(tmp_path)], {})
    assert local.enable_pipeline and local.output_dir == str(tmp_path)
    assert not resolve(["-P", "false"], {}).enable_pipeline  # off: no credentials needed
    with pytest.raises(ConfigError) as info:
        resolve([], {"ENABLE_PIPELINE": "1", "OUTPUT_DIR": ""})
    assert info.value.message == PIPELINE


def test_max_pipeline_tasks_validated_even_when_pipeline_off() -> None:
    with pytest.raises(ConfigError) as info:
        resolve(["--max-pipeline-tasks", "0"], {})
    assert (info.value.message, info.value.fields) == ("Invalid max-pipeline-tasks", {"value": "0"})


def test_usage_error_type() -> None:
    with pytest.raises(UsageError):
        resolve(["positional"], {})


def test_caching_settings() -> None:
    """caching.md: `--cache-control` is printable ASCII (empty = no header), the result
    cache size 0 or more (0 = off), its TTL 1 or more."""
    defaults = resolve([], {})
    assert defaults.cache_control == "public, max-age=31536000"
    assert (defaults.result_cache_size, defaults.result_cache_ttl) == (0, 3600)
    assert resolve(["--cache-control", ""], {}).cache_control == ""
    assert resolve([], {"CACHE_CONTROL": " private, no-cache "}).cache_control == (
        "private, no-cache"
    )
    assert resolve(["--result-cache-size", "1048576"], {}).result_cache_size == 1048576
    injected = re.compile(f"{LINE_TIME} FATAL Invalid cache control value=.*")
    size, ttl = "Invalid result cache size", "Invalid result cache TTL"
    assert_fatal(
        [
            (["--cache-control", "max-age=1\tx"], None,
             fatal_line("Invalid cache control", value='"max-age=1\tx"')),
            ([], {"CACHE_CONTROL": "public\nX-Injected: 1"}, injected),
            (["--result-cache-size", "-1"], None, fatal_line(size, value="-1")),
            ([], {"RESULT_CACHE_TTL": "0"}, fatal_line(ttl, value="0")),
        ]
    )  # fmt: skip


@pytest.mark.parametrize(
    ("raw", "budget"),
    [
        ("0", 0),
        ("300m", 300 << 20),
        ("300M", 300 << 20),
        (" 2g ", 2 << 30),
        ("512k", 512 << 10),
        ("1048576", 1048576),
    ],
)
def test_memory_budget(raw: str, budget: int) -> None:
    """resources.md: decimal bytes with an optional k/m/g suffix in powers of 1024."""
    assert resolve(["--memory-budget", raw], {}).memory_budget == budget
    assert resolve([], {"MEMORY_BUDGET": raw}).memory_budget == budget


@pytest.mark.parametrize("raw", ["", "-1", "1.5g", "300mb", "m", "0x10", "1t", "3 m", "1e9"])
def test_invalid_memory_budget(raw: str) -> None:
    with pytest.raises(ConfigError) as caught:
        resolve([], {"MEMORY_BUDGET": raw})
    assert caught.value.message == "Invalid memory budget"
    assert caught.value.fields == {"value": raw}


def test_sources_of_values() -> None:
    """Where each value came from, for the startup log's `source=`."""
    settings = resolve(["-c", "3"], {"MEMORY_BUDGET": "1g", "PORT": "9000"})
    assert settings.sources == {"concurrency": "flag", "memory_budget": "env", "port": "env"}
    assert resolve([], {}).sources == {}
