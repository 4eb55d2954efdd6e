"""Campaign outcomes where people look: a Prefect table artifact per recent campaign
(:func:`publish_outcomes`, refreshed by ``poll-replies``) and the weekly outreach digest
(``flows/outreach_digest.py``): its figures (:func:`gather_digest`), its self-contained HTML
page with a bar chart of reply rates, its markdown artifact and its email.

The figures are :mod:`models.outcomes` (which replies count for which campaign is written
there). Everything here carries counts, names of staff and the start of a campaign's
template: never a phone number nor a student's text.

The page follows the data-quality report (``domain/quality/``): the same inline stylesheet
and Content-Security-Policy, every value escaped, the chart hand-written inline SVG, so it
opens offline from the report folder.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from html import escape
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session

from domain.outbox import Kind
from domain.quality.html import page_start, text
from domain.quality.render import format_figure
from models.config import load_config
from models.outbox_loose import enqueue
from models.outcomes import (
    CampaignLabel,
    CampaignStats,
    StaffStats,
    campaign_labels,
    campaign_stats,
    pct,
    recent_campaign_ids,
    staff_stats,
)
from tasks.env import Env
from tasks.outbox_loose import alert_rows, deliver_loose
from tasks.runtime import in_prefect_run, run_logger

#: The markdown artifact of the weekly digest.
DIGEST_KEY = "outreach-digest"
#: How many characters of a campaign's template name it in tables.
TEMPLATE_CHARS = 60


def outcome_key(campaign_id: int) -> str:
    """The key of a campaign's outcome artifact (lowercase letters, digits and dashes)."""
    return f"campaign-{campaign_id}-outcomes"


@dataclass(frozen=True, slots=True)
class CampaignLine:
    """A campaign's outcomes with who sent it and what it said (the start of it)."""

    stats: CampaignStats
    label: CampaignLabel | None

    @property
    def title(self) -> str:
        """``#12 Tess Adams (T1)``."""
        who = f" {self.label.sender_name} ({self.label.sender_sis_id})" if self.label else ""
        return f"#{self.stats.campaign_id}{who}"

    @property
    def template(self) -> str:
        """The first :data:`TEMPLATE_CHARS` characters of the campaign's text, on one line."""
        words = " ".join((self.label.template if self.label else "").split())
        return words if len(words) <= TEMPLATE_CHARS else words[: TEMPLATE_CHARS - 1] + "…"

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: the figures, the sender and the start of the template."""
        sender = (
            {"id": self.label.sender_sis_id, "name": self.label.sender_name} if self.label else None
        )
        return {**self.stats.as_dict(), "sender": sender, "template": self.template}


def campaign_outcomes(
    env: Env, *, since: datetime, until: datetime | None = None
) -> list[CampaignLine]:
    """The outcomes of every campaign (kind ``campaign``) first sent since ``since`` (and
    before ``until``), oldest first."""
    with Session(env.engine) as s:
        ids = recent_campaign_ids(session=s, since=since, until=until)
        labels = campaign_labels(session=s, campaign_ids=ids)
        return [
            CampaignLine(campaign_stats(session=s, campaign_id=cid), labels.get(cid)) for cid in ids
        ]


# --- the table artifact per campaign --------------------------------------------------------


def outcome_table(line: CampaignLine) -> list[dict[str, Any]]:
    """The rows of a campaign's outcome artifact: one figure each."""
    s = line.stats
    rows: list[tuple[str, Any]] = [
        ("Recipients (students messaged)", s.recipients),
        ("Held out on purpose", s.held_out),
        ("By SMS", s.sms),
        ("By email", s.email),
        ("Could not be reached", s.undeliverable),
        ("SMS handed to Twilio", s.sms_handed),
        ("Delivered, % of SMS handed to Twilio", s.delivered_pct),
        *((f"Not delivered, error {code}", n) for code, n in s.failed_by_code.items()),
        ("Replied", s.replied),
        ("Replied, % of recipients", s.reply_pct),
        ("Opted out (STOP)", s.opted_out),
        ("Opted out, % of recipients", s.opt_out_pct),
        ("Median minutes to the first reply", s.median_reply_minutes),
        ("First reply within an hour, % of repliers", s.first_reply_within_1h_pct),
    ]
    return [{"figure": name, "value": value} for name, value in rows]


def outcome_description(line: CampaignLine) -> str:
    """The artifact's description: which campaign, and how replies are counted."""
    return (
        f"Outcomes of campaign {line.title}: {line.template or '-'}. Replies count when "
        "threaded to the campaign's text, or sent to its sender before their next campaign "
        "(refreshed by poll-replies)."
    )


