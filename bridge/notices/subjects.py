"""The topic of a mail subject: without reply and forward prefixes, and without our own.

Pure code. A conversation by SMS2Mail goes round: our mail "SMS from +49170…: Re: Meeting"
is answered ("Re: SMS from +49170…: Re: Meeting"), the answer goes out as SMS, the phone
answers again — and without this the next subject would read "SMS from +49170…: Re: Re:
SMS from +49170…: Re: Meeting", one layer longer per round trip. `reply_topic` strips
every leading `Re:`/`AW:`/`Fwd:`/`WG:`/… (in the common languages, with counters such as
`Re[2]:` or `Re^2:`) and every leading `SMS from <sender>:` our templates wrote, so the
subject keeps one prefix however long the conversation.
"""

from __future__ import annotations

import re

_PREFIX = re.compile(
    r"""^\s*(?:
        (?:re|aw|antw|antwort|sv|vs|odp|rif|r|ref|res|tr|fw|fwd|wg|doorst|enc|rv)
        \s*(?:\[\d+\]|\^\d+|\(\d+\))?\s*:
      | sms\s+from\s+\S+\s*:
    )\s*""",
    re.IGNORECASE | re.VERBOSE,
)


def reply_topic(subject: str) -> str:
    """`subject` without leading reply/forward prefixes and "SMS from …:" prefixes."""
    text = " ".join(subject.split())
    while True:
        stripped = _PREFIX.sub("", text, count=1)
        if stripped == text:
            return text
        text = stripped
