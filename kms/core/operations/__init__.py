"""One module per KMIP operation, each with `run(kms, request, ctx) -> response` and `WRITES`."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

from kms.core.operations import (
    activate,
    add_attribute,
    check,
    create,
    decrypt,
    delete_attribute,
    destroy,
    discover_versions,
    encrypt,
    export,
    get,
    get_attribute_list,
    get_attributes,
    hash_,
    import_,
    interop,
    locate,
    log,
    mac,
    mac_verify,
    modify_attribute,
    query,
    register,
    rekey,
    revoke,
    rng_retrieve,
    rng_seed,
    set_attribute,
)
from kms.kmip.enums import Operation

_MODULES: dict[Operation, ModuleType] = {
    Operation.Create: create,
    Operation.Register: register,
    Operation.Import: import_,
    Operation.ReKey: rekey,
    Operation.Get: get,
    Operation.Export: export,
    Operation.GetAttributes: get_attributes,
    Operation.GetAttributeList: get_attribute_list,
    Operation.AddAttribute: add_attribute,
    Operation.SetAttribute: set_attribute,
    Operation.ModifyAttribute: modify_attribute,
    Operation.DeleteAttribute: delete_attribute,
    Operation.Locate: locate,
    Operation.Check: check,
    Operation.Activate: activate,
    Operation.Revoke: revoke,
    Operation.Destroy: destroy,
    Operation.Encrypt: encrypt,
    Operation.Decrypt: decrypt,
    Operation.MAC: mac,
    Operation.MACVerify: mac_verify,
    Operation.Hash: hash_,
    Operation.RNGRetrieve: rng_retrieve,
    Operation.RNGSeed: rng_seed,
    Operation.Query: query,
    Operation.DiscoverVersions: discover_versions,
    Operation.Interop: interop,
    Operation.Log: log,
}

HANDLERS: dict[Operation, tuple[Callable, bool]] = {op: (m.run, m.WRITES) for op, m in _MODULES.items()}
