//! The request log: one structured line per request carrying the correlation ids.

use std::io::Write;
use std::sync::{Arc, Mutex};

use crate::support::*;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

// A current-thread runtime runs the server on this thread, where the capturing subscriber is set;
// other tests run on other threads of this process, so their requests are not captured here.
#[tokio::test(flavor = "current_thread")]
async fn each_request_is_logged_with_its_correlation_ids_and_caller() {
    // Before the thread-scoped capture: see `install_global_subscriber` for why.
    install_global_subscriber();
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_writer(move || writer.clone())
        .with_max_level(tracing::Level::INFO)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let (_issuer, key, running) = landscape(50).await;
    let alice = sign(&key, &user_claims(ALICE, &running.clock));
    let r = reqwest::Client::new()
        .get(format!("{}/cases/search?q=printer", running.private))
        .bearer_auth(&alice)
        .header("x-ms-client-request-id", "client-req-42")
        .header(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let request_id = r.headers()["x-ms-request-id"].to_str().unwrap().to_owned();
    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let line = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|l| l["fields"]["request_id"] == request_id.as_str())
        .unwrap_or_else(|| panic!("no log line for {request_id}: {text}"));
    let fields = &line["fields"];
    assert_eq!(fields["client_request_id"], "client-req-42");
    assert_eq!(fields["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(fields["status"], 200);
    assert_eq!(fields["path"], "/cases/search");
    assert_eq!(fields["caller"], ALICE.oid);
    assert_eq!(fields["ingress"], "private_endpoint:pe-cases-api");
    // The search text is not logged: it may hold personal data.
    assert!(!text.contains("q=printer"));
}
