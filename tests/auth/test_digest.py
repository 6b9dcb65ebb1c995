"""Digest authentication: RFC vectors, the client answering challenges, the verifier."""

from __future__ import annotations

import itertools

import pytest

from sipwire.auth import (
    ALGORITHMS,
    DigestAccount,
    DigestClient,
    digest_response,
    make_challenge,
    verify,
)
from sipwire.message import Challenge, Credentials, Request, Response, parse_message

# RFC 7616 §3.9.1
RFC7616 = {
    "username": "Mufasa",
    "password": "Circle of Life",
    "realm": "http-auth@example.org",
    "method": "GET",
    "uri": "/dir/index.html",
    "nonce": "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
    "cnonce": "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
}
RFC7616_OPAQUE = "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"
RFC7616_MD5 = "8ca523f5e9506fed4657c9700eebdbec"
RFC7616_SHA256 = "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"

# RFC 2617 §3.5 (password with a capital O, unlike RFC 7616's)
RFC2617_AUTHORIZATION = (
    'Digest username="Mufasa", realm="testrealm@host.com", '
    'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="/dir/index.html", qop=auth, '
    'nc=00000001, cnonce="0a4f113b", response="6629fae49393a05397450978507c4ef1", '
    'opaque="5ccc069c403ebaf9f0171e9517f40e41"'
)

REGISTRAR = "biloxi.com"
PASSWORD = "zanzibar"


class Cnonces:
    """A deterministic stand-in for a random cnonce source: cn1, cn2, ..."""

    def __init__(self) -> None:
        self._count = itertools.count(1)
        self.issued: list[str] = []

    def __call__(self) -> str:
        value = f"cn{next(self._count)}"
        self.issued.append(value)
        return value


def bob_response(**params: object) -> str:
    """digest_response() for bob's REGISTER to sip:biloxi.com with ``params`` on top."""
    fields: dict[str, object] = {
        "username": "bob",
        "realm": REGISTRAR,
        "password": PASSWORD,
        "method": "REGISTER",
        "uri": "sip:biloxi.com",
    }
    fields.update(params)
    return digest_response(**fields)  # type: ignore[arg-type]


def register(uri: str = "sip:biloxi.com", body: bytes = b"") -> Request:
    return Request(
        "REGISTER",
        uri,
        headers=[
            ("Via", "SIP/2.0/UDP bobspc.biloxi.com:5060;branch=z9hG4bKnashds7"),
            ("Max-Forwards", "70"),
            ("To", "Bob <sip:bob@biloxi.com>"),
            ("From", "Bob <sip:bob@biloxi.com>;tag=456248"),
            ("Call-ID", "843817637684230@998sdasdh09"),
            ("CSeq", "1826 REGISTER"),
            ("Contact", "<sip:bob@192.0.2.4>"),
        ],
        body=body,
    )


def challenge(request: Request, *values: str, status: int = 401) -> Response:
    header = "WWW-Authenticate" if status == 401 else "Proxy-Authenticate"
    return request.reply(status, headers=[(header, v) for v in values])


def client(*accounts: DigestAccount) -> tuple[DigestClient, Cnonces]:
    cnonces = Cnonces()
    if not accounts:
        accounts = (DigestAccount("bob", PASSWORD),)
    return DigestClient(accounts, cnonces), cnonces


def only(credentials: list[Credentials]) -> Credentials:
    assert len(credentials) == 1
    return credentials[0]


# -- the computation: RFC vectors ------------------------------------------------


@pytest.mark.parametrize(
    ("algorithm", "expected"),
    [("MD5", RFC7616_MD5), ("SHA-256", RFC7616_SHA256), ("sha-256", RFC7616_SHA256)],
)
def test_rfc7616_example(algorithm: str, expected: str) -> None:
    response = digest_response(
        algorithm=algorithm,
        username=RFC7616["username"],
        realm=RFC7616["realm"],
        password=RFC7616["password"],
        method=RFC7616["method"],
        uri=RFC7616["uri"],
        nonce=RFC7616["nonce"],
        nc=1,
        cnonce=RFC7616["cnonce"],
        qop="auth",
    )
    assert response == expected


