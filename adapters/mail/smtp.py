"""Email through an SMTP server: ``SmtpMailer``, configured by an ``SmtpConfig``.

SMTP phases, and what a failure in each means (exact, because the payload is sent and the
final reply read by this module, not inside ``smtplib.SMTP.data``)::

    connect, greeting, EHLO, STARTTLS, AUTH          → MailUnreachable
    MAIL FROM, RCPT TO, DATA (until 354)             → by reply code: 4xx transient,
                                                       5xx permanent; a lost connection is
                                                       transient (nothing was sent)
    sending the message up to and including "."      → MailTransient (the terminating "."
                                                       never left this host)
    waiting for the reply to the final "."           → 2xx sent, 4xx transient, 5xx
                                                       permanent; no/unreadable reply:
                                                       MailUnknown

One connection per session, opened on the first email, reused for the next ones (RSET after
a refusal), and opened again after it broke.
"""

from __future__ import annotations

import contextlib
import logging
import re
import smtplib
import ssl
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from pydantic import SecretStr

from adapters.mail.errors import (
    MailError,
    MailPermanent,
    MailTransient,
    MailUnknown,
    MailUnreachable,
)
from adapters.mail.message import Prepared, prepare
from adapters.mail.protocol import Email, MailResult, MailSession
from adapters.mail.sending import reported, send_many

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    """Where and how to send: the server (``host``, ``port``), the login (sent only when both
    ``username`` and ``password`` are set), ``starttls``, the socket timeout per operation
    in seconds, and the From address of every email. Built by ``nudge.wiring``."""

    host: str
    port: int = 587
    username: str | None = None
    password: SecretStr | None = field(default=None, repr=False)
    starttls: bool = False
    timeout_s: float = 10.0
    mail_from: str = "nudge@localhost"

    def __post_init__(self) -> None:
        if self.timeout_s <= 0:
            raise ValueError("timeout_s must be positive")


_PAYLOAD_EOL = re.compile(rb"\r\n|\r|\n")
_LEADING_DOT = re.compile(rb"(?m)^\.")


def _payload(data: bytes) -> bytes:
    """The DATA payload: CRLF lines, dot-stuffed (RFC 5321 4.5.2), ending in CRLF "." CRLF.
    Dot-stuffing means the body can never contain the end-of-data marker itself."""
    data = _LEADING_DOT.sub(b"..", _PAYLOAD_EOL.sub(b"\r\n", data))
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data + b".\r\n"


def _by_code(phase: str, code: int) -> MailError:
    if 400 <= code < 500:
        return MailTransient(f"{phase}: SMTP {code}")
    if 500 <= code < 600:
        return MailPermanent(f"{phase}: SMTP {code}")
    return MailTransient(f"{phase}: unexpected SMTP reply {code}")