def publish_outcomes(env: Env, *, days: int = 30) -> int:
    """Inside a Prefect run, create or refresh the table artifact
    ``campaign-<id>-outcomes`` of every campaign first sent in the last ``days``; returns how
    many were created. An artifact whose figures did not change since its latest version is
    left as it is (one read of the latest versions, so a poll every minute adds a version
    only when something happened). Outside a Prefect run nothing is computed: 0."""
    if not in_prefect_run():
        return 0
    lines = campaign_outcomes(env, since=env.now() - timedelta(days=days))
    if not lines:
        return 0
    from prefect.artifacts import create_table_artifact

    wanted = {
        outcome_key(line.stats.campaign_id): (outcome_table(line), outcome_description(line))
        for line in lines
    }
    latest = _latest_tables(list(wanted))
    created = 0
    for key, (table, description) in wanted.items():
        if latest.get(key) == (json.loads(json.dumps(table)), description):
            continue
        create_table_artifact(key=key, table=table, description=description)
        created += 1
    return created


def _latest_tables(keys: Sequence[str]) -> dict[str, tuple[Any, str | None]]:
    """(table, description) of the latest version of each of these artifact keys; empty
    when the server cannot be read (then every table is published again)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactCollectionFilter,
        ArtifactCollectionFilterKey,
    )

    try:
        with get_client(sync_client=True) as client:
            found = client.read_latest_artifacts(
                artifact_filter=ArtifactCollectionFilter(
                    key=ArtifactCollectionFilterKey(any_=list(keys))
                ),
                limit=len(keys),
            )
    except Exception as exc:  # the artifacts are a view: never fail the poll for them
        run_logger().warning("could not read the latest outcome artifacts: %s", exc)
        return {}
    latest: dict[str, tuple[Any, str | None]] = {}
    for artifact in found:
        data = artifact.data
        try:
            table = json.loads(data) if isinstance(data, str) else data
        except ValueError:
            continue
        latest[artifact.key] = (table, artifact.description)
    return latest


# --- the weekly digest ----------------------------------------------------------------------


def iso_week(moment: datetime, zone: str) -> str:
    """The ISO week of ``moment`` in the institution's zone: ``2026-W10``."""
    year, week, _day = moment.astimezone(ZoneInfo(zone)).isocalendar()
    return f"{year}-W{week:02d}"


@dataclass(slots=True)
class Digest:
    """A week of outreach: every campaign first sent in it and every staff member's
    answering (``since`` to ``until``, UTC; shown in ``zone``)."""

    since: datetime
    until: datetime
    zone: str
    campaigns: list[CampaignLine] = field(default_factory=list)
    staff: list[StaffStats] = field(default_factory=list)

    @property
    def week(self) -> str:
        """The ISO week the digest is written in (that of ``until``, in ``zone``): its
        emails' key, so they go once per week."""
        return iso_week(self.until, self.zone)

    @property
    def days(self) -> int:
        """How many days the digest covers."""
        return round((self.until - self.since).total_seconds() / 86400)

    @property
    def day(self) -> str:
        """The local date of ``until``: the name of its page."""
        return self.until.astimezone(ZoneInfo(self.zone)).date().isoformat()

    def local(self, moment: datetime | None) -> str:
        """A time as people read it: ``2026-03-09 07:00 EDT``."""
        if moment is None:
            return "-"
        return moment.astimezone(ZoneInfo(self.zone)).strftime("%Y-%m-%d %H:%M %Z")

    def totals(self) -> dict[str, Any]:
        """The week's campaigns together: recipients, delivery, replies and opt-outs."""
        stats = [line.stats for line in self.campaigns]
        recipients = sum(s.recipients for s in stats)
        handed = sum(s.sms_handed for s in stats)
        delivered = sum(s.delivered for s in stats)
        replied = sum(s.replied for s in stats)
        stopped = sum(s.opted_out for s in stats)
        return {
            "campaigns": len(stats),
            "recipients": recipients,
            "sms_handed": handed,
            "delivered_pct": pct(delivered, handed),
            "replied": replied,
            "reply_pct": pct(replied, recipients),
            "opted_out": stopped,
            "opt_out_pct": pct(stopped, recipients),
            "replies_to_staff": sum(s.replies for s in self.staff),
            "unanswered": sum(s.unanswered for s in self.staff),
            "overdue": sum(s.overdue for s in self.staff),
        }

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (times in the institution's zone)."""
        zone = ZoneInfo(self.zone)
        return {
            "week": self.week,
            "days": self.days,
            "since": self.since.astimezone(zone).isoformat(),
            "until": self.until.astimezone(zone).isoformat(),
            "zone": self.zone,
            "totals": self.totals(),
            "campaigns": [line.as_dict() for line in self.campaigns],
            "staff": [s.as_dict() for s in self.staff],
        }


def gather_digest(env: Env, *, now: datetime, days: int = 7) -> Digest:
    """The figures of the ``days`` before ``now``: campaigns first sent then, staff stats."""
    since = now - timedelta(days=days)
    with Session(env.engine) as s:
        zone = load_config(session=s).timezone
        people = staff_stats(session=s, since=since, now=now)
    return Digest(
        since=since,
        until=now,
        zone=zone,
        campaigns=campaign_outcomes(env, since=since, until=now),
        staff=people,
    )


def _fig(value: Any, suffix: str = "") -> str:
    """A figure as the digest writes it: ``1,234``, ``62.5%``, ``–`` for none."""
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.1f}{suffix}"
    return format_figure(value) + suffix