@pytest.mark.parametrize(
    ("algorithm", "expected"), [("MD5", RFC7616_MD5), ("SHA-256", RFC7616_SHA256)]
)
def test_rfc7616_example_verifies(algorithm: str, expected: str) -> None:
    header = (
        f'Digest username="Mufasa", realm="http-auth@example.org", uri="/dir/index.html", '
        f'algorithm={algorithm}, nonce="{RFC7616["nonce"]}", nc=00000001, '
        f'cnonce="{RFC7616["cnonce"]}", qop=auth, response="{expected}", '
        f'opaque="{RFC7616_OPAQUE}"'
    )
    credentials = Challenge.parse(header)
    assert verify(credentials, method="GET", password="Circle of Life") is True
    assert verify(credentials, method="GET", password="Circle Of Life") is False
    assert verify(credentials, method="POST", password="Circle of Life") is False


def test_rfc2617_example() -> None:
    response = digest_response(
        algorithm="MD5",
        username="Mufasa",
        realm="testrealm@host.com",
        password="Circle Of Life",
        method="GET",
        uri="/dir/index.html",
        nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",
        nc=1,
        cnonce="0a4f113b",
        qop="auth",
    )
    assert response == "6629fae49393a05397450978507c4ef1"
    credentials = Challenge.parse(RFC2617_AUTHORIZATION)
    assert verify(credentials, method="GET", password="Circle Of Life") is True
    assert verify(credentials, method="GET", password="Circle Of Life", username="Mufasa")
    assert not verify(credentials, method="GET", password="Circle Of Life", username="Simba")


def test_rfc2069_example_without_qop() -> None:
    response = digest_response(
        algorithm="MD5",
        username="Mufasa",
        realm="testrealm@host.com",
        password="CircleOfLife",
        method="GET",
        uri="/dir/index.html",
        nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",
        nc=None,
        cnonce=None,
        qop=None,
    )
    assert response == "1949323746fe6a43ef61f9606e7febea"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"algorithm": "SHA3-256"},
        {"qop": "auth-conf"},
        {"nc": None},
        {"cnonce": None},
        {"algorithm": "MD5-sess", "qop": None, "nc": None, "cnonce": None},
        {"nc": 0},
        {"nc": 2**32},
    ],
)
def test_digest_response_rejects_bad_input(kwargs: dict[str, object]) -> None:
    args: dict[str, object] = {"algorithm": "MD5", "nc": 1, "qop": "auth", **RFC7616}
    args.update(kwargs)
    with pytest.raises(ValueError):
        digest_response(**args)  # type: ignore[arg-type]


def test_algorithm_table() -> None:
    assert sorted(a.name for a in ALGORITHMS.values()) == [
        "MD5",
        "MD5-sess",
        "SHA-256",
        "SHA-256-sess",
        "SHA-512-256",
        "SHA-512-256-sess",
    ]


# -- the verifying side ----------------------------------------------------------


def test_make_challenge() -> None:
    assert make_challenge("biloxi.com", "84f1c1ae6cbe5ua9") == (
        'Digest realm="biloxi.com", nonce="84f1c1ae6cbe5ua9", algorithm=MD5, qop="auth"'
    )
    assert make_challenge(
        'a "b" c', "n", algorithm="sha-256", qop="auth,auth-int", stale=True, opaque="op"
    ) == (
        'Digest realm="a \\"b\\" c", nonce="n", opaque="op", algorithm=SHA-256, '
        'qop="auth,auth-int", stale=true'
    )
    assert make_challenge("r", "n", qop=None) == 'Digest realm="r", nonce="n", algorithm=MD5'
    parsed = Challenge.parse(make_challenge("r", "n", algorithm="SHA-512-256-sess"))
    assert parsed.params == {
        "realm": "r",
        "nonce": "n",
        "algorithm": "SHA-512-256-sess",
        "qop": "auth",
    }
    with pytest.raises(ValueError):
        make_challenge("r", "n", algorithm="SHA-1")
    with pytest.raises(ValueError):
        make_challenge("r", "n", qop="auth-conf")


