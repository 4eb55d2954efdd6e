"""The new text of an email answer: quoted history and signatures cut, HTML made text.

:func:`new_text` keeps only what the writer added above (or, failing that, below) the
quoted conversation: ``On … wrote:`` headers in several languages, ``> `` lines, Outlook's
``From: … Sent: …`` block, ``-----Original Message-----``, forwarded messages, the ``-- ``
signature and ``Sent from my iPhone`` footers. :func:`html_to_text` turns an HTML body into
text with ``html.parser`` (scripts and styles dropped, blocks on their own lines, the quoted
``blockquote`` and Gmail/Yahoo quote blocks left out unless asked for).

Written here with the standard library rather than with a reply-parsing package: everything
in ``domain/`` is pure and standard-library only (tests/domain/test_purity.py), and the
table-driven tests in tests/domain/test_mail_text.py pin each form it recognises.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable
from html.parser import HTMLParser

_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ufeff]")
_NEWLINES = re.compile("\r\n|\r|\u2028|\u2029|\x85")
_SPACES = re.compile(r"\s+")
_BLANK_RUNS = re.compile(r"\n{3,}")


def clean_text(text: str) -> str:
    """Newlines made ``\\n``; control characters (but tab and newline) and bidi overrides
    removed."""
    return _CONTROL.sub("", _NEWLINES.sub("\n", text))


def tidy(lines: Iterable[str]) -> str:
    """Lines joined: trailing spaces dropped, at most one blank line in a row, trimmed."""
    text = "\n".join(line.rstrip() for line in lines)
    return _BLANK_RUNS.sub("\n\n", text).strip()


_clean = clean_text
_tidy = tidy


# --- the new text of a reply -----------------------------------------------------------------

# "On Mon, Dec 7, 2026 at 10:00 AM Ana <a@x.edu> wrote:" and its usual translations; the
# header may be wrapped over a few lines.
_WROTE_START = re.compile(r"^(?:On|El|Le|Am|Em|Il|Op|Den|Dne)\s", re.IGNORECASE)
_WROTE_VERB = (
    r"(?:wrote|escribió|escribio|a\s+écrit|a\s+ecrit|schrieb|escreveu|ha\s+scritto|schreef"
    r"|skrev|napsal)"
)
_WROTE = re.compile(
    r"^(?:On|El|Le|Am|Em|Il|Op|Den|Dne)\s.*\b" + _WROTE_VERB + r"\b.*:$", re.IGNORECASE
)
# "Ana Lopez <a@x.edu> wrote:" (no date, some clients)
_ADDR_WROTE = re.compile(r"^.*\S@\S.*\s" + _WROTE_VERB + r"\s*:$", re.IGNORECASE)
_ORIGINAL = re.compile(
    r"^-{2,}\s*(?:Original Message|Mensaje original|Message d'origine|Ursprüngliche Nachricht"
    r"|Mensagem original|Messaggio originale|Forwarded message|Mensaje reenviado"
    r"|Message transféré)\s*-{2,}$",
    re.IGNORECASE,
)
_FORWARD = re.compile(r"^Begin forwarded message:$", re.IGNORECASE)
_SIGNATURE = re.compile(r"^--\s*$")
_SENT_FROM = re.compile(
    r"^(?:Sent from (?:my|Outlook|Mail|Yahoo|Samsung|AOL)|Sent via|Get Outlook for"
    r"|Enviado desde mi|Enviado do meu|Envoyé de mon|Envoyé depuis|Von meinem|Inviato da)\b",
    re.IGNORECASE,
)
_MAX_SENT_FROM = 80  # a longer line starting "Sent from my…" is a sentence, not a footer
_HEADER_LINE = re.compile(r"^\*?\s*([^\W\d_][^:*]{0,20}?)\s*\*?\s*:\s*\*?")
_FROM_NAMES = frozenset({"from", "de", "von", "da", "van", "från", "fra", "od"})
_DATE_NAMES = frozenset(
    [
        "sent",
        "date",
        "enviado",
        "fecha",
        "gesendet",
        "datum",
        "envoyé",
        "inviato",
        "data",
        "verzonden",
        "skickat",
        "sendt",
        "odesláno",
    ]
)
_OTHER_NAMES = frozenset(
    [
        "to",
        "cc",
        "subject",
        "para",
        "asunto",
        "an",
        "betreff",
        "à",
        "a",
        "objet",
        "oggetto",
        "aan",
        "onderwerp",
        "till",
        "ämne",
        "til",
        "emne",
        "komu",
        "předmět",
        "assunto",
    ]
)
_SEPARATOR = re.compile(r"^[_\-=~]{5,}$")
_MAX_HEADER_LINES = 4  # lines an "On … wrote:" header may be wrapped over


def _wrote_header(lines: list[str], i: int) -> int:
    """How many lines (1–4) the "On … wrote:" header starting at line ``i`` spans; 0 when
    there is none there."""
    first = lines[i].strip()
    if not first or not (_WROTE_START.match(first) or "@" in first):
        return 0
    joined = ""
    for span in range(1, _MAX_HEADER_LINES + 1):
        if i + span > len(lines):
            break
        line = lines[i + span - 1].strip()
        if not line:
            break
        joined = f"{joined} {line}".strip()
        if len(joined) > 600:
            break
        if (_WROTE.match(joined) or _ADDR_WROTE.match(joined)) and _HEADERISH.search(joined):
            return span
    return 0


#: A real "On … wrote:" header carries a date, a time or an address; "On Monday, bring the
#: essay you wrote:" is a sentence.
_HEADERISH = re.compile(r"\d|@")


def _only_history_after(lines: list[str], i: int) -> bool:
    """True when nothing but blank lines or quoted history follows line ``i``: a "Sent from
    my iPhone" there is a footer; followed by more of the answer it is a sentence."""
    for j in range(i + 1, len(lines)):
        stripped = lines[j].strip()
        if not stripped:
            continue
        return bool(
            _is_quote(lines[j])
            or _wrote_header(lines, j)
            or _ORIGINAL.match(stripped)
            or _FORWARD.match(stripped)
            or _SEPARATOR.match(stripped)
            or _outlook_block(lines, j)
        )
    return True


