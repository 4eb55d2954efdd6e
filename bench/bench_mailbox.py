"""Benchmark: one pass over a reply mailbox holding 1,000 waiting emails.

Setup (not timed): the database of ``bench_poll.py`` (20 staff members with sender
numbers, 2,000 students texted once each), on SQLite; the Twilio emulator in its own
process; a real IMAP server (pymap, in memory, the test suite's ``tests/imap_server.py``)
holding ``--mails`` emails, as a college's mailbox would after an outage:

* 80 % staff answers to notification emails (each to a different student): texted;
* 15 % students' email answers to fallback emails: recorded and notified;
* 5 % mail without a reply token (newsletters): left alone.

Timed: ``run_mail_poll`` (read the headers, fetch in batches of 50, record and act on each
mail, move them, send the staff notifications to an outbox folder), with the time per
email. The staff answers go through the whole send path (router, outbox, emulator), one
reply campaign each, as production runs them.

    python bench/bench_mailbox.py [--mails 1000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from email.message import EmailMessage
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pydantic import SecretStr
from sqlalchemy import select
from sqlmodel import Session

from bench._report import record
from bench.bench_poll import STUDENTS, machine, make_env, seed_database
from domain.reply_tokens import ReplyPair, make_token, reply_address
from flows.poll_mailbox import run_mail_poll
from models.people import Person
from nudge.settings import Settings
from sandbox.twilio import EmulatorConfig, run_emulator
from tasks.reply_to import reply_key
from tests.imap_server import run_imap

REPLY = "texts@college.edu"


def mail(to: str, sender: str, body: str, n: int) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = "Re: your message"
    msg["Message-ID"] = f"<bench.{n}@college.edu>"
    msg.set_content(body + "\n\nOn Mon, Dec 7, 2026 at 10:00 AM nudge wrote:\n> earlier text\n")
    return bytes(msg)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mails", type=int, default=1000)
    args = parser.parse_args()
    if args.mails * 0.95 > STUDENTS:
        parser.error(f"--mails at most {int(STUDENTS / 0.95)} (one answer per student)")
    print(f"machine: {machine()}")
    with (
        tempfile.TemporaryDirectory(prefix="bench-mailbox-") as tmp,
        run_emulator(EmulatorConfig(status_delay_ms=0), mode="subprocess") as emu,
        run_imap() as imap,
    ):
        folder = Path(tmp)
        url = f"sqlite:///{folder / 'nudge.db'}"
        seed_database(url)
        settings = Settings(
            _env_file=None,
            database_url=url,
            twilio_base_url=emu.base_url,
            outbox_dir=folder / "outbox",
            reply_address=REPLY,
            imap_host=imap.host,
            imap_port=imap.port,
            imap_ssl=False,
            imap_username=imap.username,
            imap_password=SecretStr(imap.password),
            sender_mps=1000.0,
            account_mps=1000.0,
        )
        env = make_env(settings, settings.outbox_dir)
        with Session(env.engine) as s:
            key = reply_key(env, s)
            s.commit()
            people = {p.sis_id: p for p in s.execute(select(Person)).scalars()}
        started = time.perf_counter()
        staff_n = int(args.mails * 0.80)
        student_n = int(args.mails * 0.15)
        other_n = args.mails - staff_n - student_n
        for n in range(args.mails):
            i = n  # one mail per student
            staff = people[f"T{i % 20}"]
            student = people[f"S{i}"]
            token = make_token(key, ReplyPair(int(staff.id or 0), int(student.id or 0)))
            to = reply_address(REPLY, token)
            if n < staff_n:
                raw = mail(to, staff.email or "", f"Yes, come by at {n % 12 + 1}pm.", n)
            elif n < staff_n + student_n:
                raw = mail(to, student.email or "", "Thanks, I will be there.", n)
            else:
                raw = mail(REPLY, "news@vendor.example", "Our newsletter", n)
            imap.append(raw)
        print(
            f"setup: {args.mails:,} mails appended ({staff_n} staff answers, {student_n} "
            f"student answers, {other_n} others) in {time.perf_counter() - started:.1f} s"
        )
        started = time.perf_counter()
        result = run_mail_poll(settings, env=env)
        took = time.perf_counter() - started
        assert not result["errors"], result["errors"]
        assert (result["sent"], result["recorded"], result["ignored"]) == (
            staff_n,
            student_n,
            other_n,
        ), result
        texted = emu.counters()["messages_created"]
        per_mail_ms = took * 1000 / max(result["fetched"], 1)
        print(
            f"one pass: {took:.2f} s for {result['fetched']:,} mails with a token "
            f"({per_mail_ms:.1f} ms each): {result['sent']} answers texted "
            f"({texted} texts at the emulator, opt-in notices included), "
            f"{result['recorded']} student emails recorded, {result['emails_sent']} staff "
            f"notified, {result['ignored']} left alone"
        )
        again = time.perf_counter()
        second = run_mail_poll(settings, env=env)
        print(
            f"the next pass (nothing new, {second['ignored']} left alone): "
            f"{time.perf_counter() - again:.2f} s"
        )
        record(
            "mailbox poll, 1,000 waiting emails, SQLite",
            per_mail_ms,
            "ms/email",
            baseline=f"whole pass {took:.1f} s",
            note=f"{result['sent']} answers texted, {result['recorded']} recorded",
        )
        env.engine.dispose()


if __name__ == "__main__":
    main()
