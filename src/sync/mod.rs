//! `sync`, in the order DESIGN.md section 2 fixes, as one pass of gather → decide → apply →
//! report: lock → one GetSecretValue → validate → plan (`plan`: desired files and store edits
//! next to what is on disk) → the facts (plan, state file, `restart-pending` marker, store
//! cleanings of this version, and, only when the decision needs it, the unit and what systemd
//! would hand it) → one [`decide::Action`] (`decide`, pure and table-tested) → `apply` (the only
//! side effects) → prove through the gateway's own RPC that its agents use the token, with a live
//! probe (`openclaw::proof`) → write the state file only when everything succeeded → `report`.
//!
//! The rules the decision follows are in `decide`'s docs and the README's "Decisions"; what is
//! decided here, around the action:
//! - `daemon-reload` runs after the drop-in is written (it must see the new file), before start.
//! - Once the gateway was stopped it is always started again, even when a write failed; the run
//!   then exits 1 without writing the state, so the next run retries.
//! - A store that cannot be read, understood or written is left untouched and reported; the rest
//!   of the run goes on, the exit code is 1 and the state is not written (DESIGN.md 2.7).
//! - Store entries cleaned before a restart are recorded (`store-cleanings.json`) before the
//!   stop; entries that are back right after the start, or on a later run of the same version,
//!   are reported with what probably re-creates them and are not restarted for again.

pub mod apply;
pub mod by_reference;
pub(crate) mod containers;
pub mod decide;
pub mod facts;
pub mod in_container;
pub mod outcome;
pub mod plan;
pub(crate) mod quadlets;
pub mod report;
pub mod targets;
mod workers;

pub use report::{
    FileReport, GatewayAction, GatewayReport, Outcome, SecretReport, StoreReport, SyncReport,
};

use crate::aws::{self, AwsSettings};
use crate::error::{Error, Result};
use crate::host::fsutil;
use crate::host::locks::{self, Lock};
use crate::host::managed_files::ManagedPaths;
use crate::host::privileges::{self, TargetUser};
use crate::host::state::{self, AppliedState, GatewayOutcome};
use crate::host::systemd::{
    Expectation, FoundGateway, Manager, Systemctl, UnitStatus, VerifyLimits,
};
use crate::openclaw::discovery::Memo;
use crate::openclaw::proof::{self, ProofOptions};
pub use crate::openclaw::secret_ref::Delivery;
use crate::openclaw::state_dir::StateDir;
use crate::openclaw::stores::document::ProfileSelector;
use apply::{Applier, Running, StoreResults};
use decide::Action;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
pub use targets::{ResolvedUser, SecretRef, TargetSpec};

/// Everything `sync` needs, after flags, environment and config file were layered.
#[derive(Clone, Debug)]
pub struct SyncOptions {
    pub secret_id: String,
    pub json_key: String,
    pub user: Option<String>,
    pub home: Option<PathBuf>,
    pub unit: String,
    pub state_dir: Option<PathBuf>,
    pub profile_ids: Option<Vec<String>>,
    pub shell_profile: bool,
    pub dry_run: bool,
    pub force: bool,
    pub no_restart: bool,
    /// After applying, prove with a live request that Anthropic accepts the token.
    pub probe: bool,
    /// Where a direct probe goes instead of the gateway's configured `baseUrl`.
    pub anthropic_base_url: Option<String>,
    /// The staging label whose version is applied (AWSCURRENT unless a canary).
    pub version_stage: String,
    /// No unit was named: sync every OpenClaw gateway unit of the user (`unit` when none is
    /// found).
    pub discover: bool,
    /// The config file's `[[target]]`s, layered and selected (empty: the fields above are the
    /// one target).
    pub targets: Vec<TargetSpec>,
    pub lock_timeout: Duration,
    pub verify: VerifyLimits,
    /// How long one user's worker may take in a run over several users (then it is killed).
    pub user_timeout: Duration,
    pub aws: AwsSettings,
    /// How the token reaches the gateway (`--delivery`).
    pub delivery: Delivery,
    /// In `secret-ref` delivery, a reload that fails (after the file went back to the last good
    /// token) may restart the gateway to apply the new one (`--restart-fallback`).
    pub restart_fallback: bool,
    /// `--container`: only these container gateways (none: every one, beside the systemd ones).
    pub containers: Vec<String>,
}

/// How long the check of a new token before it is applied may take.
pub(super) const PRE_PROBE_TIMEOUT: Duration = Duration::from_secs(30);

/// What one `sync` did: one entry per gateway, in the order they were found.
#[derive(Debug)]
pub struct SyncRun {
    pub gateways: Vec<GatewayRun>,
}

/// The unit name of a failure that stands for all of a user's gateways (the user's worker
/// failed before it could name them).
pub const EVERY_GATEWAY_OF_THE_USER: &str = "(every gateway of the user)";

/// One gateway's outcome.
#[derive(Debug)]
pub struct GatewayRun {
    pub user: String,
    pub unit: String,
    pub result: Result<SyncReport>,
}

impl SyncRun {
    /// The worst of the gateways' exit codes.
    pub fn exit_code(&self) -> u8 {
        self.gateways
            .iter()
            .map(|run| match &run.result {
                Ok(report) => report.exit_code(),
                Err(err) => err.exit_code(),
            })
            .max()
            .unwrap_or(0)
    }
}

impl SyncOptions {
    /// The bound on a run that root runs in a child process (to write its metrics afterwards)
    /// once that child acts as a user: the lock wait, one user's bound, and a minute to spare. A
    /// run with one user drops to that user in the child, where the user can stop it; past this
    /// bound root kills it and reports. A run over several users stays root in that child, each
    /// user in a worker with its own bound, and is waited for (`crate::host::forked`).
    pub fn whole_run_limit(&self) -> Duration {
        self.lock_timeout + self.user_timeout + Duration::from_secs(60)
    }

    /// The config file's targets, or the command line's one.
    pub fn target_specs(&self) -> Vec<TargetSpec> {
        if !self.targets.is_empty() {
            return self.targets.clone();
        }
        vec![TargetSpec {
            user: self.user.clone(),
            home: self.home.clone(),
            unit: (!self.discover).then(|| self.unit.clone()),
            state_dir: self.state_dir.clone(),
            secret: SecretRef {
                secret_id: self.secret_id.clone(),
                json_key: self.json_key.clone(),
                version_stage: self.version_stage.clone(),
            },
            delivery: self.delivery,
        }]
    }
}

/// Fetched secrets by reference; a failed fetch keeps its message and exit code for every
/// gateway that needed it.
type Secrets = BTreeMap<SecretRef, std::result::Result<aws::FetchedSecret, (String, u8)>>;

