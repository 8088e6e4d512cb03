//! VNet flow log records of every connection attempt, and Prometheus metrics derived from them.
//!
//! A record carries Azure's VNet flow log tuple (MicrosoftDocs/azure-docs:
//! `articles/network-watcher/vnet-flow-logs-overview.md`: `ts(epoch ms), src,
//! dst, sport, dport, proto, dir, state, encryption, pktsSent, bytesSent, pktsRecv, bytesRecv`)
//! with emulated (Azure-side) addresses, plus the fabric host names so tests can follow a path.
//! States: `B` when an allowed connection begins, `C` every 5 minutes while it lasts, `E` when it
//! ends, `D` when it is denied. `C` and `E` carry the packets and bytes since the flow's previous
//! record (deltas, as in Azure), sent = src→dst and received = dst→src; the metrics add them up
//! per host. The fabrics count differently: the netns fabric reads the kernel's conntrack
//! counters (IP packets and their bytes, headers included, as Azure counts; it also writes `C`
//! records), the loopback relay counts payload bytes, its "packets" being the reads and writes
//! that moved them (the service's, on a connection it handed over; its own, when it copies to an
//! external program); both write `C` records at the flow log's continue interval.

use std::collections::{BTreeMap, VecDeque};
use std::io::Write;
use std::net::Ipv4Addr;
use std::path::Path;
use std::sync::Mutex;

/// Records kept in memory for queries; older ones are only in the JSON lines file.
const KEEP: usize = 100_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum FlowState {
    B,
    C,
    E,
    D,
}

/// One flow log record.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FlowRecord {
    pub time_ms: u64,
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub sport: u16,
    pub dport: u16,
    /// IANA protocol number (6 = TCP).
    pub proto: u8,
    /// `O` when the source sits in a vNet (the source NIC logs it), else `I`.
    pub direction: char,
    pub state: FlowState,
    pub src_host: String,
    /// The destination face's host: a private endpoint name, or `public:<service>`.
    pub dst_host: String,
    pub service: String,
    /// The deciding rule or route (`AllowVnetInBound`, `peering`, `nsg_inbound`, ...).
    pub rule: String,
    #[serde(default)]
    pub packets_sent: u64,
    #[serde(default)]
    pub bytes_sent: u64,
    #[serde(default)]
    pub packets_received: u64,
    #[serde(default)]
    pub bytes_received: u64,
    /// Whether the flow left the vNets for the public internet.
    pub crosses_internet: bool,
}

/// Packets and bytes of a flow's two directions: sent (source → destination, conntrack's
/// original direction) and received (the replies).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowCounters {
    pub packets_sent: u64,
    pub bytes_sent: u64,
    pub packets_received: u64,
    pub bytes_received: u64,
}

impl FlowCounters {
    /// What was counted after `earlier` (a `C` or `E` record carries the delta since the flow's
    /// previous record, as Azure's do).
    pub fn since(self, earlier: FlowCounters) -> FlowCounters {
        FlowCounters {
            packets_sent: self.packets_sent.saturating_sub(earlier.packets_sent),
            bytes_sent: self.bytes_sent.saturating_sub(earlier.bytes_sent),
            packets_received: self
                .packets_received
                .saturating_sub(earlier.packets_received),
            bytes_received: self.bytes_received.saturating_sub(earlier.bytes_received),
        }
    }
}

impl FlowRecord {
    /// A later record (`C` or `E`) of the flow this `B` record began: the same tuple, names and
    /// rule, with `delta`'s counts.
    pub fn follow_up(&self, state: FlowState, time_ms: u64, delta: FlowCounters) -> FlowRecord {
        FlowRecord {
            time_ms,
            state,
            packets_sent: delta.packets_sent,
            bytes_sent: delta.bytes_sent,
            packets_received: delta.packets_received,
            bytes_received: delta.bytes_received,
            ..self.clone()
        }
    }

