"""domain.mail_text: what an email answer says, its new text only, never a crash."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.mail_text import (
    IncomingMail,
    header_fields,
    html_to_text,
    new_text,
    parse_mail,
)


def mail(
    body: str | bytes, *headers: str, content_type: str = "text/plain; charset=utf-8"
) -> bytes:
    """A raw mail: the given header lines (CRLF), a Content-Type, a blank line, the body."""
    head = [
        "From: Ana Lopez <Ana.Lopez@Students.College.edu>",
        "To: Nudge Texts <texts+c12s3456x0123456789abcdef0123@college.edu>",
        *headers,
        f"Content-Type: {content_type}",
        "",
        "",
    ]
    data = body if isinstance(body, bytes) else body.encode()
    return "\r\n".join(head).encode() + data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


# --- parse_mail: the new text of whole mails -------------------------------------------------

GMAIL = mail(
    "Yes, I can come Tuesday at 3.\n"
    "\n"
    "On Mon, Dec 7, 2026 at 10:00 AM Ana <a@x.edu> wrote:\n"
    "\n"
    "> Can you come to the advising office this week?\n"
    "> Ana\n",
    "Message-ID: <CAF+gmail-1@mail.gmail.com>",
    "Subject: Re: Advising",
)
OUTLOOK = mail(
    "Tuesday works for me.\n"
    "\n"
    "________________________________\n"
    "From: Ana Lopez <a@x.edu>\n"
    "Sent: Monday, December 7, 2026 10:00 AM\n"
    "To: Jordan Smith <jordan@college.edu>\n"
    "Subject: Advising\n"
    "\n"
    "Can you come to the advising office this week?\n",
    "Message-ID: <outlook-1@college.edu>",
    "Subject: RE: Advising",
)
ORIGINAL = mail(
    "Thank you, see you then.\n"
    "\n"
    "-----Original Message-----\n"
    "From: Ana Lopez\n"
    "Subject: Advising\n"
    "\n"
    "Can you come?\n",
    "Message-ID: <original-1@x.edu>",
)
SIGNATURE = mail(
    "I will bring my transcript.\n\n-- \nJordan Smith\nBiology, class of 2027\n",
    "Message-ID: <sig-1@x.edu>",
)
IPHONE = mail(
    "Running late, 10 minutes\n\nSent from my iPhone\n\n> On Dec 7, 2026, at 10:00, Ana <a@x.edu> wrote:\n> Are you coming?\n",
    "Message-ID: <iphone-1@icloud.com>",
)
HTML_ONLY = mail(
    '<html><head><style>p { color: red }</style></head><body><div dir="ltr">'
    "Yes,&nbsp;I&#39;ll be <b>there</b>.<br>Thanks!<p>Jordan</p></div>"
    "<div>On Mon, Dec 7, 2026 at 10:00 AM Ana &lt;a@x.edu&gt; wrote:</div>"
    "<blockquote>Can you come?<br>Ana</blockquote></body></html>",
    "Message-ID: <html-1@x.edu>",
    content_type="text/html; charset=utf-8",
)
LATIN1 = mail(
    "Gracias, allí estaré el miércoles.\n".encode("iso-8859-1"),
    "Message-ID: <latin1-1@x.edu>",
    "Subject: =?iso-8859-1?q?Re=3A_Cita_el_mi=E9rcoles?=",
    content_type="text/plain; charset=iso-8859-1",
)
POISON = mail(
    b"Hi\x00 there\rBcc: evil@x.edu\r\n\x1b[31mred\x1b[0m\tok\n",
    "Message-ID: <poison-1@x.edu>",
    "Subject: Hello\x00 =?utf-8?q?world=0D=0ABcc=3A_evil=40x=2Eedu?=",
)
AUTO_REPLY = mail(
    "I am out of the office until Monday.\n",
    "Message-ID: <ooo-1@x.edu>",
    "Subject: Automatic reply: Advising",
    "Auto-Submitted: auto-replied",
)
ALTERNATIVE = mail(
    "--BOUNDARY\n"
    "Content-Type: text/plain; charset=utf-8\n"
    "Content-Transfer-Encoding: quoted-printable\n"
    "\n"
    "Plain =E2=9C=93 wins.\n"
    "--BOUNDARY\n"
    "Content-Type: text/html; charset=utf-8\n"
    "\n"
    "<p>HTML loses.</p>\n"
    "--BOUNDARY--\n",
    "Message-ID: <alt-1@x.edu>",
    "MIME-Version: 1.0",
    content_type='multipart/alternative; boundary="BOUNDARY"',
)


@pytest.mark.parametrize(
    ("raw", "text", "full_text"),
    [
        pytest.param(
            GMAIL,
            "Yes, I can come Tuesday at 3.",
            "Yes, I can come Tuesday at 3.\n\nOn Mon, Dec 7, 2026 at 10:00 AM Ana <a@x.edu> "
            "wrote:\n\n> Can you come to the advising office this week?\n> Ana",
            id="gmail-on-wrote",
        ),
        pytest.param(
            OUTLOOK,
            "Tuesday works for me.",
            "Tuesday works for me.\n\n________________________________\nFrom: Ana Lopez "
            "<a@x.edu>\nSent: Monday, December 7, 2026 10:00 AM\nTo: Jordan Smith "
            "<jordan@college.edu>\nSubject: Advising\n\nCan you come to the advising office "
            "this week?",
            id="outlook-from-sent-block",
        ),
        pytest.param(
            ORIGINAL,
            "Thank you, see you then.",
            "Thank you, see you then.\n\n-----Original Message-----\nFrom: Ana Lopez\n"
            "Subject: Advising\n\nCan you come?",
            id="original-message",
        ),
        pytest.param(
            SIGNATURE,
            "I will bring my transcript.",
            "I will bring my transcript.\n\n--\nJordan Smith\nBiology, class of 2027",
            id="dash-dash-signature",
        ),
        pytest.param(
            IPHONE,
            "Running late, 10 minutes",
            "Running late, 10 minutes\n\nSent from my iPhone\n\n> On Dec 7, 2026, at 10:00, "
            "Ana <a@x.edu> wrote:\n> Are you coming?",
            id="sent-from-my-iphone",
        ),
        pytest.param(
            HTML_ONLY,
            "Yes, I'll be there.\nThanks!\nJordan",
            "Yes, I'll be there.\nThanks!\nJordan\nOn Mon, Dec 7, 2026 at 10:00 AM Ana "
            "<a@x.edu> wrote:\nCan you come?\nAna",
            id="html-only-blockquote",
        ),
        pytest.param(
            LATIN1,
            "Gracias, allí estaré el miércoles.",
            "Gracias, allí estaré el miércoles.",
            id="iso-8859-1-body",
        ),
        pytest.param(
            POISON,
            "Hi there\nBcc: evil@x.edu\n[31mred[0m\tok",
            "Hi there\nBcc: evil@x.edu\n[31mred[0m\tok",
            id="control-characters",
        ),
        pytest.param(ALTERNATIVE, "Plain ✓ wins.", "Plain ✓ wins.", id="alternative-prefers-plain"),
    ],
)
def test_the_text_is_what_the_writer_added(raw: bytes, text: str, full_text: str) -> None:
    parsed = parse_mail(raw)
    assert parsed.text == text
    assert parsed.full_text == full_text
    assert "\x00" not in parsed.text and "\r" not in parsed.text


def test_a_gmail_answer_is_read_whole() -> None:
    assert parse_mail(GMAIL) == IncomingMail(
        key="<CAF+gmail-1@mail.gmail.com>",
        message_id="<CAF+gmail-1@mail.gmail.com>",
        from_addr="ana.lopez@students.college.edu",
        from_name="Ana Lopez",
        to=["Nudge Texts <texts+c12s3456x0123456789abcdef0123@college.edu>"],
        subject="Re: Advising",
        text="Yes, I can come Tuesday at 3.",
        full_text=parse_mail(GMAIL).full_text,
        auto_reply=False,
    )


def test_headers_are_decoded_and_made_one_line() -> None:
    latin1 = parse_mail(LATIN1)
    assert latin1.subject == "Re: Cita el miércoles"
    poison = parse_mail(POISON)
    assert poison.subject == "Hello world Bcc: evil@x.edu"  # one line: no header smuggling


def test_a_mail_without_message_id_gets_a_stable_content_key() -> None:
    raw = mail("Yes.\n", "Subject: no id")
    first, again = parse_mail(raw), parse_mail(bytes(raw))
    assert first.message_id is None
    assert first.key.startswith("sha256:") and len(first.key) == 7 + 64
    assert again.key == first.key
    # The same mail relayed twice (one more Received line) is the same mail ...
    assert parse_mail(b"Received: from relay.example by mx\r\n" + raw).key == first.key
    # ... another text is not.
    assert parse_mail(mail("No.\n", "Subject: no id")).key != first.key


@pytest.mark.parametrize(
    ("header", "auto"),
    [
        pytest.param("Auto-Submitted: auto-replied", True, id="auto-submitted"),
        pytest.param("Auto-Submitted: auto-generated; owner-email=x@y", True, id="generated"),
        pytest.param("Auto-Submitted: no", False, id="auto-submitted-no"),
        pytest.param("X-Autoreply: yes", True, id="x-autoreply"),
        pytest.param("X-Autorespond: Out of office", True, id="x-autorespond"),
        pytest.param("Precedence: bulk", True, id="precedence-bulk"),
        pytest.param("Precedence: auto_reply", True, id="precedence-auto-reply"),
        pytest.param("Precedence: first-class", False, id="precedence-other"),
        pytest.param("X-Mailer: Outlook", False, id="a-person"),
    ],
)
def test_auto_replies_are_flagged(header: str, auto: bool) -> None:
    assert parse_mail(mail("Away.\n", header)).auto_reply is auto


def test_the_out_of_office_answer_is_flagged() -> None:
    parsed = parse_mail(AUTO_REPLY)
    assert parsed.auto_reply is True
    assert parsed.text == "I am out of the office until Monday."


def test_delivery_reports_are_flagged() -> None:
    bounce = mail(
        "--R\nContent-Type: text/plain\n\nDelivery failed.\n"
        "--R\nContent-Type: message/delivery-status\n\nStatus: 5.1.1\n--R--\n",
        content_type='multipart/report; report-type=delivery-status; boundary="R"',
    )
    parsed = parse_mail(bounce)
    assert parsed.auto_reply is True
    assert parsed.text == "Delivery failed."


def test_recipients_are_every_delivery_header_raw_and_unfolded() -> None:
    raw = (
        b"From: x@y.edu\r\nTo: Nudge\r\n <texts+tok@college.edu>, other@x.edu\r\n"
        b"Cc: cc@x.edu\r\nDelivered-To: texts+tok@college.edu\r\n"
        b"X-Original-To: texts+orig@college.edu\r\nEnvelope-To: texts+env@college.edu\r\n"
        b"Message-ID:\r\n <folded@x.edu>\r\n\r\nbody\r\n"
    )
    expected = [
        "Nudge <texts+tok@college.edu>, other@x.edu",
        "cc@x.edu",
        "texts+tok@college.edu",
        "texts+orig@college.edu",
        "texts+env@college.edu",
    ]
    assert parse_mail(raw).to == expected
    fields = header_fields(raw.split(b"\r\n\r\n")[0] + b"\r\n\r\n")
    assert (fields.message_id, fields.from_, fields.to) == ("<folded@x.edu>", "x@y.edu", expected)


@pytest.mark.parametrize(
    ("from_header", "addr", "name"),
    [
        pytest.param("From: Ana <ANA@X.EDU>", "ana@x.edu", "Ana", id="name-and-address"),
        pytest.param("From: ana@x.edu", "ana@x.edu", "", id="bare-address"),
        pytest.param("From: =?utf-8?q?Jos=C3=A9?= <j@x.edu>", "j@x.edu", "José", id="encoded"),
        pytest.param("From: not an address", "", "", id="garbage"),
        pytest.param("X-No-From: 1", "", "", id="missing"),
    ],
)
def test_the_sender(from_header: str, addr: str, name: str) -> None:
    raw = f"{from_header}\r\nSubject: s\r\n\r\nhi\r\n".encode()
    parsed = parse_mail(raw)
    assert (parsed.from_addr, parsed.from_name) == (addr, name)


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"\x00\xff\xfe garbage \r\n\r\n\x80", id="binary"),
        pytest.param(b"Content-Type: multipart/mixed\r\n\r\nno boundary", id="no-boundary"),
        pytest.param(
            b"Content-Type: text/plain; charset=x-no-such-charset\r\n\r\n\xe9t\xe9", id="charset"
        ),
        pytest.param(b"Content-Type: text/plain; charset=base64\r\n\r\nabc", id="bytes-codec"),
        pytest.param(b"Content-Transfer-Encoding: base64\r\n\r\n!!!not base64", id="bad-base64"),
        pytest.param(b"Subject: =?utf-8?b?!!!?= =?bogus?q?x?=\r\n\r\nx", id="bad-words"),
    ],
)
def test_garbage_never_raises(raw: bytes) -> None:
    parsed = parse_mail(raw)
    assert parsed.key.startswith("sha256:")
    assert isinstance(parsed.text, str)


@settings(max_examples=200, deadline=None, database=None)
@given(st.binary(max_size=2000))
def test_any_bytes_parse(raw: bytes) -> None:
    parsed = parse_mail(raw)
    assert parsed.key
    assert "\x00" not in parsed.text + parsed.subject + parsed.from_name


@settings(max_examples=200, deadline=None, database=None)
@given(st.text(max_size=500))
def test_any_text_and_html_clean_up(text: str) -> None:
    for out in (new_text(text), html_to_text(text), html_to_text(text, keep_quotes=True)):
        assert not any(ch in out for ch in "\x00\r\x1b\u202e")
        assert out == out.strip()


def test_undeclared_charset_falls_back_to_windows_1252() -> None:
    raw = b"Subject: s\r\n\r\ncaf\xe9 \x93ok\x94\r\n"
    assert parse_mail(raw).text == "café “ok”"


def test_latin1_labelled_windows_1252_keeps_its_quotes() -> None:
    raw = mail(b"\x93Yes\x94 \x96 I\x92ll come\n", content_type="text/plain; charset=iso-8859-1")
    assert parse_mail(raw).text == "“Yes” – I’ll come"


def test_outlook_html_reply_is_cut_at_its_header_block() -> None:
    html = (
        '<div dir="ltr">Tuesday works.</div>'
        '<hr style="display:inline-block;width:98%"><div id="divRplyFwdMsg" dir="ltr">'
        '<font face="Calibri"><b>From:</b> Ana Lopez &lt;a@x.edu&gt;<br><b>Sent:</b> Monday, '
        "December 7, 2026 10:00 AM<br><b>To:</b> Texts<br><b>Subject:</b> Advising</font>"
        "<div>&nbsp;</div></div><div>Can you come in?</div>"
    )
    parsed = parse_mail(mail(html, content_type="text/html; charset=utf-8"))
    assert parsed.text == "Tuesday works."
    assert parsed.full_text.endswith("Subject: Advising\nCan you come in?")


def test_an_attached_text_file_is_not_the_body() -> None:
    raw = mail(
        "--M\nContent-Type: text/plain; name=notes.txt\nContent-Disposition: attachment\n\n"
        "attached notes\n--M\nContent-Type: text/html\n\n<p>The body.</p>\n--M--\n",
        content_type='multipart/mixed; boundary="M"',
    )
    assert parse_mail(raw).text == "The body."


def test_format_flowed_is_unwrapped() -> None:
    raw = mail(
        "This is a long line that the \nclient wrapped.\n-- \nsig\n",
        content_type="text/plain; charset=utf-8; format=flowed",
    )
    assert parse_mail(raw).text == "This is a long line that the client wrapped."


# --- new_text ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "Yes.\n\nOn Mon, Dec 7, 2026 at 10:00 AM Ana <a@x.edu> wrote:\n> old\n",
            "Yes.",
            id="gmail",
        ),
        pytest.param(
            "Yes.\n\nOn Mon, Dec 7, 2026 at 10:00 AM Ana Lopez Garcia <\na@x.edu> wrote:\n\n> old",
            "Yes.",
            id="gmail-wrapped-header",
        ),
        pytest.param(
            "Sí.\n\nEl lun, 7 dic 2026 a las 10:00, Ana (<a@x.edu>) escribió:\n> old",
            "Sí.",
            id="gmail-spanish",
        ),
        pytest.param(
            "Ok\n\nFrom: Ana <a@x.edu>\nSent: Monday\nTo: Texts\nSubject: Hi\n\nold",
            "Ok",
            id="outlook-block",
        ),
        pytest.param(
            "Ok\n\n*From:* Ana <a@x.edu>\n*Sent:* Monday\n*To:* Texts\n*Subject:* Hi\n\nold",
            "Ok",
            id="outlook-block-bold",
        ),
        pytest.param(
            "Ok\n\nDe: Ana <a@x.edu>\nEnviado: lunes\nPara: Texts\nAsunto: Hola\n\nold",
            "Ok",
            id="outlook-block-spanish",
        ),
        pytest.param("Ok\n-----Original Message-----\nold", "Ok", id="original-message"),
        pytest.param("Ok\n---------- Forwarded message ---------\nold", "Ok", id="forwarded"),
        pytest.param("See you.\n-- \nJordan", "See you.", id="signature"),
        pytest.param("See you.\n--\nJordan", "See you.", id="signature-trimmed"),
        pytest.param("Yes\n\nSent from my iPhone", "Yes", id="sent-from-iphone"),
        pytest.param("Yes\n\nGet Outlook for iOS<https://aka.ms/o0ukef>", "Yes", id="outlook-ios"),
        pytest.param("Yes\n\nSent from Outlook for Android", "Yes", id="outlook-android"),
        pytest.param("Sí\n\nEnviado desde mi iPhone", "Sí", id="enviado-desde"),
        pytest.param(
            "> Can you come Tuesday?\nYes.\n> And Wednesday?\nNo.", "Yes.\nNo.", id="inline"
        ),
        pytest.param(
            "On Mon, Dec 7, 2026 at 10:00 AM Ana <a@x.edu> wrote:\n> Come?\n\nYes I can.\n--\nJ",
            "Yes I can.",
            id="bottom-posted",
        ),
        pytest.param(
            "On Tuesday I can come.\nOn Friday not.",
            "On Tuesday I can come.\nOn Friday not.",
            id="on-is-not-a-header",
        ),
        pytest.param("My mom wrote: see you", "My mom wrote: see you", id="wrote-in-a-sentence"),
        pytest.param("Plan A -- or B\nFrom: me", "Plan A -- or B\nFrom: me", id="not-a-block"),
        pytest.param(
            "Sent from my phone because I am at work, but yes I will come on Tuesday morning "
            "at nine if that still works for you",
            "Sent from my phone because I am at work, but yes I will come on Tuesday morning "
            "at nine if that still works for you",
            id="sent-from-in-a-long-sentence",
        ),
        pytest.param("  a  \r\n\r\n\r\n\r\nb\x00\x07 \u202eevil\n", "a\n\nb evil", id="tidied"),
        pytest.param("", "", id="empty"),
    ],
)
def test_new_text(text: str, expected: str) -> None:
    assert new_text(text) == expected


# --- html_to_text -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        pytest.param("<p>One</p><p>Two</p>", "One\nTwo", id="paragraphs"),
        pytest.param(
            "<div>One<br>Two</div><div><br></div><div>Three</div>",
            "One\nTwo\n\nThree",
            id="gmail-lines",
        ),
        pytest.param("<script>alert(1)</script><style>p{}</style>Hi", "Hi", id="script-style"),
        pytest.param(
            "Yes<blockquote>old <b>stuff</b><blockquote>older</blockquote></blockquote>after",
            "Yes\nafter",
            id="blockquote",
        ),
        pytest.param(
            'Yes<div class="gmail_quote">On … wrote:<blockquote>old</blockquote></div>',
            "Yes",
            id="gmail-quote",
        ),
        pytest.param("A &amp; B&nbsp;&lt;ok&gt;", "A & B <ok>", id="entities"),
        pytest.param("<ul><li>one</li><li>two</li></ul>", "- one\n- two", id="list"),
        pytest.param("<pre>a\n  b</pre>", "a\nb", id="pre"),
        pytest.param("Hello   <b>big</b>\n\n  world", "Hello big world", id="spaces"),
        pytest.param("Yes<blockquote>unclosed", "Yes", id="unclosed-quote"),
        pytest.param("<p>a\x00b</p>", "ab", id="nul"),
    ],
)
def test_html_to_text(html: str, expected: str) -> None:
    assert html_to_text(html) == expected


def test_html_quotes_can_be_kept() -> None:
    assert html_to_text("Yes<blockquote>old</blockquote>", keep_quotes=True) == "Yes\nold"


SIGN_OFFS = [
    ("name-alone", "Tuesday at 2 works.\n\nTess", "Tuesday at 2 works."),
    ("dash-name", "See you then.\n\n— Tess", "See you then."),
    ("best-full-name", "Approved.\n\nBest,\nTess Adams", "Approved."),
    ("thanks-name", "Got it.\n\nThanks! Tess", "Got it."),
    ("no-blank-line-kept", "Tess here: Tuesday works.", "Tess here: Tuesday works."),
    ("other-name-kept", "Ask Omar.\n\nOmar Reyes", "Ask Omar.\n\nOmar Reyes"),
    # Found by trying to break it: a last paragraph that names the writer is not always
    # a sign-off.
    (
        "a-place-named-after-them-kept",
        "Yes, come by tomorrow at 3.\n\nAdams Hall, room 210.",
        "Yes, come by tomorrow at 3.\n\nAdams Hall, room 210.",
    ),
    (
        "their-name-in-a-sentence-kept",
        "Hi.\n\nAsk Tess at the desk.",
        "Hi.\n\nAsk Tess at the desk.",
    ),
    (
        "long-paragraph-kept",
        "Hi.\n\nTess will be at the front desk all afternoon to help you with it.",
        "Hi.\n\nTess will be at the front desk all afternoon to help you with it.",
    ),
]


@pytest.mark.parametrize(
    ("text", "expected"), [r[1:] for r in SIGN_OFFS], ids=[r[0] for r in SIGN_OFFS]
)
def test_a_sign_off_naming_the_writer_is_dropped(text: str, expected: str) -> None:
    from domain.mail_quotes import drop_sign_off

    assert drop_sign_off(text, ["Tess", "", "Adams"]) == expected


BROKEN_BY_AN_OUTSIDER = [
    (
        "sent-via-in-a-sentence",
        "Hi Ana,\nSent via FedEx today, your I-20 arrives Thursday.\nCall me if it does not.",
        "Hi Ana,\nSent via FedEx today, your I-20 arrives Thursday.\nCall me if it does not.",
    ),
    (
        "on-wrote-in-a-sentence",
        "On Monday, bring the essay you wrote:\nthe one about your family.\nSee you then.",
        "On Monday, bring the essay you wrote:\nthe one about your family.\nSee you then.",
    ),
    (
        "sent-from-footer-still-cut",
        "See you at 3.\n\nSent from my iPhone\n\nOn Mon, Dec 7, 2026 at 9:00 AM a@x.edu wrote:\n> hi",
        "See you at 3.",
    ),
]


@pytest.mark.parametrize(
    ("text", "expected"),
    [r[1:] for r in BROKEN_BY_AN_OUTSIDER],
    ids=[r[0] for r in BROKEN_BY_AN_OUTSIDER],
)
def test_sentences_that_look_like_reply_furniture_are_kept(text: str, expected: str) -> None:
    assert new_text(text) == expected
