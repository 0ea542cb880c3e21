"""The e-mail outbox: a row written in the caller's transaction, sent after commit, swept later.

A row names what to send (kind, application, language); the message is rendered when its
batch (up to BATCH_SIZE e-mails) is sent, from data that is committed by then. So a draw can
queue 100,000 result e-mails in its own transaction with one bulk insert.

Each e-mail is claimed with a conditional update (queued → sending) just before it is handed
to the SMTP server, so a task that runs twice, or the sweep racing a task, sends it once. A
batch goes over one SMTP connection at OUTBOX_RATE_PER_SECOND (rate.py).

Temporary failures (4xx, a lost connection) go back to "queued" with a next attempt after an
exponential back-off; permanent ones (5xx) are marked failed for the office to see and resend.
A refused sender (our account, not the parent's address) stops the batch and keeps the rest
queued; so does a server that cannot be reached.

The window for a duplicate: the server has accepted an e-mail but its "sent" record is not
written. That happens when a worker is killed between the two (the e-mail stays in "sending";
the sweep re-queues it after OUTBOX_STALE_SENDING_SECONDS) and when the connection times out or
drops after the final "." of the message, before the server's answer arrives (recorded as a
temporary failure, tried again). Claims are per e-mail, so a killed worker process causes at
most one duplicate; everything it had not yet claimed stays "queued".

Where each part lives: queue.py writes the rows (and resends failed ones), send.py claims and
delivers them, render.py makes one message, rate.py paces every worker together, tasks.py holds
the Celery entry points under their old names (``registration.tasks.*``).
"""