/// Runs a sync (`targets` has the rules): resolves the targets' users, finds the system
/// manager's gateway units (as root), groups the gateways by user, fetches each distinct secret
/// once, then syncs each user's gateways as that user. One user: in this process, its single
/// gateway's error being the run's error, as it always was. Several users (root): one child
/// process per user; a gateway that fails does not stop the others and the exit code is the
/// worst.
pub fn run(options: &SyncOptions) -> Result<SyncRun> {
    let root = nix::unistd::geteuid().is_root();
    let containers = containers::selected(options, root)?;
    let mut prefetched = Secrets::new();
    let mut container_runs = Vec::new();
    if let Some((docker, gateways)) = &containers {
        let secret = containers::default_secret(options);
        let (runtime, configs) = aws_configs(options, std::slice::from_ref(&secret), false)?;
        prefetched = fetch(
            &runtime,
            &configs,
            std::slice::from_ref(&secret),
            Secrets::new(),
        );
        drop(runtime);
        // One run at a time restarts a container (the lock is let go before the systemd part,
        // which takes its own: a second flock of the same file in this process would wait on
        // itself).
        let lock = match options.dry_run {
            true => None,
            false => Some(locks::root_lock("sync.lock", options.lock_timeout)?),
        };
        container_runs = containers::sync_all(options, docker, gateways, &prefetched);
        drop(lock);
    }
    if !containers::systemd_part_wanted(options, containers.as_ref()) {
        return Ok(SyncRun {
            gateways: container_runs,
        });
    }
    let run = systemd_run(options, prefetched);
    if container_runs.is_empty() {
        return run;
    }
    let default_selection =
        options.user.is_none() && options.targets.is_empty() && options.discover;
    let mut gateways = container_runs;
    gateways.extend(beside_containers(
        run,
        default_selection,
        options.user.as_deref().unwrap_or("root"),
    ));
    Ok(SyncRun { gateways })
}

/// The systemd part's gateways on a host that also has container gateways. Root's default run
/// there does not fail for "no gateway unit here" (a usage error: the default unit does not
/// exist) or "no manager of root's to ask"; any other failure is kept.
fn beside_containers(run: Result<SyncRun>, default_selection: bool, user: &str) -> Vec<GatewayRun> {
    let nothing_here =
        |err: &Error| default_selection && matches!(err, Error::Config(_) | Error::Systemd(_));
    match run {
        Ok(run) => run
            .gateways
            .into_iter()
            .filter(|g| !matches!(&g.result, Err(err) if nothing_here(err)))
            .collect(),
        Err(err) if nothing_here(&err) => {
            tracing::info!(error = %err, "no systemd gateway beside the containers");
            Vec::new()
        }
        Err(err) => vec![every_gateway_failed(user, err)],
    }
}

/// [`run`] for the systemd gateways, with the secrets root already fetched for containers.
fn systemd_run(options: &SyncOptions, prefetched: Secrets) -> Result<SyncRun> {
    let specs = options.target_specs();
    let users = specs
        .iter()
        .map(|spec| privileges::resolve(spec.user.as_deref(), spec.home.as_deref()))
        .collect::<Result<Vec<_>>>()?;
    let root = nix::unistd::geteuid().is_root();
    // Root's own memo of the system manager's gateways, in root's run directory (no user can
    // write there).
    let mut system_memo = match root {
        true => Memo::load(
            locks::run_dir()
                .ok()
                .map(|dir| dir.join("system-gateways.json")),
            options.force,
        ),
        false => Memo::none(),
    };
    let system = if root && crate::host::systemd::system_manager_present() {
        system_gateways(&users[0], &mut system_memo)
    } else {
        Vec::new()
    };
    if !options.dry_run {
        // Now: a run for one user's own units drops root for good.
        system_memo.save();
    }
    let run = run_groups(options, &specs, &users, &system, prefetched);
    let changed_world = match &run {
        Ok(run) => !all_unchanged(&run.gateways),
        Err(_) => true,
    };
    // Still (or again) root: a system unit's drop-in written, or one restarted.
    if root && !options.dry_run && changed_world && nix::unistd::getuid().is_root() {
        let _ = privileges::as_root(|| {
            system_memo.refresh(&Systemctl::system(users[0].clone()));
            system_memo.save();
            Ok(())
        });
    }
    run
}

/// [`run`] once the system manager's gateways are known.
fn run_groups(
    options: &SyncOptions,
    specs: &[TargetSpec],
    users: &[TargetUser],
    system: &[(FoundGateway, Option<ResolvedUser>)],
    prefetched: Secrets,
) -> Result<SyncRun> {
    let root = nix::unistd::geteuid().is_root();
    let resolved: Vec<ResolvedUser> = users
        .iter()
        .map(|u| ResolvedUser {
            name: u.name.clone(),
            uid: u.uid,
        })
        .collect();
    let root_default =
        root && options.targets.is_empty() && options.user.is_none() && users[0].uid == 0;
    let groups = targets::plan(specs, &resolved, system, root_default);
    if let [group] = groups.as_slice() {
        return run_one_user(options, group, &group_user(users, group)?, prefetched);
    }
    run_user_workers(options, &groups, users, root_default, prefetched)
}

/// The user a group runs as: its target's, or the user a system unit names.
fn group_user(users: &[TargetUser], group: &targets::Group) -> Result<TargetUser> {
    match users.get(group.target) {
        Some(user) => Ok(user.clone()),
        None => privileges::resolve(Some(&group.user), None),
    }
}

/// Becomes the group's user: acting as it when its units need root, dropping to it otherwise.
fn enter_user(group: &targets::Group, target: &TargetUser) -> Result<()> {
    if group.needs_root() {
        privileges::act_as(target)
    } else {
        privileges::drop_to(target)
    }
}

/// A failure that stands for every gateway of the user.
fn every_gateway_failed(user: &str, err: Error) -> GatewayRun {
    GatewayRun {
        user: user.to_owned(),
        unit: EVERY_GATEWAY_OF_THE_USER.to_owned(),
        result: Err(err),
    }
}

/// One user: in this process, as that user; a single gateway's error is the run's error.
fn run_one_user(
    options: &SyncOptions,
    group: &targets::Group,
    target: &TargetUser,
    prefetched: Secrets,
) -> Result<SyncRun> {
    let secrets = secret_refs(group);
    let (runtime, configs) = aws_configs(options, &secrets, privileges::must_drop(target))?;
    enter_user(group, target)?;
    manager_listening(options, group, target)?;
    let _lock = lock_user(options, target)?;
    let fetched = fetch(&runtime, &configs, &secrets, prefetched);
    drop(runtime);
    if let [(_, Err((message, code)))] = fetched.iter().collect::<Vec<_>>().as_slice() {
        return Err(Error::Reported {
            message: message.clone(),
            exit_code: *code,
        });
    }
    let mut gateways = run_group(options, group, target, &fetched, true)?;
    if let [only] = gateways.as_mut_slice() {
        if only.result.is_err() {
            let only = gateways.pop().expect("one gateway");
            return Err(only.result.expect_err("an error"));
        }
    }
    Ok(SyncRun { gateways })
}

