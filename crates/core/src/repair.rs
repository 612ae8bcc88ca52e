//! The repair plan: which `django_migrations` rows to insert or delete, decided entirely from
//! an [`Evaluation`] before anything is written.
//!
//! Rules (evidence-gated; see the README):
//! - `recorded_missing` → delete the row (fake-rewind), together with every recorded migration
//!   that depends on it, directly or not, when none of those has an effect present; if one has,
//!   the whole rewind is refused, naming it;
//! - `unrecorded_present` → insert the row (fake-apply) when each dependency is recorded after
//!   the plan; otherwise refuse, naming the dependency;
//! - `half_applied` → fake-apply if unrecorded (same dependency rule), and always a warning:
//!   something is missing and only a human can recover it;
//! - `inconsistent_history` → refused: nothing in the catalog proves the dependency ran;
//! - `orphan_record` → nothing.
//!
//! A squashed migration's row comes with the rows of the migrations it replaces, as Django's
//! executor writes them.

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use crate::evaluate::{Evaluation, State, Verdict};
use crate::manifest::Manifest;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    FakeApply,
    FakeRewind,
    Warn,
    Refuse,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::FakeApply => "fake_apply",
            Action::FakeRewind => "fake_rewind",
            Action::Warn => "warn",
            Action::Refuse => "refuse",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    pub action: Action,
    pub app: String,
    pub name: String,
    pub reason: String,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Every decision, in graph order.
    pub steps: Vec<Step>,
    /// Rows to insert, as (app, name).
    pub insert: Vec<(String, String)>,
    /// Rows to delete, as (app, name).
    pub delete: Vec<(String, String)>,
}

impl Plan {
    pub fn writes(&self) -> bool {
        !self.insert.is_empty() || !self.delete.is_empty()
    }
}

pub fn plan(manifest: &Manifest, evaluation: &Evaluation) -> Plan {
    let verdicts = &evaluation.migrations;
    let count = verdicts.len();
    let index: HashMap<(&str, &str), usize> = manifest
        .migrations
        .iter()
        .enumerate()
        .map(|(i, m)| ((m.app.as_str(), m.name.as_str()), i))
        .collect();
    let deps: Vec<Vec<usize>> = manifest
        .migrations
        .iter()
        .map(|m| {
            m.dependencies
                .iter()
                .map(|(a, n)| index[&(a.as_str(), n.as_str())])
                .collect()
        })
        .collect();
    let mut dependents: Vec<Vec<usize>> = vec![vec![]; count];
    for (i, ds) in deps.iter().enumerate() {
        for &d in ds {
            dependents[d].push(i);
        }
    }
    let key = |i: usize| format!("{}.{}", verdicts[i].app, verdicts[i].name);

    let mut recorded: Vec<bool> = verdicts.iter().map(|v| v.recorded).collect();
    let mut steps: Vec<(usize, Step)> = vec![];
    let step = |i: usize, action: Action, reason: String| {
        (
            i,
            Step {
                action,
                app: verdicts[i].app.clone(),
                name: verdicts[i].name.clone(),
                reason,
            },
        )
    };

    // Rewinds first: a fake-apply must see the history as it will be after them.
    let mut rewound: HashSet<usize> = HashSet::new();
    for i in 0..count {
        if verdicts[i].state != State::RecordedMissing || rewound.contains(&i) {
            continue;
        }
        let closure = recorded_dependents(i, &dependents, &recorded);
        let blocker = closure.iter().copied().find(|&d| verdicts[d].present > 0);
        if let Some(blocker) = blocker {
            steps.push(step(
                i,
                Action::Refuse,
                format!(
                    "{}; rewinding it would also rewind {}, whose effects are present ({})",
                    verdicts[i].detail,
                    key(blocker),
                    present_objects(&verdicts[blocker])
                ),
            ));
            continue;
        }
        steps.push(step(
            i,
            Action::FakeRewind,
            format!("{}; migrate will apply it again", verdicts[i].detail),
        ));
        rewound.insert(i);
        for d in closure {
            if rewound.insert(d) {
                steps.push(step(
                    d,
                    Action::FakeRewind,
                    format!(
                        "depends on {}, which is rewound, and none of its effects is present",
                        key(i)
                    ),
                ));
            }
        }
    }
    for &i in &rewound {
        recorded[i] = false;
    }

    // Fake-applies in graph order, so a dependency is decided before its dependents.
    for i in 0..count {
        let verdict = &verdicts[i];
        let unrecorded_evidence = !verdict.recorded
            && matches!(verdict.state, State::UnrecordedPresent | State::HalfApplied);
        if unrecorded_evidence {
            match deps[i].iter().copied().find(|&d| !recorded[d]) {
                Some(d) => steps.push(step(
                    i,
                    Action::Refuse,
                    format!(
                        "{}; but it depends on {}, which is neither recorded nor proven present",
                        verdict.detail,
                        key(d)
                    ),
                )),
                None => {
                    recorded[i] = true;
                    steps.push(step(i, Action::FakeApply, verdict.detail.clone()));
                }
            }
        }
        match verdict.state {
            // The detail already says what is missing and that a human must recover it.
            State::HalfApplied => steps.push(step(i, Action::Warn, verdict.detail.clone())),
            State::InconsistentHistory => steps.push(step(
                i,
                Action::Refuse,
                format!(
                    "{}; nothing in the catalog proves that it ran. If it did, record it with \
                     `manage.py migrate <app> <migration> --fake`",
                    verdict.detail
                ),
            )),
            _ => {}
        }
    }
    // Graph order, and for one migration: writes before warnings and refusals.
    steps.sort_by_key(|(i, s)| (*i, s.action as u8));

    let mut plan = Plan::default();
    for (i, s) in steps {
        let migration = &manifest.migrations[i];
        let rows = std::iter::once((migration.app.clone(), migration.name.clone()))
            .chain(migration.replaces.iter().cloned());
        match s.action {
            Action::FakeApply => plan.insert.extend(rows),
            Action::FakeRewind => plan.delete.extend(rows),
            Action::Warn | Action::Refuse => {}
        }
        plan.steps.push(s);
    }
    plan
}

