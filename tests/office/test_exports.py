"""Exports: CSV that Japanese Excel opens as it should, XLSX, streaming, and who may take what."""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Any

import openpyxl
import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.http import FileResponse, StreamingHttpResponse
from django.urls import reverse
from django.utils import translation

from childcare.models import Child, ChildcareAssignment
from lottery import services
from office.exports import formats
from office.exports.xlsx import XLSX_CONTENT_TYPE
from registration.models import Application, Attendance, AuditEvent, Booth
from tests.factories import ApplicationFactory, option
from tests.lottery.drawn import applicant, closed_edition, draw_in_order

pytestmark = pytest.mark.django_db

NASTY = {
    "needs_other": '=HYPERLINK("http://evil.example/","click")',
    "questions": '+1 said "hello", then\r\nleft; @SUM(A1)',
    "given_name": "-2+3",
}


def login(client, *perms: str, superuser: bool = False):  # type: ignore[no-untyped-def]
    """A staff member with exactly these permissions ('app_label.codename')."""
    user = get_user_model().objects.create(
        username=f"staff{get_user_model().objects.count()}",
        is_staff=True,
        is_superuser=superuser,
    )
    for perm in perms:
        app_label, codename = perm.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    client.force_login(user)
    return user


def url(name: str, *args: Any) -> str:
    return reverse(f"office:export_{name}", args=args)


def body(response) -> bytes:  # type: ignore[no-untyped-def]
    assert response.status_code == 200, response.status_code
    return b"".join(response.streaming_content)


def read_csv(response) -> list[list[str]]:  # type: ignore[no-untyped-def]
    """As Excel does: a UTF-8 BOM means UTF-8, then RFC 4180 with CRLF."""
    raw = body(response)
    assert raw.startswith(b"\xef\xbb\xbf")
    text = raw.decode("utf-8-sig")
    assert not text.startswith("\ufeff")
    return list(csv.reader(io.StringIO(text, newline="")))


def read_xlsx(response) -> list[list[Any]]:  # type: ignore[no-untyped-def]
    workbook = openpyxl.load_workbook(io.BytesIO(body(response)))
    return [list(row) for row in workbook.active.iter_rows(values_only=True)]


def translated(language: str, msgid: str) -> str:
    with translation.override(language):
        return translation.gettext(msgid)


def column(rows: list[list[Any]], header: str) -> list[Any]:
    i = rows[0].index(header)
    return [r[i] for r in rows[1:]]


@pytest.fixture
def edition(db):  # type: ignore[no-untyped-def]
    from tests.factories import EditionFactory

    return EditionFactory(code="2026")


# --- CSV for Japanese Excel ----------------------------------------------------------------


def test_it_writes_applications_as_csv_that_japanese_excel_opens(client, edition):
    login(client, "registration.view_application")
    ApplicationFactory(
        edition=edition,
        family_name="髙橋",
        given_name="美咲",
        family_name_kana="タカハシ",
        given_name_kana="ミサキ",
        phone="09012345678",
        choice_2=option(edition, "center:online"),
    )
    response = client.get(url("edition_applications", "2026", "csv"))
    assert isinstance(response, StreamingHttpResponse)
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="applications-2026.csv"'
    rows = read_csv(response)
    assert rows[0][0] == "申込番号"  # headers in the active language (Japanese by default)
    assert len(rows) == 2
    assert "髙橋" in rows[1] and "美咲" in rows[1] and "タカハシ" in rows[1]
    assert "090-1234-5678" in rows[1]  # hyphenated: Excel keeps the leading zero
    assert "八王子市" in rows[1]


def test_it_ends_every_line_with_crlf(client, edition):
    login(client, "registration.view_application")
    ApplicationFactory(edition=edition, questions="one\ntwo")
    ApplicationFactory(edition=edition)
    raw = body(client.get(url("edition_applications", "2026", "csv"))).decode("utf-8-sig")
    records = raw.split("\r\n")
    assert records[-1] == "" and len(records) == 4  # header, two rows, final CRLF
    # The only bare LF is the one inside the quoted cell.
    assert raw.replace("\r\n", "").count("\n") == 1


def test_it_quotes_commas_quotes_and_line_breaks_inside_cells(client, edition):
    login(client, "registration.view_application")
    ApplicationFactory(edition=edition, questions='He said "hi", then\r\nleft')
    rows = read_csv(client.get(url("edition_applications", "2026", "csv")))
    assert column(rows, "講師への質問")[0] == 'He said "hi", then\nleft'