def reply_chart_svg(digest: Digest) -> str:
    """A horizontal bar chart of the reply rate of each campaign of the week (hand-written
    SVG in the style of the data-quality chart: a title, a tooltip per bar)."""
    lines = digest.campaigns
    width, left, right, top, bar, gap = 640, 220, 60, 40, 20, 8
    plot_w = width - left - right
    height = top + max(len(lines), 1) * (bar + gap) + 24
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11" role="img" '
        'aria-labelledby="reply-chart-title">',
        f'<title id="reply-chart-title">Reply rate of the {len(lines)} campaign(s) of the '
        f"{digest.days} days to {escape(digest.day)}</title>",
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="white"/>',
        f'<text x="12" y="20" font-size="14" font-weight="bold">Replied, % of recipients, '
        f"the {digest.days} days to {escape(digest.day)}</text>",
    ]
    if not lines:
        out.append(
            f'<text x="{width / 2}" y="{top + 14}" text-anchor="middle">no campaign in these '
            "days</text>"
        )
    for i, line in enumerate(lines):
        y = top + i * (bar + gap)
        value = line.stats.reply_pct or 0.0
        w = plot_w * min(value, 100.0) / 100.0
        label = escape(line.title, quote=True)
        tip = escape(
            f"{line.title}: {_fig(line.stats.reply_pct, '%')} replied "
            f"({line.stats.replied} of {line.stats.recipients}), "
            f"{_fig(line.stats.opt_out_pct, '%')} opted out",
            quote=True,
        )
        out += [
            f'<text x="{left - 8}" y="{y + bar - 6}" text-anchor="end">{label}</text>',
            f'<rect x="{left}" y="{y}" width="{plot_w}" height="{bar}" fill="#f6f8fa"/>',
            f'<rect x="{left}" y="{y}" width="{w:.1f}" height="{bar}" fill="#2c6fbb" '
            f'data-campaign="{line.stats.campaign_id}"><title>{tip}</title></rect>',
            f'<text x="{left + w + 6:.1f}" y="{y + bar - 6}">'
            f"{escape(_fig(line.stats.reply_pct, '%'))}</text>",
        ]
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _cell(value: Any, suffix: str = "") -> str:
    return f'<td class="num">{text(_fig(value, suffix))}</td>'


