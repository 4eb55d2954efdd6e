"""What both mailers share around a send: reporting one email's outcome, and the batch loop
behind ``Mailer.send_many``."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from adapters.mail.errors import MailUnknown, MailUnreachable
from adapters.mail.message import message_id_of
from adapters.mail.protocol import Email, Mailer, MailResult

log = logging.getLogger(__name__)


def reported(result: MailResult) -> MailResult:
    """``result``, logged when the email did not go (by Message-ID and reason only)."""
    if isinstance(result.error, MailUnknown):
        log.warning("email %s: outcome unknown: %s", result.message_id, result.error)
    elif result.error is not None:
        log.info("email %s not sent: %s", result.message_id, result.error)
    return result


def send_many(mailer: Mailer, sender: str, emails: Sequence[Email]) -> list[MailResult]:
    """One session, one email at a time; once the server is unreachable the rest of the
    batch gets the same error without waiting for a connect timeout each."""
    results: list[MailResult] = []
    if not emails:
        return results
    with mailer.open() as session:
        for email in emails:
            down = results[-1].error if results else None
            if isinstance(down, MailUnreachable):
                try:
                    message_id = message_id_of(email, sender)
                except ValueError:
                    message_id = ""
                results.append(MailResult(message_id, down))
            else:
                results.append(session.send(email))
    return results


__all__ = ["reported", "send_many"]
