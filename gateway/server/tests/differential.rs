//! The differential check: the same requests through Portcullis and through prom-label-proxy
//! (v0.14.0), both in front of one real Prometheus holding three tenants (acme, globex,
//! initech), must give the same answers series for series. Where they differ, the case says so
//! and why (`docs/differential.md` explains each kind), and the test checks that the difference
//! is exactly that one. Whatever the answers, none of Portcullis's may hold another tenant's
//! series.

mod hardening;
mod support;

use std::process::{Command, Stdio};

use bytes::Bytes;
use http::{Method, StatusCode};
use serde_json::Value;
use support::config::GatewayConfig;
use support::{Answer, Portcullis, Process, Prometheus, enc, end, free_port, go_bin, send, tool};

fn config(upstream: &str) -> String {
    GatewayConfig::new("prometheus", upstream)
        .tenant_also("multi = true")
        .render()
}

/// prom-label-proxy in front of `upstream`, reading the tenant from the `tenant` parameter as
/// Portcullis does.
struct LabelProxy {
    process: Process,
    port: u16,
}

impl LabelProxy {
    async fn start(upstream: &str) -> Self {
        let port = free_port();
        let mut process = Process::spawn(
            "prom-label-proxy",
            Command::new(tool("prom-label-proxy", "PROM_LABEL_PROXY_BIN", &go_bin()))
                .args(["-label", "namespace", "-query-param", "tenant"])
                .arg("-enable-label-apis")
                .arg(format!("-upstream={upstream}"))
                .arg(format!("-insecure-listen-address=127.0.0.1:{port}"))
                .arg(format!(
                    "-internal-listen-address=127.0.0.1:{}",
                    free_port()
                ))
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        );
        let probe = format!("http://127.0.0.1:{port}/api/v1/query?tenant=acme&query=vector(1)");
        support::wait_ready(&probe, &mut process).await;
        Self { process, port }
    }

    fn url(&self, path_and_query: &str) -> String {
        format!("http://127.0.0.1:{}{path_and_query}", self.port)
    }
}

/// Who asks: the tenant parameters and the matching Portcullis token.
#[derive(Debug, Clone, Copy)]
struct Caller {
    tenants: &'static [&'static str],
    token: &'static str,
}

const ACME: Caller = Caller {
    tenants: &["acme"],
    token: "Bearer acme-token",
};
const ACME_GLOBEX: Caller = Caller {
    tenants: &["acme", "globex"],
    token: "Bearer ops-token",
};

impl Caller {
    fn params(&self) -> String {
        self.tenants
            .iter()
            .map(|t| format!("tenant={t}&"))
            .collect()
    }
}

