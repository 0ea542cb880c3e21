"""The lottery of an edition: its frozen roll, the draw, and each application's result."""

from __future__ import annotations

from typing import Any

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from registration.models import Application, Edition, Option


class RunState(models.TextChoices):
    """LotteryRun.State; at module level so that the model's constraints can name it."""

    FROZEN = "frozen", _("Roll frozen, waiting for the draw")
    DRAWING = "drawing", _("Drawing")
    DRAWN = "drawn", _("Drawn")


class LotteryRun(models.Model):
    """Created by the freeze; moved on by the draw exactly once (see lottery.services)."""

    State = RunState

    edition = models.OneToOneField(
        Edition, on_delete=models.PROTECT, related_name="lottery", verbose_name=_("edition")
    )
    state = models.CharField(_("state"), max_length=10, choices=State.choices, default=State.FROZEN)
    # The roll exactly as hashed (canonical JSON): nothing that happens to an application
    # afterwards can change it.
    roll_json = models.TextField(_("entry roll (canonical JSON)"), editable=False)
    roll_hash = models.CharField(_("roll hash"), max_length=64, editable=False)
    secret = models.CharField(
        _("secret"), max_length=64, editable=False, help_text=_("Published only after the draw.")
    )
    commitment = models.CharField(_("commitment"), max_length=64, editable=False)
    entry_count = models.PositiveIntegerField(_("entries"), default=0)
    public_randomness = models.CharField(
        _("public randomness"),
        max_length=500,
        blank=True,
        help_text=_(
            "Fixed after the freeze, outside the office's control (e.g. a randomness "
            "beacon round announced in advance). Empty if none."
        ),
    )
    seed = models.CharField(_("seed"), max_length=64, blank=True, editable=False)
    frozen_at = models.DateTimeField(_("frozen at"))
    frozen_by = models.CharField(_("frozen by"), max_length=150)
    drawn_at = models.DateTimeField(_("drawn at"), null=True, blank=True)
    drawn_by = models.CharField(_("drawn by"), max_length=150, blank=True)

    class Meta:
        verbose_name = _("lottery")
        verbose_name_plural = _("lotteries")
        constraints = [
            models.CheckConstraint(
                condition=Q(state__in=RunState.values),
                name="lottery_run_state_valid",
            ),
            models.CheckConstraint(
                condition=~Q(state=RunState.DRAWN) | (Q(drawn_at__isnull=False) & ~Q(seed="")),
                name="lottery_run_drawn_has_time_and_seed",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.edition.code} ({self.get_state_display()})"


class LotteryResult(models.Model):
    """One application's result in the draw itself (LOTTERY.md §6), never changed afterwards."""

    class Outcome(models.TextChoices):
        WON = "won", _("Won")
        WAITLISTED = "waitlisted", _("Waiting list")

    class Childcare(models.TextChoices):
        NONE = "none", _("No childcare")
        GRANTED = "granted", _("Childcare granted")
        WAITLISTED = "waitlisted", _("Childcare waiting list")

    run = models.ForeignKey(
        LotteryRun, on_delete=models.PROTECT, related_name="results", verbose_name=_("lottery")
    )
    application = models.OneToOneField(
        Application,
        on_delete=models.PROTECT,
        related_name="lottery_result",
        verbose_name=_("application"),
    )
    number = models.CharField(_("application number"), max_length=8)
    key = models.CharField(_("key"), max_length=64)
    rank = models.PositiveIntegerField(_("draw rank"))
    outcome = models.CharField(_("outcome"), max_length=10, choices=Outcome.choices)
    option = models.ForeignKey(
        Option,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("option won"),
    )
    round = models.PositiveSmallIntegerField(_("round"), null=True, blank=True)
    childcare = models.CharField(_("childcare"), max_length=10, choices=Childcare.choices)
    waitlist: models.JSONField[Any] = models.JSONField(
        _("waiting list numbers"),
        default=dict,
        blank=True,
        help_text=_("Option code → position on that option's waiting list."),
    )

    class Meta:
        verbose_name = _("lottery result")
        verbose_name_plural = _("lottery results")
        ordering = ["run", "rank"]
        constraints = [
            models.UniqueConstraint(fields=["run", "rank"], name="lottery_result_rank_unique"),
            models.UniqueConstraint(fields=["run", "number"], name="lottery_result_number_unique"),
            models.CheckConstraint(
                condition=(Q(outcome="won", option__isnull=False, round__in=[1, 2, 3]))
                | (
                    Q(
                        outcome="waitlisted",
                        option__isnull=True,
                        round__isnull=True,
                        childcare="none",
                    )
                ),
                name="lottery_result_outcome_consistent",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.number} #{self.rank} {self.outcome}"

    def as_procedure_result(self, option_codes: dict[int, str]) -> dict[str, Any]:
        return {
            "number": self.number,
            "key": self.key,
            "rank": self.rank,
            "outcome": self.outcome,
            "option": option_codes[self.option_id] if self.option_id else None,
            "round": self.round,
            "childcare": self.childcare,
            "waitlist": self.waitlist,
        }


class Place(models.Model):
    """What an application holds now: its draw result, then moved by withdrawals and promotions
    (LOTTERY.md §5). Exactly one row per holder; the database refuses a second."""

    run = models.ForeignKey(
        LotteryRun, on_delete=models.PROTECT, related_name="places", verbose_name=_("lottery")
    )
    application = models.OneToOneField(
        Application, on_delete=models.PROTECT, related_name="place", verbose_name=_("application")
    )
    option = models.ForeignKey(
        Option, on_delete=models.PROTECT, related_name="places", verbose_name=_("option")
    )
    childcare = models.CharField(
        _("childcare"), max_length=10, choices=LotteryResult.Childcare.choices
    )
    promoted = models.BooleanField(_("from the waiting list"), default=False)
    since = models.DateTimeField(_("since"))

    class Meta:
        verbose_name = _("place")
        verbose_name_plural = _("places")
        constraints = [
            models.CheckConstraint(
                condition=Q(childcare__in=LotteryResult.Childcare.values),
                name="place_childcare_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.application_id} → {self.option_id}"


class LotteryEvent(models.Model):
    """What happened after the draw, in order: the `events` of the audit file (§6)."""

    class Kind(models.TextChoices):
        WITHDRAWN = "withdrawn", _("Withdrawn")
        REMOVED = "removed", _("Removed (duplicate or invalid)")
        RELEASED = "released", _("Released a lower choice")
        PROMOTED = "promoted", _("Promoted from the waiting list")
        CHILDCARE_GRANTED = "childcare_granted", _("Childcare granted from its waiting list")

    run = models.ForeignKey(
        LotteryRun, on_delete=models.PROTECT, related_name="events", verbose_name=_("lottery")
    )
    at = models.DateTimeField(_("when"))
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    number = models.CharField(_("application number"), max_length=8)
    option = models.ForeignKey(
        Option,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("option"),
    )
    # The childcare state the event leaves (procedure.Change).
    childcare = models.CharField(
        _("childcare"),
        max_length=10,
        choices=LotteryResult.Childcare.choices,
        default=LotteryResult.Childcare.NONE,
    )

    class Meta:
        verbose_name = _("lottery event")
        verbose_name_plural = _("lottery events")
        ordering = ["run", "id"]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.kind} {self.number}"
