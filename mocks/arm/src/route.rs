//! ARM request paths, parsed: ARM matches the fixed segments (`subscriptions`,
//! `resourceGroups`, `providers`) and resource types case-insensitively, so `resourcegroups`
//! (the Azure CLI's spelling) and `resourceGroups` name the same collection.

/// What a request path names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    Tenants,
    Subscriptions,
    Subscription {
        sub: String,
    },
    Groups {
        sub: String,
    },
    Group {
        sub: String,
        group: String,
    },
    /// Generic resources (`/resources`) of the subscription or of one group.
    Resources {
        sub: String,
        group: Option<String>,
    },
    /// A provider collection (`.../providers/Microsoft.KeyVault/vaults`).
    Collection {
        sub: String,
        group: Option<String>,
        kind: String,
    },
    Item {
        sub: String,
        group: String,
        kind: String,
        name: String,
    },
    Children {
        sub: String,
        group: String,
        kind: String,
        name: String,
        segment: String,
    },
    Child {
        sub: String,
        group: String,
        kind: String,
        name: String,
        segment: String,
        child: String,
    },
}

impl Target {
    /// The subscription the request is about, if any.
    pub fn subscription(&self) -> Option<&str> {
        match self {
            Self::Tenants | Self::Subscriptions => None,
            Self::Subscription { sub }
            | Self::Groups { sub }
            | Self::Group { sub, .. }
            | Self::Resources { sub, .. }
            | Self::Collection { sub, .. }
            | Self::Item { sub, .. }
            | Self::Children { sub, .. }
            | Self::Child { sub, .. } => Some(sub),
        }
    }

    /// The provider resource type (`Microsoft.KeyVault/vaults`), `None` for `Microsoft.Resources`.
    pub fn kind(&self) -> Option<&str> {
        match self {
            Self::Collection { kind, .. }
            | Self::Item { kind, .. }
            | Self::Children { kind, .. }
            | Self::Child { kind, .. } => Some(kind),
            _ => None,
        }
    }
}

fn is(segment: &str, word: &str) -> bool {
    segment.eq_ignore_ascii_case(word)
}

/// Parses a request path; `None` for a path ARM does not route.
pub fn parse(path: &str) -> Option<Target> {
    let segments: Vec<String> = path
        .trim_matches('/')
        .split('/')
        .map(|s| {
            url::form_urlencoded::parse(s.replace('+', "%2B").as_bytes())
                .next()
                .map(|(k, _)| k.into_owned())
                .unwrap_or_default()
        })
        .collect();
    let s: Vec<&str> = segments.iter().map(String::as_str).collect();
    match s.as_slice() {
        [t] if is(t, "tenants") => Some(Target::Tenants),
        [t] if is(t, "subscriptions") => Some(Target::Subscriptions),
        [t, sub, rest @ ..] if is(t, "subscriptions") && !sub.is_empty() => {
            below_subscription(sub, rest)
        }
        _ => None,
    }
}

fn below_subscription(sub: &str, rest: &[&str]) -> Option<Target> {
    let sub = sub.to_string();
    match rest {
        [] => Some(Target::Subscription { sub }),
        [g] if is(g, "resourceGroups") => Some(Target::Groups { sub }),
        [r] if is(r, "resources") => Some(Target::Resources { sub, group: None }),
        [p, ns, t] if is(p, "providers") => Some(Target::Collection {
            sub,
            group: None,
            kind: format!("{ns}/{t}"),
        }),
        [g, group, rest @ ..] if is(g, "resourceGroups") && !group.is_empty() => {
            below_group(sub, group.to_string(), rest)
        }
        _ => None,
    }
}

fn below_group(sub: String, group: String, rest: &[&str]) -> Option<Target> {
    match rest {
        [] => Some(Target::Group { sub, group }),
        [r] if is(r, "resources") => Some(Target::Resources {
            sub,
            group: Some(group),
        }),
        [p, ns, t] if is(p, "providers") => Some(Target::Collection {
            sub,
            group: Some(group),
            kind: format!("{ns}/{t}"),
        }),
        [p, ns, t, name] if is(p, "providers") => Some(Target::Item {
            sub,
            group,
            kind: format!("{ns}/{t}"),
            name: name.to_string(),
        }),
        [p, ns, t, name, segment] if is(p, "providers") => Some(Target::Children {
            sub,
            group,
            kind: format!("{ns}/{t}"),
            name: name.to_string(),
            segment: segment.to_string(),
        }),
        [p, ns, t, name, segment, child] if is(p, "providers") => Some(Target::Child {
            sub,
            group,
            kind: format!("{ns}/{t}"),
            name: name.to_string(),
            segment: segment.to_string(),
            child: child.to_string(),
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_parse_case_insensitively() {
        assert_eq!(parse("/subscriptions"), Some(Target::Subscriptions));
        assert_eq!(parse("/tenants"), Some(Target::Tenants));
        assert_eq!(
            parse("/subscriptions/s/resourcegroups/rg"),
            Some(Target::Group {
                sub: "s".into(),
                group: "rg".into()
            })
        );
        assert_eq!(
            parse(
                "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v/subnets/a"
            ),
            Some(Target::Child {
                sub: "s".into(),
                group: "rg".into(),
                kind: "Microsoft.Network/virtualNetworks".into(),
                name: "v".into(),
                segment: "subnets".into(),
                child: "a".into()
            })
        );
        assert_eq!(
            parse("/subscriptions/s/providers/Microsoft.KeyVault/vaults"),
            Some(Target::Collection {
                sub: "s".into(),
                group: None,
                kind: "Microsoft.KeyVault/vaults".into()
            })
        );
        assert_eq!(parse("/"), None);
        assert_eq!(parse("/subscriptions/s/unknown"), None);
    }
}
