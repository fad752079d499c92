"""KMIP object states and the rules for using an object in each (KMIP 2.1 §3.22 and §4, state and dates).

Dates drive states: a Pre-Active object whose Activation Date has passed is Active, an Active one whose
Deactivation Date has passed is Deactivated. The effective state is computed on read, so no background job
is needed and every node agrees.
"""

from __future__ import annotations

from kms.kmip.attributes import Attributes
from kms.kmip.enums import CryptographicUsageMask, ResultReason, State, UsageLimitsUnit
from kms.kmip.errors import KmipError

DESTROYED = (State.Destroyed, State.DestroyedCompromised)


def effective_state(a: Attributes, now: int) -> State:
    state = a.state or State.PreActive
    if state == State.PreActive and a.activation_date is not None and a.activation_date <= now:
        state = State.Active
    if state == State.Active and a.deactivation_date is not None and a.deactivation_date <= now:
        state = State.Deactivated
    return state


def initial_state(a: Attributes, now: int) -> State:
    if a.activation_date is not None and a.activation_date <= now:
        if a.deactivation_date is not None and a.deactivation_date <= now:
            return State.Deactivated
        return State.Active
    return State.PreActive


def denied(message: str) -> KmipError:
    return KmipError(ResultReason.WrongKeyLifecycleState, message)


def check_not_destroyed(a: Attributes, now: int, uid: str) -> None:
    if effective_state(a, now) in DESTROYED:
        raise KmipError(ResultReason.ObjectDestroyed, f"object {uid} has been destroyed")


def check_protect(a: Attributes, now: int, uid: str) -> None:
    """Applying protection (encrypt, MAC, sign) needs an Active object inside its protect window."""
    state = effective_state(a, now)
    if state in DESTROYED:
        raise KmipError(ResultReason.ObjectDestroyed, f"object {uid} has been destroyed")
    if state != State.Active:
        raise denied(f"object {uid} is {state.name}; only an Active object may protect data")
    if a.protect_stop_date is not None and a.protect_stop_date <= now:
        raise denied(f"the protect stop date of object {uid} has passed")


def check_process(a: Attributes, now: int, uid: str) -> None:
    """Processing protected data (decrypt, verify) is allowed while Active, Deactivated or Compromised."""
    state = effective_state(a, now)
    if state in DESTROYED:
        raise KmipError(ResultReason.ObjectDestroyed, f"object {uid} has been destroyed")
    if state == State.PreActive:
        raise denied(f"object {uid} is PreActive; activate it first")
    if a.process_start_date is not None and a.process_start_date > now:
        raise denied(f"the process start date of object {uid} has not been reached")


def check_usage(a: Attributes, needed: CryptographicUsageMask, uid: str) -> None:
    mask = a.cryptographic_usage_mask
    if mask is not None and not mask & needed and not mask & CryptographicUsageMask.Unrestricted:
        raise KmipError(
            ResultReason.IncompatibleCryptographicUsageMask,
            f"object {uid} does not allow {needed.name} (usage mask 0x{mask:X})",
        )


def usage_amount(a: Attributes, data_length: int) -> int | None:
    """How much of the object's usage limits one protect operation on `data_length` bytes consumes."""
    limits = a.usage_limits
    if limits is None or limits.usage_limits_count is None:
        return None
    if limits.usage_limits_unit == UsageLimitsUnit.Byte:
        return data_length
    return 1


def check_usage_limits(a: Attributes, amount: int | None, uid: str) -> None:
    if amount is None:
        return
    left = a.usage_limits.usage_limits_count  # type: ignore[union-attr]
    if left is not None and amount > left:
        raise KmipError(ResultReason.PermissionDenied, f"the usage limits of object {uid} are exhausted")
