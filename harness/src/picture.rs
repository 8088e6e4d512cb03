//! A landscape drawn as SVG, its reachability matrix and its latest flow-log records: the one
//! drawing code behind the HTML sign-off report (the landscape as declared), the live dashboard
//! (the fabric's current state) and `ppvnet draw` (a standalone SVG file).
//!
//! What is drawn comes from two oracles of the same landscape: `now` (its current state: peerings
//! switched off, regions in outage, each environment's active region, NSG rules) and `declared`
//! (the landscape as its file declares it), so rules added at run time can be told apart. The
//! report and `ppvnet draw` pass the same oracle twice.
//!
//! Layout is deterministic: vNets two per row, peered vNets next to each other (groups of
//! peered vNets in name order), each a box of its subnets with the hosts and private endpoints
//! inside; internet-side hosts and the services' public faces in a box of their own above;
//! peerings as labelled lines between vNet boxes, drawn under them (dashed red when switched
//! off, dashed grey when they do not allow traffic). Elements carry `data-*` attributes naming
//! what they show and its state, for tests and for styling.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use crate::acceptance::junit::escape;
use crate::fabric::flowlog::{FlowRecord, FlowState};
use crate::fabric::oracle::{Decision, HostInfo, NetworkState, Oracle, PeeringInfo, VnetInfo};
use crate::scenario::model::{Access, Direction, NsgRule};

const COLS: usize = 2;
const BOX_W: usize = 460;
const GAP: usize = 40;
/// Between the columns: wide enough for the labels of the peerings drawn across it.
const COL_GAP: usize = 190;
const LINE: usize = 18;

/// The landscape to draw: its current state and its state as declared.
#[derive(Clone, Copy)]
pub struct Scene<'a> {
    pub now: &'a Oracle,
    pub declared: &'a Oracle,
}

impl<'a> Scene<'a> {
    /// The landscape as declared (the report, `ppvnet draw`).
    pub fn declared(oracle: &'a Oracle) -> Self {
        Self {
            now: oracle,
            declared: oracle,
        }
    }
}

/// The current state read once per drawing, and what changed against the declaration.
struct Live {
    state: NetworkState,
    /// NSG → rules present now that the landscape file does not declare.
    added: std::collections::BTreeMap<String, Vec<NsgRule>>,
}

impl Live {
    fn of(scene: Scene<'_>) -> Self {
        let state = scene.now.state();
        let declared = scene.declared.state();
        let added = state
            .nsgs
            .iter()
            .map(|(nsg, rules)| {
                let before = declared.nsgs.get(nsg);
                let new: Vec<NsgRule> = rules
                    .iter()
                    .filter(|r| before.is_none_or(|b| !b.iter().any(|d| d.name == r.name)))
                    .cloned()
                    .collect();
                (nsg.clone(), new)
            })
            .filter(|(_, new)| !new.is_empty())
            .collect();
        Self { state, added }
    }

    fn added_rules(&self, nsg: Option<&str>) -> &[NsgRule] {
        nsg.and_then(|n| self.added.get(n))
            .map(Vec::as_slice)
            .unwrap_or_default()
    }
}

/// One subnet box: its name, its hosts and the NSG rules added at run time.
struct SubnetBox<'a> {
    name: String,
    hosts: Vec<&'a HostInfo>,
    added: &'a [NsgRule],
}

impl SubnetBox<'_> {
    fn height(&self) -> usize {
        LINE + 4 + (self.hosts.len().max(1) + self.added.len()) * LINE
    }
}

/// A vNet box to draw: name, its subnets, and its place (x, y, height).
struct VnetBox<'a> {
    name: &'a str,
    info: &'a VnetInfo,
    subnets: Vec<SubnetBox<'a>>,
    x: usize,
    y: usize,
    h: usize,
}

fn host_line(svg: &mut String, x: usize, y: usize, h: &HostInfo, live: &Live) {
    let (color, what, state) = match (&h.private_endpoint_of, &h.power_platform) {
        (Some(service), _) => (
            "#7b3fa0",
            format!("private endpoint of {service}"),
            "endpoint",
        ),
        (_, Some((env, region))) => {
            let state = if live.state.region_outages.contains(region) {
                "down"
            } else if live.state.active_regions.get(env) == Some(region) {
                "active"
            } else {
                "standby"
            };
            let color = match state {
                "down" => "#c62828",
                "active" => "#1f6fb2",
                _ => "#8aa4bf",
            };
            (
                color,
                format!("Power Platform {env} in {region} · {state}"),
                state,
            )
        }
        _ => ("#2e7d32", "host".to_string(), "host"),
    };
    let _ = writeln!(
        svg,
        "<g data-host=\"{name}\" data-state=\"{state}\"><circle cx=\"{}\" cy=\"{}\" r=\"5\" fill=\"{color}\"/><text x=\"{}\" y=\"{}\" font-size=\"12\">{name} {} <tspan fill=\"#666\">({})</tspan></text></g>",
        x + 10,
        y - 4,
        x + 20,
        y,
        h.address,
        escape(&what),
        name = escape(&h.name),
    );
}

