"""One registry of every setting: flag, environment variable, default, parser, checks, help.

A setting is declared once, as a field of `Settings`: the annotation is its Python type (mypy
checks it against the parser and the default), the value is its registry entry. `REGISTRY`
is read back from those fields, and the CLI (parsing and validation order), `--help`,
docs/configuration.md (`python -m imaged.settings --markdown`) and the tests all iterate it,
so adding a setting is one declaration here and nothing anywhere else.
"""

from __future__ import annotations

import dataclasses
import functools
import ipaddress
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar, cast

from imaged.errors import ConfigError
from imaged.fetch.hosts import compile_allowed_hosts
from imaged.signing import INVALID_KEY, parse_key

V = TypeVar("V")
D = TypeVar("D")

_INTEGER = re.compile(r"[+-]?[0-9]+")
_WHITESPACE = " \t\n\v\f\r"
_ENTRY = "imaged.setting"  # the key of a registry entry in a dataclass field's metadata


def parse_int(raw: str, message: str, minimum: int = 1, maximum: int | None = None) -> int:
    """Strict decimal integer (surrounding whitespace allowed): `8000abc`, `3.7`, `1e3`, `0x10`
    and `""` are configuration errors, never truncated (Compatibility policy)."""
    text = raw.strip(_WHITESPACE)
    # Every valid value has far fewer than 30 digits; longer text is out of range (and would
    # exceed Python's 4300-digit int() limit).
    if not _INTEGER.fullmatch(text) or len(text) > 30:
        raise ConfigError(message, value=raw)
    value = int(text)
    if value < minimum or (maximum is not None and value > maximum):
        raise ConfigError(message, value=raw)
    return value


def parse_bool(raw: str) -> bool:
    """`false`/`0` (any case) → False; everything else, even empty, → True (spec QUIRK)."""
    return raw.lower() not in ("false", "0")


@dataclass(frozen=True)
class Fatal:
    """One FATAL line a setting can end startup with; the docs' validation table lists each,
    and a test checks that it does."""

    message: str
    field: str = "value"  # the field logged with it: `value`, `path`, `index`, or "" for none
    check: str = ""  # what is checked, in words; "" = the setting's name


class Resolved(Protocol):
    """What a setting's `check` sees while the CLI validates: the environment and the typed
    value (or default) of any other setting. Read only settings that cannot fail, or that are
    validated earlier, or the FATAL order of config.md would change."""

    @property
    def environ(self) -> Mapping[str, str]: ...

    def value(self, name: str) -> Any: ...


Check = Callable[[Any, Resolved], None]


@dataclass(frozen=True)
class Computed:
    """A default computed when `Settings` is created (e.g. the CPU count); `doc` describes it
    in --help and the docs."""

    factory: Callable[[], Any]
    doc: str


def computed(factory: Callable[[], V], doc: str) -> V:
    """A runtime default. Typed as the value it computes, so the field's annotation is checked
    against `factory`."""
    return cast(V, Computed(factory, doc))


@dataclass(frozen=True)
class Setting:
    """One registry entry. `parse` turns the raw flag or environment text into the typed value
    or raises the ConfigError of one of `fatals`; `check` runs afterwards at the setting's
    place in the validation order, for what depends on other settings or on files."""

    flags: tuple[str, ...]
    env: str
    metavar: str
    help: str
    parse: Callable[[str], Any]
    rule: str  # the accepted values, in words (help and docs)
    example: str  # a valid raw value that is not the default (tests set every setting to it)
    kind: str = "text"  # `bool` makes the value optional on the command line
    default: Any = None  # None = not set; see also `computed`
    computed: Computed | None = None
    fatals: tuple[Fatal, ...] = ()
    # Place in config.md's numbered "Validation order"; None = after those, in registry order.
    order: int | None = None
    check: Check | None = None
    empty_is_unset: bool = False  # a present-but-empty value means "not set"
    secret: bool = False  # never printed: help and docs show no default, FATALs no `value=`
    extension: bool = False  # not in the original system (documented as an addition)
    default_doc: str = ""
    name: str = ""  # the `Settings` field; filled in when REGISTRY is built

    def __post_init__(self) -> None:
        if self.secret and any(f.field == "value" for f in self.fatals):
            raise ValueError(f"{self.env}: a secret setting must not log its value")

    def default_value(self) -> Any:
        return self.computed.factory() if self.computed is not None else self.default

    def read(self, raw: str | None) -> Any:
        """The typed value of the raw text (None = neither flag nor environment)."""
        if raw is None or (raw == "" and self.empty_is_unset):
            return self.default_value()
        try:
            return self.parse(raw)
        except ConfigError as exc:
            if self.secret:  # a parser's mistake must not put a secret in the log
                exc.fields.pop("value", None)
            raise

    @property
    def default_text(self) -> str:
        if self.default_doc:
            return self.default_doc
        if self.computed is not None:
            return self.computed.doc
        if self.default is None:
            return "none"
        if self.secret:
            return "(secret)"
        if isinstance(self.default, bool):
            return "true" if self.default else "false"
        return str(self.default)

    @property
    def words(self) -> str:
        return self.name.replace("_", " ")