@pytest.mark.parametrize(
    "header",
    [
        "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==",
        'Digest realm="r", nonce="n", uri="sip:r", response="00"',  # no username
        'Digest username="u", nonce="n", uri="sip:r", response="00"',  # no realm
        'Digest username="u", realm="r", uri="sip:r", response="00"',  # no nonce
        'Digest username="u", realm="r", nonce="n", response="00"',  # no uri
        'Digest username="u", realm="r", nonce="n", uri="sip:r"',  # no response
        'Digest username="u", realm="r", nonce="n", uri="sip:r", response="00", algorithm=SHA-1',
        'Digest username="u", realm="r", nonce="n", uri="sip:r", response="00", qop=auth, '
        'nc=1, cnonce="c"',  # nc not 8 hex digits
        'Digest username="u", realm="r", nonce="n", uri="sip:r", response="00", qop=auth',
        'Digest username="u", realm="r", nonce="n", uri="sip:r", response="00", qop=auth-conf,'
        ' nc=00000001, cnonce="c"',
        'Digest username="u", realm="r", nonce="n", uri="sip:r", response="\u00e9", qop=auth,'
        ' nc=00000001, cnonce="c"',
    ],
)
def test_verify_rejects_malformed_credentials(header: str) -> None:
    assert verify(Challenge.parse(header), method="REGISTER", password="p") is False


# -- the client: answering a challenge ---------------------------------------------


def test_register_answered_with_authorization() -> None:
    auth, cnonces = client()
    request = register()
    retry = auth.authorize(request, challenge(request, make_challenge(REGISTRAR, "N1")))
    assert retry is not None
    assert "Authorization" not in request.headers  # the original is left alone
    assert retry.headers.get_all("Proxy-Authorization") == []
    expected = bob_response(
        algorithm="MD5",
        nonce="N1",
        nc=1,
        cnonce="cn1",
        qop="auth",
    )
    assert retry.headers.get_all("Authorization") == [
        f'Digest username="bob", realm="biloxi.com", nonce="N1", uri="sip:biloxi.com", '
        f'response="{expected}", algorithm=MD5, cnonce="cn1", qop=auth, nc=00000001'
    ]
    assert cnonces.issued == ["cn1"]
    # CSeq and Via are the caller's business; everything else is copied.
    assert retry.cseq == request.cseq
    assert retry.headers.get("Via") == request.headers.get("Via")
    assert retry.method == "REGISTER"
    assert str(retry.uri) == "sip:biloxi.com"
    assert verify(only(retry.authorization), method="REGISTER", password=PASSWORD) is True


def test_407_answered_with_proxy_authorization_and_opaque() -> None:
    auth, _ = client()
    request = register("sip:carol@chicago.com")
    request.method = "INVITE"
    response = challenge(request, make_challenge("atlanta.com", "P1", opaque="xyz"), status=407)
    retry = auth.authorize(request, response)
    assert retry is not None
    assert retry.headers.get_all("Authorization") == []
    credentials = only(retry.proxy_authorization)
    assert credentials.params["realm"] == "atlanta.com"
    assert credentials.params["opaque"] == "xyz"
    assert credentials.params["uri"] == "sip:carol@chicago.com"
    assert verify(credentials, method="INVITE", password=PASSWORD) is True