/// The companion step: fake-apply each unrecorded migration of a companion app (every operation
/// claimed by a fake detector) whose effects are all present, when its dependencies are recorded.
/// Nothing else: other drift is left to `repair`.
pub fn plan_companions(manifest: &Manifest, evaluation: &Evaluation) -> Plan {
    let index: HashMap<(&str, &str), usize> = manifest
        .migrations
        .iter()
        .enumerate()
        .map(|(i, m)| ((m.app.as_str(), m.name.as_str()), i))
        .collect();
    let mut recorded: Vec<bool> = evaluation.migrations.iter().map(|v| v.recorded).collect();
    let mut plan = Plan::default();
    for (i, (migration, verdict)) in manifest
        .migrations
        .iter()
        .zip(&evaluation.migrations)
        .enumerate()
    {
        if !migration.companion || verdict.state != State::UnrecordedPresent {
            continue;
        }
        let unmet = migration
            .dependencies
            .iter()
            .find(|(a, n)| !recorded[index[&(a.as_str(), n.as_str())]]);
        let step = |action, reason| Step {
            action,
            app: migration.app.clone(),
            name: migration.name.clone(),
            reason,
        };
        match unmet {
            Some((a, n)) => plan.steps.push(step(
                Action::Refuse,
                format!("companion migration, but its dependency {a}.{n} is not recorded"),
            )),
            None => {
                recorded[i] = true;
                plan.insert
                    .push((migration.app.clone(), migration.name.clone()));
                plan.insert.extend(migration.replaces.iter().cloned());
                plan.steps.push(step(
                    Action::FakeApply,
                    format!(
                        "companion migration (every operation claimed by a fake detector); {}",
                        verdict.detail
                    ),
                ));
            }
        }
    }
    plan
}

/// Every recorded migration that depends on `root`, directly or through others.
fn recorded_dependents(root: usize, dependents: &[Vec<usize>], recorded: &[bool]) -> Vec<usize> {
    let mut seen = HashSet::new();
    let mut stack = vec![root];
    let mut found = vec![];
    while let Some(i) = stack.pop() {
        for &d in &dependents[i] {
            if recorded[d] && seen.insert(d) {
                found.push(d);
                stack.push(d);
            }
        }
    }
    found.sort_unstable();
    found
}

fn present_objects(verdict: &Verdict) -> String {
    let names: Vec<&str> = verdict
        .objects
        .iter()
        .filter(|c| c.ok)
        .map(|c| c.name.as_str())
        .take(3)
        .collect();
    names.join(", ")
}

#[cfg(test)]
mod tests;
