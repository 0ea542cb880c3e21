"""確認 → 完了: saving the application, the receipt e-mail, one application per household."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from registration.models import Application, AuditEvent, DuplicateFlag, OutboxEmail

from .helpers import form_data, with_child, years_before

pytestmark = pytest.mark.django_db


def apply(client, edition, data, *, language="ja"):  # type: ignore[no-untyped-def]
    prefix = "/en" if language == "en" else ""
    base = f"{prefix}/{edition.code}/apply/"
    response = client.post(base, data)
    assert response.status_code == 302, response.context["form"].errors
    with_callbacks = client.post(f"{base}confirm/")
    return with_callbacks


def test_it_saves_the_application_only_when_the_parent_confirms(client, edition):
    client.post(reverse("registration:apply_input", args=[edition.code]), form_data(edition))
    assert not Application.objects.exists()
    page = client.get(reverse("registration:apply_confirm", args=[edition.code]))
    assert "hanako@example.jp" in page.content.decode()
    response = client.post(reverse("registration:apply_confirm", args=[edition.code]))
    assert response["Location"] == reverse("registration:apply_done", args=[edition.code])
    application = Application.objects.get()
    assert application.family_name_kana == "ヤマダ" and application.given_name_kana == "ハナコ"
    assert application.phone == "09012345678"
    assert application.grade_codes == ["e4", "m1"]
    assert [o.code for o in application.choices] == ["tama:venue", "center:online"]
    assert application.language == "ja"
    assert AuditEvent.objects.filter(application=application, action="application.submitted")


def test_the_number_is_short_and_unambiguous_on_the_phone(client, edition):
    apply(client, edition, form_data(edition))
    number = Application.objects.get().number
    assert re.fullmatch(r"[2-9A-HJ-NP-Z]{8}", number)
    assert not set(number) & set("01IOLUVW")


def test_it_sends_a_receipt_with_the_number_and_private_link(
    client, edition, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        apply(client, edition, form_data(edition))
    application = Application.objects.get()
    email = OutboxEmail.objects.get(application=application)
    assert email.kind == "receipt" and email.status == "sent" and email.language == "ja"
    assert application.number in email.subject
    assert "不登校" not in email.subject
    [sent] = mail.outbox
    assert sent.to == ["hanako@example.jp"]
    assert application.number in sent.body
    html = sent.alternatives[0][0]
    link = re.search(r"http://testserver/my/[^\s\"<]+/", sent.body).group(0)
    assert link in html
    page = client.get(link.removeprefix("http://testserver"))
    assert application.number in page.content.decode()


def test_an_english_application_gets_english_pages_and_emails(
    client, edition, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = apply(client, edition, form_data(edition), language="en")
    assert response["Location"].startswith("/en/")
    application = Application.objects.get()
    assert application.language == "en"
    [sent] = mail.outbox
    assert "We received your application" in sent.subject
    assert "/en/my/" in sent.body


def test_a_second_application_with_the_same_email_gets_the_same_answer_and_the_existing_link(
    client, edition, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        first = apply(client, edition, form_data(edition))
    first_page = client.get(first["Location"]).content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        second = apply(
            client,
            edition,
            form_data(
                edition,
                email="HANAKO@example.jp",
                email_confirm="HANAKO@example.jp",
                family_name="別人",
            ),
        )
    assert second["Location"] == first["Location"]
    second_page = client.get(second["Location"]).content.decode()
    assert second_page.replace("HANAKO", "hanako") == first_page
    application = Application.objects.get()  # still one
    assert application.family_name == "山田"
    receipt, again = mail.outbox
    # To the address the application holds (the same mailbox, as its owner typed it).
    assert again.to == ["hanako@example.jp"]
    assert application.number in again.body
    assert OutboxEmail.objects.get(kind="already_applied").application == application


def test_a_withdrawn_applicant_may_apply_again(client, edition):
    apply(client, edition, form_data(edition))
    Application.objects.update(status=Application.Status.WITHDRAWN)
    apply(client, edition, form_data(edition))
    assert Application.objects.filter(status="active").count() == 1


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"phone": "090 1234 5678"}, "phone"),
        ({"family_name_kana": "ヤマダ", "given_name_kana": "はなこ"}, "name"),
    ],
)
def test_it_flags_likely_duplicates_under_another_email_for_staff(client, edition, changes, reason):
    apply(client, edition, form_data(edition))
    other_client = client.__class__()
    apply(
        other_client,
        edition,
        form_data(
            edition,
            email="papa@example.jp",
            email_confirm="papa@example.jp",
            **(
                {"phone": "080-9999-1111"}
                if reason != "phone"
                else {"family_name": "佐藤", "family_name_kana": "サトウ"}
            ),
            **changes,
        ),
    )
    assert Application.objects.filter(status="active").count() == 2  # never voided
    first, second = Application.objects.order_by("created_at", "pk")
    assert DuplicateFlag.objects.filter(application=second, other=first, reason=reason).exists()
    assert DuplicateFlag.objects.filter(application=first, other=second, reason=reason).exists()


def test_it_flags_the_same_child_under_another_email(client, edition):
    date = edition.sessions.get(code="tama").date
    born = years_before(date, 3)
    base = {"children": 1, "childcare_fallback": "skip", "health_consent": "on"}
    apply(client, edition, with_child(form_data(edition, **base), born))
    apply(
        client.__class__(),
        edition,
        with_child(
            form_data(
                edition,
                email="papa@example.jp",
                email_confirm="papa@example.jp",
                phone="080-9999-1111",
                family_name="佐藤",
                family_name_kana="サトウ",
                **base,
            ),
            born,
        ),
    )
    assert DuplicateFlag.objects.filter(reason="child").count() == 2


def test_it_saves_children_and_consent_for_childcare(client, edition):
    date = edition.sessions.get(code="tama").date
    apply(
        client,
        edition,
        with_child(
            form_data(edition, children=2, childcare_fallback="skip", health_consent="on"),
            years_before(date, 2),
        ),
    )
    application = Application.objects.get()
    [child] = application.childcare_children.all()
    assert child.name_kana == "タロウ" and child.notes == "卵アレルギー"
    assert application.childcare_fallback == "skip" and application.health_consent_at
    assert application.heads == 3


def test_an_online_only_application_counts_as_one_household(client, edition):
    from tests.factories import option

    apply(
        client,
        edition,
        form_data(
            edition, choice_1=option(edition, "tama:online").pk, choice_2="", adults=2, children=3
        ),
    )
    application = Application.objects.get()
    assert (application.adults, application.children) == (1, 0)


def test_it_refuses_politely_when_registration_is_closed(client, edition):
    edition.registration_opens_at = timezone.now() - dt.timedelta(days=10)
    edition.registration_closes_at = timezone.now() - dt.timedelta(minutes=1)
    edition.save()
    response = client.get(reverse("registration:apply_input", args=[edition.code]))
    assert response.status_code == 200
    assert "registration/closed.html" in [t.name for t in response.templates]
    response = client.post(
        reverse("registration:apply_input", args=[edition.code]), form_data(edition)
    )
    assert "registration/closed.html" in [t.name for t in response.templates]
    assert not Application.objects.exists()


def test_registration_closing_between_check_and_send_saves_nothing(client, edition):
    client.post(reverse("registration:apply_input", args=[edition.code]), form_data(edition))
    edition.registration_closes_at = timezone.now() - dt.timedelta(seconds=1)
    edition.registration_opens_at = timezone.now() - dt.timedelta(days=1)
    edition.save()
    response = client.post(reverse("registration:apply_confirm", args=[edition.code]))
    assert "registration/closed.html" in [t.name for t in response.templates]
    assert not Application.objects.exists()


def test_going_back_from_the_check_step_keeps_the_answers(client, edition):
    client.post(reverse("registration:apply_input", args=[edition.code]), form_data(edition))
    page = client.get(reverse("registration:apply_input", args=[edition.code]))
    assert 'value="hanako@example.jp"' in page.content.decode()


def test_the_check_step_without_answers_goes_back_to_the_form(client, edition):
    response = client.get(reverse("registration:apply_confirm", args=[edition.code]))
    assert response["Location"] == reverse("registration:apply_input", args=[edition.code])