    /// The record as Azure's VNet flow log tuple text.
    pub fn tuple(&self) -> String {
        let state = match self.state {
            FlowState::B => 'B',
            FlowState::C => 'C',
            FlowState::E => 'E',
            FlowState::D => 'D',
        };
        format!(
            "{},{},{},{},{},{},{},{state},NX,{},{},{},{}",
            self.time_ms,
            self.src,
            self.dst,
            self.sport,
            self.dport,
            self.proto,
            self.direction,
            self.packets_sent,
            self.bytes_sent,
            self.packets_received,
            self.bytes_received
        )
    }
}

/// A query over the flow log; absent fields match everything.
#[derive(Clone, Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlowFilter {
    pub src_host: Option<String>,
    pub dst_host: Option<String>,
    pub service: Option<String>,
    pub state: Option<FlowState>,
    pub since_ms: Option<u64>,
    /// Only the flows that carried the application request with this correlation id (see
    /// [`FlowLog::correlate`]).
    pub correlation_id: Option<String>,
}

impl FlowFilter {
    pub fn matches(&self, r: &FlowRecord) -> bool {
        self.src_host.as_ref().is_none_or(|h| *h == r.src_host)
            && self.dst_host.as_ref().is_none_or(|h| *h == r.dst_host)
            && self.service.as_ref().is_none_or(|s| *s == r.service)
            && self.state.is_none_or(|s| s == r.state)
            && self.since_ms.is_none_or(|t| r.time_ms >= t)
    }
}

#[derive(Default)]
struct Counters {
    /// (src_host, decision) → count.
    flows: BTreeMap<(String, &'static str), u64>,
    /// (src_host, reason) → count.
    denies: BTreeMap<(String, String), u64>,
    /// (host, "sent"|"received") → bytes.
    bytes: BTreeMap<(String, &'static str), u64>,
}

#[derive(Default)]
struct Inner {
    records: VecDeque<FlowRecord>,
    counters: Counters,
    file: Option<std::fs::File>,
    correlations: VecDeque<Correlation>,
}

/// An application request an in-process client sent from a host to a service (the connector
/// runtime's backend calls): Azure's flow logs know nothing of HTTP, so ppvnet keeps this beside
/// them to answer "which connection carried call X".
#[derive(Clone, Debug)]
struct Correlation {
    id: String,
    src_host: String,
    service: String,
    started_ms: u64,
    ended_ms: u64,
}

/// How late a `B` record may be logged after the request it carried ended: the netns fabric
/// learns of connections through NFLOG, asynchronously.
const LATE_BEGIN_MS: u64 = 1_000;

/// Whether the flow of record `r` was open from the call's host to its service while the call
/// ran: begun before it ended (give or take a late `B`), not ended before it started.
fn carried(records: &[&FlowRecord], r: &FlowRecord, call: &Correlation) -> bool {
    if r.src_host != call.src_host || r.service != call.service || r.state == FlowState::D {
        return false;
    }
    let same = |x: &&&FlowRecord| {
        x.src == r.src && x.sport == r.sport && x.dst == r.dst && x.dport == r.dport
    };
    let begun = records
        .iter()
        .filter(same)
        .find(|x| x.state == FlowState::B)
        .map(|b| b.time_ms);
    let ended = records
        .iter()
        .filter(same)
        .find(|x| x.state == FlowState::E)
        .map(|e| e.time_ms);
    begun.is_some_and(|b| b <= call.ended_ms + LATE_BEGIN_MS)
        && ended.is_none_or(|e| e >= call.started_ms)
}

/// Azure writes a `C` (continuing) record for a flow still open this long after its previous
/// record.
pub const AZURE_CONTINUE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5 * 60);

/// The flow log of one fabric.
pub struct FlowLog {
    inner: Mutex<Inner>,
    /// Woken on every record, so tests and tools wait for a record instead of sleeping.
    recorded: tokio::sync::Notify,
    /// How long an open flow goes between records ([`AZURE_CONTINUE_INTERVAL`] unless a test
    /// shortens it), read by both fabrics' `C` records.
    continue_interval_ms: std::sync::atomic::AtomicU64,
    /// Completed conntrack sweeps of the netns fabric's readers, by router namespace: after a
    /// sweep every connection that had ended is logged, so tests await sweeps to see that a
    /// record did *not* come (no event marks an absence otherwise).
    sweeps: tokio::sync::watch::Sender<Sweeps>,
    /// Told of every record, for live watchers (the dashboard).
    events: crate::events::EventBus,
}

/// Completed sweeps by router namespace.
pub type Sweeps = std::collections::BTreeMap<String, u64>;

impl Default for FlowLog {
    fn default() -> Self {
        Self {
            inner: Mutex::default(),
            recorded: tokio::sync::Notify::new(),
            continue_interval_ms: std::sync::atomic::AtomicU64::new(
                AZURE_CONTINUE_INTERVAL.as_millis() as u64,
            ),
            sweeps: tokio::sync::watch::Sender::new(Sweeps::new()),
            events: crate::events::EventBus::default(),
        }
    }
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

impl FlowLog {
    /// A flow log that publishes each record's arrival on `events`.
    pub fn with_events(events: crate::events::EventBus) -> Self {
        Self {
            events,
            ..Self::default()
        }
    }

