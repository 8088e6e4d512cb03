//! Replays real Key Vault traffic (Azure SDK test-proxy recordings of Python and Rust tests)
//! against the fake and compares each answer with the recorded one: status code, JSON field
//! names (ids, timestamps and values differ by nature and are not compared) and the `x-ms-*`
//! headers the service sent.
//!
//! How the recordings are turned into a replay:
//! - the files of one SDK ran against one vault, so they are replayed, in the order they were
//!   recorded, against one fake vault: the Python one used access policies and 90-day
//!   retention, the Rust one RBAC (its answers carry `x-ms-keyvault-rbac-assignment-id`) and
//!   7-day retention (`CustomizedRecoverable+Purgeable`);
//! - secrets the recorded vault already held (listed but never created by the replayed
//!   requests) are seeded first: active ones from the config (certificate-backed ones with
//!   `managed: true`), deleted ones by set + delete;
//! - before each request the run clock advances by the gap between the recorded `Date`
//!   headers, so asynchronous deletes and recovers complete when they did in the recording;
//! - requests recorded without credentials (the challenge probe) are sent without a token,
//!   the others with a token from a test authority; version ids and backup blobs in requests
//!   are replaced by the fake's own, learnt from earlier answers;
//! - a run of list requests (`$skiptoken=Sanitized`) is compared as one listing: the fake's
//!   pages are followed through its own `nextLink`s and the set of listed ids and every item's
//!   field names must equal the recording's, since the real service cuts pages differently.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use ppvnet_common::Clock;
use ppvnet_keyvault::{
    AccessPolicy, Authorization, KeyVaultConfig, KeyVaultRole, RoleAssignment, SecretPermission,
    SeedSecret, VaultConfig,
};
use serde_json::{Value, json};

use crate::common::{Authority, Running, TENANT, bind, new_kv};

const OID: &str = "bbbbbbbb-0000-0000-0000-000000000001";

struct Entry {
    method: String,
    path_and_query: String,
    request_body: Value,
    /// The SDK's `x-ms-client-request-id`, which the service echoes.
    client_request_id: Option<String>,
    status: u16,
    response_headers: BTreeMap<String, String>,
    response_body: Value,
    date: i64,
    file: String,
}

fn load(folder: &str) -> Vec<Vec<Entry>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/recordings")
        .join(folder);
    let mut files: Vec<Vec<Entry>> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|path| {
            let file = path.file_name().unwrap().to_string_lossy().into_owned();
            let doc: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
            doc["Entries"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| {
                    let uri = e["RequestUri"].as_str().unwrap();
                    let path_and_query =
                        uri.splitn(4, '/').nth(3).map(|p| format!("/{p}")).unwrap();
                    let headers: BTreeMap<String, String> = e["ResponseHeaders"]
                        .as_object()
                        .unwrap()
                        .iter()
                        .map(|(k, v)| {
                            (
                                k.to_ascii_lowercase(),
                                v.as_str().unwrap_or_default().to_owned(),
                            )
                        })
                        .collect();
                    Entry {
                        method: e["RequestMethod"].as_str().unwrap().to_owned(),
                        path_and_query,
                        request_body: e["RequestBody"].clone(),
                        client_request_id: e["RequestHeaders"]["x-ms-client-request-id"]
                            .as_str()
                            .map(str::to_owned),
                        status: e["StatusCode"].as_u64().unwrap() as u16,
                        date: http_date(&headers["date"]),
                        response_headers: headers,
                        response_body: e["ResponseBody"].clone(),
                        file: file.clone(),
                    }
                })
                .collect()
        })
        .collect();
    files.sort_by_key(|entries| (entries[0].date, entries[0].file.clone()));
    assert!(!files.is_empty(), "no recordings in {}", dir.display());
    files
}

fn http_date(s: &str) -> i64 {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc2822)
        .unwrap_or_else(|e| panic!("date {s}: {e}"))
        .unix_timestamp()
}

fn path_of(entry: &Entry) -> &str {
    entry.path_and_query.split('?').next().unwrap()
}

