//! Gateway configurations for the tests: one template, with the parts a test varies.

/// A configuration to render for [`super::Portcullis::start`]. The listeners are left as
/// `{listen}` and `{admin_listen}`, which the harness fills in.
pub struct GatewayConfig {
    server: String,
    api: &'static str,
    upstream: String,
    upstream_lines: String,
    tenant: String,
    authorizer: String,
    enforcers: Vec<(&'static str, String)>,
    route: String,
    extra: String,
}

/// The allowlist every test shares: acme-token reads acme, ops-token reads acme and globex.
pub const ALLOWLIST: &str = r#"type = "allowlist"
subjects = { "acme-token" = ["acme"], "ops-token" = ["acme", "globex"] }"#;

impl GatewayConfig {
    /// `api` served from `upstream` (named after the API), callers naming tenants with
    /// `?tenant=`, the shared allowlist, and one label enforcer on `namespace` in the API's
    /// language.
    pub fn new(api: &'static str, upstream: &str) -> Self {
        let language = if api == "loki" { "logql" } else { "promql" };
        Self {
            server: String::new(),
            api,
            upstream: upstream.to_owned(),
            upstream_lines: String::new(),
            tenant: "source = \"param\"\nname = \"tenant\"".to_owned(),
            authorizer: ALLOWLIST.to_owned(),
            enforcers: vec![(
                "namespace",
                format!("type = \"{language}\"\nlabel = \"namespace\""),
            )],
            route: String::new(),
            extra: String::new(),
        }
    }

    /// Adds lines to `[server]`.
    pub fn server(mut self, lines: &str) -> Self {
        self.server = lines.to_owned();
        self
    }

    /// Adds lines to the upstream's section.
    pub fn upstream_also(mut self, lines: &str) -> Self {
        self.upstream_lines = lines.to_owned();
        self
    }

    /// The body of `[tenant]`.
    pub fn tenant(mut self, body: &str) -> Self {
        self.tenant = body.to_owned();
        self
    }

    /// Adds lines to `[tenant]`.
    pub fn tenant_also(mut self, lines: &str) -> Self {
        self.tenant = format!("{}\n{lines}", self.tenant);
        self
    }

    /// The body of `[authorizers.demo]`.
    pub fn authorizer(mut self, body: &str) -> Self {
        self.authorizer = body.to_owned();
        self
    }

    /// Adds an enforcer, applied after the ones before it.
    pub fn enforcer(mut self, name: &'static str, body: &str) -> Self {
        self.enforcers.push((name, body.to_owned()));
        self
    }

    /// Replaces the enforcers with `name` alone: a route whose backend enforces by a header.
    pub fn only_enforcer(mut self, name: &'static str, body: &str) -> Self {
        self.enforcers = vec![(name, body.to_owned())];
        self
    }

    /// Adds lines to the `[[routes]]` entry.
    pub fn route(mut self, lines: &str) -> Self {
        self.route = lines.to_owned();
        self
    }

    /// Adds whole sections at the end (e.g. `[telemetry]`).
    pub fn extra(mut self, sections: &str) -> Self {
        self.extra = sections.to_owned();
        self
    }

    /// The TOML text.
    pub fn render(&self) -> String {
        let enforcers: String = self
            .enforcers
            .iter()
            .map(|(name, body)| format!("[enforcers.{name}]\n{body}\n\n"))
            .collect();
        let names: Vec<String> = self
            .enforcers
            .iter()
            .map(|(name, _)| format!("{name:?}"))
            .collect();
        format!(
            r#"[server]
listen = "{{listen}}"
admin_listen = "{{admin_listen}}"
{server}

[identity]
mode = "bearer"

[tenant]
{tenant}

[upstreams.{api}]
url = "{upstream}"
timeout = "10s"
{upstream_lines}

[authorizers.demo]
{authorizer}

{enforcers}[[routes]]
api = "{api}"
upstream = "{api}"
authorizer = "demo"
enforcers = [{names}]
{route}

{extra}
"#,
            server = self.server,
            tenant = self.tenant,
            api = self.api,
            upstream = self.upstream,
            upstream_lines = self.upstream_lines,
            authorizer = self.authorizer,
            names = names.join(", "),
            route = self.route,
            extra = self.extra,
        )
    }
}
