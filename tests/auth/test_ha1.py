"""HA1 and verifying from it: RFC 7616 §3.9.1 vectors, -sess, agreement with verify()."""

from __future__ import annotations

import pytest

from sipwire.auth import ALGORITHMS, digest_response, verify
from sipwire.auth.algorithms import userhash
from sipwire.auth.ha1 import BASE_ALGORITHMS, ha1_for, ha1_table, verify_ha1
from sipwire.message import Challenge, Credentials

# RFC 7616 §3.9.1: Mufasa / "Circle of Life" in realm http-auth@example.org.
USERNAME = "Mufasa"
REALM = "http-auth@example.org"
PASSWORD = "Circle of Life"
NONCE = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v"
CNONCE = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"
# H(A1) = H("Mufasa:http-auth@example.org:Circle of Life"), computed with md5sum / sha256sum.
HA1_MD5 = "3d78807defe7de2157e2b0b6573a855f"
HA1_SHA256 = "7987c64c30e25f1b74be53f966b49b90f2808aa92faf9a00262392d7b4794232"
# The responses printed in RFC 7616 §3.9.1.
RESPONSE_MD5 = "8ca523f5e9506fed4657c9700eebdbec"
RESPONSE_SHA256 = "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"


def rfc_credentials(algorithm: str, response: str) -> Credentials:
    return Challenge.parse(
        f'Digest username="{USERNAME}", realm="{REALM}", uri="/dir/index.html", '
        f'algorithm={algorithm}, nonce="{NONCE}", nc=00000001, cnonce="{CNONCE}", '
        f'qop=auth, response="{response}"'
    )


@pytest.mark.parametrize(("algorithm", "ha1"), [("MD5", HA1_MD5), ("SHA-256", HA1_SHA256)])
def test_rfc7616_ha1(algorithm: str, ha1: str) -> None:
    assert ha1_for(algorithm, USERNAME, REALM, PASSWORD) == ha1
    assert ha1_for(algorithm.lower(), USERNAME, REALM, PASSWORD) == ha1


@pytest.mark.parametrize(
    ("algorithm", "ha1", "response"),
    [("MD5", HA1_MD5, RESPONSE_MD5), ("SHA-256", HA1_SHA256, RESPONSE_SHA256)],
)
def test_rfc7616_response_verifies_from_ha1(algorithm: str, ha1: str, response: str) -> None:
    credentials = rfc_credentials(algorithm, response)
    assert verify_ha1(credentials, method="GET", ha1_by_algorithm={algorithm: ha1})
    assert verify_ha1(credentials, method="GET", ha1_by_algorithm={algorithm.lower(): ha1})
    assert verify_ha1(credentials, method="GET", ha1_by_algorithm={algorithm: ha1.upper()})
    assert not verify_ha1(credentials, method="POST", ha1_by_algorithm={algorithm: ha1})
    wrong = ha1_for(algorithm, USERNAME, REALM, "Circle Of Life")
    assert not verify_ha1(credentials, method="GET", ha1_by_algorithm={algorithm: wrong})


def test_missing_algorithm_in_table_is_false() -> None:
    credentials = rfc_credentials("SHA-256", RESPONSE_SHA256)
    assert not verify_ha1(credentials, method="GET", ha1_by_algorithm={"MD5": HA1_MD5})
    assert not verify_ha1(credentials, method="GET", ha1_by_algorithm={})


def test_username_is_checked() -> None:
    credentials = rfc_credentials("MD5", RESPONSE_MD5)
    table = {"MD5": HA1_MD5}
    assert verify_ha1(credentials, method="GET", ha1_by_algorithm=table, username=USERNAME)
    assert not verify_ha1(credentials, method="GET", ha1_by_algorithm=table, username="Simba")


def test_ha1_table_covers_every_base_algorithm() -> None:
    table = ha1_table(USERNAME, REALM, PASSWORD)
    assert set(table) == set(BASE_ALGORITHMS) >= {"MD5", "SHA-256"}
    assert table["MD5"] == HA1_MD5 and table["SHA-256"] == HA1_SHA256
    assert all(not name.endswith("-sess") for name in BASE_ALGORITHMS)