def test_digest_uri_is_the_request_uri_as_received() -> None:
    raw = (
        b"OPTIONS sip:Bob@EXAMPLE.com;Transport=UDP SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP h.example.com;branch=z9hG4bKx\r\n"
        b"From: <sip:alice@example.com>;tag=1\r\n"
        b"To: <sip:bob@example.com>\r\n"
        b"Call-ID: x@h\r\n"
        b"CSeq: 1 OPTIONS\r\n"
        b"Content-Length: 0\r\n\r\n"
    )
    request = parse_message(raw)
    assert isinstance(request, Request)
    auth, _ = client()
    retry = auth.authorize(request, challenge(request, make_challenge("example.com", "n")))
    assert retry is not None
    credentials = only(retry.authorization)
    assert credentials.params["uri"] == "sip:Bob@EXAMPLE.com;Transport=UDP"
    assert bytes(retry).startswith(b"OPTIONS sip:Bob@EXAMPLE.com;Transport=UDP SIP/2.0\r\n")
    assert verify(credentials, method="OPTIONS", password=PASSWORD) is True


def test_auth_username_differs_from_from_user() -> None:
    auth, _ = client(DigestAccount("1001-auth", "s3cret"))
    request = register("sip:pbx.example.com")
    assert request.from_.uri.user == "bob"  # type: ignore[union-attr]
    retry = auth.authorize(request, challenge(request, make_challenge("3CXPhoneSystem", "n")))
    assert retry is not None
    credentials = only(retry.authorization)
    assert credentials.params["username"] == "1001-auth"
    assert retry.from_.uri.user == "bob"  # type: ignore[union-attr]
    assert verify(credentials, method="REGISTER", password="s3cret", username="1001-auth")
    assert not verify(credentials, method="REGISTER", password="s3cret", username="bob")


def test_username_with_quote_is_escaped() -> None:
    auth, _ = client(DigestAccount('o"brien\\x', "pw"))
    request = register()
    retry = auth.authorize(request, challenge(request, make_challenge(REGISTRAR, "n")))
    assert retry is not None
    line = retry.headers.get_all("Authorization")[0]
    assert line.startswith('Digest username="o\\"brien\\\\x", ')
    credentials = only(retry.authorization)
    assert credentials.params["username"] == 'o"brien\\x'
    assert verify(credentials, method="REGISTER", password="pw") is True


def test_no_qop_gives_rfc2069_answer() -> None:
    auth, cnonces = client()
    request = register()
    retry = auth.authorize(request, challenge(request, make_challenge(REGISTRAR, "N", qop=None)))
    assert retry is not None
    credentials = only(retry.authorization)
    assert set(credentials.params) == {
        "username",
        "realm",
        "nonce",
        "uri",
        "response",
        "algorithm",
    }
    assert credentials.params["response"] == bob_response(
        algorithm="MD5",
        nonce="N",
        nc=None,
        cnonce=None,
        qop=None,
    )
    assert cnonces.issued == []
    assert verify(credentials, method="REGISTER", password=PASSWORD) is True


@pytest.mark.parametrize(
    ("offered", "chosen"),
    [
        ('qop="auth,auth-int"', "auth"),
        ('qop="auth-int, auth"', "auth"),
        ('qop="auth-int"', "auth-int"),
        ('qop="AUTH"', "auth"),
        ('qop="auth-conf,auth-int"', "auth-int"),
    ],
)
def test_qop_choice(offered: str, chosen: str) -> None:
    auth, _ = client()
    request = register(body=b"hello")
    header = f'Digest realm="{REGISTRAR}", nonce="n", {offered}'
    retry = auth.authorize(request, challenge(request, header))
    assert retry is not None
    credentials = only(retry.authorization)
    assert credentials.params["qop"] == chosen
    assert f"qop={chosen}, nc=00000001" in retry.headers.get_all("Authorization")[0]
    assert verify(credentials, method="REGISTER", password=PASSWORD, body=b"hello") is True


