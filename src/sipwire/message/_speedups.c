/*
 * sipwire.message._speedups: an optional C accelerator for parse_message().
 *
 * parse(data) parses the common forms of a SIP message (RFC 3261 §7, §25)
 * and returns the same Request/Response object, attribute for attribute,
 * that the pure-Python reference parser (parser.parse_message_py) builds.
 * Anything outside the fast subset below, and anything the reference would
 * reject, makes parse() return None: the caller then runs the Python parser,
 * which produces the result or the exact ParseError. parse() never raises
 * anything but MemoryError.
 *
 * The fast subset:
 *   - no leading CRLF; the header section ends at the first CRLFCRLF; it is
 *     valid UTF-8, has no bare CR or LF and no line folding;
 *   - Request-Line = Method SP ( "sip:" / "sips:" ) SIP-URI-body SP "SIP/2.0"
 *     Status-Line  = "SIP/2.0" SP 3DIGIT SP Reason-Phrase   (100 <= status <= 699)
 *   - header names are tokens (trailing blanks allowed before the colon);
 *   - Via: via-parms in the form of via.py's _VIA_FAST_RE, one per line or
 *     several separated by commas (no quotes nor angle brackets in the line),
 *     their rport and ttl in range when they hold digits (via._check_numbers);
 *   - From/To: address.py's _SIP_NAME_ADDR_RE (quoted display names without
 *     quoted-pairs) or _SIP_BARE_RE;
 *   - no "%" escapes and no "?headers" in SIP URIs;
 *   - Call-ID, CSeq, Max-Forwards, Content-Length as the reference checks them.
 *
 * Integers: digits_value() reads at most 18 digits, so no value can
 * overflow; a longer run (leading zeros, or a value no maximum admits) is
 * NOPE, and params.parse_digits decides: the value, or a ParseError.
 *
 * Each scanner below mirrors one regular expression of the Python modules,
 * character class for character class (grammar.py, uri.py, params.py,
 * address.py, via.py, fields.py). The grammars are unambiguous, so the
 * single left-to-right scan finds the same split the regex engine finds.
 *
 * The result objects are created without running their __init__: instances
 * come from tp_alloc and their __slots__ are filled through the member
 * offsets read (and checked) at import time.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <stdint.h>
#include <string.h>

/* Status of the internal functions: OK, NOPE (not in the fast subset, or
 * invalid: let the Python parser decide) or ERR (an exception is set). */
#define OK 0
#define NOPE 1
#define ERR (-1)

/* A run of bytes inside the message. */
typedef struct {
    const unsigned char *p;
    Py_ssize_t n;
} Span;

/* ------------------------------------------------------------------------
 * Character classes (one bit each), built at import time.
 */
enum {
    C_TOKEN = 1 << 0,  /* token: alphanum / - . ! % * _ + ` ' ~                  */
    C_WORD = 1 << 1,   /* word: token chars / ( ) < > : \ " / [ ] ? { }          */
    C_USER = 1 << 2,   /* uri.py _USERC: unreserved / escaped / & = + $ , ; ? /  */
    C_PASS = 1 << 3,   /* uri.py _PASSWORDC: unreserved / escaped / & = + $ ,    */
    C_PARAM = 1 << 4,  /* uri.py _PARAMC: unreserved / escaped / [ ] / : & + $   */
    C_HOST = 1 << 5,   /* hostname chars: alphanum / - .                         */
    C_ALNUM = 1 << 6,  /* alphanum                                               */
    C_HEX6 = 1 << 7,   /* IPv6 reference contents: HEXDIG / : .                  */
    C_BUSER = 1 << 8,  /* _SIP_BARE_RE user, without "%": unreserved / & = + $ / */
    C_BPASS = 1 << 9,  /* _SIP_BARE_RE password, without "%"                     */
    C_PVAL = 1 << 10,  /* PLAIN_PARAMS value: [^;,\s"], restricted to ASCII VCHAR */
    C_DIGIT = 1 << 11, /* DIGIT                                                  */
    C_BLANK = 1 << 12, /* SP / HTAB                                              */
};

static uint16_t ctab[256];

#define IS(c, cls) (ctab[(unsigned char)(c)] & (cls))

static void
set_chars(const char *chars, uint16_t bits)
{
    for (; *chars; chars++)
        ctab[(unsigned char)*chars] |= bits;
}

static void
init_ctab(void)
{
    const uint16_t alnum_classes = C_TOKEN | C_WORD | C_USER | C_PASS | C_PARAM | C_HOST
                                   | C_ALNUM | C_BUSER | C_BPASS;
    for (int c = 0; c < 256; c++) {
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
            ctab[c] |= alnum_classes;
        if (c >= '0' && c <= '9')
            ctab[c] |= C_DIGIT | C_HEX6;
        if ((c >= 'A' && c <= 'F') || (c >= 'a' && c <= 'f'))
            ctab[c] |= C_HEX6;
        /* PLAIN_PARAMS values are [^;,\s"]; the fast path takes their ASCII part. */
        if (c > 0x20 && c < 0x7f && c != ';' && c != ',' && c != '"')
            ctab[c] |= C_PVAL;
    }
    set_chars("-.!%*_+`'~", C_TOKEN | C_WORD);
    set_chars("()<>:\\\"/[]?{}", C_WORD);
    set_chars("-_.!~*'()&=+$,;?/%", C_USER);
    set_chars("-_.!~*'()&=+$,%", C_PASS);
    set_chars("-_.!~*'()[]/:&+$%", C_PARAM);
    set_chars("-.", C_HOST);
    set_chars(":.", C_HEX6);
    set_chars("-_.!~*'()&=+$/", C_BUSER);
    set_chars("-_.!~*'()&=+$", C_BPASS);
    set_chars(" \t", C_BLANK);
}

/* Length of the run of characters of class cls starting at s[i]. */
static inline Py_ssize_t
run(const unsigned char *s, Py_ssize_t i, Py_ssize_t n, uint16_t cls)
{
    Py_ssize_t j = i;
    while (j < n && IS(s[j], cls))
        j++;
    return j - i;
}

/* Value of 1 to 18 DIGITs (so that it cannot overflow); -1 for anything else.
 * Longer runs go to Python, which also sees the int() digit limit. */
static int64_t
digits_value(const unsigned char *s, Py_ssize_t n)
{
    if (n < 1 || n > 18)
        return -1;
    int64_t v = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (!IS(s[i], C_DIGIT))
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

static inline int
is_ascii(const unsigned char *p, Py_ssize_t n)
{
    uint64_t acc = 0;
    Py_ssize_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        acc |= w;
    }
    for (; i < n; i++)
        acc |= p[i];
    return (acc & UINT64_C(0x8080808080808080)) == 0;
}

/* ------------------------------------------------------------------------
 * Strings.
 */

/* A str of ASCII bytes; mode 0 as is, 'l' lower-cased, 'u' upper-cased. */
static PyObject *
ascii_str(const unsigned char *p, Py_ssize_t n, int mode)
{
    PyObject *u = PyUnicode_New(n, 127);
    if (u == NULL)
        return NULL;
    Py_UCS1 *d = PyUnicode_1BYTE_DATA(u);
    if (mode == 'l') {
        for (Py_ssize_t i = 0; i < n; i++)
            d[i] = (p[i] >= 'A' && p[i] <= 'Z') ? p[i] + 32 : p[i];
    }
    else if (mode == 'u') {
        for (Py_ssize_t i = 0; i < n; i++)
            d[i] = (p[i] >= 'a' && p[i] <= 'z') ? p[i] - 32 : p[i];
    }
    else if (n > 0) {
        memcpy(d, p, n);
    }
    return u;
}

