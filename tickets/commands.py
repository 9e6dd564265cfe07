"""The support desk's commands: forms, the business rules, and the endpoints that run them.

Each rule lives in a plain function (``create_ticket``, ``update_status``, ``set_agent_note``)
that writes the write model; the projector and ``realtime.broadcast`` run from the model signals
in the same transaction, so a command never projects or publishes by hand. The ``CommandView``
subclasses below add authorization, input validation and the HTTP contract (204, 409, 422, 404).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django import forms
from django.contrib.auth.mixins import LoginRequiredMixin, UserPassesTestMixin
from django.db import transaction

from realtime import CommandError, CommandView
from realtime.presence import set_state
from tickets.models import Status, Ticket

if TYPE_CHECKING:
    from django.contrib.auth.models import User

#: Seconds an agent stays "writing a note" after the last keystroke the page reported (the note
#: editor reports at most one every 2 s while the agent types).
TYPING_SECONDS = 4.0

#: The message of the rule that closed is final.
CLOSED_IS_FINAL = "Closed tickets cannot be reopened."


class CreateTicketForm(forms.Form):
    """A customer's new ticket."""

    subject = forms.CharField(min_length=3, max_length=200)
    message = forms.CharField(min_length=1, max_length=10_000, widget=forms.Textarea)


class UpdateStatusForm(forms.Form):
    """An agent moves a ticket to another status."""

    status = forms.ChoiceField(choices=Status.choices)


class AgentNoteForm(forms.Form):
    """An agent's internal note on a ticket; empty clears it."""

    note = forms.CharField(required=False, max_length=10_000, widget=forms.Textarea)


def create_ticket(customer: User, subject: str, message: str) -> Ticket:
    """Open a new ticket for ``customer`` (written, projected and published atomically)."""
    return Ticket.objects.create(customer=customer, subject=subject, message=message)


def _locked_ticket(ticket_id: int) -> Ticket:
    # FOR UPDATE: two agents acting on one ticket at once are serialised, not lost.
    try:
        return Ticket.objects.select_for_update().get(pk=ticket_id)
    except Ticket.DoesNotExist:
        raise CommandError(f"Ticket #{ticket_id} does not exist.", status=404) from None


@transaction.atomic
def update_status(ticket_id: int, status: str) -> Ticket:
    """Move a ticket to ``status``. Closed tickets stay closed; the same status writes nothing.

    Raises :class:`~realtime.CommandError` (409) when reopening a closed ticket and (404) when
    the ticket does not exist. Atomic on its own, or part of the caller's transaction.
    """
    ticket = _locked_ticket(ticket_id)
    if ticket.status == status:
        return ticket
    if ticket.status == Status.CLOSED:
        raise CommandError(CLOSED_IS_FINAL)
    ticket.status = status
    ticket.save(update_fields=["status", "updated_at"])
    return ticket


@transaction.atomic
def set_agent_note(ticket_id: int, note: str) -> Ticket:
    """Set (or, with a blank ``note``, clear) the agent note of a ticket.

    An unchanged note writes nothing. Raises :class:`~realtime.CommandError` (404) when the ticket
    does not exist. Atomic on its own, or part of the caller's transaction.
    """
    ticket = _locked_ticket(ticket_id)
    note = note.strip()
    if ticket.agent_note == note:
        return ticket
    ticket.agent_note = note
    ticket.save(update_fields=["agent_note", "updated_at"])
    return ticket


class StaffRequiredMixin(UserPassesTestMixin):
    """Only agents (staff users); everyone else gets 403, never a redirect."""

    raise_exception = True

    def test_func(self) -> bool:
        """Whether the request's user is an active staff member."""
        user = self.request.user  # type: ignore[attr-defined]
        return bool(user.is_active and user.is_staff)


class CreateTicket(LoginRequiredMixin, CommandView):
    """POST: a logged-in customer opens a ticket."""

    form_class = CreateTicketForm
    name = "create-ticket"
    raise_exception = True

    def handle(self, form: forms.Form) -> None:
        """Create the ticket for the requesting user."""
        create_ticket(self.request.user, **form.cleaned_data)  # type: ignore[arg-type]


class UpdateStatus(StaffRequiredMixin, CommandView):
    """POST: an agent changes a ticket's status (``status`` signal)."""

    form_class = UpdateStatusForm
    name = "update-status"

    def handle(self, form: forms.Form) -> None:
        """Apply the status rules to the ticket of the URL."""
        update_status(self.kwargs["pk"], form.cleaned_data["status"])


class AddAgentNote(StaffRequiredMixin, CommandView):
    """POST: an agent sets or clears a ticket's internal note (``note`` signal)."""

    form_class = AgentNoteForm
    name = "agent-note"

    def handle(self, form: forms.Form) -> None:
        """Store the note on the ticket of the URL."""
        set_agent_note(self.kwargs["pk"], form.cleaned_data["note"])
        # Saved: this tab is no longer writing a note.
        set_state(self.tab, None, topic=ticket_topic(self.kwargs["pk"]))


def ticket_topic(ticket_id: int) -> str:
    """The presence topic of a ticket: the agents whose desk shows it."""
    return f"tickets.{ticket_id}"


class NoteTyping(StaffRequiredMixin, CommandView):
    """POST: the agent's tab is writing a note on the ticket of the URL (for a few seconds).

    Changes only the presence of the tab that sent it (its verified tab id), and writes nothing
    when that tab is not on the ticket.
    """

    name = "note-typing"

    def handle(self, form: forms.Form) -> None:
        """Mark this tab as typing on the ticket, lapsing after :data:`TYPING_SECONDS`."""
        set_state(
            self.tab, "typing", expires_in=TYPING_SECONDS, topic=ticket_topic(self.kwargs["pk"])
        )