def test_auth_int_hashes_the_body() -> None:
    auth, _ = client()
    body = b"v=0\r\no=bob 1 1 IN IP4 192.0.2.4\r\n"
    request = register(body=body)
    retry = auth.authorize(
        request, challenge(request, make_challenge(REGISTRAR, "n", qop="auth-int"))
    )
    assert retry is not None
    credentials = only(retry.authorization)
    assert credentials.params["qop"] == "auth-int"
    assert credentials.params["response"] == bob_response(
        algorithm="MD5",
        nonce="n",
        nc=1,
        cnonce="cn1",
        qop="auth-int",
        body=body,
    )
    assert credentials.params["response"] != bob_response(
        algorithm="MD5",
        nonce="n",
        nc=1,
        cnonce="cn1",
        qop="auth",
    )
    assert verify(credentials, method="REGISTER", password=PASSWORD, body=body) is True
    assert verify(credentials, method="REGISTER", password=PASSWORD, body=b"other") is False
    assert verify(credentials, method="REGISTER", password=PASSWORD) is False


def test_sha512_256_round_trip() -> None:
    auth, _ = client()
    request = register()
    header = make_challenge(REGISTRAR, "N512", algorithm="SHA-512-256")
    retry = auth.authorize(request, challenge(request, header))
    assert retry is not None
    credentials = only(retry.authorization)
    assert credentials.params["algorithm"] == "SHA-512-256"
    assert credentials.params["response"] == bob_response(
        algorithm="SHA-512-256",
        nonce="N512",
        nc=1,
        cnonce="cn1",
        qop="auth",
    )
    assert len(credentials.params["response"]) == 64
    assert verify(credentials, method="REGISTER", password=PASSWORD) is True
    assert verify(credentials, method="REGISTER", password="zanzibaR") is False


@pytest.mark.parametrize("algorithm", ["MD5-sess", "SHA-256-sess", "SHA-512-256-sess"])
def test_sess_round_trip_keeps_the_session_cnonce(algorithm: str) -> None:
    auth, cnonces = client()
    request = register()
    header = make_challenge(REGISTRAR, "S1", algorithm=algorithm)
    retry = auth.authorize(request, challenge(request, header))
    assert retry is not None
    first = only(retry.authorization)
    assert first.params["algorithm"] == algorithm
    assert first.params["cnonce"] == "cn1"
    assert verify(first, method="REGISTER", password=PASSWORD) is True
    refresh = register()
    auth.apply(refresh)
    second = only(refresh.authorization)
    assert (second.params["nc"], second.params["cnonce"]) == ("00000002", "cn1")
    assert second.params["response"] != first.params["response"]
    assert verify(second, method="REGISTER", password=PASSWORD) is True
    assert cnonces.issued == ["cn1"]
    # The session key depends on the cnonce: the plain algorithm gives another answer.
    plain = algorithm.removesuffix("-sess")
    assert first.params["response"] != bob_response(
        algorithm=plain,
        nonce="S1",
        nc=1,
        cnonce="cn1",
        qop="auth",
    )


def test_algorithm_names_case_insensitive_and_default_md5() -> None:
    auth, _ = client()
    request = register()
    lower = f'Digest realm="{REGISTRAR}", nonce="n", algorithm=sha-256, qop="auth"'
    retry = auth.authorize(request, challenge(request, lower))
    assert retry is not None
    assert only(retry.authorization).params["algorithm"] == "SHA-256"
    auth2, _ = client()
    missing = f'Digest realm="{REGISTRAR}", nonce="n", qop="auth"'
    retry2 = auth2.authorize(request, challenge(request, missing))
    assert retry2 is not None
    credentials = only(retry2.authorization)
    assert credentials.params["algorithm"] == "MD5"
    assert len(credentials.params["response"]) == 32


def test_strongest_algorithm_wins_for_one_realm() -> None:
    auth, _ = client()
    request = register()
    response = challenge(
        request,
        make_challenge(REGISTRAR, "md5-nonce", algorithm="MD5"),
        make_challenge(REGISTRAR, "sha-nonce", algorithm="SHA-256"),
    )
    retry = auth.authorize(request, response)
    assert retry is not None
    credentials = only(retry.authorization)
    assert (credentials.params["algorithm"], credentials.params["nonce"]) == (
        "SHA-256",
        "sha-nonce",
    )
    assert verify(credentials, method="REGISTER", password=PASSWORD) is True