def _header_name(line: str) -> str | None:
    match = _HEADER_LINE.match(line.strip())
    return match.group(1).strip().lower() if match else None


def _outlook_block(lines: list[str], i: int) -> bool:
    """Line ``i`` starts Outlook's quoted header block: ``From:``, then (before a blank
    line) ``Sent:``/``Date:`` and ``To:``/``Subject:``/``Cc:`` (or their translations)."""
    if _header_name(lines[i]) not in _FROM_NAMES:
        return False
    dated = other = False
    for line in lines[i + 1 : i + 9]:
        if not line.strip():
            break
        name = _header_name(line)
        dated = dated or name in _DATE_NAMES
        other = other or name in _OTHER_NAMES
    return dated and other


def _is_quote(line: str) -> bool:
    return line.lstrip().startswith(">")


def new_text(text: str) -> str:
    """What the writer of a reply added: the text above the first quoted-history marker
    (``On … wrote:``, Outlook's ``From:``/``Sent:`` block, ``-----Original Message-----``,
    a forwarded-message line), the ``-- `` signature or a ``Sent from my iPhone``-style
    footer; ``>`` quoted lines removed anywhere. Control characters removed, trailing spaces
    and extra blank lines dropped, trimmed.

    A reply written below the quote (bottom-posting) gives the text after it instead.
    """
    return _new_text(_clean(text).split("\n"), bottom=True)


def _new_text(lines: list[str], *, bottom: bool) -> str:
    cut = len(lines)
    after_quote: int | None = None  # first line after an "On … wrote:" header
    for i, line in enumerate(lines):
        stripped = line.strip()
        if _is_quote(line):
            continue
        span = _wrote_header(lines, i)
        if span:
            cut, after_quote = i, i + span
            break
        if (
            _ORIGINAL.match(stripped)
            or _FORWARD.match(stripped)
            or _SIGNATURE.match(line)
            or (
                _SENT_FROM.match(stripped)
                and len(stripped) <= _MAX_SENT_FROM
                and _only_history_after(lines, i)
            )
            or _outlook_block(lines, i)
        ):
            cut = i
            break
    head = [line for line in lines[:cut] if not _is_quote(line)]
    while head and (not head[-1].strip() or _SEPARATOR.match(head[-1].strip())):
        head.pop()  # the blank lines and the "______" rule above the quoted history
    result = _tidy(head)
    if not result and bottom and after_quote is not None:
        # Nothing above the quote: the answer may be below it (bottom-posting).
        rest = [line for line in lines[after_quote:] if not _is_quote(line)]
        return _new_text(rest, bottom=False)
    return result


# --- HTML to text ----------------------------------------------------------------------------

_SKIP = frozenset({"script", "style", "head", "title", "template", "noscript", "svg"})
_BLOCK = frozenset(
    [
        "p",
        "div",
        "tr",
        "table",
        "ul",
        "ol",
        "dl",
        "dt",
        "dd",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "section",
        "article",
        "header",
        "footer",
        "aside",
        "nav",
        "main",
        "pre",
        "address",
        "figure",
        "figcaption",
        "form",
        "fieldset",
        "center",
        "body",
        "html",
    ]
)
_HTML_SPACE = re.compile(r"[ \t\r\n\f]+")
_QUOTE_CLASSES = ("gmail_quote", "yahoo_quoted", "moz-cite-prefix")