def test_it_neutralises_formulas_in_csv_cells(client, edition):
    login(client, "registration.view_application")
    ApplicationFactory(edition=edition, **NASTY)
    rows = read_csv(client.get(url("edition_applications", "2026", "csv")))
    row = rows[1]
    assert "'" + NASTY["needs_other"] in row
    assert "'" + NASTY["questions"].replace("\r\n", "\n") in row
    assert "'-2+3" in row
    data_cells = [cell for r in rows[1:] for cell in r]
    assert not any(cell.startswith(("=", "+", "-", "@")) for cell in data_cells)


def test_headers_follow_the_active_language(client, edition, settings):
    # The admin is outside i18n_patterns: its language is the site's default.
    settings.LANGUAGE_CODE = "en"
    login(client, "registration.view_application")
    ApplicationFactory(edition=edition)
    rows = read_csv(client.get(url("edition_applications", "2026", "csv")))
    assert rows[0][:3] == ["Application number", "Status", "Submitted"]
    assert rows[1][1] == "Active"


# --- XLSX ----------------------------------------------------------------------------------


def test_it_writes_applications_as_xlsx(client, edition):
    login(client, "registration.view_application")
    ApplicationFactory(edition=edition, family_name="髙橋", given_name="美咲", adults=2)
    response = client.get(url("edition_applications", "2026", "xlsx"))
    assert isinstance(response, FileResponse)
    assert response["Content-Type"] == XLSX_CONTENT_TYPE
    assert 'filename="applications-2026.xlsx"' in response["Content-Disposition"]
    rows = read_xlsx(response)
    assert rows[0][0] == "申込番号"
    assert len(rows) == 2
    assert column(rows, "姓") == ["髙橋"]
    assert column(rows, "名") == ["美咲"]
    assert 2 in rows[1]  # numbers stay numbers
    assert isinstance(rows[1][2], dt.datetime)  # submitted: a real date for sorting


def test_xlsx_keeps_formula_like_text_as_text(client, edition):
    login(client, "registration.view_application")
    ApplicationFactory(edition=edition, **NASTY)
    raw = body(client.get(url("edition_applications", "2026", "xlsx")))
    sheet = openpyxl.load_workbook(io.BytesIO(raw)).active
    cells = {c.value: c for row in sheet.iter_rows(min_row=2) for c in row}
    cell = cells[NASTY["needs_other"]]
    assert cell.data_type == "s"  # text, never a formula
    assert cell.quotePrefix  # and Excel keeps it text when someone edits it
    assert not any(c.data_type == "f" for c in cells.values())


# --- Which rows ----------------------------------------------------------------------------


def test_a_session_export_has_only_the_applications_choosing_that_session(client, edition):
    login(client, "registration.view_application")
    tama = ApplicationFactory(edition=edition, choice_1=option(edition, "tama:venue"))
    both = ApplicationFactory(
        edition=edition,
        choice_1=option(edition, "center:venue"),
        choice_2=option(edition, "tama:online"),
    )
    center = ApplicationFactory(edition=edition, choice_1=option(edition, "center:online"))
    session = edition.sessions.get(code="tama")
    rows = read_csv(client.get(url("session_applications", session.pk, "csv")))
    assert sorted(r[0] for r in rows[1:]) == sorted([tama.number, both.number])
    assert center.number not in {r[0] for r in rows[1:]}


def drawn_edition():  # type: ignore[no-untyped-def]
    edition = closed_edition(tama_venue=4, center_venue=4)
    applicant(edition, "AAAAAAAA", ["tama:venue"], adults=1, children=1, childcare=1)
    applicant(edition, "BBBBBBBB", ["tama:venue"], adults=2)
    applicant(edition, "CCCCCCCC", ["tama:venue"], adults=1, children=1, childcare=1)
    applicant(edition, "DDDDDDDD", ["tama:online"])
    applicant(edition, "EEEEEEEE", ["center:venue"], children=1, childcare=1)
    Child.objects.filter(application__number="AAAAAAAA").update(
        name="一郎", name_kana="イチロウ", notes="卵アレルギー"
    )
    draw_in_order(edition, ["AAAAAAAA", "BBBBBBBB", "DDDDDDDD", "EEEEEEEE", "CCCCCCCC"])
    return edition, edition.sessions.get(code="tama")


def childcare_staff(client, session, *perms: str):  # type: ignore[no-untyped-def]
    user = login(client, "childcare.view_child", *perms)
    ChildcareAssignment.objects.create(user=user, session=session)
    return user


