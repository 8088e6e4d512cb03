//! The official Python clients (`azure-identity` + `azure-keyvault-secrets`) against the fake
//! over HTTPS: the challenge flow, a client-secret token from a (test) Entra token endpoint,
//! set/get/list with more than 25 secrets, versions, update, delete with its poller, recover,
//! purge, backup and restore.

use ppvnet_common::Clock;
use ppvnet_keyvault::{Authorization, KeyVaultConfig, KeyVaultRole, RoleAssignment, VaultConfig};

use crate::common::{Authority, Pki, Running, TENANT, bind, new_kv, sp_object_id};

const CLIENT_ID: &str = "3c1f0a9e-5b7d-4e2f-9a8b-1c2d3e4f5a6b";

const SCRIPT: &str = r#"
import os
from azure.identity import ClientSecretCredential
from azure.keyvault.secrets import SecretClient

cred = ClientSecretCredential(os.environ["TENANT"], os.environ["CLIENT_ID"], "not-checked",
                              authority=os.environ["AUTHORITY"], disable_instance_discovery=True)
# The vault is reached on a loopback address, not *.vault.azure.net.
client = SecretClient(os.environ["VAULT_URL"], cred, verify_challenge_resource=False)

first = client.set_secret("py-secret", "v1")
assert first.value == "v1", first.value
second = client.set_secret("py-secret", "v2", content_type="text/plain", tags={"a": "b"})
assert client.get_secret("py-secret").value == "v2"
assert client.get_secret("py-secret", first.properties.version).value == "v1"
assert second.properties.tags == {"a": "b"}

for i in range(27):
    client.set_secret(f"bulk-{i:02d}", str(i))
names = [p.name for p in client.list_properties_of_secrets()]
assert sorted(n for n in names if n.startswith("bulk-")) == [f"bulk-{i:02d}" for i in range(27)], names
pages = list(client.list_properties_of_secrets(max_page_size=10).by_page())
assert len(pages) == 3, len(pages)

versions = list(client.list_properties_of_secret_versions("py-secret"))
assert sorted(v.version for v in versions) == sorted([first.properties.version, second.properties.version])

updated = client.update_secret_properties("py-secret", content_type="password", tags={"x": "y"})
assert updated.content_type == "password" and updated.tags == {"x": "y"}

backup = client.backup_secret("py-secret")
# result() does not wait; wait() polls GET /deletedsecrets until the delete completes.
poller = client.begin_delete_secret("py-secret")
deleted = poller.result()
poller.wait()
assert poller.done()
assert deleted.name == "py-secret" and deleted.recovery_id.endswith("/deletedsecrets/py-secret")
assert "py-secret" in [d.name for d in client.list_deleted_secrets()]
assert client.get_deleted_secret("py-secret").scheduled_purge_date is not None

poller = client.begin_recover_deleted_secret("py-secret")
recovered = poller.result()
poller.wait()
assert recovered.name == "py-secret"
assert client.get_secret("py-secret").value == "v2"

client.begin_delete_secret("py-secret").wait()
client.purge_deleted_secret("py-secret")
restored = client.restore_secret_backup(backup)
assert restored.name == "py-secret"
assert client.get_secret("py-secret").value == "v2"
print("PYTHON-SDK-OK")
"#;

fn python_clients_available() -> bool {
    std::process::Command::new("python3")
        .args(["-c", "import azure.identity, azure.keyvault.secrets"])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_azure_keyvault_secrets_roundtrip() {
    if !python_clients_available() {
        ppvnet_common::testing::skip(
            "python",
            "python_azure_keyvault_secrets_roundtrip: python3 cannot import azure.identity \
             and azure.keyvault.secrets (pip install azure-identity azure-keyvault-secrets)",
        );
        return;
    }
    let pki = Pki::new();
    let clock = Clock::new();
    let authority = Authority::start(clock.clone(), Some(pki.server.clone())).await;
    let listener = bind();
    let addr = listener.local_addr().unwrap();
    let mut vault = VaultConfig::new("kv-python", TENANT, "westus");
    vault.host_aliases.push(addr.to_string());
    vault.authorization = Authorization::Rbac {
        role_assignments: vec![RoleAssignment {
            principal_id: sp_object_id(CLIENT_ID),
            role: KeyVaultRole::SecretsOfficer,
            secret: None,
        }],
    };
    let config = KeyVaultConfig {
        vaults: vec![vault],
        ..Default::default()
    };
    let kv = new_kv(config, &clock, authority.check(pki.client()));
    let running = Running::serve(kv, (listener, None), Some(pki.server.clone()));

    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &pki.ca_pem).unwrap();
    let script = dir.path().join("roundtrip.py");
    std::fs::write(&script, SCRIPT).unwrap();
    let output = tokio::process::Command::new("python3")
        .arg(&script)
        .env("REQUESTS_CA_BUNDLE", &ca)
        .env("SSL_CERT_FILE", &ca)
        .env("TENANT", TENANT)
        .env("CLIENT_ID", CLIENT_ID)
        .env("AUTHORITY", &authority.base)
        .env("VAULT_URL", format!("https://{addr}"))
        .env_remove("HTTPS_PROXY")
        .env_remove("https_proxy")
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.contains("PYTHON-SDK-OK"),
        "python failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    running.stop().await;
}