/// vNets grouped by peering (each group in name order, groups by their first name), so peered
/// vNets sit side by side.
fn peered_order(oracle: &Oracle) -> Vec<(&String, &VnetInfo)> {
    let mut out: Vec<(&String, &VnetInfo)> = Vec::new();
    for start in oracle.vnets().keys() {
        if out.iter().any(|(n, _)| *n == start) {
            continue;
        }
        let mut group = vec![start.clone()];
        let mut i = 0;
        while i < group.len() {
            for p in oracle.peerings() {
                for (a, b) in [(&p.from, &p.to), (&p.to, &p.from)] {
                    if *a == group[i] && !group.contains(b) && oracle.vnets().contains_key(b) {
                        group.push(b.clone());
                    }
                }
            }
            i += 1;
        }
        group.sort();
        for name in group {
            if let Some((n, v)) = oracle.vnets().get_key_value(&name) {
                out.push((n, v));
            }
        }
    }
    out
}

/// The vNet boxes in rows of [`COLS`], each row as tall as its tallest box, starting at `top`;
/// returns them with the picture's height.
fn layout<'a>(oracle: &'a Oracle, live: &'a Live, top: usize) -> (Vec<VnetBox<'a>>, usize) {
    let mut boxes: Vec<VnetBox<'a>> = peered_order(oracle)
        .into_iter()
        .map(|(name, info)| {
            let subnets: Vec<SubnetBox<'a>> = info
                .subnets
                .iter()
                .map(|(s, sn)| SubnetBox {
                    name: s.clone(),
                    hosts: oracle
                        .hosts()
                        .values()
                        .filter(|h| {
                            h.subnet
                                .as_ref()
                                .is_some_and(|r| r.vnet == *name && r.subnet == *s)
                        })
                        .collect(),
                    added: live.added_rules(sn.nsg.as_deref()),
                })
                .collect();
            let h = 2 * LINE + 12 + subnets.iter().map(|s| s.height() + 8).sum::<usize>();
            VnetBox {
                name,
                info,
                subnets,
                x: 0,
                y: 0,
                h,
            }
        })
        .collect();
    let mut y = top;
    for row in boxes.chunks_mut(COLS) {
        let tallest = row.iter().map(|b| b.h).max().unwrap_or(0);
        for (i, b) in row.iter_mut().enumerate() {
            b.x = GAP + i * (BOX_W + COL_GAP);
            b.y = y;
        }
        y += tallest + GAP;
    }
    (boxes, y)
}