def test_the_childcare_roster_lists_the_children_expected_at_the_session(client):
    edition, tama = drawn_edition()
    childcare_staff(client, tama)
    rows = read_csv(client.get(url("childcare", tama.pk, "csv")))
    # Granted first; CCCCCCCC did not fit (5 heads > 4) and waits; EEEEEEEE is at center.
    assert column(rows, "申込番号") == ["AAAAAAAA", "CCCCCCCC"]
    assert column(rows, "託児") == [
        "託児確定",
        translated("ja", "No place yet (before the draw or on a waiting list)"),
    ]
    assert rows[1][1:3] == ["一郎", "イチロウ"]
    assert column(rows, "託児の年齢区分") == ["3歳〜未就学児", "3歳〜未就学児"]


def test_the_childcare_roster_before_the_draw_lists_every_child_requested(client, edition):
    tama = edition.sessions.get(code="tama")
    childcare_staff(client, tama)
    born = tama.date - dt.timedelta(days=400)
    a = ApplicationFactory(edition=edition, children=1, choice_1=option(edition, "tama:venue"))
    Child.objects.create(application=a, name="花", name_kana="ハナ", date_of_birth=born)
    online = ApplicationFactory(edition=edition, choice_1=option(edition, "tama:online"))
    Child.objects.create(application=online, name="空", name_kana="ソラ", date_of_birth=born)
    rows = read_csv(client.get(url("childcare", tama.pk, "csv")))
    assert column(rows, "申込番号") == [a.number]
    assert column(rows, "託児の年齢区分") == ["6か月〜2歳"]
    assert column(rows, "生年月日") == [born.isoformat()]


def test_childcare_staff_see_health_notes_and_of_the_parents_only_the_number(client):
    edition, tama = drawn_edition()
    childcare_staff(client, tama, "childcare.view_health_notes")
    rows = read_csv(client.get(url("childcare", tama.pk, "csv")))
    assert rows[1][-1] == "卵アレルギー" and rows[0][-1] == "アレルギー・連絡事項"
    assert "AAAAAAAA" in rows[1]
    parent = Application.objects.get(number="AAAAAAAA")
    cells = {c for r in rows for c in r}
    assert not any(parent.family_name in c or parent.family_name_kana in c for c in cells)
    assert not any(parent.phone[:3] + "-" in c or parent.phone in c for c in cells)


def test_the_office_sees_the_parents_but_never_the_health_notes(client):
    edition, tama = drawn_edition()
    login(client, "childcare.view_child", "registration.view_application")
    rows = read_csv(client.get(url("childcare", tama.pk, "csv")))
    assert "卵アレルギー" not in {c for r in rows for c in r}
    assert "アレルギー・連絡事項" not in rows[0]
    parent = Application.objects.get(number="AAAAAAAA")
    assert parent.full_name in rows[1] and parent.full_name_kana in rows[1]


def test_the_reception_list_has_the_venue_holders_and_their_arrival(client):
    edition, tama = drawn_edition()
    login(client, "registration.check_in")
    Attendance.objects.create(
        application=Application.objects.get(number="BBBBBBBB"), heads=2, checked_in_by="desk"
    )
    rows = read_xlsx(client.get(url("reception", tama.pk, "xlsx")))
    assert [r[0] for r in rows[1:]] == ["AAAAAAAA", "BBBBBBBB"]  # by furigana; no online
    arrived = dict(zip(column(rows, "申込番号"), column(rows, "来場人数"), strict=True))
    assert arrived == {"AAAAAAAA": None, "BBBBBBBB": 2}


def test_booth_interest_counts_active_applications(client, edition):
    login(client, "registration.view_booth")
    tama = edition.sessions.get(code="tama")
    booth = Booth.objects.get(session=tama)
    for status in ("active", "active", "withdrawn"):
        ApplicationFactory(edition=edition, status=status).booths_of_interest.add(booth)
    rows = read_csv(client.get(url("booths", tama.pk, "csv")))
    assert rows[1][:4] == ["1", "フリースクールtama", "フリースクール", "2"]


# --- Streaming, queries --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "fmt", "expected_rows"),
    [
        ("session_applications", "csv", 40),
        ("session_applications", "xlsx", 40),
        ("childcare", "csv", 40),
        ("childcare", "xlsx", 40),
        ("reception", "csv", 40),
        ("booths", "xlsx", 1),
    ],
)
def test_it_reads_rows_in_a_few_queries_not_one_per_row(
    client, django_assert_max_num_queries, name, fmt, expected_rows
):
    edition = closed_edition(tama_venue=400)
    booth = Booth.objects.get(session__edition=edition, session__code="tama")
    for i in range(40):
        a = applicant(
            edition, f"Q{i:07d}", ["tama:venue", "center:online"], children=1, childcare=1
        )
        a.booths_of_interest.add(booth)
    services.lottery_freeze(edition=edition, actor=None, actor_label="staff")
    services.lottery_draw(edition=edition, actor=None, actor_label="staff", randomness="r")
    login(client, superuser=True)
    tama = edition.sessions.get(code="tama")
    # Session and user, permissions, the session, the audit row, then the export's own few.
    with django_assert_max_num_queries(10):
        response = client.get(url(name, tama.pk, fmt))
        rows = read_csv(response) if fmt == "csv" else read_xlsx(response)
    assert len(rows) == 1 + expected_rows