class _TextParser(HTMLParser):
    """Collects an HTML document's visible text with line breaks for ``<br>`` and the block
    elements; skips scripts, styles and (unless kept) quoted history.

    A block boundary breaks the line only when text is on it (``</p><p>`` is one break, as a
    browser shows Outlook's one-paragraph-per-line mail); ``<br>`` always breaks it."""

    def __init__(self, *, keep_quotes: bool) -> None:
        super().__init__(convert_charrefs=True)
        self.keep_quotes = keep_quotes
        self.out: list[str] = []
        self.skipping: str | None = None  # the tag whose content is being skipped
        self.skip_depth = 0
        self.pre = 0
        self.on_line = False  # text written since the last line break

    def _skip_root(self, tag: str, attrs: list[tuple[str, str | None]]) -> bool:
        if tag in _SKIP:
            return True
        if self.keep_quotes:
            return False
        if tag == "blockquote":
            return True
        classes = " ".join(value or "" for name, value in attrs if name == "class").lower()
        return tag == "div" and any(name in classes for name in _QUOTE_CLASSES)

    def _break(self, *, hard: bool = False) -> None:
        if hard or self.on_line:
            self.out.append("\n")
            self.on_line = False

    def _write(self, text: str) -> None:
        self.out.append(text)
        self.on_line = self.on_line or bool(text.strip())

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.skipping is not None:
            if tag == self.skipping:
                self.skip_depth += 1
            return
        if self._skip_root(tag, attrs):
            self.skipping, self.skip_depth = tag, 1
            if tag not in _SKIP:
                self._break()  # a quote is a block: the text around it is on other lines
            return
        if tag == "br":
            self._break(hard=True)
        elif tag == "li":
            self._break()
            self._write("- ")
        elif tag in ("td", "th"):
            self._write(" ")
        elif tag in _BLOCK or tag in ("hr", "blockquote"):
            self._break()
        if tag == "pre":
            self.pre += 1

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.skipping is None and tag == "br":
            self._break(hard=True)
        elif self.skipping is None and (tag in _BLOCK or tag == "hr"):
            self._break()

    def handle_endtag(self, tag: str) -> None:
        if self.skipping is not None:
            if tag == self.skipping:
                self.skip_depth -= 1
                if self.skip_depth <= 0:
                    if self.skipping not in _SKIP:
                        self._break()
                    self.skipping = None
            return
        if tag in _BLOCK or tag in ("li", "blockquote"):
            self._break()
        if tag == "pre":
            self.pre = max(0, self.pre - 1)

    def handle_data(self, data: str) -> None:
        if self.skipping is not None:
            return
        if self.pre:
            for n, line in enumerate(data.split("\n")):
                if n:
                    self._break(hard=True)
                self._write(line)
        else:
            self._write(_HTML_SPACE.sub(" ", data))


def html_to_text(html: str, *, keep_quotes: bool = False) -> str:
    """The visible text of an HTML mail body: scripts, styles and the head dropped,
    ``<br>``/``<p>``/``<div>`` and other blocks made line breaks, entities decoded, spaces
    collapsed, control characters removed. Quoted history (``<blockquote>``, Gmail's and
    Yahoo's quote containers) is dropped unless ``keep_quotes``."""
    parser = _TextParser(keep_quotes=keep_quotes)
    with contextlib.suppress(Exception):  # html.parser is lenient; never let a body stop a mail
        parser.feed(_clean(html))
        parser.close()
    text = "".join(parser.out).replace("\xa0", " ")
    lines = [_SPACES.sub(" ", line).strip() if line.strip() else "" for line in text.split("\n")]
    return _tidy(lines)


#: A closing paragraph longer than this is a message, not a sign-off.
_MAX_SIGN_OFF = 60
_WORD = re.compile(r"[^\W\d_]+")


#: Words a closing may hold besides the writer's name.
_CLOSINGS = frozenset(
    {
        "best",
        "thanks",
        "thank",
        "you",
        "regards",
        "kind",
        "warm",
        "warmly",
        "cheers",
        "sincerely",
        "take",
        "care",
        "talk",
        "soon",
        "see",
        "later",
        "all",
        "the",
        "very",
        "many",
        "yours",
        "cordially",
        "respectfully",
        "gracias",
        "saludos",
    }
)


def drop_sign_off(text: str, names: Iterable[str]) -> str:
    """``text`` without its closing sign-off: a last paragraph of at most three short lines
    (60 characters in all) made of the writer's name (``names``: their first, preferred or
    last name) and closing words only, such as ``Tess``, ``— Tess``, ``Best,\nTess Adams``
    or ``Thanks! Tess``. A student should get the answer, not the signature; a paragraph
    with any other word (``Adams Hall, room 210``, ``Ask Tess at the desk``) is kept."""
    wanted = {n.casefold() for name in names for n in _WORD.findall(name or "")}
    body = text.rstrip()
    head, sep, last = body.rpartition("\n\n")
    if not sep or not wanted:
        return text
    lines = [line.strip() for line in last.splitlines() if line.strip()]
    if not lines or len(lines) > 3 or len(" ".join(lines)) > _MAX_SIGN_OFF:
        return text
    if any(ch.isdigit() for ch in last):
        return text
    words = [w.casefold() for w in _WORD.findall(" ".join(lines))]
    named = any(w in wanted for w in words)
    only_closing = all(w in wanted or w in _CLOSINGS for w in words)
    return head.rstrip() if named and only_closing else text


__all__ = ["clean_text", "drop_sign_off", "html_to_text", "new_text", "tidy"]
