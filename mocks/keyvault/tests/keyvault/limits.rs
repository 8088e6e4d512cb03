//! Size limits over HTTP: an oversized body gets Key Vault's JSON error on HTTP/1.1 and on
//! HTTP/2 alike, and tag limits are enforced on the wire.

use serde_json::{Value, json};

use crate::common::{OFFICER, start_with_officer};

async fn put(client: &reqwest::Client, url: &str, token: &str, body: Vec<u8>) -> (u16, Value) {
    let response = client
        .put(url)
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("the refusal must be readable, not a reset");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn an_oversized_body_gets_the_json_error_over_http1_and_http2() {
    let (_clock, authority, running) = start_with_officer().await;
    let token = authority.token(OFFICER);
    let url = format!("http://{}/secrets/big?api-version=7.6", running.public);
    let big = {
        let mut b = br#"{"value":""#.to_vec();
        b.extend(std::iter::repeat_n(b'x', 5 * 1024 * 1024));
        b.extend_from_slice(br#""}"#);
        b
    };
    let http1 = reqwest::Client::builder().http1_only().build().unwrap();
    let http2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    for (protocol, client) in [("HTTP/1.1", &http1), ("HTTP/2", &http2)] {
        let (status, body) = put(client, &url, &token, big.clone()).await;
        assert_eq!(status, 400, "{protocol}: {body}");
        assert_eq!(
            body,
            json!({"error": {"code": "BadParameter", "message": "The request body is too large."}}),
            "{protocol}"
        );
        // The connection is still usable afterwards.
        let (status, _) = put(client, &url, &token, br#"{"value":"ok"}"#.to_vec()).await;
        assert_eq!(status, 200, "{protocol}");
    }
    running.stop().await;
}

#[tokio::test]
async fn tags_beyond_the_limits_are_bad_parameter() {
    let (_clock, authority, running) = start_with_officer().await;
    let token = authority.token(OFFICER);
    let url = format!("http://{}/secrets/tagged?api-version=7.6", running.public);
    let client = reqwest::Client::new();
    let tags = |n: usize| -> Value { (0..n).map(|i| (format!("t{i}"), json!("v"))).collect() };
    let body = |tags: Value| serde_json::to_vec(&json!({"value": "x", "tags": tags})).unwrap();
    let (status, _) = put(&client, &url, &token, body(tags(15))).await;
    assert_eq!(status, 200);
    for bad in [
        tags(16),
        json!({"n".repeat(513): "v"}),
        json!({"n": "v".repeat(257)}),
    ] {
        let (status, reply) = put(&client, &url, &token, body(bad)).await;
        assert_eq!(status, 400);
        assert_eq!(
            reply,
            json!({"error": {"code": "BadParameter", "message": "Property has invalid value\r\n"}})
        );
    }
    running.stop().await;
}
