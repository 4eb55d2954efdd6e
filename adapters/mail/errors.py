"""The mail error taxonomy: what one attempt to hand over an email came to.

::

    MailError                 the email was not (known to be) handed over
     ├── MailTransient        not sent; try again later (4xx, connection lost before the
     │    │                   end of the message, cannot write the outbox file)
     │    └── MailUnreachable not sent; no session with the server (connection refused/reset/
     │                        timeout, greeting, EHLO, STARTTLS or login failed): the next
     │                        emails would fail the same way
     ├── MailPermanent        not sent; this message will never go (5xx, an invalid or unsafe
     │                        address or header, a message that cannot be built)
     └── MailUnknown          the whole message was transmitted but the server's reply to
                              the end of DATA never arrived (disconnect, reset, timeout):
                              it may or may not have been accepted. SMTP cannot be asked
                              afterwards, so such an email is never resent automatically;
                              it is listed for an admin with its Message-ID.

Error messages never contain an address or the body: callers store and log them.
"""

from __future__ import annotations


class MailError(Exception):
    """The email was not (known to be) handed over."""


class MailTransient(MailError):
    """Not sent; worth retrying later: the server said 'try again' or the line broke first."""


class MailUnreachable(MailTransient):
    """Not sent; no SMTP session could be set up (the next emails would fail alike)."""


class MailPermanent(MailError):
    """Not sent; retrying will not help: refused by the server, or unsafe/invalid here."""


class MailUnknown(MailError):
    """The whole message went out but the server's verdict never came back: it may have
    been accepted. Never resend automatically; an admin decides (by its Message-ID)."""


__all__ = ["MailError", "MailPermanent", "MailTransient", "MailUnknown", "MailUnreachable"]
