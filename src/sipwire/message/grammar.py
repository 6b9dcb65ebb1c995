"""RFC 3261 §25 grammar pieces as regular expressions.

Each expression quotes the ABNF it implements. The expressions work on
``str`` values: a message head is decoded once as UTF-8 with
``surrogateescape`` so any byte survives a round trip.
"""

from __future__ import annotations

import re
from typing import Final

# token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~" )
TOKEN_CHARS: Final = r"A-Za-z0-9\-.!%*_+`'~"
TOKEN: Final = f"[{TOKEN_CHARS}]+"
TOKEN_RE: Final = re.compile(TOKEN)

# word = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~" /
#         "(" / ")" / "<" / ">" / ":" / "\" / DQUOTE / "/" / "[" / "]" / "?" / "{" / "}" )
WORD_CHARS: Final = TOKEN_CHARS + r'()<>:\\"/\[\]?{}'
# callid = word [ "@" word ]
CALL_ID_RE: Final = re.compile(f"[{WORD_CHARS}]+(?:@[{WORD_CHARS}]+)?")

# quoted-string = SWS DQUOTE *(qdtext / quoted-pair ) DQUOTE
# qdtext = LWS / %x21 / %x23-5B / %x5D-7E / UTF8-NONASCII
# quoted-pair = "\" (%x00-09 / %x0B-0C / %x0E-7F)
QUOTED_STRING: Final = r'"(?:[^"\\\r\n]|\\[^\r\n])*"'

# LWS = [*WSP CRLF] 1*WSP ; after unfolding only spaces and tabs remain
LWS: Final = r"[ \t]*"

# host = hostname / IPv4address / IPv6reference. The hostname alternative is
# deliberately loose (RFC 3261's toplabel rule is violated in the wild); the
# IPv6 reference takes hex digits, colons and dots (RFC 5118 §4.10 asks a
# robust parser to accept the three-colon form the ABNF admits).
HOST: Final = r"\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9\-.]*[A-Za-z0-9.])?|[A-Za-z0-9]"
HOST_RE: Final = re.compile(HOST)

# generic-param = token [ EQUAL gen-value ]; gen-value = token / host / quoted-string
# One parameter with the SEMI before it. Values may hold IPv6 references
# (RFC 5118 via-received-param-with-delim) and colons (received=2001:db8::1).
PARAM_RE: Final = re.compile(
    rf"{LWS};{LWS}({TOKEN})(?:{LWS}={LWS}({QUOTED_STRING}|[^;,\s\"]+))?{LWS}"
)
# The same, for the common case with no whitespace and no quotes: validates a
# whole parameter string in one match so it can be split with str.split.
PARAMS_PLAIN_RE: Final = re.compile(rf"(?:;{TOKEN}(?:=[^;,\s\"]+)?)*")

# Request-Line = Method SP Request-URI SP SIP-Version CRLF (single spaces only)
REQUEST_LINE_RE: Final = re.compile(rf"({TOKEN}) ([^ \t]+) (SIP/[0-9]+\.[0-9]+)")
# Status-Line = SIP-Version SP Status-Code SP Reason-Phrase CRLF
STATUS_LINE_RE: Final = re.compile(r"(SIP/[0-9]+\.[0-9]+) ([0-9]{3}) (.*)", re.S)
# The version in a request line was matched loosely above so that SIP/7.0 parses
# and earns a 505 rather than a 400 (RFC 4475 §3.3.12).
SIP_VERSION: Final = "SIP/2.0"

# message-header = field-name HCOLON field-value CRLF. Applied to an unfolded
# head with re.M; a line that does not match is a syntax error (the caller
# compares the number of matches with the number of lines).
HEADER_LINE_RE: Final = re.compile(rf"^({TOKEN}){LWS}:{LWS}(.*?){LWS}$", re.M)

# Line folding: CRLF followed by whitespace continues the previous line.
FOLD_RE: Final = re.compile(r"\r?\n[ \t]+")

# sent-protocol = protocol-name SLASH protocol-version SLASH transport
# sent-by = host [ COLON port ]
VIA_RE: Final = re.compile(
    rf"{LWS}({TOKEN}){LWS}/{LWS}({TOKEN}){LWS}/{LWS}({TOKEN})[ \t]+"
    rf"({HOST})(?:{LWS}:{LWS}([0-9]{{1,5}}))?{LWS}"
)

# scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )
SCHEME_RE: Final = re.compile(r"[A-Za-z][A-Za-z0-9+\-.]*")

# 1*DIGIT
DIGITS_RE: Final = re.compile(r"[0-9]+")