/* A str of text that may hold UTF-8. Invalid UTF-8 is NOPE: the reference
 * decodes with surrogateescape, which the fast path does not reproduce. */
static int
text_str(const unsigned char *p, Py_ssize_t n, PyObject **out)
{
    if (is_ascii(p, n)) {
        *out = ascii_str(p, n, 0);
        return *out ? OK : ERR;
    }
    *out = PyUnicode_DecodeUTF8((const char *)p, n, NULL);
    if (*out != NULL)
        return OK;
    if (PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) {
        PyErr_Clear();
        return NOPE;
    }
    return ERR;
}

/* A small cache of the short ASCII strings every message repeats (methods,
 * parameter names, transports): a fixed table indexed by a hash of the
 * bytes; a collision replaces the entry. Values are immutable str objects. */
#define STR_CACHE_SIZE 512
#define STR_CACHE_MAXLEN 31

typedef struct {
    unsigned char len; /* 0: empty entry */
    unsigned char mode;
    char bytes[STR_CACHE_MAXLEN];
    PyObject *str;
} StrEntry;

static StrEntry str_cache[STR_CACHE_SIZE];

static inline uint32_t
hash_bytes(const unsigned char *p, Py_ssize_t n, uint32_t seed)
{
    uint32_t h = 2166136261u ^ seed; /* FNV-1a */
    for (Py_ssize_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 16777619u;
    }
    return h;
}

/* New reference to the str of ASCII bytes p[:n] in the given case mode. */
static PyObject *
cached_str(const unsigned char *p, Py_ssize_t n, int mode)
{
    if (n < 1 || n > STR_CACHE_MAXLEN)
        return ascii_str(p, n, mode);
    StrEntry *e = &str_cache[hash_bytes(p, n, (uint32_t)mode) % STR_CACHE_SIZE];
    if (e->len == n && e->mode == mode && memcmp(e->bytes, p, n) == 0) {
        Py_INCREF(e->str);
        return e->str;
    }
    PyObject *s = ascii_str(p, n, mode);
    if (s == NULL)
        return NULL;
    PyObject *old = e->str;
    Py_INCREF(s);
    e->str = s;
    e->len = (unsigned char)n;
    e->mode = (unsigned char)mode;
    memcpy(e->bytes, p, n);
    Py_XDECREF(old);
    return s;
}

/* ------------------------------------------------------------------------
 * Module state: the classes, their slot offsets, interned constants.
 * (Single-phase init; the module holds these for the life of the process.)
 */
static PyTypeObject *Request_type, *Response_type, *Headers_type, *SipUri_type, *Via_type,
    *Address_type, *CSeq_type;

static Py_ssize_t off_req_method, off_req_uri, off_req_uri_text, off_req_version,
    off_req_headers, off_req_body;
static Py_ssize_t off_resp_version, off_resp_status, off_resp_reason, off_resp_headers,
    off_resp_body;
static Py_ssize_t off_hdr_items, off_hdr_cache;
static Py_ssize_t off_uri_host, off_uri_user, off_uri_password, off_uri_port, off_uri_params,
    off_uri_headers, off_uri_scheme;
static Py_ssize_t off_via_transport, off_via_host, off_via_port, off_via_params,
    off_via_protocol;
static Py_ssize_t off_addr_uri, off_addr_display_name, off_addr_params;

static PyObject *key_cache;       /* headers._KEY_CACHE: name as written -> key */
static PyObject *compact[26];     /* headers.COMPACT_FORMS by letter, or NULL */
static PyObject *s_sip, *s_sips, *s_sip20;

/* The headers parse_message_py parses into the typed cache. */
enum { H_OTHER, H_VIA, H_FROM, H_TO, H_CALLID, H_CSEQ, H_MAXF, H_CLEN, H_COUNT };
static const char *const tracked_names[H_COUNT] = {
    NULL, "via", "from", "to", "call-id", "cseq", "max-forwards", "content-length",
};
static PyObject *tracked_keys[H_COUNT];

#define SLOT(obj, off) (*(PyObject **)((char *)(obj) + (off)))

/* A new instance of a __slots__ class, every slot still unset. */
static inline PyObject *
new_instance(PyTypeObject *tp)
{
    return tp->tp_alloc(tp, 0);
}

/* ------------------------------------------------------------------------
 * Header names and keys (headers.canonical_key, parser._new_key).
 */

/* Which tracked header a canonical key is, from its ASCII spelling. */
static int
tracked_id(const char *key, Py_ssize_t n)
{
    for (int t = 1; t < H_COUNT; t++) {
        if ((Py_ssize_t)strlen(tracked_names[t]) == n && memcmp(tracked_names[t], key, n) == 0)
            return t;
    }
    return H_OTHER;
}

/* The canonical key of a token name: its lower case, a one-letter compact
 * form expanded through COMPACT_FORMS. Sets *tracked. New reference. */
static PyObject *
key_of_token(const unsigned char *p, Py_ssize_t n, int *tracked)
{
    PyObject *key;
    if (n == 1) {
        int c = p[0] | 0x20;
        if (c >= 'a' && c <= 'z' && compact[c - 'a'] != NULL) {
            key = compact[c - 'a'];
            *tracked = tracked_id(PyUnicode_AsUTF8(key), PyUnicode_GET_LENGTH(key));
            Py_INCREF(key);
            return key;
        }
    }
    char low[16];
    if (n < (Py_ssize_t)sizeof low) {
        for (Py_ssize_t i = 0; i < n; i++)
            low[i] = (char)((p[i] >= 'A' && p[i] <= 'Z') ? p[i] + 32 : p[i]);
        *tracked = tracked_id(low, n);
        if (*tracked != H_OTHER) {
            key = tracked_keys[*tracked];
            Py_INCREF(key);
            return key;
        }
    }
    else {
        *tracked = H_OTHER; /* every tracked name is shorter than 16 */
    }
    return ascii_str(p, n, 'l');
}

/* Names without trailing blanks are looked up here by their bytes; the key
 * they map to is what canonical_key() computes for them, so this cache and
 * headers._KEY_CACHE always agree. */
#define NAME_CACHE_SIZE 256
#define NAME_CACHE_MAXLEN 31

typedef struct {
    unsigned char len; /* 0: empty entry */
    char bytes[NAME_CACHE_MAXLEN];
    PyObject *name;
    PyObject *key;
    int tracked;
} NameEntry;

static NameEntry name_cache[NAME_CACHE_SIZE];

/* field-name as written -> (name, key, tracked id). Returns OK, NOPE or ERR;
 * on OK *name and *key are new references.
 *
 * parse_message_py: key = _KEY_CACHE.get(name), else _new_key(name), which
 * requires name.rstrip(" \t") to be a token. Names with trailing blanks
 * take the exact route through _KEY_CACHE (canonical_key("To ") may have
 * put "to " there); other names must be tokens here. */
