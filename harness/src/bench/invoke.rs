//! The connector runtime's cost beside its reference: an operation invoked through
//! `POST /invoke` (user token check, connection token, definition, policies, sent from the
//! environment's active host through the fabric) against the same request sent directly to the
//! API from that host with the user's token for the API. Issue 9's targets: p50 overhead ≤ 1.5×,
//! ≥ 500 invokes/s on two cores. Used by the `invoke` row and the `connector` criterion bench.

use anyhow::Context;
use ppvnet_common::bench::Distribution;
use reqwest::Method;
use serde_json::json;

use super::rows::{Request, Target, detail};
use super::{Row, RowName, Sizes};
use crate::powerplatform::user::UserAgent;
use crate::up::Running;

/// Who invokes what: the seed landscape's names (its file says they are a contract). Another
/// landscape measured with the `invoke` row needs the same names.
#[derive(Clone, Debug)]
pub struct Subject {
    pub user: &'static str,
    pub environment: &'static str,
    pub connector: &'static str,
    /// The connector's OAuth app, which asks for the user's token for the API.
    pub app: &'static str,
    pub scope: &'static str,
    /// The API the connector calls in `environment`.
    pub api: &'static str,
}

impl Subject {
    pub fn contoso() -> Self {
        Self {
            user: "alice@contoso.onmicrosoft.com",
            environment: "prod",
            connector: "contoso-cases",
            app: "cases-connector",
            scope: "api://contoso-cases/Cases.Read",
            api: "cases-api-prod",
        }
    }
}

/// One operation's figures on both paths.
#[derive(Clone, Debug)]
pub struct Comparison {
    /// One request at a time (latency).
    pub direct: Distribution,
    pub invoke: Distribution,
    /// `concurrency` requests in flight (throughput).
    pub direct_loaded: Distribution,
    pub invoke_loaded: Distribution,
}

/// The two ways of sending an operation, once a connection exists.
pub struct InvokeBench {
    runtime: (reqwest::Client, String, Request),
    direct: (reqwest::Client, String, Request),
    connection_prefix: String,
}

impl InvokeBench {
    /// Signs `subject.user` in, creates their connection and gets their token for the API.
    pub async fn setup(running: &Running, subject: &Subject) -> anyhow::Result<Self> {
        let ready = running.ready();
        let missing = |what: &str| {
            format!(
                "the invoke row follows the seed landscape's names; {what} is not in this landscape"
            )
        };
        let ca = std::fs::read(&ready.ca_cert).context("the run's CA")?;
        let fabric = running.fabric();
        let pp = ready
            .power_platform
            .as_ref()
            .with_context(|| missing("Power Platform"))?;
        let agent = UserAgent {
            http: fabric.http_client(crate::landscape::INTERNET, &ca)?,
            authority: ready.entra.as_ref().context("Entra")?.authority.clone(),
            power_platform: pp.url.clone(),
        };
        let user = ready
            .users
            .get(subject.user)
            .with_context(|| missing(subject.user))?;
        let env = pp
            .environments
            .get(subject.environment)
            .with_context(|| missing(subject.environment))?;
        let app = ready
            .apps
            .get(subject.app)
            .with_context(|| missing(subject.app))?;
        let api = ready
            .apis
            .get(subject.api)
            .with_context(|| missing(subject.api))?;
        let token = agent.user_token(subject.user, &user.password).await?;
        let connection = agent
            .connect(
                &token,
                subject.environment,
                subject.connector,
                subject.user,
                &user.password,
            )
            .await?;
        let api_token = agent
            .password_grant(
                &app.client_id,
                app.client_secret.as_deref(),
                subject.user,
                &user.password,
                subject.scope,
            )
            .await?;
        let mut invoke = Request::new(Method::POST, "/invoke").bearer(&token);
        invoke.headers = std::sync::Arc::new(vec![
            ("x-ms-request-method", "GET".to_string()),
            (
                "x-ms-client-environment-id",
                format!("/providers/Microsoft.PowerApps/environments/{}", env.id),
            ),
        ]);
        Ok(Self {
            runtime: (agent.http.clone(), pp.url.clone(), invoke),
            // The reference sends from the host the runtime sends from.
            direct: (
                fabric.http_client(&env.active_host, &ca)?,
                // By name: the host's DNS view resolves it to the private endpoint.
                format!("https://{}", api.host_name),
                Request::new(Method::GET, "").bearer(&api_token),
            ),
            connection_prefix: format!("/apim/{}/{connection}", subject.connector),
        })
    }

    fn targets(&self, path: &str) -> (Target, Target) {
        let (client, base, request) = &self.runtime;
        let mut invoke = request.clone();
        let mut headers = (*invoke.headers).clone();
        headers.push((
            "x-ms-request-url",
            format!("{}{path}", self.connection_prefix),
        ));
        invoke.headers = std::sync::Arc::new(headers);
        let (d_client, d_base, d_request) = &self.direct;
        let mut direct = d_request.clone();
        direct.path = path.into();
        (
            Target::new(client.clone(), base, invoke),
            Target::new(d_client.clone(), d_base, direct),
        )
    }

    /// The id of a case the user may read (the first hit of a search, sent directly).
    pub async fn visible_case(&self) -> anyhow::Result<String> {
        let (_, direct) = self.targets("/cases/search?top=1");
        let (status, body) = direct
            .request
            .send(&direct.client, &direct.base, None)
            .await?;
        anyhow::ensure!(status == 200, "the search answered {status}");
        let page: serde_json::Value = serde_json::from_slice(&body)?;
        Ok(page["value"][0]["id"]
            .as_str()
            .context("the user sees no case")?
            .to_string())
    }

    /// `path` (below the connection, e.g. `/cases/search?q=outage`) on both paths, one at a
    /// time and then `concurrency` in flight.
    pub async fn compare(
        &self,
        path: &str,
        sizes: Sizes,
        concurrency: usize,
    ) -> anyhow::Result<Comparison> {
        let (invoke, direct) = self.targets(path);
        Ok(Comparison {
            direct: direct.measure(sizes, 1).await?,
            invoke: invoke.measure(sizes, 1).await?,
            direct_loaded: direct.measure(sizes, concurrency).await?,
            invoke_loaded: invoke.measure(sizes, concurrency).await?,
        })
    }
}

/// The `invoke` row: `SearchCases` through `/invoke`, p50 at one request at a time.
pub(super) async fn row(running: &Running, sizes: Sizes) -> anyhow::Result<Row> {
    let bench = InvokeBench::setup(running, &Subject::contoso()).await?;
    let c = bench
        .compare("/cases/search?q=outage&top=25", sizes, sizes.concurrency)
        .await?;
    let ms = |d: &Distribution| d.p50.as_secs_f64() * 1e3;
    Row::new(
        RowName::Invoke,
        "connector SearchCases through POST /invoke, one at a time (p50)",
        ms(&c.invoke),
        "ms",
        "the same call sent directly to the API from the runtime's host (p50 ms)",
        ms(&c.direct),
        false,
        json!({
            "invoke": detail(&c.invoke),
            "direct": detail(&c.direct),
            "invoke_loaded": detail(&c.invoke_loaded),
            "direct_loaded": detail(&c.direct_loaded),
            "concurrency": sizes.concurrency,
        }),
    )
}