def digest_html(digest: Digest) -> str:
    """The digest as one self-contained page: headline cards, the reply-rate chart, the
    campaigns and the staff tables (nothing loaded from the network)."""
    t = digest.totals()
    title = f"Outreach digest, the {digest.days} days to {digest.day}"
    out = [
        *page_start(title),
        f'<p class="lead">{text(digest.local(digest.since))} to '
        f"{text(digest.local(digest.until))}. A reply counts for a campaign when it answers "
        "the campaign's text, or reached its sender before their next campaign; STOP, START "
        "and HELP are not replies.</p>",
        '<section class="cards" aria-label="Headline figures">',
    ]
    cards = [
        ("campaigns", _fig(t["campaigns"]), "Campaigns"),
        ("recipients", _fig(t["recipients"]), "Students messaged"),
        ("reply_pct", _fig(t["reply_pct"], "%"), "Replied"),
        ("opt_out_pct", _fig(t["opt_out_pct"], "%"), "Opted out"),
        ("delivered_pct", _fig(t["delivered_pct"], "%"), "SMS delivered"),
        ("unanswered", _fig(t["unanswered"]), "Replies not answered yet"),
    ]
    out += [
        f'<div class="card"><div class="value" data-card="{key}">{text(value)}</div>'
        f'<div class="label">{text(label)}</div></div>'
        for key, value, label in cards
    ]
    out += [
        "</section>",
        "<h2>Reply rate per campaign</h2>",
        '<figure class="chart" aria-label="Reply rate per campaign">',
        reply_chart_svg(digest).strip(),
        "</figure>",
        "<h2>Campaigns</h2>",
    ]
    if not digest.campaigns:
        out.append("<p>No campaign was sent this week.</p>")
    else:
        out += [
            "<table>",
            "<thead><tr><th>Campaign</th><th>Message</th><th>First sent</th>"
            '<th class="num">Recipients</th><th class="num">Delivered</th>'
            '<th class="num">Replied</th><th class="num">Opted out</th>'
            '<th class="num">Median reply (min)</th><th>Not delivered</th></tr></thead>',
            "<tbody>",
        ]
        for line in digest.campaigns:
            s = line.stats
            codes = ", ".join(f"{code}: {n}" for code, n in s.failed_by_code.items()) or "-"
            out.append(
                f'<tr data-campaign="{s.campaign_id}"><td>{text(line.title)}</td>'
                f"<td>{text(line.template)}</td><td>{text(digest.local(s.first_sent_at))}</td>"
                + _cell(s.recipients)
                + _cell(s.delivered_pct, "%")
                + _cell(s.reply_pct, "%")
                + _cell(s.opt_out_pct, "%")
                + _cell(s.median_reply_minutes)
                + f"<td>{text(codes)}</td></tr>"
            )
        out += ["</tbody>", "</table>"]
    out.append("<h2>Staff</h2>")
    if not digest.staff:
        out.append("<p>No staff member texted or heard from a student this week.</p>")
    else:
        out += [
            "<table>",
            '<thead><tr><th>Staff member</th><th class="num">Texts sent</th>'
            '<th class="num">Replies</th><th class="num">Students</th>'
            '<th class="num">Unanswered</th><th class="num">Median answer (min)</th>'
            '<th class="num">Answered within a business day</th></tr></thead>',
            "<tbody>",
        ]
        out += [
            f'<tr data-staff="{text(p.staff_id)}"><td>{text(p.name)} ({text(p.staff_id)})</td>'
            + _cell(p.texts_sent)
            + _cell(p.replies)
            + _cell(p.students_replied)
            + _cell(p.unanswered)
            + _cell(p.median_answer_minutes)
            + _cell(p.answered_within_business_day_pct, "%")
            + "</tr>"
            for p in digest.staff
        ]
        out += ["</tbody>", "</table>"]
    out += [
        "<footer>Written by nudge. This page needs no network. A business day is Monday to "
        f"Friday in {text(digest.zone)}; holidays are not counted.</footer>",
        "</main>",
        "</body>",
        "</html>",
    ]
    return "\n".join(out) + "\n"


def write_digest_page(digest: Digest, folder: Path | str) -> Path:
    """Write the page to ``folder/<local date>.html`` (made absolute; folders created)."""
    base = Path(os.path.abspath(Path(folder).expanduser()))
    base.mkdir(parents=True, exist_ok=True)
    page = base / f"{digest.day}.html"
    page.write_text(digest_html(digest), encoding="utf-8")
    return page


def _campaign_line(line: CampaignLine) -> str:
    s = line.stats
    failed = ", ".join(f"{code} x{n}" for code, n in s.failed_by_code.items())
    return (
        f"- {line.title}: {s.recipients:,} recipients; delivered {_fig(s.delivered_pct, '%')}"
        f"; replied {_fig(s.reply_pct, '%')} ({s.replied:,}); opted out "
        f"{_fig(s.opt_out_pct, '%')} ({s.opted_out:,}); median first reply "
        f"{_fig(s.median_reply_minutes)} min" + (f"; not delivered: {failed}" if failed else "")
    )


def _staff_line(p: StaffStats) -> str:
    return (
        f"- {p.name} ({p.staff_id}): {p.texts_sent:,} texts; {p.replies:,} replies from "
        f"{p.students_replied:,} students; {p.unanswered:,} unanswered ({p.overdue:,} past a "
        f"business day); median answer {_fig(p.median_answer_minutes)} min; "
        f"{_fig(p.answered_within_business_day_pct, '%')} answered within a business day"
    )


