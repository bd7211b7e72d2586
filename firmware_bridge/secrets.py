"""The miIO device token: where it comes from, how it is checked, and how it is kept out of text.

A Roborock (any miIO device) encrypts every command with a 16-byte token, written as 32 hex
characters. Whoever has it can drive the robot, so the token must never reach a log line, an
exception, a report or a repr. This module is the only place that reads it:

- `resolve_token(value, *, env, path)`: from an argument, else `$VACNAV_TOKEN`, else a file
  (`token_file` or the default `~/.config/vacnav/token`); the first source present wins.
- The value must be 32 hex characters (surrounding whitespace is ignored). Anything else is a
  `TokenError` that says which source was wrong and how, never what it held.
- A token file that group or others may read gets a warning (logging), as ssh does for keys.
- `Token` holds the bytes; its str and repr are redacted, so an f-string or a log line that
  picks it up by mistake shows `<token redacted>`. The value is read only through `.hex()` or
  `.value`.
- `redact(text, *tokens)` removes tokens from any text; `RedactingFilter` does it for log
  records (python-miio logs its payloads at DEBUG).
"""

from __future__ import annotations

import logging
import os
import re
import secrets as _stdlib_secrets
import stat
from collections.abc import Iterable, Mapping
from pathlib import Path

from firmware_bridge.errors import BridgeError

log = logging.getLogger(__name__)

ENV_VAR = "VACNAV_TOKEN"
REDACTED = "<token redacted>"
TOKEN_HEX_CHARS = 32
_HEX32 = re.compile(r"(?<![0-9A-Fa-f])[0-9A-Fa-f]{32}(?![0-9A-Fa-f])")
_HEX_ONLY = re.compile(r"[0-9A-Fa-f]*")


class TokenError(BridgeError):
    """A miIO token is missing or malformed (the message names the source, never the value)."""


class Token:
    """A 16-byte miIO token whose str and repr never show it.

    Build it with `Token.parse(text, source)`, `Token(raw_bytes)` or `Token.generate()`; read the
    value explicitly with `.hex()` (what python-miio takes) or `.value` (bytes).
    """

    __slots__ = ("_value",)

    def __init__(self, value: bytes) -> None:
        if not isinstance(value, bytes | bytearray) or len(value) != TOKEN_HEX_CHARS // 2:
            size = len(value) if isinstance(value, bytes | bytearray) else type(value).__name__
            raise TokenError(f"a miIO token is 16 bytes, got {size}")
        self._value = bytes(value)

    @classmethod
    def parse(cls, text: str | bytes, source: str = "the token") -> Token:
        """A token from 32 hex characters; `source` names where the text came from."""
        if isinstance(text, bytes | bytearray):
            try:
                text = bytes(text).decode("ascii")
            except UnicodeDecodeError:
                raise TokenError(
                    f"{source} is not text: expected 32 hex characters (0-9, a-f)"
                ) from None
        if not isinstance(text, str):
            raise TokenError(f"{source} must be a string of 32 hex characters")
        text = text.strip()
        if not text:
            raise TokenError(f"{source} is empty: expected 32 hex characters (0-9, a-f)")
        if not _HEX_ONLY.fullmatch(text):
            raise TokenError(
                f"{source} contains characters other than 0-9 and a-f "
                f"({len(text)} characters); expected 32 hex characters"
            )
        if len(text) != TOKEN_HEX_CHARS:
            raise TokenError(
                f"{source} has {len(text)} hex characters; a miIO token has exactly 32"
            )
        return cls(bytes.fromhex(text))

    @classmethod
    def generate(cls) -> Token:
        """A fresh random token (for a fake robot)."""
        return cls(_stdlib_secrets.token_bytes(TOKEN_HEX_CHARS // 2))

    @classmethod
    def coerce(cls, token: Token | str | bytes, source: str = "the token") -> Token:
        """A Token from a Token, 32 hex characters, or the 16 raw bytes."""
        if isinstance(token, Token):
            return token
        if isinstance(token, bytes | bytearray) and len(token) == TOKEN_HEX_CHARS // 2:
            return cls(bytes(token))
        return cls.parse(token, source)

    @property
    def value(self) -> bytes:
        return self._value

    def hex(self) -> str:
        return self._value.hex()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Token):
            return NotImplemented
        return _stdlib_secrets.compare_digest(self._value, other._value)

    def __hash__(self) -> int:
        return hash(self._value)

    def __repr__(self) -> str:
        return f"Token({REDACTED})"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)

    def __reduce__(self):  # a pickled Token would carry the value into files and queues
        raise TypeError("a Token cannot be pickled")


