"""Randomized holdouts end to end: 1,000 synced students, the Twilio emulator, real SMTP.

The emulator's Messages list is the ground truth of who got a text; the outcome comparison
is checked against a hand computation and against statsmodels' own call on the same counts.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from scipy.stats import fisher_exact
from sqlalchemy import func, select
from sqlmodel import Session
from statsmodels.stats.proportion import confint_proportions_2indep

from domain.audience import AudienceFilter
from domain.campaign import CampaignRequest
from domain.holdout import draw_holdout
from flows.send_campaign import run_campaign, run_dispatch, work
from flows.sis_sync import run_sync
from models.config import load_config, save_config
from models.db import make_engine
from models.messaging import Campaign, Message
from models.people import Person
from models.types import utcnow
from nudge.settings import Settings
from tasks.env import Env
from tasks.holdout_outcome import OutcomeRefused, campaign_outcome
from tests.helpers import phone, staff, student, write_extract

PROGRAMS = ("Nursing", "Biology", "Welding", "Accounting", "Business")
EVERYONE = AudienceFilter(caseload=["T1"])


@dataclass(frozen=True)
class Roster:
    """The generated students: their ids, programs and numbers, by index."""

    programs: list[str]

    def sis_id(self, i: int) -> str:
        return f"S{i}"

    def number(self, i: int) -> str:
        return f"+1212867{i:04d}"

    def pairs(self) -> list[tuple[str, str]]:
        return [(self.sis_id(i), p) for i, p in enumerate(self.programs)]


def make_roster(n: int) -> Roster:
    """``n`` students in unevenly sized programs (about 5:3:2:1:1)."""
    rng = random.Random(20261207)
    return Roster(rng.choices(PROGRAMS, weights=[5, 3, 2, 1, 1], k=n))


def sync_roster(
    folder: Path, settings: Settings, roster: Roster, tags: Callable[[int], str] = lambda i: ""
) -> None:
    """A full SIS extract: staff T1 (Texting) advising every student of ``roster``."""
    people = [staff("T1", first_name="Tess", last_name="Adams", roles="Texting")]
    phones = []
    for i, program in enumerate(roster.programs):
        people.append(student(roster.sis_id(i), advisor_id="T1", program=program, tags=tags(i)))
        phones.append(phone(roster.sis_id(i), f"(212) 867-{i:04d}"))
    run_sync(write_extract(folder, people, phones), settings=settings)


def no_quiet_hours_no_limit(settings: Settings) -> None:
    engine = make_engine(settings.database_url)
    with Session(engine) as s:
        config = load_config(session=s)
        config.quiet_hours = "off"
        config.monthly_limit = None
        save_config(config, session=s)
        s.commit()
    engine.dispose()


def outbound_per_number(emulator: Any) -> Counter[str]:
    """Every outbound message the emulator holds, counted by the number it went to."""
    import httpx

    sid = "AC" + "0" * 32
    seen: Counter[str] = Counter()
    url = f"/2010-04-01/Accounts/{sid}/Messages.json?PageSize=1000"
    with httpx.Client(base_url=emulator.base_url, auth=(sid, "x")) as client:
        while url:
            page = client.get(url).json()
            seen.update(m["to"] for m in page["messages"] if m["direction"] == "outbound-api")
            url = page["next_page_uri"]
    return seen


def held_out_sis_ids(engine: Any, campaign_id: int) -> set[str]:
    with Session(engine) as s:
        rows = s.execute(
            select(Person.sis_id, Message.channel, Message.reason, Message.chunk_id, Message.kind)
            .join(Person, Person.id == Message.person_id)  # type: ignore[arg-type]
            .where(Message.campaign_id == campaign_id, Message.status == "held_out")  # type: ignore[arg-type]
        ).all()
    assert {(r.channel, r.reason, r.chunk_id, r.kind) for r in rows} <= {
        ("none", "holdout", None, "campaign")
    }
    return {r.sis_id for r in rows}


def wilson(count: int, n: int, z: float) -> tuple[float, float]:
    """The Wilson score interval of count/n (no continuity correction)."""
    p = count / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return centre - half, centre + half


def newcomb_by_hand(c1: int, n1: int, c2: int, n2: int) -> tuple[float, float]:
    """Newcomb's hybrid score interval of p1 - p2 (method 10 of Newcomb, 1998)."""
    z = 1.959963984540054  # the 97.5% normal quantile
    p1, p2 = c1 / n1, c2 / n2
    l1, u1 = wilson(c1, n1, z)
    l2, u2 = wilson(c2, n2, z)
    d = p1 - p2
    return d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2), d + math.sqrt(
        (u1 - p1) ** 2 + (p2 - l2) ** 2
    )