static int
header_name(const unsigned char *p, Py_ssize_t n, PyObject **name, PyObject **key, int *tracked)
{
    Py_ssize_t stripped = n;
    while (stripped > 0 && IS(p[stripped - 1], C_BLANK))
        stripped--;
    if (stripped == 0 || run(p, 0, stripped, C_TOKEN) != stripped)
        return NOPE;

    if (stripped < n) {
        *name = ascii_str(p, n, 0);
        if (*name == NULL)
            return ERR;
        PyObject *k = PyDict_GetItemWithError(key_cache, *name);
        if (k != NULL) {
            if (!PyUnicode_CheckExact(k) || !PyUnicode_IS_ASCII(k)) {
                Py_CLEAR(*name);
                return NOPE;
            }
            Py_INCREF(k);
            *key = k;
            *tracked = tracked_id(PyUnicode_AsUTF8(k), PyUnicode_GET_LENGTH(k));
            return OK;
        }
        if (PyErr_Occurred()) {
            Py_CLEAR(*name);
            return ERR;
        }
        *key = key_of_token(p, stripped, tracked);
        if (*key == NULL) {
            Py_CLEAR(*name);
            return ERR;
        }
        return OK;
    }

    NameEntry *e = NULL;
    if (n <= NAME_CACHE_MAXLEN) {
        e = &name_cache[hash_bytes(p, n, 0) % NAME_CACHE_SIZE];
        if (e->len == n && memcmp(e->bytes, p, n) == 0) {
            Py_INCREF(e->name);
            Py_INCREF(e->key);
            *name = e->name;
            *key = e->key;
            *tracked = e->tracked;
            return OK;
        }
    }
    *name = ascii_str(p, n, 0);
    if (*name == NULL)
        return ERR;
    *key = key_of_token(p, n, tracked);
    if (*key == NULL) {
        Py_CLEAR(*name);
        return ERR;
    }
    if (e != NULL) {
        PyObject *old_name = e->name, *old_key = e->key;
        Py_INCREF(*name);
        Py_INCREF(*key);
        e->name = *name;
        e->key = *key;
        e->tracked = *tracked;
        e->len = (unsigned char)n;
        memcpy(e->bytes, p, n);
        Py_XDECREF(old_name);
        Py_XDECREF(old_key);
    }
    return OK;
}

/* ------------------------------------------------------------------------
 * host, port, parameters.
 */

/* host = "[" 1*( HEXDIG / ":" / "." ) "]"                        (IPv6reference)
 *      / alphanum [ *( alphanum / "-" / "." ) ( alphanum / "." ) ]  (hostname)
 * as grammar.HOST. Returns the end of the host, or -1. A hostname is the
 * longest run of its characters: everything that may follow a host (":",
 * ";", ">", end) is outside that set, so a shorter match never helps. */
static Py_ssize_t
scan_host(const unsigned char *s, Py_ssize_t i, Py_ssize_t n)
{
    if (i >= n)
        return -1;
    if (s[i] == '[') {
        Py_ssize_t k = run(s, i + 1, n, C_HEX6);
        if (k == 0 || i + 1 + k >= n || s[i + 1 + k] != ']')
            return -1;
        return i + 2 + k;
    }
    if (!IS(s[i], C_ALNUM))
        return -1;
    Py_ssize_t j = i + 1 + run(s, i + 1, n, C_HOST);
    if (s[j - 1] == '-')
        return -1;
    return j;
}

/* [ ":" port ] with port = 1*5DIGIT <= 65535. *i is at the host's end.
 * Returns 0 (port in *port, -1 when absent) or -1 when malformed. */
static int
scan_port(const unsigned char *s, Py_ssize_t *i, Py_ssize_t n, long *port)
{
    *port = -1;
    if (*i < n && s[*i] == ':') {
        Py_ssize_t k = run(s, *i + 1, n, C_DIGIT);
        if (k < 1 || k > 5)
            return -1;
        long v = (long)digits_value(s + *i + 1, k);
        if (v > 65535)
            return -1;
        *port = v;
        *i += 1 + k;
    }
    return 0;
}

/* PLAIN_PARAMS = *( ";" token [ "=" 1*( VCHAR except ";" "," DQUOTE ) ] )
 * (params.PLAIN_PARAMS; the value class [^;,\s"] taken in its ASCII part),
 * up to the end of the text. Returns 0 if s[0:n] matches, else -1. */
static int
scan_plain_params(const unsigned char *s, Py_ssize_t n)
{
    Py_ssize_t i = 0;
    while (i < n) {
        if (s[i] != ';')
            return -1;
        Py_ssize_t k = run(s, i + 1, n, C_TOKEN);
        if (k == 0)
            return -1;
        i += 1 + k;
        if (i < n && s[i] == '=') {
            k = run(s, i + 1, n, C_PVAL);
            if (k == 0)
                return -1;
            i += 1 + k;
        }
    }
    return 0;
}

/* The dict of validated ";name[=value]..." parameters, as split_plain_params
 * and uri._parse_uri_params build it: names lower-cased, a valueless
 * parameter maps to None, a repeated name keeps its first position and its
 * last value. New reference. */
static PyObject *
params_dict(const unsigned char *s, Py_ssize_t n)
{
    PyObject *d = PyDict_New();
    if (d == NULL || n == 0)
        return d;
    Py_ssize_t i = 1; /* after the first ";" */
    while (i <= n) {
        const unsigned char *end = memchr(s + i, ';', n - i);
        Py_ssize_t j = end ? end - s : n;
        const unsigned char *eq = memchr(s + i, '=', j - i);
        Py_ssize_t name_end = eq ? eq - s : j;
        PyObject *name = cached_str(s + i, name_end - i, 'l');
        PyObject *value;
        if (name == NULL)
            goto error;
        if (eq != NULL) {
            value = ascii_str(s + name_end + 1, j - name_end - 1, 0);
            if (value == NULL) {
                Py_DECREF(name);
                goto error;
            }
        }
        else {
            value = Py_NewRef(Py_None);
        }
        int rc = PyDict_SetItem(d, name, value);
        Py_DECREF(name);
        Py_DECREF(value);
        if (rc < 0)
            goto error;
        i = j + 1;
    }
    return d;
error:
    Py_DECREF(d);
    return NULL;
}

/* ------------------------------------------------------------------------
 * SIP URIs (uri.SIP_URI_BODY, address._SIP_BARE_RE) -> SipUri.
 */

typedef struct {
    Span user, password, host, params;
    int has_user, has_password;
    long port; /* -1: none */
} UriParts;

/* After the "sip:" of SIP_URI_BODY (the whole of s[0:n]):
 *   [ user [ ":" password ] "@" ] host [ ":" port ] *( ";" pname [ "=" pvalue ] )
 * with the character classes of uri.py. Escapes ("%") and the ?headers part
 * are outside the fast subset. Returns 0 or -1. */
