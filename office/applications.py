"""One application's status page: withdraw it on the parent's request (a phone call), or mark
it a duplicate or invalid; always with a reason, kept in its history. The write is
services.application_withdraw or application_remove; linked from the application's admin page."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from registration import services
from registration.models import Application
from seminar_site.admin_site import staff_member

from . import permissions


class StatusForm(forms.Form):
    action = forms.ChoiceField(
        label=gettext_lazy("What to do"),
        choices=[
            ("withdrawn", gettext_lazy("Withdraw on the parent's request (phone)")),
            ("duplicate", gettext_lazy("Mark as a duplicate")),
            ("invalid", gettext_lazy("Mark as invalid")),
        ],
        widget=forms.RadioSelect,
    )
    reason = forms.CharField(
        label=gettext_lazy("Reason (kept in the history)"),
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=1000,
    )


def status_view(request: HttpRequest, pk: int) -> HttpResponse:
    """Withdraw on a parent's phone request, or mark duplicate/invalid: always with a reason."""
    application = get_object_or_404(Application, pk=pk)
    permissions.require(permissions.may_change_application(request.user))
    form = StatusForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        action, reason = form.cleaned_data["action"], form.cleaned_data["reason"]
        try:
            if action == "withdrawn":
                done = services.application_withdraw(
                    application=application, actor=staff_member(request), reason=reason
                )
            else:
                done = services.application_remove(
                    application=application,
                    status=action,
                    actor=staff_member(request),
                    reason=reason,
                )
        except services.NotChangeable:
            messages.error(request, _("The session has started: it can no longer change."))
        else:
            if done:
                messages.success(request, _("Saved, with the reason, in the history."))
            else:
                messages.warning(request, _("The application was not active: nothing changed."))
        return HttpResponseRedirect(
            reverse("admin:registration_application_change", args=[application.pk])
        )
    context = {
        **admin.site.each_context(request),
        "title": _("Withdraw or mark %(number)s") % {"number": application.number},
        "application": application,
        "form": form,
        "opts": Application._meta,
    }
    return TemplateResponse(request, "admin/office/application_status.html", context)
