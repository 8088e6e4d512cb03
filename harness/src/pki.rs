//! The run's PKI: one CA per run and a leaf certificate per service.
//!
//! Official clients verify TLS, so every emulated endpoint presents a certificate for the name
//! the client uses (`login.microsoftonline.com`, `kv-contoso-prod.vault.azure.net`, the API's
//! host name) and for the loopback or namespace address it is reached on. Clients trust the CA
//! through the ready file's `ca_cert` (`SSL_CERT_FILE`, `REQUESTS_CA_BUNDLE`).
//! Leaf keys are ECDSA P-256: cheap to generate at start-up, accepted by every client.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};

/// The environment variables through which clients find a CA bundle: OpenSSL and Python's
/// `requests`/`azure-core` read the first two; curl ignores `SSL_CERT_FILE` when it was built with
/// a default bundle (Debian's is) and reads `CURL_CA_BUNDLE` instead.
pub const CA_BUNDLE_VARIABLES: [&str; 3] =
    ["SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"];

/// The run's certificate authority.
pub struct Pki {
    issuer: Issuer<'static, KeyPair>,
    ca_pem: String,
    ca_path: PathBuf,
    /// Where leaf keys are kept across runs (`--data-dir`), when they are.
    keep: Option<PathBuf>,
}

/// A leaf certificate and its key, PEM encoded.
#[derive(Clone)]
pub struct Leaf {
    pub cert_pem: String,
    pub key_pem: String,
}

/// Files of a CA kept in `--data-dir`.
const KEPT_CA_CERT: &str = "ca.pem";
const KEPT_CA_KEY: &str = "ca.key";

impl Pki {
    /// Creates a CA and writes its certificate to `dir/ca.pem` (0600, in `dir` created 0700:
    /// the run directory also holds private keys). The CA's own key never leaves memory.
    pub fn create(dir: &Path, run_name: &str) -> anyhow::Result<Self> {
        ppvnet_common::private_fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the run directory {}", dir.display()))?;
        let (params, key) = ca_params(run_name)?;
        let ca_pem = params.self_signed(&key)?.pem();
        let ca_path = dir.join(KEPT_CA_CERT);
        crate::ready::write_atomically(&ca_path, ca_pem.as_bytes())?;
        Ok(Self {
            issuer: Issuer::new(params, key),
            ca_pem,
            ca_path: std::path::absolute(&ca_path)?,
            keep: None,
        })
    }

    /// The CA kept in `dir` (`ca.pem`, `ca.key`, 0600), created there on first use, and leaf
    /// keys kept beside it: a client that trusts `dir/ca.pem` keeps trusting the landscape
    /// across restarts, and the path to give it (`SSL_CERT_FILE`) never changes.
    pub fn keep_in(dir: &Path, run_name: &str) -> anyhow::Result<Self> {
        ppvnet_common::private_fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the PKI folder {}", dir.display()))?;
        let cert_path = dir.join(KEPT_CA_CERT);
        let key_path = dir.join(KEPT_CA_KEY);
        let (issuer, ca_pem) = if key_path.exists() {
            load_ca(&cert_path, &key_path)?
        } else {
            let (params, key) = ca_params(run_name)?;
            let ca_pem = params.self_signed(&key)?.pem();
            // The key first: a crash between the two writes leaves no certificate without it.
            crate::ready::write_atomically(&key_path, key.serialize_pem().as_bytes())?;
            crate::ready::write_atomically(&cert_path, ca_pem.as_bytes())?;
            (Issuer::new(params, key), ca_pem)
        };
        Ok(Self {
            issuer,
            ca_pem,
            ca_path: std::path::absolute(&cert_path)?,
            keep: Some(dir.to_path_buf()),
        })
    }

    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// Absolute path of the CA certificate file.
    pub fn ca_path(&self) -> &Path {
        &self.ca_path
    }

    /// Issues a server certificate for DNS names and IP addresses.
    pub fn leaf(&self, dns_names: &[String], ips: &[IpAddr]) -> anyhow::Result<Leaf> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        let mut dn = DistinguishedName::new();
        dn.push(
            DnType::CommonName,
            dns_names
                .first()
                .cloned()
                .unwrap_or_else(|| "ppvnet".into()),
        );
        params.distinguished_name = dn;
        params.subject_alt_names = dns_names
            .iter()
            .map(|n| Ok(SanType::DnsName(n.clone().try_into()?)))
            .chain(ips.iter().map(|ip| Ok(SanType::IpAddress(*ip))))
            .collect::<Result<_, rcgen::Error>>()?;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = self.leaf_key(dns_names)?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// A fresh key, or with a kept CA the key kept for the leaf's first name (created then).
    fn leaf_key(&self, dns_names: &[String]) -> anyhow::Result<KeyPair> {
        let (Some(dir), Some(name)) = (&self.keep, dns_names.first()) else {
            return Ok(KeyPair::generate()?);
        };
        // Host names are [a-z0-9.-]; anything else is replaced so the name stays one file name.
        let file: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let path = dir.join(format!("leaf-{file}.key"));
        if let Ok(pem) = std::fs::read_to_string(&path) {
            return KeyPair::from_pem(&pem)
                .with_context(|| format!("{} is not a private key (PEM)", path.display()));
        }
        let key = KeyPair::generate()?;
        crate::ready::write_atomically(&path, key.serialize_pem().as_bytes())?;
        Ok(key)
    }

