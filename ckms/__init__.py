"""`ckms`: the command line client of the KMS, command-for-command compatible with Cosmian's `ckms` 4.x.

It speaks only the wire protocol (`kms.kmip` builds and parses the messages) and never imports the server, so it
can be shipped and audited on its own: the owner's laptop is the one trusted place in the design.
"""
