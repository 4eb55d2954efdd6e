"""Benchmark: a reconciliation sweep over 50,000 inbound messages of the last 48 hours.

Setup (not timed): the database of ``bench_poll.py`` (20 staff members with sender numbers,
2,000 students texted once each), on SQLite; the Twilio emulator in its own process
(``mode="subprocess"``), into which ``--messages`` inbound texts are injected over HTTP,
back-dated (``SentAgo``) evenly over the last 47 hours. All but ``--late`` of them are then
stored directly in the database, as the every-minute polls would have, and the poll cursor is
set to now: the ``--late`` ones (sent 10 minutes to 47 hours ago) are the replies Twilio
listed too late for any poll.

Timed: ``run_sweep(hours=48)``, the whole run (list, store, staff emails to an outbox
folder), with its split. Against baselines measured in the same run, on a copy of the same
database and the same emulator:

* the regular poll (cursor at now): what today's poller costs, and that it finds nothing;
* a poll that looks back the same 48 hours (no cursor, ``lookback=48h``): the same listing
  and store through the poll's early-stop path; the sweep should cost about the same;
* the same sweep again (nothing missing): what the daily sweep costs on a quiet day.

    python bench/bench_sweep.py [--messages 50000] [--late 250]
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import time
from datetime import timedelta
from email.utils import parsedate_to_datetime
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
from sqlalchemy import delete, insert
from sqlmodel import Session

from bench._report import record
from bench.bench_poll import (
    REPLIES,
    STAFF,
    STUDENTS,
    machine,
    make_env,
    seed_database,
    staff_number,
    student_number,
)
from flows.poll_replies import run_poll
from flows.reconcile_replies import run_sweep
from models.db import make_engine
from models.leases import cursor_t, write_cursor
from models.messaging import InboundMessage
from models.types import utcnow
from nudge.settings import Settings
from sandbox.twilio import EmulatorConfig, run_emulator
from tasks.env import Env
from tasks.poll_options import PollOptions
from tasks.replies import CURSOR

WINDOW_H = 48
SPREAD_S = 47 * 3600  # back-dated evenly over 47 hours: all inside the 48-hour window


def inject_spread(base_url: str, n: int, seed: int = 16) -> list[tuple[str, str, str, Any]]:
    """``n`` inbound texts, back-dated evenly over :data:`SPREAD_S` (not timed); returns
    (sid, from, to, date_sent) per text."""
    rng = random.Random(seed)
    out: list[tuple[str, str, str, Any]] = []
    with httpx.Client(base_url=base_url, timeout=30) as client:
        for k in range(n):
            i = rng.randrange(STUDENTS)
            from_, to = student_number(i), staff_number(i % STAFF)
            payload = {
                "From": from_,
                "To": to,
                "Body": rng.choice(REPLIES),
                "SentAgo": 60 + SPREAD_S * k / n,
            }
            response = client.post("/sandbox/inbound", json=payload)
            response.raise_for_status()
            message = response.json()["message"]
            sent = parsedate_to_datetime(message["date_sent"] or message["date_created"])
            out.append((str(message["sid"]), from_, to, sent))
    return out


def pre_store(url: str, injected: list[tuple[str, str, str, Any]], late: int) -> set[str]:
    """Store all but ``late`` texts (those at least 10 minutes old, picked at random) as the
    polls would have, and set the poll cursor to now; returns the late ones' sids."""
    rng = random.Random(7)
    now = utcnow()
    old_enough = [m for m in injected if m[3] < now - timedelta(minutes=10)]
    missing = {sid for sid, *_ in rng.sample(old_enough, late)}
    engine = make_engine(url)
    with Session(engine) as s:
        rows = [
            {
                "provider_sid": sid,
                "from_e164": from_,
                "to_e164": to,
                "body": "stored by an earlier poll",
                "received_at": sent,
                "keyword": "none",
                "handled": True,
                "notified": True,
                "created_at": now,
            }
            for sid, from_, to, sent in injected
            if sid not in missing
        ]
        for start in range(0, len(rows), 5000):
            s.execute(insert(InboundMessage), rows[start : start + 5000])
        write_cursor(session=s, name=CURSOR, value=now, now=now)
        s.commit()
    engine.dispose()
    return missing