def default_token_file() -> Path:
    """`$XDG_CONFIG_HOME/vacnav/token` (default `~/.config/vacnav/token`)."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "vacnav" / "token"


def read_token_file(path: str | Path) -> Token:
    """The token stored in `path` (32 hex characters, whitespace around them ignored).

    Logs a warning when group or others may read the file (chmod 600 fixes it).
    """
    path = Path(path)
    try:
        info = path.stat()
    except FileNotFoundError:
        raise TokenError(f"token file {path} does not exist") from None
    except OSError as exc:
        raise TokenError(f"token file {path} cannot be read: {exc.strerror}") from None
    if not stat.S_ISREG(info.st_mode):
        raise TokenError(f"token file {path} is not a regular file")
    if info.st_size > 4096:
        raise TokenError(f"token file {path} is {info.st_size} bytes; expected 32 hex characters")
    mode = stat.S_IMODE(info.st_mode)
    if mode & (stat.S_IRGRP | stat.S_IROTH):
        log.warning(
            "token file %s is readable by %s (mode %04o): anyone who reads it can drive the "
            "robot; run chmod 600 %s",
            path,
            "group and others"
            if mode & stat.S_IRGRP and mode & stat.S_IROTH
            else ("group" if mode & stat.S_IRGRP else "others"),
            mode,
            path,
        )
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise TokenError(f"token file {path} cannot be read: {exc.strerror}") from None
    return Token.parse(raw, f"token file {path}")


def resolve_token(
    value: Token | str | bytes | None = None,
    *,
    env: Mapping[str, str] | None = None,
    path: str | Path | None = None,
) -> Token:
    """The token from `value`, else `$VACNAV_TOKEN` (in `env`, default os.environ), else the file
    `path` (default `default_token_file()`, used only if it exists).

    Raises TokenError naming the source when the winning source is malformed, or listing the
    three places when there is no token at all.
    """
    if value is not None:
        return Token.coerce(value, "the token given as an argument")
    env = os.environ if env is None else env
    from_env = env.get(ENV_VAR)
    if from_env is not None and from_env.strip():
        return Token.parse(from_env, f"${ENV_VAR}")
    if path is not None:
        return read_token_file(path)
    default = default_token_file()
    if default.exists():
        return read_token_file(default)
    raise TokenError(
        f"no miIO token: pass --token, set ${ENV_VAR}, or store it (32 hex characters, "
        f"chmod 600) in {default}"
    )


def _patterns(token: Token | str | bytes) -> list[re.Pattern]:
    """How a token may be spelled in text: hex in any case, and the repr of its bytes."""
    if isinstance(token, Token):
        raw = token.value
    elif isinstance(token, bytes | bytearray):
        raw = bytes(token)
    else:
        text = str(token).strip()
        if not (len(text) == TOKEN_HEX_CHARS and _HEX_ONLY.fullmatch(text)):
            return [re.compile(re.escape(text))] if text else []
        raw = bytes.fromhex(text)
    escaped = repr(raw)[2:-1]  # b'..' without the quotes
    return [
        re.compile(re.escape(raw.hex()), re.IGNORECASE),
        re.compile(re.escape(escaped)),
    ]


def redact(text: str, *tokens: Token | str | bytes) -> str:
    """`text` with every given token (hex in any case, or the repr of its bytes) replaced by
    `<token redacted>`. With no tokens, every standalone run of exactly 32 hex characters is
    replaced (a conservative default for text of unknown origin)."""
    text = str(text)
    if not tokens:
        return _HEX32.sub(REDACTED, text)
    for token in tokens:
        for pattern in _patterns(token):
            text = pattern.sub(REDACTED, text)
    return text


class RedactingFilter(logging.Filter):
    """A logging filter that removes registered tokens from each record's message.

    Attach it to a logger (filters on a logger see only that logger's own records) or to a
    handler (sees everything it emits). `demote` maps message prefixes to a lower level: used
    for python-miio's own ERROR on every lost datagram, which our retry layer handles.
    """

    def __init__(self, tokens: Iterable[Token] = (), demote: Iterable[str] = ()) -> None:
        super().__init__()
        self._tokens: list[Token] = list(tokens)
        self._demote = tuple(demote)

    def add(self, token: Token) -> None:
        if all(t != token for t in self._tokens):
            self._tokens.append(token)

    def remove(self, token: Token) -> None:
        self._tokens = [t for t in self._tokens if t != token]

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: keep the raw parts, still redacted
            message = f"{record.msg} {record.args}"
        clean = redact(message, *self._tokens) if self._tokens else message
        if clean != message or record.args:
            record.msg = clean
            record.args = None
        if record.exc_info and record.exc_info[1] is not None and self._tokens:
            exc_text = redact(str(record.exc_info[1]), *self._tokens)
            if exc_text != str(record.exc_info[1]):
                record.exc_info = None
                record.exc_text = None
                record.msg = f"{clean} ({exc_text})"
        if self._demote and record.levelno > logging.DEBUG:
            raw = str(record.msg)
            if any(raw.startswith(prefix) for prefix in self._demote):
                record.levelno = logging.DEBUG
                record.levelname = "DEBUG"
                return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)
        return True