@pytest.mark.slow
def test_a_20_percent_holdout_of_1000_students_keeps_the_same_200_out_of_every_send(
    live_settings: Settings,
    emulator: Any,
    smtp: Any,
    tmp_path: Path,
    make_env: Callable[..., Env],
) -> None:
    settings = live_settings.model_copy(update={"chunk_size": 100, "send_concurrency": 8})
    roster = make_roster(1000)
    assert len(set(roster.programs)) == 5
    sync_roster(tmp_path / "sis", settings, roster)
    no_quiet_hours_no_limit(settings)
    env = make_env(settings=settings)
    ask = CampaignRequest(
        sender_id="T1",
        message="Hi {first_name}, spring registration opens Monday.",
        audience=EVERYONE,
        holdout_pct=20,
    )

    # The preview draws with the seed derived from the request, and says which.
    preview = run_campaign(ask.model_copy(update={"dry_run": True}), settings=settings, env=env)
    assert (preview["campaign_id"], preview["recipients"], preview["held_out"]) == (None, 800, 200)
    seed = preview["holdout_seed"]
    assert seed == ask.holdout_seed_used() and preview["holdout_pct"] == 20
    expected = draw_holdout(roster.pairs(), 20, seed)
    assert len(expected) == 200  # exactly 20%: within the promised 200 ± 3

    first = run_campaign(ask, settings=settings, env=env)
    assert (first["status"], first["recipients"], first["sms"], first["email"]) == (
        "completed",
        800,
        800,
        0,
    )
    assert (first["held_out"], first["result"]["held_out"], first["holdout_seed"]) == (
        200,
        200,
        seed,
    )
    assert (first["opt_in_notices"], first["quota_units"]) == (800, 1600)  # none for held out
    assert first["result"]["recipients"] == 800
    assert held_out_sis_ids(env.engine, first["campaign_id"]) == expected

    # Another campaign with the same seed holds out the same students.
    again = run_campaign(
        CampaignRequest(
            sender_id="T1",
            message="Hi {first_name}, advising is open all week.",
            audience=EVERYONE,
            holdout_pct=20,
            holdout_seed=seed,
        ),
        settings=settings,
        env=env,
    )
    assert (again["status"], again["recipients"], again["held_out"]) == ("completed", 800, 200)
    assert held_out_sis_ids(env.engine, again["campaign_id"]) == expected

    # Nothing downstream picks a held-out row up: dispatch-due and a resume send nothing.
    run_dispatch(settings, env=env)
    work(settings, campaign_id=first["campaign_id"], env=env)

    held = {i for i in range(1000) if roster.sis_id(i) in expected}
    per_number = outbound_per_number(emulator)
    assert not {roster.number(i) for i in held} & per_number.keys()
    # Everyone else: the opt-in notice and the first message, then the second message.
    assert per_number == {roster.number(i): 3 for i in range(1000) if i not in held}
    assert smtp.messages == []
    with Session(env.engine) as s:
        statuses = Counter(
            s.execute(
                select(Message.status).where(Message.campaign_id == first["campaign_id"])  # type: ignore[arg-type]
            ).scalars()
        )
        assert statuses == {"sent": 1600, "held_out": 200}
        ids = s.execute(select(Campaign.holdout_pct, Campaign.holdout_seed)).all()
        assert [tuple(r) for r in ids] == [(20.0, seed), (20.0, seed)]

    # A later sync: a known subset registers (every other treated student, every fifth
    # held-out one).
    def registered(i: int) -> bool:
        return i % 5 == 0 if i in held else i % 2 == 0

    sync_roster(
        tmp_path / "sis2",
        settings,
        roster,
        tags=lambda i: "first-gen;registered" if registered(i) else "first-gen",
    )
    now = utcnow()
    with pytest.raises(OutcomeRefused) as refused:
        campaign_outcome(
            env.engine,
            first["campaign_id"],
            field="tags",
            value="registered",
            after_days=14,
            now=now,
        )
    assert f"campaign #{first['campaign_id']} was sent 0 day(s) ago; --after 14 asks for 14" in str(
        refused.value
    )

    data = campaign_outcome(
        env.engine,
        first["campaign_id"],
        field="tags",
        value="registered",
        after_days=14,
        now=now + timedelta(days=15),
    )
    m_with = sum(registered(i) for i in range(1000) if i not in held)
    h_with = sum(registered(i) for i in held)
    assert data["messaged"] == {"students": 800, "with_value": m_with, "share": m_with / 800}
    assert data["held_out"] == {"students": 200, "with_value": h_with, "share": h_with / 200}
    assert data["difference"] == m_with / 800 - h_with / 200
    low, high = confint_proportions_2indep(m_with, 800, h_with, 200, method="newcomb")
    assert data["interval"] == [float(low), float(high)]
    assert data["interval"] == pytest.approx(newcomb_by_hand(m_with, 800, h_with, 200), abs=1e-9)
    table = [[m_with, 800 - m_with], [h_with, 200 - h_with]]
    assert data["p_value"] == float(fisher_exact(table).pvalue)
    assert (data["verdict"], data["too_small_reason"]) == ("messaged_higher", None)
    assert (data["sent_days_ago"], data["not_reached"], data["warning"]) == (15, 0, None)
    assert data["values_as_of"] is not None and data["values_as_of"] >= data["sent_at"]
    assert data["summary"].startswith("Messaged students more often have the tag 'registered': ")

    # Stratified by program: each program's share is the same in both groups, to a student.
    nursing = campaign_outcome(
        env.engine, first["campaign_id"], field="program", value="nursing", after_days=None, now=now
    )
    n_total = roster.programs.count("Nursing")
    n_held = sum(roster.programs[i] == "Nursing" for i in held)
    assert abs(n_held - 0.2 * n_total) < 1
    assert nursing["held_out"]["with_value"] == n_held
    assert nursing["messaged"]["with_value"] == n_total - n_held
    assert nursing["verdict"] == "no_detectable_difference"
    assert abs(nursing["difference"]) < 1 / 200 + 1 / 800