static int
scan_uri_body(const unsigned char *s, Py_ssize_t n, UriParts *u)
{
    memset(u, 0, sizeof *u);
    if (memchr(s, '%', n) != NULL || memchr(s, '?', n) != NULL)
        return -1;
    /* userinfo: user and password are runs of their classes (neither holds
     * ":" or "@"), so it is present exactly when such runs reach an "@". */
    Py_ssize_t i = 0, k = run(s, 0, n, C_USER);
    if (k > 0 && k < n && s[k] == '@') {
        u->has_user = 1;
        u->user = (Span){s, k};
        i = k + 1;
    }
    else if (k > 0 && k < n && s[k] == ':') {
        Py_ssize_t m = run(s, k + 1, n, C_PASS);
        if (k + 1 + m < n && s[k + 1 + m] == '@') {
            u->has_user = u->has_password = 1;
            u->user = (Span){s, k};
            u->password = (Span){s + k + 1, m};
            i = k + 2 + m;
        }
    }
    Py_ssize_t h = scan_host(s, i, n);
    if (h < 0)
        return -1;
    u->host = (Span){s + i, h - i};
    i = h;
    if (scan_port(s, &i, n, &u->port) < 0)
        return -1;
    /* uri-parameters = *( ";" 1*paramchar [ "=" 1*paramchar ] ) */
    Py_ssize_t p0 = i;
    while (i < n) {
        if (s[i] != ';')
            return -1;
        k = run(s, i + 1, n, C_PARAM);
        if (k == 0)
            return -1;
        i += 1 + k;
        if (i < n && s[i] == '=') {
            k = run(s, i + 1, n, C_PARAM);
            if (k == 0)
                return -1;
            i += 1 + k;
        }
    }
    u->params = (Span){s + p0, n - p0};
    return 0;
}

/* address._SIP_BARE_RE after the scheme:
 *   [ buser [ ":" bpassword ] "@" ] host [ ":" port ]
 * (no "%" here either), followed by PLAIN_PARAMS, which the caller checks
 * from u->params on. The user class holds no ";", so the URI ends at the
 * first character outside hostport. */
static int
scan_bare_uri(const unsigned char *s, Py_ssize_t n, UriParts *u)
{
    memset(u, 0, sizeof *u);
    Py_ssize_t i = 0, k = run(s, 0, n, C_BUSER);
    if (k > 0 && k < n && s[k] == '@') {
        u->has_user = 1;
        u->user = (Span){s, k};
        i = k + 1;
    }
    else if (k > 0 && k < n && s[k] == ':') {
        Py_ssize_t m = run(s, k + 1, n, C_BPASS);
        if (k + 1 + m < n && s[k + 1 + m] == '@') {
            u->has_user = u->has_password = 1;
            u->user = (Span){s, k};
            u->password = (Span){s + k + 1, m};
            i = k + 2 + m;
        }
    }
    Py_ssize_t h = scan_host(s, i, n);
    if (h < 0)
        return -1;
    u->host = (Span){s + i, h - i};
    i = h;
    if (scan_port(s, &i, n, &u->port) < 0)
        return -1;
    u->params = (Span){s + i, n - i}; /* the header's parameters */
    return 0;
}

/* SipUri(host, user, password, port, params, headers=[], scheme), as
 * uri.sip_uri_from_groups builds it (no escapes to decode here). */
static PyObject *
build_sip_uri(const UriParts *u, PyObject *scheme, int with_params)
{
    PyObject *host = NULL, *user = NULL, *password = NULL, *port = NULL, *params = NULL,
             *headers = NULL, *obj = NULL;
    host = ascii_str(u->host.p, u->host.n, 0);
    if (host == NULL)
        goto error;
    user = u->has_user ? ascii_str(u->user.p, u->user.n, 0) : Py_NewRef(Py_None);
    if (user == NULL)
        goto error;
    password = u->has_password ? ascii_str(u->password.p, u->password.n, 0) : Py_NewRef(Py_None);
    if (password == NULL)
        goto error;
    port = u->port >= 0 ? PyLong_FromLong(u->port) : Py_NewRef(Py_None);
    if (port == NULL)
        goto error;
    params = with_params ? params_dict(u->params.p, u->params.n) : PyDict_New();
    if (params == NULL)
        goto error;
    headers = PyList_New(0);
    if (headers == NULL)
        goto error;
    obj = new_instance(SipUri_type);
    if (obj == NULL)
        goto error;
    SLOT(obj, off_uri_host) = host;
    SLOT(obj, off_uri_user) = user;
    SLOT(obj, off_uri_password) = password;
    SLOT(obj, off_uri_port) = port;
    SLOT(obj, off_uri_params) = params;
    SLOT(obj, off_uri_headers) = headers;
    SLOT(obj, off_uri_scheme) = Py_NewRef(scheme);
    return obj;
error:
    Py_XDECREF(host);
    Py_XDECREF(user);
    Py_XDECREF(password);
    Py_XDECREF(port);
    Py_XDECREF(params);
    Py_XDECREF(headers);
    return NULL;
}

/* ( "sip" / "sips" ) ":" in any case ([Ss][Ii][Pp][Ss]?:). Returns the
 * length of the prefix (4 or 5) and the lower-case scheme, or 0. */
static int
sip_scheme(const unsigned char *s, Py_ssize_t n, PyObject **scheme)
{
    if (n >= 4 && (s[0] | 0x20) == 's' && (s[1] | 0x20) == 'i' && (s[2] | 0x20) == 'p') {
        if (s[3] == ':') {
            *scheme = s_sip;
            return 4;
        }
        if (n >= 5 && (s[3] | 0x20) == 's' && s[4] == ':') {
            *scheme = s_sips;
            return 5;
        }
    }
    return 0;
}

/* A whole SIP/SIPS URI (scheme included) -> SipUri. OK, NOPE or ERR. */
static int
parse_sip_uri(const unsigned char *s, Py_ssize_t n, PyObject **out)
{
    PyObject *scheme;
    int k = sip_scheme(s, n, &scheme);
    UriParts u;
    if (k == 0 || scan_uri_body(s + k, n - k, &u) < 0)
        return NOPE;
    *out = build_sip_uri(&u, scheme, 1);
    return *out ? OK : ERR;
}

/* True when p[0:n] is the lower-case ASCII name, in any case. */
static int
name_is(const unsigned char *p, Py_ssize_t n, const char *name)
{
    if ((size_t)n != strlen(name))
        return 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        if ((p[i] | 0x20) != (unsigned char)name[i])
            return 0;
    }
    return 1;
}

/* via._check_numbers: every "rport" or "ttl" parameter (any case) whose
 * value is all digits must be at most 65535 or 255. Returns 0, or -1 (NOPE)
 * for a value out of range or too long for digits_value; Python decides
 * those. s[0:n] is a PLAIN_PARAMS text that scan_plain_params accepted. A
 * repeated name is checked at each occurrence: stricter than the dict the
 * reference checks, so at worst a NOPE. */
static int
via_numbers_ok(const unsigned char *s, Py_ssize_t n)
{
    Py_ssize_t i = 0;
    while (i < n) {
        Py_ssize_t j = i + 1; /* after the ";" */
        while (j < n && s[j] != ';')
            j++;
        const unsigned char *eq = memchr(s + i + 1, '=', j - i - 1);
        if (eq != NULL) {
            Py_ssize_t name_n = eq - (s + i + 1), value_n = s + j - (eq + 1);
            int64_t maximum = -1;
            if (name_is(s + i + 1, name_n, "rport"))
                maximum = 65535;
            else if (name_is(s + i + 1, name_n, "ttl"))
                maximum = 255;
            if (maximum >= 0 && run(eq + 1, 0, value_n, C_DIGIT) == value_n) {
                int64_t v = digits_value(eq + 1, value_n);
                if (v < 0 || v > maximum)
                    return -1;
            }
        }
        i = j;
    }
    return 0;
}

