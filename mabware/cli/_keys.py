"""``mabware keygen``: fresh cookie keys, or a snapshot signing key pair."""

from __future__ import annotations

import json
import secrets

import click


@click.command()
@click.option(
    "--count",
    type=click.IntRange(min=1, max=100),
    default=1,
    show_default=True,
    help="How many cookie keys to print, one a line.",
)
@click.option(
    "--signing",
    is_flag=True,
    help="Print an Ed25519 pair for the edge snapshot instead, as one JSON object: "
    '{"private_key": ..., "public_key": ...}.',
)
def keygen(count: int, signing: bool) -> None:
    """Print a fresh secret key for the cookie (32 random bytes, url-safe base64).

    Put a new key first in ``secret_keys`` and keep the old one second
    until the cookies it encrypted have expired (``max_age``). Keep keys out
    of source control and logs.

    With ``--signing``: a key pair that signs the edge snapshot. Write the
    whole JSON to the file ``mabware serve --signing-key-file`` and
    ``mabware snapshot`` read; give the edge SDK the public key alone.
    """
    if signing:
        if count != 1:
            raise click.BadParameter("--signing prints one pair", param_hint="'--count'")
        # imported here: cryptography and numpy would slow every other command
        from mabware.edge_snapshot import generate_signing_keys

        click.echo(json.dumps(generate_signing_keys()))
        return
    for _ in range(count):
        click.echo(secrets.token_urlsafe(32))
