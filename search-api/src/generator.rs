//! Deterministic case data.
//!
//! The same `(seed, count, owners)` always yields the same cases, byte for byte, on every machine
//! and every version of the dependencies: the generator uses its own SplitMix64 stream rather than
//! a library RNG whose algorithm may change, and dates count from a fixed epoch, never from "now".
//! Tests can therefore name a case ("CAS-0000042 belongs to alice") and the bench can rebuild the
//! same million cases.
//!
//! Text is built from a support-desk vocabulary plus a Zipf-distributed tail of part numbers and
//! site codes, so term frequencies look like real ticket text: a few very common words, many rare
//! ones. That matters for the bench, because full-text cost grows with posting-list length.

use serde::{Deserialize, Serialize};

/// One owner of generated cases: the user's object id and the team group the cases belong to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseOwner {
    pub object_id: String,
    pub team_group_id: String,
}

/// What to generate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    #[serde(default = "default_seed")]
    pub seed: u64,
    #[serde(default = "default_count")]
    pub count: u64,
    /// Cases are spread over these owners (and their teams); required when `count > 0`.
    #[serde(default)]
    pub owners: Vec<CaseOwner>,
}

fn default_seed() -> u64 {
    1
}

/// `ppvnet up` loads 10,000 cases per API unless the landscape says otherwise.
fn default_count() -> u64 {
    10_000
}

impl Default for DataConfig {
    fn default() -> Self {
        Self {
            seed: default_seed(),
            count: default_count(),
            owners: Vec::new(),
        }
    }
}

/// Case lifecycle states, as stored and returned.
pub const STATUSES: [&str; 5] = ["new", "active", "onHold", "resolved", "cancelled"];
pub const PRIORITIES: [&str; 4] = ["low", "normal", "high", "critical"];

/// A generated case; `number` becomes the public id `CAS-{number:07}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GeneratedCase {
    pub number: u64,
    pub title: String,
    pub description: String,
    pub status: &'static str,
    pub priority: &'static str,
    pub customer: String,
    pub owner_object_id: String,
    pub team_group_id: String,
    /// Unix seconds.
    pub created: i64,
    pub updated: i64,
}

/// 2023-01-01T00:00:00Z: cases are spread over the two years after it.
const EPOCH: i64 = 1_672_531_200;
const SPAN: i64 = 2 * 365 * 24 * 3600;

const PRODUCTS: &[&str] = &[
    "printer",
    "laptop",
    "router",
    "firewall",
    "vpn client",
    "badge reader",
    "payroll portal",
    "invoice service",
    "email gateway",
    "docking station",
    "monitor",
    "scanner",
    "phone system",
    "wifi access point",
    "storage array",
    "backup agent",
    "crm plugin",
    "tablet",
    "point of sale terminal",
    "label printer",
    "conference camera",
    "headset",
    "smart card",
    "license server",
    "database cluster",
    "web portal",
    "mobile app",
    "timesheet app",
    "expense tool",
    "warehouse scanner",
];

const SYMPTOMS: &[&str] = &[
    "offline",
    "slow",
    "crashes",
    "freezes",
    "overheating",
    "not syncing",
    "rejects password",
    "shows error",
    "times out",
    "reboots randomly",
    "drops connection",
    "prints blank pages",
    "loses settings",
    "fails to start",
    "reports license expired",
    "shows wrong totals",
    "cannot connect",
    "is very noisy",
    "displays garbled text",
    "denies access",
];

const CONTEXTS: &[&str] = &[
    "after firmware update",
    "during login",
    "on monday mornings",
    "since the migration",
    "after password reset",
    "when on battery",
    "over the guest network",
    "for remote users",
    "at month end",
    "after certificate renewal",
    "in the north building",
    "in the south warehouse",
    "with large attachments",
    "when docked",
    "after a power outage",
    "during backups",
];

const CUSTOMERS: &[&str] = &[
    "Fabrikam",
    "Northwind Traders",
    "Adventure Works",
    "Tailspin Toys",
    "Wide World Importers",
    "Litware",
    "Proseware",
    "Woodgrove Bank",
    "Alpine Ski House",
    "Coho Winery",
    "Fourth Coffee",
    "Lamna Healthcare",
    "Relecloud",
    "Trey Research",
    "VanArsdel",
    "Wingtip Toys",
    "Humongous Insurance",
    "Lucerne Publishing",
    "Blue Yonder Airlines",
    "City Power and Light",
    "Consolidated Messenger",
    "Graphic Design Institute",
    "Southridge Video",
    "Bellows College",
    "Datum Corporation",
];

const FOLLOW_UPS: &[&str] = &[
    "The user already restarted the device twice.",
    "Logs were collected and attached to the case.",
    "The issue affects the whole department.",
    "A workaround with a spare unit is in place.",
    "The vendor was contacted and asked for a replacement.",
    "Remote session scheduled with the customer.",
    "Escalated to the network team for analysis.",
    "The problem could not be reproduced in the lab.",
    "Customer asks for an update before the end of the week.",
    "Similar reports came from other sites.",
];

const SYLLABLES: &[&str] = &[
    "ka", "lo", "mi", "ren", "sto", "vax", "qui", "dor", "bel", "tes", "nor", "ul", "pra", "zen",
    "fi", "gar",
];