def timed(label: str, run: Any) -> tuple[float, dict[str, Any]]:
    started = time.perf_counter()
    result: dict[str, Any] = run()
    took = time.perf_counter() - started
    split = ", ".join(f"{k} {v:.2f} s" for k, v in result.get("seconds", {}).items())
    print(
        f"{label}: {took:.2f} s ({split}); listed {result.get('scanned', 0):,}, new "
        f"{result.get('new', 0):,}, late {result.get('late_found', '-')}, emails "
        f"{result.get('notifications_sent', 0)}"
    )
    return took, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=50_000)
    parser.add_argument("--late", type=int, default=250)
    parser.add_argument("--repeats", type=int, default=2, help="best of, for each")
    args = parser.parse_args()

    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as tmp:
        folder = Path(tmp)
        seed_database(f"sqlite:///{folder / 'seed.db'}")
        with run_emulator(EmulatorConfig(status_delay_ms=0), mode="subprocess") as emu:
            started = time.perf_counter()
            injected = inject_spread(emu.base_url, args.messages)
            missing = pre_store(f"sqlite:///{folder / 'seed.db'}", injected, args.late)
            print(
                f"setup: {args.messages:,} inbound over {SPREAD_S // 3600} h injected, "
                f"{args.messages - args.late:,} stored as the polls would have, {args.late} "
                f"late, in {time.perf_counter() - started:.0f} s (emulator in a subprocess)\n"
            )

            def env_on_copy(name: str, *, cursor: bool = True) -> tuple[Settings, Env]:
                """Settings and an env on a fresh copy of the seeded database."""
                shutil.copy(folder / "seed.db", folder / f"{name}.db")
                settings = Settings(
                    _env_file=None,
                    database_url=f"sqlite:///{folder / name}.db",
                    twilio_base_url=emu.base_url,
                    outbox_dir=folder / f"outbox-{name}",
                )
                env = make_env(settings, settings.outbox_dir)
                if not cursor:
                    with Session(env.engine) as s:
                        s.execute(delete(cursor_t).where(cursor_t.c.name == CURSOR))
                        s.commit()
                return settings, env

            settings, env = env_on_copy("regular")
            regular_s, regular = timed(
                "regular poll (cursor at now)", lambda: run_poll(settings, env=env)
            )
            assert regular["new"] == 0, regular  # what today's poller finds of them
            env.engine.dispose()
            sweeps, polls = [], []
            for k in range(args.repeats):  # interleaved: both see the same machine load
                settings, env = env_on_copy(f"poll{k}", cursor=False)
                polls.append(
                    timed(
                        f"poll looking back {WINDOW_H} h (no cursor)",
                        partial(
                            run_poll,
                            settings,
                            env=env,
                            options=PollOptions(lookback=timedelta(hours=WINDOW_H)),
                        ),
                    )
                )
                assert polls[-1][1]["new"] == len(missing), polls[-1]
                env.engine.dispose()
                settings, env = env_on_copy(f"sweep{k}")
                sweeps.append(
                    timed(
                        f"sweep, last {WINDOW_H} h",
                        partial(run_sweep, settings, env=env, hours=WINDOW_H, lease_wait_s=0),
                    )
                )
                swept = sweeps[-1][1]
                assert swept["errors"] == [], swept
                assert (swept["new"], swept["late_found"]) == (len(missing), args.late), swept
            quiet_s, quiet = timed(
                "the same sweep again (nothing missing)",
                lambda: run_sweep(settings, env=env, hours=WINDOW_H, lease_wait_s=0),
            )
            assert quiet["new"] == 0, quiet
            env.engine.dispose()

    sweep_s, swept = min(sweeps, key=lambda r: r[0])
    poll_s, polled = min(polls, key=lambda r: r[0])
    rate = swept["scanned"] / sweep_s
    ratio = sweep_s / poll_s
    print(
        f"\nsweep over {swept['scanned']:,} messages of {WINDOW_H} h (best of "
        f"{args.repeats}): {sweep_s:.2f} s ({rate:,.0f} messages/s), {args.late} late found, "
        f"largest lag {swept['max_lag_s'] / 3600:.1f} h; a {WINDOW_H}-hour poll over the same "
        f"data {poll_s:.2f} s ({polled['scanned'] / poll_s:,.0f} messages/s) -> {ratio:.2f}x; "
        f"a quiet sweep (nothing missing) {quiet_s:.2f} s; the regular poll {regular_s:.2f} s "
        f"(finds 0 of the {args.late})"
    )
    record(
        f"sweep {args.messages // 1000}k inbound / {WINDOW_H} h (SQLite)",
        round(sweep_s, 2),
        "s",
        baseline=f"poll looking back {WINDOW_H} h: {poll_s:.2f} s",
        ratio=round(ratio, 2),
        target="<= 1.5x that poll",
        ok=ratio <= 1.5,
        note=f"{rate:,.0f} messages/s; quiet sweep {quiet_s:.2f} s",
    )


if __name__ == "__main__":
    main()
