"""The projector: preview rule, upsert/delete of read rows, rebuild."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.db import transaction

from realtime.testing import capture_publishes
from tests.tickets.conftest import MakeTicket
from tickets import projector
from tickets.models import Status, Ticket, TicketListItem
from tickets.projector import ELLIPSIS, PREVIEW_LENGTH, make_preview, project_ticket, rebuild_all

LONG = (
    "My printer started printing every page twice after the last update and now the office "
    "has run out of paper for the second time this week"
)


class TestMakePreview:
    def test_short_text_is_untouched(self) -> None:
        assert make_preview("Printer on fire") == "Printer on fire"

    def test_empty(self) -> None:
        assert make_preview("") == ""
        assert make_preview(" \n\t ") == ""

    def test_text_of_exactly_the_limit_is_untouched(self) -> None:
        text = "x" * PREVIEW_LENGTH
        assert make_preview(text) == text

    def test_whitespace_is_collapsed(self) -> None:
        assert make_preview("  Hello\n\n\tworld   again \r\n") == "Hello world again"

    def test_unicode_whitespace_is_collapsed(self) -> None:
        assert make_preview("non\u00a0breaking\u2003em\u3000ideographic") == (
            "non breaking em ideographic"
        )

    def test_long_text_is_cut_on_a_word_with_an_ellipsis(self) -> None:
        preview = make_preview(LONG)
        assert preview.endswith(ELLIPSIS)
        assert len(preview) <= PREVIEW_LENGTH
        head = preview.removesuffix(ELLIPSIS)
        assert LONG.startswith(head)
        assert LONG[len(head)] == " ", "the cut falls between two words"
        assert len(preview) > PREVIEW_LENGTH - 15, "no more than a word is dropped"

    def test_cut_on_whitespace_that_was_collapsed(self) -> None:
        spaced = LONG.replace(" ", " \n  ")
        assert make_preview(spaced) == make_preview(LONG)

    def test_cut_exactly_at_a_word_end_keeps_the_word(self) -> None:
        word = "a" * (PREVIEW_LENGTH - 1)
        assert make_preview(f"{word} tail") == word + ELLIPSIS

    def test_punctuation_before_the_ellipsis_is_dropped(self) -> None:
        text = "word, " * 30
        assert make_preview(text).endswith("word" + ELLIPSIS)

    def test_a_single_long_word_is_cut_inside(self) -> None:
        preview = make_preview("a" * 500)
        assert preview == "a" * (PREVIEW_LENGTH - 1) + ELLIPSIS

    def test_unicode_is_cut_on_characters_not_bytes(self) -> None:
        text = "Ünïcödé ñøt ẞïmplé " * 10
        preview = make_preview(text)
        assert preview.endswith(ELLIPSIS)
        assert len(preview) <= PREVIEW_LENGTH
        assert text.startswith(preview.removesuffix(ELLIPSIS))

    def test_text_without_spaces_cjk(self) -> None:
        text = "打印机坏了" * 40
        preview = make_preview(text)
        assert preview == text[: PREVIEW_LENGTH - 1] + ELLIPSIS

    def test_combining_marks_stay_with_their_letter(self) -> None:
        text = "e\u0301" * 100  # "é" written as e + combining acute accent
        preview = make_preview(text)
        head = preview.removesuffix(ELLIPSIS)
        assert head.endswith("e\u0301")
        assert len(preview) <= PREVIEW_LENGTH

    def test_emoji_sequences_are_not_split_at_a_joiner(self) -> None:
        family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"
        head = make_preview(family * 40).removesuffix(ELLIPSIS)
        assert head
        assert len(head) % len(family) == 0, "the cut falls between two whole families"


@pytest.mark.django_db
class TestProjectTicket:
    def test_a_saved_ticket_is_projected(self, make_ticket: MakeTicket, alice: User) -> None:
        ticket = make_ticket(subject="Hello", message="  Some   text ")
        row = TicketListItem.objects.get(pk=ticket.pk)
        assert row.customer_id == alice.pk
        assert row.subject == "Hello"
        assert row.status == Status.OPEN
        assert row.preview == "Some text"
        assert row.has_note is False
        assert row.updated_at == ticket.updated_at

    def test_an_edit_updates_the_row(self, make_ticket: MakeTicket) -> None:
        ticket = make_ticket()
        ticket.message = LONG
        ticket.agent_note = "Called the customer."
        ticket.status = Status.PENDING
        ticket.save()
        row = TicketListItem.objects.get(pk=ticket.pk)
        assert row.preview == make_preview(LONG)
        assert row.has_note is True
        assert row.status == Status.PENDING
        assert TicketListItem.objects.count() == 1

    def test_a_blank_note_is_no_note(self, make_ticket: MakeTicket) -> None:
        ticket = make_ticket(agent_note="  \n ")
        assert TicketListItem.objects.get(pk=ticket.pk).has_note is False

    def test_a_deleted_ticket_loses_its_row(self, make_ticket: MakeTicket) -> None:
        ticket = make_ticket()
        pk = ticket.pk
        ticket.delete()
        assert not TicketListItem.objects.filter(pk=pk).exists()

    def test_deleting_the_customer_removes_the_rows(
        self, make_ticket: MakeTicket, alice: User
    ) -> None:
        make_ticket()
        make_ticket()
        alice.delete()
        assert TicketListItem.objects.count() == 0

    def test_project_ticket_repairs_a_row_written_around_the_signals(
        self, make_ticket: MakeTicket
    ) -> None:
        ticket = make_ticket()
        Ticket.objects.filter(pk=ticket.pk).update(subject="Changed by update()")
        assert TicketListItem.objects.get(pk=ticket.pk).subject != "Changed by update()"
        row = project_ticket(ticket.pk)
        assert row is not None
        assert TicketListItem.objects.get(pk=ticket.pk).subject == "Changed by update()"

    def test_project_ticket_of_a_missing_ticket_removes_a_stale_row(
        self, make_ticket: MakeTicket
    ) -> None:
        ticket = make_ticket()
        Ticket.objects.filter(pk=ticket.pk).delete()  # signals still fire: row gone already
        TicketListItem.objects.create(
            id=ticket.pk,
            customer_id=1,
            subject="stale",
            status="open",
            updated_at=ticket.updated_at,
            preview="",
            has_note=False,
        )
        assert project_ticket(ticket.pk) is None
        assert not TicketListItem.objects.filter(pk=ticket.pk).exists()

    def test_projection_is_part_of_the_writing_transaction(self, make_ticket: MakeTicket) -> None:
        ticket = make_ticket(subject="Before")
        seen_inside: list[str] = []

        def edit_then_fail() -> None:
            with transaction.atomic():
                ticket.subject = "Rolled back"
                ticket.save()
                seen_inside.append(TicketListItem.objects.get(pk=ticket.pk).subject)
                raise RuntimeError

        with pytest.raises(RuntimeError):
            edit_then_fail()
        assert seen_inside == ["Rolled back"]
        assert TicketListItem.objects.get(pk=ticket.pk).subject == "Before"

    def test_a_save_publishes_the_ticket_topics(self, make_ticket: MakeTicket, alice: User) -> None:
        with capture_publishes() as published:
            ticket = make_ticket()
        topics = [topic for topic, _ in published]
        # The projector's topics, and the live admin's (TicketAdmin is a LiveModelAdmin).
        assert sorted(topics) == sorted(
            [
                "tickets",
                f"tickets.{ticket.pk}",
                f"customers.{alice.pk}",
                f"admin.tickets.ticket.{ticket.pk}",
            ]
        )

    def test_moving_a_ticket_to_another_customer_wakes_both_portals(
        self, make_ticket: MakeTicket, alice: User, bob: User
    ) -> None:
        ticket = Ticket.objects.get(pk=make_ticket().pk)
        ticket.customer = bob
        with capture_publishes() as published:
            ticket.save()
        topics = {topic for topic, _ in published}
        assert {f"customers.{alice.pk}", f"customers.{bob.pk}"} <= topics
        assert TicketListItem.objects.get(pk=ticket.pk).customer_id == bob.pk


@pytest.mark.django_db
class TestRebuildAll:
    def test_rebuild_after_changing_the_preview_rule(
        self, make_ticket: MakeTicket, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        tickets = [make_ticket(message=f"Message number {i}") for i in range(5)]
        monkeypatch.setattr(projector, "make_preview", lambda message: message.upper()[:10])
        assert rebuild_all(batch_size=2) == 5
        previews = dict(TicketListItem.objects.values_list("id", "preview"))
        assert previews == {t.pk: t.message.upper()[:10] for t in tickets}

    def test_rebuild_is_idempotent_and_batched(self, make_ticket: MakeTicket) -> None:
        for i in range(5):
            make_ticket(subject=f"Ticket {i}")
        before = list(TicketListItem.objects.order_by("id").values())
        progress: list[tuple[int, int]] = []
        assert rebuild_all(
            batch_size=2, progress=lambda done, total: progress.append((done, total))
        )
        assert rebuild_all(batch_size=2) == 5
        assert list(TicketListItem.objects.order_by("id").values()) == before
        assert progress == [(2, 5), (4, 5), (5, 5)]

    def test_rebuild_fills_missing_rows_and_drops_orphans(self, make_ticket: MakeTicket) -> None:
        kept = make_ticket()
        TicketListItem.objects.all().delete()
        TicketListItem.objects.create(
            id=kept.pk + 1000,
            customer_id=1,
            subject="orphan",
            status="open",
            updated_at=kept.updated_at,
            preview="",
            has_note=False,
        )
        rebuild_all()
        assert list(TicketListItem.objects.values_list("id", flat=True)) == [kept.pk]

    def test_rebuild_of_nothing(self) -> None:
        assert rebuild_all() == 0

    def test_rebuild_publishes_once(self, make_ticket: MakeTicket) -> None:
        make_ticket()
        make_ticket()
        with capture_publishes() as published:
            rebuild_all(batch_size=1)
        assert [topic for topic, _ in published] == ["tickets", projector.REBUILT_TOPIC]

    def test_batch_size_must_be_positive(self) -> None:
        with pytest.raises(ValueError, match="batch_size"):
            rebuild_all(batch_size=0)


@pytest.mark.django_db(transaction=True)
def test_a_shell_save_is_atomic_with_its_projection(
    make_ticket: MakeTicket, monkeypatch: pytest.MonkeyPatch
) -> None:
    ticket = make_ticket(subject="Before")

    def broken_projection(ticket_id: int) -> None:
        raise RuntimeError("projection failed")

    monkeypatch.setattr(projector, "project_ticket", broken_projection)
    ticket.subject = "After"
    with pytest.raises(RuntimeError, match="projection failed"):
        ticket.save()  # autocommit mode, as in `manage.py shell`
    assert Ticket.objects.get(pk=ticket.pk).subject == "Before"