/// Peerings as lines between box centres, drawn first so the boxes cover their ends; returns
/// their labels, drawn last (over the boxes, on a white halo). The two directions of a peering
/// share a line; their labels are stacked.
fn draw_peerings(svg: &mut String, oracle: &Oracle, boxes: &[VnetBox<'_>]) -> String {
    let place = |name: &str| boxes.iter().find(|b| b.name == name);
    let mut drawn: Vec<(&str, &str)> = Vec::new();
    let mut labels = String::new();
    for p in oracle.peerings() {
        let (Some(a), Some(b)) = (place(&p.from), place(&p.to)) else {
            continue;
        };
        let pair = vnet_pair(p);
        let stacked = drawn.iter().filter(|d| **d == pair).count();
        drawn.push(pair);
        let (state, color, dash) = match (p.allow_virtual_network_access, p.enabled) {
            (true, true) => ("on", "#e07b00", ""),
            (true, false) => ("off", "#c62828", " stroke-dasharray=\"6 4\""),
            (false, _) => ("no-access", "#888", " stroke-dasharray=\"2 4\""),
        };
        let (x1, y1, x2, y2) = (
            a.x + BOX_W / 2,
            a.y + a.h / 2,
            b.x + BOX_W / 2,
            b.y + b.h / 2,
        );
        let name = escape(&p.name);
        let _ = writeln!(
            svg,
            "<line data-peering=\"{name}\" data-state=\"{state}\" x1=\"{x1}\" y1=\"{y1}\" x2=\"{x2}\" y2=\"{y2}\" stroke=\"{color}\" stroke-width=\"3\"{dash}><title>peering {name}: {state}</title></line>",
        );
        let _ = writeln!(
            labels,
            "<text data-peering-label=\"{name}\" x=\"{}\" y=\"{}\" font-size=\"11\" fill=\"{color}\" stroke=\"#fff\" stroke-width=\"3\" paint-order=\"stroke\" text-anchor=\"middle\">{name} ({state})</text>",
            (x1 + x2) / 2,
            (y1 + y2) / 2 - 6 + stacked * 14,
        );
    }
    labels
}

/// The internet box: hosts outside every vNet and each service's public face.
fn draw_internet(svg: &mut String, oracle: &Oracle, live: &Live, width: usize, height: usize) {
    let _ = writeln!(
        svg,
        "<rect x=\"{GAP}\" y=\"{GAP}\" width=\"{}\" height=\"{height}\" rx=\"8\" fill=\"#f4f8f4\" stroke=\"#2e7d32\"/><text x=\"{}\" y=\"{}\" font-weight=\"bold\">internet</text>",
        width - 2 * GAP,
        GAP + 10,
        GAP + LINE + 4
    );
    let mut y = GAP + 2 * LINE + 8;
    for h in oracle.hosts().values().filter(|h| h.subnet.is_none()) {
        host_line(svg, GAP + 10, y, h, live);
        y += LINE;
    }
    for s in oracle.services().values() {
        let access = if s.public_network_access {
            "public network access on"
        } else {
            "public network access off"
        };
        let kind = serde_json::to_value(s.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let _ = writeln!(
            svg,
            "<text data-service=\"{name}\" x=\"{}\" y=\"{y}\" font-size=\"12\">service {name} <tspan fill=\"#666\">({}, public face {} · {access})</tspan></text>",
            GAP + 30,
            escape(&kind),
            s.public_address,
            name = escape(&s.name),
        );
        y += LINE;
    }
}

/// The header line of a subnet: name, prefix, delegation, NSG with its rule count.
fn subnet_header(info: &crate::fabric::oracle::SubnetInfo, live: &Live, name: &str) -> String {
    let mut text = format!("{} {}", escape(name), info.prefix);
    if info.delegated {
        text.push_str(" · <tspan fill=\"#1f6fb2\">delegated</tspan>");
    }
    if let Some(nsg) = &info.nsg {
        let rules = live.state.nsgs.get(nsg).map_or(0, Vec::len);
        let _ = write!(text, " · NSG {} ({rules} rules)", escape(nsg));
    }
    text
}

/// One NSG rule added at run time, as one line of text.
fn rule_line(rule: &NsgRule) -> String {
    let access = match rule.access {
        Access::Allow => "Allow",
        Access::Deny => "Deny",
    };
    let direction = match rule.direction {
        Direction::Inbound => "Inbound",
        Direction::Outbound => "Outbound",
    };
    format!(
        "+ rule {} {} {access} {direction} {} {} → {} ports {} (added at run time)",
        rule.name,
        rule.priority,
        rule.protocol,
        rule.source_address_prefixes.join(","),
        rule.destination_address_prefixes.join(","),
        rule.destination_port_ranges.join(","),
    )
}

/// One vNet: its name, region (and whether it is in outage) and address space, then each
/// subnet with its hosts and the NSG rules added at run time.
fn draw_vnet(svg: &mut String, b: &VnetBox<'_>, live: &Live) {
    let v = b.info;
    let outage = live.state.region_outages.contains(&v.region);
    let (fill, stroke, region) = if outage {
        (
            "#fdecea",
            "#c62828",
            format!("{} (region outage)", v.region),
        )
    } else {
        ("#f3f7fc", "#1f6fb2", v.region.clone())
    };
    let space: Vec<String> = v.address_space.iter().map(|n| n.to_string()).collect();
    let _ = writeln!(
        svg,
        "<g data-vnet=\"{name}\" data-region=\"{}\" data-outage=\"{outage}\"><rect x=\"{}\" y=\"{}\" width=\"{BOX_W}\" height=\"{}\" rx=\"8\" fill=\"{fill}\" stroke=\"{stroke}\" stroke-width=\"{}\"/><text x=\"{}\" y=\"{}\" font-weight=\"bold\">{name}</text><text x=\"{}\" y=\"{}\" font-size=\"12\" fill=\"{stroke}\">{} · {}</text></g>",
        escape(&v.region),
        b.x,
        b.y,
        b.h,
        if outage { 3 } else { 1 },
        b.x + 10,
        b.y + LINE,
        b.x + 10,
        b.y + 2 * LINE,
        escape(&region),
        escape(&space.join(", ")),
        name = escape(b.name),
    );
    let mut sy = b.y + 2 * LINE + 12;
    for subnet in &b.subnets {
        let Some(info) = v.subnets.get(&subnet.name) else {
            continue;
        };
        let sh = subnet.height();
        let _ = writeln!(
            svg,
            "<g data-subnet=\"{}\" data-delegated=\"{}\"><rect x=\"{}\" y=\"{sy}\" width=\"{}\" height=\"{sh}\" fill=\"#fff\" stroke=\"#9bb7d4\"/><text x=\"{}\" y=\"{}\" font-size=\"12\" font-weight=\"bold\">{}</text></g>",
            escape(&subnet.name),
            info.delegated,
            b.x + 8,
            BOX_W - 16,
            b.x + 14,
            sy + 14,
            subnet_header(info, live, &subnet.name),
        );
        let mut hy = sy + LINE + 14;
        for host in &subnet.hosts {
            host_line(svg, b.x + 14, hy, host, live);
            hy += LINE;
        }
        for rule in subnet.added {
            let _ = writeln!(
                svg,
                "<text data-rule=\"{}\" x=\"{}\" y=\"{hy}\" font-size=\"11\" fill=\"#b26a00\">{}</text>",
                escape(&rule.name),
                b.x + 24,
                escape(&rule_line(rule)),
            );
            hy += LINE;
        }
        sy += sh + 8;
    }
}

/// The landscape as an SVG element (inline in HTML, or a file's root element).
pub fn svg(scene: Scene<'_>) -> String {
    let oracle = scene.now;
    let live = Live::of(scene);
    let outside = oracle
        .hosts()
        .values()
        .filter(|h| h.subnet.is_none())
        .count();
    let top_h = 2 * LINE + 12 + (outside + oracle.services().len()).max(1) * LINE;
    let (boxes, height) = layout(oracle, &live, GAP + top_h + GAP);
    let width = 2 * GAP + COLS * BOX_W + (COLS - 1) * COL_GAP;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" aria-label=\"landscape\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" font-family=\"sans-serif\">\n"
    );
    let labels = draw_peerings(&mut svg, oracle, &boxes);
    draw_internet(&mut svg, oracle, &live, width, top_h);
    for b in &boxes {
        draw_vnet(&mut svg, b, &live);
    }
    svg.push_str(&labels);
    svg.push_str("</svg>\n");
    svg
}

/// The landscape as a standalone SVG file (what `ppvnet draw` writes): an XML declaration, a
/// white background and a title with the landscape's name.
pub fn svg_file(name: &str, scene: Scene<'_>) -> String {
    let inner = svg(scene);
    let title = format!(
        "<title>{}</title>\n<rect width=\"100%\" height=\"100%\" fill=\"#fff\"/>\n",
        escape(&format!("landscape {name}"))
    );
    // After the root element's opening tag, so the title names the whole picture.
    let body = match inner.split_once(">\n") {
        Some((open, rest)) => format!("{open}>\n{title}{rest}"),
        None => inner,
    };
    format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{body}")
}

/// The reachability matrix as an HTML table: each host × each face, on port 443.
pub fn matrix(oracle: &Oracle) -> String {
    let faces = oracle.faces();
    let mut t = String::from("<table class=\"matrix\"><thead><tr><th>host \\ face</th>");
    for (service, face) in &faces {
        let _ = write!(
            t,
            "<th>{}<br><small>{}</small></th>",
            escape(service),
            escape(face.label())
        );
    }
    t.push_str("</tr></thead><tbody>\n");
    for host in oracle.hosts().keys() {
        let _ = write!(t, "<tr><th>{}</th>", escape(host));
        for (service, face) in &faces {
            let cell = match oracle.decide(host, service, face, 443) {
                Ok(d @ Decision::Allow { .. }) => {
                    let refused = matches!(
                        &d,
                        Decision::Allow {
                            service_refusal: Some(_),
                            ..
                        }
                    );
                    let class = if refused { "refused" } else { "allow" };
                    let mark = if refused { "⊘" } else { "✓" };
                    format!(
                        "<td class=\"{class}\" title=\"{}\">{mark}</td>",
                        escape(&d.label())
                    )
                }
                Ok(d) => format!("<td class=\"deny\" title=\"{}\">✗</td>", escape(&d.label())),
                Err(e) => format!(
                    "<td class=\"deny\" title=\"{}\">?</td>",
                    escape(&e.to_string())
                ),
            };
            t.push_str(&cell);
        }
        t.push_str("</tr>\n");
    }
    t.push_str("</tbody></table>\n");
    t
}

/// The latest flow-log records (newest first) as an HTML table: state, path and deciding rule.
pub fn flows(records: &[FlowRecord]) -> String {
    let mut t = String::from(
        "<table class=\"flows\"><thead><tr><th>time (UTC)</th><th>state</th><th>path</th><th>service</th><th>rule or route</th><th>tuple</th></tr></thead><tbody>\n",
    );
    if records.is_empty() {
        t.push_str("<tr><td colspan=\"6\">no flows yet</td></tr>\n");
    }
    for r in records.iter().rev() {
        let (class, state) = match r.state {
            FlowState::D => ("deny", "denied"),
            FlowState::B => ("allow", "began"),
            FlowState::C => ("allow", "continues"),
            FlowState::E => ("allow", "ended"),
        };
        let via = if r.crosses_internet {
            " via the internet"
        } else {
            ""
        };
        let time =
            time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(r.time_ms) * 1_000_000)
                .map(|t| format!("{:02}:{:02}:{:02}", t.hour(), t.minute(), t.second()))
                .unwrap_or_default();
        let _ = writeln!(
            t,
            "<tr class=\"{class}\"><td>{time}</td><td>{state}</td><td>{} ({}) → {} ({}:{}){via}</td><td>{}</td><td>{}</td><td><code>{}</code></td></tr>",
            escape(&r.src_host),
            r.src,
            escape(&r.dst_host),
            r.dst,
            r.dport,
            escape(&r.service),
            escape(&r.rule),
            escape(&r.tuple()),
        );
    }
    t.push_str("</tbody></table>\n");
    t
}

