"""python manage.py lottery freeze|draw|audit|verify (LOTTERY.md §7)."""

from __future__ import annotations

import sys
from typing import Any, TextIO, cast

from django.core.management.base import BaseCommand, CommandError, CommandParser

from lottery import services, verify
from registration.models import Edition

COMMAND = "command"  # the actor named in the audit log


class Command(BaseCommand):
    help = "Freeze, draw, publish and verify the lottery of an edition (LOTTERY.md §7)."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="step", required=True)
        freeze = sub.add_parser("freeze", help="Write the roll; print roll hash and commitment.")
        freeze.add_argument("edition")
        freeze.add_argument(
            "--confirm-duplicates",
            action="store_true",
            help="Freeze although duplicate flags are unresolved.",
        )
        draw = sub.add_parser("draw", help="Draw once; a second call changes nothing.")
        draw.add_argument("edition")
        draw.add_argument(
            "--randomness",
            default=None,
            help="The public randomness (default: what staff entered, or '').",
        )
        draw.add_argument(
            "--dry-run", action="store_true", help="Print the outcome counts without saving."
        )
        audit = sub.add_parser("audit", help="Write the audit file (stdout by default).")
        audit.add_argument("edition")
        audit.add_argument("--output", default=None)
        check = sub.add_parser("verify", help="Recompute an audit file; exit 0 when it matches.")
        check.add_argument("file")

    def handle(self, *args: Any, **options: Any) -> None:
        step = options["step"]
        if step == "verify":
            status = verify.main([options["file"]], stdout=cast(TextIO, self.stdout))
            if status:
                sys.exit(status)
            return
        try:
            edition = Edition.objects.get(code=options["edition"])
        except Edition.DoesNotExist as e:
            raise CommandError(f"No edition with code {options['edition']!r}.") from e
        try:
            getattr(self, f"_{step}")(edition, options)
        except services.LotteryRefused as e:
            raise CommandError(str(e)) from e

    def _freeze(self, edition: Edition, options: dict[str, Any]) -> None:
        run = services.lottery_freeze(
            edition=edition,
            actor=None,
            actor_label=COMMAND,
            confirm_duplicates=options["confirm_duplicates"],
        )
        self.stdout.write(
            f"Frozen {run.entry_count} entries.\n"
            f"roll_hash:  {run.roll_hash}\ncommitment: {run.commitment}"
        )

    def _draw(self, edition: Edition, options: dict[str, Any]) -> None:
        outcome = services.lottery_draw(
            edition=edition,
            actor=None,
            actor_label=COMMAND,
            randomness=options["randomness"],
            dry_run=options["dry_run"],
        )
        self.stdout.write(outcome.message)
        for name, count in outcome.counts.items():
            self.stdout.write(f"  {name}: {count}")

    def _audit(self, edition: Edition, options: dict[str, Any]) -> None:
        text = services.lottery_audit_json(edition=edition)
        if options["output"]:
            with open(options["output"], "w", encoding="utf-8") as f:
                f.write(text + "\n")
            self.stderr.write(f"Audit file written to {options['output']}")
        else:
            self.stdout.write(text)
