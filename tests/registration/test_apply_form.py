"""The application form (入力): every rule of SPEC.md §3, as a parent meets it."""

from __future__ import annotations

import pytest
from django.urls import reverse

from registration.models import Application, Booth
from tests.factories import option

from .helpers import form_data, with_child, years_before

pytestmark = pytest.mark.django_db


def post(client, edition, data):  # type: ignore[no-untyped-def]
    return client.post(reverse("registration:apply_input", args=[edition.code]), data)


def errors(response) -> dict[str, list[str]]:  # type: ignore[no-untyped-def]
    form = response.context["form"]
    result = {k: [str(e) for e in v] for k, v in form.errors.items()}
    for i, child in enumerate(response.context["children"].forms):
        for k, v in child.errors.items():
            result[f"child-{i}-{k}"] = [str(e) for e in v]
    return result


def test_it_accepts_a_valid_form_and_goes_to_the_confirmation_step(client, edition):
    response = post(client, edition, form_data(edition))
    assert response.status_code == 302
    assert response["Location"] == reverse("registration:apply_confirm", args=[edition.code])
    assert not Application.objects.exists()  # nothing is saved before 確認


def test_it_converts_hiragana_and_half_width_kana_to_katakana(client, edition):
    post(client, edition, form_data(edition))
    page = client.get(reverse("registration:apply_confirm", args=[edition.code]))
    assert "ヤマダ ハナコ" in page.content.decode()


def test_it_refuses_furigana_in_kanji(client, edition):
    response = post(client, edition, form_data(edition, family_name_kana="山田"))
    assert "family_name_kana" in errors(response)


@pytest.mark.parametrize(
    "typed",
    [
        "090-1234-5678",
        "０９０－１２３４－５６７８",
        "09012345678",
        "+81 90 1234 5678",
        "(090) 1234 5678",
    ],
)
def test_it_normalises_phone_numbers(client, edition, typed):
    post(client, edition, form_data(edition, phone=typed))
    page = client.get(reverse("registration:apply_confirm", args=[edition.code]))
    assert page.status_code == 200
    assert "090-1234-5678" in page.content.decode()  # shown hyphenated, stored as digits


@pytest.mark.parametrize("typed", ["1234", "090-1234-567", "abc-defg-hijk", "05012345678901"])
def test_it_refuses_phone_numbers_that_are_not_japanese_numbers(client, edition, typed):
    assert "phone" in errors(post(client, edition, form_data(edition, phone=typed)))


@pytest.mark.parametrize(
    "email", ["a..b@docomo.ne.jp", "ab.@ezweb.ne.jp", "x.y@example.jp", "ｔａｒｏ＠example.jp"]
)
def test_it_accepts_real_addresses_including_legacy_carrier_ones(client, edition, email):
    response = post(client, edition, form_data(edition, email=email, email_confirm=email))
    assert response.status_code == 302


@pytest.mark.parametrize("email", ["a..b@example.com", "ab.@example.com", "no-at-sign", "a@b"])
def test_it_refuses_broken_addresses_outside_legacy_carriers(client, edition, email):
    response = post(client, edition, form_data(edition, email=email, email_confirm=email))
    assert "email" in errors(response)


def test_it_refuses_two_different_email_addresses(client, edition):
    response = post(client, edition, form_data(edition, email_confirm="other@example.jp"))
    assert "email_confirm" in errors(response)


def test_it_refuses_the_same_option_twice(client, edition):
    venue = option(edition, "tama:venue").pk
    response = post(client, edition, form_data(edition, choice_1=venue, choice_2=venue))
    assert "choice_2" in errors(response)


def test_it_refuses_a_third_choice_without_a_second(client, edition):
    response = post(
        client,
        edition,
        form_data(edition, choice_2="", choice_3=option(edition, "center:venue").pk),
    )
    assert "choice_3" in errors(response)


def test_it_requires_a_first_choice(client, edition):
    assert "choice_1" in errors(post(client, edition, form_data(edition, choice_1="")))


def test_it_refuses_an_option_of_another_edition(client, edition):
    from tests.factories import EditionFactory

    other = EditionFactory()
    response = post(client, edition, form_data(edition, choice_1=option(other, "tama:venue").pk))
    assert "choice_1" in errors(response)


def test_it_requires_a_municipality_of_tokyo(client, edition):
    assert "municipality" in errors(post(client, edition, form_data(edition, municipality="osaka")))


def test_the_municipality_list_has_tokyos_62(client, edition):
    form = client.get(reverse("registration:apply_input", args=[edition.code])).context["form"]
    assert len(form.fields["municipality"].choices) == 62 + 1  # and "please choose"


def test_it_requires_at_least_one_grade_and_only_elementary_to_junior_high(client, edition):
    assert "grades" in errors(post(client, edition, form_data(edition, grades=[])))
    assert "grades" in errors(post(client, edition, form_data(edition, grades=["h1"])))


@pytest.mark.parametrize(("adults", "children"), [(0, 0), (3, 0), (1, 4)])
def test_it_refuses_a_party_outside_the_limits(client, edition, adults, children):
    response = post(client, edition, form_data(edition, adults=adults, children=children))
    assert set(errors(response)) & {"adults", "children"}


def test_it_accepts_the_largest_party(client, edition):
    assert post(client, edition, form_data(edition, adults=2, children=3)).status_code == 302


def test_it_requires_privacy_consent(client, edition):
    response = post(client, edition, form_data(edition, privacy_consent=None))
    assert "privacy_consent" in errors(response)


def test_it_books_childcare_for_a_child_in_an_age_band_on_the_session_date(client, edition):
    date = option(edition, "tama:venue").session.date
    data = with_child(
        form_data(edition, children=1, childcare_fallback="hall", health_consent="on"),
        years_before(date, 4),
    )
    assert post(client, edition, data).status_code == 302


