"""What a parent is told about the draw and the place held: in the result and promotion
e-mails and on My application. A read of the models only, so the outbox's render and the pages
can both use it."""

from __future__ import annotations

from typing import Any

from lottery.models import Place

from .models import Application, Option


def edition_options(edition_ids: set[int]) -> dict[int, dict[str, Option]]:
    """The options of these editions by code, for result_context(); one query."""
    by_edition: dict[int, dict[str, Option]] = {e: {} for e in edition_ids}
    for o in Option.objects.filter(session__edition__in=edition_ids).select_related("session"):
        by_edition[o.session.edition_id][o.code] = o
    return by_edition


def result_context(
    application: Application, *, options: dict[str, Option] | None = None
) -> dict[str, Any]:
    """The draw's result for one application, ready for a template (empty before the draw).
    ``options`` (from edition_options) saves a query per application when sending many."""
    try:
        result = application.lottery_result
    except Application.lottery_result.RelatedObjectDoesNotExist:
        return {"result": None, "place": None}
    try:
        place: Place | None = application.place
    except Place.DoesNotExist:
        place = None
    if options is None:
        options = edition_options({application.edition_id})[application.edition_id]
    won = options.get(result.option.code) if result.option_id and result.option else None
    waitlist = [
        {"option": options[code], "number": number}
        for code, number in result.waitlist.items()
        if code in options
    ]
    waitlist.sort(
        key=lambda w: (
            application.choices.index(w["option"]) if w["option"] in application.choices else 9
        )
    )
    return {
        "result": result,
        "place": place,
        "won_option": won,
        "won_session": won.session if won else None,
        "waitlist": waitlist,
    }
