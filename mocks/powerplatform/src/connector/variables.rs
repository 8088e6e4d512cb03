//! Which environment variables a connector's settings refer to: the maker portal resolves them
//! when the connector is saved, so each must exist in every environment it is saved in.

use super::{ConnectionAuth, Connector};

impl Connector {
    /// Schema names of every `@environmentVariables("x")` in the host, base path and security
    /// settings, in order of first use
    /// (learn.microsoft.com/connectors/custom-connectors/environment-variables: Host, Base URL,
    /// Client ID, Client Secret, Login URL and other Security fields).
    pub fn referenced_variables(&self) -> Vec<String> {
        let mut settings = vec![self.host.as_str(), self.base_path.as_str()];
        if let ConnectionAuth::OAuth(o) = &self.auth {
            settings.push(&o.client_id);
            settings.extend(o.client_secret.as_deref());
            settings.extend(o.login_uri.as_deref());
            settings.extend(o.resource_uri.as_deref());
            settings.extend(o.redirect_url.as_deref());
        }
        let mut out: Vec<String> = Vec::new();
        for s in settings {
            for name in variable_names(s) {
                if !out.contains(&name) {
                    out.push(name);
                }
            }
        }
        out
    }
}

/// The names inside `@environmentVariables("x")` or `@environmentVariables('x')` in `text`.
pub(crate) fn variable_names(text: &str) -> Vec<String> {
    const MARK: &str = "@environmentVariables(";
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find(MARK) {
        rest = &rest[at + MARK.len()..];
        let Some(quote) = rest.chars().next().filter(|c| *c == '"' || *c == '\'') else {
            continue;
        };
        let inner = &rest[1..];
        if let Some(end) = inner.find(quote) {
            out.push(inner[..end].to_string());
            rest = &inner[end..];
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_names_in_either_quote_style() {
        assert_eq!(
            variable_names(
                "https://@environmentVariables(\"cr_Host\")/x@environmentVariables('cr_B')"
            ),
            vec!["cr_Host".to_string(), "cr_B".to_string()]
        );
        assert!(variable_names("@environmentVariables(cr_x)").is_empty());
        assert!(variable_names("plain").is_empty());
    }
}
