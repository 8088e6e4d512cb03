//! The case-search app's routes over HTTP, as a browser drives them: sign-in through the real
//! mock Entra (authorization code + PKCE), the connection's consent, the search through the
//! runtime, the error banner, expiry and sign-out. A small cookie jar stands in for the browser
//! (the app and Entra are both on 127.0.0.1, and cookies ignore ports, as in browsers).

use std::collections::BTreeMap;

use crate::support::*;
use reqwest::StatusCode;
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

/// A browser's cookies and its requests (redirects are read one by one).
struct Jar<'a> {
    l: &'a Landscape,
    cookies: BTreeMap<String, String>,
}

/// One answer: status, `Location`, body.
struct Answer {
    status: StatusCode,
    location: String,
    body: String,
}

impl<'a> Jar<'a> {
    fn new(l: &'a Landscape) -> Self {
        Self {
            l,
            cookies: BTreeMap::new(),
        }
    }

    async fn send(&mut self, request: reqwest::RequestBuilder) -> Answer {
        let cookie: Vec<String> = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let r = request
            .header("cookie", cookie.join("; "))
            .send()
            .await
            .unwrap();
        for c in r.headers().get_all("set-cookie") {
            let c = c.to_str().unwrap();
            let (pair, attributes) = c.split_once(';').unwrap_or((c, ""));
            let (k, v) = pair.split_once('=').unwrap();
            if attributes.contains("Max-Age=0") {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.into(), v.into());
            }
        }
        let status = r.status();
        let location = r
            .headers()
            .get("location")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        Answer {
            status,
            location,
            body: r.text().await.unwrap(),
        }
    }

    /// GET `url` (relative to the app's base when it starts with `/`).
    async fn get(&mut self, url: &str) -> Answer {
        let url = self.absolute(url);
        let request = self.l.http.get(url);
        self.send(request).await
    }

    async fn post(&mut self, url: &str) -> Answer {
        let url = self.absolute(url);
        let request = self.l.http.post(url).form(&[("", "")]);
        self.send(request).await
    }

    fn absolute(&self, url: &str) -> String {
        if url.starts_with('/') {
            format!("{}{url}", self.l.base)
        } else {
            url.to_owned()
        }
    }

    /// Posts Entra's sign-in form of `authorize` (the link's parameters plus the password);
    /// returns Entra's answer.
    async fn sign_in_form(&mut self, authorize: &str, user: &str, password: &str) -> Answer {
        let link = url::Url::parse(authorize).unwrap();
        let mut form: Vec<(String, String)> = link.query_pairs().into_owned().collect();
        form.push(("login".into(), user.into()));
        form.push(("passwd".into(), password.into()));
        let mut target = link.clone();
        target.set_query(None);
        let request = self.l.http.post(target).form(&form);
        self.send(request).await
    }

    /// Opens the app, signs in on Entra's page and follows the callback; returns the page the
    /// app then shows.
    async fn sign_in(&mut self, user: &str, password: &str) -> Answer {
        let open = self.get(&format!("/apps/{ENV}")).await;
        assert_eq!(open.status, StatusCode::SEE_OTHER, "{}", open.body);
        let entra = self.sign_in_form(&open.location, user, password).await;
        assert_eq!(entra.status, StatusCode::FOUND, "{}", entra.body);
        let back = self.get(&entra.location).await;
        assert_eq!(back.status, StatusCode::SEE_OTHER, "{}", back.body);
        assert_eq!(back.location, format!("/apps/{ENV}"));
        self.get(&back.location).await
    }

    /// Signs in and makes the connection through its consent (Entra's SSO session answers at
    /// once); returns the app's page afterwards.
    async fn connected(&mut self, user: &str, password: &str) -> Answer {
        let page = self.sign_in(user, password).await;
        assert!(page.body.contains("id=\"connect\""), "{}", page.body);
        let consent = self.post(&format!("/apps/{ENV}/connect")).await;
        assert_eq!(consent.status, StatusCode::SEE_OTHER, "{}", consent.body);
        assert!(consent.location.starts_with(&self.l.entra_base));
        let code = self.get(&consent.location).await;
        assert_eq!(code.status, StatusCode::FOUND, "{}", code.body);
        let back = self.get(&code.location).await;
        assert_eq!(back.status, StatusCode::SEE_OTHER, "{}", back.body);
        assert_eq!(back.location, format!("{}/apps/{ENV}", self.l.base));
        self.get(&back.location).await
    }
}