/// SplitMix64: tiny, fast and fixed forever, which is what a reproducible data set needs.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        // Multiply-shift keeps the bias negligible for the small ranges used here.
        ((u128::from(self.next()) * u128::from(n)) >> 64) as u64
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        let len = u64::try_from(items.len()).unwrap_or(u64::MAX);
        &items[usize::try_from(self.below(len)).unwrap_or(0)]
    }

    /// A rank in `0..n` with probability roughly proportional to 1/(rank+1) (Zipf, s = 1).
    fn zipf(&mut self, n: u64) -> u64 {
        let u = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        let rank = ((n as f64 + 1.0).powf(u) - 1.0).floor();
        (rank as u64).min(n - 1)
    }
}

/// A pronounceable pseudo-word for rank `r`: the long tail of part numbers and site names.
fn tail_word(mut r: u64) -> String {
    let mut word = String::new();
    loop {
        word.push_str(SYLLABLES[(r % SYLLABLES.len() as u64) as usize]);
        r /= SYLLABLES.len() as u64;
        if r == 0 {
            break;
        }
    }
    word
}

/// Size of the Zipf tail vocabulary.
const TAIL_WORDS: u64 = 20_000;

/// Generates the cases of `config`, lazily, in number order starting at 1.
pub fn cases(config: &DataConfig) -> impl Iterator<Item = GeneratedCase> + '_ {
    let mut rng = SplitMix64(config.seed);
    (1..=config.count).filter_map(move |number| {
        if config.owners.is_empty() {
            return None;
        }
        let owner = rng.pick(&config.owners).clone();
        let product = *rng.pick(PRODUCTS);
        let symptom = *rng.pick(SYMPTOMS);
        let context = *rng.pick(CONTEXTS);
        let customer = *rng.pick(CUSTOMERS);
        let site = tail_word(rng.zipf(TAIL_WORDS));
        let part = tail_word(rng.zipf(TAIL_WORDS));
        let code = format!("0x8007{:04x}", rng.below(0x1_0000));
        let follow_up = *rng.pick(FOLLOW_UPS);
        let mut title = format!("{product} {symptom} {context}");
        if let Some(first) = title.get_mut(0..1) {
            first.make_ascii_uppercase();
        }
        let description = format!(
            "{customer} reports that the {product} at site {site} {symptom} {context}. \
             Error code {code} was logged on part {part}. {follow_up}"
        );
        let status = match rng.below(100) {
            0..10 => STATUSES[0],
            10..45 => STATUSES[1],
            45..55 => STATUSES[2],
            55..90 => STATUSES[3],
            _ => STATUSES[4],
        };
        let priority = match rng.below(100) {
            0..20 => PRIORITIES[0],
            20..70 => PRIORITIES[1],
            70..93 => PRIORITIES[2],
            _ => PRIORITIES[3],
        };
        let created = EPOCH + i64::try_from(rng.below(SPAN as u64)).unwrap_or(0);
        let updated = created + i64::try_from(rng.below(30 * 24 * 3600)).unwrap_or(0);
        Some(GeneratedCase {
            number,
            title,
            description,
            status,
            priority,
            customer: customer.to_owned(),
            owner_object_id: owner.object_id,
            team_group_id: owner.team_group_id,
            created,
            updated,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(seed: u64, count: u64) -> DataConfig {
        DataConfig {
            seed,
            count,
            owners: vec![
                CaseOwner {
                    object_id: "alice".into(),
                    team_group_id: "north".into(),
                },
                CaseOwner {
                    object_id: "bob".into(),
                    team_group_id: "south".into(),
                },
            ],
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_cases_and_another_seed_other_cases() {
        let a: Vec<_> = cases(&config(7, 500)).collect();
        let b: Vec<_> = cases(&config(7, 500)).collect();
        let c: Vec<_> = cases(&config(8, 500)).collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a.len(), 500);
        assert_eq!(a.first().map(|c| c.number), Some(1));
        assert_eq!(a.last().map(|c| c.number), Some(500));
    }

    #[test]
    fn a_longer_run_extends_a_shorter_one() {
        let short: Vec<_> = cases(&config(3, 100)).collect();
        let long: Vec<_> = cases(&config(3, 200)).take(100).collect();
        assert_eq!(short, long);
    }

    /// Pins the stream: if this changes, every stored database and documented example changes.
    #[test]
    fn the_first_case_of_seed_1_is_pinned() {
        let first = cases(&config(1, 1)).next().unwrap();
        assert_eq!(
            (
                first.title.as_str(),
                first.owner_object_id.as_str(),
                first.status
            ),
            PINNED_FIRST_CASE
        );
    }
    const PINNED_FIRST_CASE: (&str, &str, &str) = (
        "Smart card denies access for remote users",
        "bob",
        "resolved",
    );

    #[test]
    fn owners_statuses_and_dates_are_spread() {
        let all: Vec<_> = cases(&config(1, 5_000)).collect();
        for owner in ["alice", "bob"] {
            let n = all.iter().filter(|c| c.owner_object_id == owner).count();
            assert!((2_000..3_000).contains(&n), "{owner}: {n}");
        }
        for status in STATUSES {
            assert!(all.iter().any(|c| c.status == status), "{status}");
        }
        assert!(
            all.iter()
                .all(|c| c.updated >= c.created && c.created >= EPOCH)
        );
        assert!(all.iter().all(|c| c.team_group_id
            == if c.owner_object_id == "alice" {
                "north"
            } else {
                "south"
            }));
    }

    #[test]
    fn no_owners_means_no_cases() {
        let empty = DataConfig {
            owners: Vec::new(),
            ..config(1, 10)
        };
        assert_eq!(cases(&empty).count(), 0);
    }
}
