//! Fabric benchmarks: time to materialize contoso (loopback, netns), time to tear it down, and
//! the cost of a connection through the loopback relay against a plain loopback connection.
//! Targets from issue 6: materialize < 100 ms (loopback), < 1 s (netns).
//!
//! `cargo bench -p ppvnet --bench fabric` (netns cases run only as root).

use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use ppvnet::fabric::{Fabric, FabricKind, Face};
use ppvnet::landscape::Landscape;
use ppvnet_common::bench::{echo, echo_round_trip};
use tokio::runtime::Runtime;

fn contoso() -> Landscape {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/contoso.yaml");
    ppvnet::scenario::load(&path).expect("contoso.yaml loads")
}

fn netns_available() -> bool {
    std::process::Command::new("ip")
        .args(["netns", "list"])
        .output()
        .is_ok_and(|o| o.status.success())
        && std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
}

fn kinds() -> Vec<FabricKind> {
    let mut k = vec![FabricKind::Loopback];
    if netns_available() {
        k.push(FabricKind::Netns);
    } else {
        eprintln!("netns benchmarks skipped: not root or `ip netns` unavailable");
    }
    k
}

fn materialize_and_teardown(c: &mut Criterion) {
    let rt = Runtime::new().expect("runtime");
    let l = contoso();
    let mut g = c.benchmark_group("contoso");
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    for kind in kinds() {
        g.bench_function(format!("materialize/{kind:?}"), |b| {
            b.iter_custom(|n| {
                let mut total = Duration::ZERO;
                for _ in 0..n {
                    let t = Instant::now();
                    let f = rt
                        .block_on(Fabric::materialize(&l, kind))
                        .expect("materialize");
                    total += t.elapsed();
                    rt.block_on(f.teardown()).expect("teardown");
                }
                total
            })
        });
        g.bench_function(format!("teardown/{kind:?}"), |b| {
            b.iter_custom(|n| {
                let mut total = Duration::ZERO;
                for _ in 0..n {
                    let f = rt
                        .block_on(Fabric::materialize(&l, kind))
                        .expect("materialize");
                    let t = Instant::now();
                    rt.block_on(f.teardown()).expect("teardown");
                    total += t.elapsed();
                }
                total
            })
        });
    }
    g.finish();
}

fn connect_overhead(c: &mut Criterion) {
    let rt = Runtime::new().expect("runtime");
    let l = contoso();
    let f = rt
        .block_on(Fabric::materialize(&l, FabricKind::Loopback))
        .expect("materialize");
    let face = Face::PrivateEndpoint("pe-kv-contoso-prod".into());
    let bound = {
        let _guard = rt.enter();
        f.bind("kv-contoso-prod", &face).expect("bind")
    };
    let relay = bound.address;
    rt.spawn(echo(bound.source));
    // The same echo on a plain listener: the cost of the relay is the difference.
    let plain = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let direct = plain.local_addr().expect("addr");
    rt.spawn(echo(plain.into()));
    let mut g = c.benchmark_group("connect+echo");
    g.bench_function("plain loopback", |b| {
        b.iter(|| {
            rt.block_on(async {
                echo_round_trip(
                    tokio::net::TcpStream::connect(direct)
                        .await
                        .expect("connect"),
                )
                .await
                .expect("echo")
            })
        })
    });
    g.bench_function("through relay (oracle + flow log)", |b| {
        b.iter(|| {
            rt.block_on(async {
                echo_round_trip(f.connect("pp-prod-eastus", relay).await.expect("connect"))
                    .await
                    .expect("echo")
            })
        })
    });
    g.finish();
    rt.block_on(f.teardown()).expect("teardown");
}

criterion_group!(benches, materialize_and_teardown, connect_overhead);
criterion_main!(benches);
