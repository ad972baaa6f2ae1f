"""Who may reach the web UI: loopback needs nothing, anything wider needs a log-in (or an
explicit `--no-auth`). Checked before gradio is imported, so a refused start is instant."""
from __future__ import annotations

import ipaddress


def is_loopback(host: str) -> bool:
    h = (host or "").strip().strip("[]").lower()
    if h == "localhost":
        return True
    try:
        return ipaddress.ip_address(h).is_loopback
    except ValueError:  # a host name: it may resolve to a public address
        return False


def parse_auth(auth: str | None) -> tuple[str, str] | None:
    """"user:password" → (user, password); None stays None."""
    if auth is None:
        return None
    user, sep, password = auth.partition(":")
    if not sep or not user.strip() or not password:
        raise ValueError("--auth / TUTOR_AUTH must look like USER:PASSWORD (both non-empty)")
    return user.strip(), password


def check_exposure(host: str, auth: str | None, no_auth: bool = False, share: bool = False) -> tuple[str, str] | None:
    """The (user, password) to require, or None; ValueError when the UI would be reachable from
    other machines (a non-loopback address, a share link) without a log-in nobody waived."""
    creds = parse_auth(auth)
    if creds and no_auth:
        raise ValueError("--auth and --no-auth contradict each other: pass one")
    if creds is None and not no_auth and (share or not is_loopback(host)):
        where = "a public share link" if share else f"{host} (reachable from other machines)"
        raise ValueError(f"serving on {where} needs a log-in: pass --auth USER:PASSWORD (or set TUTOR_AUTH), "
                         "or --no-auth on a network you trust")
    return creds