async fn backend_with_cases(l: &Landscape) {
    Mock::given(method("GET"))
        .and(path("/cases/search"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"value": [
            {"id": "CAS-1", "title": "<script>alert('x')</script> & more", "status": "active",
             "priority": "high", "customer": "Fabrikam \"Ltd\"", "ownerObjectId": ALICE_ID,
             "teamGroupId": "t-1"},
            {"id": "CAS-2", "title": "Printer jam", "status": "new", "priority": "low",
             "customer": "Contoso", "ownerObjectId": ALICE_ID, "teamGroupId": "t-1"}
        ]})))
        .mount(&l.backend)
        .await;
}

#[tokio::test]
async fn opening_the_app_without_a_session_goes_to_entra_with_pkce_state_and_nonce() {
    let l = Landscape::start(Options::default()).await;
    let mut jar = Jar::new(&l);
    let open = jar.get(&format!("/apps/{ENV}?q=printer%20jam")).await;
    assert_eq!(open.status, StatusCode::SEE_OTHER);
    let link = url::Url::parse(&open.location).unwrap();
    assert_eq!(
        link.path(),
        format!("/{TENANT}/oauth2/v2.0/authorize"),
        "{link}"
    );
    let q: BTreeMap<String, String> = link.query_pairs().into_owned().collect();
    assert_eq!(q["client_id"], POWER_APPS);
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["redirect_uri"], format!("{}/apps/signin", l.base));
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["code_challenge"].len(), 43, "a SHA-256 in base64url");
    assert!(q["state"].len() >= 32 && q["nonce"].len() >= 16, "{q:?}");
    assert!(q["scope"].contains("openid"), "{q:?}");
    assert!(
        !q.contains_key("prompt"),
        "a first sign-in may use Entra's session"
    );
    // The state is bound to this browser by an HttpOnly, Secure, SameSite=Lax cookie.
    assert_eq!(jar.cookies.get("ppvnet_app_signin"), Some(&q["state"]));
    // Unknown environments are a page, not a redirect.
    let none = jar.get("/apps/nowhere").await;
    assert_eq!(none.status, StatusCode::NOT_FOUND);
    assert!(
        none.body.contains("There is no environment"),
        "{}",
        none.body
    );
}

#[tokio::test]
async fn a_user_signs_in_connects_and_sees_the_cases_escaped() {
    let l = Landscape::start(Options::default()).await;
    backend_with_cases(&l).await;
    let mut jar = Jar::new(&l);
    let page = jar.connected(ALICE, ALICE_PASSWORD).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let html = &page.body;
    assert!(html.contains("id=\"results\""), "{html}");
    assert!(html.contains("Printer jam"), "{html}");
    assert!(html.contains("<p id=\"count\">2 cases</p>"), "{html}");
    // The title is text: escaped, never markup.
    assert!(
        html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; more"),
        "{html}"
    );
    assert!(!html.contains("<script>alert"), "{html}");
    assert!(html.contains("Fabrikam &quot;Ltd&quot;"), "{html}");
    assert!(
        html.contains(&format!("<span id=\"egress\">{HOST_A}</span>")),
        "{html}"
    );
    // The runtime called the backend with the connection's token.
    let received = l.backend.received_requests().await.unwrap();
    let search = received
        .iter()
        .find(|r| r.url.path() == "/cases/search")
        .expect("the backend got the search");
    assert!(search.url.query().unwrap_or_default().contains("top=50"));
    assert!(
        search.headers.get("authorization").is_some(),
        "the connection's token reaches the backend"
    );
    let connections = l.pp.connections();
    assert_eq!(connections.len(), 1);
    assert_eq!(connections[0].owner, ALICE_ID);
}

#[tokio::test]
async fn the_session_cookie_is_http_only_secure_and_lax() {
    let l = Landscape::start(Options::default()).await;
    let mut jar = Jar::new(&l);
    let open = jar.get(&format!("/apps/{ENV}")).await;
    let entra = jar
        .sign_in_form(&open.location, ALICE, ALICE_PASSWORD)
        .await;
    let r = l
        .http
        .get(&entra.location)
        .header(
            "cookie",
            format!("ppvnet_app_signin={}", jar.cookies["ppvnet_app_signin"]),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let session = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("ppvnet_app_session="))
        .expect("a session cookie");
    for attribute in ["HttpOnly", "Secure", "SameSite=Lax", "Path=/apps"] {
        assert!(session.contains(attribute), "{session}");
    }
    let csp = r.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'self'"), "{csp}");
}

