"""Credentials out of URLs and messages: the one place that knows where secrets hide in text.

A URL can carry a secret in its userinfo (`http://user:PASS@host`) or in a query parameter
(`?api_key=...`, `?token=...`). Everything llmflow prints, logs or stores that may hold a URL
(params, tags, artifacts, the journal, error messages, the terminal) goes through here first.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MASK = "***"

# query parameters whose value is a credential; matched case-insensitively, `-` as `_`
_SECRET_PARAMS = frozenset(
    {
        "key",
        "api_key",
        "apikey",
        "token",
        "access_token",
        "auth",
        "password",
        "passwd",
        "pwd",
        "secret",
        "client_secret",
        "sig",
        "signature",
        "x_amz_signature",
        "x_amz_credential",
        "x_amz_security_token",
    }
)

# scheme://userinfo@ anywhere in free text, up to the LAST '@' before the host (a password may
# hold an '@', as requests and urllib3 allow); userinfo stops at whitespace, '/' or a quote
_USERINFO_IN_TEXT = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)[^\s/'\"<>]+@")
_SECRET_QUERY_IN_TEXT = re.compile(
    r"(?P<lead>[?&](?P<name>[A-Za-z0-9_\-]+)=)(?P<value>[^&\s'\"<>#]+)"
)


def redact_url(url: str) -> str:
    """The URL without `user:password@` and with credential query values masked.

    A string that does not parse as a URL is redacted as free text, so this never raises.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return redact_text(url)
    netloc = parts.netloc
    if "@" in netloc:
        host = parts.hostname or ""
        if ":" in host:  # an IPv6 literal keeps its brackets
            host = f"[{host}]"
        netloc = f"{host}:{port}" if port else host
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(_is_secret_param(name) for name, _ in pairs):
            query = urlencode(
                [(name, MASK if _is_secret_param(name) else value) for name, value in pairs],
                safe="*",
            )
    if (netloc, query) == (parts.netloc, parts.query):
        return url  # unsplit would drop the empty authority of sqlite:///path
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def redact_text(text: str) -> str:
    """Free text (an error message, a YAML file) with every URL's credentials masked."""
    text = _USERINFO_IN_TEXT.sub(r"\g<scheme>", text)
    return _SECRET_QUERY_IN_TEXT.sub(_mask_query_match, text)


def _mask_query_match(match: re.Match[str]) -> str:
    if _is_secret_param(match.group("name")):
        return match.group("lead") + MASK
    return match.group(0)


def _is_secret_param(name: str) -> bool:
    return name.lower().replace("-", "_") in _SECRET_PARAMS


def one_line(error: BaseException | str, limit: int = 300) -> str:
    """An error as one line for a user: `Type: first line` (or the text), cut to `limit`
    characters, without credentials. A server's HTML page or a traceback inside an exception
    must not flood the terminal or a tag."""
    text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    first = redact_text((text.strip().splitlines() or [""])[0])
    return first if len(first) <= limit else first[: limit - 3] + "..."
