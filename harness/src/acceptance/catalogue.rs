//! Every step phrase a scenario may use, with its parameters and one example: what
//! `ppvnet steps` prints. The unit test below matches each example against the steps
//! cucumber collected (`PpvWorld`'s inventory), both ways: a step without an entry, or an
//! entry whose example matches no step, fails it.

use std::fmt::Write as _;

/// A step's keyword as cucumber registers it (`And`/`But` take the previous step's).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kw {
    Given,
    When,
    Then,
}

/// One catalogue entry.
#[derive(Clone, Copy, Debug)]
pub struct Entry {
    pub keywords: &'static [Kw],
    /// The cucumber expression, as in the step's attribute.
    pub phrase: &'static str,
    /// Each parameter in order: what it names.
    pub parameters: &'static [&'static str],
    /// One example as a scenario writes it (without the keyword).
    pub example: &'static str,
    /// The feature area (the step module).
    pub area: &'static str,
}

use Kw::{Given as G, Then as T, When as W};

const C: &str = "connector runtime";
const L: &str = "running landscape";
const LC: &str = "time and change";
const N: &str = "network";
const V: &str = "landscape validation";
const S: &str = "stubbed APIs";

#[rustfmt::skip]
pub const CATALOGUE: &[Entry] = &[
    // Landscape validation (features/landscape_validation.feature).
    Entry { area: V, keywords: &[G], phrase: "the landscape file {string}", parameters: &["path under scenarios/"], example: "the landscape file \"contoso.yaml\"" },
    Entry { area: V, keywords: &[W], phrase: "I validate it", parameters: &[], example: "I validate it" },
    Entry { area: V, keywords: &[W], phrase: "I run ppvnet validate on it", parameters: &[], example: "I run ppvnet validate on it" },
    Entry { area: V, keywords: &[T], phrase: "it is valid", parameters: &[], example: "it is valid" },
    Entry { area: V, keywords: &[T], phrase: "it has {int} {word}", parameters: &["count", "what (vnets, apis, key-vaults, …)"], example: "it has 4 vnets" },
    Entry { area: V, keywords: &[T], phrase: "validation fails with rule {string} at line {int}", parameters: &["rule code", "line"], example: "validation fails with rule \"ActiveRegionNotInGeo\" at line 57" },
    Entry { area: V, keywords: &[T], phrase: "the message says {string}", parameters: &["text a finding contains"], example: "the message says \"'Trial' is not supported\"" },
    Entry { area: V, keywords: &[T], phrase: "it is the only error", parameters: &[], example: "it is the only error" },
    Entry { area: V, keywords: &[T], phrase: "the command exits with code {int}", parameters: &["exit code"], example: "the command exits with code 0" },
    Entry { area: V, keywords: &[T], phrase: "it prints {string}", parameters: &["text on stdout or stderr"], example: "it prints \"enterprise policies\"" },
    // A running landscape (auth, search, key vault, failover).
    Entry { area: L, keywords: &[G], phrase: "the {word} landscape is running", parameters: &["landscape name (scenarios/<name>.yaml, or --landscape)"], example: "the contoso landscape is running" },
    Entry { area: L, keywords: &[G, W], phrase: "{string} signs in through {string} for {string}", parameters: &["user", "app", "scope"], example: "\"alice@contoso.onmicrosoft.com\" signs in through \"cases-connector\" for \"api://contoso-cases/Cases.Read\"" },
    Entry { area: L, keywords: &[W], phrase: "{string} signs in through {string} for {string} with password {string}", parameters: &["user", "app", "scope", "password"], example: "\"alice@contoso.onmicrosoft.com\" signs in through \"cases-connector\" for \"api://contoso-cases/Cases.Read\" with password \"not-her-password\"" },
    Entry { area: L, keywords: &[G, W], phrase: "the app {string} asks for a token for {string}", parameters: &["app", "scope"], example: "the app \"cases-api\" asks for a token for \"https://vault.azure.net/.default\"" },
    Entry { area: L, keywords: &[W], phrase: "the app {string} asks for a token for {string} with secret {string}", parameters: &["app", "scope", "client secret"], example: "the app \"cases-connector\" asks for a token for \"api://contoso-cases/.default\" with secret \"guess\"" },
    Entry { area: L, keywords: &[G, W], phrase: "the user {string} is disabled", parameters: &["user"], example: "the user \"bob@contoso.onmicrosoft.com\" is disabled" },
    Entry { area: L, keywords: &[T], phrase: "{string} holds an access token whose {string} is {string}", parameters: &["who", "claim", "value"], example: "\"alice@contoso.onmicrosoft.com\" holds an access token whose \"scp\" is \"Cases.Read\"" },
    Entry { area: L, keywords: &[T], phrase: "{string} holds an access token whose {string} include {string}", parameters: &["who", "claim", "value"], example: "\"carol@contoso.onmicrosoft.com\" holds an access token whose \"roles\" include \"Cases.Read.All\"" },
    Entry { area: L, keywords: &[T], phrase: "Entra refuses with {string} and error code {int}", parameters: &["OAuth error", "AADSTS code"], example: "Entra refuses with \"invalid_client\" and error code 7000215" },
    Entry { area: L, keywords: &[W], phrase: "{string} searches {string} for {string} from host {string}", parameters: &["who", "API host name", "query", "host"], example: "\"alice@contoso.onmicrosoft.com\" searches \"cases-api-prod.azurewebsites.net\" for \"outage\" from host \"internet\"" },
    Entry { area: L, keywords: &[T], phrase: "{string} and {string} see no case in common", parameters: &["who", "who"], example: "\"alice@contoso.onmicrosoft.com\" and \"bob@contoso.onmicrosoft.com\" see no case in common" },
    Entry { area: L, keywords: &[T], phrase: "{string} sees every case that {string} and {string} see", parameters: &["who", "who", "who"], example: "\"carol@contoso.onmicrosoft.com\" sees every case that \"alice@contoso.onmicrosoft.com\" and \"bob@contoso.onmicrosoft.com\" see" },
    Entry { area: L, keywords: &[T], phrase: "every case {string} sees belongs to {string} or to a group of hers", parameters: &["who", "user"], example: "every case \"alice@contoso.onmicrosoft.com\" sees belongs to \"alice@contoso.onmicrosoft.com\" or to a group of hers" },
    Entry { area: L, keywords: &[T], phrase: "the search is refused with status {int}", parameters: &["HTTP status"], example: "the search is refused with status 403" },
    Entry { area: L, keywords: &[T], phrase: "the search succeeds", parameters: &[], example: "the search succeeds" },
    Entry { area: L, keywords: &[T], phrase: "the search does not reach the API", parameters: &[], example: "the search does not reach the API" },
    Entry { area: L, keywords: &[W], phrase: "{string} reads the secret {string} of {string} from host {string}", parameters: &["who", "secret", "vault", "host"], example: "\"cases-api\" reads the secret \"cases-connector-secret\" of \"kv-contoso-prod\" from host \"pp-prod-westus\"" },
    Entry { area: L, keywords: &[T], phrase: "the vault answers {int} with {string}", parameters: &["HTTP status", "inner error code"], example: "the vault answers 403 with \"ForbiddenByConnection\"" },
    Entry { area: L, keywords: &[T], phrase: "the secret's value is the client secret of {string}", parameters: &["app"], example: "the secret's value is the client secret of \"cases-connector\"" },
    Entry { area: L, keywords: &[W], phrase: "the region {string} has an outage", parameters: &["region"], example: "the region \"westus\" has an outage" },
    Entry { area: L, keywords: &[W], phrase: "the vNet peering between {string} and {string} is switched off", parameters: &["vNet", "vNet"], example: "the vNet peering between \"vnet-prod-westus\" and \"vnet-prod-eastus\" is switched off" },
    Entry { area: L, keywords: &[T], phrase: "the environment {string} runs in {string} on host {string}", parameters: &["environment", "region", "host"], example: "the environment \"prod\" runs in \"eastus\" on host \"pp-prod-eastus\"" },
    Entry { area: N, keywords: &[W], phrase: "the rule {string} {word} inbound TCP {int} from {string} is added to {string} at priority {int}", parameters: &["rule name", "allowing or denying", "destination port", "source prefix", "NSG", "priority (lower wins)"], example: "the rule \"DenyEastusHttpsInbound\" denying inbound TCP 443 from \"10.20.0.0/16\" is added to \"nsg-pe-prod\" at priority 150" },
    Entry { area: N, keywords: &[W], phrase: "the rule {string} is removed from {string}", parameters: &["rule name", "NSG"], example: "the rule \"DenyEastusHttpsInbound\" is removed from \"nsg-pe-prod\"" },
    Entry { area: N, keywords: &[T], phrase: "the flow log records {string} denied at {string} by the rule {string}", parameters: &["source host", "private endpoint", "NSG rule name"], example: "the flow log records \"pp-prod-eastus\" denied at \"pe-kv-contoso-prod\" by the rule \"DenyEastusHttpsInbound\"" },
    // Time and change in a running landscape (token lifetime, key rollover, secrets, RBAC, failback).
    Entry { area: LC, keywords: &[G], phrase: "the {word} landscape is running with {string} granted {string} on {string}", parameters: &["landscape name", "principal", "role", "vault, or the resource group"], example: "the contoso landscape is running with \"cases-api\" granted \"Key Vault Secrets User\" on \"kv-contoso-prod\"" },
    Entry { area: LC, keywords: &[W], phrase: "{string} keeps that token as {string}", parameters: &["who holds it", "name to keep it under"], example: "\"ops-automation\" keeps that token as \"ops-automation before the rollover\"" },
    Entry { area: LC, keywords: &[W], phrase: "Entra publishes its next signing key", parameters: &[], example: "Entra publishes its next signing key" },
    Entry { area: LC, keywords: &[W], phrase: "Entra switches to its next signing key", parameters: &[], example: "Entra switches to its next signing key" },
    Entry { area: LC, keywords: &[W], phrase: "Entra retires its previous signing key", parameters: &[], example: "Entra retires its previous signing key" },
    Entry { area: LC, keywords: &[T], phrase: "{string} and {string} are signed by different keys", parameters: &["token holder", "token holder"], example: "\"ops-automation\" and \"ops-automation before the switch\" are signed by different keys" },
    Entry { area: LC, keywords: &[T], phrase: "the vault refuses the token with 401 saying {string}", parameters: &["text of the message"], example: "the vault refuses the token with 401 saying \"The token expired at\"" },
    Entry { area: LC, keywords: &[T], phrase: "the search is refused with 401 and error {string} saying {string}", parameters: &["WWW-Authenticate error", "text of its description"], example: "the search is refused with 401 and error \"invalid_token\" saying \"The token expired at\"" },
    Entry { area: LC, keywords: &[W], phrase: "{string} sets the secret {string} of {string} to {string} from host {string}", parameters: &["who", "secret", "vault", "value", "host"], example: "\"ops-automation\" sets the secret \"partner-api-key\" of \"kv-contoso-prod\" to \"pk-2026-12\" from host \"pp-prod-westus\"" },
    Entry { area: LC, keywords: &[W], phrase: "{string} sets the secret {string} of {string} to {string} expiring in {int} minutes from host {string}", parameters: &["who", "secret", "vault", "value", "minutes from the landscape's now", "host"], example: "\"ops-automation\" sets the secret \"partner-api-key\" of \"kv-contoso-prod\" to \"pk-2026-12\" expiring in 30 minutes from host \"pp-prod-westus\"" },
    Entry { area: LC, keywords: &[W], phrase: "{string} disables the secret {string} of {string} from host {string}", parameters: &["who", "secret", "vault", "host"], example: "\"ops-automation\" disables the secret \"partner-api-key\" of \"kv-contoso-prod\" from host \"pp-prod-westus\"" },
    Entry { area: LC, keywords: &[T], phrase: "the secret's value is {string}", parameters: &["value"], example: "the secret's value is \"pk-2026-12\"" },
    Entry { area: LC, keywords: &[T], phrase: "the secret's expiry date has passed", parameters: &[], example: "the secret's expiry date has passed" },
    Entry { area: LC, keywords: &[T], phrase: "the vault's message names the action {string}", parameters: &["RBAC data action"], example: "the vault's message names the action \"Microsoft.KeyVault/vaults/secrets/setSecret/action\"" },
    Entry { area: LC, keywords: &[T], phrase: "the vault's message names the client address {string}", parameters: &["public IP the vault saw"], example: "the vault's message names the client address \"203.0.113.101\"" },
    Entry { area: LC, keywords: &[T], phrase: "the request does not reach the vault", parameters: &[], example: "the request does not reach the vault" },
    Entry { area: LC, keywords: &[W], phrase: "the outage of region {string} ends", parameters: &["region"], example: "the outage of region \"westus\" ends" },
    Entry { area: LC, keywords: &[W], phrase: "the environment {string} fails back to {string}", parameters: &["environment", "region"], example: "the environment \"prod\" fails back to \"westus\"" },
    Entry { area: LC, keywords: &[T], phrase: "failing {string} back to {string} is refused with {string}", parameters: &["environment", "region", "control API error code"], example: "failing \"prod\" back to \"westus\" is refused with \"InvalidRequest\"" },
    // The connector runtime (features/connector.feature).
    Entry { area: C, keywords: &[G], phrase: "the {word} landscape is running on the {word} fabric", parameters: &["landscape name", "fabric (loopback, netns, docker)"], example: "the contoso landscape is running on the loopback fabric" },
    Entry { area: C, keywords: &[G], phrase: "the {word} landscape is running with the redirect URI of {string} unregistered", parameters: &["landscape name", "app"], example: "the contoso landscape is running with the redirect URI of \"cases-connector\" unregistered" },
    Entry { area: C, keywords: &[G], phrase: "the {word} landscape is running without the role {string} of {string} on {string}", parameters: &["landscape name", "role", "principal", "vault"], example: "the contoso landscape is running without the role \"Key Vault Secrets User\" of \"Dataverse\" on \"kv-contoso-prod\"" },
    Entry { area: C, keywords: &[G], phrase: "the {word} landscape is running on the {word} fabric without the link of {string} to {string}", parameters: &["landscape name", "fabric", "private DNS zone", "vNet"], example: "the contoso landscape is running on the netns fabric without the link of \"pdz-vault-prod\" to \"vnet-prod-westus\"" },
    Entry { area: C, keywords: &[G], phrase: "the {word} landscape is running on the {word} fabric with {string} of {string} set to {string}", parameters: &["landscape name", "fabric", "environment variable", "environment", "value"], example: "the contoso landscape is running on the loopback fabric with \"cr_CasesApiHost\" of \"test\" set to \"cases-api-prod.azurewebsites.net\"" },
    Entry { area: C, keywords: &[W], phrase: "{string} calls {string} on {string} in {string}", parameters: &["user", "METHOD /path", "connector", "environment"], example: "\"alice@contoso.onmicrosoft.com\" calls \"GET /cases/search?q=outage\" on \"contoso-cases\" in \"prod\"" },
    Entry { area: C, keywords: &[W], phrase: "{string} connects to {string} in {string}", parameters: &["user", "connector", "environment"], example: "\"alice@contoso.onmicrosoft.com\" connects to \"contoso-cases\" in \"prod\"" },
    Entry { area: C, keywords: &[W], phrase: "{string} tries to connect to {string} in {string}", parameters: &["user", "connector", "environment"], example: "\"alice@contoso.onmicrosoft.com\" tries to connect to \"contoso-cases\" in \"prod\"" },
    Entry { area: C, keywords: &[T], phrase: "the connection fails with Entra's error {string}", parameters: &["AADSTS code"], example: "the connection fails with Entra's error \"AADSTS50011\"" },
    Entry { area: C, keywords: &[T], phrase: "the call succeeds from host {string}", parameters: &["egress host"], example: "the call succeeds from host \"pp-dev-westus\"" },
    Entry { area: C, keywords: &[T], phrase: "every case the call returned belongs to {string} or to a group of hers", parameters: &["user"], example: "every case the call returned belongs to \"alice@contoso.onmicrosoft.com\" or to a group of hers" },
    Entry { area: C, keywords: &[T], phrase: "the call returned cases of both teams", parameters: &[], example: "the call returned cases of both teams" },
    Entry { area: C, keywords: &[T], phrase: "the flow log shows the call leaving {string} for {string}", parameters: &["host", "service"], example: "the flow log shows the call leaving \"pp-prod-eastus\" for \"cases-api-prod\"" },
    Entry { area: C, keywords: &[T], phrase: "the runtime answers {int}", parameters: &["HTTP status"], example: "the runtime answers 400" },
    Entry { area: C, keywords: &[T], phrase: "the runtime's message names the host {string}", parameters: &["host"], example: "the runtime's message names the host \"pp-prod-eastus\"" },
    Entry { area: C, keywords: &[T], phrase: "the runtime's message says {string}", parameters: &["text"], example: "the runtime's message says \"Permission denied due to missing connection ACL\"" },
    Entry { area: C, keywords: &[W], phrase: "the connector {string} is saved again in {string}", parameters: &["connector", "environment"], example: "the connector \"contoso-cases\" is saved again in \"prod\"" },
    Entry { area: C, keywords: &[T], phrase: "the variable {string} of {string} does not resolve, with a message containing {string}", parameters: &["variable", "environment", "text"], example: "the variable \"cr_CasesClientId\" of \"prod\" does not resolve, with a message containing \"kv-contoso-prod\"" },
    Entry { area: C, keywords: &[T], phrase: "{string} cannot create a connection to {string} in {string}, with a message containing {string}", parameters: &["user", "connector", "environment", "text"], example: "\"alice@contoso.onmicrosoft.com\" cannot create a connection to \"contoso-cases\" in \"prod\", with a message containing \"cr_CasesClientId\"" },
    Entry { area: C, keywords: &[W], phrase: "the connector's client secret is rotated in Entra and in {string}", parameters: &["vault"], example: "the connector's client secret is rotated in Entra and in \"kv-contoso-prod\"" },
    Entry { area: C, keywords: &[W], phrase: "the clock advances by {int} {word}", parameters: &["count", "hours or minutes"], example: "the clock advances by 2 hours" },
    Entry { area: C, keywords: &[T], phrase: "testing the connection of {string} to {string} in {string} shows the error {string}", parameters: &["user", "connector", "environment", "text"], example: "testing the connection of \"alice@contoso.onmicrosoft.com\" to \"contoso-cases\" in \"prod\" shows the error \"AADSTS50057\"" },
    Entry { area: C, keywords: &[W], phrase: "{string} calls {string} through the connection of {string}", parameters: &["user", "METHOD /path", "connection owner"], example: "\"bob@contoso.onmicrosoft.com\" calls \"GET /cases/search?q=outage\" through the connection of \"alice@contoso.onmicrosoft.com\"" },
    Entry { area: C, keywords: &[W], phrase: "{string} calls the runtime with a token for {string}", parameters: &["user", "resource"], example: "\"alice@contoso.onmicrosoft.com\" calls the runtime with a token for \"api://contoso-cases\"" },
    // A landscape's network alone (features/network_isolation.feature).
    Entry { area: N, keywords: &[G], phrase: "the {word} network on the {word} fabric", parameters: &["landscape name", "fabric (loopback, netns, docker)"], example: "the contoso network on the loopback fabric" },
    Entry { area: N, keywords: &[T], phrase: "{string} can reach the private endpoint {string}", parameters: &["host", "private endpoint"], example: "\"pp-prod-westus\" can reach the private endpoint \"pe-kv-contoso-prod\"" },
    Entry { area: N, keywords: &[W], phrase: "{string} connects to the private endpoint {string}", parameters: &["host", "private endpoint"], example: "\"pp-prod-westus\" connects to the private endpoint \"pe-kv-contoso-prod\"" },
    Entry { area: N, keywords: &[T], phrase: "{string} cannot reach the private endpoint {string}", parameters: &["host", "private endpoint"], example: "\"internet\" cannot reach the private endpoint \"pe-kv-contoso-prod\"" },
    Entry { area: N, keywords: &[T], phrase: "from {string} the name {string} resolves to the public endpoint of {string}", parameters: &["host", "DNS name", "service"], example: "from \"internet\" the name \"cases-api-prod.azurewebsites.net\" resolves to the public endpoint of \"cases-api-prod\"" },
    Entry { area: N, keywords: &[T], phrase: "from {string} the name {string} resolves to the private endpoint {string}", parameters: &["host", "DNS name", "private endpoint"], example: "from \"pp-prod-eastus\" the name \"kv-contoso-prod.vault.azure.net\" resolves to the private endpoint \"pe-kv-contoso-prod\"" },
    Entry { area: N, keywords: &[T], phrase: "from {string} the name {string} does not resolve", parameters: &["host", "DNS name"], example: "from \"pp-test-westus\" the name \"kv-contoso-prod.vault.azure.net\" does not resolve" },
    Entry { area: N, keywords: &[W], phrase: "the peering between {string} and {string} is turned off", parameters: &["vNet", "vNet"], example: "the peering between \"vnet-prod-westus\" and \"vnet-prod-eastus\" is turned off" },
    Entry { area: N, keywords: &[T], phrase: "the flow log shows {int} connections begun from the prod delegated subnets", parameters: &["count"], example: "the flow log shows 2 connections begun from the prod delegated subnets" },
    Entry { area: N, keywords: &[T], phrase: "no flow log record of the prod delegated subnets crossed the public internet", parameters: &[], example: "no flow log record of the prod delegated subnets crossed the public internet" },
    // Stubbed third-party APIs (features/connector.feature; `implementation: {kind: stub}`).
    Entry { area: S, keywords: &[G], phrase: "the {word} landscape is running with the API {string} as a stub", parameters: &["landscape name", "API"], example: "the contoso landscape is running with the API \"cases-api-dev\" as a stub" },
    Entry { area: S, keywords: &[G], phrase: "the {word} landscape is running with the API {string} stubbed by {string}", parameters: &["landscape name", "API", "mappings file under scenarios/"], example: "the contoso landscape is running with the API \"cases-api-dev\" stubbed by \"stubs/cases-outage.yaml\"" },
    Entry { area: S, keywords: &[G], phrase: "the API {string} answers {word} {string} with {int}", parameters: &["API", "method", "path (query parameters required too)", "status"], example: "the API \"cases-api-dev\" answers GET \"/cases/search\" with 503" },
    Entry { area: S, keywords: &[G], phrase: "the API {string} answers {word} {string} with {int} and the JSON body:", parameters: &["API", "method", "path", "status", "the body as a docstring"], example: "the API \"cases-api-dev\" answers GET \"/cases/search\" with 200 and the JSON body:" },
    Entry { area: S, keywords: &[G], phrase: "the API {string} answers {word} {string} with {int} after {int} seconds", parameters: &["API", "method", "path", "status", "delay in seconds"], example: "the API \"cases-api-dev\" answers GET \"/cases/search\" with 200 after 30 seconds" },
    Entry { area: S, keywords: &[T], phrase: "the API {string} received {int} request(s)", parameters: &["API", "count"], example: "the API \"cases-api-dev\" received 1 request" },
    Entry { area: S, keywords: &[T], phrase: "the API {string} received {int} request(s) with a bearer token for {string}", parameters: &["API", "count", "audience: app name, application ID URI or client id"], example: "the API \"cases-api-dev\" received 1 request with a bearer token for \"api://contoso-cases\"" },
];