/// Several users: this root process fetches every secret once, then one child per user.
fn run_user_workers(
    options: &SyncOptions,
    groups: &[targets::Group],
    users: &[TargetUser],
    root_default: bool,
    prefetched: Secrets,
) -> Result<SyncRun> {
    let root = nix::unistd::geteuid().is_root();
    let run_lock = if options.dry_run || !root {
        None
    } else {
        Some(locks::root_lock("sync.lock", options.lock_timeout)?)
    };
    let secrets: Vec<SecretRef> = {
        let mut all: Vec<SecretRef> = groups.iter().flat_map(secret_refs).collect();
        all.sort();
        all.dedup();
        all
    };
    let (runtime, configs) = aws_configs(options, &secrets, false)?;
    let mut fetched = fetch(&runtime, &configs, &secrets, prefetched);
    drop(runtime);
    let mut gateways = Vec::new();
    for group in groups {
        let target = match group_user(users, group) {
            Ok(target) => target,
            Err(err) => {
                gateways.push(every_gateway_failed(&group.user, err));
                continue;
            }
        };
        let runs = workers::in_child(&target.name, options.user_timeout, || {
            sync_in_worker(
                options,
                group,
                &target,
                &mut fetched,
                run_lock.as_ref(),
                root_default,
            )
        })?;
        gateways.extend(runs);
    }
    Ok(SyncRun { gateways })
}

/// A user's worker, in its child process: becomes the user, takes the user's lock and syncs the
/// group; a failure before the gateways are named stands for all of them.
fn sync_in_worker(
    options: &SyncOptions,
    group: &targets::Group,
    target: &TargetUser,
    fetched: &mut Secrets,
    run_lock: Option<&Lock>,
    root_default: bool,
) -> Vec<GatewayRun> {
    // The worker goes on as the user: it keeps only its own secrets (the others are
    // zeroized in its copy of memory) and no descriptor of root's lock.
    let own = secret_refs(group);
    fetched.retain(|secret, _| own.contains(secret));
    if let Some(lock) = run_lock {
        lock.forget_in_child();
    }
    let result = enter_user(group, target)
        .and_then(|()| manager_listening(options, group, target))
        .and_then(|()| lock_user(options, target))
        .and_then(|lock| {
            // Root's own default target next to system gateways: root's user units
            // only when there are some (no phantom default unit for root).
            let fallback = !(root_default && group.uid == 0);
            let runs = run_group(options, group, target, fetched, fallback);
            drop(lock);
            runs
        });
    result.unwrap_or_else(|err| vec![every_gateway_failed(&target.name, err)])
}

/// The system manager's OpenClaw gateway units with the users they run as; none when there is
/// no system manager to ask.
fn system_gateways(
    any_user: &TargetUser,
    memo: &mut Memo,
) -> Vec<(FoundGateway, Option<ResolvedUser>)> {
    match memo.gateways(&Systemctl::system(any_user.clone())) {
        Ok(found) => found
            .into_iter()
            .filter(|g| !g.user.is_empty() && g.user != "root")
            .map(|g| {
                let by = nix::unistd::User::from_name(&g.user)
                    .ok()
                    .flatten()
                    .map(|u| ResolvedUser {
                        name: u.name,
                        uid: u.uid.as_raw(),
                    });
                (g, by)
            })
            .collect(),
        Err(err) => {
            tracing::debug!(error = %err, "no system manager gateways");
            Vec::new()
        }
    }
}

fn secret_refs(group: &targets::Group) -> Vec<SecretRef> {
    let mut refs: Vec<SecretRef> = group.items.iter().map(|i| i.secret.clone()).collect();
    refs.sort();
    refs.dedup();
    refs
}

/// The AWS client configuration for each secret (its region may come from its ARN), loaded
/// while still root; `freeze` pins the credentials (root's `~/.aws` is unreadable afterwards).
fn aws_configs(
    options: &SyncOptions,
    secrets: &[SecretRef],
    freeze: bool,
) -> Result<(tokio::runtime::Runtime, Vec<aws_config::SdkConfig>)> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::failed(format!("cannot start the async runtime: {e}")))?;
    let mut configs = Vec::new();
    for secret in secrets {
        let mut config =
            runtime.block_on(aws::load_config(&options.aws, &secret.secret_id, true))?;
        if freeze {
            config = runtime.block_on(aws::freeze_credentials(config))?;
        }
        configs.push(config);
    }
    Ok((runtime, configs))
}

/// One GetSecretValue per secret (none for a secret `prefetched` already holds: root fetched it
/// for the container gateways).
fn fetch(
    runtime: &tokio::runtime::Runtime,
    configs: &[aws_config::SdkConfig],
    secrets: &[SecretRef],
    mut prefetched: Secrets,
) -> Secrets {
    secrets
        .iter()
        .zip(configs)
        .map(|(secret, config)| {
            if let Some((secret, fetched)) = prefetched.remove_entry(secret) {
                return (secret, fetched);
            }
            let fetched = runtime
                .block_on(aws::fetch_secret(
                    config,
                    &secret.secret_id,
                    &secret.json_key,
                    &secret.version_stage,
                ))
                .map_err(|e| (e.message(), e.exit_code()));
            (secret.clone(), fetched)
        })
        .collect()
}

/// The user's run lock (none for a dry run, which changes nothing).
/// A user whose gateways are all their manager's, and whose manager has no bus to ask, fails
/// here with the manager's hint, before anything is written (the run lock included). Costs no
/// process when the bus is there (the no-op's case); `--no-restart` and `--dry-run` go on
/// without a manager.
fn manager_listening(
    options: &SyncOptions,
    group: &targets::Group,
    target: &TargetUser,
) -> Result<()> {
    let only_user_units = group.items.iter().all(|i| i.manager == Manager::User);
    let bus = PathBuf::from(format!("/run/user/{}/bus", target.uid));
    if options.no_restart || options.dry_run || !only_user_units || bus.exists() {
        return Ok(());
    }
    Systemctl::new(target.clone()).manager_reachable()
}

fn lock_user(options: &SyncOptions, target: &TargetUser) -> Result<Option<Lock>> {
    if options.dry_run {
        return Ok(None);
    }
    let own_state = ManagedPaths::new(&target.home, &options.unit, &target.home).state_dir;
    fsutil::ensure_dir(&own_state, true)?;
    locks::file_lock(&own_state.join("lock"), options.lock_timeout).map(Some)
}