def test_the_csv_is_generated_while_it_is_sent(client, edition, monkeypatch):
    """Rows are read as the response is consumed, in chunks: never all of them at once."""
    login(client, "registration.view_application")
    for _ in range(5):
        ApplicationFactory(edition=edition)
    monkeypatch.setattr(formats, "CSV_ROWS_PER_CHUNK", 2)
    response = client.get(url("edition_applications", "2026", "csv"))
    chunks = list(response.streaming_content)
    assert len(chunks) == 1 + 3  # the header, then rows two by two


# --- Who may export what -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("perms", "allowed"),
    [
        ((), set()),
        (("registration.view_application",), {"applications", "reception", "booths"}),
        (("registration.check_in",), {"reception"}),
        (("childcare.view_child",), {"childcare"}),
        (("registration.view_booth",), {"booths"}),
    ],
)
def test_each_export_needs_its_permission(client, edition, perms, allowed):
    session = edition.sessions.get(code="tama")
    user = login(client, *perms)
    ChildcareAssignment.objects.create(user=user, session=session)
    urls = {
        "applications": url("session_applications", session.pk, "csv"),
        "edition_applications": url("edition_applications", "2026", "xlsx"),
        "childcare": url("childcare", session.pk, "xlsx"),
        "reception": url("reception", session.pk, "csv"),
        "booths": url("booths", session.pk, "csv"),
    }
    for kind, address in urls.items():
        expected = 200 if kind.removeprefix("edition_") in allowed else 403
        assert client.get(address).status_code == expected, kind
    index = client.get(url("index"))
    assert index.status_code == (200 if allowed else 403)


def test_people_outside_the_staff_are_sent_to_the_login(client, edition):
    get_user_model().objects.create(username="parent")
    client.force_login(get_user_model().objects.get(username="parent"))
    response = client.get(url("edition_applications", "2026", "csv"))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_the_reception_group_may_take_the_reception_list(client, edition):
    user = get_user_model().objects.create(username="desk", is_staff=True)
    user.groups.add(Group.objects.get(name="reception"))
    client.force_login(user)
    session = edition.sessions.get(code="tama")
    assert client.get(url("reception", session.pk, "csv")).status_code == 200
    assert client.get(url("session_applications", session.pk, "csv")).status_code == 403


def test_childcare_staff_export_only_the_sessions_they_are_assigned_to(client, edition):
    user = login(client, "childcare.view_child")
    tama, center = edition.sessions.get(code="tama"), edition.sessions.get(code="center")
    ChildcareAssignment.objects.create(user=user, session=tama)
    assert client.get(url("childcare", tama.pk, "csv")).status_code == 200
    assert client.get(url("childcare", center.pk, "csv")).status_code == 403
    html = client.get(url("index")).content.decode()
    assert url("childcare", tama.pk, "csv") in html
    assert url("childcare", center.pk, "csv") not in html


def test_office_staff_export_every_sessions_childcare_roster(client, edition):
    login(client, "childcare.view_child", "registration.view_application")
    center = edition.sessions.get(code="center")
    assert client.get(url("childcare", center.pk, "csv")).status_code == 200


def test_the_index_links_every_export_the_user_may_take(client, edition):
    login(client, superuser=True)
    html = client.get(url("index")).content.decode()
    session = edition.sessions.get(code="tama")
    for name in ("session_applications", "childcare", "reception", "booths"):
        for fmt in ("csv", "xlsx"):
            assert url(name, session.pk, fmt) in html
    assert url("edition_applications", "2026", "csv") in html


def test_every_export_of_personal_data_is_in_the_audit_log(client):
    edition, tama = drawn_edition()
    user = childcare_staff(client, tama)
    body(client.get(url("childcare", tama.pk, "xlsx")))
    event = AuditEvent.objects.get(action="export.childcare")
    assert event.actor == user and event.edition == edition
    assert event.data == {"format": "xlsx", "session": "tama", "health_notes": False}
