//! A test CA and its leaf certificates.

use std::net::IpAddr;
use std::sync::Arc;

/// The process's rustls provider (aws-lc, as the services use).
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// A certificate authority for one test.
pub struct TestPki {
    /// The CA certificate in PEM, for clients to trust.
    pub ca_pem: String,
    ca_der: rustls::pki_types::CertificateDer<'static>,
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
}

/// A leaf certificate with its key.
#[derive(Clone)]
pub struct Leaf {
    pub cert_pem: String,
    pub key_pem: String,
    cert_der: rustls::pki_types::CertificateDer<'static>,
    key_der: Vec<u8>,
    ca_der: rustls::pki_types::CertificateDer<'static>,
}

impl TestPki {
    /// A fresh CA named `name`.
    pub fn new(name: &str) -> Self {
        let key = rcgen::KeyPair::generate().expect("CA key");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        let ca = params.self_signed(&key).expect("CA certificate");
        Self {
            ca_pem: ca.pem(),
            ca_der: ca.der().clone(),
            issuer: rcgen::Issuer::new(params, key),
        }
    }

    /// A server certificate for `names` (DNS names; IP literals become IP SANs too).
    pub fn leaf(&self, names: &[&str]) -> Leaf {
        let key = rcgen::KeyPair::generate().expect("leaf key");
        let dns: Vec<String> = names
            .iter()
            .filter(|n| n.parse::<IpAddr>().is_err())
            .map(|n| n.to_string())
            .collect();
        let mut params = rcgen::CertificateParams::new(dns).expect("leaf params");
        if let Some(first) = names.first() {
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, *first);
        }
        params.subject_alt_names.extend(
            names
                .iter()
                .filter_map(|n| n.parse::<IpAddr>().ok())
                .map(rcgen::SanType::IpAddress),
        );
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("leaf certificate");
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            cert_der: cert.der().clone(),
            key_der: key.serialize_der(),
            ca_der: self.ca_der.clone(),
        }
    }

    /// A server configuration presenting a fresh leaf for `names` (and the CA after it).
    pub fn server_config(&self, names: &[&str]) -> Arc<rustls::ServerConfig> {
        self.leaf(names).server_config()
    }

    /// An HTTP client that trusts this CA (and the system's roots).
    pub fn client(&self) -> reqwest::Client {
        self.client_builder().build().expect("HTTP client")
    }

    /// A client builder that trusts this CA, for tests that add their own settings.
    pub fn client_builder(&self) -> reqwest::ClientBuilder {
        let ca = reqwest::Certificate::from_pem(self.ca_pem.as_bytes()).expect("CA PEM");
        reqwest::Client::builder().add_root_certificate(ca)
    }
}

impl Leaf {
    /// A rustls server configuration presenting this leaf followed by its CA.
    pub fn server_config(&self) -> Arc<rustls::ServerConfig> {
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(self.key_der.clone().into());
        let config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(vec![self.cert_der.clone(), self.ca_der.clone()], key)
            .expect("server certificate");
        Arc::new(config)
    }

    /// The certificate and key as one PEM (as some servers take them).
    pub fn pem_bundle(&self) -> String {
        format!("{}{}", self.cert_pem, self.key_pem)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs a TLS handshake in memory between a client trusting `pki` for `name` and `server`.
    fn handshake(
        pki: &TestPki,
        server: Arc<rustls::ServerConfig>,
        name: &str,
    ) -> Result<(), rustls::Error> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(pki.ca_der.clone()).unwrap();
        let client = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let name = rustls::pki_types::ServerName::try_from(name.to_string()).unwrap();
        let mut c = rustls::ClientConnection::new(Arc::new(client), name).unwrap();
        let mut s = rustls::ServerConnection::new(server).unwrap();
        for _ in 0..10 {
            let mut buf = Vec::new();
            c.write_tls(&mut buf).unwrap();
            s.read_tls(&mut buf.as_slice()).unwrap();
            s.process_new_packets()?;
            let mut buf = Vec::new();
            s.write_tls(&mut buf).unwrap();
            c.read_tls(&mut buf.as_slice()).unwrap();
            c.process_new_packets()?;
            if !c.is_handshaking() && !s.is_handshaking() {
                return Ok(());
            }
        }
        panic!("the handshake did not finish")
    }

    /// A leaf serves the DNS names and addresses it was made for, and no other name.
    #[test]
    fn leaves_verify_for_their_names_only() {
        let pki = TestPki::new("testkit CA");
        let server = pki.server_config(&["kv.vault.azure.net", "127.0.0.1"]);
        handshake(&pki, server.clone(), "kv.vault.azure.net").unwrap();
        handshake(&pki, server.clone(), "127.0.0.1").unwrap();
        let err = handshake(&pki, server, "other.vault.azure.net").unwrap_err();
        assert!(
            matches!(err, rustls::Error::InvalidCertificate(_)),
            "{err:?}"
        );
        // Another CA's client does not trust it.
        let other = TestPki::new("other CA");
        let err = handshake(&other, pki.server_config(&["a.example"]), "a.example").unwrap_err();
        assert!(
            matches!(err, rustls::Error::InvalidCertificate(_)),
            "{err:?}"
        );
    }
}