def setting(
    flags: tuple[str, ...],
    env: str,
    metavar: str,
    help_text: str,
    *,
    parse: Callable[[str], V],
    default: D,
    rule: str,
    example: str,
    **options: Any,
) -> V | D:
    """Declare a setting as a `Settings` field: `name: T = setting(...)`. The result is typed
    as the parsed value or the default, so mypy checks the field's annotation against both;
    `options` are the other `Setting` attributes."""
    runtime = default if isinstance(default, Computed) else None
    entry = Setting(
        flags, env, metavar, help_text, parse, rule, example,
        default=None if runtime else default, computed=runtime, **options,
    )  # fmt: skip
    metadata = {_ENTRY: entry}
    if runtime is not None:
        field = dataclasses.field(
            default_factory=runtime.factory, metadata=metadata, repr=not entry.secret
        )
    else:
        field = dataclasses.field(default=default, metadata=metadata, repr=not entry.secret)
    return cast("V | D", field)


def _int_example(default: object, minimum: int, maximum: int | None) -> str:
    for candidate in (minimum + 6, minimum + 1, minimum):
        if candidate != default and (maximum is None or candidate <= maximum):
            return str(candidate)
    raise ValueError("no valid example")


def integer(
    flags: tuple[str, ...],
    env: str,
    metavar: str,
    help_text: str,
    error: str,
    *,
    default: D,
    minimum: int = 1,
    maximum: int | None = None,
    **options: Any,
) -> int | D:
    """A strict decimal integer in [minimum, maximum]; invalid → FATAL `error value=…`."""
    upper = f"–{maximum}" if maximum is not None else " or more"
    options.setdefault("example", _int_example(default, minimum, maximum))
    return setting(
        flags, env, metavar, help_text, default=default, kind="int",
        parse=functools.partial(parse_int, message=error, minimum=minimum, maximum=maximum),
        rule=f"decimal integer {minimum}{upper}", fatals=(Fatal(error),), **options,
    )  # fmt: skip


def flag(flags: tuple[str, ...], env: str, help_text: str, **options: Any) -> bool:
    """A boolean flag, off by default (config.md's boolean rules)."""
    return setting(
        flags, env, "[bool]", help_text, parse=parse_bool, default=False, kind="bool",
        rule="boolean: alone = true; `false`/`0` = false; any other value = true",
        example="true", **options,
    )  # fmt: skip


def choice(
    flags: tuple[str, ...],
    env: str,
    metavar: str,
    help_text: str,
    error: str,
    *,
    choices: tuple[str, ...],
    default: str,
    **options: Any,
) -> str:
    """Exactly one of `choices` (case-sensitive); anything else → FATAL `error value=…`."""

    def parse(raw: str) -> str:
        if raw not in choices:
            raise ConfigError(error, value=raw)
        return raw

    return setting(
        flags, env, metavar, help_text, parse=parse, default=default, kind="choice",
        rule="exactly " + " or ".join(f"`{c}`" for c in choices), fatals=(Fatal(error),),
        example=next(c for c in choices if c != default), **options,
    )  # fmt: skip


