//! What the dashboard shows, rendered on the server: the page around it, and the view (picture,
//! controls, reachability matrix, latest flows, status line) that the page first embeds and the
//! event stream then replaces. Every name from the landscape, the state or the flow log goes
//! through [`escape`].

use std::fmt::Write as _;

use crate::acceptance::junit::escape;
use crate::fabric::oracle::Oracle;
use crate::picture::{self, Scene};

/// Flow-log records the dashboard lists.
pub const FLOWS_SHOWN: usize = 25;

/// The parts of the page that change, as HTML fragments.
#[derive(Clone, Debug, serde::Serialize)]
pub struct View {
    pub picture: String,
    pub controls: String,
    pub matrix: String,
    pub flows: String,
    pub status: String,
}

/// What a view is drawn from.
pub struct Inputs<'a> {
    pub now: &'a Oracle,
    pub declared: &'a Oracle,
    pub flows: &'a [crate::fabric::flowlog::FlowRecord],
    pub clock_offset_seconds: i64,
    /// The change that caused this view, if one did.
    pub change: Option<&'a str>,
}

pub fn render(i: &Inputs<'_>) -> View {
    let state = i.now.state();
    let mut status = format!("clock offset {:+} s", i.clock_offset_seconds);
    if !state.region_outages.is_empty() {
        let regions: Vec<&str> = state.region_outages.iter().map(String::as_str).collect();
        let _ = write!(status, " · region outage: {}", regions.join(", "));
    }
    for (env, region) in &state.active_regions {
        let _ = write!(status, " · {env} active in {region}");
    }
    if let Some(change) = i.change {
        let _ = write!(status, " · last change: {change}");
    }
    View {
        picture: picture::svg(Scene {
            now: i.now,
            declared: i.declared,
        }),
        controls: controls(i.now),
        matrix: picture::matrix(i.now),
        flows: picture::flows(i.flows),
        status: escape(&status),
    }
}

/// A path segment with everything but unreserved characters percent-encoded (RFC 3986).
fn segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// One control button: the request it sends (to an existing control route), the question the
/// page asks before sending it, and an `action` id for tests.
struct Button<'a> {
    action: String,
    label: String,
    path: String,
    body: serde_json::Value,
    confirm: String,
    class: &'a str,
}

fn button(out: &mut String, b: Button<'_>) {
    let _ = write!(
        out,
        "<button type=\"button\" class=\"{}\" data-action=\"{}\" data-method=\"POST\" data-path=\"{}\" data-body=\"{}\" data-confirm=\"{}\">{}</button> ",
        b.class,
        escape(&b.action),
        escape(&b.path),
        escape(&b.body.to_string()),
        escape(&b.confirm),
        escape(&b.label),
    );
}

/// The control buttons for the current state: region outage or restore, failover of each
/// environment to its other regions, each vNet pair's peering on or off, clock shifts.
pub fn controls(now: &Oracle) -> String {
    let state = now.state();
    let (regions, environments) = picture::regions_and_environments(now);
    let mut out = String::from("<div class=\"group\"><h3>Regions</h3>");
    for r in &regions {
        let down = state.region_outages.contains(r);
        let (verb, label, class) = if down {
            ("restore", format!("restore {r}"), "safe")
        } else {
            ("outage", format!("{r} outage"), "danger")
        };
        button(
            &mut out,
            Button {
                action: format!("{verb}:{r}"),
                label,
                path: format!("/network/regions/{}/outage", segment(r)),
                body: serde_json::json!({"down": !down}),
                confirm: format!("Confirm: {verb} of region {r}?"),
                class,
            },
        );
    }
    out.push_str("</div><div class=\"group\"><h3>Failover</h3>");
    for (env, env_regions) in &environments {
        // Only regions it can move to: not where it runs, not in outage.
        for r in env_regions.iter().filter(|r| {
            state.active_regions.get(env) != Some(*r) && !state.region_outages.contains(*r)
        }) {
            button(
                &mut out,
                Button {
                    action: format!("failover:{env}:{r}"),
                    label: format!("{env} → {r}"),
                    path: format!("/network/environments/{}/active-region", segment(env)),
                    body: serde_json::json!({"region": r}),
                    confirm: format!("Confirm: fail environment {env} over to {r}?"),
                    class: "danger",
                },
            );
        }
    }
    out.push_str("</div><div class=\"group\"><h3>Peerings</h3>");
    peering_buttons(&mut out, now);
    out.push_str("</div><div class=\"group\"><h3>Clock</h3>");
    for (action, label, path, body) in [
        (
            "clock:+3600",
            "+1 h",
            "/clock/shift",
            serde_json::json!({"seconds": 3600}),
        ),
        (
            "clock:-3600",
            "−1 h",
            "/clock/shift",
            serde_json::json!({"seconds": -3600}),
        ),
        (
            "clock:reset",
            "reset",
            "/clock/reset",
            serde_json::json!({}),
        ),
    ] {
        button(
            &mut out,
            Button {
                action: action.into(),
                label: format!("clock {label}"),
                path: path.into(),
                body,
                confirm: format!("Confirm: clock {label}?"),
                class: "safe",
            },
        );
    }
    out.push_str("</div>");
    out
}