def digest_email(digest: Digest, page: Path) -> tuple[str, str]:
    """Subject and text of the digest email: the figures and where the page is."""
    t = digest.totals()
    lines = [
        f"nudge's outreach digest of the {digest.days} days from {digest.local(digest.since)} "
        f"to {digest.local(digest.until)} (sent once in week {digest.week}).",
        "",
        f"Campaigns: {t['campaigns']}; students messaged: {t['recipients']:,}; SMS delivered "
        f"{_fig(t['delivered_pct'], '%')}; replied {_fig(t['reply_pct'], '%')}; opted out "
        f"{_fig(t['opt_out_pct'], '%')}.",
        f"Replies to staff: {t['replies_to_staff']:,}; not answered yet: {t['unanswered']:,} "
        f"({t['overdue']:,} past a business day).",
        "",
        "Campaigns:",
        *([_campaign_line(line) for line in digest.campaigns] or ["- none this week"]),
        "",
        "Staff:",
        *([_staff_line(p) for p in digest.staff] or ["- nobody texted this week"]),
        "",
        f"Report page (opens offline, with the chart): {page}",
    ]
    subject = (
        f"[nudge] Outreach digest to {digest.day}: {t['campaigns']} campaign(s), "
        f"replied {_fig(t['reply_pct'], '%')}"
    )
    return subject, "\n".join(lines) + "\n"


def digest_markdown(digest: Digest, page: Path) -> str:
    """The markdown artifact: the week's figures as tables, and where the page is."""
    t = digest.totals()
    out = [
        f"## Outreach digest, the {digest.days} days to {digest.day}",
        "",
        f"{digest.local(digest.since)} to {digest.local(digest.until)}: "
        f"**{t['campaigns']}** campaign(s), **{t['recipients']:,}** students messaged, "
        f"replied **{_fig(t['reply_pct'], '%')}**, opted out **{_fig(t['opt_out_pct'], '%')}**.",
        "",
        "| Campaign | Recipients | Delivered | Replied | Opted out | Median reply (min) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    out += [
        f"| {line.title} | {line.stats.recipients:,} | {_fig(line.stats.delivered_pct, '%')} "
        f"| {_fig(line.stats.reply_pct, '%')} | {_fig(line.stats.opt_out_pct, '%')} "
        f"| {_fig(line.stats.median_reply_minutes)} |"
        for line in digest.campaigns
    ]
    out += [
        "",
        "| Staff member | Texts | Replies | Unanswered | Median answer (min) "
        "| Within a business day |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    out += [
        f"| {p.name} ({p.staff_id}) | {p.texts_sent:,} | {p.replies:,} | {p.unanswered:,} "
        f"| {_fig(p.median_answer_minutes)} | {_fig(p.answered_within_business_day_pct, '%')} |"
        for p in digest.staff
    ]
    out += ["", f"Report page (self-contained, opens offline): `{page}`"]
    return "\n".join(out)


def queue_digest_emails(env: Env, digest: Digest, page: Path, recipients: Sequence[str]) -> int:
    """Put the digest email to each of ``recipients`` in the outbox, once per ISO week
    (key ``digest:<week>``): a second run in the same week queues nothing. Returns how many
    were new."""
    subject, body = digest_email(digest, page)
    rows = alert_rows(
        key=f"digest:{digest.week}",
        recipients=recipients,
        subject=subject,
        body=body,
        now=env.now(),
    )
    with Session(env.engine) as s:
        queued = enqueue(session=s, rows=rows)
        s.commit()
    return queued


def send_digest_emails(env: Env) -> dict[str, Any]:
    """Deliver the alert emails waiting in the outbox (the digest's among them); a mail
    failure is reported, never raised (``dispatch-due`` retries it)."""
    sent = deliver_loose(env, kinds=[Kind.ALERT]).emails
    errors = []
    if sent.failed:
        errors.append(f"{sent.failed} email(s) refused for good: {sent.last_error}")
    if sent.retry:
        errors.append(f"{sent.retry} email(s) not sent yet ({sent.last_error}); retried later")
    for error in errors:
        run_logger().warning("outreach digest email: %s", error)
    return {"emails_sent": sent.sent, "email_errors": errors}


def publish_digest(digest: Digest, page: Path) -> bool:
    """Inside a Prefect run, create the ``outreach-digest`` markdown artifact; True if so."""
    if not in_prefect_run():
        return False
    from prefect.artifacts import create_markdown_artifact

    create_markdown_artifact(
        markdown=digest_markdown(digest, page),
        key=DIGEST_KEY,
        description=f"Outreach of the {digest.days} days to {digest.day}: campaigns' outcomes "
        "and staff answers",
    )
    return True


__all__ = [
    "DIGEST_KEY",
    "CampaignLine",
    "Digest",
    "campaign_outcomes",
    "digest_email",
    "digest_html",
    "digest_markdown",
    "gather_digest",
    "iso_week",
    "outcome_description",
    "outcome_key",
    "outcome_table",
    "publish_digest",
    "publish_outcomes",
    "queue_digest_emails",
    "reply_chart_svg",
    "send_digest_emails",
    "write_digest_page",
]