def test_unknown_algorithm_skipped_for_a_known_one() -> None:
    auth, _ = client()
    request = register()
    response = challenge(
        request,
        f'Digest realm="{REGISTRAR}", nonce="x", algorithm=SHA3-512, qop="auth"',
        make_challenge(REGISTRAR, "md5-nonce"),
    )
    retry = auth.authorize(request, response)
    assert retry is not None
    assert only(retry.authorization).params["nonce"] == "md5-nonce"


def test_several_challenges_on_one_header_line() -> None:
    auth, _ = client()
    request = register()
    line = (
        f'Digest realm="{REGISTRAR}", nonce="a", algorithm=MD5, '
        f'Digest realm="{REGISTRAR}", nonce="b", algorithm=SHA-512-256'
    )
    retry = auth.authorize(request, challenge(request, line))
    assert retry is not None
    assert only(retry.authorization).params["nonce"] == "b"


def test_userhash() -> None:
    auth, _ = client()
    request = register()
    header = make_challenge(REGISTRAR, "n", algorithm="SHA-256", userhash=True)
    retry = auth.authorize(request, challenge(request, header))
    assert retry is not None
    credentials = only(retry.authorization)
    assert credentials.params["userhash"] == "true"
    assert credentials.params["username"] != "bob"
    assert len(credentials.params["username"]) == 64
    assert retry.headers.get_all("Authorization")[0].endswith(", userhash=true")
    assert verify(credentials, method="REGISTER", password=PASSWORD, username="bob") is True
    assert verify(credentials, method="REGISTER", password=PASSWORD) is False
    assert verify(credentials, method="REGISTER", password=PASSWORD, username="eve") is False


# -- the client: retries, giving up -----------------------------------------------


def test_stale_nonce_retried_with_new_nonce() -> None:
    auth, _ = client()
    request = register()
    retry = auth.authorize(request, challenge(request, make_challenge(REGISTRAR, "old")))
    assert retry is not None
    stale = challenge(retry, make_challenge(REGISTRAR, "new", stale=True))
    again = auth.authorize(retry, stale)
    assert again is not None
    credentials = only(again.authorization)
    assert (credentials.params["nonce"], credentials.params["nc"]) == ("new", "00000001")
    assert credentials.params["cnonce"] == "cn2"
    assert verify(credentials, method="REGISTER", password=PASSWORD) is True


def test_wrong_password_gives_up() -> None:
    auth, _ = client(DigestAccount("bob", "wrong"))
    request = register()
    retry = auth.authorize(request, challenge(request, make_challenge(REGISTRAR, "n1")))
    assert retry is not None
    assert verify(only(retry.authorization), method="REGISTER", password=PASSWORD) is False
    assert auth.authorize(retry, challenge(retry, make_challenge(REGISTRAR, "n2"))) is None
    # The same for a proxy.
    proxy_challenge = challenge(request, make_challenge("atlanta.com", "p1"), status=407)
    proxied = auth.authorize(request, proxy_challenge)
    assert proxied is not None
    again = challenge(proxied, make_challenge("atlanta.com", "p2"), status=407)
    assert auth.authorize(proxied, again) is None
    # A new request without credentials is still answered.
    assert auth.authorize(request, challenge(request, make_challenge(REGISTRAR, "n3")))


def test_refused_preemptive_credentials_answered_once() -> None:
    auth, _ = client()
    first = register()
    assert auth.authorize(first, challenge(first, make_challenge(REGISTRAR, "n1"))) is not None
    refresh = register()
    auth.apply(refresh)
    assert only(refresh.authorization).params["nonce"] == "n1"
    # A server that forgot the nonce but does not say stale=true: one fresh answer ...
    retry = auth.authorize(refresh, challenge(refresh, make_challenge(REGISTRAR, "n2")))
    assert retry is not None
    credentials = only(retry.authorization)
    assert (credentials.params["nonce"], credentials.params["nc"]) == ("n2", "00000001")
    # ... and no second one.
    assert auth.authorize(retry, challenge(retry, make_challenge(REGISTRAR, "n3"))) is None