    /// Sets the interval of `C` records (at least 1 ms).
    pub fn set_continue_interval(&self, interval: std::time::Duration) {
        let ms = u64::try_from(interval.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        self.continue_interval_ms
            .store(ms, std::sync::atomic::Ordering::Relaxed);
    }

    /// The interval of `C` records.
    pub fn continue_interval(&self) -> std::time::Duration {
        std::time::Duration::from_millis(
            self.continue_interval_ms
                .load(std::sync::atomic::Ordering::Relaxed),
        )
    }

    /// Also appends every record as one JSON line to `path`.
    pub fn write_to(&self, path: &Path) -> std::io::Result<()> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        self.lock().file = Some(file);
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves consistent data (every update is one push).
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a record; `deny_reason` is set for `D` records.
    pub fn record(&self, r: FlowRecord, deny_reason: Option<&str>) {
        let mut g = self.lock();
        let c = &mut g.counters;
        match r.state {
            FlowState::B => *c.flows.entry((r.src_host.clone(), "allow")).or_default() += 1,
            FlowState::D => {
                *c.flows.entry((r.src_host.clone(), "deny")).or_default() += 1;
                *c.denies
                    .entry((
                        r.src_host.clone(),
                        deny_reason.unwrap_or("unspecified").into(),
                    ))
                    .or_default() += 1;
            }
            FlowState::C | FlowState::E => {
                *c.bytes.entry((r.src_host.clone(), "sent")).or_default() += r.bytes_sent;
                *c.bytes.entry((r.src_host.clone(), "received")).or_default() += r.bytes_received;
                *c.bytes.entry((r.dst_host.clone(), "received")).or_default() += r.bytes_sent;
                *c.bytes.entry((r.dst_host.clone(), "sent")).or_default() += r.bytes_received;
            }
        }
        if let Some(f) = g.file.as_mut()
            && let Ok(mut line) = serde_json::to_vec(&r)
        {
            line.push(b'\n');
            if let Err(e) = f.write_all(&line) {
                tracing::warn!("cannot append to the flow log file: {e}");
            }
        }
        if g.records.len() == KEEP {
            g.records.pop_front();
        }
        g.records.push_back(r);
        drop(g);
        self.recorded.notify_waiters();
        self.events.publish(crate::events::Event::Flow);
    }

    /// Waits until the records matching `filter` satisfy `done` (checked now and after every
    /// new record), or `timeout` passes; returns the matching records either way, so the
    /// caller's assertion shows what was there.
    pub async fn wait_for(
        &self,
        filter: &FlowFilter,
        timeout: std::time::Duration,
        done: impl Fn(&[FlowRecord]) -> bool,
    ) -> Vec<FlowRecord> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            // Registered before the check, so a record logged in between still wakes us.
            let notified = self.recorded.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let now = self.query(filter);
            if done(&now) {
                return now;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.query(filter);
            }
        }
    }

