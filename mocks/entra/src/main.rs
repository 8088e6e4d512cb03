//! `ppvnet-entra`: the mock Entra ID on its own, for runs outside `ppvnet up`.
//!
//! Loads an [`EntraConfig`] from a JSON file, listens, prints `ready <authority host>` on
//! stdout once the listener accepts connections (logs go to stderr), and stops cleanly on
//! SIGINT or SIGTERM.

use std::io::IsTerminal;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use ppvnet_common::{Clock, Endpoint};
use ppvnet_entra::{Entra, EntraConfig, StartError};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::signal::unix::{SignalKind, signal};
use url::Url;

#[derive(Parser)]
#[command(version, about = "Mock Microsoft Entra ID")]
#[command(group = clap::ArgGroup::new("transport").required(true).args(["tls_cert", "plain_http"]))]
struct Cli {
    /// JSON file holding the tenant (an `EntraConfig`: tenantId, domain, users, groups,
    /// applications in Microsoft Graph's field names).
    #[arg(long, env = "PPVNET_ENTRA_CONFIG")]
    config: PathBuf,
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, env = "PPVNET_BIND", default_value = "127.0.0.1:8443")]
    bind: SocketAddr,
    /// Serve HTTPS with this certificate chain (PEM, leaf first).
    #[arg(long, env = "PPVNET_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// Private key (PEM) of `--tls-cert`.
    #[arg(long, env = "PPVNET_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Serve plain HTTP instead of HTTPS (clients such as azure-identity refuse it).
    #[arg(long, conflicts_with_all = ["tls_cert", "tls_key"])]
    plain_http: bool,
    /// The URL clients reach the mock at, e.g. `https://login.microsoftonline.com`; discovery
    /// documents name it when a request carries no `Host`. Defaults to the bound address.
    #[arg(long, env = "PPVNET_AUTHORITY_HOST")]
    authority_host: Option<Url>,
    /// Keep signing keys here: generated on the first start, reused afterwards. Without it
    /// every start generates a fresh key.
    #[arg(long, env = "PPVNET_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Also listen on port 443 of the bind address. MSAL Python calls `userrealm` there
    /// before ROPC whatever port the authority names; failing to bind it is reported and the
    /// mock starts anyway.
    #[arg(long)]
    also_port_443: bool,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let cli = Cli::parse();
    let started = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
        .and_then(|runtime| runtime.block_on(serve(cli)));
    match started {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ppvnet-entra: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(cli: Cli) -> anyhow::Result<()> {
    ppvnet_common::serve::install_crypto_provider();
    let config = read_config(&cli.config)?;
    let tls = match (&cli.tls_cert, &cli.tls_key) {
        (Some(cert), Some(key)) => Some(tls_config(cert, key)?),
        _ => None,
    };
    let listener = TcpListener::bind(cli.bind).with_context(|| format!("binding {}", cli.bind))?;
    let address = listener.local_addr()?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let authority_host = match cli.authority_host {
        Some(url) => url,
        None => Url::parse(&format!("{scheme}://{address}"))
            .with_context(|| format!("{scheme}://{address} as a URL"))?,
    };
    let entra = Entra::new(
        &config,
        Clock::new(),
        authority_host.clone(),
        cli.data_dir.as_deref(),
    )
    .map_err(|e| match e {
        StartError::Config(e) => {
            anyhow::anyhow!(
                "invalid Entra configuration in {}: {e}",
                cli.config.display()
            )
        }
        StartError::SigningKeys(e) => match &cli.data_dir {
            Some(dir) => anyhow::anyhow!("signing keys in {}: {e}", dir.display()),
            None => anyhow::anyhow!("generating a signing key: {e}"),
        },
    })?;

    let mut endpoints = vec![Endpoint::public(listener)];
    if cli.also_port_443 && address.port() != 443 {
        let extra = SocketAddr::new(address.ip(), 443);
        match TcpListener::bind(extra) {
            Ok(l) => endpoints.push(Endpoint::public(l)),
            Err(e) => tracing::warn!(
                address = %extra,
                error = %e,
                "cannot listen on port 443 (needs root or CAP_NET_BIND_SERVICE); \
                 MSAL Python's ROPC will fail its userrealm call"
            ),
        }
    }
    let mut sigterm = signal(SignalKind::terminate()).context("handling SIGTERM")?;
    let shutdown = async move {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = sigterm.recv() => {}
        }
        tracing::info!("shutting down");
    };

    tracing::info!(%address, %authority_host, https = tls.is_some(), "Entra mock listening");
    // The listeners are bound (and listening) already, so a client may connect from here on.
    println!("ready {}", authority_host.as_str().trim_end_matches('/'));
    ppvnet_entra::run(entra, endpoints, tls, shutdown)
        .await
        .context("serving")
}

fn read_config(path: &Path) -> anyhow::Result<EntraConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading config file {}", path.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("config file {} is not a valid EntraConfig", path.display()))
}

fn tls_config(cert: &Path, key: &Path) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .with_context(|| format!("reading certificates from {}", cert.display()))?;
    anyhow::ensure!(!certs.is_empty(), "no certificate in {}", cert.display());
    let key = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("reading a private key from {}", key.display()))?;
    let mut config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("TLS certificate and key do not fit together")?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