#[tokio::test]
async fn a_forged_or_replayed_sign_in_answer_gets_an_error_page() {
    let l = Landscape::start(Options::default()).await;
    let mut jar = Jar::new(&l);
    let open = jar.get(&format!("/apps/{ENV}")).await;
    let entra = jar
        .sign_in_form(&open.location, ALICE, ALICE_PASSWORD)
        .await;
    // Another browser (no sign-in cookie) cannot use the answer.
    let forged = l.http.get(&entra.location).send().await.unwrap();
    assert_eq!(forged.status(), StatusCode::BAD_REQUEST);
    let body = forged.text().await.unwrap();
    assert!(
        body.contains("does not belong to a sign-in this browser started"),
        "{body}"
    );
    // A state that was never issued, with a matching cookie, is unknown.
    let mut stranger = Jar::new(&l);
    stranger
        .cookies
        .insert("ppvnet_app_signin".into(), "made-up".into());
    let unknown = stranger.get("/apps/signin?code=x&state=made-up").await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    assert!(
        unknown
            .body
            .contains("unknown, expired or was already used"),
        "{}",
        unknown.body
    );
    // The real browser signs in once; the same answer again is refused.
    let saved_state = jar.cookies["ppvnet_app_signin"].clone();
    let first = jar.get(&entra.location).await;
    assert_eq!(first.status, StatusCode::SEE_OTHER, "{}", first.body);
    jar.cookies.insert("ppvnet_app_signin".into(), saved_state);
    let replay = jar.get(&entra.location).await;
    assert_eq!(replay.status, StatusCode::BAD_REQUEST, "{}", replay.body);
}

#[tokio::test]
async fn an_expired_session_asks_for_the_password_again() {
    let l = Landscape::start(Options::default()).await;
    backend_with_cases(&l).await;
    let mut jar = Jar::new(&l);
    let page = jar.connected(ALICE, ALICE_PASSWORD).await;
    assert!(page.body.contains("id=\"results\""), "{}", page.body);
    l.clock.shift_secs(2 * 3600);
    let again = jar.get(&format!("/apps/{ENV}")).await;
    assert_eq!(again.status, StatusCode::SEE_OTHER, "{}", again.body);
    let q: BTreeMap<String, String> = url::Url::parse(&again.location)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    assert_eq!(q["prompt"], "login");
    assert_eq!(q["login_hint"], ALICE);
    // Entra shows its sign-in page despite its SSO session.
    let entra = jar.get(&again.location).await;
    assert_eq!(entra.status, StatusCode::OK);
    assert!(entra.body.contains("name=\"passwd\""), "{}", entra.body);
}

#[tokio::test]
async fn an_unreachable_backend_shows_the_runtimes_502_as_power_apps_does() {
    let l = Landscape::start(Options::default()).await;
    backend_with_cases(&l).await;
    let mut jar = Jar::new(&l);
    jar.connected(ALICE, ALICE_PASSWORD).await;
    l.outbound.set_active(ENV, HOST_DOWN);
    let page = jar.get(&format!("/apps/{ENV}?q=printer")).await;
    assert_eq!(page.status, StatusCode::OK);
    let html = &page.body;
    assert!(html.contains("id=\"error-banner\""), "{html}");
    assert!(
        html.contains("<strong>ContosoCases.SearchCases</strong> failed"),
        "{html}"
    );
    assert!(
        html.contains("could not be reached from &#39;pp-contoso-dev-broken&#39;"),
        "{html}"
    );
    assert!(
        html.contains("The server returned an HTTP error with code 502 (Bad Gateway)."),
        "{html}"
    );
    assert!(!html.contains("\"innerError\""), "no raw JSON: {html}");
    // The search text stays in the box.
    assert!(html.contains("value=\"printer\""), "{html}");
}

#[tokio::test]
async fn sign_out_ends_the_apps_and_entras_sessions() {
    let l = Landscape::start(Options::default()).await;
    let mut jar = Jar::new(&l);
    let page = jar.sign_in(ALICE, ALICE_PASSWORD).await;
    assert!(page.body.contains("id=\"sign-out\""), "{}", page.body);
    let out = jar.post(&format!("/apps/{ENV}/signout")).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert!(!jar.cookies.contains_key("ppvnet_app_session"));
    let logout = url::Url::parse(&out.location).unwrap();
    assert_eq!(logout.path(), format!("/{TENANT}/oauth2/v2.0/logout"));
    let entra = jar.get(&out.location).await;
    assert_eq!(entra.status, StatusCode::FOUND, "{}", entra.body);
    assert_eq!(
        entra.location,
        format!("{}/apps/signed-out?state={ENV}", l.base)
    );
    let signed_out = jar.get(&entra.location).await;
    assert!(
        signed_out.body.contains("You signed out"),
        "{}",
        signed_out.body
    );
    assert!(signed_out.body.contains(&format!("href=\"/apps/{ENV}\"")));
    // Opening the app again needs the password: Entra's session is gone too.
    let open = jar.get(&format!("/apps/{ENV}")).await;
    assert_eq!(open.status, StatusCode::SEE_OTHER);
    let sign_in = jar.get(&open.location).await;
    assert!(sign_in.body.contains("name=\"passwd\""), "{}", sign_in.body);
}
