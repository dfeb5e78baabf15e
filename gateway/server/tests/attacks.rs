//! Hostile requests against the real `portcullis` binary in front of a recording upstream.
//!
//! Every request here gets a clear error or is forwarded correctly enforced; after each test,
//! everything the upstream received is checked (each `query` and `match[]` reads only acme, no
//! tenant parameter, no credential), and the gateway must still be running and healthy. Raw
//! TCP is used where an HTTP client would tidy the request up before sending it.

mod hardening;
mod support;

use std::time::Duration;

use bytes::Bytes;
use http::{Method, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use hardening::{RawAnswer, assert_alive, assert_all_enforced, raw, read_all, vm_rss_kib};
use support::config::GatewayConfig;
use support::recorder::Recorder;
use support::{Portcullis, enc, get, send};

const ACME: &[(&str, &str)] = &[("authorization", "Bearer acme-token")];
const TOKEN: &str = "Authorization: Bearer acme-token\r\n";

/// How long a raw read waits for a byte before giving up on the server.
const PATIENCE: Duration = Duration::from_secs(10);

fn config(upstream: &str) -> String {
    GatewayConfig::new("prometheus", upstream)
        .server("max_body_bytes = 65536\nheader_timeout = \"1s\"\nbody_timeout = \"1s\"")
        .render()
}

async fn stack() -> (Recorder, Portcullis) {
    let recorder = Recorder::start().await;
    let portcullis = Portcullis::start(&config(&recorder.url)).await;
    (recorder, portcullis)
}

/// What every test checks last: nothing unenforced was forwarded, and the gateway still serves.
async fn finish(recorder: &Recorder, gw: &mut Portcullis) {
    assert_all_enforced(recorder, &["acme"]);
    assert_alive(gw).await;
    let fine = get(&gw.url("/api/v1/query?tenant=acme&query=up"), ACME)
        .await
        .unwrap();
    assert_eq!(fine.status, StatusCode::OK, "{}", fine.text());
}

/// Sends a request with the `acme` token and any extra headers.
async fn request(
    gw: &Portcullis,
    method: Method,
    path_and_query: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> support::Answer {
    let mut all = ACME.to_vec();
    all.extend_from_slice(headers);
    send(
        method,
        &gw.url(path_and_query),
        &all,
        Bytes::from(body.to_owned()),
    )
    .await
    .unwrap()
}

const FORM: (&str, &str) = ("content-type", "application/x-www-form-urlencoded");

// === Tenant parameters ===

#[tokio::test]
async fn duplicated_and_conflicting_tenant_parameters_are_refused() {
    let (upstream, mut gw) = stack().await;
    let get_400 = [
        "tenant=acme&tenant=victim",
        "tenant=victim&tenant=acme",
        "tenant=acme&tenant=acme",
        "te%6Eant=victim&tenant=acme",
        "%74%65%6e%61%6e%74=victim&tenant=acme",
        "tenant=acme&tenant=",
        "tenant=acme&tenant",
        "tenant=acme&tenant=acme&tenant=acme&tenant=victim",
        "",
        "tenant=",
    ];
    for params in get_400 {
        let answer = request(
            &gw,
            Method::GET,
            &format!("/api/v1/query?query=up&{params}"),
            &[],
            "",
        )
        .await;
        assert_eq!(
            answer.status,
            StatusCode::BAD_REQUEST,
            "{params}: {}",
            answer.text()
        );
        assert_eq!(answer.json()["errorType"], "bad_data");
    }
    // URL and body together, in every arrangement, and a form type spelled unusually.
    let post_400 = [
        ("tenant=acme", "tenant=victim&query=up", FORM),
        ("tenant=acme", "tenant=acme&query=up", FORM),
        ("", "tenant=acme&tenant=victim&query=up", FORM),
        ("query=up", "te%6eant=victim&tenant=acme", FORM),
        (
            "tenant=acme",
            "tenant=victim",
            (
                "content-type",
                "Application/X-WWW-Form-Urlencoded; charset=UTF-8",
            ),
        ),
    ];
    for (url, body, content_type) in post_400 {
        let path = format!("/api/v1/query?{url}");
        let answer = request(&gw, Method::POST, &path, &[content_type], body).await;
        assert_eq!(
            answer.status,
            StatusCode::BAD_REQUEST,
            "{url} / {body}: {}",
            answer.text()
        );
    }
    // Values that only look like acme are other tenants: the allowlist refuses them.
    for tenant in [
        "victim",
        "ACME",
        "acme%00",
        "%20acme",
        "acme%20",
        "acme,victim",
        "acme|victim",
    ] {
        let answer = request(
            &gw,
            Method::GET,
            &format!("/api/v1/query?query=up&tenant={tenant}"),
            &[],
            "",
        )
        .await;
        assert_eq!(
            answer.status,
            StatusCode::FORBIDDEN,
            "{tenant}: {}",
            answer.text()
        );
    }
    assert!(upstream.received().is_empty(), "{:?}", upstream.received());

    // Names that are not the tenant parameter are ordinary parameters, and a GET's body is no
    // input: acme is read, once.
    let path = "/api/v1/query?Tenant=victim&tenant%5B%5D=victim&tenant=acme&query=up";
    let answer = request(
        &gw,
        Method::GET,
        path,
        &[FORM, ("x-tenant", "victim")],
        "tenant=victim",
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let got = upstream.only();
    assert_eq!(got.url_values("query"), ["up{namespace=\"acme\"}"]);
    assert!(
        got.body.is_empty(),
        "a GET body was forwarded: {:?}",
        got.body
    );
    finish(&upstream, &mut gw).await;
}

// === Content types ===

#[tokio::test]
async fn post_bodies_that_are_not_forms_are_415_and_not_forwarded() {
    let (upstream, mut gw) = stack().await;
    let multipart = "--x\r\nContent-Disposition: form-data; name=\"query\"\r\n\r\nup\r\n--x--\r\n";
    let gzip_like = "\u{1f}\u{8b}\u{8}\u{0}query=up";
    let cases: [(Vec<(&str, &str)>, &str); 7] = [
        (
            vec![("content-type", "multipart/form-data; boundary=x")],
            multipart,
        ),
        (
            vec![("content-type", "multipart/form-data; boundary=x")],
            "query=up&tenant=acme",
        ),
        (vec![("content-type", "text/plain")], "query=up"),
        (
            vec![("content-type", "application/json")],
            r#"{"query":"up"}"#,
        ),
        (vec![], "query=up"),
        (
            vec![("content-type", "application/x-www-form-urlencodedx")],
            "query=up",
        ),
        (vec![("content-type", "text/plain"), FORM], "query=up"),
    ];
    for (headers, body) in &cases {
        let answer = request(
            &gw,
            Method::POST,
            "/api/v1/query?tenant=acme",
            headers,
            body,
        )
        .await;
        assert_eq!(
            answer.status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{headers:?}: {}",
            answer.text()
        );
    }
    // A body that claims to be compressed is read as the form it says it is; real gzip bytes
    // are not UTF-8 form text.
    let gzip = [FORM, ("content-encoding", "gzip")];
    let answer = request(
        &gw,
        Method::POST,
        "/api/v1/query?tenant=acme",
        &gzip,
        gzip_like,
    )
    .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.text());
    assert!(upstream.received().is_empty(), "{:?}", upstream.received());

    // Two content types, the form first: read as a form, as Go reads it, and forwarded as one.
    let answer = request(
        &gw,
        Method::POST,
        "/api/v1/query?tenant=acme",
        &[FORM, ("content-type", "text/plain")],
        "query=up",
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let got = upstream.only();
    assert_eq!(got.body_values("query"), ["up{namespace=\"acme\"}"]);
    let types: Vec<_> = got.headers.get_all("content-type").iter().collect();
    assert_eq!(types, ["application/x-www-form-urlencoded"]);
    finish(&upstream, &mut gw).await;
}

// === Size and depth ===

#[tokio::test]
async fn oversized_and_deeply_nested_queries_are_refused_cleanly() {
    let (upstream, mut gw) = stack().await;
    let refused = [
        format!("{}up{}", "(".repeat(10_000), ")".repeat(10_000)),
        format!("{}up", "-".repeat(20_000)),
        vec!["up"; 6_000].join(" or "),
        format!("sum({}up{})", "rate(".repeat(3_000), "[5m])".repeat(3_000)),
        format!("up{{job=~\"{}\"}}", "(".repeat(3_000)),
        r#"x{job=~"((a{100}){100}){100}"}"#.to_owned(),
        format!("{{{}}}", vec!["a=\"b\""; 5_000].join(",")),
    ];
    for query in &refused {
        let form = format!("tenant=acme&query={}", enc(query));
        let answer = request(&gw, Method::POST, "/api/v1/query", &[FORM], &form).await;
        let status = answer.status;
        assert!(
            status == StatusCode::BAD_REQUEST || status == StatusCode::PAYLOAD_TOO_LARGE,
            "{}…: {status} {}",
            &query[..40.min(query.len())],
            answer.text()
        );
        assert_eq!(answer.json()["status"], "error");
    }
    // Past the body limit, whether the length is declared or chunked.
    let big = format!("tenant=acme&query=up&pad={}", "a".repeat(70_000));
    let answer = request(&gw, Method::POST, "/api/v1/query", &[FORM], &big).await;
    assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE);
    let chunked = chunked_post(&big);
    let answer = raw(gw.port, chunked.as_bytes(), PATIENCE).await;
    assert_eq!(answer.status(), Some(413), "{}", answer.text);

    // A 200 KB query in the URL: past the enforcer's size limit, or the server's header limit.
    let long = format!(
        "GET /api/v1/query?tenant=acme&query={} HTTP/1.1\r\nHost: gw\r\n{TOKEN}\r\n",
        "a".repeat(200_000)
    );
    let answer = raw(gw.port, long.as_bytes(), PATIENCE).await;
    let status = answer.status();
    assert!(
        status.is_none_or(|s| [400, 414, 431].contains(&s)),
        "{}",
        answer.text
    );
    assert!(upstream.received().is_empty(), "{:?}", upstream.received());
    finish(&upstream, &mut gw).await;
}

/// Texts that made promql-parser 0.11 panic (found by the fuzzer): each is a 400 with the
/// parser's kind of message, and the gateway goes on serving.
#[tokio::test]
async fn queries_that_panicked_the_parser_are_400_bad_data() {
    let (upstream, mut gw) = stack().await;
    for query in [
        "x[044444444444444444444444444444444444444444444444444.0001]",
        "rate(x[1e300])",
        "max_over_time(x[1h:1e300])",
        "x offset Inf",
        "x offset -1e300",
    ] {
        let path = format!("/api/v1/query?tenant=acme&query={}", enc(query));
        let answer = request(&gw, Method::GET, &path, &[], "").await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(answer.json()["errorType"], "bad_data", "{query}");
        assert_eq!(
            answer.json()["error"],
            "invalid parameter \"query\": parse error: duration out of range",
            "{query}"
        );
        let selector = format!("/api/v1/series?tenant=acme&match[]={}", enc(query));
        let answer = request(&gw, Method::GET, &selector, &[], "").await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{query}");
    }
    assert!(upstream.received().is_empty(), "{:?}", upstream.received());
    let answer = request(
        &gw,
        Method::GET,
        "/api/v1/query?tenant=acme&query=up",
        &[],
        "",
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    finish(&upstream, &mut gw).await;
}

/// A POST of `body` as one chunk, with the acme token.
fn chunked_post(body: &str) -> String {
    format!(
        "POST /api/v1/query HTTP/1.1\r\nHost: gw\r\n{TOKEN}\
         Content-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\
         Connection: close\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
        body.len()
    )
}

// === Slow clients ===

#[tokio::test]
async fn slow_clients_are_cut_off_by_the_header_and_body_timeouts() {
    let (upstream, mut gw) = stack().await;

    // Headers that never end: the connection is closed (header_timeout = 1s).
    let partial = format!("GET /api/v1/query?tenant=acme&query=up HTTP/1.1\r\nHost: gw\r\n{TOKEN}");
    let answer = raw(gw.port, partial.as_bytes(), PATIENCE).await;
    assert!(
        answer.closed,
        "the server kept a connection with unfinished headers open"
    );
    assert!(answer.statuses.iter().all(|&s| s != 200), "{}", answer.text);

    // Headers trickled a byte at a time: cut off before they are complete.
    let mut stream = TcpStream::connect(("127.0.0.1", gw.port)).await.unwrap();
    let mut cut_off = false;
    for byte in partial.bytes().chain(std::iter::repeat_n(b'X', 100)) {
        if stream.write_all(&[byte]).await.is_err() {
            cut_off = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if !cut_off {
        cut_off = read_all(&mut stream, PATIENCE).await.closed;
    }
    assert!(cut_off, "a trickling client was never cut off");

    // A body that stops half-way: 408 (body_timeout = 1s), declared length or chunked.
    let declared = format!(
        "POST /api/v1/query?tenant=acme HTTP/1.1\r\nHost: gw\r\n{TOKEN}\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\nquery=up"
    );
    let chunked = format!(
        "POST /api/v1/query?tenant=acme HTTP/1.1\r\nHost: gw\r\n{TOKEN}\
         Content-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n\
         8\r\nquery=up\r\n"
    );
    for stalled in [declared, chunked] {
        let answer = raw(gw.port, stalled.as_bytes(), PATIENCE).await;
        assert_eq!(answer.status(), Some(408), "{}", answer.text);
        assert!(
            answer.text.contains("\"errorType\":\"timeout\""),
            "{}",
            answer.text
        );
    }

    // A hundred stalled connections at once do not keep others from being served.
    let mut stalled = Vec::new();
    for _ in 0..100 {
        let mut stream = TcpStream::connect(("127.0.0.1", gw.port)).await.unwrap();
        stream.write_all(partial.as_bytes()).await.unwrap();
        stalled.push(stream);
    }
    let served = get(&gw.url("/api/v1/query?tenant=acme&query=up"), ACME)
        .await
        .unwrap();
    assert_eq!(served.status, StatusCode::OK);
    for mut stream in stalled {
        assert!(
            read_all(&mut stream, PATIENCE).await.closed,
            "a stalled connection stayed open"
        );
    }
    assert!(upstream.received().len() == 1, "{:?}", upstream.received());
    finish(&upstream, &mut gw).await;
}

/// An HTTP/2 frame: length, type, flags, stream id, payload.
fn h2_frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let length = u32::try_from(payload.len()).unwrap().to_be_bytes();
    let mut frame = length[1..].to_vec();
    frame.extend([kind, flags]);
    frame.extend(stream.to_be_bytes());
    frame.extend(payload);
    frame
}

// The protocol is only known from the first bytes, and HTTP/2 has no header timer: a connection
// that sends nothing, part of the preface, or a first HEADERS frame that never ends was held
// open for ever, and enough of them, sent without any credential, use up the gateway's file
// descriptors. So is an HTTP/2 connection whose peer stops answering pings.
#[tokio::test]
async fn silent_and_unfinished_connections_are_closed_whatever_the_protocol() {
    let (upstream, mut gw) = stack().await;
    const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    let start = [PREFACE, &h2_frame(4, 0, 0, b"")].concat();
    // `GET /` as HPACK static-table entries, and an authority.
    let get_root = [0x82, 0x86, 0x84, 0x41, 0x02, b'g', b'w'];
    let cases: [(&str, Vec<u8>); 5] = [
        ("nothing at all", Vec::new()),
        ("part of the HTTP/2 preface", PREFACE[..9].to_vec()),
        ("the HTTP/2 preface and settings", start.clone()),
        (
            "a HEADERS frame without END_HEADERS",
            [&start[..], &h2_frame(1, 0, 1, &get_root[..1])].concat(),
        ),
        (
            "one request, then no answer to pings",
            [&start[..], &h2_frame(1, 0x5, 1, &get_root)].concat(),
        ),
    ];
    for (case, bytes) in &cases {
        let answer = raw(gw.port, bytes, PATIENCE).await;
        assert!(answer.closed, "{case}: the connection stayed open");
    }
    assert!(upstream.received().is_empty(), "{:?}", upstream.received());
    finish(&upstream, &mut gw).await;
}

// === Logs ===

// Tenant values are the caller's text. In the text log format, a field written with `%` is
// printed as it is, so a tenant holding a line break wrote a line of the caller's choosing (a
// forged audit decision, say) under every event of the authorize span: here SpiceDB's failure,
// logged at debug. Each value is quoted and escaped instead.
#[tokio::test]
async fn a_tenant_value_cannot_forge_a_log_line() {
    let spicedb = portcullis_authorizer_spicedb::testing::SpiceDb::start().await;
    let upstream = Recorder::start().await;
    let authorizer = format!(
        "type = \"spicedb\"\n{}timeout = \"2s\"",
        spicedb.config_toml()
    );
    let config = GatewayConfig::new("prometheus", &upstream.url)
        .tenant_also("multi = true")
        .authorizer(&authorizer)
        .render();
    let mut gw = Portcullis::start(&config).await;
    let forged = "FORGED portcullis::audit: authorization decision authz.decision=allow";
    let answer = get(
        &gw.url(&format!(
            "/api/v1/query?query=up&tenant=acme&tenant={}",
            enc(&format!("x\n{forged}"))
        )),
        ACME,
    )
    .await
    .unwrap();
    // No schema: SpiceDB rejects the question, which the gateway logs inside the authorize span.
    assert_eq!(
        answer.status,
        StatusCode::INTERNAL_SERVER_ERROR,
        "{}",
        answer.text()
    );
    let logs = gw.logs();
    assert!(logs.contains("SpiceDB failed"), "{logs}");
    for line in logs.lines() {
        assert!(!line.starts_with("FORGED"), "a forged log line: {line}");
    }
    assert!(upstream.received().is_empty(), "{:?}", upstream.received());
    assert_alive(&mut gw).await;
}

// === Encoding ===

#[tokio::test]
async fn invalid_utf8_and_bad_percent_encoding_are_400() {
    let (upstream, mut gw) = stack().await;
    for query in [
        "up%ff",
        "%C0%AF",
        "%ED%A0%80",
        "up%",
        "up%g1",
        "%%31",
        "up%2",
        "up;x",
    ] {
        let answer = get(
            &gw.url(&format!("/api/v1/query?tenant=acme&query={query}")),
            ACME,
        )
        .await
        .unwrap();
        assert_eq!(
            answer.status,
            StatusCode::BAD_REQUEST,
            "{query}: {}",
            answer.text()
        );
        let form = format!("tenant=acme&query={query}");
        let answer = request(&gw, Method::POST, "/api/v1/query", &[FORM], &form).await;
        assert_eq!(
            answer.status,
            StatusCode::BAD_REQUEST,
            "body {query}: {}",
            answer.text()
        );
    }
    // Raw bytes that are not allowed in a request target, or in a header value.
    let raw_cases: [&[u8]; 4] = [
        b"GET /api/v1/query?tenant=acme&query=up\xff HTTP/1.1\r\nHost: gw\r\n",
        b"GET /api/v1/query?tenant=acme&query=\xc3\xa9 HTTP/1.1\r\nHost: gw\r\n",
        b"GET /api/v1/qu\x00ery?tenant=acme&query=up HTTP/1.1\r\nHost: gw\r\n",
        b"GET /api/v1/query?tenant=acme&query=up HTTP/1.1\r\nHost: gw\r\nX-Bad: a\x00b\r\n",
    ];
    for start in raw_cases {
        let request = [start, TOKEN.as_bytes(), b"Connection: close\r\n\r\n"].concat();
        let answer = raw(gw.port, &request, PATIENCE).await;
        let status = answer.status();
        assert!(
            status.is_none_or(|s| (400..500).contains(&s)),
            "{}: {}",
            String::from_utf8_lossy(start),
            answer.text
        );
    }
    // A credential that is not text is 401, and the token is never echoed.
    let obs_text = b"GET /api/v1/query?tenant=acme&query=up HTTP/1.1\r\nHost: gw\r\n\
                     Authorization: Bearer acm\xe9-secret\r\nConnection: close\r\n\r\n";
    let answer = raw(gw.port, obs_text, PATIENCE).await;
    assert_eq!(answer.status(), Some(401), "{}", answer.text);
    assert!(!answer.text.contains("secret"));
    assert!(upstream.received().is_empty(), "{:?}", upstream.received());

    // Well-formed escapes of ordinary characters are fine.
    let answer = get(&gw.url("/api/v1/query?%74enant=%61cme&query=%75p"), ACME)
        .await
        .unwrap();
    assert_eq!(answer.status, StatusCode::OK);
    finish(&upstream, &mut gw).await;
}

// === Hop-by-hop headers and framing ===

#[tokio::test]
async fn hop_by_hop_headers_smuggle_nothing_upstream() {
    let (upstream, mut gw) = stack().await;
    let answer = request(
        &gw,
        Method::GET,
        "/api/v1/query?tenant=acme&query=up",
        &[
            (
                "connection",
                "keep-alive, Authorization, X-Scope-OrgID, X-Custom",
            ),
            ("x-scope-orgid", "victim"),
            ("x-custom", "1"),
            ("keep-alive", "timeout=5"),
            ("proxy-authorization", "Basic dmljdGltOnNlY3JldA=="),
            ("te", "trailers"),
            ("upgrade", "h2c"),
            ("trailer", "x-late"),
        ],
        "",
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let got = upstream.only();
    for name in [
        "authorization",
        "x-scope-orgid",
        "x-custom",
        "connection",
        "keep-alive",
        "proxy-authorization",
        "te",
        "upgrade",
        "trailer",
    ] {
        assert!(
            !got.headers.contains_key(name),
            "{name} forwarded: {:?}",
            got.headers
        );
    }
    // The credential was read before the hop-by-hop headers were dropped.
    assert_eq!(got.url_values("query"), ["up{namespace=\"acme\"}"]);
    finish(&upstream, &mut gw).await;
}

#[tokio::test]
async fn conflicting_framing_never_smuggles_a_second_request() {
    let (upstream, mut gw) = stack().await;
    let smuggled = "GET /api/v1/status/tsdb HTTP/1.1\r\nHost: gw\r\n\r\n";
    let head = format!(
        "POST /api/v1/query?tenant=acme HTTP/1.1\r\nHost: gw\r\n{TOKEN}\
         Content-Type: application/x-www-form-urlencoded\r\n"
    );
    let cases = [
        // Content-Length and Transfer-Encoding together.
        format!(
            "{head}Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n8\r\nquery=up\r\n0\r\n\r\n{smuggled}"
        ),
        format!(
            "{head}Transfer-Encoding: chunked\r\nContent-Length: 200\r\n\r\n8\r\nquery=up\r\n0\r\n\r\n{smuggled}"
        ),
        // Two lengths that disagree, and a list of lengths.
        format!("{head}Content-Length: 8\r\nContent-Length: 60\r\n\r\nquery=up{smuggled}"),
        format!("{head}Content-Length: 8, 60\r\n\r\nquery=up{smuggled}"),
        // Transfer codings that are not, or not only, chunked.
        format!("{head}Transfer-Encoding: xchunked\r\n\r\n8\r\nquery=up\r\n0\r\n\r\n{smuggled}"),
        format!(
            "{head}Transfer-Encoding: chunked, identity\r\n\r\n8\r\nquery=up\r\n0\r\n\r\n{smuggled}"
        ),
        format!("{head}Transfer-Encoding: gzip\r\n\r\n{smuggled}"),
        format!("{head}Transfer-Encoding : chunked\r\n\r\n8\r\nquery=up\r\n0\r\n\r\n{smuggled}"),
        format!(
            "{head}Transfer-Encoding:\tchunked\r\nTransfer-Encoding: identity\r\n\r\n8\r\nquery=up\r\n0\r\n\r\n{smuggled}"
        ),
        // A negative length, and a chunk size that overflows.
        format!("{head}Content-Length: -1\r\n\r\nquery=up{smuggled}"),
        format!(
            "{head}Transfer-Encoding: chunked\r\n\r\nfffffffffffffffff1\r\nquery=up\r\n0\r\n\r\n{smuggled}"
        ),
        // A bare LF and an obsolete line folding.
        format!("{head}Content-Length: 8\n\nquery=up{smuggled}"),
        format!("{head}X-Folded: a\r\n b\r\nContent-Length: 8\r\n\r\nquery=up{smuggled}"),
    ];
    for case in &cases {
        let answer = raw(gw.port, case.as_bytes(), Duration::from_secs(3)).await;
        for status in &answer.statuses {
            assert!(
                [200, 400, 404, 408, 411, 413, 501].contains(status),
                "{case:?}: {}",
                answer.text
            );
        }
    }
    for received in upstream.received() {
        assert_eq!(received.path, "/api/v1/query", "smuggled: {received:?}");
    }
    finish(&upstream, &mut gw).await;
}

// === Paths ===

#[tokio::test]
async fn path_tricks_never_reach_the_upstream() {
    let (upstream, mut gw) = stack().await;
    let targets = [
        "http://victim.example/api/v1/status/config",
        "*",
        "/api/v1/query%00",
        "/api/v1/query%2F",
        "/api/v1/query%2f..%2fstatus%2fconfig",
        "/api/v1/query;jsessionid=1",
        "/api/v1/query\\",
        "/api/v1/query/.",
        "/./api/v1/query",
        "/%61pi/v1/query",
        "/api/v1/Query",
        "/api/v1/label/job%2F..%2F..%2Fstatus%2Fconfig/values",
        "/api/v1/label/__name__/values/../../status/config",
        "/api/v1/label/%2e/values",
        "/api/v1/label/a%00b/values",
        "/api/v1/label/a%0Ab/values",
        "/federate/../api/v1/status/config",
        "/api/v1/admin/tsdb/delete_series",
        "/api/v2/query",
        "",
    ];
    for target in targets {
        let sep = if target.contains('?') { '&' } else { '?' };
        let query = if target == "*" || target.is_empty() {
            String::new()
        } else {
            format!("{sep}tenant=acme&query=up")
        };
        for method in ["GET", "POST", "OPTIONS"] {
            let request = format!(
                "{method} {target}{query} HTTP/1.1\r\nHost: gw\r\n{TOKEN}Content-Length: 0\r\n\
                 Connection: close\r\n\r\n"
            );
            let answer = raw(gw.port, request.as_bytes(), PATIENCE).await;
            let status = answer.status();
            assert!(
                status.is_none_or(|s| [400, 404, 405].contains(&s)),
                "{method} {target}: {}",
                answer.text
            );
        }
    }
    let connect = format!(
        "CONNECT 127.0.0.1:{} HTTP/1.1\r\nHost: gw\r\n{TOKEN}\r\n",
        gw.admin_port
    );
    let answer = raw(gw.port, connect.as_bytes(), Duration::from_secs(3)).await;
    assert!(
        answer.status().is_none_or(|s| s >= 400),
        "CONNECT tunnelled: {}",
        answer.text
    );
    assert!(upstream.received().is_empty(), "{:?}", upstream.received());

    // The absolute form of a served path is served under its path only, and a label name with
    // odd characters travels re-encoded.
    let absolute = format!(
        "GET http://victim.example/api/v1/query?tenant=acme&query=up HTTP/1.1\r\nHost: gw\r\n\
         {TOKEN}Connection: close\r\n\r\n"
    );
    let answer = raw(gw.port, absolute.as_bytes(), PATIENCE).await;
    assert_eq!(answer.status(), Some(200), "{}", answer.text);
    assert_eq!(upstream.only().path, "/api/v1/query");
    upstream.clear();
    let answer = get(&gw.url("/api/v1/label/a%20b.c/values?tenant=acme"), ACME)
        .await
        .unwrap();
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(upstream.only().path, "/api/v1/label/a%20b.c/values");
    finish(&upstream, &mut gw).await;
}

// === Many parameters ===

#[tokio::test]
async fn very_many_parameters_and_copies_are_each_enforced() {
    let (upstream, mut gw) = stack().await;
    // Two thousand copies of the query, half in the URL and half in the body.
    let copies: String = (0..1000).map(|i| format!("&query=m{i}")).collect();
    let path = format!("/api/v1/query?tenant=acme{copies}");
    let answer = request(&gw, Method::POST, &path, &[FORM], &copies[1..]).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    // Enforced, the URL's copies outgrow a URL and join the body's in the form.
    let got = upstream.only();
    assert_eq!(
        got.url_values("query").len() + got.body_values("query").len(),
        2000
    );
    upstream.clear();

    // Six thousand other parameters travel along; the query among them is enforced.
    let junk: String = (0..3000).map(|i| format!("p{i}=v&")).collect();
    let form = format!("{junk}query=up&tenant=acme&{junk}");
    let answer = request(&gw, Method::POST, "/api/v1/query", &[FORM], &form).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(upstream.only().body_values("p2999").len(), 2);
    upstream.clear();

    // A thousand series selectors, each extended.
    let selectors: String = (0..1000)
        .map(|i| format!("&match[]={}", enc(&format!("m{i}{{job=\"j{i}\"}}"))))
        .collect();
    let form = format!("tenant=acme{selectors}");
    let answer = request(&gw, Method::POST, "/api/v1/series", &[FORM], &form).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(upstream.only().body_values("match[]").len(), 1000);
    upstream.clear();

    // Separators only.
    let answer = request(
        &gw,
        Method::POST,
        "/api/v1/query?tenant=acme&query=up",
        &[FORM],
        &"&".repeat(60_000),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK);
    finish(&upstream, &mut gw).await;
}

// Edge case C19: enforcement lengthens a query; a GET whose enforced URL no longer fits a URI
// must get a clear 414 (or travel another way), not a 500.
#[tokio::test]
async fn a_get_that_outgrows_the_uri_limit_is_414_not_500() {
    let (upstream, mut gw) = stack().await;
    let selectors: String = (0..1000)
        .map(|i| format!("&match[]={}", enc(&format!("m{i}{{job=\"j{i}\"}}"))))
        .collect();
    let query = vec!["up"; 3000].join(" or ");
    for path in [
        format!("/api/v1/series?tenant=acme{selectors}"),
        format!("/api/v1/query?tenant=acme&query={}", enc(&query)),
    ] {
        assert!(path.len() < 60_000, "the request itself fits");
        let answer = get(&gw.url(&path), ACME).await.unwrap();
        let status = answer.status;
        assert!(
            status == StatusCode::URI_TOO_LONG || status == StatusCode::OK,
            "{}: {status} {}",
            &path[..30],
            answer.text()
        );
        if status == StatusCode::URI_TOO_LONG {
            assert_eq!(answer.json()["status"], "error");
        }
    }
    finish(&upstream, &mut gw).await;
}

// === Huge headers ===

#[tokio::test]
async fn huge_headers_are_refused_and_the_gateway_keeps_serving() {
    let (upstream, mut gw) = stack().await;
    let line = "GET /api/v1/query?tenant=acme&query=up HTTP/1.1\r\nHost: gw\r\n";
    let cases = [
        format!("{line}{TOKEN}X-Big: {}\r\n\r\n", "a".repeat(1_000_000)),
        format!(
            "{line}Authorization: Bearer {}\r\n\r\n",
            "t".repeat(500_000)
        ),
        format!(
            "{line}{TOKEN}{}\r\n",
            (0..500)
                .map(|i| format!("X-H{i}: v\r\n"))
                .collect::<String>()
        ),
        format!(
            "{line}{TOKEN}Connection: {}\r\n\r\n",
            vec!["x-a"; 20_000].join(",")
        ),
    ];
    for case in &cases {
        let answer: RawAnswer = raw(gw.port, case.as_bytes(), PATIENCE).await;
        let status = answer.status();
        assert!(
            status.is_none_or(|s| [200, 400, 401, 413, 431].contains(&s)),
            "{}…: {}",
            &case[..80],
            answer.text
        );
    }
    finish(&upstream, &mut gw).await;
}

// === HTTP/2 ===

#[tokio::test]
async fn http2_requests_are_enforced_like_http1() {
    let (upstream, mut gw) = stack().await;
    let client: Client<HttpConnector, Full<Bytes>> = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build(HttpConnector::new());
    let h2 = |path: &str, tenant_twice: bool| {
        let mut uri = gw.url(path);
        if tenant_twice {
            uri.push_str("&tenant=victim");
        }
        http::Request::get(uri)
            .header("authorization", "Bearer acme-token")
            .header("te", "trailers")
            .body(Full::new(Bytes::new()))
            .unwrap()
    };
    let answer = client
        .request(h2("/api/v1/query?tenant=acme&query=up", false))
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    assert_eq!(answer.version(), http::Version::HTTP_2);
    let refused = client
        .request(h2("/api/v1/query?tenant=acme&query=up", true))
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    let body = refused.into_body().collect().await.unwrap().to_bytes();
    assert!(String::from_utf8_lossy(&body).contains("exactly once"));
    let got = upstream.only();
    assert_eq!(got.url_values("query"), ["up{namespace=\"acme\"}"]);
    assert!(!got.headers.contains_key("te"));
    finish(&upstream, &mut gw).await;
}

// === Memory ===

#[tokio::test]
async fn memory_stays_bounded_under_bursts_of_hostile_requests() {
    let (upstream, mut gw) = stack().await;
    let pid = gw.process.pid();
    let before = vm_rss_kib(pid);
    burst(&gw).await;
    let after_first = vm_rss_kib(pid);
    burst(&gw).await;
    let after_second = vm_rss_kib(pid);
    // Generous bounds: a burst may grow the allocator's pools once, but a second identical
    // burst must not grow them by much again.
    assert!(
        after_first < before + 256 * 1024,
        "{before} KiB before, {after_first} KiB after a burst"
    );
    assert!(
        after_second < after_first + 64 * 1024,
        "{after_first} KiB after one burst, {after_second} KiB after two"
    );
    upstream.clear();
    finish(&upstream, &mut gw).await;
}

/// 300 hostile requests, 32 at a time: large bodies, deep queries, many parameters, large
/// headers, bodies that stop half-way.
async fn burst(gw: &Portcullis) {
    let port = gw.port;
    let url = gw.url("/api/v1/query");
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..300 {
        if tasks.len() >= 32 {
            tasks.join_next().await;
        }
        let url = url.clone();
        tasks.spawn(async move {
            let headers = [ACME[0], FORM];
            let body = match i % 5 {
                0 => format!("tenant=acme&query=up&pad={}", "a".repeat(64_000)),
                1 => {
                    let deep = format!("{}up{}", "(".repeat(20_000), ")".repeat(20_000));
                    format!("tenant=acme&query={}", enc(&deep))
                }
                2 => (0..4_000).map(|i| format!("p{i}=v&")).collect::<String>() + "tenant=acme&query=up",
                3 => {
                    let huge = "h".repeat(60_000);
                    let headers = [ACME[0], ("x-pad", huge.as_str())];
                    let _ = send(Method::GET, &format!("{url}?tenant=acme&query=up"), &headers, Bytes::new())
                        .await;
                    return;
                }
                _ => {
                    let stalled = format!(
                        "POST /api/v1/query HTTP/1.1\r\nHost: gw\r\n{TOKEN}Content-Length: 60000\r\n\
                         Content-Type: application/x-www-form-urlencoded\r\nConnection: close\r\n\r\n\
                         query=up"
                    );
                    raw(port, stalled.as_bytes(), PATIENCE).await;
                    return;
                }
            };
            let _ = send(Method::POST, &url, &headers, Bytes::from(body)).await;
        });
    }
    while tasks.join_next().await.is_some() {}
}

// === Loki ===

fn loki_config(upstream: &str) -> String {
    GatewayConfig::new("loki", upstream)
        .enforcer(
            "org_id",
            "type = \"tenant_header\"\nheader = \"X-Scope-OrgID\"",
        )
        .render()
}

/// Asserts every request the Loki upstream received reads only acme: its queries and stream
/// selectors enforced, and exactly one `X-Scope-OrgID`, acme's.
fn assert_loki_enforced(recorder: &Recorder) {
    for got in recorder.received() {
        let org_ids: Vec<_> = got.headers.get_all("x-scope-orgid").iter().collect();
        assert_eq!(org_ids, ["acme"], "{got:?}");
        let selector = !got.path.ends_with("/query") && !got.path.ends_with("/query_range");
        let mut texts = Vec::new();
        for name in ["query", "match[]", "match"] {
            texts.extend(got.url_values(name));
            texts.extend(got.body_values(name));
        }
        assert!(!texts.is_empty(), "nothing to enforce in {got:?}");
        for text in &texts {
            let enforced = hardening::is_logql_enforced(text, &["acme"], selector);
            assert!(enforced, "unenforced {text:?} on {}", got.path);
        }
        assert!(got.url_values("tenant").is_empty() && got.body_values("tenant").is_empty());
        assert!(!got.headers.contains_key("authorization"));
    }
}

#[tokio::test]
async fn loki_requests_cannot_choose_their_org_id_or_hide_a_selector() {
    let upstream = Recorder::start().await;
    let mut gw = Portcullis::start(&loki_config(&upstream.url)).await;
    let org = [("x-scope-orgid", "victim|acme")];
    let hop = [("connection", "X-Scope-OrgID"), ("x-scope-orgid", "victim")];
    let queries = [
        r#"{app="api"}"#,
        r#"{app="api", namespace="victim"} |= "{namespace=\"victim\"}""#,
        "{app=\"api\"} # {namespace=\"victim\"}\n or {namespace=~\".+\"}",
        r#"sum by (namespace) (count_over_time({namespace!="acme"} | json | line_format "{{.x}}" [5m]))"#,
        r#"{app="api"} | label_format namespace="victim""#,
        "{app=`a`} /* } {namespace=\"victim\"} */",
    ];
    for query in queries {
        for headers in [&org[..], &hop[..]] {
            let path = format!("/loki/api/v1/query_range?tenant=acme&query={}", enc(query));
            let answer = request(&gw, Method::GET, &path, headers, "").await;
            assert!(
                answer.status == StatusCode::OK || answer.status == StatusCode::BAD_REQUEST,
                "{query}: {} {}",
                answer.status,
                answer.text()
            );
        }
    }
    // Both spellings of the series selector, several of each, in the URL and the body.
    let both = format!(
        "tenant=acme&match={}&match[]={}&match[]={}",
        enc(r#"{app="a"}"#),
        enc(r#"{namespace="victim"}"#),
        enc("{}")
    );
    let answer = request(&gw, Method::POST, "/loki/api/v1/series", &[FORM], &both).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let path = format!("/loki/api/v1/series?{both}");
    let answer = request(&gw, Method::GET, &path, &org, "").await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    for path in [
        "/loki/api/v1/labels?tenant=acme",
        "/loki/api/v1/label/namespace/values?tenant=acme",
        "/loki/api/v1/index/volume?tenant=acme",
    ] {
        let answer = request(&gw, Method::GET, path, &org, "").await;
        assert_eq!(answer.status, StatusCode::OK, "{path}: {}", answer.text());
    }
    // Tenants twice, and paths that are not served.
    let twice = format!(
        "/loki/api/v1/query?tenant=acme&tenant=victim&query={}",
        enc("{a=\"b\"}")
    );
    let answer = request(&gw, Method::GET, &twice, &[], "").await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    for path in [
        "/loki/api/v1/push",
        "/loki/api/v1/query/",
        "/loki/api/v1/rules",
        "/loki/api/v1/delete",
    ] {
        let answer = request(
            &gw,
            Method::POST,
            &format!("{path}?tenant=acme"),
            &[FORM],
            "",
        )
        .await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{path}");
    }
    assert_loki_enforced(&upstream);
    assert!(
        upstream.received().len() >= 10,
        "{:?}",
        upstream.received().len()
    );
    assert_alive(&mut gw).await;
}