/// Syncs one user's gateways (already acting as the user, the lock held): the units its items
/// name, and for an item without a unit every gateway unit of the user's manager
/// (`Systemctl::gateways`; the default unit when none is found and the user has no other).
fn run_group(
    options: &SyncOptions,
    group: &targets::Group,
    target: &TargetUser,
    secrets: &Secrets,
    fallback: bool,
) -> Result<Vec<GatewayRun>> {
    let named: Vec<&str> = group
        .items
        .iter()
        .filter(|i| i.manager == Manager::User)
        .filter_map(|i| i.unit.as_deref())
        .collect();
    let mut gateways = Vec::new();
    let mut memos = load_memos(options, target);
    let quadlets = match group.items.iter().any(|i| i.manager == Manager::User) {
        true => quadlets::found(
            target,
            &Systemctl::for_manager(target.clone(), Manager::User),
        ),
        false => quadlets::Found::default(),
    };
    for item in &group.items {
        let systemctl = Systemctl::for_manager(target.clone(), item.manager);
        let memo = &mut memos
            .iter_mut()
            .find(|(manager, _)| *manager == item.manager)
            .expect("a memo per manager")
            .1;
        let item_quadlets = quadlets_of(item, &quadlets.gateways, &named);
        // The default unit stands in for a user's only item with no gateway at all.
        let only_item = group.items.len() == 1 && fallback && item_quadlets.is_empty();
        let units = match item_units(options, item, target, &systemctl, memo, &named, only_item)
            .and_then(|units| not_quadlet_units(item, units, &quadlets))
        {
            Ok(units) => units,
            Err(err) => {
                let unit = item
                    .unit
                    .clone()
                    .unwrap_or(EVERY_GATEWAY_OF_THE_USER.to_owned());
                gateways.push(GatewayRun {
                    user: target.name.clone(),
                    unit,
                    result: Err(err),
                });
                continue;
            }
        };
        let secret = match secrets.get(&item.secret) {
            Some(Ok(secret)) => secret,
            Some(Err((message, code))) => {
                let labels = item_quadlets.iter().map(|q| q.gateway.label());
                for unit in units.into_iter().chain(labels) {
                    gateways.push(GatewayRun {
                        user: target.name.clone(),
                        unit,
                        result: Err(Error::Reported {
                            message: message.clone(),
                            exit_code: *code,
                        }),
                    });
                }
                continue;
            }
            None => return Err(Error::failed("internal error: a secret was not fetched")),
        };
        gateways.extend(sync_item_units(
            options, item, target, &systemctl, memo, secret, units,
        )?);
        let item_options = SyncOptions {
            delivery: item.delivery,
            ..options.clone()
        };
        gateways.extend(quadlets::sync_all(
            &item_options,
            target,
            &systemctl,
            &item_quadlets,
            secret,
        ));
    }
    save_memos(options, target, &gateways, &mut memos);
    Ok(gateways)
}

/// The systemd units of an item: the one it names, or those discovery finds (the default unit
/// when none is found and `only_item`).
fn item_units(
    options: &SyncOptions,
    item: &targets::WorkItem,
    target: &TargetUser,
    systemctl: &Systemctl,
    memo: &mut Memo,
    named: &[&str],
    only_item: bool,
) -> Result<Vec<String>> {
    match &item.unit {
        Some(unit) => Ok(vec![unit.clone()]),
        None => discovered_units(options, target, systemctl, memo, named, only_item),
    }
}

/// `units` without those a Quadlet file makes: a Quadlet gateway's unit is synced as a Quadlet;
/// a named unit from a Quadlet file that is no gateway of ours is refused, never written a
/// drop-in for.
fn not_quadlet_units(
    item: &targets::WorkItem,
    units: Vec<String>,
    found: &quadlets::Found,
) -> Result<Vec<String>> {
    if item.manager != Manager::User {
        return Ok(units);
    }
    if let Some(unit) = &item.unit {
        if let Some((_, file)) = found.others.iter().find(|(u, _)| u == unit) {
            return Err(quadlets::not_a_gateway(unit, file));
        }
    }
    let from_quadlet = |unit: &String| {
        found
            .gateways
            .iter()
            .any(|q| q.gateway.unit.as_ref() == Some(unit))
    };
    Ok(units.into_iter().filter(|u| !from_quadlet(u)).collect())
}

/// The Quadlet gateways an item of the user's manager syncs: the one its unit names, or (no
/// unit) every one no other item names.
fn quadlets_of(
    item: &targets::WorkItem,
    quadlets: &[quadlets::QuadletGateway],
    named: &[&str],
) -> Vec<quadlets::QuadletGateway> {
    if item.manager != Manager::User {
        return Vec::new();
    }
    let unit_of = |q: &quadlets::QuadletGateway| q.gateway.unit.clone().unwrap_or_default();
    quadlets
        .iter()
        .filter(|q| match &item.unit {
            Some(unit) => unit_of(q) == *unit,
            None => !named.contains(&unit_of(q).as_str()),
        })
        .cloned()
        .collect()
}

/// The user's memos of gateway discovery, one per manager.
fn load_memos(options: &SyncOptions, target: &TargetUser) -> [(Manager, Memo); 2] {
    let own_state = ManagedPaths::new(&target.home, &options.unit, &target.home).state_dir;
    [Manager::User, Manager::System].map(|manager| {
        let name = match manager {
            Manager::User => "discovery-user.json",
            Manager::System => "discovery-system.json",
        };
        (
            manager,
            Memo::load(Some(own_state.join(name)), options.force),
        )
    })
}

/// Saves the memos (refreshed first when the run changed something). A failed run writes
/// nothing of ours either (the memo included): a rejected token leaves every file as it was.
fn save_memos(
    options: &SyncOptions,
    target: &TargetUser,
    gateways: &[GatewayRun],
    memos: &mut [(Manager, Memo); 2],
) {
    if !options.dry_run && gateways.iter().all(|g| g.result.is_ok()) {
        let changed_world = !all_unchanged(gateways);
        for (manager, memo) in memos {
            if changed_world {
                memo.refresh(&Systemctl::for_manager(target.clone(), *manager));
            }
            memo.save();
        }
    }
}

/// The units of an item without a unit: every gateway unit of its manager that no other item
/// names; the default unit when none is found and `only_item` (the user's only gateway would be
/// the default unit). An error: that manager cannot be asked, for the user's only gateway.
fn discovered_units(
    options: &SyncOptions,
    target: &TargetUser,
    systemctl: &Systemctl,
    memo: &mut Memo,
    named: &[&str],
    only_item: bool,
) -> Result<Vec<String>> {
    let found = match memo.gateways(systemctl) {
        Ok(found) => found.into_iter().map(|g| g.unit).collect(),
        Err(err) => {
            tracing::info!(error = %err, user = target.name, "gateway discovery failed");
            Vec::new()
        }
    };
    let found: Vec<String> = found
        .into_iter()
        .filter(|u: &String| !named.contains(&u.as_str()))
        .collect();
    if found.is_empty() && only_item {
        // The user's only gateway would be the default unit: when their manager
        // cannot be asked, the run fails before anything is written, with the
        // manager's hint (linger; for root's own manager, `--user NAME`).
        // `--no-restart` still writes the files alone.
        if !options.no_restart {
            systemctl.manager_reachable()?;
        }
        Ok(vec![options.unit.clone()])
    } else {
        Ok(found)
    }
}

