"""Issue 5, security: admin lockouts (django-axes), staff two-factor login (django-otp), the
Content-Security-Policy with no inline script, production headers and `check --deploy`, rate
limits on the parents' forms that fail open, and the request body caps."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
import time_machine
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import RequestFactory
from django.urls import reverse
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from registration.models import Application, Edition
from seminar_site.security import client_ip
from tests.factories import ApplicationFactory
from tests.registration.helpers import form_data
from tests.registration.test_pages import public_urls

ROOT = Path(__file__).resolve().parents[2]
LOGIN = "/admin/login/"
INDEX = "/admin/"
PASSWORD = "correct horse battery staple"
User = get_user_model()

# --- helpers ------------------------------------------------------------------------------------


def inline_scripts(html: str) -> list[str]:
    """Every <script> tag without a src, and every inline event handler or javascript: URL."""
    tags = [t for t in re.findall(r"<script\b[^>]*>", html, re.I) if "src=" not in t]
    handlers = re.findall(r"<[^>]*\son[a-z]+\s*=[^>]*>", html, re.I)
    urls = re.findall(r"""(?:href|src|action)\s*=\s*["']\s*javascript:""", html, re.I)
    return tags + handlers + urls


def csp_directives(response) -> dict[str, list[str]]:  # type: ignore[no-untyped-def]
    header = response["Content-Security-Policy"]
    directives = {}
    for part in header.split(";"):
        name, *values = part.split()
        directives[name] = values
    return directives


def staff(username: str = "office", *, superuser: bool = False):  # type: ignore[no-untyped-def]
    users = User.objects
    if superuser:
        return users.create_superuser(username, f"{username}@example.jp", PASSWORD)
    return users.create_user(username, f"{username}@example.jp", PASSWORD, is_staff=True)


def login(  # type: ignore[no-untyped-def]
    client,
    username: str,
    password: str = PASSWORD,
    *,
    otp_token: str = "",
    otp_device: str = "",
    **meta: str,
):
    """POST the admin login form; ``meta`` are request headers such as REMOTE_ADDR."""
    data = {"username": username, "password": password, "next": INDEX}
    if otp_token:
        data |= {"otp_token": otp_token, "otp_device": otp_device}
    return client.post(LOGIN, data, **meta)


def logged_in(client) -> bool:  # type: ignore[no-untyped-def]
    return "_auth_user_id" in client.session


def code_for(device: TOTPDevice) -> str:
    return f"{totp(device.bin_key, device.step, device.t0, device.digits, device.drift):06d}"


