//! Which gateways one `sync` covers, and how they are grouped for the work: the targets (the
//! command line's one, or the config file's `[[target]]` tables), the system units found for
//! their users, and the per-user groups a run works through (one process per user, since acting
//! as a user is for good). Pure: the lookups (users, system units) are done by the caller.
//!
//! Rules (README "Several gateways on a host"):
//! - a target with a unit syncs that unit: a unit of the system manager when the system manager
//!   has a gateway unit of that name whose `User=` is the target's user, else the user's own;
//! - a target without a unit syncs every gateway of its user: the user units found in the user's
//!   manager (inside the user's group, after dropping privileges) and the system units whose
//!   `User=` is the user;
//! - root's own target without a user (the default when root runs without `--user`) also covers
//!   every system gateway unit, each for its `User=`;
//! - the same unit of the same user named twice is synced once (the first target wins).

use crate::host::systemd::{FoundGateway, Manager};
use crate::openclaw::secret_ref::Delivery;
use std::path::PathBuf;

/// The secret a target applies: one GetSecretValue per distinct value.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SecretRef {
    pub secret_id: String,
    pub json_key: String,
    pub version_stage: String,
}

/// One `[[target]]` of the config file (or the command line's single target), layered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetSpec {
    pub user: Option<String>,
    pub home: Option<PathBuf>,
    /// `None`: every gateway of the user.
    pub unit: Option<String>,
    pub state_dir: Option<PathBuf>,
    pub secret: SecretRef,
    /// How the token reaches this target's gateways.
    pub delivery: Delivery,
}

/// What the caller looked up for a target: its user's name and uid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedUser {
    pub name: String,
    pub uid: u32,
}

/// One gateway (or, `unit: None`, "every user unit of the user") to sync inside a user's group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkItem {
    /// Index of the target it comes from.
    pub target: usize,
    pub manager: Manager,
    pub unit: Option<String>,
    pub secret: SecretRef,
    pub state_dir: Option<PathBuf>,
    pub delivery: Delivery,
}

/// Everything one user's process does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    /// Index of the first target of this user (its user and home are the group's), or
    /// `usize::MAX` for a system unit's user no target names (then `user` alone says who).
    pub target: usize,
    pub user: String,
    pub uid: u32,
    pub items: Vec<WorkItem>,
}

impl Group {
    /// Some unit of this group runs in the system manager (the process must keep root back).
    pub fn needs_root(&self) -> bool {
        self.items.iter().any(|i| i.manager == Manager::System)
    }
}