/// One button per pair of peered vNets: off when every direction is on, else on.
fn peering_buttons(out: &mut String, now: &Oracle) {
    let mut pairs: Vec<(&str, &str)> = now.peerings().iter().map(picture::vnet_pair).collect();
    pairs.sort();
    pairs.dedup();
    for (a, b) in pairs {
        let on = now
            .peerings()
            .iter()
            .filter(|p| picture::vnet_pair(p) == (a, b))
            .all(|p| p.enabled);
        let (verb, class) = if on {
            ("off", "danger")
        } else {
            ("on", "safe")
        };
        button(
            out,
            Button {
                action: format!("peering-{verb}:{a}:{b}"),
                label: format!("{a} ↔ {b} {verb}"),
                path: format!("/network/peerings/between/{}/{}", segment(a), segment(b)),
                body: serde_json::json!({"enabled": !on}),
                confirm: format!("Confirm: switch the peering {a} ↔ {b} {verb}?"),
                class,
            },
        );
    }
}

/// The dashboard page: the view, the session's CSRF token for the buttons' requests, and the
/// script and style sheet (served by the dashboard itself, so the page needs nothing else).
pub fn page(name: &str, csrf: &str, view: &View) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>ppvnet · {name}</title>\
<meta name=\"csrf-token\" content=\"{csrf}\"><link rel=\"stylesheet\" href=\"/dashboard/app.css\">\
<script src=\"/dashboard/app.js\" defer></script></head>\n<body>\
<header><h1>ppvnet · {name}</h1><p id=\"status\">{status}</p>\
<p><span id=\"connection\">connecting…</span> <span id=\"message\" role=\"status\"></span></p></header>\n\
<main><section><h2>Landscape</h2><div id=\"picture\">{picture}</div></section>\n\
<section><h2>Control</h2><div id=\"controls\">{controls}</div></section>\n\
<section><h2>Reachability now (host × face, TCP 443)</h2>\
<p>✓ connects · ⊘ connects, the service refuses (public access off) · ✗ denied; hover a cell for the route or rule.</p>\
<div id=\"matrix\">{matrix}</div></section>\n\
<section><h2>Latest flows (newest first)</h2><div id=\"flows\">{flows}</div></section></main>\n</body></html>\n",
        name = escape(name),
        csrf = escape(csrf),
        status = view.status,
        picture = view.picture,
        controls = view.controls,
        matrix = view.matrix,
        flows = view.flows,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_buttons_follow_the_state() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/contoso.yaml");
        let mut o = Oracle::new(&crate::scenario::load(&path).expect("contoso loads"));
        let before = controls(&o);
        assert!(before.contains("data-action=\"outage:westus\""));
        assert!(before.contains("data-action=\"failover:prod:eastus\""));
        assert!(before.contains("data-action=\"peering-off:vnet-prod-eastus:vnet-prod-westus\""));
        o.set_region_outage("westus", true).expect("westus");
        o.set_peering("prod-westus-to-eastus", false)
            .expect("a peering");
        let after = controls(&o);
        assert!(after.contains("data-action=\"restore:westus\""));
        assert!(!after.contains("data-action=\"outage:westus\""));
        // prod failed over to eastus; westus is down, so there is nowhere to move it.
        assert!(!after.contains("data-action=\"failover:prod:"));
        assert!(after.contains("data-action=\"peering-on:vnet-prod-eastus:vnet-prod-westus\""));
        assert!(after.contains(
            "data-path=\"/network/regions/westus/outage\" data-body=\"{&quot;down&quot;:false}\""
        ));
    }

    #[test]
    fn names_are_encoded_in_paths_and_escaped_in_attributes() {
        assert_eq!(segment("vnet-west_1.a~"), "vnet-west_1.a~");
        assert_eq!(segment("a/b c<"), "a%2Fb%20c%3C");
        let mut out = String::new();
        button(
            &mut out,
            Button {
                action: "x".into(),
                label: "<b>".into(),
                path: "/p".into(),
                body: serde_json::json!({"k": "\"<"}),
                confirm: "'".into(),
                class: "safe",
            },
        );
        assert!(out.contains(">&lt;b&gt;</button>"));
        assert!(out.contains("data-body=\"{&quot;k&quot;:&quot;\\&quot;&lt;&quot;}\""));
        assert!(out.contains("data-confirm=\"&#39;\""));
    }
}
