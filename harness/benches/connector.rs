//! The connector runtime's cost, measured beside its same-run reference: one operation invoked
//! through `POST /invoke` (user token check, connection token, definition, policies, sent from
//! `pp-prod-westus` through the loopback fabric) against the same request sent directly to the
//! API from the same host with a token for the API. Issue 9's targets: p50 overhead ≤ 1.5× and
//! ≥ 500 invokes/s on a 2-core machine.
//!
//! `cargo bench -p ppvnet --bench connector` (prints a table; `PPVNET_BENCH_JSON=FILE` also
//! writes the figures as JSON).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ppvnet::fabric::FabricKind;
use ppvnet::powerplatform::user::UserAgent;
use ppvnet::up::{self, UpOptions};

const USER: &str = "alice@contoso.onmicrosoft.com";
const SEQUENTIAL: usize = 400;
const WARM_UP: usize = 50;
const CONCURRENCY: usize = 32;
const THROUGHPUT_CALLS: usize = 4000;

/// One way of sending the operation: through the runtime, or directly.
#[derive(Clone)]
enum Path2 {
    Runtime {
        agent: UserAgent,
        token: String,
        env_id: String,
        connection: String,
    },
    Direct {
        client: reqwest::Client,
        token: String,
    },
}

impl Path2 {
    /// Sends the operation and reads the whole answer (both paths read the body as bytes, so
    /// neither pays for JSON parsing the other skips).
    async fn send(&self, path: &str) -> u16 {
        let request = match self {
            Path2::Runtime {
                agent,
                token,
                env_id,
                connection,
            } => agent
                .http
                .post(format!("{}/invoke", agent.power_platform))
                .bearer_auth(token)
                .header(
                    "x-ms-request-url",
                    format!("/apim/contoso-cases/{connection}{path}"),
                )
                .header("x-ms-request-method", "GET")
                .header(
                    "x-ms-client-environment-id",
                    format!("/providers/Microsoft.PowerApps/environments/{env_id}"),
                ),
            Path2::Direct { client, token } => client
                .get(format!("https://cases-api-prod.azurewebsites.net{path}"))
                .bearer_auth(token),
        };
        match request.send().await {
            Ok(r) => {
                let status = r.status().as_u16();
                match r.bytes().await {
                    Ok(_) => status,
                    Err(_) => 0,
                }
            }
            Err(_) => 0,
        }
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

async fn latencies(path: &Path2, op: &str) -> (Duration, Duration) {
    for _ in 0..WARM_UP {
        assert_eq!(path.send(op).await, 200, "warm-up call failed");
    }
    let mut all = Vec::with_capacity(SEQUENTIAL);
    for _ in 0..SEQUENTIAL {
        let t = Instant::now();
        let status = path.send(op).await;
        all.push(t.elapsed());
        assert_eq!(status, 200);
    }
    all.sort();
    (percentile(&all, 0.5), percentile(&all, 0.9))
}

async fn throughput(path: &Path2, op: &str) -> f64 {
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let t = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..CONCURRENCY {
        let (path, next, op) = (path.clone(), next.clone(), op.to_string());
        tasks.spawn(async move {
            while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < THROUGHPUT_CALLS {
                assert_eq!(path.send(&op).await, 200);
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.expect("a bench task");
    }
    THROUGHPUT_CALLS as f64 / t.elapsed().as_secs_f64()
}

async fn setup(running: &up::Running) -> (Path2, Path2) {
    let ready = running.ready();
    let ca = std::fs::read(&ready.ca_cert).expect("the run's CA");
    let fabric = running.fabric();
    let pp = ready.power_platform.as_ref().expect("Power Platform");
    let agent = UserAgent {
        http: fabric
            .http_client("internet", &ca)
            .expect("internet client"),
        authority: ready.entra.as_ref().expect("Entra").authority.clone(),
        power_platform: pp.url.clone(),
    };
    let password = ready.users[USER].password.clone();
    let token = agent
        .user_token(USER, &password)
        .await
        .expect("a user token");
    let env_id = pp.environments["prod"].id.clone();
    let connection = agent
        .connect(&token, "prod", "contoso-cases", USER, &password)
        .await
        .expect("a connection");
    // The reference: the user's token for the API, as the connection holds one, sent from the
    // host the runtime sends from.
    let app = &ready.apps["cases-connector"];
    let api_token = agent
        .password_grant(
            &app.client_id,
            app.client_secret.as_deref(),
            USER,
            &password,
            "api://contoso-cases/Cases.Read",
        )
        .await
        .expect("an API token");
    let direct = Path2::Direct {
        client: fabric
            .http_client("pp-prod-westus", &ca)
            .expect("host client"),
        token: api_token,
    };
    let runtime = Path2::Runtime {
        agent,
        token,
        env_id,
        connection,
    };
    (runtime, direct)
}

fn main() {
    // `cargo bench` passes `--bench`; nothing to filter here.
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/contoso.yaml");
    let landscape = ppvnet::scenario::load(&file).expect("contoso loads");
    let mut opts = UpOptions::new(FabricKind::Loopback, dir.path().join("ready.json"));
    // The bench measures the runtime, not its throttle: one connection makes thousands of
    // calls a minute here, where Power Platform allows 500.
    opts.power_platform_limits.calls_per_minute = u32::MAX;
    let running = rt
        .block_on(up::start(&landscape, &opts))
        .expect("contoso starts");
    let (runtime, direct) = rt.block_on(setup(&running));
    let case = rt.block_on(visible_case(&direct));
    let mut rows = Vec::new();
    for (op, label) in [
        (format!("/cases/{case}"), "GetCase"),
        ("/cases/search?q=outage&top=25".to_string(), "SearchCases"),
    ] {
        let op = op.as_str();
        let (d50, d90) = rt.block_on(latencies(&direct, op));
        let (r50, r90) = rt.block_on(latencies(&runtime, op));
        let d_rate = rt.block_on(throughput(&direct, op));
        let r_rate = rt.block_on(throughput(&runtime, op));
        rows.push(serde_json::json!({
            "operation": label,
            "direct_p50_ms": ms(d50), "direct_p90_ms": ms(d90),
            "invoke_p50_ms": ms(r50), "invoke_p90_ms": ms(r90),
            "p50_ratio": ms(r50) / ms(d50),
            "direct_per_s": d_rate, "invoke_per_s": r_rate,
        }));
    }
    println!(
        "{:12} {:>10} {:>10} {:>8} {:>12} {:>12}",
        "operation", "direct p50", "invoke p50", "ratio", "direct /s", "invoke /s"
    );
    for r in &rows {
        println!(
            "{:12} {:>8.2}ms {:>8.2}ms {:>7.2}x {:>12.0} {:>12.0}",
            r["operation"].as_str().unwrap_or_default(),
            r["direct_p50_ms"].as_f64().unwrap_or_default(),
            r["invoke_p50_ms"].as_f64().unwrap_or_default(),
            r["p50_ratio"].as_f64().unwrap_or_default(),
            r["direct_per_s"].as_f64().unwrap_or_default(),
            r["invoke_per_s"].as_f64().unwrap_or_default(),
        );
    }
    if let Ok(path) = std::env::var("PPVNET_BENCH_JSON") {
        std::fs::write(&path, serde_json::to_vec_pretty(&rows).expect("JSON"))
            .expect("the JSON file");
    }
    rt.block_on(running.stop()).expect("contoso stops");
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The id of a case the user may read (the first hit of a search).
async fn visible_case(direct: &Path2) -> String {
    let Path2::Direct { client, token } = direct else {
        unreachable!("the direct path")
    };
    let page: serde_json::Value = client
        .get("https://cases-api-prod.azurewebsites.net/cases/search?top=1")
        .bearer_auth(token)
        .send()
        .await
        .expect("the API")
        .json()
        .await
        .expect("JSON");
    page["value"][0]["id"]
        .as_str()
        .expect("a visible case")
        .to_string()
}
