//! The app's pages: plain HTML with one stylesheet and one small script, both served by the app
//! (the machine is offline: no external assets). Every value from outside (case fields, user
//! names, the runtime's messages, the search text) goes through [`escape`].

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

/// Scripts and styles only from the app itself; no framing (clickjacking).
const CSP: &str =
    "default-src 'self'; img-src 'self' data:; base-uri 'none'; frame-ancestors 'none'";

/// The stylesheet (`/apps/assets/app.css`).
pub const CSS: &str = "\
body{font-family:'Segoe UI',system-ui,sans-serif;margin:0;background:#f3f2f1;color:#201f1e}\
header{display:flex;align-items:center;gap:1em;background:#742774;color:#fff;padding:.6em 1.2em}\
header h1{font-size:1.1em;margin:0;flex:1}header form{margin:0}\
header button{background:transparent;color:#fff;border:1px solid #fff;border-radius:2px;padding:.3em .8em;cursor:pointer}\
main{padding:1.2em;max-width:72em}\
.search{display:flex;gap:.5em;margin-bottom:1em}.search input{flex:1;padding:.45em;border:1px solid #8a8886;border-radius:2px}\
button.primary{background:#742774;color:#fff;border:0;border-radius:2px;padding:.45em 1.2em;cursor:pointer}\
button.primary:disabled{opacity:.6}\
table{border-collapse:collapse;width:100%;background:#fff}th,td{text-align:left;padding:.4em .6em;border-bottom:1px solid #edebe9}\
th{background:#faf9f8;font-weight:600}\
.banner{background:#fde7e9;border-left:4px solid #a4262c;padding:.7em 1em;margin-bottom:1em}\
.banner p{margin:.2em 0}.banner .detail{color:#605e5c;font-size:.9em}\
.card{background:#fff;padding:1.2em;border-radius:2px;box-shadow:0 1px 3px rgba(0,0,0,.15);max-width:40em}\
footer{color:#605e5c;font-size:.85em;margin-top:1em}\n";

/// The script (`/apps/assets/app.js`): while a search runs, its button says so and cannot be
/// pressed twice; the search box has the focus.
pub const JS: &str = "\
document.addEventListener('DOMContentLoaded',function(){\
var f=document.getElementById('search-form');if(!f)return;\
var q=document.getElementById('q');if(q)q.focus();\
f.addEventListener('submit',function(){var b=document.getElementById('search-button');\
if(b){b.disabled=true;b.textContent='Searching\\u2026';}});});\n";

pub use ppvnet_common::web::escape_html as escape;

/// Who is signed in, for the header bar.
pub struct Header<'a> {
    pub environment: &'a str,
    pub user: Option<&'a str>,
}

/// A whole page: `body` is already HTML.
pub fn render(status: StatusCode, title: &str, header: &Header<'_>, body: &str) -> Response {
    let user = match header.user {
        Some(name) => format!(
            "<span id=\"user\">{}</span><form method=\"post\" action=\"/apps/{}/signout\">\
             <button id=\"sign-out\" type=\"submit\">Sign out</button></form>",
            escape(name),
            escape(header.environment)
        ),
        None => String::new(),
    };
    let html = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title><link rel=\"stylesheet\" href=\"/apps/assets/app.css\">\
         <script src=\"/apps/assets/app.js\"></script></head><body>\
         <header><h1>Contoso case search &middot; {env}</h1>{user}</header>\
         <main>{body}</main></body></html>\n",
        title = escape(title),
        env = escape(header.environment),
    );
    with_headers((status, Html(html)).into_response())
}

/// The app's security headers on any answer.
pub fn with_headers(response: Response) -> Response {
    ppvnet_common::web::hardened(response, CSP)
}

/// A page saying what went wrong, with a way back.
pub fn error(
    status: StatusCode,
    header: &Header<'_>,
    heading: &str,
    message: &str,
    back: Option<&str>,
) -> Response {
    let back = back
        .map(|href| {
            format!(
                "<p><a id=\"back\" href=\"{}\">Open the app again</a></p>",
                escape(href)
            )
        })
        .unwrap_or_default();
    let body = format!(
        "<div class=\"card\"><h2>{}</h2><p id=\"message\">{}</p>{back}</div>",
        escape(heading),
        escape(message)
    );
    render(status, heading, header, &body)
}