/* ------------------------------------------------------------------------
 * Via (via.Via.parse, fast form):
 *   "SIP/2.0/" transport SP host [ ":" port ] PLAIN_PARAMS
 * with transport a token (upper-cased), for one via-parm (a Via line with
 * commas is split by via_line first). An empty branch cannot occur:
 * PLAIN_PARAMS values have at least one character.
 */
static int
parse_via(const unsigned char *s, Py_ssize_t n, PyObject **out)
{
    if (n < 8 || memcmp(s, "SIP/2.0/", 8) != 0 || memchr(s, ',', n) != NULL)
        return NOPE;
    Py_ssize_t i = 8, k = run(s, 8, n, C_TOKEN);
    if (k == 0 || i + k >= n || s[i + k] != ' ')
        return NOPE;
    Span transport = {s + i, k};
    i += k + 1;
    Py_ssize_t h = scan_host(s, i, n);
    if (h < 0)
        return NOPE;
    Span host = {s + i, h - i};
    i = h;
    long port_value;
    if (scan_port(s, &i, n, &port_value) < 0 || scan_plain_params(s + i, n - i) < 0
        || via_numbers_ok(s + i, n - i) < 0)
        return NOPE;

    PyObject *t = NULL, *hs = NULL, *port = NULL, *params = NULL, *via;
    t = cached_str(transport.p, transport.n, 'u');
    if (t == NULL)
        goto error;
    hs = ascii_str(host.p, host.n, 0);
    if (hs == NULL)
        goto error;
    port = port_value >= 0 ? PyLong_FromLong(port_value) : Py_NewRef(Py_None);
    if (port == NULL)
        goto error;
    params = params_dict(s + i, n - i);
    if (params == NULL)
        goto error;
    via = new_instance(Via_type);
    if (via == NULL)
        goto error;
    SLOT(via, off_via_transport) = t;
    SLOT(via, off_via_host) = hs;
    SLOT(via, off_via_port) = port;
    SLOT(via, off_via_params) = params;
    SLOT(via, off_via_protocol) = Py_NewRef(s_sip20);
    *out = via;
    return OK;
error:
    Py_XDECREF(t);
    Py_XDECREF(hs);
    Py_XDECREF(port);
    Py_XDECREF(params);
    return ERR;
}

/* via.parse_via_list for one Via line: its via-parms appended to vias. A
 * line with commas holds several (params.split_values); without quotes or
 * angle brackets (which the fast form never has) its elements are the runs
 * between the commas, stripped. Only blanks are stripped here: any other
 * white space left (Python's strip() takes it) makes parse_via answer NOPE,
 * as does an empty element (Python raises its ParseError). */
static int
via_line(PyObject *vias, const unsigned char *s, Py_ssize_t n)
{
    const unsigned char *p = s, *end = s + n;
    if (memchr(s, ',', n) != NULL && (memchr(s, '"', n) != NULL || memchr(s, '<', n) != NULL))
        return NOPE;
    for (;;) {
        const unsigned char *comma = memchr(p, ',', end - p);
        const unsigned char *a = p, *b = comma != NULL ? comma : end;
        while (a < b && IS(*a, C_BLANK))
            a++;
        while (b > a && IS(b[-1], C_BLANK))
            b--;
        PyObject *via;
        int rc = parse_via(a, b - a, &via);
        if (rc != OK)
            return rc;
        rc = PyList_Append(vias, via);
        Py_DECREF(via);
        if (rc < 0)
            return ERR;
        if (comma == NULL)
            return OK;
        p = comma + 1;
    }
}

/* ------------------------------------------------------------------------
 * From / To (address.parse_address, its two fast regexes):
 *
 *   name-addr   = [ display-name ] *WSP "<" SIP-URI ">" PLAIN_PARAMS
 *   display-name = DQUOTE *( any char but DQUOTE and "\" ) DQUOTE
 *                / *( token-char / SP / HTAB )     (rstripped; empty -> None)
 *   addr-spec   = SIP-URI-without-params-or-headers PLAIN_PARAMS
 *
 * The value is already stripped of SP/HTAB, and starts and ends with ASCII
 * VCHARs whenever it matches, so parse_address's text.strip() changes
 * nothing. A text starting with a quote, or with a run of token chars and
 * blanks that reaches "<", can only be a name-addr; any other only an
 * addr-spec (which starts with "sip:"), so the two forms never compete.
 */
static int
parse_address(const unsigned char *s, Py_ssize_t n, PyObject **out)
{
    PyObject *display = NULL, *uri = NULL, *params = NULL, *addr;
    Py_ssize_t i, lt;
    int rc;

    if (n > 0 && s[0] == '"') {
        Py_ssize_t q = 1;
        while (q < n && s[q] != '"' && s[q] != '\\')
            q++;
        if (q >= n || s[q] != '"')
            return NOPE; /* unterminated, or a quoted-pair */
        lt = q + 1 + run(s, q + 1, n, C_BLANK);
        if (lt >= n || s[lt] != '<')
            return NOPE;
        rc = text_str(s + 1, q - 1, &display);
        if (rc != OK)
            return rc;
    }
    else {
        Py_ssize_t k = run(s, 0, n, C_TOKEN | C_BLANK);
        if (k < n && s[k] == '<') {
            lt = k;
            while (k > 0 && IS(s[k - 1], C_BLANK))
                k--;
            display = k > 0 ? ascii_str(s, k, 0) : Py_NewRef(Py_None);
            if (display == NULL)
                return ERR;
        }
        else {
            lt = -1; /* not a name-addr */
        }
    }

    if (lt >= 0) {
        const unsigned char *gt = memchr(s + lt + 1, '>', n - lt - 1);
        if (gt == NULL) {
            rc = NOPE;
            goto fail;
        }
        i = gt - s;
        if (scan_plain_params(s + i + 1, n - i - 1) < 0) {
            rc = NOPE;
            goto fail;
        }
        rc = parse_sip_uri(s + lt + 1, i - lt - 1, &uri);
        if (rc != OK)
            goto fail;
        params = params_dict(s + i + 1, n - i - 1);
        if (params == NULL) {
            rc = ERR;
            goto fail;
        }
    }
    else {
        PyObject *scheme;
        UriParts u;
        int k = sip_scheme(s, n, &scheme);
        if (k == 0 || scan_bare_uri(s + k, n - k, &u) < 0
            || scan_plain_params(u.params.p, u.params.n) < 0)
            return NOPE;
        display = Py_NewRef(Py_None);
        uri = build_sip_uri(&u, scheme, 0);
        if (uri == NULL) {
            rc = ERR;
            goto fail;
        }
        params = params_dict(u.params.p, u.params.n);
        if (params == NULL) {
            rc = ERR;
            goto fail;
        }
    }
    addr = new_instance(Address_type);
    if (addr == NULL) {
        rc = ERR;
        goto fail;
    }
    SLOT(addr, off_addr_uri) = uri;
    SLOT(addr, off_addr_display_name) = display;
    SLOT(addr, off_addr_params) = params;
    *out = addr;
    return OK;
fail:
    Py_XDECREF(display);
    Py_XDECREF(uri);
    Py_XDECREF(params);
    return rc;
}

/* ------------------------------------------------------------------------
 * Call-ID, CSeq, integers (parser.parse_message_py, fields.py).
 */

