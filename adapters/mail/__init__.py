"""Email out: SMTP, or ``.eml`` files in an outbox folder when no SMTP server is configured.

Used for the email fallback of campaigns, reply notifications to staff and data-quality
alerts. This room owns everything between an outbox row's ``Email`` and the wire: building a
safe message from SIS data, the SMTP conversation, and what one attempt's outcome means.

Per message, not per batch: ``Mailer.open()`` gives a ``MailSession`` whose ``send(email)``
hands over ONE email and returns its ``MailResult``, so the caller can follow the outbox
discipline (mark ``sending``, committed → ``send`` → record the outcome, committed) and a
crash leaves at most one email undecided. ``send`` never raises for a problem with the
message or the server. ``send_many`` is the same loop for callers that want a batch.

The rooms:

=============  ======================================================================
``protocol``   ``Email``, ``MailResult`` and the ``Mailer`` / ``MailSession`` protocols
``errors``     the one error taxonomy (``MailError`` and its subclasses)
``message``    the stable Message-ID and building a safe message (header-injection guards)
``sending``    what both mailers share: reporting an outcome, the batch loop
``smtp``       ``SmtpMailer`` and its ``SmtpConfig``: the SMTP conversation, phase by phase
``folder``     ``OutboxMailer``: one ``.eml`` file per email (no mail server needed)
=============  ======================================================================

Which mailer a process uses is decided by ``nudge.wiring`` (SMTP when a host is set).

Message bodies are never logged; addresses are logged only at DEBUG, and error messages
(which callers store and log) never contain them.
"""