fn is_continuation(entry: &Entry) -> bool {
    entry.path_and_query.contains("$skiptoken=")
}

fn is_listing(entry: &Entry) -> bool {
    entry.method == "GET"
        && (path_of(entry) == "/secrets"
            || path_of(entry) == "/deletedsecrets"
            || path_of(entry).ends_with("/versions"))
}

fn secret_name_of_id(id: &str) -> String {
    // .../secrets/{name}[/{version}] or .../deletedsecrets/{name}
    let after = id
        .split("/secrets/")
        .nth(1)
        .or_else(|| id.split("/deletedsecrets/").nth(1))
        .unwrap();
    after.split('/').next().unwrap().to_owned()
}

/// Everything the recorded vault held before the replayed requests touched it.
fn preexisting(files: &[Vec<Entry>]) -> (Vec<SeedSecret>, Vec<String>) {
    let created: BTreeSet<String> = files
        .iter()
        .flatten()
        .filter(|e| e.method == "PUT")
        .map(|e| {
            path_of(e)
                .trim_start_matches("/secrets/")
                .to_ascii_lowercase()
        })
        .collect();
    let mut active = BTreeMap::new();
    let mut deleted = BTreeSet::new();
    for e in files
        .iter()
        .flatten()
        .filter(|e| is_listing(e) && e.status == 200)
    {
        for item in e.response_body["value"].as_array().unwrap() {
            let name = secret_name_of_id(item["id"].as_str().unwrap());
            if created.contains(&name.to_ascii_lowercase()) {
                continue;
            }
            if path_of(e) == "/deletedsecrets" {
                deleted.insert(name);
            } else {
                let mut seed = SeedSecret::new(name.clone(), "preexisting");
                seed.content_type = item["contentType"].as_str().map(str::to_owned);
                seed.managed = item["managed"].as_bool().unwrap_or(false);
                seed.enabled = item["attributes"]["enabled"].as_bool().unwrap_or(true);
                seed.not_before = item["attributes"]["nbf"].as_i64();
                seed.expires = item["attributes"]["exp"].as_i64();
                if let Some(tags) = item["tags"].as_object() {
                    seed.tags = tags
                        .iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
                        .collect();
                }
                active.insert(name, seed);
            }
        }
    }
    (
        active.into_values().collect(),
        deleted.into_iter().collect(),
    )
}

/// Field names of a JSON value, recursively (`a.b` for nested objects).
fn shape(v: &Value, prefix: &str, out: &mut BTreeSet<String>) {
    if let Value::Object(map) = v {
        for (k, child) in map {
            let key = format!("{prefix}{k}");
            out.insert(key.clone());
            if k != "tags" {
                shape(child, &format!("{key}."), out);
            }
        }
    }
}

fn fields(v: &Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    shape(v, "", &mut out);
    out
}

struct Replayer {
    running: Running,
    clock: Clock,
    authority: Authority,
    http: reqwest::Client,
    versions: HashMap<String, String>,
    last_backup: Option<String>,
    last_date: Option<i64>,
    compared: usize,
}

impl Replayer {
    async fn send(
        &self,
        method: &str,
        url: &str,
        with_token: bool,
        body: &Value,
        client_request_id: Option<&str>,
    ) -> (u16, BTreeMap<String, String>, Value) {
        let mut req = self.http.request(method.parse().unwrap(), url);
        if let Some(id) = client_request_id {
            req = req.header("x-ms-client-request-id", id);
        }
        if with_token {
            req = req.bearer_auth(self.authority.token(OID));
        }
        if !body.is_null() {
            req = req.json(body);
        } else if method != "GET" {
            req = req.header("content-length", "0");
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let headers = resp
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    v.to_str().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        let bytes = resp.bytes().await.unwrap();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap()
        };
        (status, headers, body)
    }

    fn url(&self, path_and_query: &str) -> String {
        let mut p = path_and_query.to_owned();
        for (recorded, ours) in &self.versions {
            p = p.replace(recorded.as_str(), ours);
        }
        format!("http://{}{p}", self.running.public)
    }