class _SmtpSession:
    """One SMTP connection, opened on the first send and again after it broke."""

    def __init__(self, mailer: SmtpMailer) -> None:
        self.mailer = mailer
        self.smtp: smtplib.SMTP | None = None
        self.closed = False

    def send(self, email: Email) -> MailResult:
        if self.closed:
            raise RuntimeError("mail session is closed")
        prepared = prepare(email, self.mailer.config.mail_from, "\r\n")
        if isinstance(prepared, MailResult):
            return reported(prepared)
        ready = self._envelope(prepared)
        if isinstance(ready, MailError):
            return reported(MailResult(prepared.message_id, ready))
        error = self._transmit(ready, prepared)
        return reported(MailResult(prepared.message_id, error))

    def _envelope(self, p: Prepared) -> smtplib.SMTP | MailError:
        """MAIL FROM, RCPT TO and DATA up to the server's 354: the connection, ready for the
        payload, or why this email was definitely not sent."""
        for attempt in (1, 2):
            reused = self.smtp is not None
            if self.smtp is None:
                try:
                    self.smtp = self.mailer._connect()
                except MailUnreachable as exc:
                    return exc
            smtp = self.smtp
            try:
                refusal = self._refusal(smtp, p)
            except (OSError, smtplib.SMTPException) as exc:
                self._drop()
                if reused and attempt == 1:
                    # Servers close idle connections; nothing of this email was sent, so one
                    # retry on a fresh connection is safe.
                    log.debug("SMTP connection went stale (%s); reconnecting", exc)
                    continue
                return MailTransient(f"connection lost before the message was sent: {exc}")
            except Exception as exc:  # never raise out of send(); the payload was not sent
                self._drop()
                return MailTransient(f"SMTP envelope failed: {type(exc).__name__}: {exc}")
            if refusal is not None:
                code, error = refusal
                self._reset(code)
                return error
            return smtp
        raise AssertionError("unreachable")  # pragma: no cover

    def _refusal(self, smtp: smtplib.SMTP, p: Prepared) -> tuple[int, MailError] | None:
        """None when the server is waiting for the payload, else its reply code and what
        that means for this email."""
        if p.international and not smtp.has_extn("smtputf8"):
            return 0, MailPermanent("non-ASCII address but the SMTP server has no SMTPUTF8")
        options: list[str] = []
        if smtp.has_extn("size"):
            options.append(f"SIZE={len(p.data)}")
        if p.international:
            options += ["SMTPUTF8", "BODY=8BITMIME"]
        elif p.eight_bit and smtp.has_extn("8bitmime"):
            options.append("BODY=8BITMIME")
        code, _ = smtp.mail(p.mail_from, options)
        if code != 250:
            return code, _by_code("MAIL FROM refused", code)
        code, _ = smtp.rcpt(p.rcpt_to)
        if code not in (250, 251):
            return code, _by_code("recipient refused", code)
        code, _ = smtp.docmd("DATA")
        if code != 354:
            return code, _by_code("DATA refused", code)
        return None

    def _transmit(self, smtp: smtplib.SMTP, p: Prepared) -> MailError | None:
        """Send the payload, then read the verdict: the one phase that can end unknown."""
        try:
            smtp.send(_payload(p.data))
        except (OSError, smtplib.SMTPException) as exc:
            # sendall() failed, so its last bytes (the terminating ".") never left: not sent.
            self._drop()
            return MailTransient(f"connection lost while sending the message: {exc}")
        try:
            code, _ = smtp.getreply()
        except Exception as exc:  # whatever broke, the server may hold the whole message
            self._drop()
            return MailUnknown(f"no reply after the whole message was sent: {exc}")
        if 200 <= code < 300:
            return None
        if 400 <= code < 600:
            self._reset(code)
            return _by_code("message refused", code)
        self._drop()
        return MailUnknown(f"unreadable reply after the whole message was sent ({code})")

    def _reset(self, code: int) -> None:
        """After a refusal: RSET to reuse the connection, or drop it if that fails (or the
        server said 421, "closing", or something unexpected)."""
        smtp = self.smtp
        if smtp is None:
            return
        if code == 0:  # refused before any command: nothing to reset
            return
        if code == 421 or not 400 <= code < 600:
            self._drop()
            return
        try:
            reply, _ = smtp.rset()
        except (OSError, smtplib.SMTPException):
            reply = -1
        if reply != 250:
            self._drop()

    def _drop(self) -> None:
        smtp, self.smtp = self.smtp, None
        if smtp is not None:
            smtp.close()

    def close(self) -> None:
        self.closed = True
        smtp, self.smtp = self.smtp, None
        if smtp is None:
            return
        try:
            smtp.quit()
        except (OSError, smtplib.SMTPException):
            smtp.close()


class SmtpMailer:
    """Sends through an SMTP server, one connection per session."""

    def __init__(self, config: SmtpConfig) -> None:
        self.config = config

    def describe(self) -> str:
        """Host and port of the SMTP server."""
        return f"SMTP {self.config.host}:{self.config.port}"

    @contextlib.contextmanager
    def open(self) -> Iterator[MailSession]:
        """A session that connects on its first email, reuses the connection for the next
        ones, reconnects after a failure, and says QUIT at the end of the block."""
        session = _SmtpSession(self)
        try:
            yield session
        finally:
            session.close()

    def send_many(self, emails: Sequence[Email]) -> list[MailResult]:
        """Send every email over one session, one at a time; one result per email."""
        return send_many(self, self.config.mail_from, emails)

    def _connect(self) -> smtplib.SMTP:
        """A connection ready for MAIL FROM (greeted, EHLO, STARTTLS and login as set up),
        or ``MailUnreachable``. A session-level refusal says nothing about any one email,
        so it is never permanent: a misconfigured server must not fail every email."""
        config = self.config
        where = f"{config.host}:{config.port}"
        try:
            smtp = smtplib.SMTP(config.host, config.port, timeout=config.timeout_s)
        except (OSError, smtplib.SMTPException) as exc:
            raise MailUnreachable(f"cannot reach SMTP {where}: {exc}") from exc
        try:
            smtp.ehlo_or_helo_if_needed()
            if config.starttls:
                smtp.starttls(context=ssl.create_default_context())
                smtp.ehlo_or_helo_if_needed()
            if config.username and config.password:
                smtp.login(config.username, config.password.get_secret_value())
        except (OSError, smtplib.SMTPException) as exc:
            smtp.close()
            raise MailUnreachable(f"SMTP session with {where} not set up: {exc}") from exc
        except BaseException:
            smtp.close()
            raise
        return smtp


__all__ = ["SmtpConfig", "SmtpMailer"]
