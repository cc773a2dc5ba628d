"""``mabware keygen``: fresh cookie keys."""

from __future__ import annotations

import secrets

import click


@click.command()
@click.option(
    "--count",
    type=click.IntRange(min=1, max=100),
    default=1,
    show_default=True,
    help="How many keys to print, one a line.",
)
def keygen(count: int) -> None:
    """Print a fresh secret key for the cookie (32 random bytes, url-safe base64).

    Put a new key first in ``secret_keys`` and keep the old one second
    until the cookies it encrypted have expired (``max_age``). Keep keys out
    of source control and logs.
    """
    for _ in range(count):
        click.echo(secrets.token_urlsafe(32))