/// The catalogue as text, grouped by area: what `ppvnet steps` prints.
pub fn render() -> String {
    let mut out = String::new();
    let mut area = "";
    for e in CATALOGUE {
        if e.area != area {
            area = e.area;
            let _ = writeln!(out, "\n## {area}\n");
        }
        let kws: Vec<&str> = e
            .keywords
            .iter()
            .map(|k| match k {
                Kw::Given => "Given",
                Kw::When => "When",
                Kw::Then => "Then",
            })
            .collect();
        let _ = writeln!(out, "{} {}", kws.join("/"), e.phrase);
        if !e.parameters.is_empty() {
            let _ = writeln!(out, "    parameters: {}", e.parameters.join("; "));
        }
        let _ = writeln!(out, "    example:    {} {}", kws[0], e.example);
    }
    out.trim_start().to_string()
}

#[cfg(test)]
mod tests {
    use cucumber::codegen::{StepConstructor, WorldInventory};

    use super::*;
    use crate::acceptance::PpvWorld;

    /// (keyword, regex, location) of every step cucumber collected.
    fn registered() -> Vec<(Kw, cucumber::codegen::Regex, String)> {
        let mut all = Vec::new();
        let mut add =
            |kw, (loc, re, _): (cucumber::step::Location, cucumber::codegen::LazyRegex, _)| {
                all.push((kw, re(), loc.to_string()));
            };
        use cucumber::codegen::inventory::iter;
        for s in iter::<<PpvWorld as WorldInventory>::Given> {
            add(Kw::Given, s.inner());
        }
        for s in iter::<<PpvWorld as WorldInventory>::When> {
            add(Kw::When, s.inner());
        }
        for s in iter::<<PpvWorld as WorldInventory>::Then> {
            add(Kw::Then, s.inner());
        }
        all
    }

    #[test]
    fn every_step_has_a_catalogue_entry_and_every_entry_a_step() {
        let steps = registered();
        assert!(
            steps.len() > 50,
            "cucumber collected only {} steps",
            steps.len()
        );
        for (kw, re, loc) in &steps {
            let entry = CATALOGUE
                .iter()
                .find(|e| e.keywords.contains(kw) && re.is_match(e.example));
            assert!(
                entry.is_some(),
                "the {kw:?} step /{re}/ ({loc}) has no entry in acceptance::catalogue::CATALOGUE"
            );
        }
        for e in CATALOGUE {
            for kw in e.keywords {
                let matching: Vec<_> = steps
                    .iter()
                    .filter(|(k, re, _)| k == kw && re.is_match(e.example))
                    .collect();
                assert_eq!(
                    matching.len(),
                    1,
                    "the catalogue's {kw:?} example {:?} matches {} steps",
                    e.example,
                    matching.len()
                );
            }
        }
    }

    #[test]
    fn the_rendered_catalogue_shows_every_phrase_with_an_example() {
        let text = render();
        for e in CATALOGUE {
            assert!(text.contains(e.phrase), "{}", e.phrase);
            assert!(text.contains(e.example), "{}", e.example);
        }
    }
}