    /// A router's reader finished a conntrack sweep (every `E` and `C` it showed is logged).
    pub fn swept(&self, router: &str) {
        self.sweeps
            .send_modify(|m| *m.entry(router.to_string()).or_default() += 1);
    }

    /// The sweeps completed so far, for [`FlowLog::wait_sweeps`].
    pub fn sweeps(&self) -> Sweeps {
        self.sweeps.borrow().clone()
    }

    /// Waits until every router that had swept at `since` has completed `more` sweeps after it
    /// (so each saw the current connection table `more` times); false when `timeout` passes.
    pub async fn wait_sweeps(
        &self,
        since: &Sweeps,
        more: u64,
        timeout: std::time::Duration,
    ) -> bool {
        let mut rx = self.sweeps.subscribe();
        let done = rx.wait_for(|now| {
            since
                .iter()
                .all(|(router, n)| now.get(router).is_some_and(|m| *m >= n + more))
        });
        matches!(tokio::time::timeout(timeout, done).await, Ok(Ok(_)))
    }

    /// The `n` most recent records, oldest first.
    pub fn latest(&self, n: usize) -> Vec<FlowRecord> {
        let g = self.lock();
        g.records
            .iter()
            .skip(g.records.len().saturating_sub(n))
            .cloned()
            .collect()
    }

    pub fn query(&self, filter: &FlowFilter) -> Vec<FlowRecord> {
        let g = self.lock();
        let matching = g.records.iter().filter(|r| filter.matches(r));
        match &filter.correlation_id {
            None => matching.cloned().collect(),
            Some(id) => {
                let calls: Vec<&Correlation> =
                    g.correlations.iter().filter(|c| &c.id == id).collect();
                let records: Vec<&FlowRecord> = g.records.iter().collect();
                matching
                    .filter(|r| calls.iter().any(|c| carried(&records, r, c)))
                    .cloned()
                    .collect()
            }
        }
    }

    /// Notes that the request with correlation id `id` went from `src_host` to `service`
    /// between `started_ms` and now; the flow query's `correlation_id` finds the connections
    /// that were open from that host to that service meanwhile (with a pooled client, one of
    /// them carried it).
    pub fn correlate(&self, id: &str, src_host: &str, service: &str, started_ms: u64) {
        let mut g = self.lock();
        if g.correlations.len() == KEEP {
            g.correlations.pop_front();
        }
        g.correlations.push_back(Correlation {
            id: id.to_string(),
            src_host: src_host.to_string(),
            service: service.to_string(),
            started_ms,
            ended_ms: now_ms(),
        });
    }