/// What the two answers must have in common.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    /// The same status and, on success, the same data series for series.
    Same,
    /// Both refuse (4xx); their error bodies differ in `errorType`.
    BothRefuse,
    /// Portcullis refuses with 400 a query that prom-label-proxy forwards: see the doc's
    /// section named by the string.
    PortcullisRefuses(&'static str),
    /// Both succeed, and Portcullis's answer is the narrower one: see the doc's section.
    PortcullisNarrower(&'static str),
    /// Both succeed, and Portcullis's answer is the wider one, still within the caller's
    /// tenants: see the doc's section.
    PortcullisWider(&'static str),
}

/// One request of the corpus: method, path, parameters (without the tenant), form body.
struct Case {
    method: Method,
    path: &'static str,
    params: String,
    body: Option<String>,
    expect: Expect,
    /// What to expect for a caller of several tenants, where it differs from `expect`.
    expect_many: Option<Expect>,
    /// The query renames the tenant label itself (`label_replace`), so the namespace in the
    /// answer is no tenant and is not checked.
    relabels: bool,
}

fn instant(query: &str, expect: Expect) -> Case {
    Case {
        method: Method::GET,
        path: "/api/v1/query",
        params: format!("query={}&time={}", enc(query), end()),
        body: None,
        expect,
        expect_many: None,
        relabels: false,
    }
}

fn other(method: Method, path: &'static str, params: String, body: Option<String>) -> Case {
    Case {
        method,
        path,
        params,
        body,
        expect: Expect::Same,
        expect_many: None,
        relabels: false,
    }
}

/// Dashboard queries and the shared edge cases that concern PromQL.
fn corpus() -> Vec<Case> {
    use Expect::*;
    let end = end();
    let window = format!("start={}&end={end}", end - 1800);
    let mut cases: Vec<Case> = [
        "up",
        "http_requests_total",
        "sum(http_requests_total)",
        "sum by (namespace) (up)",
        "sum(up) by (namespace)",
        "sum by (code) (rate(http_requests_total[5m]))",
        "rate(http_requests_total{code=\"500\"}[10m])",
        "topk(2, http_requests_total)",
        "quantile(0.5, http_requests_total)",
        "count(up)",
        "sum(up) / count(up)",
        "-up",
        "up > bool 0",
        "up{namespace=~\".+\"}",
        "{__name__=~\"up|build_info\"}",
        "{job=\"api\"}",
        "count by (namespace) ({__name__!=\"\"})",
        "build_info * on (namespace) group_left sum by (namespace) (up)",
        "up and on (namespace) build_info",
        "up or build_info",
        "up unless up{pod=\"api-0\"}",
        "sum by (pod) (rate(http_requests_total[5m])) / on (pod) group_left sum by (pod) (up)",
        "max_over_time(rate(http_requests_total[5m])[30m:1m])",
        "max_over_time(rate(http_requests_total[5m])[30m:1m] offset 10m)",
        "rate(http_requests_total[5m] offset -5m)",
        "rate(http_requests_total[5m] @ end())",
        "min_over_time(up[10m:30s] @ end() offset 5m)",
        "absent(nonexistent_metric)",
        "absent(up{namespace=\"globex\"})",
        "vector(1)",
        "time()",
        "scalar(sum(up))",
        "count_values(\"version\", build_info)",
        "histogram_quantile(0.9, rate(http_requests_total[5m]))",
        "up{job=~\"a\\\\.b|api\"}",
        "{\"up\"}",
        "sum by (\"namespace\") (up)",
        "round(http_requests_total{code=\"200\"}, 3)",
    ]
    .into_iter()
    .map(|query| instant(query, Same))
    .collect();

    cases.push(instant(
        &format!("http_requests_total @ {}", end - 600),
        Same,
    ));
    cases.push(instant("{\"http.requests.total\"}", Same));
    // The query's own matchers on the tenant label: replaced for one tenant by both; for
    // several, kept beside the enforced one by both when they select an allowed tenant.
    for query in [
        "up{namespace=\"globex\"}",
        "up{namespace!=\"acme\"}",
        "up{namespace=~\"globex|initech\"}",
        "up{namespace!~\"acme\"}",
        "http_requests_total{namespace=\"acme\",namespace=\"globex\"}",
        "sum by (namespace) (rate(http_requests_total{namespace=\"globex\"}[5m]))",
    ] {
        cases.push(instant(query, Same));
    }
    // One that selects none of the caller's tenants: replaced by Portcullis, as for a single
    // tenant; kept by prom-label-proxy, which then answers nothing.
    let wider = PortcullisWider("own-tenant-matchers");
    cases.push(Case {
        relabels: true,
        ..instant(
            "label_replace(up, \"namespace\", \"victim\", \"\", \"\")",
            Same,
        )
    });
    for query in ["up +", "sum(up", "{a=\"1\" or b=\"2\"}"] {
        cases.push(instant(query, BothRefuse));
    }
    cases.push(instant(
        "up{job=~`api|a\\.b`}",
        PortcullisRefuses("backtick-escapes"),
    ));
    cases.push(instant("up @ -100", PortcullisRefuses("unfaithful-prints")));
    cases.push(instant("", PortcullisRefuses("missing-query")));

    let range = |query: &str| {
        other(
            Method::GET,
            "/api/v1/query_range",
            format!("query={}&{window}&step=60", enc(query)),
            None,
        )
    };
    cases.push(range("sum by (namespace) (rate(http_requests_total[5m]))"));
    cases.push(Case {
        expect_many: Some(wider),
        ..range("up{namespace=\"initech\"}")
    });
    cases.push(range("increase(http_requests_total[10m])"));

    let get = |path: &'static str, params: String| other(Method::GET, path, params, None);
    cases.push(get("/api/v1/series", format!("match[]=up&{window}")));
    cases.push(get(
        "/api/v1/series",
        format!("match[]=up&match[]=build_info&{window}"),
    ));
    // prom-label-proxy keeps a series selector's own tenant matcher even for one tenant.
    cases.push(Case {
        expect: wider,
        expect_many: Some(Same),
        ..get(
            "/api/v1/series",
            format!("match[]={}&{window}", enc("{namespace=\"globex\"}")),
        )
    });
    cases.push(get("/api/v1/series", window.clone()));
    cases.push(get("/api/v1/labels", window.clone()));
    cases.push(get(
        "/api/v1/labels",
        format!("match[]=build_info&{window}"),
    ));
    cases.push(get("/api/v1/label/namespace/values", window.clone()));
    cases.push(get("/api/v1/label/__name__/values", window.clone()));
    cases.push(get(
        "/api/v1/label/pod/values",
        format!("match[]=up&{window}"),
    ));
    cases.push(get("/api/v1/query_exemplars", format!("query=up&{window}")));
    cases.push(get("/federate", "match[]=up&match[]=build_info".to_owned()));

    let form = |query: &str| format!("query={}&time={end}", enc(query));
    cases.push(other(
        Method::POST,
        "/api/v1/query",
        String::new(),
        Some(form("sum by (namespace) (up)")),
    ));
    // Edge case C01: a query in the URL and another in the body; Prometheus evaluates the body's.
    cases.push(other(
        Method::POST,
        "/api/v1/query",
        "query=up".to_owned(),
        Some(form("build_info")),
    ));
    // Edge case C02: the series selector in the body.
    cases.push(Case {
        expect: PortcullisNarrower("body-selectors"),
        ..other(
            Method::POST,
            "/api/v1/series",
            String::new(),
            Some(format!("match[]=up&{window}")),
        )
    });
    cases
}

async fn ask(base: impl Fn(&str) -> String, case: &Case, caller: Caller, token: bool) -> Answer {
    let url = base(&format!("{}?{}{}", case.path, caller.params(), case.params));
    let mut headers = vec![];
    if token {
        headers.push(("authorization", caller.token));
    }
    if case.body.is_some() {
        headers.push(("content-type", "application/x-www-form-urlencoded"));
    }
    let body = Bytes::from(case.body.clone().unwrap_or_default());
    send(case.method.clone(), &url, &headers, body)
        .await
        .unwrap()
}

/// An answer's data in an order-free form: a JSON value with every list of series sorted.
fn normalized(answer: &Answer) -> Value {
    if answer
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("text/plain"))
    {
        let text = answer.text();
        // Federation lines end in a timestamp; keep the series and its value.
        let mut lines: Vec<String> = text
            .lines()
            .filter(|line| !line.starts_with('#'))
            .map(|line| {
                line.rsplit_once(' ')
                    .map_or(line, |(rest, _)| rest)
                    .to_owned()
            })
            .collect();
        lines.sort_unstable();
        return Value::from(lines);
    }
    let json = answer.json();
    let mut data = json["data"].clone();
    let list = match &mut data {
        Value::Array(items) => Some(items),
        Value::Object(object) => match object.get_mut("result") {
            Some(Value::Array(items)) => Some(items),
            _ => None,
        },
        _ => None,
    };
    if let Some(items) = list {
        items.sort_by_cached_key(|item| item.to_string());
    }
    data
}

/// The namespaces of every series in a successful answer; `<none>` for a series without one.
fn namespaces_of(answer: &Answer) -> Vec<String> {
    let items = series(answer).unwrap_or_default();
    items
        .iter()
        .map(|item| match item {
            Value::String(line) => line
                .split("namespace=\"")
                .nth(1)
                .and_then(|rest| rest.split('"').next())
                .unwrap_or("<none>")
                .to_owned(),
            Value::Object(_) => {
                let labels = item.get("metric").unwrap_or(item);
                labels["namespace"].as_str().unwrap_or("<none>").to_owned()
            }
            // Label names and values.
            _ => "<none>".to_owned(),
        })
        .collect()
}

/// Checks one case for one caller; a mismatch is returned as a line of the failure report.
async fn check(
    gw: &Portcullis,
    proxy: &LabelProxy,
    case: &Case,
    caller: Caller,
) -> Result<(), String> {
    let ours = ask(|p| gw.url(p), case, caller, true).await;
    let theirs = ask(|p| proxy.url(p), case, caller, false).await;
    let what = format!(
        "{} {} {} ({:?})",
        case.method, case.path, case.params, caller.tenants
    );

    if ours.status == StatusCode::OK && !case.relabels {
        for namespace in namespaces_of(&ours) {
            let own = namespace == "<none>" || caller.tenants.contains(&namespace.as_str());
            assert!(
                own,
                "LEAK: {what} answered a series of {namespace}: {}",
                ours.text()
            );
        }
    }
    if case.path.contains("/label/namespace/") && ours.status == StatusCode::OK {
        let values = ours.json()["data"].clone();
        let expected: Vec<&str> = caller.tenants.to_vec();
        assert_eq!(values, serde_json::json!(expected), "LEAK: {what}");
    }

    let same_status = ours.status == theirs.status;
    let same_data = || ours.status != StatusCode::OK || normalized(&ours) == normalized(&theirs);
    let expect = match caller.tenants.len() {
        1 => case.expect,
        _ => case.expect_many.unwrap_or(case.expect),
    };
    match expect {
        Expect::Same if same_status && same_data() => Ok(()),
        Expect::BothRefuse if ours.status.is_client_error() && theirs.status.is_client_error() => {
            Ok(())
        }
        Expect::PortcullisRefuses(_)
            if ours.status == StatusCode::BAD_REQUEST
                && theirs.status != StatusCode::BAD_REQUEST =>
        {
            Ok(())
        }
        Expect::PortcullisNarrower(_)
            if ours.status == StatusCode::OK && theirs.status == StatusCode::OK =>
        {
            narrower(&ours, &theirs).map_err(|e| format!("{what}: {e}"))
        }
        Expect::PortcullisWider(_)
            if ours.status == StatusCode::OK && theirs.status == StatusCode::OK =>
        {
            narrower(&theirs, &ours).map_err(|e| format!("{what}: wider: {e}"))
        }
        _ => Err(format!(
            "{what}: expected {expect:?}\n  portcullis {}: {}\n  prom-label-proxy {}: {}",
            ours.status,
            ours.text().chars().take(300).collect::<String>(),
            theirs.status,
            theirs.text().chars().take(300).collect::<String>(),
        )),
    }
}

/// Every series of `narrow` is in `wide`, and `wide` has more.
fn narrower(narrow: &Answer, wide: &Answer) -> Result<(), String> {
    let (Some(narrow), Some(wide)) = (series(narrow), series(wide)) else {
        return Err("not lists of series".into());
    };
    let subset = narrow.iter().all(|one| wide.contains(one));
    match subset && wide.len() > narrow.len() {
        true => Ok(()),
        false => Err(format!("{} series against {}", narrow.len(), wide.len())),
    }
}

/// The list of series (or label sets) of a successful answer.
fn series(answer: &Answer) -> Option<Vec<Value>> {
    match normalized(answer) {
        Value::Array(items) => Some(items),
        Value::Object(object) => match object.get("result") {
            Some(Value::Array(items)) => Some(items.clone()),
            _ => None,
        },
        _ => None,
    }
}

#[tokio::test]
async fn portcullis_answers_as_prom_label_proxy_does_on_real_data() {
    let prometheus = Prometheus::start().await;
    let proxy = LabelProxy::start(&prometheus.url()).await;
    let mut gw = Portcullis::start(&config(&prometheus.url())).await;

    let corpus = corpus();
    let mut failures = Vec::new();
    let mut checked = 0;
    for caller in [ACME, ACME_GLOBEX] {
        for case in &corpus {
            if let Err(failure) = check(&gw, &proxy, case, caller).await {
                failures.push(failure);
            }
            checked += 1;
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {checked} checks differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
    hardening::assert_alive(&mut gw).await;
    drop(proxy.process);
}

// The answers themselves, for two aggregations whose values are known from the demo data: each
// tenant's counters grow by 1, 2 or 3 a minute over 120 minutes, on 4 series.
#[tokio::test]
async fn aggregations_sum_only_the_allowed_tenants() {
    let prometheus = Prometheus::start().await;
    let gw = Portcullis::start(&config(&prometheus.url())).await;
    for (caller, expected) in [(ACME, "476"), (ACME_GLOBEX, "1428")] {
        let case = instant("sum(http_requests_total)", Expect::Same);
        let answer = ask(|p| gw.url(p), &case, caller, true).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
        let value = &answer.json()["data"]["result"][0]["value"][1];
        assert_eq!(value, expected, "{:?}", caller.tenants);
    }
}