    /// A rustls server configuration presenting `leaf` (with the CA in the chain).
    pub fn server_config(&self, leaf: &Leaf) -> anyhow::Result<Arc<rustls::ServerConfig>> {
        ppvnet_common::serve::install_crypto_provider();
        let certs = rustls_pemfile_certs(&format!("{}{}", leaf.cert_pem, self.ca_pem))?;
        let key = rustls::pki_types::PrivateKeyDer::try_from(
            pem_body(&leaf.key_pem, "PRIVATE KEY").context("leaf key is not PKCS#8 PEM")?,
        )
        .map_err(|e| anyhow::anyhow!("leaf key: {e}"))?;
        let mut config = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(certs, key)?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }

    /// A reqwest client that trusts this CA only.
    pub fn client_builder(&self) -> anyhow::Result<reqwest::ClientBuilder> {
        let ca = reqwest::Certificate::from_pem(self.ca_pem.as_bytes())?;
        Ok(reqwest::Client::builder()
            .tls_certs_only([ca])
            .timeout(std::time::Duration::from_secs(30)))
    }
}

/// The CA's subject and extensions, and a new key.
fn ca_params(run_name: &str) -> anyhow::Result<(CertificateParams, KeyPair)> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, format!("ppvnet {run_name} run CA"));
    dn.push(DnType::OrganizationName, "ppvnet");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    Ok((params, KeyPair::generate()?))
}

/// A CA kept by an earlier run: its certificate as it was (clients trust exactly that one).
fn load_ca(
    cert_path: &Path,
    key_path: &Path,
) -> anyhow::Result<(Issuer<'static, KeyPair>, String)> {
    let read = |p: &Path| {
        std::fs::read_to_string(p)
            .with_context(|| format!("cannot read the kept CA file {}", p.display()))
    };
    let (ca_pem, key_pem) = (read(cert_path)?, read(key_path)?);
    let key = KeyPair::from_pem(&key_pem)
        .with_context(|| format!("{} is not a private key (PEM)", key_path.display()))?;
    let issuer = Issuer::from_ca_cert_pem(&ca_pem, key).with_context(|| {
        format!(
            "{} is not the certificate of the key in {}; remove both to make a new CA",
            cert_path.display(),
            key_path.display()
        )
    })?;
    Ok((issuer, ca_pem))
}

/// Decodes every PEM block named `label`.
fn pem_blocks(text: &str, label: &str) -> Vec<Vec<u8>> {
    use base64::Engine;
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(&begin) {
        let after = &rest[start + begin.len()..];
        let Some(stop) = after.find(&end) else { break };
        let body: String = after[..stop]
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        if let Ok(der) = base64::engine::general_purpose::STANDARD.decode(body) {
            out.push(der);
        }
        rest = &after[stop + end.len()..];
    }
    out
}

fn pem_body(text: &str, label: &str) -> Option<Vec<u8>> {
    pem_blocks(text, label).into_iter().next()
}

fn rustls_pemfile_certs(
    text: &str,
) -> anyhow::Result<Vec<rustls::pki_types::CertificateDer<'static>>> {
    let certs: Vec<_> = pem_blocks(text, "CERTIFICATE")
        .into_iter()
        .map(rustls::pki_types::CertificateDer::from)
        .collect();
    anyhow::ensure!(!certs.is_empty(), "no certificate in PEM text");
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_client_trusting_the_ca_reaches_a_leaf_by_name_and_address() {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::create(dir.path(), "test").unwrap();
        assert!(pki.ca_path().is_absolute());
        let leaf = pki
            .leaf(
                &["kv-x.vault.azure.net".into()],
                &["127.0.0.1".parse().unwrap()],
            )
            .unwrap();
        let tls = pki.server_config(&leaf).unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let router = axum::Router::new().route("/", axum::routing::get(|| async { "tls ok" }));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(ppvnet_common::serve(
            vec![ppvnet_common::Endpoint::public(listener)],
            router,
            Some(tls),
            async move {
                let _ = rx.await;
            },
        ));
        let client = pki.client_builder().unwrap().build().unwrap();
        let by_ip = client.get(format!("https://{addr}/")).send().await.unwrap();
        assert_eq!(by_ip.text().await.unwrap(), "tls ok");
        let by_name = pki
            .client_builder()
            .unwrap()
            .resolve("kv-x.vault.azure.net", addr)
            .build()
            .unwrap()
            .get(format!("https://kv-x.vault.azure.net:{}/", addr.port()))
            .send()
            .await
            .unwrap();
        assert_eq!(by_name.status(), 200);
        // A name the certificate does not carry is refused by the client.
        let wrong = pki
            .client_builder()
            .unwrap()
            .resolve("other.example", addr)
            .build()
            .unwrap()
            .get(format!("https://other.example:{}/", addr.port()))
            .send()
            .await;
        assert!(wrong.is_err());
        tx.send(()).unwrap();
        server.await.unwrap().unwrap();
    }
}
