//! A landscape drawn for the HTML report (inline SVG) and its reachability matrix, both from
//! the reachability oracle of the landscape as declared (before any step changed it).
//!
//! Layout is deterministic: vNets two per row, peered vNets next to each other (groups of
//! peered vNets in name order), each a box of its subnets with the hosts and private endpoints
//! inside; internet-side hosts and public faces in a box of their own above; peerings as
//! labelled lines between vNet boxes, drawn under them (dashed when they do not allow traffic).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::junit::escape;
use crate::fabric::oracle::{Decision, HostInfo, Oracle};

const COLS: usize = 2;
const BOX_W: usize = 460;
const GAP: usize = 40;
const LINE: usize = 18;

/// Height of a vNet box: title lines, then per subnet a header and one line per host.
fn vnet_height(subnets: &[(String, Vec<&HostInfo>)]) -> usize {
    2 * LINE + 12 + subnets.iter().map(|(_, h)| LINE + 8 + h.len().max(1) * LINE).sum::<usize>()
}

fn host_line(svg: &mut String, x: usize, y: usize, h: &HostInfo) {
    let (color, what) = match (&h.private_endpoint_of, &h.power_platform) {
        (Some(service), _) => ("#7b3fa0", format!("private endpoint of {service}")),
        (_, Some((env, region))) => ("#1f6fb2", format!("Power Platform {env} in {region}")),
        _ => ("#2e7d32", "host".to_string()),
    };
    let _ = writeln!(
        svg,
        "<circle cx=\"{}\" cy=\"{}\" r=\"5\" fill=\"{color}\"/><text x=\"{}\" y=\"{}\" font-size=\"12\">{} {} <tspan fill=\"#666\">({})</tspan></text>",
        x + 10,
        y - 4,
        x + 20,
        y,
        escape(&h.name),
        h.address,
        escape(&what)
    );
}

