"""`ckms server-version` (the 4.x name) and `ckms server version` (the 5.x name): the server's version string."""

from __future__ import annotations

import click

from ckms import output
from ckms.context import CliContext, pass_cli


def _print_version(cli: CliContext) -> None:
    version = cli.client().server_version()
    if output.json_mode():
        output.emit(None, data={"server_version": version})
    else:
        click.echo(version)


@click.command("server-version")
@pass_cli
def server_version(cli: CliContext) -> None:
    """Print the version of the server"""
    _print_version(cli)


@click.group("server")
def server() -> None:
    """Information about the KMS server"""


@server.command("version")
@pass_cli
def version(cli: CliContext) -> None:
    """Print the version of the server"""
    _print_version(cli)
