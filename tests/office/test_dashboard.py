"""The office's dashboard on the admin index: numbers right, few queries, accessible charts."""

from __future__ import annotations

import datetime as dt
import re
from html.parser import HTMLParser

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.template import RequestContext, Template
from django.urls import reverse
from django.utils import timezone

from childcare.models import Child
from lottery import services
from office.charts import BarChart, ColumnChart
from office.dashboard import build_dashboard
from registration.models import Application, Edition
from tests.factories import ApplicationFactory, option
from tests.lottery.drawn import applicant, closed_edition, draw_in_order

pytestmark = pytest.mark.django_db

INDEX = reverse("admin:index")
TOKYO = dt.timezone(dt.timedelta(hours=9))


def login(client, *perms: str):  # type: ignore[no-untyped-def]
    user = get_user_model().objects.create(username=f"u{len(perms)}", is_staff=True)
    for perm in perms:
        app_label, codename = perm.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    client.force_login(user)
    return user


def chart(dashboard, chart_id):  # type: ignore[no-untyped-def]
    return next(c for c in dashboard.charts if c.id == chart_id)


def rows(bar_chart: BarChart) -> dict[str, list[int]]:
    return {r.label: r.values for r in bar_chart.rows}


# --- The numbers ---------------------------------------------------------------------------


def test_applications_per_day_are_counted_on_tokyo_days(edition):
    opens = timezone.localtime(edition.registration_opens_at).date()
    # 23:30 and 00:30 Tokyo time fall on two different days (both on one UTC day).
    late = dt.datetime.combine(opens, dt.time(23, 30), tzinfo=TOKYO)
    ApplicationFactory(edition=edition, created_at=late)
    ApplicationFactory(edition=edition, created_at=late + dt.timedelta(hours=1))
    ApplicationFactory(edition=edition, created_at=late + dt.timedelta(hours=2), status="withdrawn")
    per_day = chart(build_dashboard(edition, today=opens + dt.timedelta(days=3)), "dash-per-day")
    assert isinstance(per_day, ColumnChart)
    counts = {c.day: c.value for c in per_day.columns}
    assert counts == {
        opens: 1,
        opens + dt.timedelta(days=1): 2,  # a withdrawn one was still submitted that day
        opens + dt.timedelta(days=2): 0,  # days without applications are shown
        opens + dt.timedelta(days=3): 0,
    }
    assert "3" in per_day.description


def test_demand_counts_first_and_any_choice_of_active_applications(edition):
    ApplicationFactory(edition=edition, choice_1=option(edition, "tama:venue"))
    ApplicationFactory(
        edition=edition,
        choice_1=option(edition, "center:online"),
        choice_2=option(edition, "tama:venue"),
        choice_3=option(edition, "tama:online"),
    )
    ApplicationFactory(edition=edition, choice_1=option(edition, "tama:venue"), status="withdrawn")
    dashboard = build_dashboard(edition)
    assert (dashboard.submitted, dashboard.active) == (3, 2)
    demand = rows(chart(dashboard, "dash-demand"))
    assert demand == {
        "多摩会場: 会場参加": [1, 2],
        "多摩会場: オンライン参加": [0, 1],
        "都心会場: 会場参加": [0, 0],
        "都心会場: オンライン参加": [1, 1],
    }


def test_fill_counts_heads_at_the_venue_and_applications_online():
    edition = closed_edition(tama_venue=5)
    applicant(edition, "AAAAAAAA", ["tama:venue"], adults=2, children=1)
    applicant(edition, "BBBBBBBB", ["tama:online"])
    applicant(edition, "CCCCCCCC", ["tama:online"])
    applicant(edition, "DDDDDDDD", ["tama:venue"], adults=2, children=2)  # 4 > 5 - 3
    before = chart(build_dashboard(edition), "dash-fill")
    assert before.empty_text  # not drawn yet: nobody holds a place
    draw_in_order(edition, ["AAAAAAAA", "BBBBBBBB", "CCCCCCCC", "DDDDDDDD"])
    fill = chart(build_dashboard(edition), "dash-fill")
    assert not fill.empty_text
    by_label = {r.label: (r.values, r.capacity) for r in fill.rows}
    assert by_label["多摩会場: 会場参加"] == ([3], 5)
    assert by_label["多摩会場: オンライン参加"] == ([2], 300)
    assert by_label["都心会場: 会場参加"] == ([0], 150)


def test_childcare_demand_counts_children_per_band_against_the_slots(edition):
    tama = edition.sessions.get(code="tama")
    toddler = tama.date - dt.timedelta(days=500)  # 0-2 at both sessions
    preschooler = tama.date - dt.timedelta(days=4 * 365)  # 3-5
    both = ApplicationFactory(
        edition=edition,
        choice_1=option(edition, "tama:venue"),
        choice_2=option(edition, "center:venue"),
        children=2,
    )
    Child.objects.create(
        application=both, position=1, name="A", name_kana="ア", date_of_birth=toddler
    )
    Child.objects.create(
        application=both, position=2, name="B", name_kana="イ", date_of_birth=preschooler
    )
    online = ApplicationFactory(edition=edition, choice_1=option(edition, "tama:online"))
    Child.objects.create(application=online, name="C", name_kana="ウ", date_of_birth=toddler)
    gone = ApplicationFactory(edition=edition, status="withdrawn", children=1)
    Child.objects.create(application=gone, name="D", name_kana="エ", date_of_birth=toddler)
    childcare = chart(build_dashboard(edition), "dash-childcare")
    by_label = {r.label: (r.values, r.capacity) for r in childcare.rows}
    assert by_label == {
        "多摩会場: 6か月〜2歳": ([1], 6),
        "多摩会場: 3歳〜未就学児": ([1], 10),
        "都心会場: 6か月〜2歳": ([1], 6),
        "都心会場: 3歳〜未就学児": ([1], 10),
    }


