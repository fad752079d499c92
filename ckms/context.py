"""Per-invocation state shared by all commands: global options, and the client built on first use.

The configuration is read only when a command actually talks to the server, so `--help`, usage errors and
argument checks work without a configuration file and never create one as a side effect.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import click

from ckms import config
from ckms.client import KmsClient


@dataclass
class CliContext:
    conf: str | None = None
    url: str | None = None
    accept_invalid_certs: bool = False
    print_json: bool = False
    _client: KmsClient | None = field(default=None, repr=False)

    def load_config(self) -> config.ClientConfig:
        cfg = config.load(self.conf)
        if self.url:
            cfg.kms_server_url = self.url
        if self.accept_invalid_certs:
            cfg.accept_invalid_certs = True
        return cfg

    def client(self) -> KmsClient:
        if self._client is None:
            self._client = KmsClient(
                self.load_config(), print_json=self.print_json, echo=lambda text: click.echo(text, err=True)
            )
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


pass_cli = click.make_pass_decorator(CliContext, ensure=True)
