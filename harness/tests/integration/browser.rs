//! The browser test kit (`ppvnet_testkit::browser`) on a page of its own: chromedriver starts,
//! headless Chromium loads a page, types, clicks, waits for the page's script, and saves a
//! screenshot. The landscape's pages are tested in `browser_app`.

use std::time::Duration;

use ppvnet_testkit::browser::{self, Browser, BrowserOptions};

/// A page whose button writes the typed text, escaped by the DOM, into `#out`.
const PAGE: &str = "<!DOCTYPE html><html><head><title>kit</title></head><body>\
<input id=\"name\"><button id=\"go\" onclick=\"setTimeout(function(){\
document.getElementById('out').textContent='Hello, '+document.getElementById('name').value},50)\">Go</button>\
<p id=\"out\"></p></body></html>";

/// Serves [`PAGE`] over plain HTTP on a loopback port to every request.
async fn serve_page() -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut head = [0u8; 4096];
                let _ = s.read(&mut head).await;
                let reply = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{PAGE}",
                    PAGE.len()
                );
                let _ = s.write_all(reply.as_bytes()).await;
            });
        }
    });
    format!("http://{addr}/")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headless_chromium_types_clicks_waits_and_takes_a_screenshot() {
    if crate::require::skip_unless("chromium", browser::missing()) {
        return;
    }
    let url = serve_page().await;
    let shots = browser::screenshot_dir("browser_kit");
    let _ = std::fs::remove_dir_all(&shots);
    let b = Browser::start(BrowserOptions {
        screenshots: Some(shots.clone()),
        ..Default::default()
    })
    .await
    .unwrap();
    b.goto(&url).await.unwrap();
    assert_eq!(b.title().await.unwrap(), "kit");
    let input = b.find("#name").await.unwrap();
    b.type_into(&input, "<b>Ann</b>").await.unwrap();
    b.click(&b.find("#go").await.unwrap()).await.unwrap();
    b.wait_for("#out:not(:empty)", Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(b.text("#out").await.unwrap(), "Hello, <b>Ann</b>");
    assert!(b.find_all("#out b").await.unwrap().is_empty());
    let png = b.screenshot("typed").await.unwrap().expect("a screenshot");
    assert_eq!(png, shots.join("01-typed.png"));
    let bytes = std::fs::read(&png).unwrap();
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    // Waiting for what never appears ends at the deadline with an error naming it.
    let err = b
        .wait_for("#never", Duration::from_millis(300))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("#never"), "{err}");
}
