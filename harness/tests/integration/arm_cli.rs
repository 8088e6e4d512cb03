//! Issue 15 acceptance (Azure Resource Manager): the unmodified Azure CLI (azure-cli from PyPI,
//! which `scripts/test` installs in its own virtual environment) signs in to contoso as a
//! service principal and reads the landscape through `ppvnet exec --host internet` on both
//! fabrics (netns: the host's namespace and vNet DNS; loopback: the host's CONNECT proxy), where
//! `login.microsoftonline.com`, `management.azure.com` and the vaults resolve by their real
//! names: `az login --service-principal`, `az account show`, `az keyvault show`,
//! `az keyvault secret list/show/set`, `az network vnet show`. A principal without a role finds
//! no subscription and gets ARM's `AuthorizationFailed`. Skips (or fails under
//! `PPVNET_REQUIRE`) without the CLI, and on netns without root.

use std::path::{Path, PathBuf};

use crate::fabric_python_exec::exec_shell;
use crate::fabric_support::*;
use crate::require::skip_unless;
use ppvnet::fabric::FabricKind;
use ppvnet::up::{self, UpOptions};

/// The `az` to run: `PPVNET_AZ`, else the virtual environment `scripts/test` installs it in,
/// else `az` on `PATH`.
fn az_program() -> Result<PathBuf, String> {
    let candidates: Vec<PathBuf> = std::env::var_os("PPVNET_AZ")
        .map(PathBuf::from)
        .into_iter()
        .chain(
            std::env::var_os("HOME")
                .map(|h| PathBuf::from(h).join(".cache/ppvnet/azure-cli/bin/az")),
        )
        .chain(
            std::env::var_os("PATH")
                .iter()
                .flat_map(std::env::split_paths)
                .map(|d| d.join("az"))
                .collect::<Vec<_>>(),
        )
        .collect();
    let found = candidates
        .into_iter()
        .find(|p| p.is_file())
        .ok_or("the Azure CLI is missing (scripts/test installs azure-cli from PyPI)")?;
    match std::process::Command::new(&found).arg("version").output() {
        Ok(o) if o.status.success() => Ok(found),
        Ok(o) => Err(format!(
            "{} does not run: {}",
            found.display(),
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(e) => Err(format!("{} does not run: {e}", found.display())),
    }
}

/// An `az` command line run with its own configuration folder, telemetry and surveys off; the
/// run's CA comes from `ppvnet exec` (`REQUESTS_CA_BUNDLE`).
fn az(program: &Path, config: &Path, args: &str) -> String {
    format!(
        "AZURE_CONFIG_DIR={} AZURE_CORE_COLLECT_TELEMETRY=false AZURE_CORE_SURVEY_MESSAGE=false AZURE_CORE_NO_COLOR=true {} {args}",
        config.display(),
        program.display()
    )
}

fn json(out: &str) -> serde_json::Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_azure_cli_reads_contoso_through_arm_on_netns() {
    let program = az_program();
    if skip_unless("netns", netns_unavailable())
        || skip_unless("python", program.as_ref().err().cloned())
    {
        return;
    }
    az_reads_contoso(&program.unwrap_or_default(), FabricKind::Netns).await;
}

/// The same session on the default loopback fabric, where `ppvnet exec` points the CLI at the
/// internet host's CONNECT proxy (`HTTPS_PROXY`), which resolves the real names by that host's
/// DNS view. Needs no root.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_azure_cli_reads_contoso_through_arm_on_loopback() {
    let program = az_program();
    if skip_unless("python", program.as_ref().err().cloned()) {
        return;
    }
    az_reads_contoso(&program.unwrap_or_default(), FabricKind::Loopback).await;
}

/// The CLI session of the module documentation, on `kind`: every command runs through
/// `ppvnet exec --host internet`.
async fn az_reads_contoso(program: &Path, kind: FabricKind) {
    let l = landscape("contoso");
    let dir = tempfile::tempdir().unwrap();
    let ready = dir.path().join("ready.json");
    let running = up::start(&l, &UpOptions::new(kind, ready.clone()))
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    let r = running.ready().clone();
    let sub = l.scenario.subscription.clone();
    let config = dir.path().join("az-ops");
    let run =
        |args: String| exec_shell(&ready, dir.path(), "internet", az(program, &config, &args));

    // ops-automation: Reader on rg-contoso, Key Vault Secrets Officer on the vaults.
    let ops = &r.apps["ops-automation"];
    let (code, out) = run(format!(
        "login --service-principal -u {} -p '{}' --tenant {}",
        ops.client_id,
        ops.client_secret.clone().unwrap_or_default(),
        r.tenant_id
    ))
    .await;
    assert_eq!(code, 0, "{out}");
    let accounts = json(&out);
    assert_eq!(accounts[0]["id"], sub.as_str(), "{out}");
    assert_eq!(accounts[0]["user"]["type"], "servicePrincipal");

    let (code, out) = run("account show".into()).await;
    assert_eq!(code, 0, "{out}");
    let account = json(&out);
    assert_eq!(account["id"], sub.as_str());
    assert_eq!(account["tenantId"], r.tenant_id.as_str());
    assert_eq!(account["name"], "contoso");

    // Without `-g` the CLI finds the vault's group through the generic resources list.
    let (code, out) = run("keyvault show -n kv-contoso-dev".into()).await;
    assert_eq!(code, 0, "{out}");
    let vault = json(&out);
    assert_eq!(
        vault["id"],
        format!(
            "/subscriptions/{sub}/resourceGroups/rg-contoso/providers/Microsoft.KeyVault/vaults/kv-contoso-dev"
        )
    );
    assert_eq!(
        vault["properties"]["vaultUri"],
        "https://kv-contoso-dev.vault.azure.net/"
    );

    // The data plane, by the vault's real name, with a Key Vault token from the same login.
    let (code, out) =
        run("keyvault secret list --vault-name kv-contoso-dev --query '[].name'".into()).await;
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        json(&out),
        serde_json::json!(["cases-connector-client-id", "cases-connector-secret"])
    );
    let (code, out) = run(
        "keyvault secret show --vault-name kv-contoso-dev -n cases-connector-secret --query value -o tsv"
            .into(),
    )
    .await;
    assert_eq!(
        (code, out.trim()),
        (0, "cases-connector-secret-Vb8~pK3z"),
        "{out}"
    );
    let (code, out) = run(
        "keyvault secret set --vault-name kv-contoso-dev -n az-written --value from-the-cli -o none"
            .into(),
    )
    .await;
    assert_eq!(code, 0, "{out}");
    let (code, out) = run(
        "keyvault secret show --vault-name kv-contoso-dev -n az-written --query value -o tsv"
            .into(),
    )
    .await;
    assert_eq!((code, out.trim()), (0, "from-the-cli"), "{out}");

    let (code, out) = run("network vnet show -g rg-contoso -n vnet-prod-westus".into()).await;
    assert_eq!(code, 0, "{out}");
    let vnet = json(&out);
    assert_eq!(vnet["addressSpace"]["addressPrefixes"][0], "10.10.0.0/16");
    assert_eq!(
        vnet["subnets"][0]["delegations"][0]["serviceName"],
        "Microsoft.PowerPlatform/enterprisePolicies"
    );
    assert_eq!(
        vnet["virtualNetworkPeerings"][0]["peeringState"],
        "Connected"
    );

    // cases-connector holds no role: no subscription to sign in to, and ARM refuses its reads.
    let config = dir.path().join("az-connector");
    let connector = &r.apps["cases-connector"];
    let login = format!(
        "login --service-principal -u {} -p '{}' --tenant {}",
        connector.client_id,
        connector.client_secret.clone().unwrap_or_default(),
        r.tenant_id
    );
    let run =
        |args: String| exec_shell(&ready, dir.path(), "internet", az(program, &config, &args));
    let (code, out) = run(login.clone()).await;
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!(
            "No subscriptions found for {}.",
            connector.client_id
        )),
        "{out}"
    );
    let (code, out) = run(format!("{login} --allow-no-subscriptions -o none")).await;
    assert_eq!(code, 0, "{out}");
    let vnet_id = format!(
        "/subscriptions/{sub}/resourceGroups/rg-contoso/providers/Microsoft.Network/virtualNetworks/vnet-prod-westus"
    );
    let get = az(
        program,
        &config,
        &format!(
            "rest --method get --url 'https://management.azure.com{vnet_id}?api-version=2025-07-01' --headers \"Authorization=Bearer $T\""
        ),
    );
    let token = az(
        program,
        &config,
        "account get-access-token --query accessToken -o tsv",
    );
    let (code, out) = exec_shell(
        &ready,
        dir.path(),
        "internet",
        format!("T=$({token}) && {get}"),
    )
    .await;
    assert_eq!(code, 1, "{out}");
    let sp = &l
        .scenario
        .apps
        .iter()
        .find(|a| a.name == "cases-connector")
        .unwrap()
        .service_principal_id;
    assert!(
        out.contains(&format!(
            "\"code\":\"AuthorizationFailed\",\"message\":\"The client '{sp}' with object id '{sp}' does not have authorization to perform action 'Microsoft.Network/virtualNetworks/read' over scope '{vnet_id}' or the scope is invalid. If access was recently granted, please refresh your credentials.\""
        )),
        "{out}"
    );
    running.stop().await.unwrap();
}

