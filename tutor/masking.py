"""Secrets and private details out of everything the tutor shows: the settings table
(`tutor models`), `--help`, logs, and the error lines web users read.

One home for the idea: callers never print `settings.api_key` or a raw `base_url`; they go
through `masked_settings`, `mask_url`, `redact` (operators: logs, terminal) or `public_message`
(web users, who also must not learn local paths or server addresses).
"""
from __future__ import annotations

import logging
import re
from typing import Any, Iterable

SECRET_FIELDS = ("api_key", "auth")
URL_FIELDS = ("base_url", "judge_base_url")
MASK = "***"
# placeholders that servers without authentication expect: nothing to hide
_NOT_SECRET = {"", "empty", "none", "null", "no", "-"}

# scheme://userinfo@ — userinfo may be "user:password" or a bare token
_URL_CRED = re.compile(r"\b([a-z][a-z0-9+.\-]*://)([^/@\s'\"<>]+)@", re.I)
# ?api_key=… &token=… &password=… in a URL's query string
_URL_QUERY_SECRET = re.compile(r"([?&](?:api[_-]?key|key|token|access_token|secret|password|passwd|pwd|sig|signature)=)"
                               r"[^&#\s'\"<>]+", re.I)
_BEARER = re.compile(r"(\bBearer\s+)[A-Za-z0-9._~+/=\-]{6,}", re.I)
_URL = re.compile(r"\b[a-z][a-z0-9+.\-]*://[^\s'\"<>()]+", re.I)
# an absolute path (POSIX, home-relative or Windows): shown to web users by its last part only
_PATH = re.compile(r"(?<![\w.:/\\])(?:~|[A-Za-z]:)?[/\\](?:[^\s/\\'\"<>()`:;,]+[/\\])+([^\s/\\'\"<>()`:;,]*)")


def is_secret(value: Any) -> bool:
    return isinstance(value, str) and value.strip().lower() not in _NOT_SECRET


def mask_secret(value: Any) -> Any:
    """A secret as "***"; placeholders ("EMPTY", "") as they are, so a table still says "no key"."""
    return MASK if is_secret(value) else value


def mask_url(url: Any) -> Any:
    """`http://user:pw@host/v1?api_key=k` → `http://***@host/v1?api_key=***`."""
    if not isinstance(url, str):
        return url
    url = _URL_CRED.sub(lambda m: f"{m.group(1)}{MASK}@", url)
    return _URL_QUERY_SECRET.sub(lambda m: m.group(1) + MASK, url)


def masked_settings(settings) -> dict[str, Any]:
    """`Settings.as_dict()` with every secret masked: what `tutor models` and `doctor` show."""
    d = settings.as_dict()
    for k in SECRET_FIELDS:
        if k in d:
            d[k] = mask_secret(d[k])
    for k in URL_FIELDS:
        if k in d:
            d[k] = mask_url(d[k])
    return d


def _secret_values(settings) -> list[str]:
    """The literal secrets configured in `settings` (the key, the UI password), longest first."""
    out: list[str] = []
    if settings is None:
        return out
    key = getattr(settings, "api_key", None)
    if is_secret(key):
        out.append(key)
    auth = getattr(settings, "auth", None)
    if is_secret(auth):
        out.append(auth)
        if ":" in auth:
            out.append(auth.split(":", 1)[1])
    for field in URL_FIELDS:
        m = _URL_CRED.search(getattr(settings, field, "") or "")
        if m:
            out.append(m.group(2))
    return sorted({s for s in out if len(s) >= 3}, key=len, reverse=True)


def redact(text: str, settings=None, extra: Iterable[str] = ()) -> str:
    """`text` with URL credentials, bearer tokens and the configured secrets masked (for the
    operator: terminal errors, logs)."""
    text = mask_url(str(text))
    text = _BEARER.sub(lambda m: m.group(1) + MASK, text)
    for secret in [*_secret_values(settings), *extra]:
        if secret and secret in text:
            text = text.replace(secret, MASK)
    return text


def public_message(text: str, settings=None) -> str:
    """`text` for a web user: secrets masked, server addresses and local paths hidden (a path
    keeps its last part, which is usually what the learner needs: `manifest.json`)."""
    text = redact(text, settings)
    text = _URL.sub("<server>", text)
    return _PATH.sub(lambda m: f"…/{m.group(1)}" if m.group(1) else "…", text)


class RedactingFilter(logging.Filter):
    """Masks secrets in every record a handler emits, tracebacks included."""

    def __init__(self, settings=None) -> None:
        super().__init__()
        self.settings = settings

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            msg = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string is the logger's problem, not ours
            return True
        record.msg, record.args = redact(msg, self.settings), None
        if record.exc_info:
            text = logging.Formatter().formatException(record.exc_info)
            record.exc_info, record.exc_text = None, redact(text, self.settings)
        elif record.exc_text:
            record.exc_text = redact(record.exc_text, self.settings)
        return True


def install_log_redaction(settings=None) -> RedactingFilter:
    """Put a `RedactingFilter` on the root handlers (and Python's last-resort handler), so no
    module's log line can print the API key or a URL password."""
    f = RedactingFilter(settings)
    handlers = list(logging.getLogger().handlers)
    if logging.lastResort is not None:
        handlers.append(logging.lastResort)
    for h in handlers:
        if not any(isinstance(x, RedactingFilter) for x in h.filters):
            h.addFilter(f)
    return f