/// Syncs each unit of one item with its secret, one options set per unit.
fn sync_item_units(
    options: &SyncOptions,
    item: &targets::WorkItem,
    target: &TargetUser,
    systemctl: &Systemctl,
    memo: &mut Memo,
    secret: &aws::FetchedSecret,
    units: Vec<String>,
) -> Result<Vec<GatewayRun>> {
    if units.len() > 1 && item.state_dir.is_some() {
        return Err(Error::config(format!(
            "--state-dir names one OpenClaw state directory, but this user runs {} gateways ({}): name the gateway with --unit",
            units.len(),
            units.join(", ")
        )));
    }
    let mut gateways = Vec::new();
    for unit in units {
        let one = SyncOptions {
            unit: unit.clone(),
            state_dir: item.state_dir.clone(),
            secret_id: item.secret.secret_id.clone(),
            json_key: item.secret.json_key.clone(),
            version_stage: item.secret.version_stage.clone(),
            discover: item.unit.is_none(),
            delivery: item.delivery,
            ..options.clone()
        };
        let result = sync_unit(&one, target, systemctl, memo, secret);
        gateways.push(GatewayRun {
            user: target.name.clone(),
            unit,
            result,
        });
    }
    Ok(gateways)
}

/// Whether every gateway of the run was a no-op (nothing written, nothing restarted).
fn all_unchanged(gateways: &[GatewayRun]) -> bool {
    gateways
        .iter()
        .all(|g| matches!(&g.result, Ok(report) if report.result == Outcome::Unchanged))
}

/// The error for a gateway unit the manager does not know (exit 2, before anything is
/// written): a mistyped `--unit`, or a user with no OpenClaw gateway at all. `--no-restart`
/// is how an operator asks for the files alone (a gateway installed later picks them up).
fn unit_not_found(options: &SyncOptions, target: &TargetUser, systemctl: &Systemctl) -> Error {
    let known: Vec<String> = systemctl
        .gateways()
        .map(|found| found.into_iter().map(|g| g.unit).collect())
        .unwrap_or_default();
    let known = if known.is_empty() {
        "none".to_owned()
    } else {
        known.join(", ")
    };
    let manager = format!("`{}` of {}", systemctl.cli(), target.name);
    if options.discover {
        Error::config(format!(
            "no OpenClaw gateway found for {}: no openclaw* unit marked OPENCLAW_SERVICE_KIND=gateway in {manager}, and no {}; install the gateway first, name its unit with --unit, or pass --no-restart to write the files alone",
            target.name, options.unit
        ))
    } else {
        Error::config(format!(
            "unit {} not found in {manager}; known OpenClaw gateway units of {}: {known}; check the name, or pass --no-restart to write the files for a gateway that is not installed yet",
            options.unit, target.name
        ))
    }
}

/// Syncs one gateway unit with the secret already fetched.
fn sync_unit(
    options: &SyncOptions,
    target: &crate::host::privileges::TargetUser,
    systemctl: &Systemctl,
    memo: &mut Memo,
    secret: &aws::FetchedSecret,
) -> Result<SyncReport> {
    let state_dir = memo.state_dir(
        systemctl,
        &options.unit,
        &target.home,
        options.state_dir.as_deref(),
    );
    if state_dir.unit_found == Some(false) && !options.no_restart {
        return Err(unit_not_found(options, target, systemctl));
    }
    let openclaw_state = state_dir.path.clone();
    let paths = crate::host::systemd::managed_paths(
        &target.home,
        &options.unit,
        &openclaw_state,
        systemctl.manager(),
    );
    if !options.dry_run && systemctl.manager() == Manager::User {
        migrate_legacy_records(&paths)?;
    }
    if options.delivery == Delivery::SecretRef {
        return by_reference::sync(options, target, systemctl, secret, &paths, state_dir);
    }
    let unit = UnitSync {
        options,
        target,
        systemctl,
        secret,
        paths: &paths,
        openclaw_state: &openclaw_state,
    };
    sync_by_env(&unit, state_dir)
}

/// One gateway unit synced by `env` delivery: what every step of [`sync_by_env`] reads.
#[derive(Clone, Copy)]
struct UnitSync<'a> {
    options: &'a SyncOptions,
    target: &'a TargetUser,
    systemctl: &'a Systemctl,
    secret: &'a aws::FetchedSecret,
    paths: &'a ManagedPaths,
    openclaw_state: &'a Path,
}

/// What the gather step found for one unit.
struct Gathered {
    plan: plan::Plan,
    marker: PathBuf,
    cleanings_file: PathBuf,
    cleaned_before: Option<state::StoreCleanings>,
    facts: decide::Facts,
    /// A reference of `secret-ref` delivery is left, and goes in this run.
    reference_left: bool,
}

/// What applying the decision left for the proof and the state file.
struct Applied {
    outcome: GatewayOutcome,
    cleaned: StoreResults,
}

/// `env` delivery of one unit: gather → decide → pre-probe → apply → prove → record.
fn sync_by_env(unit: &UnitSync, state_dir: StateDir) -> Result<SyncReport> {
    let UnitSync {
        options,
        target,
        systemctl,
        secret,
        paths,
        openclaw_state,
    } = *unit;
    let token = &secret.token;

    // Gather.
    let mut warnings = Vec::new();
    let selector = ProfileSelector {
        only_ids: options.profile_ids.clone(),
        ..ProfileSelector::default()
    };
    let Gathered {
        plan,
        marker,
        cleanings_file,
        cleaned_before,
        mut facts,
        reference_left,
    } = gather(unit, &selector, &mut warnings)?;
    let undo = || undo_reference(systemctl, &options.unit, paths, openclaw_state);

    // Decide.
    let (decision, status) = decide_with_unit(unit, &mut facts)?;

    let mut report = report::new(target, options, secret, &plan, warnings);
    report.state_dir = Some(state_dir);
    let expect = Expectation {
        variable: token.kind().variable(),
        fingerprint: token.fingerprint(),
    };
    // A new token goes to Anthropic before it goes anywhere else: one it rejects changes nothing
    // (the gateway keeps running on its current token), so neither the timer nor a push can
    // roll a revoked or mistyped token out (the push's brake counts this exit 1).
    let already_probed = if options.probe && writes_new_token(&facts, &decision.action) {
        probe_new_token(
            options,
            systemctl,
            openclaw_state,
            secret,
            &mut report.warnings,
        )?
    } else {
        None
    };
    let applier = Applier {
        plan: &plan,
        token,
        selector: &selector,
        store_step: decision.stores,
        systemctl,
        unit: &options.unit,
        expect: &expect,
        verify: options.verify,
        marker: &marker,
        cleanings: apply::Cleanings {
            file: &cleanings_file,
            before: cleaned_before.as_ref(),
            secret,
        },
        after_clean: reference_left.then_some(&undo as &dyn Fn() -> Result<()>),
    };

    // Apply.
    let Some(Applied { outcome, cleaned }) =
        apply_decision(unit, &applier, decision.action, &status, &mut report)?
    else {
        return Ok(report);
    };

    // Entries this restart removed that the start brought straight back are reported as held.
    let recheck = (report.gateway.action == GatewayAction::Restarted).then_some(&selector);
    report.stores = report::stores(
        &plan,
        Some(&cleaned),
        decision.stores,
        &report::held_reason(paths),
        recheck,
    );
    if outcome == GatewayOutcome::Verified {
        prove_gateway(unit, &plan, &marker, already_probed, &mut report)?;
    }
    record_applied(unit, outcome, report)
}

