//! The rows that start something of their own: `up` cold and warm (in-process starts of the
//! landscape to its ready file, as `ppvnet up` does), and `relay-connect` (a fabric of the
//! landscape with an echo behind a private endpoint's relay).

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use ppvnet_common::bench::{Distribution, echo, echo_round_trip};
use ppvnet_common::keypool::{DEFAULT_DEPTH, KeyPool};
use serde_json::json;

use super::rows::detail;
use super::{Row, RowName, Sizes};
use crate::fabric::{Fabric, FabricKind, Face};
use crate::landscape::{HostKind, Landscape};
use crate::up::{self, UpOptions};

/// Waits (up to 30 s) until a run has topped the key pool of `cache` up again, so the filler's
/// key generation overlaps no measurement and every warm start finds a key.
pub(super) async fn wait_for_key_pool(cache: &Path) {
    let pool = KeyPool::at(cache.join("keys").join("rsa-2048"));
    let deadline = Instant::now() + Duration::from_secs(30);
    // The filler runs on a thread of its own and announces nothing: look at the folder.
    while pool.len() < DEFAULT_DEPTH && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// One start of `landscape` to its ready file, with `cache` (`None`: no cache); the time to
/// ready, then a clean stop.
async fn one_start(
    landscape: &Landscape,
    dir: &Path,
    cache: Option<&Path>,
    round: usize,
) -> anyhow::Result<Duration> {
    start_on(landscape, FabricKind::Loopback, dir, cache, round).await
}

/// [`one_start`] on the fabric `kind`.
async fn start_on(
    landscape: &Landscape,
    kind: FabricKind,
    dir: &Path,
    cache: Option<&Path>,
    round: usize,
) -> anyhow::Result<Duration> {
    let ready = dir.join(format!("up-{round}")).join("ready.json");
    let mut opts = UpOptions::new(kind, ready);
    opts.cache = cache.map(Path::to_path_buf);
    let started = Instant::now();
    let running = up::start(landscape, &opts).await?;
    let elapsed = started.elapsed();
    if let Some(cache) = cache {
        wait_for_key_pool(cache).await;
    }
    running.stop().await?;
    Ok(elapsed)
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort_unstable();
    times[times.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// `up-cold` (no cache: a new signing key, every case database built) against aws-lc's RSA-2048
/// key generation, and `up-warm` (a warm cache of its own, not the user's) against `up-cold`;
/// the two kinds of start alternate so a burst of load hits both alike.
pub(super) async fn up_cold_and_warm(
    landscape: &Landscape,
    sizes: Sizes,
    dir: &Path,
    rows: &[RowName],
) -> anyhow::Result<Vec<Row>> {
    let cache = dir.join("cache");
    // Fills the cache: a full key pool, each case database built once.
    one_start(landscape, dir, Some(&cache), 0).await?;
    let (mut cold, mut warm) = (Vec::new(), Vec::new());
    for round in 1..=sizes.starts {
        cold.push(one_start(landscape, dir, None, 2 * round).await?);
        warm.push(one_start(landscape, dir, Some(&cache), 2 * round + 1).await?);
    }
    let (cold, warm) = (median(cold), median(warm));
    let keys = sizes.keys;
    let key = tokio::task::spawn_blocking(move || ppvnet_common::bench::rsa_key_generation(keys))
        .await?
        .map_err(|_| anyhow::anyhow!("aws-lc cannot generate an RSA key"))?;
    let mut out = Vec::new();
    if rows.contains(&RowName::UpCold) {
        out.push(Row::new(
            RowName::UpCold,
            format!(
                "start of '{}' to its ready file, no cache (median of {})",
                landscape.scenario.name, sizes.starts
            ),
            ms(cold),
            "ms",
            format!("aws-lc RSA-2048 key generation (median of {keys}, ms)"),
            ms(key),
            false,
            json!({ "starts": sizes.starts }),
        )?);
    }
    if rows.contains(&RowName::UpWarm) {
        out.push(Row::new(
            RowName::UpWarm,
            format!(
                "start of '{}' to its ready file, warm cache (median of {})",
                landscape.scenario.name, sizes.starts
            ),
            ms(warm),
            "ms",
            "up-cold of this run (ms)",
            ms(cold),
            false,
            json!({ "starts": sizes.starts }),
        )?);
    }
    Ok(out)
}

/// `up-docker`: starts on the docker fabric against starts on the netns fabric, alternating,
/// both with a warm cache of their own (so both measure the fabric, not key generation); the
/// detail names the sizes of the images involved.
pub(super) async fn up_docker(
    landscape: &Landscape,
    sizes: Sizes,
    dir: &Path,
) -> anyhow::Result<Row> {
    let image = crate::image::default_tag();
    crate::fabric::docker::check_image(&image)?;
    let cache = dir.join("cache-fabrics");
    start_on(landscape, FabricKind::Netns, dir, Some(&cache), 0).await?;
    let (mut docker, mut netns) = (Vec::new(), Vec::new());
    for round in 1..=sizes.starts {
        let at = 100 + 2 * round;
        docker.push(start_on(landscape, FabricKind::Docker, dir, Some(&cache), at).await?);
        netns.push(start_on(landscape, FabricKind::Netns, dir, Some(&cache), at + 1).await?);
    }
    let mut images = serde_json::Map::new();
    images.insert(image.clone(), crate::image::size_of(&image)?.into());
    for api in &landscape.scenario.apis {
        if let crate::scenario::model::ApiImplementation::Container { image, .. } =
            &api.implementation
        {
            images.insert(image.clone(), crate::image::size_of(image)?.into());
        }
    }
    Row::new(
        RowName::UpDocker,
        format!(
            "start of '{}' on the docker fabric to its ready file, warm cache (median of {})",
            landscape.scenario.name, sizes.starts
        ),
        ms(median(docker)),
        "ms",
        "the same start on the netns fabric (ms)",
        ms(median(netns)),
        false,
        json!({ "starts": sizes.starts, "image_bytes": images }),
    )
}

/// `relay-connect`: a new connection and a 4-byte echo through the loopback relay of the
/// landscape's first private endpoint (policy oracle and flow log included), from the first
/// Power Platform host it lets through, against the same on a direct loopback connection.
pub(super) async fn relay_connect(landscape: &Landscape, sizes: Sizes) -> anyhow::Result<Row> {
    let (service, endpoint) = landscape
        .services
        .iter()
        .find_map(|s| Some((s.name.clone(), s.private_endpoints.first()?.clone())))
        .context("relay-connect needs a service behind a private endpoint")?;
    let fabric = Fabric::materialize(landscape, FabricKind::Loopback).await?;
    let measured = relay_against_direct(landscape, &fabric, &service, &endpoint, sizes).await;
    fabric.teardown().await?;
    let (relay, direct, host) = measured?;
    let us = |d: &Distribution| d.p50.as_secs_f64() * 1e6;
    Row::new(
        RowName::RelayConnect,
        format!("connect + 4-byte echo from {host} through the relay of {endpoint} (p50)"),
        us(&relay),
        "µs",
        "direct loopback connect + echo (p50 µs)",
        us(&direct),
        false,
        json!({ "relay": detail(&relay), "direct": detail(&direct) }),
    )
}

async fn relay_against_direct(
    landscape: &Landscape,
    fabric: &Fabric,
    service: &str,
    endpoint: &str,
    sizes: Sizes,
) -> anyhow::Result<(Distribution, Distribution, String)> {
    let bound = fabric.bind(service, &Face::PrivateEndpoint(endpoint.to_string()))?;
    let relay = bound.address;
    let served = tokio::spawn(echo(bound.source));
    let plain = std::net::TcpListener::bind("127.0.0.1:0")?;
    let direct = plain.local_addr()?;
    let served_plain = tokio::spawn(echo(plain.into()));
    let mut host = None;
    for h in landscape
        .hosts
        .iter()
        .filter(|h| matches!(h.kind, HostKind::PowerPlatform { .. }))
    {
        let attempt = tokio::time::timeout(Duration::from_secs(5), async {
            echo_round_trip(fabric.connect(&h.name, relay).await?).await
        });
        if let Ok(Ok(())) = attempt.await {
            host = Some(h.name.clone());
            break;
        }
    }
    let host = host.with_context(|| format!("no Power Platform host reaches {endpoint}"))?;
    let through = connections(sizes, || async {
        echo_round_trip(fabric.connect(&host, relay).await?).await
    })
    .await?;
    let plain_figures = connections(sizes, || async {
        echo_round_trip(tokio::net::TcpStream::connect(direct).await?).await
    })
    .await?;
    served.abort();
    served_plain.abort();
    Ok((through, plain_figures, host))
}

/// Warm-up, then `sizes.requests` new connections made one at a time by `connect` (in this
/// task: the fabric is borrowed).
async fn connections<F, Fut>(sizes: Sizes, mut connect: F) -> anyhow::Result<Distribution>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = std::io::Result<()>>,
{
    for _ in 0..sizes.warm_up {
        connect().await.context("a warm-up connection")?;
    }
    let started = Instant::now();
    let mut latencies = Vec::with_capacity(sizes.requests as usize);
    for _ in 0..sizes.requests {
        let sent = Instant::now();
        connect().await.context("a measured connection")?;
        latencies.push(sent.elapsed());
    }
    Distribution::new(started.elapsed(), latencies).context("nothing measured")
}