/// The two vNets a peering joins, in name order (both directions of a peering give the same).
pub fn vnet_pair(p: &PeeringInfo) -> (&str, &str) {
    if p.from <= p.to {
        (&p.from, &p.to)
    } else {
        (&p.to, &p.from)
    }
}

/// The regions and environments a control panel offers: every region of the landscape's
/// vNets and Power Platform hosts, and each environment with the regions it can run in.
pub fn regions_and_environments(
    oracle: &Oracle,
) -> (
    BTreeSet<String>,
    std::collections::BTreeMap<String, Vec<String>>,
) {
    let mut regions: BTreeSet<String> = oracle.vnets().values().map(|v| v.region.clone()).collect();
    let mut environments: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for (env, region) in oracle
        .hosts()
        .values()
        .filter_map(|h| h.power_platform.as_ref())
    {
        regions.insert(region.clone());
        let e = environments.entry(env.clone()).or_default();
        if !e.contains(region) {
            e.push(region.clone());
        }
    }
    (regions, environments)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contoso() -> Oracle {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/contoso.yaml");
        let l = crate::scenario::load(&path).expect("contoso loads");
        Oracle::new(&l)
    }

    #[test]
    fn live_state_shows_in_the_picture() {
        let declared = contoso();
        let mut now = declared.clone();
        let before = svg(Scene::declared(&declared));
        assert!(before.contains("data-outage=\"false\""));
        assert!(!before.contains("data-outage=\"true\""));
        assert!(!before.contains("data-state=\"off\""));
        assert!(before.contains("data-delegated=\"true\""));

        let peering = now.peerings()[0].name.clone();
        now.set_peering(&peering, false).expect("a peering");
        now.set_region_outage("westus", true).expect("westus");
        let nsg = now
            .vnets()
            .values()
            .flat_map(|v| v.subnets.values())
            .find_map(|s| s.nsg.clone())
            .expect("a subnet with an NSG");
        let rule: NsgRule = serde_json::from_value(serde_json::json!({
            "name": "<script>x</script>", "priority": 3917, "direction": "Inbound",
            "access": "Deny", "protocol": "Tcp", "destinationPortRanges": ["443"]
        }))
        .expect("a rule");
        now.add_nsg_rule(&nsg, rule).expect("the rule is valid");

        let after = svg(Scene {
            now: &now,
            declared: &declared,
        });
        assert!(after.contains(&format!(
            "data-peering=\"{}\" data-state=\"off\"",
            escape(&peering)
        )));
        assert!(after.contains("data-region=\"westus\" data-outage=\"true\""));
        assert!(after.contains("westus (region outage)"));
        assert!(after.contains("data-state=\"down\""));
        assert!(after.contains("data-rule=\"&lt;script&gt;x&lt;/script&gt;\""));
        assert!(!after.contains("<script>"));
    }

    #[test]
    fn the_file_is_standalone_svg() {
        let o = contoso();
        let file = svg_file("contoso <&>", Scene::declared(&o));
        assert!(file.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns="));
        assert!(file.contains("<title>landscape contoso &lt;&amp;&gt;</title>"));
        assert!(file.trim_end().ends_with("</svg>"));
    }
}
