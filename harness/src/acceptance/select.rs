//! Which scenarios a run executes: a cucumber tag expression and a deterministic shard.
//!
//! A shard is chosen from the scenario alone (feature file name, feature name, scenario name
//! and line), never from the order or the machine, so `--shard 1/3`, `2/3` and `3/3` on three
//! CI machines run every scenario exactly once. The examples of a Scenario Outline are
//! scenarios of their own (cucumber expands them before selection), each with its own line.

use std::fmt;
use std::str::FromStr;

use cucumber::gherkin::{self, tagexpr::TagOperation};
use cucumber::tag::Ext as _;

/// `K/N`: the K-th of N shards, 1-based.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: u64,
    pub count: u64,
}

impl FromStr for Shard {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("'{s}' is not a shard: expected K/N with 1 <= K <= N, e.g. 2/4");
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let index: u64 = k.trim().parse().map_err(|_| bad())?;
        let count: u64 = n.trim().parse().map_err(|_| bad())?;
        if index == 0 || count == 0 || index > count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// A parsed tag expression, kept with its text for messages and reports.
#[derive(Clone, Debug)]
pub struct Tags {
    pub text: String,
    op: TagOperation,
}

impl FromStr for Tags {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let op = s.parse::<TagOperation>().map_err(|e| {
            format!("'{s}' is not a tag expression ({e}); e.g. '@netns and not @slow'")
        })?;
        Ok(Tags {
            text: s.to_string(),
            op,
        })
    }
}

/// The run's selection; `selects` is the filter cucumber applies to each scenario.
#[derive(Clone, Debug, Default)]
pub struct Selection {
    pub tags: Option<Tags>,
    pub shard: Option<Shard>,
}

impl Selection {
    pub fn selects(
        &self,
        feature: &gherkin::Feature,
        rule: Option<&gherkin::Rule>,
        scenario: &gherkin::Scenario,
    ) -> bool {
        // Tags inherit: feature, then rule, then scenario (with its Examples' tags).
        let tagged = self.tags.as_ref().is_none_or(|t| {
            t.op.eval(
                feature
                    .tags
                    .iter()
                    .chain(rule.iter().flat_map(|r| &r.tags))
                    .chain(scenario.tags.iter()),
            )
        });
        tagged
            && self
                .shard
                .is_none_or(|s| shard_of(feature, scenario, s.count) + 1 == s.index)
    }
}

/// The 0-based shard of a scenario among `count`: FNV-1a of a key that names it, so the
/// split depends on nothing but the scenario (not the Rust version's hasher).
pub fn shard_of(feature: &gherkin::Feature, scenario: &gherkin::Scenario, count: u64) -> u64 {
    let file = feature
        .path
        .as_ref()
        .and_then(|p| p.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let key = format!(
        "{file}\n{}\n{}\n{}",
        feature.name, scenario.name, scenario.position.line
    );
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.bytes() {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash % count
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_parse_and_refuse_nonsense() {
        assert_eq!("2/4".parse::<Shard>(), Ok(Shard { index: 2, count: 4 }));
        for bad in ["0/3", "4/3", "1/0", "x/2", "3", ""] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
    }

    #[test]
    fn tag_expressions_parse_and_refuse_nonsense() {
        assert!("@netns and not @slow".parse::<Tags>().is_ok());
        assert!("@a and".parse::<Tags>().is_err());
    }
}