def test_a_tiny_campaign_is_too_small_to_tell(
    live_settings: Settings,
    emulator: Any,
    college: Callable[..., list[str]],
    make_env: Callable[..., Env],
) -> None:
    numbers = college(10)
    env = make_env()
    result = run_campaign(
        CampaignRequest(sender_id="T1", message="Hi", audience=EVERYONE, holdout_pct=20),
        settings=live_settings,
        env=env,
    )
    assert (result["recipients"], result["held_out"]) == (8, 2)
    data = campaign_outcome(
        env.engine,
        result["campaign_id"],
        field="status",
        value="active",
        after_days=None,
        now=utcnow(),
    )
    assert data["verdict"] == "too_small"
    assert data["summary"].startswith(
        "Too small to tell: the messaged group has 8 student(s); at least 30 in each group "
        "are needed. 100.0% of messaged students (8 of 8) and 100.0% of held-out students "
        "(2 of 2) now have status 'active'."
    )
    assert len(outbound_per_number(emulator)) == 8
    assert set(outbound_per_number(emulator)) < set(numbers)


def test_a_scheduled_campaign_with_a_holdout_sends_only_to_the_rest_when_dispatched(
    live_settings: Settings,
    emulator: Any,
    college: Callable[..., list[str]],
    make_env: Callable[..., Env],
) -> None:
    numbers = college(40)
    env = make_env()
    planned = run_campaign(
        CampaignRequest(
            sender_id="T1",
            message="Hi",
            audience=EVERYONE,
            holdout_pct=25,
            send_at=datetime.now(UTC) + timedelta(minutes=5),
        ),
        settings=live_settings,
        env=env,
    )
    assert (planned["status"], planned["recipients"], planned["held_out"]) == ("scheduled", 30, 10)
    with Session(env.engine) as s:
        s.execute(
            Campaign.__table__.update().values(send_at=datetime.now(UTC) - timedelta(seconds=1))  # type: ignore[attr-defined]
        )
        s.commit()
    run_dispatch(live_settings, env=env)
    work(live_settings, campaign_id=planned["campaign_id"], env=env)
    held = held_out_sis_ids(env.engine, planned["campaign_id"])
    assert len(held) == 10
    per_number = outbound_per_number(emulator)
    held_numbers = {numbers[int(sis_id[1:])] for sis_id in held}
    assert not held_numbers & per_number.keys()
    assert per_number == {n: 2 for n in numbers if n not in held_numbers}
    with Session(env.engine) as s:
        assert s.execute(select(Campaign.status)).scalar_one() == "completed"
        held_rows = s.execute(
            select(func.count()).where(Message.status == "held_out")  # type: ignore[arg-type]
        ).scalar_one()
        assert held_rows == 10
