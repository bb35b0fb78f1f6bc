"""Redis URLs in messages: where a URL points, never its password (nor a part of one)."""

from __future__ import annotations

from typing import Final

from yarl import URL

__all__ = ["URL_HINT", "misplaced_at", "server_of"]

#: What a malformed Redis URL's error says instead of quoting it, or the parser's text.
URL_HINT: Final = (
    "use redis://[[username]:password@]host[:port][/db], rediss:// for TLS or "
    "unix:///path, with a '/', '?', '#', '@' or '%' in the password percent-encoded "
    "(%2F, %3F, %23, %40, %25)"
)


def misplaced_at(url: str) -> bool:
    """Whether an ``@`` follows the authority (in the path, the query or the fragment): a
    password holding an unencoded ``/``, ``?`` or ``#``, whose first part the parsers would
    take for a host, a port or a path. (An ``@`` in a query value, ``?client_name=a@b``, is
    refused too: it cannot be told from ``:12?a=b@host``, a password ``12?a=b``; written
    ``%40``, it means the same to redis-py.)"""
    scheme, _, rest = url.partition("://")
    end = next((i for i, c in enumerate(rest) if c in "/?#"), len(rest))
    path_query, _, fragment = rest[end:].partition("#")
    path, _, query = path_query.partition("?")
    return "@" in fragment or "@" in query or ("@" in path and scheme.lower() != "unix")


def server_of(url: str) -> str:
    """The server of a Redis URL for messages: host, port and database, never a password
    (nor a part of one: a URL whose password holds an unencoded ``/``, ``?`` or ``#`` is
    named by none of its parts)."""
    try:
        parsed = URL(url)
    except (TypeError, ValueError):
        return "redis (unparsable URL)"
    if misplaced_at(url):
        return "redis (unparsable URL)"
    if parsed.scheme == "unix":
        return f"unix:{parsed.path}"
    db = parsed.path.strip("/") or parsed.query.get("db", "0")
    return f"{parsed.host or 'localhost'}:{parsed.port or 6379}/{db}"