def _verbatim(raw: str) -> str:
    return raw


def text(
    flags: tuple[str, ...],
    env: str,
    metavar: str,
    help_text: str,
    *,
    example: str = "example",
    parse: Callable[[str], str] = _verbatim,
    rule: str = "text; empty = not set",
    **options: Any,
) -> str | None:
    """Text (taken as given unless `parse` says otherwise); empty = not set."""
    return setting(
        flags, env, metavar, help_text, parse=parse, default=None, rule=rule, example=example,
        empty_is_unset=True, **options,
    )  # fmt: skip


def path(
    flags: tuple[str, ...], env: str, metavar: str, help_text: str, *, example: str, **options: Any
) -> str | None:
    """A file system path; empty = not set. Existence is up to the setting's `check`."""
    return text(
        flags, env, metavar, help_text, example=example, kind="path",
        rule="file system path; empty = not set", **options,
    )  # fmt: skip


# --- the checks that need more than the setting's own text --------------------------------

_BACKTRACKING = "Invalid allowed-hosts regex: pattern may cause catastrophic backtracking"
_BAD_REGEX = "Invalid allowed-hosts regex"
_TLS_PAIR = "Both --tls-cert and --tls-key must be provided for TLS"
_TLS_CERT_MISSING = "TLS certificate file not found"
_TLS_KEY_MISSING = "TLS key file not found"
_MTLS_CA_MISSING = "mTLS CA certificate file not found"
_MTLS_NEEDS_TLS = "--mtls-ca requires TLS to be enabled (--tls-cert and --tls-key)"
_PIPELINE_CREDENTIALS = (
    "Pipeline endpoint requires AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY environment variables"
)


def _allowed_hosts(raw: str) -> str:
    compile_allowed_hosts(raw)  # the spec's heuristic, then compilation
    return raw


def _require_file(path: str, message: str) -> None:
    if not os.path.isfile(path):
        raise ConfigError(message, path=path)


def _check_tls_pair_and_cert(cert: str | None, resolved: Resolved) -> None:
    if (cert is None) != (resolved.value("tls_key") is None):
        raise ConfigError(_TLS_PAIR)
    if cert is not None:
        _require_file(cert, _TLS_CERT_MISSING)


def _check_tls_key(key: str | None, resolved: Resolved) -> None:
    if key is not None:  # the pair was checked before: the certificate is there too
        _require_file(key, _TLS_KEY_MISSING)


def _check_mtls_ca(ca: str | None, resolved: Resolved) -> None:
    if ca is not None:
        _require_file(ca, _MTLS_CA_MISSING)
        if resolved.value("tls_cert") is None:
            raise ConfigError(_MTLS_NEEDS_TLS)


def _check_pipeline_credentials(enabled: bool, resolved: Resolved) -> None:
    environ = resolved.environ
    credentials = environ.get("AWS_ACCESS_KEY_ID") and environ.get("AWS_SECRET_ACCESS_KEY")
    if enabled and not resolved.value("output_dir") and not credentials:
        raise ConfigError(_PIPELINE_CREDENTIALS)


def _signing_keys(raw: str) -> tuple[bytes, ...]:
    """Comma-separated hex keys (surrounding whitespace ignored); a bad item is reported by
    its 0-based position (`index=`), never by its value: it is a secret."""
    keys = []
    for index, item in enumerate(raw.split(",")):
        try:
            keys.append(parse_key(item.strip(_WHITESPACE)))
        except ValueError:
            raise ConfigError(INVALID_KEY, index=index) from None
    return tuple(keys)


_INVALID_TOKEN = "Invalid API token"
# RFC 6750 `b64token`, 16–256 characters.
_TOKEN = re.compile(r"(?=.{16,256}\Z)[A-Za-z0-9._~+/-]+=*", re.DOTALL)


