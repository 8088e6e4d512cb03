//! Network security groups: each rule parses into a [`Rule`] (whose errors carry Azure's codes
//! and texts), and no two rules of one direction share a priority.

use std::collections::HashMap;

use super::Findings;
use crate::fabric::nsg::{PRIORITIES, Rule, RuleError};
use crate::scenario::model::*;

pub(super) fn check(s: &Scenario, f: &mut Findings) {
    for (i, n) in s.nsgs.iter().enumerate() {
        let mut by_priority: HashMap<(Direction, u32), &str> = HashMap::new();
        for (j, r) in n.rules.iter().enumerate() {
            let mut errors = Rule::parse(r).err().unwrap_or_default();
            // A priority out of range is reported instead of a conflict, and a conflict where
            // the priority error would stand: ahead of the rule's other errors.
            let conflict = PRIORITIES
                .contains(&r.priority)
                .then(|| by_priority.insert((r.direction, r.priority), r.name.as_str()))
                .flatten();
            if let Some(other) = conflict {
                errors.insert(0, RuleError::conflict(&r.name, other));
            }
            for e in errors {
                f.add(
                    e.code,
                    format!("nsgs[{i}].rules[{j}].{}", e.field),
                    e.message,
                );
            }
        }
    }
}