def test_two_realms_in_one_407() -> None:
    auth, _ = client(
        DigestAccount("alice-a", "pw-a", realm="proxy-a.example.com"),
        DigestAccount("alice-b", "pw-b", realm="proxy-b.example.com"),
    )
    request = register("sip:bob@example.net")
    request.method = "INVITE"
    response = challenge(
        request,
        make_challenge("proxy-a.example.com", "na", algorithm="SHA-256"),
        make_challenge("proxy-b.example.com", "nb"),
        status=407,
    )
    retry = auth.authorize(request, response)
    assert retry is not None
    assert retry.headers.get_all("Authorization") == []
    by_realm = {c.params["realm"]: c for c in retry.proxy_authorization}
    assert sorted(by_realm) == ["proxy-a.example.com", "proxy-b.example.com"]
    a, b = by_realm["proxy-a.example.com"], by_realm["proxy-b.example.com"]
    assert (a.params["username"], a.params["algorithm"], a.params["nonce"]) == (
        "alice-a",
        "SHA-256",
        "na",
    )
    assert (b.params["username"], b.params["algorithm"], b.params["nonce"]) == (
        "alice-b",
        "MD5",
        "nb",
    )
    assert verify(a, method="INVITE", password="pw-a") is True
    assert verify(b, method="INVITE", password="pw-b") is True
    assert verify(b, method="INVITE", password="pw-a") is False


def test_realm_without_account_skipped_but_others_answered() -> None:
    auth, _ = client(DigestAccount("alice", "pw", realm="mine.example.com"))
    request = register()
    response = challenge(
        request,
        make_challenge("theirs.example.com", "n1"),
        make_challenge("mine.example.com", "n2"),
        status=407,
    )
    retry = auth.authorize(request, response)
    assert retry is not None
    assert only(retry.proxy_authorization).params["realm"] == "mine.example.com"
    only_theirs = challenge(request, make_challenge("theirs.example.com", "n3"), status=407)
    assert auth.authorize(request, only_theirs) is None


def test_specific_account_preferred_over_wildcard() -> None:
    auth, _ = client(
        DigestAccount("any", "pw-any"),
        DigestAccount("special", "pw-special", realm=REGISTRAR),
    )
    request = register()
    retry = auth.authorize(request, challenge(request, make_challenge(REGISTRAR, "n")))
    assert retry is not None
    assert only(retry.authorization).params["username"] == "special"
    other = auth.authorize(request, challenge(request, make_challenge("elsewhere", "n")))
    assert other is not None
    assert only(other.authorization).params["username"] == "any"


def test_credentials_replaced_per_realm() -> None:
    auth, _ = client()
    request = register("sip:bob@example.net")
    first = auth.authorize(request, challenge(request, make_challenge("p1", "a1"), status=407))
    assert first is not None
    second = auth.authorize(first, challenge(first, make_challenge("p2", "b1"), status=407))
    assert second is not None
    assert [c.params["realm"] for c in second.proxy_authorization] == ["p1", "p2"]
    third = auth.authorize(
        second, challenge(second, make_challenge("p1", "a2", stale=True), status=407)
    )
    assert third is not None
    assert [(c.params["realm"], c.params["nonce"]) for c in third.proxy_authorization] == [
        ("p2", "b1"),
        ("p1", "a2"),
    ]


def test_apply_increments_nc() -> None:
    auth, cnonces = client()
    first = register()
    assert auth.authorize(first, challenge(first, make_challenge(REGISTRAR, "n1"))) is not None
    seen = []
    for _ in range(3):
        refresh = register()
        auth.apply(refresh)
        credentials = only(refresh.authorization)
        assert credentials.params["nonce"] == "n1"
        assert verify(credentials, method="REGISTER", password=PASSWORD) is True
        seen.append((credentials.params["nc"], credentials.params["cnonce"]))
    assert seen == [("00000002", "cn2"), ("00000003", "cn3"), ("00000004", "cn4")]
    assert cnonces.issued == ["cn1", "cn2", "cn3", "cn4"]
    # A new challenge with a new nonce starts the count again.
    again = register()
    auth.apply(again)
    retry = auth.authorize(again, challenge(again, make_challenge(REGISTRAR, "n2", stale=True)))
    assert retry is not None
    assert only(retry.authorization).params["nc"] == "00000001"
    refresh = register()
    auth.apply(refresh)
    assert only(refresh.authorization).params["nc"] == "00000002"