def test_after_the_draw_childcare_shows_the_children_granted_too():
    edition = closed_edition(tama_venue=10)
    applicant(edition, "AAAAAAAA", ["tama:venue"], children=1, childcare=1)
    draw_in_order(edition, ["AAAAAAAA"])
    childcare = chart(build_dashboard(edition), "dash-childcare")
    assert len(childcare.series) == 2
    assert {r.label: r.values for r in childcare.rows}["多摩会場: 3歳〜未就学児"] == [1, 1]


def test_the_top_municipalities_are_the_ten_with_most_active_applications(edition):
    keys = ["hachioji", "chofu", "machida", "fuchu", "mitaka", "kodaira", "hino", "ome"]
    keys += ["tama", "inagi", "koganei"]
    for i, key in enumerate(keys):
        for _ in range(len(keys) - i):
            ApplicationFactory(edition=edition, municipality=key)
    ApplicationFactory(edition=edition, municipality="koganei", status="withdrawn")
    top = chart(build_dashboard(edition), "dash-municipalities")
    assert len(top.rows) == 10
    assert top.rows[0].label == "八王子市" and top.rows[0].values == [11]
    assert "小金井市" not in [r.label for r in top.rows]


# --- On the admin index --------------------------------------------------------------------


def published(edition: Edition) -> Edition:
    Edition.objects.exclude(pk=edition.pk).update(is_published=False)
    return edition


def test_the_office_sees_the_dashboard_on_the_admin_index(client, edition):
    published(edition)
    ApplicationFactory(edition=edition, municipality="chofu")
    user = get_user_model().objects.create(username="office", is_staff=True)
    user.groups.add(Group.objects.get(name="office"))
    client.force_login(user)
    html = client.get(INDEX).content.decode()
    assert 'id="office-dashboard"' in html
    assert "調布市" in html
    assert "<script" not in html.split('id="office-dashboard"')[1].split("</div>")[0]


@pytest.mark.parametrize("perms", [(), ("registration.check_in",), ("childcare.view_child",)])
def test_the_dashboard_is_only_for_those_who_may_read_applications(client, edition, perms):
    published(edition)
    login(client, *perms)
    response = client.get(INDEX)
    assert response.status_code == 200
    assert 'id="office-dashboard"' not in response.content.decode()


def test_the_charts_are_accessible_images_with_their_data_in_a_table(client, edition):
    published(edition)
    ApplicationFactory(edition=edition)
    login(client, "registration.view_application")
    html = client.get(INDEX).content.decode()
    svgs = re.findall(r"<svg role=\"img\"[^>]*>.*?</svg>", html, flags=re.S)
    assert len(svgs) == 5
    for svg in svgs:
        assert 'role="img"' in svg
        labelled = re.search(r'aria-labelledby="([^"]+)"', svg)
        assert labelled
        title_id, desc_id = labelled.group(1).split()
        assert re.search(rf'<title id="{title_id}">[^<]+</title>', svg)
        assert re.search(rf'<desc id="{desc_id}">[^<]+</desc>', svg)
    tables = re.findall(r'<table class="visually-hidden">.*?</table>', html, flags=re.S)
    assert len(tables) == 5
    assert all("<caption>" in t and 'scope="col"' in t for t in tables)


class TagBalance(HTMLParser):
    """Fails on an end tag that does not close the last open element."""

    VOID = {"br", "img", "input", "hr", "rect", "line"}

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []

    def handle_starttag(self, tag, attrs):  # type: ignore[no-untyped-def]
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):  # type: ignore[no-untyped-def]
        if tag in self.VOID:
            return
        assert self.stack and self.stack[-1] == tag, (tag, self.stack[-5:])
        self.stack.pop()


def test_the_dashboard_markup_is_well_formed(rf, edition):
    published(edition)
    ApplicationFactory(edition=edition)
    request = rf.get(INDEX)
    request.user = get_user_model().objects.create_superuser("root", "root@example.jp", "x")
    html = Template("{% load office_tags %}{% office_dashboard %}").render(RequestContext(request))
    checker = TagBalance()
    checker.feed(html)
    assert checker.stack == []
    assert html.count("<svg") == 5


def test_without_a_published_edition_the_dashboard_says_so(client, edition):
    Edition.objects.update(is_published=False)
    login(client, "registration.view_application")
    html = client.get(INDEX).content.decode()
    assert 'id="office-dashboard"' in html and 'role="img"' not in html


def test_the_dashboard_links_the_exports_once_they_are_wired(client, edition):
    published(edition)
    login(client, "registration.view_application")
    html = client.get(reverse("admin:index")).content.decode()
    assert reverse("office:export_index") in html


def test_the_dashboard_takes_a_few_queries_whatever_the_number_of_applications(
    client, django_assert_max_num_queries
):
    edition = published(closed_edition(tama_venue=1000))
    for i in range(60):
        applicant(
            edition,
            f"Q{i:07d}",
            ["tama:venue", "center:venue", "tama:online"],
            children=1,
            childcare=1,
        )
    Application.objects.filter(number__endswith="7").update(municipality="chofu")
    services.lottery_freeze(edition=edition, actor=None, actor_label="staff")
    services.lottery_draw(edition=edition, actor=None, actor_label="staff", randomness="r")
    with django_assert_max_num_queries(9):
        dashboard = build_dashboard(edition)
    assert dashboard.active == 60
    login(client, "registration.view_application")
    # The admin index itself, the user, the session and permissions, then the dashboard's.
    with django_assert_max_num_queries(9 + 8):
        response = client.get(INDEX)
    assert response.status_code == 200 and "office-dashboard" in response.content.decode()