    /// Prometheus text exposition (version 0.0.4).
    pub fn metrics(&self) -> String {
        let g = self.lock();
        let esc = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
        let mut out = String::new();
        out.push_str(
            "# HELP ppvnet_fabric_flows_total Connection attempts by source host and decision.\n",
        );
        out.push_str("# TYPE ppvnet_fabric_flows_total counter\n");
        for ((h, d), n) in &g.counters.flows {
            out.push_str(&format!(
                "ppvnet_fabric_flows_total{{src_host=\"{}\",decision=\"{d}\"}} {n}\n",
                esc(h)
            ));
        }
        out.push_str("# HELP ppvnet_fabric_denies_total Denied connection attempts by source host and reason.\n");
        out.push_str("# TYPE ppvnet_fabric_denies_total counter\n");
        for ((h, r), n) in &g.counters.denies {
            out.push_str(&format!(
                "ppvnet_fabric_denies_total{{src_host=\"{}\",reason=\"{}\"}} {n}\n",
                esc(h),
                esc(r)
            ));
        }
        out.push_str("# HELP ppvnet_fabric_bytes_total Bytes carried by host and direction.\n");
        out.push_str("# TYPE ppvnet_fabric_bytes_total counter\n");
        for ((h, d), n) in &g.counters.bytes {
            out.push_str(&format!(
                "ppvnet_fabric_bytes_total{{host=\"{}\",direction=\"{d}\"}} {n}\n",
                esc(h)
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(state: FlowState, sent: u64, recv: u64) -> FlowRecord {
        FlowRecord {
            time_ms: 1663146003606,
            src: Ipv4Addr::new(10, 0, 0, 6),
            dst: Ipv4Addr::new(52, 239, 184, 180),
            sport: 23956,
            dport: 443,
            proto: 6,
            direction: 'O',
            state,
            src_host: "a".into(),
            dst_host: "b".into(),
            service: "kv".into(),
            rule: "AllowInternetOutBound".into(),
            packets_sent: if sent > 0 { 3 } else { 0 },
            bytes_sent: sent,
            packets_received: if recv > 0 { 2 } else { 0 },
            bytes_received: recv,
            crosses_internet: true,
        }
    }

    /// A call's correlation id finds the connection that was open from its host to its
    /// service while it ran, not one closed before it nor one to another service.
    #[test]
    fn a_correlation_id_finds_the_connections_open_during_the_call() {
        let log = FlowLog::default();
        let at = |state, time_ms, sport, service: &str| FlowRecord {
            time_ms,
            sport,
            service: service.into(),
            ..rec(state, 0, 0)
        };
        log.record(at(FlowState::B, 1_000, 40001, "kv"), None);
        log.record(at(FlowState::E, 2_000, 40001, "kv"), None);
        log.record(at(FlowState::B, 3_000, 40002, "kv"), None);
        log.record(at(FlowState::B, 3_000, 40003, "api"), None);
        log.lock().correlations.push_back(Correlation {
            id: "call-1".into(),
            src_host: "a".into(),
            service: "kv".into(),
            started_ms: 5_000,
            ended_ms: 5_100,
        });
        let carried = log.query(&FlowFilter {
            correlation_id: Some("call-1".into()),
            ..Default::default()
        });
        assert_eq!(carried.len(), 1, "{carried:?}");
        assert_eq!(carried[0].sport, 40002);
        let unknown = log.query(&FlowFilter {
            correlation_id: Some("call-2".into()),
            ..Default::default()
        });
        assert!(unknown.is_empty());
    }

    #[test]
    fn tuple_matches_the_documented_vnet_flow_log_example() {
        // vnet-flow-logs-overview.md: 1663146003606,10.0.0.6,52.239.184.180,23956,443,6,O,E,NX,3,767,2,1580
        assert_eq!(
            rec(FlowState::E, 767, 1580).tuple(),
            "1663146003606,10.0.0.6,52.239.184.180,23956,443,6,O,E,NX,3,767,2,1580"
        );
    }

    #[test]
    fn metrics_count_flows_denies_and_bytes_per_host() {
        let log = FlowLog::default();
        log.record(rec(FlowState::B, 0, 0), None);
        // C and E counters are deltas: a flow's bytes are their sum.
        log.record(rec(FlowState::C, 60, 30), None);
        log.record(rec(FlowState::E, 40, 10), None);
        log.record(rec(FlowState::D, 0, 0), Some("nsg_inbound"));
        let m = log.metrics();
        assert!(
            m.contains("ppvnet_fabric_flows_total{src_host=\"a\",decision=\"allow\"} 1"),
            "{m}"
        );
        assert!(
            m.contains("ppvnet_fabric_flows_total{src_host=\"a\",decision=\"deny\"} 1"),
            "{m}"
        );
        assert!(
            m.contains("ppvnet_fabric_denies_total{src_host=\"a\",reason=\"nsg_inbound\"} 1"),
            "{m}"
        );
        assert!(
            m.contains("ppvnet_fabric_bytes_total{host=\"a\",direction=\"sent\"} 100"),
            "{m}"
        );
        assert!(
            m.contains("ppvnet_fabric_bytes_total{host=\"b\",direction=\"sent\"} 40"),
            "{m}"
        );
        let denied = log.query(&FlowFilter {
            state: Some(FlowState::D),
            ..Default::default()
        });
        assert_eq!(denied.len(), 1);
    }
}
