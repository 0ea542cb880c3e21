"""Applications stored with an international mail domain in Unicode (例え.jp) are re-spelled in
the one form normalize_email gives now, punycode (xn--r8jz45g.jp), so that the same mailbox is
recognised however it is typed. An address that would then collide with another active
application of its edition (the same mailbox applied twice under two spellings) is left as it
is, for the office's duplicate review.

The spelling rule is frozen here rather than imported, as migrations are."""

import idna
from django.db import IntegrityError, migrations, transaction


def respell(apps, schema_editor):  # type: ignore[no-untyped-def]
    Application = apps.get_model("registration", "Application")
    for application in Application.objects.only("pk", "email").iterator(chunk_size=2000):
        local, _sep, domain = application.email.rpartition("@")
        if domain.isascii():
            continue
        try:
            ascii_domain = idna.encode(domain, uts46=True).decode("ascii")
        except UnicodeError:
            continue
        try:
            with transaction.atomic():
                Application.objects.filter(pk=application.pk).update(
                    email=f"{local}@{ascii_domain}"
                )
        except IntegrityError:
            continue


class Migration(migrations.Migration):
    dependencies = [("registration", "0008_redact_stored_links")]

    operations = [migrations.RunPython(respell, migrations.RunPython.noop)]
