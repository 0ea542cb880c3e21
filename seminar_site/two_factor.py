"""A staff member sets up their own authenticator app (TOTP), after logging in once with the
one-time code an administrator printed (``manage.py addstatictoken USERNAME``).

The page shows the secret of an unconfirmed device of the user's own, as a QR code and as text,
and confirms it when the user types a code it gives. It opens only in a session already
verified by a second factor (the admin site refuses any other session in production), and never
shows another user's device: staff get no permission on django-otp's device admin, whose lists
are not limited to one's own devices.
"""

from __future__ import annotations

import base64
from typing import Any

import segno
from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods
from django_otp import login as otp_login
from django_otp.plugins.otp_totp.models import TOTPDevice


class ConfirmForm(forms.Form):
    token = forms.CharField(
        label=gettext_lazy("The six-digit code your app shows now"),
        max_length=8,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
    )


def has_authenticator(user: Any) -> bool:
    return TOTPDevice.objects.filter(user_id=user.pk, confirmed=True).exists()


@require_http_methods(["GET", "POST"])
def totp_setup(request: HttpRequest, *, admin_context: dict[str, Any]) -> HttpResponse:
    """Steps: keep one unconfirmed device for this user; show its secret; on a right code,
    confirm it, drop any other unconfirmed one, and verify this session with it."""
    user = request.user
    device = TOTPDevice.objects.filter(user_id=user.pk, confirmed=False).order_by("-pk").first()
    if device is None:
        device = TOTPDevice.objects.create(
            user_id=user.pk, name=_("Authenticator app"), confirmed=False
        )
    form = ConfirmForm(request.POST if request.method == "POST" else None)
    if form.is_valid():
        if device.verify_token(form.cleaned_data["token"].strip()):
            device.confirmed = True
            device.save(update_fields=["confirmed"])
            TOTPDevice.objects.filter(user_id=user.pk, confirmed=False).delete()
            otp_login(request, device)
            messages.success(
                request, _("Your authenticator app is set up: log in with its codes from now on.")
            )
            return redirect("admin:index")
        form.add_error("token", _("That code is not correct. Please check it and try again."))
    svg = segno.make(device.config_url, error="m").svg_inline(
        scale=4, border=4, dark="#000", light="#fff", title=_("QR code to scan")
    )
    return TemplateResponse(
        request,
        "admin/totp_setup.html",
        {
            **admin_context,
            "title": _("Set up your authenticator app"),
            "form": form,
            # segno draws the whole document from the device's own otpauth:// URL.
            "qr_svg": mark_safe(svg),  # noqa: S308
            "secret": base64.b32encode(device.bin_key).decode(),
        },
    )
