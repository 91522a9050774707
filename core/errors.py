"""Errors a person or the engine can cause; each carries a message fit to show them.

Entry points map the classes to their own channel: an exit code, an HTTP status,
an ephemeral Slack message. Nothing is changed when one of these is raised.
"""


class UserError(Exception):
    """Bad input or a refused request; `str(error)` is the message for the user."""


class ValidationError(UserError):
    """The request is malformed or a value is out of bounds.

    `field` names the input at fault when it is known, as the caller sent it (`value`,
    `duration_minutes`, `relax_pct.min_confidence`); None when the fault is not one input's.
    """

    def __init__(self, *args: object, field: str | None = None) -> None:
        super().__init__(*args)
        self.field = field


class NotFoundError(UserError):
    """The thing the request names does not exist."""


class ConflictError(UserError):
    """The request is valid but the current state refuses it."""


class StaleVersionError(ConflictError):
    """A write was based on a version that is no longer the active one."""


class PermissionDeniedError(UserError):
    """The actor's roles do not allow the action."""


class BackupFailedError(UserError):
    """The backup that must precede a change could not be written; the change was refused."""