/// One case as the results table shows it.
pub struct CaseRow {
    pub id: String,
    pub title: String,
    pub status: String,
    pub priority: String,
    pub customer: String,
    pub owner: String,
    pub team: String,
}

/// The search form, with `q` as typed.
pub fn search_form(environment: &str, q: &str) -> String {
    format!(
        "<form id=\"search-form\" class=\"search\" method=\"get\" action=\"/apps/{}\">\
         <input id=\"q\" name=\"q\" type=\"search\" maxlength=\"200\" placeholder=\"Search cases\" value=\"{}\">\
         <button id=\"search-button\" class=\"primary\" type=\"submit\">Search</button></form>",
        escape(environment),
        escape(q)
    )
}

/// The results table (or a line saying there are none), and where the call left from.
pub fn results(cases: &[CaseRow], egress_host: Option<&str>) -> String {
    let mut html = if cases.is_empty() {
        "<p id=\"no-results\">No cases match.</p>".to_string()
    } else {
        let mut rows = String::new();
        for c in cases {
            rows.push_str(&format!(
                "<tr class=\"case\" data-owner=\"{}\" data-team=\"{}\"><td>{}</td><td class=\"title\">{}</td>\
                 <td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&c.owner),
                escape(&c.team),
                escape(&c.id),
                escape(&c.title),
                escape(&c.status),
                escape(&c.priority),
                escape(&c.customer)
            ));
        }
        let count = match cases.len() {
            1 => "1 case".to_string(),
            n => format!("{n} cases"),
        };
        format!(
            "<p id=\"count\">{count}</p><table id=\"results\"><thead><tr><th>Case</th><th>Title</th>\
             <th>Status</th><th>Priority</th><th>Customer</th></tr></thead><tbody>{rows}</tbody></table>"
        )
    };
    if let Some(host) = egress_host {
        html.push_str(&format!(
            "<footer>Connector calls leave from <span id=\"egress\">{}</span>.</footer>",
            escape(host)
        ));
    }
    html
}

/// A failed connector call as Power Apps shows it: a red banner naming the operation with the
/// runtime's message, and Power Fx's line for the HTTP status below it (UNVERIFIED layout: the
/// "{Connector}.{Operation} failed: {message}" notification is what community reports show;
/// the status line is Power Fx's text, microsoft/Power-Fx: `…/Connectors/…`, reference §A).
pub fn connector_error(
    operation: &str,
    status: StatusCode,
    message: &str,
    request_id: &str,
) -> String {
    format!(
        "<div id=\"error-banner\" class=\"banner\" role=\"alert\"><p><strong>{}</strong> failed: \
         <span id=\"error-message\">{}</span></p><p class=\"detail\" id=\"error-status\">The server \
         returned an HTTP error with code {} ({}).</p><p class=\"detail\">clientRequestId: {}</p></div>",
        escape(operation),
        escape(message),
        status.as_u16(),
        escape(status.canonical_reason().unwrap_or("Unknown")),
        escape(request_id)
    )
}

/// The user has no usable connection yet: a button creates one (consent on Entra's page).
pub fn connect(environment: &str, connector_title: &str, failure: Option<&str>) -> String {
    let failure = failure
        .map(|f| {
            format!(
                "<div class=\"banner\" role=\"alert\"><p id=\"connection-error\">Your connection \
                 failed: {}</p></div>",
                escape(f)
            )
        })
        .unwrap_or_default();
    format!(
        "{failure}<div class=\"card\"><h2>Connect to {title}</h2><p>This app uses \
         {title}. Allow it to use your account to search cases.</p>\
         <form method=\"post\" action=\"/apps/{env}/connect\"><button id=\"connect\" \
         class=\"primary\" type=\"submit\">Allow</button></form></div>",
        title = escape(connector_title),
        env = escape(environment)
    )
}