/// On the default loopback fabric ARM answers by its real name (`management.azure.com`, on
/// port 443 of its face) to tokens from the landscape's Entra, and every host's DNS view
/// resolves the name to ARM's public face.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arm_answers_by_its_real_name_on_loopback() {
    use crate::e2e_support::{self, CONNECTOR, OPS, app_token};
    use ppvnet::fabric::oracle::{FaceName, Resolution};
    let Some(started) = e2e_support::start("contoso.yaml").await else {
        return;
    };
    let r = &started.running;
    let handle = r.fabric().handle();
    for host in [
        "internet",
        "pp-prod-westus",
        "pe-kv-contoso-prod",
        "pp-dev-eastus",
    ] {
        match handle.resolve(host, "management.azure.com").unwrap() {
            Resolution::Address { service, face, .. } => {
                assert_eq!(
                    (service.as_str(), face),
                    ("arm", FaceName::Public),
                    "{host}"
                )
            }
            other => panic!("{host}: {other:?}"),
        }
    }
    let arm = r.ready().arm.clone().unwrap();
    assert_eq!(arm.host_name, "management.azure.com");
    assert_eq!(arm.resource_groups[0], "rg-contoso");
    let c = e2e_support::client(r, "internet");
    let scope = "https://management.core.windows.net//.default";
    let vnet = format!(
        "https://management.azure.com/subscriptions/{}/resourceGroups/rg-contoso/providers/Microsoft.Network/virtualNetworks/vnet-prod-westus?api-version=2025-07-01",
        arm.subscription_id
    );
    let ops = app_token(&c, OPS, scope).await;
    let response = c.get(&vnet).bearer_auth(&ops).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["name"], "vnet-prod-westus");
    let connector = app_token(&c, CONNECTOR, scope).await;
    let response = c.get(&vnet).bearer_auth(&connector).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 403);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "AuthorizationFailed", "{body}");
    started.running.stop().await.unwrap();
}