    fn advance_to(&mut self, date: i64) {
        if let Some(last) = self.last_date {
            self.clock.shift_secs((date - last).max(0));
        }
        self.last_date = Some(date);
    }

    fn learn_versions(&mut self, recorded: &Value, ours: &Value) {
        if let (Some(r), Some(o)) = (recorded["id"].as_str(), ours["id"].as_str()) {
            let (r_parts, o_parts): (Vec<&str>, Vec<&str>) =
                (r.split('/').collect(), o.split('/').collect());
            if r_parts.len() == 6 && o_parts.len() == 6 {
                self.versions
                    .insert(r_parts[5].to_owned(), o_parts[5].to_owned());
            }
        }
    }

    fn compare_headers(&self, entry: &Entry, ours: &BTreeMap<String, String>) {
        for name in entry
            .response_headers
            .keys()
            .filter(|k| k.starts_with("x-ms-") && *k != "x-ms-keyvault-rbac-cache")
        {
            assert!(
                ours.contains_key(name),
                "{}: {} {}: header {name} missing; ours: {ours:?}",
                entry.file,
                entry.method,
                entry.path_and_query
            );
        }
        if entry.status == 401 {
            assert!(
                ours.contains_key("www-authenticate"),
                "{}: no challenge",
                entry.file
            );
        }
    }

    async fn replay_single(&mut self, entry: &Entry) {
        self.advance_to(entry.date);
        let mut body = entry.request_body.clone();
        if entry.method == "POST" && path_of(entry) == "/secrets/restore" {
            body = json!({"value": self.last_backup.clone().expect("restore before backup")});
        }
        let with_token = entry.status != 401;
        let (status, headers, ours) = self
            .send(
                &entry.method,
                &self.url(&entry.path_and_query),
                with_token,
                &body,
                entry.client_request_id.as_deref(),
            )
            .await;
        let context = format!("{} {} {}", entry.file, entry.method, entry.path_and_query);
        assert_eq!(status, entry.status, "{context}: status; ours: {ours}");
        assert_eq!(
            fields(&ours),
            fields(&entry.response_body),
            "{context}: fields\nours: {ours}\nrecorded: {}",
            entry.response_body
        );
        self.compare_headers(entry, &headers);
        if path_of(entry).ends_with("/backup") {
            self.last_backup = ours["value"].as_str().map(str::to_owned);
        }
        self.learn_versions(&entry.response_body, &ours);
        self.compared += 1;
    }

    async fn replay_listing(&mut self, group: &[&Entry]) {
        let first = group[0];
        self.advance_to(group.last().unwrap().date);
        let context = format!("{} listing {}", first.file, path_of(first));
        let mut recorded: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for e in group {
            assert_eq!(
                fields(&e.response_body),
                BTreeSet::from(["value".to_owned(), "nextLink".to_owned()])
            );
            for item in e.response_body["value"].as_array().unwrap() {
                recorded.insert(normal_id(item["id"].as_str().unwrap()), fields(item));
            }
        }
        let mut ours: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let mut url = Some(self.url(&first.path_and_query));
        while let Some(u) = url {
            let (status, headers, page) = self
                .send(
                    "GET",
                    &u,
                    true,
                    &Value::Null,
                    first.client_request_id.as_deref(),
                )
                .await;
            assert_eq!(status, 200, "{context}: {page}");
            assert_eq!(
                fields(&page),
                BTreeSet::from(["value".to_owned(), "nextLink".to_owned()]),
                "{context}"
            );
            self.compare_headers(first, &headers);
            for item in page["value"].as_array().unwrap() {
                let id = normal_id(item["id"].as_str().unwrap());
                // Version ids differ; map the fake's back to the recording's for comparison.
                let id = self
                    .versions
                    .iter()
                    .find(|(_, o)| id.ends_with(o.as_str()))
                    .map_or(id.clone(), |(r, o)| id.replace(o.as_str(), r));
                ours.insert(id, fields(item));
            }
            url = page["nextLink"].as_str().map(str::to_owned);
        }
        assert_eq!(
            ours.keys().collect::<Vec<_>>(),
            recorded.keys().collect::<Vec<_>>(),
            "{context}: listed ids"
        );
        assert_eq!(ours, recorded, "{context}: item fields");
        self.compared += group.len();
    }
}

