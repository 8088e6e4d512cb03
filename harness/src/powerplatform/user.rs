//! A Power Apps user without a browser: signs in with a password (ROPC as the Power Apps
//! client, for the connector runtime's audience), consents to a connector's connection on the
//! mock Entra's real sign-in page, and calls operations through `/invoke` with the headers
//! Power Fx sends (microsoft/Power-Fx:
//! src/libraries/Microsoft.PowerFx.Connectors/PowerPlatformConnectorClient.cs). The CLI's `ppvnet
//! pp` commands and the acceptance steps both use it, so scenarios stay headless while exercising
//! the same pages a browser would.

use anyhow::Context;
use reqwest::header::LOCATION;

use crate::services::entra::POWER_APPS_CLIENT_ID;
use ppvnet_powerplatform::runtime::config::APIHUB_AUDIENCE;

/// Where the user's requests go: Entra's authority and the Power Platform service, and a client
/// that sends from the user's host (the internet).
#[derive(Clone)]
pub struct UserAgent {
    pub http: reqwest::Client,
    /// `https://…/{tenant}` without a trailing slash.
    pub authority: String,
    /// The Power Platform service's URL without a trailing slash.
    pub power_platform: String,
}

/// Entra refused a sign-in or consent: its error code and text.
#[derive(Debug, thiserror::Error)]
#[error("{code}: {description}")]
pub struct SignInError {
    pub code: String,
    pub description: String,
}

impl UserAgent {
    /// A user token for the connector runtime (`https://apihub.azure.com`), as Power Apps gets
    /// one for the signed-in user (ROPC stands in for the browser sign-in here).
    pub async fn user_token(&self, upn: &str, password: &str) -> anyhow::Result<String> {
        let scope = format!("{APIHUB_AUDIENCE}/.default");
        self.password_grant(POWER_APPS_CLIENT_ID, None, upn, password, &scope)
            .await
    }

    /// A user's token by the password grant (ROPC) for `scope`, asked by `client_id` (with its
    /// secret when it is a confidential client); Entra's refusal as a [`SignInError`].
    pub async fn password_grant(
        &self,
        client_id: &str,
        client_secret: Option<&str>,
        upn: &str,
        password: &str,
        scope: &str,
    ) -> anyhow::Result<String> {
        let mut form = vec![
            ("grant_type", "password"),
            ("client_id", client_id),
            ("scope", scope),
            ("username", upn),
            ("password", password),
        ];
        form.extend(client_secret.map(|s| ("client_secret", s)));
        let r = self
            .http
            .post(format!("{}/oauth2/v2.0/token", self.authority))
            .form(&form)
            .send()
            .await
            .context("Entra's token endpoint")?;
        let status = r.status();
        let body: serde_json::Value = r.json().await.context("Entra's token answer")?;
        match body["access_token"].as_str() {
            Some(t) if status.is_success() => Ok(t.to_string()),
            _ => Err(SignInError {
                code: body["error_codes"][0]
                    .as_u64()
                    .map(|c| format!("AADSTS{c}"))
                    .unwrap_or_else(|| status.to_string()),
                description: body["error_description"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            }
            .into()),
        }
    }

    /// Follows a consent link through Entra's sign-in page with a password, as a person in a
    /// browser would, and returns the URL Entra redirects to (the consent host's callback with
    /// `code` and `state`). An Entra error page (AADSTS50011 for a redirect URI that is not a
    /// reply URL of the app, a wrong password, a disabled user) becomes a [`SignInError`].
    pub async fn sign_in(
        &self,
        consent_link: &str,
        upn: &str,
        password: &str,
    ) -> anyhow::Result<String> {
        // Fabric clients never follow redirects (`fabric::client::build`): each hop is read here.
        let page = self
            .http
            .get(consent_link)
            .send()
            .await
            .context("the consent link")?;
        let page = redirect_or_page(page).await?;
        let html = match page {
            Answer::Redirect(to) => return Ok(to),
            Answer::Page(html) => html,
        };
        let action = form_action(&html).context("Entra's sign-in page has no form")?;
        let mut fields = hidden_inputs(&html);
        fields.push(("login".into(), upn.to_string()));
        fields.push(("passwd".into(), password.to_string()));
        let origin = origin_of(consent_link)?;
        let r = self
            .http
            .post(format!("{origin}{action}"))
            .form(&fields)
            .send()
            .await
            .context("Entra's sign-in form")?;
        match redirect_or_page(r).await? {
            Answer::Redirect(to) => Ok(to),
            Answer::Page(html) => Err(page_error(&html).into()),
        }
    }
}

/// The answer of one `/invoke` call.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Invoked {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// JSON when the body is JSON, else the text.
    pub body: serde_json::Value,
}

impl Invoked {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One call through the connector runtime.
#[derive(Clone, Debug)]
pub struct Call<'a> {
    pub environment_id: &'a str,
    pub connector: &'a str,
    pub connection: &'a str,
    pub method: &'a str,
    /// Path and query below the connection (`/cases/search?q=outage`).
    pub path: &'a str,
    pub body: Option<serde_json::Value>,
    /// The correlation id Power Fx sends (`x-ms-client-request-id` and `x-ms-correlation-id`).
    pub correlation_id: String,
}