def production_env(tmp_path: Path, **overrides: str) -> dict[str, str]:
    """The environment docker-compose.yml gives the app, with fake but well-formed secrets."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PYTEST", "CI"))}
    env.update(
        DJANGO_SETTINGS_MODULE="seminar_site.settings",
        DJANGO_DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="seminar.example.jp",
        CSRF_TRUSTED_ORIGINS="https://seminar.example.jp",
        SITE_URL="https://seminar.example.jp",
        REDIS_URL="redis://127.0.0.1:6379/0",
        EMAIL_URL="smtp+tls://user:pass@mail.example.jp:587",
        VAR_DIR=str(tmp_path / "var"),
    )
    env.update(overrides)
    return env


def run_python(env: dict[str, str], code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


# --- client address behind the proxy ------------------------------------------------------------


def test_it_uses_the_peer_address_without_a_trusted_proxy(settings):
    settings.TRUSTED_PROXY_COUNT = 0
    request = RequestFactory().get("/", REMOTE_ADDR="192.0.2.1", HTTP_X_FORWARDED_FOR="10.9.9.9")
    assert client_ip(request) == "192.0.2.1"


def test_it_reads_the_address_the_proxy_appended_and_ignores_forged_ones(settings):
    settings.TRUSTED_PROXY_COUNT = 1
    forwarded = "203.0.113.66, 198.51.100.7"  # the client forged the first one
    request = RequestFactory().get("/", REMOTE_ADDR="172.18.0.2", HTTP_X_FORWARDED_FOR=forwarded)
    assert client_ip(request) == "198.51.100.7"
    settings.TRUSTED_PROXY_COUNT = 2
    assert client_ip(request) == "203.0.113.66"


def test_a_request_that_bypassed_the_proxy_is_counted_by_its_peer_address(settings):
    settings.TRUSTED_PROXY_COUNT = 1
    assert client_ip(RequestFactory().get("/", REMOTE_ADDR="127.0.0.1")) == "127.0.0.1"
    garbage = RequestFactory().get("/", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="nonsense")
    assert client_ip(garbage) == "127.0.0.1"


# --- django-axes: admin password guessing -------------------------------------------------------


@pytest.fixture
def few_failures(settings):  # type: ignore[no-untyped-def]
    settings.AXES_FAILURE_LIMIT = 3
    return 3


def test_it_locks_the_account_out_after_failed_logins_and_then_refuses_the_right_password(
    client, db, few_failures
):
    staff("office")
    for attempt in range(1, few_failures + 1):
        response = login(client, "office", "wrong")
        assert response.status_code == (429 if attempt == few_failures else 200)
    assert "admin/locked_out.html" in [t.name for t in response.templates]

    response = login(client, "office")
    assert response.status_code == 429
    assert not logged_in(client)
    assert client.get(INDEX).status_code == 302  # to the login page


def test_the_lock_follows_the_username_to_another_address(client, db, few_failures):
    staff("office")
    for _ in range(few_failures):
        login(client, "office", "wrong", REMOTE_ADDR="192.0.2.10")
    assert login(client, "office", REMOTE_ADDR="192.0.2.99").status_code == 429
    assert not logged_in(client)


def test_the_lock_follows_the_address_behind_the_proxy_whatever_it_forges(
    client, db, few_failures, settings
):
    settings.TRUSTED_PROXY_COUNT = 1
    staff("office")
    for n in range(few_failures):  # a different username and forged address each time
        login(client, f"guess{n}", "wrong", HTTP_X_FORWARDED_FOR=f"10.0.0.{n}, 198.51.100.7")
    locked = login(client, "office", HTTP_X_FORWARDED_FOR="10.0.0.99, 198.51.100.7")
    assert locked.status_code == 429 and not logged_in(client)

    other = login(client, "office", HTTP_X_FORWARDED_FOR="198.51.100.8")
    assert other.status_code == 302 and logged_in(client)


def test_a_successful_login_resets_the_failures(client, db, few_failures):
    staff("office")
    for _ in range(few_failures - 1):
        login(client, "office", "wrong")
    assert login(client, "office").status_code == 302
    client.logout()
    for _ in range(few_failures - 1):
        login(client, "office", "wrong")
    assert login(client, "office").status_code == 302


# --- django-otp: staff two-factor login ---------------------------------------------------------


@pytest.fixture
def production_otp(settings):  # type: ignore[no-untyped-def]
    settings.OTP_REQUIRED_FOR_STAFF = True


def role_member(role: str):  # type: ignore[no-untyped-def]
    """A staff member of one of the roles of 0006_staff_roles / 0003_reception_group."""
    from django.contrib.auth.models import Group

    user = staff(role)
    user.groups.add(Group.objects.get(name=role))
    return user


ROLES = ["office", "administrators", "childcare", "reception"]


def test_in_production_an_administrator_without_a_device_cannot_log_in(client, db, production_otp):
    staff("admin", superuser=True)
    response = login(client, "admin")
    assert response.status_code == 200
    assert not logged_in(client)
    assert response.context["form"].has_error("__all__", "otp_required")


def test_in_production_an_unverified_administrator_session_does_not_open_the_admin(
    client, db, production_otp
):
    client.force_login(staff("admin", superuser=True))
    response = client.get(INDEX)
    assert response.status_code == 302 and response["Location"].startswith(LOGIN)


def test_in_production_an_administrator_logs_in_with_a_totp_code(client, db, production_otp):
    user = staff("admin", superuser=True)
    device = TOTPDevice.objects.create(user=user, name="phone", confirmed=True)

    wrong = "000000" if code_for(device) != "000000" else "111111"
    refused = login(client, "admin", otp_token=wrong)
    assert refused.status_code == 200 and not logged_in(client)
    # A wrong code makes the device wait before it checks another (django-otp's throttle).
    throttled = login(client, "admin", otp_token=code_for(device))
    assert throttled.status_code == 200 and not logged_in(client)

    device.refresh_from_db()
    device.throttle_reset()
    assert login(client, "admin", otp_token=code_for(device)).status_code == 302
    assert client.get(INDEX).status_code == 200


def test_a_static_token_from_the_command_line_lets_an_administrator_in_to_add_a_device(
    client, db, production_otp, capsys
):
    staff("admin", superuser=True)
    call_command("addstatictoken", "admin")
    token = capsys.readouterr().out.strip()
    assert login(client, "admin", otp_token=token).status_code == 302
    assert client.get(reverse("admin:otp_totp_totpdevice_add")).status_code == 200

    # The authenticator app is set up; the used-up one-time code needs no choosing between.
    device = TOTPDevice.objects.create(user=User.objects.get(), name="phone", confirmed=True)
    client.logout()
    assert login(client, "admin", otp_token=code_for(device)).status_code == 302
    assert client.get(INDEX).status_code == 200


def test_with_two_devices_the_administrator_chooses_one(client, db, production_otp):
    user = staff("admin", superuser=True)
    device = TOTPDevice.objects.create(user=user, name="phone", confirmed=True)
    TOTPDevice.objects.create(user=user, name="spare phone", confirmed=True)
    first = login(client, "admin", otp_token=code_for(device))
    assert first.context["form"].has_error("__all__", "device_required")
    second = login(client, "admin", otp_token=code_for(device), otp_device=device.persistent_id)
    assert second.status_code == 302 and logged_in(client)


@pytest.mark.parametrize("role", ROLES)
def test_in_production_no_staff_role_logs_in_with_a_password_alone(
    client, db, production_otp, role
):
    role_member(role)
    response = login(client, role)
    assert response.status_code == 200 and not logged_in(client)
    assert response.context["form"].has_error("__all__", "otp_required")


@pytest.mark.parametrize("role", ROLES)
def test_in_production_an_unverified_session_of_any_role_does_not_open_the_admin(
    client, db, production_otp, role
):
    client.force_login(role_member(role))
    response = client.get(INDEX)
    assert response.status_code == 302 and response["Location"].startswith(LOGIN)


@pytest.mark.parametrize("role", ROLES)
def test_in_production_every_role_sets_up_its_first_device_with_a_one_time_code(
    client, db, production_otp, capsys, role
):
    role_member(role)
    call_command("addstatictoken", role)
    token = capsys.readouterr().out.strip()
    assert login(client, role, otp_token=token).status_code == 302
    assert client.get(INDEX).status_code == 200


def test_staff_who_added_a_device_must_give_its_code(client, db, production_otp):
    user = staff("reception")
    device = TOTPDevice.objects.create(user=user, name="phone", confirmed=True)
    response = login(client, "reception")
    assert response.context["form"].has_error("__all__", "token_required")
    assert not logged_in(client)
    assert login(client, "reception", otp_token=code_for(device)).status_code == 302


@pytest.mark.parametrize("role", ROLES)
def test_in_production_each_role_sets_up_its_own_authenticator_app(
    client, db, production_otp, capsys, role
):
    role_member(role)
    call_command("addstatictoken", role)
    assert login(client, role, otp_token=capsys.readouterr().out.strip()).status_code == 302
    index = client.get(INDEX)
    setup_url = reverse("admin:totp_setup")
    assert setup_url in index.content.decode()  # the admin says what to do next

    page = client.get(setup_url)
    assert page.status_code == 200 and "<svg" in page.content.decode()
    device = TOTPDevice.objects.get(user__username=role)
    assert not device.confirmed and page.context["secret"]
    wrong = "000000" if code_for(device) != "000000" else "111111"
    assert client.post(setup_url, {"token": wrong}).context["form"].has_error("token")
    device.refresh_from_db()
    device.throttle_reset()
    assert client.post(setup_url, {"token": code_for(device)}).status_code == 302
    device.refresh_from_db()
    assert device.confirmed
    assert setup_url not in client.get(INDEX).content.decode()

    # The one-time code is used up; from now on the app's codes open the admin (the next
    # one: a code is never taken twice).
    client.logout()
    assert login(client, role).context["form"].has_error("__all__", "token_required")
    device.refresh_from_db()
    device.throttle_reset()
    with time_machine.travel(dt.timedelta(seconds=device.step), tick=False):
        assert login(client, role, otp_token=code_for(device)).status_code == 302
        assert client.get(INDEX).status_code == 200


def test_the_setup_page_never_shows_another_users_device(client, db, production_otp, capsys):
    other = role_member("administrators")
    theirs = TOTPDevice.objects.create(user=other, name="phone", confirmed=True)
    role_member("office")
    call_command("addstatictoken", "office")
    login(client, "office", otp_token=capsys.readouterr().out.strip())
    page = client.get(reverse("admin:totp_setup"))
    import base64

    assert page.context["secret"] != base64.b32encode(theirs.bin_key).decode()
    # And no role may open django-otp's device lists, which show every user's devices.
    assert client.get(reverse("admin:otp_totp_totpdevice_changelist")).status_code == 403


def test_an_unverified_session_cannot_open_the_setup_page(client, db, production_otp):
    client.force_login(role_member("office"))
    response = client.get(reverse("admin:totp_setup"))
    assert response.status_code == 302 and response["Location"].startswith(LOGIN)


def test_the_embedded_mode_admin_logs_in_with_the_printed_password(client, db, settings):
    settings.OTP_REQUIRED_FOR_STAFF = False
    staff("admin", superuser=True)
    assert login(client, "admin").status_code == 302
    assert client.get(INDEX).status_code == 200


# --- Content-Security-Policy, and no inline script anywhere -------------------------------------


def all_public_urls(edition: Edition) -> list[str]:
    urls = [*public_urls(edition), "/my/not-a-token/"]
    return urls + [f"/en{url}" for url in urls]


def test_every_public_page_has_the_policy_and_no_inline_script(client, edition):
    for url in all_public_urls(edition):
        response = client.get(url)
        assert response.status_code in (200, 404), url
        assert response["Content-Security-Policy"], url
        assert inline_scripts(response.content.decode()) == [], url

    client.post(f"/{edition.code}/apply/", form_data(edition))
    confirm = client.get(f"/{edition.code}/apply/confirm/")
    assert confirm.status_code == 200
    assert inline_scripts(confirm.content.decode()) == []


def test_the_policy_allows_no_inline_or_foreign_script(client, edition):
    directives = csp_directives(client.get("/"))
    assert directives["default-src"] == ["'self'"]
    assert directives["script-src"] == ["'self'"]
    assert directives["style-src"] == ["'self'", "'unsafe-inline'"]  # style="" attributes
    assert directives["img-src"] == ["'self'", "data:"]
    assert directives["frame-ancestors"] == ["'none'"]
    assert directives["form-action"] == ["'self'"]
    assert directives["object-src"] == ["'none'"]


def admin_urls(edition: Edition) -> list[str]:
    """Every model's list, add and change pages, and the office's own admin pages."""
    application = ApplicationFactory(edition=edition)
    session = edition.sessions.get(code="tama")
    urls = [
        INDEX,
        reverse("office:lottery_console", args=[edition.code]),
        reverse("office:checkin", args=[session.pk]),
        reverse("office:reception_list", args=[session.pk]),
        reverse("office:application_status", args=[application.pk]),
    ]
    for model in admin.site._registry:
        info = (model._meta.app_label, model._meta.model_name)
        urls.append(reverse("admin:{}_{}_changelist".format(*info)))
        urls.append(reverse("admin:{}_{}_add".format(*info)))
        first = model._default_manager.order_by("pk").first()
        if first is not None:
            urls.append(reverse("admin:{}_{}_change".format(*info), args=[first.pk]))
    return urls


def test_every_admin_page_has_the_policy_and_no_inline_script(client, edition):
    user = staff("admin", superuser=True)
    device = TOTPDevice.objects.create(user=user, name="phone", confirmed=True)
    client.force_login(user)
    checked = 0
    for url in [
        *admin_urls(edition),
        reverse("admin:otp_totp_totpdevice_config", args=[device.pk]),
    ]:
        response = client.get(url)
        assert response.status_code in (200, 302, 403), url
        if response.status_code == 200 and response["Content-Type"].startswith("text/html"):
            assert response["Content-Security-Policy"], url
            assert inline_scripts(response.content.decode()) == [], url
            checked += 1
    assert checked > 20


def test_the_login_and_lockout_pages_have_no_inline_script(client, db, settings):
    settings.AXES_FAILURE_LIMIT = 1
    login_page = client.get(LOGIN)
    assert inline_scripts(login_page.content.decode()) == []
    locked = login(client, "nobody", "wrong")
    assert locked.status_code == 429
    assert inline_scripts(locked.content.decode()) == []


# --- production settings: headers, cookies, check --deploy --------------------------------------


@pytest.mark.parametrize("redis", [True, False], ids=["with-redis", "without-redis"])
def test_check_deploy_reports_nothing_with_production_settings(tmp_path, redis):
    env = production_env(tmp_path)
    if not redis:
        env.pop("REDIS_URL")
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "DEBUG"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "System check identified no issues" in output, output
    assert "WARNING" not in output and "ERROR" not in output, output


PRODUCTION_PROBE = """
import json, django
django.setup()
from django.conf import settings
from django.test import Client, override_settings
client = Client(HTTP_HOST="seminar.example.jp")
secure = client.get("/healthz", secure=True)
plain = client.get("/healthz")
# A page with a form sets the CSRF cookie (static files as in DEBUG: no collectstatic here).
plain_static = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}
with override_settings(STORAGES={**settings.STORAGES, "staticfiles": plain_static}):
    form = client.get("/my/", secure=True)
