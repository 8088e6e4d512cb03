//! `search-api`: the case search API on its own, for teams that run it outside `ppvnet up`,
//! and `search-api bench` for the 1,000,000-case benchmark.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use ppvnet_common::{Clock, Endpoint};
use ppvnet_search_api::bench::{self, BenchOptions};
use ppvnet_search_api::{CaseOwner, SearchApi, SearchApiConfig};

#[derive(Parser)]
#[command(version, about = "The ppvnet case search API")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Builds a database of many cases and measures search latency and throughput.
    Bench {
        #[arg(long, default_value_t = 1_000_000)]
        cases: u64,
        #[arg(long, default_value_t = 2_000)]
        queries: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long, default_value_t = 40)]
        owners: usize,
        #[arg(long, default_value_t = 8)]
        teams: usize,
        #[arg(long, default_value_t = 2)]
        threads: usize,
        /// Keep the database here and reuse it on the next run.
        #[arg(long)]
        database: Option<PathBuf>,
    },
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "PPVNET_BIND", default_value = "127.0.0.1:8443")]
    bind: SocketAddr,
    /// A JSON file holding a full `SearchApiConfig`; the options below are then ignored.
    #[arg(long, env = "PPVNET_SEARCH_CONFIG")]
    config: Option<PathBuf>,
    /// Tenant id whose tokens are accepted.
    #[arg(long, env = "PPVNET_TENANT_ID")]
    tenant: Option<String>,
    /// Entra authority host, e.g. https://login.microsoftonline.com.
    #[arg(
        long,
        env = "PPVNET_AUTHORITY",
        default_value = "https://login.microsoftonline.com"
    )]
    authority: String,
    /// The API app's client id (v2 token audience).
    #[arg(long, env = "PPVNET_CLIENT_ID")]
    client_id: Option<String>,
    /// The API app's identifier URI (v1 token audience).
    #[arg(
        long,
        env = "PPVNET_IDENTIFIER_URI",
        default_value = "api://contoso-cases"
    )]
    identifier_uri: String,
    /// Case owners as `objectId:teamGroupId`, comma-separated.
    #[arg(long, env = "PPVNET_CASE_OWNERS", value_delimiter = ',')]
    owners: Vec<String>,
    #[arg(long, env = "PPVNET_CASES", default_value_t = 10_000)]
    cases: u64,
    #[arg(long, env = "PPVNET_SEED", default_value_t = 1)]
    seed: u64,
    #[arg(long, env = "PPVNET_DATABASE")]
    database: Option<PathBuf>,
    /// PEM bundle of extra CAs to trust when fetching Entra's keys (the run's CA).
    #[arg(long, env = "PPVNET_CA_BUNDLE")]
    ca_bundle: Option<PathBuf>,
    /// Serve HTTPS with this certificate chain (PEM) and key.
    #[arg(long, env = "PPVNET_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    #[arg(long, env = "PPVNET_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
}

fn config_from(args: &ServeArgs) -> anyhow::Result<SearchApiConfig> {
    if let Some(path) = &args.config {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        return serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()));
    }
    let (Some(tenant), Some(client_id)) = (&args.tenant, &args.client_id) else {
        bail!("set --tenant and --client-id (or PPVNET_TENANT_ID/PPVNET_CLIENT_ID), or --config");
    };
    let mut config =
        SearchApiConfig::for_entra(&args.authority, tenant, client_id, &args.identifier_uri);
    config.data.count = args.cases;
    config.data.seed = args.seed;
    config.database = args.database.clone();
    for owner in &args.owners {
        let Some((object_id, team_group_id)) = owner.split_once(':') else {
            bail!("owner {owner:?} is not objectId:teamGroupId");
        };
        config.data.owners.push(CaseOwner {
            object_id: object_id.trim().to_owned(),
            team_group_id: team_group_id.trim().to_owned(),
        });
    }
    Ok(config)
}

fn http_client(ca_bundle: Option<&PathBuf>) -> anyhow::Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder();
    if let Some(path) = ca_bundle {
        let pem = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        for cert in reqwest::Certificate::from_pem_bundle(&pem)? {
            builder = builder.add_root_certificate(cert);
        }
    }
    Ok(builder.build()?)
}

fn tls_config(cert: &PathBuf, key: &PathBuf) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    let certs = rustls_pemfile::certs(&mut std::io::BufReader::new(std::fs::File::open(cert)?))
        .collect::<Result<Vec<_>, _>>()?;
    let key = rustls_pemfile::private_key(&mut std::io::BufReader::new(std::fs::File::open(key)?))?
        .context("no private key in the key file")?;
    Ok(Arc::new(
        rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(certs, key)?,
    ))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .json()
        .init();
    let cli = Cli::parse();
    if let Some(Command::Bench {
        cases,
        queries,
        seed,
        owners,
        teams,
        threads,
        database,
    }) = cli.command
    {
        let options = BenchOptions {
            cases,
            seed,
            owners,
            teams,
            queries,
            threads,
            database,
        };
        let report = tokio::task::spawn_blocking(move || bench::run(&options)).await??;
        println!("{report}");
        return Ok(());
    }
    ppvnet_common::serve::install_crypto_provider();
    let args = cli.serve;
    let config = config_from(&args)?;
    let http = http_client(args.ca_bundle.as_ref())?;
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(tls_config(cert, key)?),
        _ => None,
    };
    let api = SearchApi::open(config, http, Clock::new()).await?;
    let listener = std::net::TcpListener::bind(args.bind)?;
    tracing::info!(address = %listener.local_addr()?, https = tls.is_some(), "search API listening");
    ppvnet_search_api::run(api, vec![Endpoint::public(listener)], tls, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}
