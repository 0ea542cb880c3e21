"""The staff back office: Django's admin with django-axes lockouts and django-otp second factor.

Any staff member can add a TOTP device (an authenticator app) and is then asked for its code at
each login. In production (``OTP_REQUIRED_FOR_STAFF``, on when ``DJANGO_DEBUG`` is false) every
staff member must have one: every role (office, administrators, childcare, reception) sees
parents' or children's personal data, so a password alone never opens the admin. Without a
verified device a staff member cannot log in or use the admin at all. The first device comes
from ``manage.py addstatictoken USERNAME``; with it the staff member opens "Set up your
authenticator app" (seminar_site/two_factor.py) and adds their own (README "Security"). The
embedded mode
(``make run``) keeps the printed password alone working.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar, cast

from django import forms
from django.conf import settings
from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.models import User
from django.core.exceptions import BadRequest
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.urls import URLPattern, URLResolver, path
from django.utils.translation import gettext_lazy as _
from django_otp import devices_for_user, user_has_device
from django_otp.forms import OTPAuthenticationFormMixin
from django_otp.plugins.otp_static.models import StaticDevice

from . import two_factor


def otp_required(user: Any) -> bool:
    """Whether this user must give a second factor: every staff member, in production."""
    return bool(settings.OTP_REQUIRED_FOR_STAFF and (user.is_staff or user.is_superuser))


class StaffAuthenticationForm(OTPAuthenticationFormMixin, AdminAuthenticationForm):
    """Username and password, then the two-factor code for whoever has a device."""

    otp_device = forms.CharField(required=False, widget=forms.Select, label=_("Device"))
    otp_token = forms.CharField(
        required=False,
        label=_("Two-factor code"),
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
    )

    error_messages = {
        **AdminAuthenticationForm.error_messages,
        "otp_required": _(
            "Staff must log in with a two-factor code, and this account has no device yet. "
            "Please ask an administrator to give you a one-time code to set one up."
        ),
    }
    otp_error_messages = {
        **OTPAuthenticationFormMixin.otp_error_messages,
        "token_required": _("Please enter the code from your authenticator app."),
        "invalid_token": _("That code is not correct. Please check it and try again."),
        "device_required": _("Please choose the device the code comes from."),
        "n_failed_attempts": _("Too many wrong codes: please wait a moment and try again."),
        "verification_not_allowed": _("Too many wrong codes: please wait a moment and try again."),
    }

    def clean(self) -> dict[str, Any]:
        cleaned_data: dict[str, Any] = super().clean()
        user = self.get_user()
        if user is not None:
            if user_has_device(user):
                self.clean_otp(user)
            elif otp_required(user):
                raise forms.ValidationError(
                    self.error_messages["otp_required"], code="otp_required"
                )
        return cleaned_data

    def _chosen_device(self, user: Any) -> Any:
        # Most staff have one device that can still verify a code (the one-time codes printed by
        # addstatictoken are used up once the authenticator app is set up): use it rather than
        # ask which. django-otp refuses to try every device in turn, since each miss would count
        # against that device's throttle.
        device = super()._chosen_device(user)
        if device is None and not self.cleaned_data.get("otp_device"):
            usable = [d for d in devices_for_user(user, for_verify=True) if _can_verify(d)]
            if len(usable) == 1:
                device = usable[0]
        return device


def _can_verify(device: Any) -> bool:
    return not isinstance(device, StaticDevice) or device.token_set.exists()


_View = TypeVar("_View", bound=Callable[..., HttpResponseBase])
# The range each date-hierarchy part may take: Django's change list adds a year (or a month) to
# build the upper bound, so 9999 and beyond fail there too; and midnight on 1 January of year 1
# in Tokyo is in year 0 in UTC, which SQLite's adapter cannot write (OverflowError).
DATE_PARTS = {"year": (2, 9998), "month": (1, 12), "day": (1, 31)}


def _in_range(value: str, low: int, high: int) -> bool:
    return value.isascii() and value.isdigit() and len(value) <= 4 and low <= int(value) <= high


class SeminarAdminSite(admin.AdminSite):
    login_form = StaffAuthenticationForm
    login_template = "admin/login_otp.html"

    def admin_view(self, view: _View, cacheable: bool = False) -> _View:
        """Every admin page, with its date-hierarchy parameters checked first: Django's change
        list turns ``created_at__year=99999999999999999999`` into an OverflowError (a 500)."""
        inner = super().admin_view(view, cacheable)

        @functools.wraps(inner)
        def checked(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            for name, values in request.GET.lists():
                part = name.rpartition("__")[2]
                if part in DATE_PARTS and not all(_in_range(v, *DATE_PARTS[part]) for v in values):
                    raise BadRequest(f"{name}: not a year, month or day")
            return inner(request, *args, **kwargs)

        return cast(_View, checked)

    def get_urls(self) -> list[URLResolver | URLPattern]:
        def setup(request: HttpRequest) -> HttpResponse:
            return two_factor.totp_setup(request, admin_context=self.each_context(request))

        return [
            path("two-factor/", self.admin_view(setup), name="totp_setup"),
            *super().get_urls(),
        ]

    def index(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> Any:
        # Only the first page asks (one query), not every admin page.
        user: Any = request.user
        needs = user.is_authenticated and not two_factor.has_authenticator(user)
        return super().index(request, {**(extra_context or {}), "needs_authenticator": needs})

    def has_permission(self, request: HttpRequest) -> bool:
        # A session that was not verified by a device (an older login, or one made while the
        # requirement was off) does not open the admin to any staff member in production.
        user: Any = request.user
        return super().has_permission(request) and (not otp_required(user) or user.is_verified())


def staff_member(request: HttpRequest) -> User | None:
    """The staff member behind an admin request, as every service takes it (``actor``)."""
    return request.user if isinstance(request.user, User) else None


class ReadOnlyAdminMixin:
    """For records nobody edits by hand: the audit log, the outbox, the lottery's results."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ChoiceListFilter(admin.SimpleListFilter):
    """A list filter that takes only the values it offers. Anything else in its query parameter
    (text where an id goes, an id it does not list) is a 400, not a query that fails as a 500
    or shows another role's rows: a forged or stale link, never a click. Every SimpleListFilter
    of the project derives from this one."""

    def value(self) -> str | None:
        value = super().value()
        # str(): "Show counts" (facets) sets each lookup's own key, an int for an id, as value.
        if value is not None and str(value) not in {str(key) for key, _l in self.lookup_choices}:
            raise BadRequest(f"{self.parameter_name}: not one of the filter's values")
        return value