/* callid = word [ "@" word ]  (grammar.CALL_ID_RE) */
static int
valid_call_id(const unsigned char *s, Py_ssize_t n)
{
    Py_ssize_t k = run(s, 0, n, C_WORD);
    if (k == 0)
        return 0;
    if (k == n)
        return 1;
    if (s[k] != '@')
        return 0;
    Py_ssize_t m = run(s, k + 1, n, C_WORD);
    return m > 0 && k + 1 + m == n;
}

/* CSeq = 1*DIGIT LWS Method  (fields._CSEQ_RE; the value is already
 * stripped), seq <= 2**32-1. Returns a CSeq tuple. */
static int
parse_cseq(const unsigned char *s, Py_ssize_t n, PyObject **out)
{
    Py_ssize_t k = run(s, 0, n, C_DIGIT);
    Py_ssize_t b = run(s, k, n, C_BLANK);
    Py_ssize_t m = run(s, k + b, n, C_TOKEN);
    if (k == 0 || b == 0 || m == 0 || k + b + m != n)
        return NOPE;
    int64_t seq = digits_value(s, k);
    if (seq < 0 || seq > 0xFFFFFFFFLL)
        return NOPE;
    PyObject *num = PyLong_FromLongLong(seq);
    if (num == NULL)
        return ERR;
    PyObject *method = cached_str(s + k + b, m, 0);
    if (method == NULL) {
        Py_DECREF(num);
        return ERR;
    }
    /* A NamedTuple instance: a tuple of that type, as tuple.__new__ makes it. */
    PyObject *t = CSeq_type->tp_alloc(CSeq_type, 2);
    if (t == NULL) {
        Py_DECREF(num);
        Py_DECREF(method);
        return ERR;
    }
    PyTuple_SET_ITEM(t, 0, num);
    PyTuple_SET_ITEM(t, 1, method);
    *out = t;
    return OK;
}

/* fields.parse_int: 1*DIGIT <= maximum (the value is already stripped). */
static int
parse_uint(const unsigned char *s, Py_ssize_t n, int64_t maximum, PyObject **out,
           int64_t *value)
{
    int64_t v = digits_value(s, n);
    if (v < 0 || v > maximum)
        return NOPE;
    *value = v;
    *out = PyLong_FromLongLong(v);
    return *out ? OK : ERR;
}

/* ------------------------------------------------------------------------
 * The message.
 */

/* Index of the CR of the CRLF that ends the line starting at p, or -1 when
 * there is none or the line holds a bare LF. The line cannot hold a CR. */
static Py_ssize_t
line_end(const unsigned char *buf, Py_ssize_t p, Py_ssize_t n)
{
    const unsigned char *cr = memchr(buf + p, '\r', n - p);
    if (cr == NULL)
        return -1;
    Py_ssize_t e = cr - buf;
    if (e + 1 >= n || buf[e + 1] != '\n' || memchr(buf + p, '\n', e - p) != NULL)
        return -1;
    return e;
}

typedef struct {
    PyObject *items;          /* list of (key, name, value) */
    PyObject *vias;           /* list of Via */
    PyObject *values[H_COUNT]; /* the single-valued tracked headers' value str */
    Span spans[H_COUNT];
    PyObject *from, *to, *cseq, *maxf, *clen;
    PyObject *method, *uri, *uri_text, *status, *reason;
} State;

static void
state_clear(State *st)
{
    Py_CLEAR(st->items);
    Py_CLEAR(st->vias);
    for (int t = 0; t < H_COUNT; t++)
        Py_CLEAR(st->values[t]);
    Py_CLEAR(st->from);
    Py_CLEAR(st->to);
    Py_CLEAR(st->cseq);
    Py_CLEAR(st->maxf);
    Py_CLEAR(st->clen);
    Py_CLEAR(st->method);
    Py_CLEAR(st->uri);
    Py_CLEAR(st->uri_text);
    Py_CLEAR(st->status);
    Py_CLEAR(st->reason);
}

/* message-header = field-name *WSP ":" *WSP field-value: one line into
 * items, and the tracked ones into the state. */
static int
header_line(State *st, const unsigned char *line, Py_ssize_t len)
{
    const unsigned char *colon = memchr(line, ':', len);
    if (colon == NULL)
        return NOPE;
    PyObject *name, *key, *value, *item;
    int tracked, rc;
    rc = header_name(line, colon - line, &name, &key, &tracked);
    if (rc != OK)
        return rc;
    /* value.strip(" \t") */
    const unsigned char *v = colon + 1, *end = line + len;
    while (v < end && IS(*v, C_BLANK))
        v++;
    while (end > v && IS(end[-1], C_BLANK))
        end--;
    rc = text_str(v, end - v, &value);
    if (rc != OK) {
        Py_DECREF(name);
        Py_DECREF(key);
        return rc;
    }
    item = PyTuple_New(3);
    if (item == NULL) {
        Py_DECREF(name);
        Py_DECREF(key);
        Py_DECREF(value);
        return ERR;
    }
    PyTuple_SET_ITEM(item, 0, key);
    PyTuple_SET_ITEM(item, 1, name);
    PyTuple_SET_ITEM(item, 2, value);
    rc = PyList_Append(st->items, item);
    Py_DECREF(item);
    if (rc < 0)
        return ERR;

    if (tracked == H_VIA)
        return via_line(st->vias, v, end - v);
    if (tracked != H_OTHER) {
        if (st->values[tracked] != NULL)
            return NOPE; /* "duplicate ... header" */
        st->values[tracked] = Py_NewRef(value);
        st->spans[tracked] = (Span){v, end - v};
    }
    return OK;
}

/* Request-Line = Method SP ( "sip:" / "sips:" ) SIP-URI-body SP "SIP/2.0"
 * (parser._SIP_REQUEST_LINE_RE; method = token, no SP inside the URI). */
static int
request_line(State *st, const unsigned char *s, Py_ssize_t n)
{
    Py_ssize_t m = run(s, 0, n, C_TOKEN);
    if (m == 0 || m >= n || s[m] != ' ' || n - m - 1 < 9
        || memcmp(s + n - 8, " SIP/2.0", 8) != 0)
        return NOPE;
    const unsigned char *u = s + m + 1;
    Py_ssize_t un = n - m - 1 - 8;
    if (memchr(u, ' ', un) != NULL)
        return NOPE;
    int rc = parse_sip_uri(u, un, &st->uri);
    if (rc != OK)
        return rc;
    st->method = cached_str(s, m, 0);
    if (st->method == NULL)
        return ERR;
    st->uri_text = ascii_str(u, un, 0); /* the URI classes are ASCII */
    return st->uri_text ? OK : ERR;
}

/* Status-Line = "SIP/2.0" SP 3DIGIT SP Reason-Phrase  (100 to 699, §21) */
static int
status_line(State *st, const unsigned char *s, Py_ssize_t n)
{
    if (n < 12 || memcmp(s, "SIP/2.0 ", 8) != 0 || s[11] != ' ')
        return NOPE;
    int64_t code = digits_value(s + 8, 3);
    if (code < 100 || code > 699)
        return NOPE;
    st->status = PyLong_FromLong((long)code);
    if (st->status == NULL)
        return ERR;
    return text_str(s + 12, n - 12, &st->reason);
}

