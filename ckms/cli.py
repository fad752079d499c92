"""Entry point of `ckms`: global options, command tree, and the single place errors become `ERROR: ...`.

Every failure a user can meet ends as one `ERROR: <message>` line on stderr and exit code 1 (usage errors keep
click's message and exit code 2), never as a Python traceback: scripts check the exit code, people read one
line, and a traceback would only leak internals.
"""

from __future__ import annotations

import sys
from importlib import metadata

import click

from ckms.commands.attestation import attestation
from ckms.commands.attributes import attributes
from ckms.commands.bootstrap import bootstrap
from ckms.commands.database import new_database
from ckms.commands.locate import locate
from ckms.commands.server import server, server_version
from ckms.commands.sym import sym
from ckms.commands.verify import verify
from ckms.context import CliContext
from ckms.errors import CliError
from kms.kmip.errors import KmipError


def _version() -> str:
    try:
        return metadata.version("zt-kms")
    except metadata.PackageNotFoundError:
        return "unknown"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-c", "--conf", metavar="PATH",
              help="Configuration file (default: $KMS_CLI_CONF, else ~/.cosmian/kms.json)")
@click.option("--url", metavar="URL", help="The URL of the KMS server (overrides kms_server_url)")
@click.option("--accept-invalid-certs", is_flag=True,
              help="Accept a self-signed or otherwise invalid server certificate")
@click.option("--json", "print_json", is_flag=True,
              help="Print the JSON TTLV requests sent and responses received, on stderr")
@click.version_option(_version(), "-V", "--version", prog_name="ckms")
@click.pass_context
def cli(ctx: click.Context, conf: str | None, url: str | None, accept_invalid_certs: bool, print_json: bool) -> None:
    """CLI used to manage the KMS (compatible with Cosmian's ckms)."""
    obj = CliContext(conf=conf, url=url, accept_invalid_certs=accept_invalid_certs, print_json=print_json)
    ctx.obj = obj
    ctx.call_on_close(obj.close)


cli.add_command(sym)
cli.add_command(locate)
cli.add_command(attributes)
# `get-attributes` is the 4.x spelling of `attributes get`; kept so older scripts keep working.
cli.add_command(attributes.commands["get"], "get-attributes")
cli.add_command(new_database)
cli.add_command(server_version)
cli.add_command(server)
cli.add_command(attestation)
cli.add_command(bootstrap)
cli.add_command(verify)


def _fail(message: str, code: int = 1) -> None:
    text = " ".join(message.split()) or "unknown error"
    click.echo(f"ERROR: {text}", err=True)
    sys.exit(code)


def _os_error(exc: OSError) -> str:
    detail = exc.strerror or str(exc)
    return f"{detail}: {exc.filename}" if exc.filename else detail


def main(argv: list[str] | None = None) -> None:
    try:
        code = cli.main(args=argv, prog_name="ckms", standalone_mode=False)
    except click.exceptions.ClickException as exc:  # usage errors: click's own message and exit code (2)
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        _fail("aborted")
    except CliError as exc:
        _fail(exc.message)
    except KmipError as exc:
        _fail(exc.message)
    except OSError as exc:
        _fail(_os_error(exc))
    except Exception as exc:  # a bug of ours: still one line, with enough to report it
        _fail(f"unexpected {type(exc).__name__}: {exc}")
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