@pytest.mark.parametrize("algorithm", ["MD5-sess", "SHA-256-sess", "RC4"])
def test_ha1_for_refuses_sess_and_unknown(algorithm: str) -> None:
    with pytest.raises(ValueError):
        ha1_for(algorithm, USERNAME, REALM, PASSWORD)


def _header(algorithm: str, qop: str | None, response: str, **extra: str) -> Credentials:
    parts = [
        f'username="{USERNAME}"',
        f'realm="{REALM}"',
        f'nonce="{NONCE}"',
        'uri="sip:biloxi.com"',
        f"algorithm={algorithm}",
        f'response="{response}"',
    ]
    if qop is not None:
        parts += [f"qop={qop}", "nc=0000000a", f'cnonce="{CNONCE}"']
    elif algorithm.endswith("-sess"):
        parts.append(f'cnonce="{CNONCE}"')
    parts += [f'{k}="{v}"' for k, v in extra.items()]
    return Challenge.parse("Digest " + ", ".join(parts))


@pytest.mark.parametrize("algorithm", sorted(a.name for a in ALGORITHMS.values()))
@pytest.mark.parametrize("qop", ["auth", "auth-int", None])
def test_agrees_with_verify_from_the_password(algorithm: str, qop: str | None) -> None:
    body = b"v=0\r\n"
    response = digest_response(
        algorithm=algorithm,
        username=USERNAME,
        realm=REALM,
        password=PASSWORD,
        method="REGISTER",
        uri="sip:biloxi.com",
        nonce=NONCE,
        nc=None if qop is None else 10,
        cnonce=CNONCE if qop is not None or algorithm.endswith("-sess") else None,
        qop=qop,
        body=body,
    )
    credentials = _header(algorithm, qop, response)
    table = ha1_table(USERNAME, REALM, PASSWORD)
    assert verify(credentials, method="REGISTER", password=PASSWORD, body=body)
    assert verify_ha1(credentials, method="REGISTER", ha1_by_algorithm=table, body=body)
    # -sess reads the base algorithm's HA1; auth-int hashes the body.
    if qop == "auth-int":
        assert not verify_ha1(credentials, method="REGISTER", ha1_by_algorithm=table)


def test_userhash_credentials() -> None:
    response = digest_response(
        algorithm="SHA-256",
        username=USERNAME,
        realm=REALM,
        password=PASSWORD,
        method="REGISTER",
        uri="sip:biloxi.com",
        nonce=NONCE,
        nc=10,
        cnonce=CNONCE,
        qop="auth",
    )
    hashed = userhash(ALGORITHMS["sha-256"], USERNAME, REALM)
    text = str(_header("SHA-256", "auth", response, userhash="true")).replace(
        f'username="{USERNAME}"', f'username="{hashed}"'
    )
    credentials = Challenge.parse(text)
    table = {"SHA-256": HA1_SHA256}
    assert verify_ha1(credentials, method="REGISTER", ha1_by_algorithm=table, username=USERNAME)
    assert not verify_ha1(credentials, method="REGISTER", ha1_by_algorithm=table)
    assert not verify_ha1(credentials, method="REGISTER", ha1_by_algorithm=table, username="x")


@pytest.mark.parametrize(
    "header",
    [
        "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==",
        'Digest username="Mufasa", realm="r", nonce="n", uri="/"',  # no response
        'Digest username="Mufasa", realm="r", nonce="n", uri="/", response="00", algorithm=RC4',
        'Digest username="Mufasa", realm="r", nonce="n", uri="/", response="00", qop=auth, '
        'nc=1, cnonce="c"',  # nc not 8 hex digits
        'Digest username="Mufasa", realm="r", nonce="n", uri="/", response="00", qop=auth',
        'Digest username="Mufasa", realm="r", nonce="n", uri="/", response="00", '
        "algorithm=MD5-sess",  # -sess without cnonce
        'Digest username="Mufasa", realm="r", nonce="n", uri="/", response="\u00e9", '
        'qop=bogus, nc=00000001, cnonce="c"',
    ],
)
def test_malformed_credentials_are_false(header: str) -> None:
    assert not verify_ha1(
        Challenge.parse(header), method="GET", ha1_by_algorithm=ha1_table("Mufasa", "r", "p")
    )