static int
parse_message(PyObject *data, PyObject **out)
{
    const unsigned char *buf = (const unsigned char *)PyBytes_AS_STRING(data);
    Py_ssize_t n = PyBytes_GET_SIZE(data);
    State st;
    PyObject *headers = NULL, *cache = NULL, *body = NULL, *msg = NULL;
    int rc;

    memset(&st, 0, sizeof st);
    if (n == 0 || buf[0] == '\r' || buf[0] == '\n')
        return NOPE; /* leading CRLFs: Python skips them */

    /* The header section: lines ending in CRLF up to the first empty one. */
    Py_ssize_t start_end = line_end(buf, 0, n);
    if (start_end < 0)
        return NOPE;
    st.items = PyList_New(0);
    st.vias = PyList_New(0);
    if (st.items == NULL || st.vias == NULL) {
        rc = ERR;
        goto done;
    }
    Py_ssize_t p = start_end + 2, body_start;
    for (;;) {
        if (p < n && (buf[p] == ' ' || buf[p] == '\t')) {
            rc = NOPE; /* folded line */
            goto done;
        }
        Py_ssize_t e = line_end(buf, p, n);
        if (e < 0) {
            rc = NOPE;
            goto done;
        }
        if (e == p) {
            body_start = p + 2;
            break;
        }
        rc = header_line(&st, buf + p, e - p);
        if (rc != OK)
            goto done;
        p = e + 2;
    }

    /* Start line. */
    if (start_end >= 4 && memcmp(buf, "SIP/", 4) == 0)
        rc = status_line(&st, buf, start_end);
    else
        rc = request_line(&st, buf, start_end);
    if (rc != OK)
        goto done;

    /* The typed cache, in the order parse_message_py fills it. */
    if (PyList_GET_SIZE(st.vias) == 0 || st.values[H_FROM] == NULL || st.values[H_TO] == NULL
        || st.values[H_CALLID] == NULL || st.values[H_CSEQ] == NULL) {
        rc = NOPE;
        goto done;
    }
    if ((rc = parse_address(st.spans[H_FROM].p, st.spans[H_FROM].n, &st.from)) != OK)
        goto done;
    if ((rc = parse_address(st.spans[H_TO].p, st.spans[H_TO].n, &st.to)) != OK)
        goto done;
    if (!valid_call_id(st.spans[H_CALLID].p, st.spans[H_CALLID].n)) {
        rc = NOPE;
        goto done;
    }
    if ((rc = parse_cseq(st.spans[H_CSEQ].p, st.spans[H_CSEQ].n, &st.cseq)) != OK)
        goto done;
    int64_t value;
    if (st.values[H_MAXF] == NULL)
        st.maxf = Py_NewRef(Py_None);
    else if ((rc = parse_uint(st.spans[H_MAXF].p, st.spans[H_MAXF].n, 255, &st.maxf, &value))
             != OK)
        goto done;
    Py_ssize_t body_len = n - body_start;
    if (st.values[H_CLEN] == NULL) {
        st.clen = Py_NewRef(Py_None);
    }
    else {
        rc = parse_uint(st.spans[H_CLEN].p, st.spans[H_CLEN].n, 0xFFFFFFFFLL, &st.clen, &value);
        if (rc != OK)
            goto done;
        if (value > (int64_t)body_len) {
            rc = NOPE; /* "Content-Length exceeds the body octets present" */
            goto done;
        }
        body_len = (Py_ssize_t)value;
    }

    rc = ERR;
    cache = PyDict_New();
    if (cache == NULL || PyDict_SetItem(cache, tracked_keys[H_VIA], st.vias) < 0
        || PyDict_SetItem(cache, tracked_keys[H_FROM], st.from) < 0
        || PyDict_SetItem(cache, tracked_keys[H_TO], st.to) < 0
        || PyDict_SetItem(cache, tracked_keys[H_CALLID], st.values[H_CALLID]) < 0
        || PyDict_SetItem(cache, tracked_keys[H_CSEQ], st.cseq) < 0
        || PyDict_SetItem(cache, tracked_keys[H_MAXF], st.maxf) < 0
        || PyDict_SetItem(cache, tracked_keys[H_CLEN], st.clen) < 0)
        goto done;
    headers = new_instance(Headers_type);
    if (headers == NULL)
        goto done;
    SLOT(headers, off_hdr_items) = st.items;
    SLOT(headers, off_hdr_cache) = cache;
    st.items = NULL;
    cache = NULL;
    body = PyBytes_FromStringAndSize((const char *)buf + body_start, body_len);
    if (body == NULL)
        goto done;

    if (st.status != NULL) {
        msg = new_instance(Response_type);
        if (msg == NULL)
            goto done;
        SLOT(msg, off_resp_version) = Py_NewRef(s_sip20);
        SLOT(msg, off_resp_status) = st.status;
        SLOT(msg, off_resp_reason) = st.reason;
        SLOT(msg, off_resp_headers) = headers;
        SLOT(msg, off_resp_body) = body;
        st.status = st.reason = NULL;
    }
    else {
        msg = new_instance(Request_type);
        if (msg == NULL)
            goto done;
        SLOT(msg, off_req_method) = st.method;
        SLOT(msg, off_req_uri) = st.uri;
        SLOT(msg, off_req_uri_text) = st.uri_text;
        SLOT(msg, off_req_version) = Py_NewRef(s_sip20);
        SLOT(msg, off_req_headers) = headers;
        SLOT(msg, off_req_body) = body;
        st.method = st.uri = st.uri_text = NULL;
    }
    headers = body = NULL;
    *out = msg;
    rc = OK;
done:
    Py_XDECREF(cache);
    Py_XDECREF(headers);
    Py_XDECREF(body);
    state_clear(&st);
    return rc;
}

static PyObject *
speedups_parse(PyObject *Py_UNUSED(module), PyObject *data)
{
    PyObject *msg = NULL;
    if (!PyBytes_CheckExact(data))
        Py_RETURN_NONE;
    int rc = parse_message(data, &msg);
    if (rc == OK)
        return msg;
    if (rc == ERR) {
        if (PyErr_ExceptionMatches(PyExc_MemoryError))
            return NULL;
        PyErr_Clear(); /* not expected; the Python parser decides */
    }
    Py_RETURN_NONE;
}

/* ------------------------------------------------------------------------
 * Module init: find the classes and check that their layout is the one
 * filled in above; anything unexpected fails the import, and the parser
 * falls back to pure Python.
 */

static PyObject *
import_attr(const char *module, const char *name)
{
    PyObject *mod = PyImport_ImportModule(module);
    if (mod == NULL)
        return NULL;
    PyObject *attr = PyObject_GetAttrString(mod, name);
    Py_DECREF(mod);
    return attr;
}

static PyTypeObject *
import_class(const char *module, const char *name)
{
    PyObject *cls = import_attr(module, name);
    if (cls != NULL && !PyType_Check(cls)) {
        PyErr_Format(PyExc_ImportError, "%s.%s is not a class", module, name);
        Py_CLEAR(cls);
    }
    return (PyTypeObject *)cls;
}

/* The offset of the __slots__ member `name` of tp (or of a base). */
static int
slot_offset(PyTypeObject *tp, const char *name, Py_ssize_t *offset)
{
    PyObject *d = PyObject_GetAttrString((PyObject *)tp, name);
    if (d == NULL)
        return -1;
    int ok = Py_IS_TYPE(d, &PyMemberDescr_Type);
    if (ok) {
        PyMemberDef *m = ((PyMemberDescrObject *)d)->d_member;
        PyTypeObject *owner = ((PyMemberDescrObject *)d)->d_common.d_type;
        ok = m->type == T_OBJECT_EX && !(m->flags & READONLY) && PyType_IsSubtype(tp, owner);
        *offset = m->offset;
    }
    Py_DECREF(d);
    if (!ok) {
        PyErr_Format(PyExc_ImportError, "%s.%s is not a plain slot", tp->tp_name, name);
        return -1;
    }
    return 0;
}