/// The gather step: the plan (desired files and store edits next to what is on disk), the
/// records of earlier runs (state file, `restart-pending` marker, store cleanings of this
/// version) and the facts the decision reads from them.
fn gather(
    unit: &UnitSync,
    selector: &ProfileSelector,
    warnings: &mut Vec<String>,
) -> Result<Gathered> {
    let UnitSync {
        options,
        systemctl,
        secret,
        paths,
        openclaw_state,
        ..
    } = *unit;
    let token = &secret.token;
    let plan = plan::build(
        paths,
        openclaw_state,
        token,
        options.shell_profile,
        selector,
        warnings,
    )?;
    let (previous, state_warning) = state::load(&paths.state_file());
    warnings.extend(state_warning);
    let marker = paths.restart_marker();
    let cleanings_file = paths.cleanings_file();
    let cleaned_before = state::load_cleanings(
        &cleanings_file,
        &secret.arn,
        &secret.version_id,
        token.fingerprint(),
    );
    let mut facts = facts::gather(
        options,
        secret,
        &plan,
        previous.as_ref(),
        cleaned_before.as_ref(),
        &marker,
    );
    // Back from `secret-ref` delivery: the reference goes (with the gateway stopped, after the
    // stores lost the profile), and that is a change only a restart brings to the gateway.
    let secret_file = crate::openclaw::secret_ref::secret_file(openclaw_state);
    // (A system unit's user could create the file to force restarts: there only the state
    // counts.)
    let reference_left = (systemctl.manager() == Manager::User && secret_file.exists())
        || previous
            .as_ref()
            .is_some_and(|p| p.delivery == Delivery::SecretRef);
    if reference_left {
        facts.files.gateway_content = true;
        facts.files.any_write = true;
    }
    Ok(Gathered {
        plan,
        marker,
        cleanings_file,
        cleaned_before,
        facts,
        reference_left,
    })
}

/// The decision, taken twice when it needs the unit (looking at it costs a systemctl call), with
/// the unit's status when it was looked at.
fn decide_with_unit(
    unit: &UnitSync,
    facts: &mut decide::Facts,
) -> Result<(decide::Decision, UnitStatus)> {
    let UnitSync {
        options,
        systemctl,
        secret,
        paths,
        ..
    } = *unit;
    let mut decision = decide::decide(facts);
    let mut status = UnitStatus::default();
    if decision.action == Action::AskUnit {
        status = systemctl.show(&options.unit)?;
        facts.unit = facts::unit_facts(
            systemctl,
            &options.unit,
            &mut status,
            facts,
            &secret.token,
            paths,
        )?;
        decision = decide::decide(facts);
    }
    tracing::debug!(
        action = %decision.action.describe(),
        stores = if decision.stores == decide::StoreStep::Hold { "hold" } else { "clean" },
        "decided"
    );
    Ok((decision, status))
}

/// Whether the action puts a new token in front of the gateway: files it reads change, by a
/// write alone or a restart (a resumed run is the exception: the gateway is down and must be
/// started whatever).
fn writes_new_token(facts: &decide::Facts, action: &Action) -> bool {
    facts.files.gateway_content
        && match action {
            Action::WriteOnly { .. } => true,
            Action::Restart { reason, .. } => *reason != decide::RestartReason::Resume,
            _ => false,
        }
}

/// The apply step, the only side effects: what the action does to files, stores and the gateway,
/// in the report. `None` when the report is already complete (a dry run, or nothing to do).
fn apply_decision(
    unit: &UnitSync,
    applier: &Applier,
    action: Action,
    status: &UnitStatus,
    report: &mut SyncReport,
) -> Result<Option<Applied>> {
    let untouched_stores = || {
        report::stores(
            applier.plan,
            None,
            applier.store_step,
            &report::held_reason(unit.paths),
            None,
        )
    };
    match action {
        Action::AskUnit => Err(Error::failed(
            "internal error: the decision still needs the unit's status",
        )),
        Action::DryRun {
            result,
            would_restart,
        } => {
            report.result = result;
            if would_restart {
                report.gateway.action = GatewayAction::WouldRestart;
            }
            report.stores = untouched_stores();
            Ok(None)
        }
        Action::Report(action) => {
            report.gateway.action = action;
            report.stores = untouched_stores();
            Ok(None)
        }
        Action::Refuse(reason) => Err(Error::Refused {
            unit: unit.options.unit.clone(),
            reason,
        }),
        Action::WriteOnly {
            outcome,
            daemon_reload,
        } => write_leaving_gateway(unit, applier, outcome, daemon_reload, report).map(Some),
        Action::Verify | Action::Restart { .. } => {
            restart_or_verify(unit, applier, &action, status, report).map(Some)
        }
    }
}

/// `WriteOnly`: the files written and the stores cleaned, the gateway left as it is (not found,
/// stopped on purpose, or `--no-restart`), and what that means in the report.
fn write_leaving_gateway(
    unit: &UnitSync,
    applier: &Applier,
    outcome: GatewayOutcome,
    daemon_reload: bool,
    report: &mut SyncReport,
) -> Result<Applied> {
    let cleaned = applier.write_and_clean()?;
    // Back from `secret-ref` delivery: the reference goes too.
    if let Some(undo) = applier.after_clean {
        undo()?;
    }
    if daemon_reload {
        unit.systemctl.daemon_reload()?;
    }
    report.gateway.action = match outcome {
        GatewayOutcome::UnitNotFound => {
            report.warnings.push(format!(
                "gateway unit {} not found for {}: files written, nothing restarted",
                unit.options.unit, unit.target.name
            ));
            // A unit that vanished while stopped by us cannot be started.
            apply::remove_marker(applier.marker)?;
            GatewayAction::UnitNotFound
        }
        GatewayOutcome::Inactive => {
            report.warnings.push(format!(
                "{} is stopped; left stopped (it reads the new token when started)",
                unit.options.unit
            ));
            GatewayAction::Inactive
        }
        _ => GatewayAction::NotRestarted,
    };
    Ok(Applied { outcome, cleaned })
}

