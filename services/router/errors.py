"""The router's errors. They are API errors too, so the one error middleware renders
them (404 that leaks nothing, 409 for a transition the ticket's state forbids)."""

from __future__ import annotations

from awasi.web.errors import Conflict, Forbidden, NotFound, ValidationFailed


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


class AssignNotAllowed(Forbidden):
    """The caller's role may not make this assignment (staff may only take an
    unassigned ticket, or give back their own)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code="assign_not_allowed")


class AlreadyAssigned(Conflict):
    """A staff member tried to take a ticket someone else has taken meanwhile."""

    def __init__(self, assignee: str) -> None:
        super().__init__("The ticket is already assigned", code="already_assigned",
                         details={"assignee": assignee})


class NotAgencyMember(Conflict):
    """The assignee is not an active staff member or head of the ticket's agency."""

    def __init__(self, username: str) -> None:
        super().__init__(f"{username!r} is not an active member of the ticket's agency",
                         code="not_agency_member", details={"username": username})