/// vNets grouped by peering (each group in name order, groups by their first name), so peered
/// vNets sit side by side.
fn peered_order(oracle: &Oracle) -> Vec<(&String, &crate::fabric::oracle::VnetInfo)> {
    let mut out: Vec<(&String, &crate::fabric::oracle::VnetInfo)> = Vec::new();
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

/// The landscape as an SVG element.
pub fn svg(oracle: &Oracle) -> String {
    let mut by_subnet: BTreeMap<(String, String), Vec<&HostInfo>> = BTreeMap::new();
    let mut outside: Vec<&HostInfo> = Vec::new();
    for h in oracle.hosts().values() {
        match &h.subnet {
            Some((v, s)) => by_subnet.entry((v.clone(), s.clone())).or_default().push(h),
            None => outside.push(h),
        }
    }
    let publics: Vec<String> = oracle
        .services()
        .values()
        .map(|s| format!("{} ({})", s.name, s.public_address))
        .collect();
    let top_h = 2 * LINE + 12 + (outside.len() + publics.len()).max(1) * LINE;
    let vnets: Vec<(&String, Vec<(String, Vec<&HostInfo>)>)> = peered_order(oracle)
        .into_iter()
        .map(|(name, v)| {
            let subnets = v
                .subnets
                .keys()
                .map(|s| {
                    let hosts = by_subnet.get(&(name.clone(), s.clone())).cloned().unwrap_or_default();
                    (s.clone(), hosts)
                })
                .collect();
            (name, subnets)
        })
        .collect();
    // Box positions: rows of COLS, each row as tall as its tallest box.
    let mut pos: BTreeMap<&str, (usize, usize, usize)> = BTreeMap::new();
    let mut y = GAP + top_h + GAP;
    for row in vnets.chunks(COLS) {
        let tallest = row.iter().map(|(_, s)| vnet_height(s)).max().unwrap_or(0);
        for (i, (name, subnets)) in row.iter().enumerate() {
            pos.insert(name.as_str(), (GAP + i * (BOX_W + GAP), y, vnet_height(subnets)));
        }
        y += tallest + GAP;
    }
    let width = GAP + COLS * (BOX_W + GAP);
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" aria-label=\"landscape\" width=\"{width}\" height=\"{y}\" viewBox=\"0 0 {width} {y}\" font-family=\"sans-serif\">\n"
    );
    for p in oracle.peerings() {
        if let (Some(a), Some(b)) = (pos.get(p.from.as_str()), pos.get(p.to.as_str())) {
            let dash = if p.allow_virtual_network_access { "" } else { " stroke-dasharray=\"6 4\"" };
            let (x1, y1, x2, y2) = (a.0 + BOX_W / 2, a.1 + a.2 / 2, b.0 + BOX_W / 2, b.1 + b.2 / 2);
            let _ = writeln!(
                svg,
                "<line x1=\"{x1}\" y1=\"{y1}\" x2=\"{x2}\" y2=\"{y2}\" stroke=\"#e07b00\" stroke-width=\"3\"{dash}><title>peering {}</title></line><text x=\"{}\" y=\"{}\" font-size=\"11\" fill=\"#e07b00\" text-anchor=\"middle\">{}</text>",
                escape(&p.name), (x1 + x2) / 2, (y1 + y2) / 2 - 6, escape(&p.name)
            );
        }
    }
    let _ = writeln!(
        svg,
        "<rect x=\"{GAP}\" y=\"{GAP}\" width=\"{}\" height=\"{top_h}\" rx=\"8\" fill=\"#f4f8f4\" stroke=\"#2e7d32\"/><text x=\"{}\" y=\"{}\" font-weight=\"bold\">internet</text>",
        width - 2 * GAP, GAP + 10, GAP + LINE + 4
    );
    let mut ty = GAP + 2 * LINE + 8;
    for h in &outside {
        host_line(&mut svg, GAP + 10, ty, h);
        ty += LINE;
    }
    for p in &publics {
        let _ = writeln!(svg, "<text x=\"{}\" y=\"{ty}\" font-size=\"12\">public face: {}</text>", GAP + 30, escape(p));
        ty += LINE;
    }
    for (name, subnets) in &vnets {
        let (x, y0, h) = pos[name.as_str()];
        let v = &oracle.vnets()[*name];
        let space: Vec<String> = v.address_space.iter().map(|n| n.to_string()).collect();
        let _ = writeln!(
            svg,
            "<rect x=\"{x}\" y=\"{y0}\" width=\"{BOX_W}\" height=\"{h}\" rx=\"8\" fill=\"#f3f7fc\" stroke=\"#1f6fb2\"/><text x=\"{}\" y=\"{}\" font-weight=\"bold\">{}</text><text x=\"{}\" y=\"{}\" font-size=\"12\" fill=\"#444\">{} · {}</text>",
            x + 10, y0 + LINE, escape(name), x + 10, y0 + 2 * LINE, escape(&v.region), escape(&space.join(", "))
        );
        let mut sy = y0 + 2 * LINE + 12;
        for (subnet, hosts) in subnets {
            let info = &v.subnets[subnet];
            let sh = LINE + 4 + hosts.len().max(1) * LINE;
            let nsg = info.nsg.as_deref().map(|n| format!(" · NSG {n}")).unwrap_or_default();
            let _ = writeln!(
                svg,
                "<rect x=\"{}\" y=\"{sy}\" width=\"{}\" height=\"{sh}\" fill=\"#fff\" stroke=\"#9bb7d4\"/><text x=\"{}\" y=\"{}\" font-size=\"12\" font-weight=\"bold\">{} {}{}</text>",
                x + 8, BOX_W - 16, x + 14, sy + 14, escape(subnet), info.prefix, escape(&nsg)
            );
            let mut hy = sy + LINE + 14;
            for host in hosts {
                host_line(&mut svg, x + 14, hy, host);
                hy += LINE;
            }
            sy += sh + 8;
        }
    }
    svg.push_str("</svg>\n");
    svg
}

/// The reachability matrix as an HTML table: each host × each face, on port 443.
pub fn matrix(oracle: &Oracle) -> String {
    let faces = oracle.faces();
    let mut t = String::from("<table class=\"matrix\"><thead><tr><th>host \\ face</th>");
    for (service, face) in &faces {
        let _ = write!(t, "<th>{}<br><small>{}</small></th>", escape(service), escape(face.label()));
    }
    t.push_str("</tr></thead><tbody>\n");
    for host in oracle.hosts().keys() {
        let _ = write!(t, "<tr><th>{}</th>", escape(host));
        for (service, face) in &faces {
            let cell = match oracle.decide(host, service, face, 443) {
                Ok(d @ Decision::Allow { .. }) => {
                    let refused = matches!(&d, Decision::Allow { service_refusal: Some(_), .. });
                    let class = if refused { "refused" } else { "allow" };
                    let mark = if refused { "⊘" } else { "✓" };
                    format!("<td class=\"{class}\" title=\"{}\">{mark}</td>", escape(&d.label()))
                }
                Ok(d) => format!("<td class=\"deny\" title=\"{}\">✗</td>", escape(&d.label())),
                Err(e) => format!("<td class=\"deny\" title=\"{}\">?</td>", escape(&e.to_string())),
            };
            t.push_str(&cell);
        }
        t.push_str("</tr>\n");
    }
    t.push_str("</tbody></table>\n");
    t
}