/// An id without its origin: `/secrets/{name}[/{version}]`.
fn normal_id(id: &str) -> String {
    let rest = id.splitn(4, '/').nth(3).unwrap_or_default();
    format!("/{rest}").to_ascii_lowercase()
}

async fn replay(folder: &str, vault_setup: impl FnOnce(&mut VaultConfig)) -> usize {
    let files = load(folder);
    let (seeds, deleted) = preexisting(&files);
    let clock = Clock::new();
    let authority = Authority::start(clock.clone(), None).await;
    let listener = bind();
    let mut v = VaultConfig::new("vaultname", TENANT, "eastus");
    v.host_aliases
        .push(listener.local_addr().unwrap().to_string());
    v.secrets = seeds;
    vault_setup(&mut v);
    let config = KeyVaultConfig {
        vaults: vec![v],
        ..Default::default()
    };
    let kv = new_kv(config, &clock, authority.check(reqwest::Client::new()));
    let running = Running::serve(kv, (listener, None), None);
    let mut r = Replayer {
        running,
        clock,
        authority,
        http: reqwest::Client::new(),
        versions: HashMap::new(),
        last_backup: None,
        last_date: None,
        compared: 0,
    };
    for name in &deleted {
        let (s, _, b) = r
            .send(
                "PUT",
                &r.url(&format!("/secrets/{name}?api-version=2025-07-01")),
                true,
                &json!({"value": "preexisting"}),
                None,
            )
            .await;
        assert_eq!(s, 200, "{b}");
        let (s, _, _) = r
            .send(
                "DELETE",
                &r.url(&format!("/secrets/{name}?api-version=2025-07-01")),
                true,
                &Value::Null,
                None,
            )
            .await;
        assert_eq!(s, 200);
    }
    r.clock.shift_secs(60);
    // The files of one SDK were recorded concurrently (the Rust ones within the same seconds):
    // replay them merged by recorded time, each file in its own order, and within one second
    // let writes go before listings, which is the only order consistent with what was listed.
    let mut queues: Vec<std::collections::VecDeque<&Entry>> =
        files.iter().map(|f| f.iter().collect()).collect();
    loop {
        let next = queues
            .iter()
            .enumerate()
            .filter_map(|(i, q)| q.front().map(|e| ((e.date, is_listing(e), i), i)))
            .min()
            .map(|(_, i)| i);
        let Some(i) = next else { break };
        let e = queues[i].pop_front().unwrap();
        if is_listing(e) && !is_continuation(e) {
            let mut group = vec![e];
            while queues[i]
                .front()
                .is_some_and(|n| is_continuation(n) && path_of(n) == path_of(e))
            {
                group.push(queues[i].pop_front().unwrap());
            }
            r.replay_listing(&group).await;
        } else {
            r.replay_single(e).await;
        }
    }
    let total: usize = files.iter().map(Vec::len).sum();
    assert_eq!(r.compared, total);
    r.running.stop().await;
    total
}

#[tokio::test]
async fn python_sdk_recordings_replay_against_the_fake() {
    let compared = replay("python", |v| {
        v.authorization = Authorization::AccessPolicies {
            access_policies: vec![AccessPolicy {
                object_id: OID.into(),
                secret_permissions: vec![SecretPermission::All],
            }],
        };
    })
    .await;
    assert!(compared >= 40, "{compared}");
}

#[tokio::test]
async fn rust_sdk_recordings_replay_against_the_fake() {
    let compared = replay("rust", |v| {
        v.region = "westus".into();
        v.soft_delete_retention_days = 7;
        v.authorization = Authorization::Rbac {
            role_assignments: vec![RoleAssignment {
                principal_id: OID.into(),
                role: KeyVaultRole::SecretsOfficer,
                secret: None,
            }],
        };
    })
    .await;
    assert!(compared >= 15, "{compared}");
}
