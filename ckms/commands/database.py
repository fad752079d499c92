"""`ckms new-database`: a new user-encrypted database on a sqlite-enc server, its secret saved in the configuration.

Cosmian's 4.x command printed the secret and left it to the user to copy it into the configuration; here it is
also saved as `kms_database_secret` (what every later command sends in the `KmsDatabaseSecret` header), so the
next command works at once. The secret is printed before it is saved: if saving fails the user still has it. An
existing secret in the configuration is never overwritten silently, since it is the only way into its database.
"""

from __future__ import annotations

import click

from ckms import config, output
from ckms.context import CliContext, pass_cli
from ckms.errors import CliError


@click.command("new-database")
@click.option("--replace", is_flag=True,
              help="Replace a kms_database_secret already in the configuration (keep a copy of it first: it is the "
                   "only way into its database)")
@pass_cli
def new_database(cli: CliContext, replace: bool) -> None:
    """Initialize a new user encrypted database and return the secret (`SQLCipher` only).

    This secret is only displayed once and is not stored anywhere on the server. It is saved as
    kms_database_secret in the CLI configuration file, and sent with every later request.

    Passing the correct secret "auto-selects" the correct encrypted database: multiple encrypted databases can be
    used concurrently on the same KMS server.
    """
    saved = config.load(cli.conf)  # the file as it is: --url and other overrides are not written back
    if saved.kms_database_secret and not replace:
        raise CliError(
            f"the configuration {saved.path} already holds a kms_database_secret; keep a copy of it, then run "
            "`ckms new-database --replace` to store a new one"
        )
    secret = cli.client().new_database()
    path = saved.path or config.default_path()
    message = (
        f"A new user encrypted database is configured. Its secret is saved as kms_database_secret in {path}:"
    )
    warning = "Do not lose it: there is no other copy! It is impossible to recover the database without it."
    output.emit(message, lines=["", secret, "", warning], data={"database_secret": secret, "configuration": str(path)})
    saved.kms_database_secret = secret
    try:
        saved.save(path)
    except OSError as exc:
        raise CliError(
            f"the secret printed above could not be saved in {path}: {exc.strerror or exc}; keep it and add it as "
            "kms_database_secret yourself"
        ) from None
