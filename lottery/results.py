"""What a parent is told about their result: in the result e-mail and on My application."""

from __future__ import annotations

from typing import Any

from registration.models import Application, Option


def result_context(application: Application) -> dict[str, Any]:
    """The draw's result for one application, ready for a template (empty before the draw)."""
    from .models import Place

    try:
        result = application.lottery_result
    except Application.lottery_result.RelatedObjectDoesNotExist:
        return {"result": None, "place": None}
    place = Place.objects.filter(application=application).select_related("option__session").first()
    options = {
        o.code: o
        for o in Option.objects.filter(session__edition=application.edition_id).select_related(
            "session"
        )
    }
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
