//! A Key Vault client as a team would write it with the official Rust crates
//! (`azure_security_keyvault_secrets`, `azure_identity`), configured by the environment only:
//! `AZURE_TENANT_ID`, `AZURE_CLIENT_ID`, `AZURE_CLIENT_SECRET`, `VAULT_URL` (the vault's real
//! URL) and `SECRET_NAME`. Prints the secret's value; on an error prints it and exits 1.
//!
//! Nothing in it knows about ppvnet: `ppvnet exec` supplies the CA (`SSL_CERT_FILE`), the
//! authority (`AZURE_AUTHORITY_HOST`) and the way to the vault (the host's namespace and DNS on
//! netns, `HTTPS_PROXY` on loopback). `harness/tests/integration/client_samples.rs` runs it.

use std::sync::Arc;

use azure_identity::ClientSecretCredential;
use azure_security_keyvault_secrets::SecretClient;

fn var(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| format!("{name} is not set"))
}

async fn read_secret() -> Result<String, Box<dyn std::error::Error>> {
    let credential = ClientSecretCredential::new(
        &var("AZURE_TENANT_ID")?,
        var("AZURE_CLIENT_ID")?,
        var("AZURE_CLIENT_SECRET")?.into(),
        None,
    )?;
    let client = SecretClient::new(&var("VAULT_URL")?, credential as Arc<_>, None)?;
    let secret = client
        .get_secret(&var("SECRET_NAME")?, None)
        .await?
        .into_model()?;
    Ok(secret.value.unwrap_or_default())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match read_secret().await {
        Ok(value) => {
            println!("{value}");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("kv_read_secret: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