/// Groups the targets' gateways by user, in the order the targets came.
///
/// `users[i]` is target i's user; `system` the system manager's gateway units (empty when this
/// process is not root or there is no system manager); `root_default` says target 0 is root's
/// default target (root, no `--user`), which also covers every system gateway.
pub fn plan(
    specs: &[TargetSpec],
    users: &[ResolvedUser],
    system: &[(FoundGateway, Option<ResolvedUser>)],
    root_default: bool,
) -> Vec<Group> {
    let mut groups: Vec<Group> = Vec::new();
    let mut add = |who: &ResolvedUser, target: usize, item: WorkItem| {
        let uid = who.uid;
        let index = match groups.iter().position(|g| g.uid == uid) {
            Some(index) => index,
            None => {
                groups.push(Group {
                    target,
                    user: who.name.clone(),
                    uid,
                    items: Vec::new(),
                });
                groups.len() - 1
            }
        };
        let group = &mut groups[index];
        // The same unit (or "every gateway") of the same user twice: the first target wins, so a
        // gateway is never synced twice in a run with two secrets.
        let duplicate = group
            .items
            .iter()
            .any(|i| i.unit == item.unit && i.manager == item.manager);
        if !duplicate {
            group.items.push(item);
        }
    };
    for (index, (spec, user)) in specs.iter().zip(users).enumerate() {
        let runs_as = |found: &FoundGateway, by: &Option<ResolvedUser>| -> bool {
            found.user == user.name || by.as_ref().is_some_and(|u| u.uid == user.uid)
        };
        let item = |manager, unit: Option<String>| WorkItem {
            target: index,
            manager,
            unit,
            secret: spec.secret.clone(),
            state_dir: spec.state_dir.clone(),
            delivery: spec.delivery,
        };
        match &spec.unit {
            Some(unit) => {
                let manager = if system
                    .iter()
                    .any(|(found, by)| &found.unit == unit && runs_as(found, by))
                {
                    Manager::System
                } else {
                    Manager::User
                };
                add(user, index, item(manager, Some(unit.clone())));
            }
            None => {
                add(user, index, item(Manager::User, None));
                for (found, by) in system {
                    if runs_as(found, by) {
                        add(user, index, item(Manager::System, Some(found.unit.clone())));
                    } else if index == 0 && root_default {
                        if let Some(by) = by {
                            let mut other = item(Manager::System, Some(found.unit.clone()));
                            other.state_dir = None;
                            add(by, usize::MAX, other);
                        }
                    }
                }
            }
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(id: &str) -> SecretRef {
        SecretRef {
            secret_id: id.into(),
            json_key: "token".into(),
            version_stage: "AWSCURRENT".into(),
        }
    }

    fn spec(user: &str, unit: Option<&str>, id: &str) -> TargetSpec {
        TargetSpec {
            user: Some(user.into()),
            home: None,
            unit: unit.map(str::to_owned),
            state_dir: None,
            secret: secret(id),
            delivery: Delivery::Env,
        }
    }

    fn user(name: &str, uid: u32) -> ResolvedUser {
        ResolvedUser {
            name: name.into(),
            uid,
        }
    }

    fn system_unit(unit: &str, runs_as: &str, uid: u32) -> (FoundGateway, Option<ResolvedUser>) {
        (
            FoundGateway {
                unit: unit.into(),
                user: runs_as.into(),
            },
            Some(user(runs_as, uid)),
        )
    }

    #[test]
    fn a_user_without_a_unit_gets_its_user_units_and_its_system_units() {
        let system = [
            system_unit("openclaw-gateway.service", "alice", 1000),
            system_unit("openclaw-bob.service", "bob", 1001),
        ];
        let groups = plan(
            &[spec("alice", None, "s")],
            &[user("alice", 1000)],
            &system,
            false,
        );
        assert_eq!(groups.len(), 1);
        let items: Vec<_> = groups[0]
            .items
            .iter()
            .map(|i| (i.manager, i.unit.as_deref()))
            .collect();
        assert_eq!(
            items,
            [
                (Manager::User, None),
                (Manager::System, Some("openclaw-gateway.service"))
            ]
        );
        assert!(groups[0].needs_root());
    }

    #[test]
    fn a_named_unit_is_the_system_one_only_when_it_runs_as_the_user() {
        let system = [system_unit("openclaw-gateway.service", "bob", 1001)];
        let groups = plan(
            &[spec("alice", Some("openclaw-gateway.service"), "s")],
            &[user("alice", 1000)],
            &system,
            false,
        );
        assert_eq!(groups[0].items[0].manager, Manager::User);
        assert!(!groups[0].needs_root());
        let groups = plan(
            &[spec("bob", Some("openclaw-gateway.service"), "s")],
            &[user("bob", 1001)],
            &system,
            false,
        );
        assert_eq!(groups[0].items[0].manager, Manager::System);
    }

    #[test]
    fn targets_group_by_user_and_a_unit_named_twice_is_synced_once() {
        let specs = [
            spec("alice", Some("openclaw-gateway.service"), "one"),
            spec("bob", None, "two"),
            spec("alice", Some("openclaw-gateway.service"), "three"),
            spec("alice", Some("openclaw-gateway-work.service"), "two"),
        ];
        let users = [
            user("alice", 1000),
            user("bob", 1001),
            user("alice", 1000),
            user("alice", 1000),
        ];
        let groups = plan(&specs, &users, &[], false);
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0].uid, 1000);
        let alice: Vec<_> = groups[0]
            .items
            .iter()
            .map(|i| (i.unit.as_deref().unwrap(), i.secret.secret_id.as_str()))
            .collect();
        assert_eq!(
            alice,
            [
                ("openclaw-gateway.service", "one"),
                ("openclaw-gateway-work.service", "two")
            ]
        );
        assert_eq!(groups[1].uid, 1001);
    }

    #[test]
    fn root_s_default_target_covers_every_system_gateway_for_its_user() {
        let system = [system_unit("openclaw-gateway.service", "svc", 998)];
        let groups = plan(
            &[spec("root", None, "s")],
            &[user("root", 0)],
            &system,
            true,
        );
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[1].uid, 998);
        assert_eq!(groups[1].items[0].manager, Manager::System);
        // Without the default (root named explicitly), root's own gateways only.
        let groups = plan(
            &[spec("root", None, "s")],
            &[user("root", 0)],
            &system,
            false,
        );
        assert_eq!(groups.len(), 1);
    }
}
