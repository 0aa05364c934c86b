"""The router's errors. They are API errors too, so the one error middleware renders
them (404 that leaks nothing, 409 for a transition the ticket's state forbids)."""

from __future__ import annotations

from awasi.web.errors import Conflict, NotFound, ValidationFailed


class TicketNotFound(NotFound):
    """No such ticket, or not one the caller may see (deliberately the same)."""

    def __init__(self) -> None:
        super().__init__("No such ticket")


class InvalidTransition(Conflict):
    """The ticket's status does not allow the action."""

    def __init__(self, action: str, status: str) -> None:
        super().__init__(f"Cannot {action} a ticket that is {status}",
                         code="invalid_transition",
                         details={"action": action, "status": status})


class InvalidAgency(ValidationFailed):
    """The target agency is unknown, in another region, or the current one."""

    def __init__(self, message: str) -> None:
        super().__init__(message, details={"fields": [
            {"field": "agency", "message": message, "type": "value_error"}]})
