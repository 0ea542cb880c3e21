"""Shred the personal data of editions past their retention period (SPEC.md §4).

The daily task (``registration.tasks.retention_shred``) does the same; this command lets the
office see first what would go (``--dry-run``), or shred at once.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from registration import retention


class Command(BaseCommand):
    help = (
        "Shred the personal data of every edition whose last session was RETENTION_DAYS ago or "
        "more; statistics and the lottery audit file stay."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="List the editions and the rows per table that would be shredded; change nothing.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        dry_run = options["dry_run"]
        report = retention.retention_shred(actor_label="command", dry_run=dry_run)
        if dry_run:
            self.stdout.write("Dry run: nothing has changed.")
        if not report.editions:
            self.stdout.write(
                f"No edition is due: personal data is kept {settings.RETENTION_DAYS} days after "
                "an edition's last session."
            )
        for shredded in report.editions:
            verb = "Would shred" if dry_run else "Shredded"
            self.stdout.write(
                f"{verb} edition {shredded.edition} (last session {shredded.last_session}):"
            )
            for table, count in shredded.counts.items():
                self.stdout.write(f"  {table}: {count}")
        verb = "would be deleted" if dry_run else "deleted"
        self.stdout.write(f"Expired browser sessions {verb}: {report.expired_sessions}")