def test_apply_scope() -> None:
    auth, _ = client()
    register_request = register()
    www = challenge(register_request, make_challenge(REGISTRAR, "w"))
    assert auth.authorize(register_request, www) is not None
    invite = register("sip:carol@chicago.com")
    invite.method = "INVITE"
    auth.apply(invite)  # another host: the registrar's credentials stay home
    assert "Authorization" not in invite.headers
    assert "Proxy-Authorization" not in invite.headers
    proxy = challenge(invite, make_challenge("outbound", "p"), status=407)
    assert auth.authorize(invite, proxy) is not None
    bye = register("sip:dave@example.org")
    bye.method = "BYE"
    auth.apply(bye)  # a proxy's credentials go with every request
    credentials = only(bye.proxy_authorization)
    assert (credentials.params["realm"], credentials.params["nc"]) == ("outbound", "00000002")
    assert credentials.params["uri"] == "sip:dave@example.org"
    assert verify(credentials, method="BYE", password=PASSWORD) is True
    assert "Authorization" not in bye.headers
    auth.forget("outbound")
    later = register("sip:dave@example.org")
    auth.apply(later)
    assert "Proxy-Authorization" not in later.headers
    auth.forget()
    home = register()
    auth.apply(home)
    assert "Authorization" not in home.headers


def test_apply_without_challenge_does_nothing() -> None:
    auth, cnonces = client()
    request = register()
    before = bytes(request)
    auth.apply(request)
    assert bytes(request) == before
    assert cnonces.issued == []


# -- malformed or unanswerable responses --------------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        'Digest realm="unterminated',
        'Digest nonce="no-realm"',
        f'Digest realm="{REGISTRAR}"',
        'Basic realm="biloxi.com"',
        "Negotiate",
        f'Digest realm="{REGISTRAR}", nonce="n", algorithm=SHA-1',
        f'Digest realm="{REGISTRAR}", nonce="n", qop="auth-conf"',
        f'Digest realm="{REGISTRAR}", nonce="n", algorithm=MD5-sess',  # -sess without qop
        ",,,",
        "",
        "Digest realm=, nonce=",
        "Digest =",
    ],
)
def test_malformed_or_unsupported_challenge_gives_none(header: str) -> None:
    auth, cnonces = client()
    request = register()
    assert auth.authorize(request, challenge(request, header)) is None
    assert auth.authorize(request, challenge(request, header, status=407)) is None
    assert cnonces.issued == []
    later = register()
    auth.apply(later)
    assert "Authorization" not in later.headers


def test_malformed_line_does_not_hide_a_good_one() -> None:
    auth, _ = client()
    request = register()
    response = challenge(request, 'Digest realm="broken', make_challenge(REGISTRAR, "ok"))
    retry = auth.authorize(request, response)
    assert retry is not None
    assert only(retry.authorization).params["nonce"] == "ok"


def test_not_a_challenge_response() -> None:
    auth, _ = client()
    request = register()
    ok = request.reply(200, headers=[("WWW-Authenticate", make_challenge(REGISTRAR, "n"))])
    assert auth.authorize(request, ok) is None
    assert auth.authorize(request, request.reply(401)) is None
    assert auth.authorize(request, Response(407)) is None


def test_no_accounts() -> None:
    auth = DigestClient([], Cnonces())
    request = register()
    assert auth.authorize(request, challenge(request, make_challenge(REGISTRAR, "n"))) is None