impl UserAgent {
    /// Creates the user's connection to a connector in an environment: asks the service for a
    /// consent link, signs in on Entra's page, and hands the code back to the consent host.
    /// Returns the connection's id once the service reports it connected.
    pub async fn connect(
        &self,
        token: &str,
        environment: &str,
        connector: &str,
        upn: &str,
        password: &str,
    ) -> anyhow::Result<String> {
        let r = self
            .http
            .post(format!("{}/connections", self.power_platform))
            .bearer_auth(token)
            .json(&serde_json::json!({"environment": environment, "connector": connector}))
            .send()
            .await
            .context("the Power Platform service")?;
        let status = r.status();
        let created: serde_json::Value = r.json().await.context("the service's answer")?;
        anyhow::ensure!(
            status.is_success(),
            "creating the connection: the service answered {status}: {}",
            created["error"]["message"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| created.to_string())
        );
        let id = created["id"]
            .as_str()
            .context("a connection without id")?
            .to_string();
        let link = created["consentLink"]
            .as_str()
            .context("the connection needs no consent")?;
        let callback = self.sign_in(link, upn, password).await?;
        // The consent host (`global.consent.azure-apim.net`) is this service: the same path and
        // query, sent to its address.
        let u = url::Url::parse(&callback).with_context(|| format!("{callback} is not a URL"))?;
        let mut back = format!("{}{}", self.power_platform, u.path());
        if let Some(q) = u.query() {
            back.push('?');
            back.push_str(q);
        }
        let r = self
            .http
            .get(back)
            .send()
            .await
            .context("the consent callback")?;
        let status = r.status();
        let text = r.text().await.unwrap_or_default();
        anyhow::ensure!(
            status.is_success(),
            "the consent callback answered {status}: {text}"
        );
        Ok(id)
    }

    /// `POST /invoke` with the headers Power Fx sends.
    pub async fn invoke(&self, token: &str, call: &Call<'_>) -> anyhow::Result<Invoked> {
        let url = format!("/apim/{}/{}{}", call.connector, call.connection, call.path);
        let mut req = self
            .http
            .post(format!("{}/invoke", self.power_platform))
            .bearer_auth(token)
            .header("x-ms-request-url", url)
            .header("x-ms-request-method", call.method)
            .header(
                "x-ms-client-environment-id",
                format!(
                    "/providers/Microsoft.PowerApps/environments/{}",
                    call.environment_id
                ),
            )
            .header("x-ms-client-session-id", uuid::Uuid::new_v4().to_string())
            .header("x-ms-user-agent", "PowerApps/3.25 (ppvnet)")
            .header("x-ms-enable-selects", "true")
            .header("x-ms-client-request-id", &call.correlation_id)
            .header("x-ms-correlation-id", &call.correlation_id);
        if let Some(b) = &call.body {
            req = req.json(b);
        }
        let r = req.send().await.context("the connector runtime")?;
        let status = r.status().as_u16();
        let headers = r
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let bytes = r.bytes().await?;
        let body = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
            serde_json::Value::String(String::from_utf8_lossy(&bytes).into_owned())
        });
        Ok(Invoked {
            status,
            headers,
            body,
        })
    }
}

enum Answer {
    Redirect(String),
    Page(String),
}

async fn redirect_or_page(r: reqwest::Response) -> anyhow::Result<Answer> {
    if r.status().is_redirection() {
        let to = r
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .context("a redirect without Location")?;
        return Ok(Answer::Redirect(to.to_string()));
    }
    let status = r.status();
    let html = r.text().await?;
    if !status.is_success() || html.contains("id=\"error\"") && !html.contains("<form") {
        return Err(page_error(&html).into());
    }
    Ok(Answer::Page(html))
}

/// The error Entra's page shows (`data-code` and the text), or the page's first 200 bytes.
fn page_error(html: &str) -> SignInError {
    let code = attribute(html, "data-code")
        .map(|c| format!("AADSTS{c}"))
        .unwrap_or_else(|| "unknown".into());
    let description = html
        .split_once("id=\"error\"")
        .and_then(|(_, rest)| rest.split_once('>'))
        .and_then(|(_, rest)| rest.split_once('<'))
        .map(|(text, _)| unescape(text))
        .unwrap_or_else(|| html.chars().take(200).collect());
    SignInError { code, description }
}

fn attribute(html: &str, name: &str) -> Option<String> {
    let start = html.find(&format!("{name}=\""))? + name.len() + 2;
    let end = html[start..].find('"')? + start;
    Some(unescape(&html[start..end]))
}

fn form_action(html: &str) -> Option<String> {
    let form = &html[html.find("<form")?..];
    attribute(form, "action")
}

/// `<input type="hidden" name=".." value="..">` pairs, in order.
fn hidden_inputs(html: &str) -> Vec<(String, String)> {
    html.split("<input")
        .skip(1)
        .filter(|tag| tag.contains("type=\"hidden\""))
        .filter_map(|tag| {
            let tag = &tag[..tag.find('>').unwrap_or(tag.len())];
            Some((
                attribute(tag, "name")?,
                attribute(tag, "value").unwrap_or_default(),
            ))
        })
        .collect()
}

fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

fn origin_of(url: &str) -> anyhow::Result<String> {
    let u = url::Url::parse(url).with_context(|| format!("{url} is not a URL"))?;
    Ok(u.origin().ascii_serialization())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_form_and_the_error_of_entras_pages() {
        let html = "<form method=\"POST\" action=\"/t/oauth2/v2.0/authorize\"><input type=\"hidden\" name=\"client_id\" value=\"a&amp;b\"/><input type=\"email\" name=\"login\" value=\"\"/></form>";
        assert_eq!(
            form_action(html).as_deref(),
            Some("/t/oauth2/v2.0/authorize")
        );
        assert_eq!(
            hidden_inputs(html),
            vec![("client_id".to_string(), "a&b".to_string())]
        );
        let err = page_error(
            "<p id=\"error\" data-error=\"invalid_request\" data-code=\"50011\">AADSTS50011: The redirect URI &#39;x&#39; does not match.</p>",
        );
        assert_eq!(err.code, "AADSTS50011");
        assert_eq!(
            err.description,
            "AADSTS50011: The redirect URI 'x' does not match."
        );
    }
}