def test_it_requires_health_consent_and_a_fallback_when_childcare_is_requested(client, edition):
    date = option(edition, "tama:venue").session.date
    response = post(
        client, edition, with_child(form_data(edition, children=1), years_before(date, 4))
    )
    assert {"health_consent", "childcare_fallback"} <= set(errors(response))


@pytest.mark.parametrize("age_days", [100, 7 * 365])
def test_it_refuses_a_child_too_young_or_too_old_for_childcare_with_a_clear_message(
    client, edition, age_days
):
    import datetime as dt

    date = option(edition, "tama:venue").session.date
    data = with_child(
        form_data(edition, children=1, childcare_fallback="hall", health_consent="on"),
        date - dt.timedelta(days=age_days),
    )
    message = errors(post(client, edition, data))["child-0-date_of_birth"][0]
    assert "多摩会場" in message or "Tama" in message


def test_it_checks_the_childs_age_on_each_chosen_venue_sessions_date(client, edition):
    """A baby who is 6 months old on the Central date is still 5 months old a week earlier,
    on the Tama date: fine for Central alone, refused once Tama is chosen too."""
    tama = option(edition, "tama:venue").session.date
    center = option(edition, "center:venue").session.date
    assert (center - tama).days == 7
    month, year = (center.month - 6) % 12 or 12, center.year - (center.month <= 6)
    born = center.replace(year=year, month=month, day=min(center.day, 28))
    data = with_child(
        form_data(
            edition,
            choice_1=option(edition, "center:venue").pk,
            choice_2="",
            children=1,
            childcare_fallback="hall",
            health_consent="on",
        ),
        born,
    )
    assert post(client, edition, data).status_code == 302  # center only: fine
    data["choice_2"] = option(edition, "tama:venue").pk
    assert "child-0-date_of_birth" in errors(post(client, edition, data))


def test_it_refuses_childcare_for_more_children_than_are_coming(client, edition):
    date = option(edition, "tama:venue").session.date
    data = with_child(
        form_data(edition, children=0, childcare_fallback="hall", health_consent="on"),
        years_before(date, 3),
    )
    assert "children" in errors(post(client, edition, data))


def test_it_refuses_childcare_when_only_online_was_chosen(client, edition):
    date = option(edition, "tama:venue").session.date
    data = with_child(
        form_data(
            edition,
            choice_1=option(edition, "tama:online").pk,
            choice_2="",
            children=1,
            childcare_fallback="hall",
            health_consent="on",
        ),
        years_before(date, 3),
    )
    response = post(client, edition, data)
    assert response.context["form"].non_field_errors()


def test_it_refuses_a_child_row_filled_in_halfway(client, edition):
    data = form_data(edition, **{"child-0-name": "太郎"})
    assert "child-0-date_of_birth" in errors(post(client, edition, data))


def test_it_refuses_line_breaks_and_oversized_input_in_one_line_fields(client, edition):
    assert "family_name" in errors(
        post(client, edition, form_data(edition, family_name="山\r\n田"))
    )
    assert "given_name" in errors(post(client, edition, form_data(edition, given_name="あ" * 51)))
    assert "questions" in errors(post(client, edition, form_data(edition, questions="x" * 1001)))


def test_it_allows_line_breaks_in_questions(client, edition):
    response = post(client, edition, form_data(edition, questions="一つ目\r\n二つ目"))
    assert response.status_code == 302


def test_it_accepts_booths_only_at_chosen_sessions(client, edition):
    tama_booth = Booth.objects.get(session__edition=edition, session__code="tama")
    center_booth = Booth.objects.get(session__edition=edition, session__code="center")
    ok = post(client, edition, form_data(edition, booths=[tama_booth.pk, center_booth.pk]))
    assert ok.status_code == 302  # tama venue + center online
    only_tama = form_data(edition, choice_2="", booths=[center_booth.pk])
    assert "booths" in errors(post(client, edition, only_tama))


def test_errors_are_listed_at_the_top_and_beside_each_field(client, edition):
    response = post(
        client, edition, form_data(edition, email_confirm="other@example.jp", privacy_consent=None)
    )
    html = response.content.decode()
    summary = html[
        html.index('id="error-summary"') : html.index("</div>", html.index('id="error-summary"'))
    ]
    assert 'href="#id_email_confirm"' in summary and 'href="#id_privacy_consent"' in summary
    assert html.count("invalid-feedback") >= 2  # and each field shows its own message
    assert 'value="山田"' in html  # what was typed is kept


def test_the_cached_blank_form_never_carries_one_parents_answers_to_another(client, edition):
    from django.test import Client

    client.get(reverse("registration:apply_input", args=[edition.code]))  # fills the cache
    post(
        client,
        edition,
        form_data(edition, email="first@example.jp", email_confirm="first@example.jp"),
    )
    back = client.get(reverse("registration:apply_input", args=[edition.code]))
    assert 'value="first@example.jp"' in back.content.decode()
    other = Client().get(reverse("registration:apply_input", args=[edition.code]))
    html = other.content.decode()
    assert "first@example.jp" not in html
    token = html.split('name="csrfmiddlewaretoken" value="')[1].split('"')[0]
    assert token not in back.content.decode()  # each page has its own CSRF token


def test_the_cached_blank_form_is_in_the_visitors_language(client, edition):
    """The blank form is rendered once a minute per edition and language, never shared between
    the two languages."""
    url = reverse("registration:apply_input", args=[edition.code])
    japanese = client.get(url).content.decode()
    english = client.get("/en" + url).content.decode()
    assert "姓" in japanese and "Family name" not in japanese
    assert "Family name" in english and "姓" not in english
