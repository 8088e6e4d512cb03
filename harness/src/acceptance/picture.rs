//! A landscape drawn for the HTML report (inline SVG) and its reachability matrix, both from
//! the reachability oracle of the landscape as declared (before any step changed it).
//!
//! Layout is deterministic: vNets two per row, peered vNets next to each other (groups of
//! peered vNets in name order), each a box of its subnets with the hosts and private endpoints
//! inside; internet-side hosts and public faces in a box of their own above; peerings as
//! labelled lines between vNet boxes, drawn under them (dashed when they do not allow traffic).

use std::fmt::Write as _;

use super::junit::escape;
use crate::fabric::oracle::{Decision, HostInfo, Oracle};

const COLS: usize = 2;
const BOX_W: usize = 460;
const GAP: usize = 40;
const LINE: usize = 18;

/// Height of a vNet box: title lines, then per subnet a header and one line per host.
fn vnet_height(subnets: &[(String, Vec<&HostInfo>)]) -> usize {
    2 * LINE
        + 12
        + subnets
            .iter()
            .map(|(_, h)| LINE + 8 + h.len().max(1) * LINE)
            .sum::<usize>()
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

/// A vNet box to draw: name, its subnets with their hosts, and its place (x, y, height).
struct VnetBox<'a> {
    name: &'a str,
    subnets: Vec<(String, Vec<&'a HostInfo>)>,
    x: usize,
    y: usize,
    h: usize,
}

/// The vNet boxes in rows of [`COLS`], each row as tall as its tallest box, starting at `top`;
/// returns them with the picture's height.
fn layout<'a>(oracle: &'a Oracle, top: usize) -> (Vec<VnetBox<'a>>, usize) {
    let mut boxes: Vec<VnetBox<'a>> = peered_order(oracle)
        .into_iter()
        .map(|(name, v)| {
            let subnets = v
                .subnets
                .keys()
                .map(|s| {
                    let hosts = oracle
                        .hosts()
                        .values()
                        .filter(|h| {
                            h.subnet
                                .as_ref()
                                .is_some_and(|r| r.vnet == *name && r.subnet == *s)
                        })
                        .collect();
                    (s.clone(), hosts)
                })
                .collect::<Vec<_>>();
            let h = vnet_height(&subnets);
            VnetBox {
                name,
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
            b.x = GAP + i * (BOX_W + GAP);
            b.y = y;
        }
        y += tallest + GAP;
    }
    (boxes, y)
}

/// Peerings as labelled lines between box centres (drawn first, so boxes cover their ends).
fn draw_peerings(svg: &mut String, oracle: &Oracle, boxes: &[VnetBox<'_>]) {
    let place = |name: &str| boxes.iter().find(|b| b.name == name);
    for p in oracle.peerings() {
        let (Some(a), Some(b)) = (place(&p.from), place(&p.to)) else {
            continue;
        };
        let dash = if p.allow_virtual_network_access {
            ""
        } else {
            " stroke-dasharray=\"6 4\""
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
            "<line x1=\"{x1}\" y1=\"{y1}\" x2=\"{x2}\" y2=\"{y2}\" stroke=\"#e07b00\" stroke-width=\"3\"{dash}><title>peering {name}</title></line><text x=\"{}\" y=\"{}\" font-size=\"11\" fill=\"#e07b00\" text-anchor=\"middle\">{name}</text>",
            (x1 + x2) / 2,
            (y1 + y2) / 2 - 6,
        );
    }
}

/// The internet box: hosts outside every vNet and each service's public face.
fn draw_internet(svg: &mut String, oracle: &Oracle, width: usize, height: usize) {
    let _ = writeln!(
        svg,
        "<rect x=\"{GAP}\" y=\"{GAP}\" width=\"{}\" height=\"{height}\" rx=\"8\" fill=\"#f4f8f4\" stroke=\"#2e7d32\"/><text x=\"{}\" y=\"{}\" font-weight=\"bold\">internet</text>",
        width - 2 * GAP,
        GAP + 10,
        GAP + LINE + 4
    );
    let mut y = GAP + 2 * LINE + 8;
    for h in oracle.hosts().values().filter(|h| h.subnet.is_none()) {
        host_line(svg, GAP + 10, y, h);
        y += LINE;
    }
    for s in oracle.services().values() {
        let _ = writeln!(
            svg,
            "<text x=\"{}\" y=\"{y}\" font-size=\"12\">public face: {} ({})</text>",
            GAP + 30,
            escape(&s.name),
            s.public_address
        );
        y += LINE;
    }
}

/// One vNet: its name, region and address space, then each subnet with its hosts.
fn draw_vnet(svg: &mut String, oracle: &Oracle, b: &VnetBox<'_>) {
    let Some(v) = oracle.vnets().get(b.name) else {
        return;
    };
    let space: Vec<String> = v.address_space.iter().map(|n| n.to_string()).collect();
    let _ = writeln!(
        svg,
        "<rect x=\"{}\" y=\"{}\" width=\"{BOX_W}\" height=\"{}\" rx=\"8\" fill=\"#f3f7fc\" stroke=\"#1f6fb2\"/><text x=\"{}\" y=\"{}\" font-weight=\"bold\">{}</text><text x=\"{}\" y=\"{}\" font-size=\"12\" fill=\"#444\">{} · {}</text>",
        b.x,
        b.y,
        b.h,
        b.x + 10,
        b.y + LINE,
        escape(b.name),
        b.x + 10,
        b.y + 2 * LINE,
        escape(&v.region),
        escape(&space.join(", "))
    );
    let mut sy = b.y + 2 * LINE + 12;
    for (subnet, hosts) in &b.subnets {
        let Some(info) = v.subnets.get(subnet) else {
            continue;
        };
        let sh = LINE + 4 + hosts.len().max(1) * LINE;
        let nsg = info
            .nsg
            .as_deref()
            .map(|n| format!(" · NSG {n}"))
            .unwrap_or_default();
        let _ = writeln!(
            svg,
            "<rect x=\"{}\" y=\"{sy}\" width=\"{}\" height=\"{sh}\" fill=\"#fff\" stroke=\"#9bb7d4\"/><text x=\"{}\" y=\"{}\" font-size=\"12\" font-weight=\"bold\">{} {}{}</text>",
            b.x + 8,
            BOX_W - 16,
            b.x + 14,
            sy + 14,
            escape(subnet),
            info.prefix,
            escape(&nsg)
        );
        let mut hy = sy + LINE + 14;
        for host in hosts {
            host_line(svg, b.x + 14, hy, host);
            hy += LINE;
        }
        sy += sh + 8;
    }
}

/// The landscape as an SVG element.
pub fn svg(oracle: &Oracle) -> String {
    let outside = oracle
        .hosts()
        .values()
        .filter(|h| h.subnet.is_none())
        .count();
    let top_h = 2 * LINE + 12 + (outside + oracle.services().len()).max(1) * LINE;
    let (boxes, height) = layout(oracle, GAP + top_h + GAP);
    let width = GAP + COLS * (BOX_W + GAP);
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" aria-label=\"landscape\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" font-family=\"sans-serif\">\n"
    );
    draw_peerings(&mut svg, oracle, &boxes);
    draw_internet(&mut svg, oracle, width, top_h);
    for b in &boxes {
        draw_vnet(&mut svg, oracle, b);
    }
    svg.push_str("</svg>\n");
    svg
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
