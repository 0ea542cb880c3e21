"""The public lottery page: the procedure, the commitments before the draw, every result after."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from registration.models import NUMBER_ALPHABET, Edition

from . import services
from .models import LotteryResult, LotteryRun

RESULTS_PER_PAGE = 500


@require_GET
def public(request: HttpRequest, code: str) -> HttpResponse:
    edition = get_object_or_404(Edition, code=code, is_published=True)
    run = LotteryRun.objects.filter(edition=edition).first()
    context: dict[str, object] = {"edition": edition, "run": run}
    if run is not None and run.state == LotteryRun.State.DRAWN:
        results = LotteryResult.objects.filter(run=run).select_related("option__session")
        number = request.GET.get("number", "").strip().upper()[:8]
        if number:
            context["searched"] = number
            # Only a possible number is looked up: PostgreSQL refuses a NUL in a query (500).
            possible = set(number) <= set(NUMBER_ALPHABET)
            found = results.filter(number=number).first() if possible else None
            context["found"] = found
        page = Paginator(results.order_by("rank"), RESULTS_PER_PAGE).get_page(
            request.GET.get("page")
        )
        standing = services.lottery_standing(run=run)
        names = {
            o.option.code: f"{o.option.session.name} {o.option.get_kind_display()}"
            for o in standing.options
        }
        context["standing"] = standing
        if number and context["found"] is not None:
            context["found_now"] = standing.entries.get(number)
        context["page"] = page
        context["rows"] = [
            (r, [(names.get(code, code), n) for code, n in r.waitlist.items()]) for r in page
        ]
    return render(request, "lottery/public.html", context)


@require_GET
def audit_file(request: HttpRequest, code: str) -> HttpResponse:
    edition = get_object_or_404(Edition, code=code, is_published=True)
    try:
        text = services.lottery_audit_json(edition=edition)
    except (LotteryRun.DoesNotExist, services.LotteryRefused) as e:
        raise Http404 from e
    response = HttpResponse(text, content_type="application/json; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="lottery-{edition.code}-audit.json"'
    return response