/* Every slot of tp and its bases must be one of the `count` names that the
 * parser fills, so that no attribute is left unset; no instance __dict__. */
static int
check_slots(PyTypeObject *tp, const char *const *names, int count)
{
    if (tp->tp_dictoffset != 0 || tp->tp_itemsize != 0) {
        PyErr_Format(PyExc_ImportError, "%s has an unexpected layout", tp->tp_name);
        return -1;
    }
    PyObject *mro = tp->tp_mro;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(mro); i++) {
        PyTypeObject *base = (PyTypeObject *)PyTuple_GET_ITEM(mro, i);
        if (!(base->tp_flags & Py_TPFLAGS_HEAPTYPE) || base->tp_members == NULL)
            continue;
        for (PyMemberDef *m = base->tp_members; m->name != NULL; m++) {
            if (m->type != T_OBJECT_EX)
                continue;
            int known = 0;
            for (int k = 0; k < count; k++)
                known |= strcmp(m->name, names[k]) == 0;
            if (!known) {
                PyErr_Format(PyExc_ImportError, "%s has an unknown slot %s", tp->tp_name,
                             m->name);
                return -1;
            }
        }
    }
    return 0;
}

#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

static int
init_class(PyTypeObject *tp, const char *const *names, Py_ssize_t **offsets, int count)
{
    for (int k = 0; k < count; k++) {
        if (slot_offset(tp, names[k], offsets[k]) < 0)
            return -1;
    }
    return check_slots(tp, names, count);
}

static int
init_state(void)
{
    Request_type = import_class("sipwire.message.message", "Request");
    Response_type = import_class("sipwire.message.message", "Response");
    Headers_type = import_class("sipwire.message.headers", "Headers");
    SipUri_type = import_class("sipwire.message.uri", "SipUri");
    Via_type = import_class("sipwire.message.via", "Via");
    Address_type = import_class("sipwire.message.address", "Address");
    CSeq_type = import_class("sipwire.message.fields", "CSeq");
    if (!Request_type || !Response_type || !Headers_type || !SipUri_type || !Via_type
        || !Address_type || !CSeq_type)
        return -1;

    static const char *const req_names[] = {"method", "_uri", "_uri_text", "version",
                                            "headers", "body"};
    Py_ssize_t *req_offs[] = {&off_req_method, &off_req_uri, &off_req_uri_text,
                              &off_req_version, &off_req_headers, &off_req_body};
    static const char *const resp_names[] = {"version", "status", "reason", "headers", "body"};
    Py_ssize_t *resp_offs[] = {&off_resp_version, &off_resp_status, &off_resp_reason,
                               &off_resp_headers, &off_resp_body};
    static const char *const hdr_names[] = {"_items", "_cache"};
    Py_ssize_t *hdr_offs[] = {&off_hdr_items, &off_hdr_cache};
    static const char *const uri_names[] = {"host", "user", "password", "port",
                                            "params", "headers", "scheme"};
    Py_ssize_t *uri_offs[] = {&off_uri_host, &off_uri_user, &off_uri_password, &off_uri_port,
                              &off_uri_params, &off_uri_headers, &off_uri_scheme};
    static const char *const via_names[] = {"transport", "host", "port", "params", "protocol"};
    Py_ssize_t *via_offs[] = {&off_via_transport, &off_via_host, &off_via_port,
                              &off_via_params, &off_via_protocol};
    static const char *const addr_names[] = {"uri", "display_name", "params"};
    Py_ssize_t *addr_offs[] = {&off_addr_uri, &off_addr_display_name, &off_addr_params};

    if (init_class(Request_type, req_names, req_offs, COUNT(req_names)) < 0
        || init_class(Response_type, resp_names, resp_offs, COUNT(resp_names)) < 0
        || init_class(Headers_type, hdr_names, hdr_offs, COUNT(hdr_names)) < 0
        || init_class(SipUri_type, uri_names, uri_offs, COUNT(uri_names)) < 0
        || init_class(Via_type, via_names, via_offs, COUNT(via_names)) < 0
        || init_class(Address_type, addr_names, addr_offs, COUNT(addr_names)) < 0)
        return -1;
    /* CSeq: a NamedTuple, i.e. a tuple subclass without instance dict. */
    if (!PyType_IsSubtype(CSeq_type, &PyTuple_Type) || CSeq_type->tp_dictoffset != 0
        || CSeq_type->tp_basicsize != PyTuple_Type.tp_basicsize) {
        PyErr_SetString(PyExc_ImportError, "fields.CSeq is not a plain NamedTuple");
        return -1;
    }

    key_cache = import_attr("sipwire.message.headers", "_KEY_CACHE");
    if (key_cache == NULL)
        return -1;
    if (!PyDict_CheckExact(key_cache)) {
        PyErr_SetString(PyExc_ImportError, "headers._KEY_CACHE is not a dict");
        return -1;
    }
    PyObject *forms = import_attr("sipwire.message.headers", "COMPACT_FORMS");
    if (forms == NULL)
        return -1;
    PyObject *items = PyMapping_Items(forms);
    Py_DECREF(forms);
    if (items == NULL)
        return -1;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(items); i++) {
        PyObject *pair = PyList_GET_ITEM(items, i);
        PyObject *letter = PyTuple_GET_ITEM(pair, 0), *key = PyTuple_GET_ITEM(pair, 1);
        Py_UCS4 c = PyUnicode_Check(letter) && PyUnicode_GET_LENGTH(letter) == 1
                        ? PyUnicode_READ_CHAR(letter, 0)
                        : 0;
        if (c < 'a' || c > 'z' || !PyUnicode_CheckExact(key) || !PyUnicode_IS_ASCII(key)) {
            Py_DECREF(items);
            PyErr_SetString(PyExc_ImportError, "unexpected COMPACT_FORMS entry");
            return -1;
        }
        Py_INCREF(key);
        PyUnicode_InternInPlace(&key);
        Py_XSETREF(compact[c - 'a'], key);
    }
    Py_DECREF(items);

    s_sip = PyUnicode_InternFromString("sip");
    s_sips = PyUnicode_InternFromString("sips");
    s_sip20 = PyUnicode_InternFromString("SIP/2.0");
    if (!s_sip || !s_sips || !s_sip20)
        return -1;
    for (int t = 1; t < H_COUNT; t++) {
        tracked_keys[t] = PyUnicode_InternFromString(tracked_names[t]);
        if (tracked_keys[t] == NULL)
            return -1;
    }
    init_ctab();
    return 0;
}

static PyMethodDef speedups_methods[] = {
    {"parse", speedups_parse, METH_O,
     "parse(data, /)\n--\n\n"
     "Parse the common forms of a SIP message in C; None hands ``data`` to the Python parser."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef speedups_module = {
    PyModuleDef_HEAD_INIT,
    "sipwire.message._speedups",
    "C accelerator for sipwire.message.parser.parse_message (see _speedups.c).",
    -1,
    speedups_methods,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    if (init_state() < 0)
        return NULL;
    return PyModule_Create(&speedups_module);
}
