"""E-mails stored before the outbox kept a placeholder (registration/tokens.py) hold the
parent's working private link in their bodies: replace every token after /my/ there too.

The pattern is frozen here rather than imported, as migrations are."""

import re

from django.db import migrations

PLACEHOLDER = "PRIVATE-LINK-REMOVED"
TOKEN_IN_PATH = re.compile(r"(/my/)([^/?#\s\"'<>]+)")


def redact(apps, schema_editor):  # type: ignore[no-untyped-def]
    OutboxEmail = apps.get_model("registration", "OutboxEmail")
    rows = OutboxEmail.objects.filter(body_text__contains="/my/") | OutboxEmail.objects.filter(
        body_html__contains="/my/"
    )
    changed = []
    for email in rows.only("pk", "body_text", "body_html").iterator(chunk_size=2000):
        email.body_text = TOKEN_IN_PATH.sub(rf"\g<1>{PLACEHOLDER}", email.body_text)
        email.body_html = TOKEN_IN_PATH.sub(rf"\g<1>{PLACEHOLDER}", email.body_html)
        changed.append(email)
        if len(changed) >= 2000:
            OutboxEmail.objects.bulk_update(changed, ["body_text", "body_html"])
            changed = []
    OutboxEmail.objects.bulk_update(changed, ["body_text", "body_html"])


class Migration(migrations.Migration):
    dependencies = [("registration", "0007_outbox_retry")]

    operations = [migrations.RunPython(redact, migrations.RunPython.noop)]