/// `Restart` or `Verify`: the gateway restarted (or proven running with the token, restarted only
/// when it lacks it), its PIDs in the report.
fn restart_or_verify(
    unit: &UnitSync,
    applier: &Applier,
    action: &Action,
    status: &UnitStatus,
    report: &mut SyncReport,
) -> Result<Applied> {
    let running = match action {
        Action::Restart {
            reason,
            daemon_reload,
        } => {
            tracing::info!(
                unit = unit.options.unit,
                reason = reason.describe(),
                "restarting the gateway"
            );
            applier.restart(status, *daemon_reload)?
        }
        _ => applier.verify_or_restart(status)?,
    };
    let Running {
        restarted,
        old_pid,
        new_pid,
        stores,
    } = running;
    report.gateway.action = if restarted {
        GatewayAction::Restarted
    } else {
        GatewayAction::Verified
    };
    report.gateway.old_pid = old_pid;
    report.gateway.new_pid = Some(new_pid);
    Ok(Applied {
        outcome: GatewayOutcome::Verified,
        cleaned: stores,
    })
}

/// The process environment is right; now the gateway's own view, and a live probe. The proof
/// goes in the report and the `restart-pending` marker, obsolete once the gateway runs, goes.
fn prove_gateway(
    unit: &UnitSync,
    plan: &plan::Plan,
    marker: &Path,
    already_probed: Option<(String, crate::anthropic_probe::Finding)>,
    report: &mut SyncReport,
) -> Result<()> {
    let UnitSync {
        options,
        target,
        systemctl,
        secret,
        paths,
        openclaw_state,
    } = *unit;
    let token = &secret.token;
    let proven = proof::prove(
        systemctl,
        &options.unit,
        token,
        openclaw_state,
        ProofOptions {
            user_name: target.name.clone(),
            cli_state: paths.cli_state(),
            home: paths.home.clone(),
            agents: proof::agent_ids(plan.stores.iter().map(|s| &s.agent)),
            probe: options.probe,
            base_url: options.anthropic_base_url.clone(),
            deadline: Instant::now() + options.verify.timeout,
            already_probed,
        },
    )
    .and_then(|proof| match proof::rejection(&proof, token) {
        Some(rejected) => Err(rejected),
        None => Ok(proof),
    });
    let proof = match proven {
        Ok(proof) => proof,
        // A store that needs attention is often why (the gateway uses a re-imported
        // profile): the error names it too, since the report is not printed.
        Err(error) if report.stores_failed() => {
            return Err(Error::WithStores {
                error: Box::new(error),
                stores: report::store_problems(&report.stores),
            })
        }
        Err(error) => return Err(error),
    };
    tracing::info!(proof = %proof.describe(), "gateway proven");
    report.warnings.extend(proof.notes.iter().cloned());
    report.gateway.proof = Some(proof);
    // Left by a run killed after its start: the gateway runs, so the marker is obsolete.
    apply::remove_marker(marker)
}

/// The end of an applied run: the state file is written only when every store is settled (a
/// store that needs attention leaves it unwritten, so the next run checks again).
fn record_applied(
    unit: &UnitSync,
    outcome: GatewayOutcome,
    mut report: SyncReport,
) -> Result<SyncReport> {
    let secret = unit.secret;
    let token = &secret.token;
    report.result = Outcome::Applied;
    if report.stores_failed() {
        report.warnings.push(
            "state not recorded: a store needs attention (see above); the next run checks again"
                .to_owned(),
        );
        return Ok(report);
    }
    let new_state = AppliedState {
        secret_arn: secret.arn.clone(),
        version_id: secret.version_id.clone(),
        fingerprint: token.fingerprint().clone(),
        variable: token.kind().variable().to_owned(),
        unit: unit.options.unit.clone(),
        gateway: outcome,
        gateway_pid: report.gateway.new_pid,
        applied_at: state::now_rfc3339(),
        version_created_at: secret.created_date.clone(),
        delivery: Delivery::Env,
        config_path: None,
        invocation: None,
    };
    state::save(&unit.paths.state_file(), &new_state)?;
    Ok(report)
}

/// A new token goes to Anthropic before it goes anywhere else (both deliveries): one it rejects
/// is an error that changed nothing; an answer that proves nothing is a warning. Returns where
/// the probe went and what it found when Anthropic accepted the token, for the proof to reuse.
pub(super) fn probe_new_token(
    options: &SyncOptions,
    systemctl: &Systemctl,
    openclaw_state: &std::path::Path,
    secret: &aws::FetchedSecret,
    warnings: &mut Vec<String>,
) -> Result<Option<(String, crate::anthropic_probe::Finding)>> {
    use crate::anthropic_probe::Verdict;
    let token = &secret.token;
    let unit_env = systemctl
        .exec_context(&options.unit)
        .map(|c| c.start_environment())
        .unwrap_or_default();
    let base = proof::probe_target(
        &unit_env,
        openclaw_state,
        options.anthropic_base_url.as_deref(),
    );
    let finding = crate::anthropic_probe::probe(&base, token, PRE_PROBE_TIMEOUT);
    judge_new_token(&base, &finding, secret, "gateway", warnings)?;
    Ok((finding.verdict == Verdict::Accepted).then_some((base, finding)))
}

/// What a new token's check before anything is written means for the run: a rejection fails
/// it with nothing changed (`what` keeps its current token), an inconclusive answer is a
/// warning.
pub(super) fn judge_new_token(
    base: &str,
    finding: &crate::anthropic_probe::Finding,
    secret: &aws::FetchedSecret,
    what: &str,
    warnings: &mut Vec<String>,
) -> Result<()> {
    use crate::anthropic_probe::Verdict;
    let fingerprint = secret.token.fingerprint();
    match finding.verdict {
        Verdict::Rejected => Err(Error::TokenRejected(format!(
            "{base} rejected the token {fingerprint} of version {} ({}): nothing was changed, the {what} keeps its current token; store a valid one (`openclaw-token-sync put`) or roll back (`openclaw-token-sync rollback`)",
            secret.version_id,
            finding.detail
        ))),
        Verdict::Inconclusive => {
            warnings.push(format!(
                "could not check the new token {fingerprint} with {base} before applying it ({}); applied anyway",
                finding.detail
            ));
            Ok(())
        }
        Verdict::Accepted => Ok(()),
    }
}