def _api_tokens(raw: str) -> tuple[str, ...]:
    """Comma-separated bearer tokens; a bad item is reported by position (`index=`), never
    by value. Surrounding whitespace of an item is ignored, as for signing keys."""
    tokens = []
    for index, item in enumerate(raw.split(",")):
        token = item.strip(_WHITESPACE)
        if not _TOKEN.fullmatch(token):
            raise ConfigError(_INVALID_TOKEN, index=index)
        tokens.append(token)
    return tuple(tokens)


_INVALID_CACHE_CONTROL = "Invalid cache control"
PRINTABLE_ASCII = re.compile(r"[\x20-\x7e]*")  # what may go into a header value of ours


def _cache_control(raw: str) -> str:
    """Any printable ASCII (surrounding spaces dropped); "" means no header. A control
    character could split or corrupt the header, so it is refused."""
    if not PRINTABLE_ASCII.fullmatch(raw):
        raise ConfigError(_INVALID_CACHE_CONTROL, value=raw)
    return raw.strip(" ")


def _logical_cpus() -> int:
    return os.cpu_count() or 1


_METRICS_ADDRESS = "Invalid metrics address"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_HOST_NAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
_PORT = re.compile(r"[0-9]{1,5}")


@dataclass(frozen=True)
class ListenAddress:
    """`host:port` of an extra listener; `host` is an IP address or a name, without the
    brackets of an IPv6 address."""

    host: str
    port: int

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"


def parse_listen_address(raw: str, message: str = _METRICS_ADDRESS) -> ListenAddress:
    """`127.0.0.1:9100`, `[::1]:9100`, `localhost:9100`, `0.0.0.0:9100`; the host is required
    and the port is 1–65535. Anything else → ConfigError(message, value=raw)."""
    host, sep, port = raw.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        valid = _is_ip(host, ipaddress.IPv6Address)
    elif host.replace(".", "").isdigit():
        valid = _is_ip(host, ipaddress.IPv4Address)
    else:
        valid = _HOST_NAME.fullmatch(host) is not None
    if not (sep and valid and _PORT.fullmatch(port) and 1 <= int(port) <= 65535):
        raise ConfigError(message, value=raw)
    return ListenAddress(host, int(port))


def _is_ip(text: str, kind: type[ipaddress.IPv4Address | ipaddress.IPv6Address]) -> bool:
    try:
        kind(text)
    except ValueError:
        return False
    return True


def _metrics_address(raw: str) -> str:
    parse_listen_address(raw)
    return raw