cookie = form.cookies[settings.CSRF_COOKIE_NAME]
print(json.dumps({
    "settings": {name: getattr(settings, name) for name in (
        "DEBUG", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE", "SESSION_COOKIE_HTTPONLY",
        "SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS", "OTP_REQUIRED_FOR_STAFF",
        "SESSION_COOKIE_NAME", "CSRF_COOKIE_NAME",
        "TRUSTED_PROXY_COUNT", "DATA_UPLOAD_MAX_MEMORY_SIZE", "DATA_UPLOAD_MAX_NUMBER_FIELDS",
    )},
    "headers": dict(secure.headers),
    "plain": [plain.status_code, plain.headers.get("Location")],
    "form_cookie": cookie.output(),
}))
"""


def test_production_sends_the_security_headers_and_secure_cookies(tmp_path):
    result = run_python(production_env(tmp_path), PRODUCTION_PROBE)
    assert result.returncode == 0, result.stderr
    probe = json.loads(result.stdout.strip().splitlines()[-1])
    assert probe["settings"] == {
        "DEBUG": False,
        "SESSION_COOKIE_SECURE": True,
        "CSRF_COOKIE_SECURE": True,
        "SESSION_COOKIE_HTTPONLY": True,
        "SECURE_SSL_REDIRECT": True,
        "SECURE_HSTS_SECONDS": 31536000,
        "OTP_REQUIRED_FOR_STAFF": True,
        # Only this site's own host, over HTTPS, may set them (no Domain, Path=/, Secure).
        "SESSION_COOKIE_NAME": "__Host-sessionid",
        "CSRF_COOKIE_NAME": "__Host-csrftoken",
        "TRUSTED_PROXY_COUNT": 1,
        "DATA_UPLOAD_MAX_MEMORY_SIZE": 512 * 1024,
        "DATA_UPLOAD_MAX_NUMBER_FIELDS": 500,
    }
    headers = probe["headers"]
    assert headers["Strict-Transport-Security"].startswith("max-age=31536000")
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Referrer-Policy"] == "same-origin"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    assert probe["plain"] == [301, "https://seminar.example.jp/healthz"]
    # What the browser checks before it keeps a __Host- cookie.
    cookie = probe["form_cookie"]
    assert cookie.startswith("Set-Cookie: __Host-csrftoken="), cookie
    assert "Secure" in cookie and "Path=/;" in cookie + ";" and "Domain" not in cookie, cookie


def test_production_refuses_to_start_without_a_secret_key(tmp_path):
    env = production_env(tmp_path)
    env.pop("SECRET_KEY")
    result = run_python(env, "import django; django.setup()")
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


# --- rate limits on the parents' forms ----------------------------------------------------------


def test_the_application_form_answers_429_after_too_many_posts(client, edition, settings):
    settings.RATELIMIT_APPLY = "3/10m"
    url = f"/{edition.code}/apply/"
    for _ in range(3):
        assert client.post(url, form_data(edition, family_name="")).status_code == 200
    response = client.post(url, form_data(edition))
    assert response.status_code == 429
    assert "429.html" in [t.name for t in response.templates]
    assert int(response["Retry-After"]) > 0
    assert settings.OFFICE_PHONE in response.content.decode()
    assert client.get(url).status_code == 200  # reading is never limited


def test_the_429_page_is_in_the_parents_language(client, edition, settings):
    settings.RATELIMIT_APPLY = "0/10m"
    ja = client.post(f"/{edition.code}/apply/", form_data(edition))
    en = client.post(f"/en/{edition.code}/apply/", form_data(edition))
    assert (ja.status_code, en.status_code) == (429, 429)
    assert '<html lang="ja">' in ja.content.decode()
    assert '<html lang="en">' in en.content.decode()
    assert "Please wait a moment" in en.content.decode()


def test_both_steps_of_the_application_share_the_limit(client, edition, settings):
    settings.RATELIMIT_APPLY = "2/10m"
    assert client.post(f"/{edition.code}/apply/", form_data(edition)).status_code == 302
    assert client.post(f"/{edition.code}/apply/confirm/").status_code == 302
    assert Application.objects.count() == 1
    client.post(f"/{edition.code}/apply/", form_data(edition, email="b@example.jp"))
    assert Application.objects.count() == 1


def test_the_limit_is_per_client_behind_the_proxy(client, edition, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    settings.RATELIMIT_APPLY = "1/10m"
    url = f"/{edition.code}/apply/"
    first = {"HTTP_X_FORWARDED_FOR": "198.51.100.7"}
    assert client.post(url, form_data(edition), **first).status_code == 302
    forged = {"HTTP_X_FORWARDED_FOR": "10.1.2.3, 198.51.100.7"}
    assert client.post(url, form_data(edition), **forged).status_code == 429
    other = {"HTTP_X_FORWARDED_FOR": "198.51.100.8"}
    assert client.post(url, form_data(edition), **other).status_code == 302


def test_one_address_cannot_be_sent_its_link_again_and_again(client, edition, settings):
    settings.RATELIMIT_RESEND_LINK_PER_ADDRESS = "2/h"
    ApplicationFactory(edition=edition, email="hanako@example.jp")
    for n in range(2):
        response = client.post("/my/", {"email": "hanako@example.jp"}, REMOTE_ADDR=f"192.0.2.{n}")
        assert response.status_code == 200
    again = client.post("/my/", {"email": "Hanako@Example.jp "}, REMOTE_ADDR="192.0.2.50")
    assert again.status_code == 429
    other = client.post("/my/", {"email": "taro@example.jp"}, REMOTE_ADDR="192.0.2.51")
    assert other.status_code == 200


def test_one_client_cannot_ask_for_links_again_and_again(client, edition, settings):
    settings.RATELIMIT_RESEND_LINK = "2/h"
    for n in range(2):
        assert client.post("/my/", {"email": f"p{n}@example.jp"}).status_code == 200
    assert client.post("/my/", {"email": "p9@example.jp"}).status_code == 429


@pytest.fixture
def redis_down(settings):  # type: ignore[no-untyped-def]
    """The cache is a Redis server that is not there: every cache call raises ConnectionError."""
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:9/0",  # the discard port: nothing listens
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
    settings.RATELIMIT_APPLY = "1/10m"
    settings.RATELIMIT_RESEND_LINK = "1/h"


def test_with_redis_down_a_parent_still_applies(client, edition, redis_down, caplog):
    caplog.set_level(logging.WARNING, logger="seminar_site.ratelimit")
    url = f"/{edition.code}/apply/"
    assert client.post(url, form_data(edition, family_name="")).status_code == 200
    assert client.post(url, form_data(edition)).status_code == 302
    assert client.post(f"/{edition.code}/apply/confirm/").status_code == 302
    assert Application.objects.filter(email="hanako@example.jp").exists()
    assert "the cache is unavailable" in caplog.text


def test_with_redis_down_a_parent_still_gets_the_link_again(client, edition, redis_down):
    ApplicationFactory(edition=edition, email="hanako@example.jp")
    for _ in range(3):
        assert client.post("/my/", {"email": "hanako@example.jp"}).status_code == 200


def test_a_cache_raising_connection_error_lets_the_form_through(client, edition, settings):
    from unittest import mock

    from django.core.cache import caches

    settings.RATELIMIT_APPLY = "0/10m"
    cache = caches["default"]
    with mock.patch.object(cache, "add", side_effect=ConnectionError("refused")):
        response = client.post(f"/{edition.code}/apply/", form_data(edition))
    assert response.status_code == 302


# --- request body caps --------------------------------------------------------------------------


def test_a_post_with_too_many_fields_is_refused(client, edition):
    data = {**form_data(edition), **{f"x{n}": "1" for n in range(600)}}
    assert client.post(f"/{edition.code}/apply/", data).status_code == 400
    assert not Application.objects.exists()


def test_an_oversized_post_is_refused(client, edition):
    data = form_data(edition, questions="あ" * 200_000)
    assert client.post(f"/{edition.code}/apply/", data).status_code == 400
    assert client.post("/my/", {"email": "a" * 600_000}).status_code == 400