/// Switching back to `env` delivery: OpenClaw's own `secrets apply` removes our provider from
/// `openclaw.json` (the stores no longer hold the profile: `env` cleaning removed it), and the
/// secret file goes. A forgotten reference would outrank the environment token for good.
fn undo_reference(
    systemctl: &Systemctl,
    unit: &str,
    paths: &ManagedPaths,
    openclaw_state: &std::path::Path,
) -> Result<()> {
    use crate::openclaw::secret_ref;
    let file = secret_ref::secret_file(openclaw_state);
    let cli = proof::gateway_cli(systemctl, unit, openclaw_state, &paths.cli_state())?;
    // The profiles first, whatever `--profile-id` narrowed the `env` cleaning to.
    let (agents, _) = crate::openclaw::stores::discover_agents(openclaw_state, &paths.home);
    let references = ProfileSelector {
        references_only: true,
        ..ProfileSelector::default()
    };
    for agent in &agents {
        for detected in crate::openclaw::stores::stores_in(agent, openclaw_state) {
            detected.store.clean(&references)?;
        }
    }
    if let Some(cli) = cli {
        if secret_ref::provider_in(cli.config_path(), &file) != secret_ref::ProviderConfig::Missing
        {
            tracing::info!("removing the secret reference's provider");
            by_reference::apply_plan(&cli, paths, openclaw_state, &secret_ref::removal_plan())?;
        }
    }
    apply::remove_file(&file)
}

/// Releases before per-gateway records kept one `state.json` and one `restart-pending` for
/// whatever `--unit` was synced. For a gateway other than the default one, a record that names it
/// moves to that gateway's own file, so neither its state nor a killed run's marker is lost.
fn migrate_legacy_records(paths: &ManagedPaths) -> Result<()> {
    if paths.unit == crate::host::managed_files::DEFAULT_UNIT {
        return Ok(());
    }
    let legacy_state = paths.state_dir.join("state.json");
    let legacy_marker = paths.state_dir.join("restart-pending");
    let state_is_ours = || {
        state::load(&legacy_state)
            .0
            .is_some_and(|recorded| recorded.unit == paths.unit)
    };
    let marker_is_ours = || {
        fsutil::read_managed(&legacy_marker)
            .ok()
            .flatten()
            .is_some_and(|found| found.content.trim_ascii() == paths.unit.as_bytes())
    };
    for (legacy, ours, is_ours) in [
        (
            &legacy_state,
            paths.state_file(),
            &state_is_ours as &dyn Fn() -> bool,
        ),
        (&legacy_marker, paths.restart_marker(), &marker_is_ours),
    ] {
        if !ours.exists() && is_ours() {
            std::fs::rename(legacy, &ours).map_err(|source| Error::Io {
                path: legacy.clone(),
                action: "move to the gateway's own record",
                detail: source.to_string(),
                source,
            })?;
            fsutil::sync_dir(&paths.state_dir)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quadlet_item(unit: Option<&str>) -> targets::WorkItem {
        targets::WorkItem {
            target: 0,
            manager: Manager::User,
            unit: unit.map(str::to_owned),
            secret: SecretRef {
                secret_id: "s".into(),
                json_key: "token".into(),
                version_stage: "AWSCURRENT".into(),
            },
            state_dir: None,
            delivery: Delivery::Env,
        }
    }

    fn quadlets_found() -> quadlets::Found {
        let text = "[Container]\nVolume=/home/u/.openclaw:/home/node/.openclaw\nEnvironment=HOME=/home/node\nExec=node dist/index.js gateway\n";
        let who = crate::openclaw::quadlet::Specifiers {
            home: Path::new("/home/u"),
            user: "u",
            uid: 1000,
            gid: 1000,
        };
        let source = Path::new("/home/u/.config/containers/systemd/openclaw.container");
        quadlets::Found {
            gateways: vec![crate::openclaw::quadlet::gateway_in(source, text, &who).unwrap()],
            others: vec![(
                "sidecar.service".into(),
                PathBuf::from("/q/sidecar.container"),
            )],
        }
    }

    #[test]
    fn quadlet_units_are_synced_as_quadlets_and_a_non_gateway_quadlet_unit_is_refused() {
        let found = quadlets_found();
        // Discovery's units: a Quadlet's own unit is left to the Quadlet path.
        let units = vec!["openclaw-gateway.service".into(), "openclaw.service".into()];
        assert_eq!(
            not_quadlet_units(&quadlet_item(None), units, &found).unwrap(),
            ["openclaw-gateway.service"]
        );
        assert_eq!(
            quadlets_of(&quadlet_item(None), &found.gateways, &[]).len(),
            1
        );
        // Another item names it: not this item's.
        let named = ["openclaw.service"];
        assert!(quadlets_of(&quadlet_item(None), &found.gateways, &named).is_empty());
        let by_name = quadlet_item(Some("openclaw.service"));
        assert_eq!(quadlets_of(&by_name, &found.gateways, &named).len(), 1);
        assert!(
            not_quadlet_units(&by_name, vec!["openclaw.service".into()], &found)
                .unwrap()
                .is_empty()
        );
        // A unit from a Quadlet file that runs no gateway: refused (exit 2), never a drop-in.
        let sidecar = quadlet_item(Some("sidecar.service"));
        let err = not_quadlet_units(&sidecar, vec!["sidecar.service".into()], &found).unwrap_err();
        assert!(
            matches!(err, Error::Config(_)) && err.to_string().contains("/q/sidecar.container")
        );
        // The system manager's items know nothing of Quadlets.
        let system = targets::WorkItem {
            manager: Manager::System,
            ..quadlet_item(Some("sidecar.service"))
        };
        assert!(not_quadlet_units(&system, vec!["sidecar.service".into()], &found).is_ok());
        assert!(quadlets_of(&system, &found.gateways, &[]).is_empty());
    }

    #[test]
    fn a_container_host_s_default_run_does_not_fail_for_a_missing_systemd_gateway() {
        let failed = |err: Error| SyncRun {
            gateways: vec![GatewayRun {
                user: "root".into(),
                unit: "openclaw-gateway.service".into(),
                result: Err(err),
            }],
        };
        let no_unit = || Err(Error::config("no unit"));
        assert!(beside_containers(no_unit(), true, "root").is_empty());
        assert!(
            beside_containers(Ok(failed(Error::Systemd("no bus".into()))), true, "root").is_empty()
        );
        // Named, or any other failure: kept.
        assert_eq!(beside_containers(no_unit(), false, "ada").len(), 1);
        assert_eq!(
            beside_containers(Ok(failed(Error::failed("proof failed"))), true, "root").len(),
            1
        );
    }
}