# --- the registry -------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    """The validated configuration, created once by the CLI and passed down. Each field is a
    registry entry; the field order is the order of --help and the docs."""

    # fmt: off
    port: int = integer(
        ("-p", "--port"), "PORT", "<number>", "TCP port to listen on", "Invalid port",
        default=8000, maximum=65535, order=1,
    )
    host: str | None = text(
        ("-H", "--host"), "HOST", "<address>",
        "bind address (`0.0.0.0` or `::` for all interfaces; `::` is dual-stack)",
        default_doc="localhost (127.0.0.1 and ::1)", example="0.0.0.0",
    )
    unix: str | None = path(
        ("-u", "--unix"), "UNIX_SOCKET", "<path>",
        "listen on this unix socket instead of host/port", example="imaged.sock",
    )
    concurrency: int = integer(
        ("-c", "--concurrency"), "CONCURRENCY", "<number>",
        "concurrent image operations (permits of the global limiter)", "Invalid concurrency",
        default=computed(_logical_cpus, "number of logical CPUs"), order=2,
    )
    body_limit: int = integer(
        ("-b", "--body-limit"), "BODY_LIMIT", "<bytes>",
        "maximum request body in bytes (larger bodies get 413)", "Invalid body limit",
        default=16777216, order=3,
    )
    pixel_limit: int = integer(
        ("-x", "--pixel-limit"), "PIXEL_LIMIT", "<pixels>",
        "maximum width × height of an input image", "Invalid pixel limit",
        default=100000000, order=4,
    )
    dimension_limit: int = integer(
        ("-d", "--dimension-limit"), "DIMENSION_LIMIT", "<pixels>",
        "maximum requested output width or height", "Invalid dimension limit",
        default=16384, order=5,
    )
    input_side_limit: int = integer(
        ("--input-side-limit",), "INPUT_SIDE_LIMIT", "<pixels>",
        "maximum width or height of an input image: libvips buffers whole scanlines, so "
        "a 10 000 000 × 10 image would need gigabytes to resize",
        "Invalid input side limit", default=100000, extension=True,
    )
    max_frames: int = integer(
        ("--max-frames",), "MAX_FRAMES", "<number>",
        "maximum frames of an animated input with `animated=true` (more → 400)",
        "Invalid max frames", default=1000, extension=True,
    )
    enable_fetch: bool = flag(
        ("-f", "--enable-fetch"), "ENABLE_FETCH",
        "enable GET /transform and GET /metadata (source image fetched from ?url=)",
    )
    allowed_hosts: str | None = text(
        ("-a", "--allowed-hosts"), "ALLOWED_HOSTS", "<regex>",
        "only fetch from host names this pattern is found in (searched, unanchored, in the "
        "host name without the port)",
        kind="regex", parse=_allowed_hosts, order=6,
        rule="Python regular expression; empty = no allow-list",
        fatals=(Fatal(_BACKTRACKING, check="allowed hosts: backtracking heuristic"),
                Fatal(_BAD_REGEX, check="allowed hosts: compilation")),
    )
    disable_ssrf_protection: bool = flag(
        ("--disable-ssrf-protection",), "DISABLE_SSRF_PROTECTION",
        "allow fetching from private, loopback and reserved addresses",
    )
    enable_pipeline: bool = flag(
        ("-P", "--enable-pipeline"), "ENABLE_PIPELINE",
        "enable PUT /pipeline (needs AWS credentials in the environment, or --output-dir)",
        order=12, check=_check_pipeline_credentials,
        fatals=(Fatal(_PIPELINE_CREDENTIALS, field="",
                      check="pipeline without credentials (skipped with `--output-dir`)"),),
    )
    max_pipeline_tasks: int = integer(
        ("--max-pipeline-tasks",), "MAX_PIPELINE_TASKS", "<number>",
        "maximum tasks per pipeline request (validated even if the pipeline is off)",
        "Invalid max-pipeline-tasks", default=10, order=11,
    )
    output_dir: str | None = path(
        ("--output-dir",), "OUTPUT_DIR", "<dir>",
        "store pipeline outputs under <dir>/<bucket>/<key> instead of uploading to S3",
        example="out", extension=True,
    )
    pipeline_buckets: str | None = text(
        ("--pipeline-buckets",), "PIPELINE_BUCKETS", "<names>",
        "comma-separated buckets pipeline tasks may write to; tasks naming another bucket "
        "fail before any work",
        default_doc="any bucket", example="a,b", extension=True,
    )
    max_pipeline_output: int = integer(
        ("--max-pipeline-output",), "MAX_PIPELINE_OUTPUT", "<bytes>",
        "largest encoded output of one pipeline task", "Invalid max pipeline output",
        default=134217728, extension=True,
    )
    max_pipeline_total_output: int = integer(
        ("--max-pipeline-total-output",), "MAX_PIPELINE_TOTAL_OUTPUT", "<bytes>",
        "total encoded output of one pipeline request", "Invalid max pipeline total output",
        default=536870912, extension=True,
    )
    log_format: str = choice(
        ("-l", "--log-format"), "LOG_FORMAT", "<format>", "log line format",
        "Invalid log format (must be 'json' or 'text')",
        choices=("json", "text"), default="text", order=7,
    )
    log_level: str = choice(
        ("-L", "--log-level"), "LOG_LEVEL", "<level>", "lowest level logged",
        "Invalid log level (must be 'debug', 'info', 'warn', or 'error')",
        choices=("debug", "info", "warn", "error"), default="info", order=8,
    )
    tls_cert: str | None = path(
        ("--tls-cert",), "TLS_CERT", "<path>",
        "PEM certificate (chain); together with --tls-key enables TLS",
        example="cert.pem", order=9, check=_check_tls_pair_and_cert,
        fatals=(Fatal(_TLS_PAIR, field="", check="only one of cert/key"),
                Fatal(_TLS_CERT_MISSING, field="path", check="certificate file")),
    )
    tls_key: str | None = path(
        ("--tls-key",), "TLS_KEY", "<path>", "PEM private key of the certificate",
        example="key.pem", order=9, check=_check_tls_key,
        fatals=(Fatal(_TLS_KEY_MISSING, field="path", check="key file"),),
    )
    mtls_ca: str | None = path(
        ("--mtls-ca",), "MTLS_CA", "<path>",
        "PEM CA bundle: require a client certificate signed by it (needs TLS)",
        example="ca.pem", order=10, check=_check_mtls_ca,
        fatals=(Fatal(_MTLS_CA_MISSING, field="path", check="mTLS CA file"),
                Fatal(_MTLS_NEEDS_TLS, field="", check="mTLS without TLS")),
    )
    queue_limit: int | None = integer(
        ("--queue-limit",), "QUEUE_LIMIT", "<number>",
        "image requests that may wait for a permit; beyond it they get 503 + Retry-After",
        "Invalid queue limit", default=None, default_doc="max(64, 4 × concurrency)",
        extension=True,
    )
    operation_timeout: int = integer(
        ("--operation-timeout",), "OPERATION_TIMEOUT", "<seconds>",
        "time limit of one image operation; libvips is stopped when it is exceeded",
        "Invalid operation timeout", default=60, extension=True,
    )
    keepalive_timeout: int = integer(
        ("--keepalive-timeout",), "KEEPALIVE_TIMEOUT", "<seconds>",
        "close a kept-alive connection idle for this long", "Invalid keepalive timeout",
        default=10, maximum=3600, extension=True,
    )
    header_timeout: int = integer(
        ("--header-timeout",), "HEADER_TIMEOUT", "<seconds>",
        "the whole request head must arrive within this time of the connection opening "
        "(or of the previous response); else 408 and close", "Invalid header timeout",
        default=30, maximum=60, extension=True,
    )
    body_timeout: int = integer(
        ("--body-timeout",), "BODY_TIMEOUT", "<seconds>",
        "the whole request body must arrive within this time after the head; else 408 "
        "and close", "Invalid body timeout", default=60, maximum=60, extension=True,
    )
    shutdown_timeout: int = integer(
        ("--shutdown-timeout",), "SHUTDOWN_TIMEOUT", "<seconds>",
        "on SIGTERM/SIGINT, wait this long for in-flight requests, then force exit 1",
        "Invalid shutdown timeout", default=10, maximum=3600, extension=True,
    )
    # observability.md: metrics, the access log, readiness
    metrics_listen: str | None = text(
        ("--metrics-listen",), "METRICS_LISTEN", "<host:port>",
        "serve Prometheus metrics at GET /metrics on this separate listener "
        "(e.g. `127.0.0.1:9100`, `[::1]:9100`); never on the main port",
        parse=_metrics_address,
        rule="host:port (IPv6 in brackets), port 1–65535; empty = not set",
        example="127.0.0.1:9100", fatals=(Fatal(_METRICS_ADDRESS),),
        extension=True,
    )
    access_log: bool = flag(
        ("--access-log",), "ACCESS_LOG",
        "log one info line `request` per finished request (never the query string)",
        extension=True,
    )
    shutdown_delay: int = integer(
        ("--shutdown-delay",), "SHUTDOWN_DELAY", "<seconds>",
        "after SIGTERM keep serving this long, with /readyz answering 503, before the "
        "graceful stop (SIGINT skips it)", "Invalid shutdown delay",
        default=0, minimum=0, maximum=3600, extension=True,
    )
    # playground.md: the browser page at /playground (and / redirecting to it)
    disable_playground: bool = flag(
        ("--disable-playground",), "DISABLE_PLAYGROUND",
        "remove GET /playground, its assets and the GET / redirect (404 again)",
        extension=True,
    )
    # Caching (caching.md): the headers of GET responses and the in-memory result cache.
    cache_control: str = setting(
        ("--cache-control",), "CACHE_CONTROL", "<value>",
        "Cache-Control of every 200/304 of GET /transform and /metadata (a signed URL's "
        "`expires` caps its max-age)", parse=_cache_control, default="public, max-age=31536000",
        rule="printable ASCII; empty = no Cache-Control header", example="public, max-age=60",
        fatals=(Fatal(_INVALID_CACHE_CONTROL),), extension=True,
    )
    result_cache_size: int = integer(
        ("--result-cache-size",), "RESULT_CACHE_SIZE", "<bytes>",
        "keep GET responses in memory up to this many body bytes (LRU; an entry over an "
        "eighth is not kept); 0 = off", "Invalid result cache size", default=0, minimum=0,
        example="67108864", extension=True,
    )
    result_cache_ttl: int = integer(
        ("--result-cache-ttl",), "RESULT_CACHE_TTL", "<seconds>",
        "serve a cached response this long without asking the origin; then revalidate it "
        "with the origin's ETag / Last-Modified", "Invalid result cache TTL", default=3600,
        extension=True,
    )
    # Access control (access.md): secrets, validated after every other check.
    signing_keys: tuple[bytes, ...] | None = setting(
        ("--signing-keys",), "SIGNING_KEYS", "<keys>",
        "require signed URLs on GET/HEAD /transform and /metadata; several keys verify "
        "(rotation), `imaged sign` uses the first", parse=_signing_keys, default=None,
        rule="comma-separated hex keys of at least 32 bytes (64 hex digits); empty = none",
        example="00" * 32 + "," + "ff" * 32, fatals=(Fatal(INVALID_KEY, field="index"),),
        secret=True, empty_is_unset=True, extension=True,
    )
    api_tokens: tuple[str, ...] | None = setting(
        ("--api-tokens",), "API_TOKENS", "<tokens>",
        "require `Authorization: Bearer <token>` with one of these on every PUT route",
        parse=_api_tokens, default=None,
        rule="comma-separated tokens of 16–256 characters `A-Z a-z 0-9 - . _ ~ + /`, then "
        "optional `=` (RFC 6750 b64token); empty = none", example="example-token-0123456789",
        fatals=(Fatal(_INVALID_TOKEN, field="index", check="API tokens"),), secret=True,
        empty_is_unset=True, extension=True,
    )
    # fmt: on

    @property
    def effective_queue_limit(self) -> int:
        return self.queue_limit or max(64, 4 * self.concurrency)

    @property
    def allowed_buckets(self) -> frozenset[str] | None:
        if not self.pipeline_buckets:
            return None
        return frozenset(b.strip() for b in self.pipeline_buckets.split(",") if b.strip())

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None and self.tls_key is not None

    @property
    def metrics_address(self) -> ListenAddress | None:
        return None if self.metrics_listen is None else parse_listen_address(self.metrics_listen)


def registry_of(cls: type) -> tuple[Setting, ...]:
    """The entries of a settings dataclass, in field order, each named after its field. A
    field declared without `setting(...)` is an error, never silently left out."""
    entries: list[Setting] = []
    for field in dataclasses.fields(cls):
        entry = field.metadata.get(_ENTRY)
        if not isinstance(entry, Setting):
            raise TypeError(f"{cls.__name__}.{field.name} is not declared with setting()")
        named = dataclasses.replace(entry, name=field.name)
        fatals = tuple(f if f.check else dataclasses.replace(f, check=named.words)
                       for f in entry.fatals)  # fmt: skip
        entries.append(dataclasses.replace(named, fatals=fatals))
    return tuple(entries)


REGISTRY: tuple[Setting, ...] = registry_of(Settings)
BY_NAME: dict[str, Setting] = {s.name: s for s in REGISTRY}
# config.md's numbered checks first, then every other setting in registry order.
VALIDATION_ORDER: tuple[Setting, ...] = tuple(
    sorted(REGISTRY, key=lambda s: (s.order is None, s.order or 0))
)


if __name__ == "__main__":
    # The renderer imports this module, never the reverse: delegate by module name, so the
    # registry has no import edge to its docs. Keeps `python -m imaged.settings --markdown`.
    import runpy

    runpy.run_module("imaged.settings_doc", run_name="__main__", alter_sys=True)
