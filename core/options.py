"""Options: declared once, read from the command line or from TUSPLUGGY_* variables.

Core declares its own options here; plugins add theirs through the ``tus_add_options``
hook. The same declarations build the click command, so plugin options show up in
``tuspluggy serve --help``.
"""

from __future__ import annotations

from dataclasses import dataclass

TRUE_WORDS = {"yes", "y", "true", "t", "on", "1"}
FALSE_WORDS = {"no", "n", "false", "f", "off", "0", ""}


def env_name(name: str, prefix: str = "TUSPLUGGY_") -> str:
    return prefix + name.upper().replace("-", "_")


def parse_bool(value: str | bool) -> bool:
    if isinstance(value, bool):
        return value
    word = value.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ValueError(f"expected yes/no, true/false or 1/0, got {value!r}")


def parse_list(value: str | list | tuple | None) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    return [item.strip() for item in value.split(",") if item.strip()]


@dataclass(frozen=True)
class Option:
    name: str
    default: object = None
    help: str = ""
    type: type = str
    choices: tuple[str, ...] | None = None
    # Extra environment variables, e.g. the RUSTUS_* names, read when TUSPLUGGY_* is unset.
    env_aliases: tuple[str, ...] = ()
    # Who declared it ("core" or a plugin name), for --help and `tuspluggy plugins`.
    owner: str = "core"

    @property
    def dest(self) -> str:
        return self.name.replace("-", "_")

    @property
    def envvars(self) -> list[str]:
        return [env_name(self.name), env_name(self.name, "RUSTUS_"), *self.env_aliases]

    def convert(self, raw):
        if raw is None:
            return None
        if self.type is bool:
            return parse_bool(raw)
        if self.type is list:
            return parse_list(raw)
        if self.type in (int, float):
            return self.type(raw)
        return raw


def core_options() -> list[Option]:
    from .hook_options import hook_options  # declared next to the hook system they configure

    o = Option
    return [
        o("host", "127.0.0.1", "Address to listen on.", env_aliases=("RUSTUS_SERVER_HOST",)),
        o("port", 1081, "Port to listen on (0 picks a free one).", int, env_aliases=("RUSTUS_SERVER_PORT",)),
        o("url", "/files", "Path prefix of the tus endpoint."),
        o("log-level", "INFO", "Logging level.", choices=("OFF", "ERROR", "WARN", "WARNING", "INFO", "DEBUG", "TRACE")),
        o("log-format", "text", "Log lines as text, or one JSON object per line.", choices=("text", "json")),
        o("workers", 1, "Processes serving requests on the same port.", int),
        o("max-body-size", 0, "Largest body of one request in bytes; 0 = unlimited (bodies are streamed).", int),
        o("max-file-size", 0, "Largest upload in bytes (Tus-Max-Size); 0 = unlimited.", int),
        o("cors", [], "Allowed CORS origins, comma-separated wildcard patterns; empty = any.", list),
        o("behind-proxy", False, "Trust Forwarded / X-Forwarded-* headers (yes/no).", bool),
        o(
            "tus-extensions",
            [
                "getting", "creation", "termination", "creation-with-upload", "creation-defer-length",
                "concatenation", "concatenation-unfinished", "checksum", "expiration",
            ],
            "Enabled tus extensions, comma-separated.",
            list,
        ),
        o("remove-parts", False, "Delete partial uploads once their final upload is assembled (yes/no).", bool),
        o("allow-empty", False, "Accept uploads with Upload-Length: 0 (yes/no).", bool),
        o("storage", "file-storage", "Data storage plugin to use."),
        o("data-dir", "./data", "Directory of file-storage."),
        o("dir-structure", "", "Sub-directories for new uploads, e.g. {year}/{month}/{day}."),
        o("force-fsync", False, "fsync data and records before answering (yes/no).", bool),
        o("info-storage", "file-info-storage", "Info store plugin to use."),
        o("info-dir", "./data", "Directory of file-info-storage."),
        o("expiration", 0, "Seconds an unfinished upload lives after its last write; 0 = forever.", float),
        o("cleanup-interval", 60, "Seconds between removals of expired uploads.", float),
        o("lock-timeout", 10, "Seconds a request waits for an upload another request is changing.", float),
        o("read-timeout", 60, "Seconds without a byte from the client before a body is given up.", float),
        o("disable-plugins", [], "Entry-point plugins not to load, comma-separated.", list),
        o("ui", False, "Serve the upload page at / and the dashboard at /ui/uploads (yes/no).", bool),
        o("ui-token", "", "Token the dashboard asks of clients that are not on loopback; empty = loopback only."),
        *hook_options(),
        o("sentry-dsn", "", "Send errors (500 answers, failures logged) to this Sentry DSN; needs the sentry extra."),
        o("sentry-sample-rate", 1.0, "Fraction of errors sent to Sentry (0..1).", float),
    ]
