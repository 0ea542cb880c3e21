"""A parent on a phone, in Japanese: home → 入力 → 確認 → 完了 → receipt e-mail → My application."""

from __future__ import annotations

import datetime as dt
import re
import time

import pytest

from registration.models import Application, OutboxEmail
from tests.factories import option

pytestmark = pytest.mark.browser


def _assert_japanese_page(page) -> None:
    assert page.locator("html").get_attribute("lang") == "ja"


def _assert_fits_phone(page) -> None:
    """Nothing wider than the 360 px viewport (no sideways scrolling)."""
    overflow = page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"page is {overflow}px wider than the phone"


def _four_years_old_on(day: dt.date) -> dt.date:
    """A date of birth making a child 4 years (and about 2 months) old on ``day``."""
    return day.replace(year=day.year - 4, day=1) - dt.timedelta(days=60)


def _wait_for_sent_receipt(timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while True:
        email = OutboxEmail.objects.filter(kind=OutboxEmail.Kind.RECEIPT).first()
        if email is not None and email.status == OutboxEmail.Status.SENT:
            return email
        if time.monotonic() > deadline:
            pytest.fail(f"no sent receipt e-mail; outbox: {list(OutboxEmail.objects.all())}")
        time.sleep(0.1)


def test_parent_applies_in_japanese_on_a_phone(open_edition, live_server, phone_page, shot):
    from django.core import mail

    page = phone_page
    edition = open_edition
    tama_venue = option(edition, "tama:venue")
    center_online = option(edition, "center:online")
    born = _four_years_old_on(tama_venue.session.date)

    # Home: the current edition, with its apply button.
    page.goto(live_server.url + "/")
    _assert_japanese_page(page)
    _assert_fits_phone(page)
    shot(page, "01-home")
    apply_link = page.locator(f"main a[href$='/{edition.code}/apply/']")
    assert apply_link.count() == 1
    apply_link.click()
    page.wait_for_url(re.compile(rf"/{edition.code}/apply/$"))

    # 入力
    _assert_japanese_page(page)
    _assert_fits_phone(page)
    assert page.locator("[aria-current=step]").count() == 1
    shot(page, "02-form-empty")
    page.select_option("#id_choice_1", str(tama_venue.pk))
    page.select_option("#id_choice_2", str(center_online.pk))
    page.fill("#id_family_name", "山田")
    page.fill("#id_given_name", "花子")
    page.fill("#id_family_name_kana", "やまだ")  # hiragana: converted to katakana
    page.fill("#id_given_name_kana", "はなこ")
    page.fill("#id_email", "hanako@example.jp")
    page.fill("#id_email_confirm", "hanako@example.jp")
    page.fill("#id_phone", "０９０-１２３４-５６７８")  # full-width digits and hyphens
    page.select_option("#id_municipality", "hachioji")
    page.check("input[name=grades][value=e4]")
    page.select_option("#id_adults", "1")
    page.select_option("#id_children", "1")
    page.fill("#id_child-0-name", "山田 太郎")
    page.fill("#id_child-0-name_kana", "やまだ たろう")
    page.fill("#id_child-0-date_of_birth", born.isoformat())
    page.fill("#id_child-0-notes", "卵アレルギー")
    page.check("input[name=childcare_fallback][value=hall]")
    page.check("#id_health_consent")
    page.check("#id_privacy_consent")
    shot(page, "03-form-filled")
    page.locator("main form button[type=submit]").click()
    page.wait_for_url(re.compile(r"/apply/confirm/$"))

    # 確認: the answers as they will be stored.
    _assert_japanese_page(page)
    _assert_fits_phone(page)
    shot(page, "04-confirm")
    summary = page.locator("dl.summary")
    assert summary.get_by_text("ヤマダ ハナコ").count() == 1
    assert summary.get_by_text("やまだ").count() == 0
    assert summary.get_by_text("090-1234-5678", exact=True).count() == 1
    summary_text = summary.inner_text()
    assert "０９０" not in summary_text
    assert "hanako@example.jp" in summary_text
    assert "山田 太郎 (ヤマダ タロウ)" in summary_text
    assert f"{born.year}年{born.month}月{born.day}日" in summary_text
    assert "八王子市" in summary_text
    assert tama_venue.session.name_ja in summary_text
    assert center_online.session.name_ja in summary_text
    assert Application.objects.count() == 0  # not sent yet
    page.locator("main form button[type=submit]").click()  # 送信
    page.wait_for_url(re.compile(r"/apply/done/$"))

    # 完了
    _assert_japanese_page(page)
    _assert_fits_phone(page)
    shot(page, "05-done")
    assert "hanako@example.jp" in page.locator("main").inner_text()

    application = Application.objects.get()
    assert application.family_name_kana == "ヤマダ"
    assert application.given_name_kana == "ハナコ"
    assert application.phone == "09012345678"
    assert application.language == "ja"
    assert application.childcare_children.get().name_kana == "ヤマダ タロウ"

    # The receipt e-mail: sent after commit by the (eager) task, in Japanese.
    receipt = _wait_for_sent_receipt()
    assert receipt.to == "hanako@example.jp"
    assert receipt.language == "ja"
    assert receipt.application_id == application.pk
    assert application.number in receipt.subject
    assert application.number in receipt.body_text
    assert "不登校" not in receipt.subject
    assert OutboxEmail.objects.count() == 1
    (message,) = mail.outbox
    assert message.subject == receipt.subject
    # The parent's copy holds the private link; the one the office can read does not.
    links = re.findall(re.escape(live_server.url) + r"/my/[^\s<>\"]+/", message.body)
    assert len(links) == 1, message.body
    my_link = links[0]
    assert my_link in message.alternatives[0][0]
    assert my_link not in receipt.body_text + receipt.body_html
    assert "/my/PRIVATE-LINK-REMOVED/" in receipt.body_text

    # My application, from the e-mail's link.
    page.goto(my_link)
    _assert_japanese_page(page)
    _assert_fits_phone(page)
    shot(page, "06-my-application")
    assert page.locator("main strong.font-monospace").inner_text().strip() == application.number
    assert "ヤマダ ハナコ" in page.locator("main").inner_text()

    # The same home page in English, for the review.
    page.goto(live_server.url + "/en/")
    assert page.locator("html").get_attribute("lang") == "en"
    _assert_fits_phone(page)
    shot(page, "07-home-en")


def test_errors_are_summarised_at_the_top_and_answers_kept(
    open_edition, live_server, phone_page, shot
):
    page = phone_page
    edition = open_edition
    tama_venue = option(edition, "tama:venue")

    page.goto(f"{live_server.url}/{edition.code}/apply/")
    page.select_option("#id_choice_1", str(tama_venue.pk))
    page.fill("#id_family_name", "山田")
    page.fill("#id_given_name", "花子")
    page.fill("#id_family_name_kana", "ヤマダ")
    page.fill("#id_given_name_kana", "ハナコ")
    page.fill("#id_email", "hanako@example.jp")
    page.fill("#id_email_confirm", "hanako@example.com")  # mismatch
    page.fill("#id_phone", "090-1234-5678")
    page.select_option("#id_municipality", "hachioji")
    page.check("input[name=grades][value=m1]")
    # No privacy consent.
    page.locator("main form button[type=submit]").click()
    page.wait_for_load_state()

    assert re.search(rf"/{edition.code}/apply/$", page.url)
    _assert_japanese_page(page)
    _assert_fits_phone(page)
    shot(page, "01-errors")

    summary = page.get_by_role("alert")
    assert summary.count() == 1
    # The summary comes before the form, so it is the first thing after the heading.
    assert page.evaluate(
        "document.querySelector('[role=alert]').compareDocumentPosition("
        "document.querySelector('main form')) & Node.DOCUMENT_POSITION_FOLLOWING"
    )
    hrefs = summary.locator("a").evaluate_all("links => links.map(a => a.getAttribute('href'))")
    assert "#id_email_confirm" in hrefs
    assert "#id_privacy_consent" in hrefs
    # Every link leads to a field that exists.
    for href in hrefs:
        assert page.locator(href).count() == 1, href

    # Following a link lands on the field.
    summary.locator("a[href='#id_email_confirm']").click()
    assert page.evaluate("location.hash") == "#id_email_confirm"
    assert page.locator("#id_email_confirm").is_visible()

    # The answers are kept.
    assert page.input_value("#id_choice_1") == str(tama_venue.pk)
    assert page.input_value("#id_family_name") == "山田"
    assert page.input_value("#id_given_name_kana") == "ハナコ"
    assert page.input_value("#id_email") == "hanako@example.jp"
    assert page.input_value("#id_email_confirm") == "hanako@example.com"
    assert page.input_value("#id_phone") == "090-1234-5678"
    assert page.input_value("#id_municipality") == "hachioji"
    assert page.is_checked("input[name=grades][value=m1]")
    assert not page.is_checked("#id_privacy_consent")
    # The fields in error are marked for assistive technology.
    assert page.get_attribute("#id_email_confirm", "aria-invalid") == "true"
    assert page.get_attribute("#id_privacy_consent", "aria-invalid") == "true"
    assert Application.objects.count() == 0


def test_every_error_summary_link_lands_on_a_field(open_edition, live_server, phone_page):
    page = phone_page
    page.goto(f"{live_server.url}/{open_edition.code}/apply/")
    page.locator("main form button[type=submit]").click()  # everything left empty
    page.wait_for_load_state()
    hrefs = (
        page.get_by_role("alert")
        .locator("a")
        .evaluate_all("links => links.map(a => a.getAttribute('href'))")
    )
    assert hrefs
    missing = [href for href in hrefs if page.locator(href).count() != 1]
    assert missing == []
