//! Layered configuration: flags beat environment (`OPENCLAW_TOKEN_SYNC_*`, through clap, and
//! the standard AWS variables) beat the TOML config file beat defaults, turned into each
//! command's validated options. A boolean has an explicit off switch at every layer
//! (`--no-force`, `OPENCLAW_TOKEN_SYNC_NO_RESTART=false`, ...), so a config file can never pin
//! one on.

use super::args::*;
use super::DEFAULT_CONFIG;
use crate::aws::AwsSettings;
use crate::error::{Error, Result};
use crate::fleet::trigger::{self, TriggerOptions};
use crate::host::systemd::VerifyLimits;
use crate::status::StatusOptions;
use crate::sync::{SecretRef, SyncOptions, TargetSpec};
use std::path::{Path, PathBuf};
use std::time::Duration;

impl ApiArgs {
    pub(super) fn settings(self, file: &FileConfig) -> (AwsSettings, OutputFormat) {
        let output = self.output.or(file.output).unwrap_or(OutputFormat::Text);
        (
            aws_settings(self.region, self.endpoint_url, self.api_timeout, file),
            output,
        )
    }
}

impl SecretArgs {
    /// `(secret id if any, JSON key, AWS settings)`, flags and environment over the config file.
    pub(super) fn resolve(self, file: &FileConfig) -> (Option<String>, String, AwsSettings) {
        let json_key = self
            .json_key
            .or_else(|| file.json_key.clone())
            .unwrap_or_else(|| "token".to_owned());
        let aws = aws_settings(self.region, self.endpoint_url, self.timeout, file);
        (self.secret_id, json_key, aws)
    }
}

/// `HostArgs` after the config file filled what the flags and environment left open.
pub(super) struct Host {
    pub(super) user: Option<String>,
    pub(super) home: Option<PathBuf>,
    pub(super) unit: String,
    /// `--unit`, its environment variable or the config file named the unit.
    pub(super) unit_named: bool,
    pub(super) state_dir: Option<PathBuf>,
}

impl HostArgs {
    pub(super) fn resolve(self, file: &FileConfig) -> Result<Host> {
        Ok(Host {
            unit_named: self.unit.is_some() || file.unit.is_some(),
            unit: unit_name(self.unit, file)?,
            user: self.user.or_else(|| file.user.clone()),
            home: self.home.or_else(|| file.home.clone()),
            state_dir: self.state_dir.or_else(|| file.state_dir.clone()),
        })
    }
}

impl ProbeArgs {
    /// For commands with no gateway to ask (`put`, `promote`, `rollback`): (probe on?, where
    /// the probe goes). The operator's `ANTHROPIC_BASE_URL` counts too, above the config file
    /// (flags and environment beat the file).
    pub(super) fn resolve_without_gateway(self, file: &FileConfig) -> (bool, Option<String>) {
        let operator_url = self
            .anthropic_base_url
            .clone()
            .or_else(|| std::env::var("ANTHROPIC_BASE_URL").ok())
            .filter(|url| !url.is_empty());
        let (probe, anthropic_base_url) = self.resolve(file);
        (probe, operator_url.or(anthropic_base_url))
    }

    /// (probe on?, base URL override), flags and environment over the config file.
    pub(super) fn resolve(self, file: &FileConfig) -> (bool, Option<String>) {
        (
            self.probe
                || !layered(
                    self.no_probe,
                    false,
                    file.probe.map(|on| !on).or(file.no_probe),
                    false,
                ),
            self.anthropic_base_url
                .or_else(|| file.anthropic_base_url.clone())
                .filter(|url| !url.is_empty()),
        )
    }
}

/// Assumed lifetime of a token whose secret has no `expires_at` (setup tokens: about a year).
pub(super) const DEFAULT_TOKEN_LIFETIME_DAYS: u64 = 365;

impl FileConfig {
    /// `token-lifetime-days` of the file, or the default.
    pub(super) fn token_lifetime_days(&self) -> u64 {
        self.token_lifetime_days
            .unwrap_or(DEFAULT_TOKEN_LIFETIME_DAYS)
    }
}

/// The config file: any flag, kebab-case, as TOML.
#[derive(serde::Deserialize, Default, Debug)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct FileConfig {
    secret_id: Option<String>,
    pub(super) json_key: Option<String>,
    region: Option<String>,
    endpoint_url: Option<String>,
    user: Option<String>,
    home: Option<PathBuf>,
    unit: Option<String>,
    state_dir: Option<PathBuf>,
    /// Also spelled as its flag, `profile-id`.
    #[serde(alias = "profile-id")]
    profile_ids: Option<Vec<String>>,
    shell_profile: Option<bool>,
    dry_run: Option<bool>,
    force: Option<bool>,
    no_restart: Option<bool>,
    delivery: Option<crate::sync::Delivery>,
    restart_fallback: Option<bool>,
    /// The flag's `--container`, as a list.
    container: Option<Vec<String>>,
    probe: Option<bool>,
    /// The flag's spelling of `probe = false` (`probe` wins when both are given).
    no_probe: Option<bool>,
    anthropic_base_url: Option<String>,
    version_stage: Option<String>,
    output: Option<OutputFormat>,
    timeout: Option<u64>,
    lock_timeout: Option<u64>,
    verify_timeout: Option<u64>,
    settle_ms: Option<u64>,
    stop_timeout: Option<u64>,
    user_timeout: Option<u64>,
    token_lifetime_days: Option<u64>,
    expiry_warning_days: Option<u64>,
    /// Where `sync` writes node_exporter metrics after every run.
    pub(super) metrics_file: Option<PathBuf>,
    /// `[[target]]` tables: several gateways (users, profiles, secrets) on one host.
    #[serde(default)]
    target: Vec<FileTarget>,
}

/// One `[[target]]` of the config file. What it leaves out comes from the top level.
#[derive(serde::Deserialize, Default, Debug, Clone)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct FileTarget {
    user: Option<String>,
    home: Option<PathBuf>,
    /// The gateway's unit; `profile` is the short way to name OpenClaw's
    /// `openclaw-gateway-<profile>.service`. Neither: every gateway of the user.
    unit: Option<String>,
    profile: Option<String>,
    state_dir: Option<PathBuf>,
    secret_id: Option<String>,
    json_key: Option<String>,
    version_stage: Option<String>,
    /// `env` or `secret-ref` for this target's gateways [default: the top level's].
    delivery: Option<crate::sync::Delivery>,
}

pub(super) fn load_file_config(explicit: Option<&Path>) -> Result<FileConfig> {
    let (path, required) = match explicit {
        Some(path) => (path.to_path_buf(), true),
        None => (PathBuf::from(DEFAULT_CONFIG), false),
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => {
            return Ok(FileConfig::default())
        }
        Err(e) => {
            return Err(Error::config(format!(
                "{}: cannot read config file: {e}",
                path.display()
            )))
        }
    };
    toml::from_str(&text).map_err(|e| config_error(&path, &text, &e))
}

/// A config file's error with where it is: "FILE:LINE:COLUMN: invalid config file: MESSAGE
/// (in `KEY = …`)", the line and column counted from 1 as editors do, and the key from the
/// line itself. (toml's own rendering draws the line with carets over several lines; one line is
/// what a journal and a terminal read well.)
fn config_error(path: &Path, text: &str, error: &toml::de::Error) -> Error {
    let message = error.message().trim();
    let Some(span) = error.span() else {
        return Error::config(format!(
            "{}: invalid config file: {message}",
            path.display()
        ));
    };
    let before = &text[..span.start.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    let key = text
        .lines()
        .nth(line - 1)
        .and_then(|l| l.split_once('='))
        .map(|(key, _)| key.trim())
        .filter(|key| !key.is_empty() && !key.starts_with('#'))
        .map(|key| format!(" (in `{key} = …`)"))
        .unwrap_or_default();
    Error::config(format!(
        "{}:{line}:{column}: invalid config file: {message}{key}",
        path.display()
    ))
}

/// One boolean through the layers: its off switch (a flag) wins, then the flag or its
/// environment variable (`Some` when either was given, `=false` included), then the config file,
/// then the default.
/// `--container` (or `container`) and `[[target]]`s do not mix: the first names container
/// gateways only, the second systemd gateways.
fn containers_alone(containers: &[String], targets: &[TargetSpec]) -> Result<()> {
    if containers.is_empty() || targets.is_empty() {
        return Ok(());
    }
    Err(Error::config(
        "--container (or `container`) names container gateways only, and the config file's [[target]]s name systemd gateways: run them separately (`sync --container NAME --config /dev/null ...`)",
    ))
}

/// The command line's list when it names anything, else the config file's.
fn first_non_empty(given: Vec<String>, file: Option<Vec<String>>) -> Vec<String> {
    match given.is_empty() {
        true => file.unwrap_or_default(),
        false => given,
    }
}

pub(super) fn layered(given: Option<bool>, off: bool, file: Option<bool>, default: bool) -> bool {
    if off {
        return false;
    }
    given.or(file).unwrap_or(default)
}

pub(super) fn env_is_set(names: &[&str]) -> bool {
    names
        .iter()
        .any(|n| std::env::var_os(n).is_some_and(|v| !v.is_empty()))
}

/// Flags beat the standard AWS environment, which beats the config file.
pub(super) fn aws_settings(
    region: Option<String>,
    endpoint_url: Option<String>,
    timeout: Option<u64>,
    file: &FileConfig,
) -> AwsSettings {
    let region = region.or_else(|| {
        (!env_is_set(&["AWS_REGION", "AWS_DEFAULT_REGION"]))
            .then(|| file.region.clone())
            .flatten()
    });
    let endpoint_url = endpoint_url.or_else(|| {
        (!env_is_set(&["AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SECRETS_MANAGER"]))
            .then(|| file.endpoint_url.clone())
            .flatten()
    });
    let timeout = Duration::from_secs(timeout.or(file.timeout).unwrap_or(30).max(1));
    AwsSettings {
        region,
        endpoint_url,
        operation_timeout: timeout,
        connect_timeout: Duration::from_secs(3).min(timeout),
    }
}

pub(super) fn unit_name(flag: Option<String>, file: &FileConfig) -> Result<String> {
    let unit = flag
        .or_else(|| file.unit.clone())
        .unwrap_or_else(|| "openclaw-gateway.service".to_owned());
    if unit.is_empty()
        || unit.starts_with('-')
        || unit.contains('/')
        || unit.chars().any(char::is_whitespace)
    {
        return Err(Error::config(format!("--unit {unit:?} is not a unit name")));
    }
    service_unit(unit)
}

/// The gateway is a service: a bare name gets `.service` as systemctl gives it (the drop-in
/// directory is named after the full unit name, and systemd reads no other), another unit type
/// is refused.
pub(super) fn service_unit(unit: String) -> Result<String> {
    const OTHER_TYPES: [&str; 10] = [
        ".socket",
        ".timer",
        ".target",
        ".mount",
        ".automount",
        ".path",
        ".slice",
        ".scope",
        ".swap",
        ".device",
    ];
    if unit.ends_with(".service") {
        Ok(unit)
    } else if OTHER_TYPES.iter().any(|suffix| unit.ends_with(suffix)) {
        Err(Error::config(format!(
            "--unit {unit:?} is not a service; the gateway runs as a .service unit"
        )))
    } else {
        Ok(format!("{unit}.service"))
    }
}

/// A Secrets Manager staging label: 1 to 256 of the characters AWS allows.
pub(super) fn stage_name(name: String) -> Result<String> {
    let valid = !name.is_empty()
        && name.len() <= 256
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.+=@-".contains(&b));
    if valid {
        Ok(name)
    } else {
        Err(Error::config(format!(
            "{name:?} is not a staging label (1 to 256 of A-Z a-z 0-9 _ . + = @ -)"
        )))
    }
}

/// A label for `put --label` / `promote --label`: a staging label of the operator's own; the
/// AWS-managed ones move through `put` (AWSCURRENT) and `rollback` (AWSPREVIOUS).
pub(super) fn canary_label(name: String) -> Result<String> {
    let name = stage_name(name)?;
    if name.starts_with("AWS") {
        return Err(Error::config(format!(
            "{name} is managed by Secrets Manager; a canary label is one of your own, e.g. CANARY"
        )));
    }
    Ok(name)
}

/// `--secret-id`, else the environment (through clap), else the config file.
pub(super) fn required_secret_id(flag: Option<String>, file: &FileConfig) -> Result<String> {
    flag.or_else(|| file.secret_id.clone()).ok_or_else(|| {
        Error::config("no secret: pass --secret-id, set OPENCLAW_TOKEN_SYNC_SECRET_ID, or put secret-id in the config file")
    })
}

pub(super) fn trigger_options(
    secret_id: Option<String>,
    action: trigger::Action,
    fleet: FleetArgs,
    aws: AwsSettings,
    file: &FileConfig,
) -> Result<TriggerOptions> {
    let secret_id = required_secret_id(secret_id, file)?;
    let tags = fleet
        .targets
        .iter()
        .map(|t| trigger::parse_target(t))
        .collect::<Result<Vec<_>>>()?;
    let mut extra_args = Vec::new();
    for (on, flag) in [
        (fleet.force, "--force"),
        (fleet.no_restart, "--no-restart"),
        (fleet.dry_run, "--dry-run"),
    ] {
        if on {
            extra_args.push(flag.to_owned());
        }
    }
    Ok(TriggerOptions {
        tags,
        instance_ids: fleet.instance_ids,
        document: fleet
            .document
            .unwrap_or_else(|| crate::fleet::ssm_document::DEFAULT_DOCUMENT_NAME.to_owned()),
        action,
        secret_id,
        // Only a user asked for here goes to the instances: without it each instance's own
        // config file (what its install named) decides.
        user: fleet.user.unwrap_or_default(),
        unit: match fleet.unit {
            Some(unit) => Some(unit_name(Some(unit), file)?),
            None => None,
        },
        instance_region: fleet.instance_region.unwrap_or_default(),
        extra_args,
        version_stage: fleet.version_stage.map(stage_name).transpose()?,
        max_concurrency: fleet.max_concurrency.unwrap_or_else(|| "10%".to_owned()),
        max_errors: fleet.max_errors.unwrap_or_else(|| "0".to_owned()),
        comment: fleet
            .comment
            .unwrap_or_else(|| "openclaw-token-sync trigger".to_owned()),
        wait: fleet.wait,
        timeout: Duration::from_secs(fleet.timeout.unwrap_or(900)),
        poll_interval: Duration::from_secs(fleet.poll_interval.unwrap_or(3).max(1)),
        aws,
    })
}

pub(super) fn status_options(
    args: StatusArgs,
    file: FileConfig,
) -> Result<(StatusOptions, OutputFormat)> {
    let (secret_id, json_key, aws) = args.secret.resolve(&file);
    let check_secret = if args.check_secret {
        Some(secret_id.or(file.secret_id.clone()).ok_or_else(|| {
            Error::config("--check-secret needs --secret-id (or secret-id in the config file)")
        })?)
    } else {
        None
    };
    let host = args.host.resolve(&file)?;
    let (probe, anthropic_base_url) = args.probe.resolve(&file);
    let options = StatusOptions {
        probe,
        anthropic_base_url,
        discover: !host.unit_named,
        unit: host.unit,
        user: host.user,
        home: host.home,
        state_dir: host.state_dir,
        check_secret,
        json_key,
        aws,
        token_lifetime_days: args
            .token_lifetime_days
            .or(file.token_lifetime_days)
            .unwrap_or(DEFAULT_TOKEN_LIFETIME_DAYS),
        expiry_warning_days: args
            .expiry_warning_days
            .or(file.expiry_warning_days)
            .unwrap_or(30),
    };
    Ok((
        options,
        args.output.or(file.output).unwrap_or(OutputFormat::Text),
    ))
}

/// The config file's `[[target]]`s as sync targets, selected and layered:
/// - `--user`, `--unit` and `--secret-id` given on the command line (or in their environment
///   variables) select the targets that match them (a target without a secret of its own matches
///   any secret); none matching is an error (exit 2);
/// - a target's own keys beat the file's top level; `--version-stage` on the command line beats
///   a target's own stage (a canary push covers every target); `--state-dir` on the command line
///   applies only when it selects a single target.
fn file_targets(
    file: &FileConfig,
    cli: &CliSelection,
    json_key: &str,
    default_stage: &str,
) -> Result<Vec<TargetSpec>> {
    let mut specs = Vec::new();
    for (index, t) in file.target.iter().enumerate() {
        let at =
            |what: String| Error::config(format!("config file: [[target]] {}: {what}", index + 1));
        let unit = target_unit(t, file, cli, &at)?;
        let user = t.user.clone().or_else(|| file.user.clone());
        if !cli.selects(user.as_ref(), unit.as_ref(), t.secret_id.as_ref()) {
            continue;
        }
        let secret_id = t
            .secret_id
            .clone()
            .or_else(|| cli.secret_id.clone())
            .or_else(|| file.secret_id.clone())
            .ok_or_else(|| at("no secret-id (here, at the top level, or --secret-id)".into()))?;
        let version_stage = match (&cli.version_stage, &t.version_stage) {
            (Some(stage), _) | (None, Some(stage)) => stage_name(stage.clone())?,
            (None, None) => default_stage.to_owned(),
        };
        specs.push(TargetSpec {
            home: t
                .home
                .clone()
                .or_else(|| t.user.is_none().then(|| file.home.clone()).flatten()),
            user,
            unit,
            state_dir: t.state_dir.clone(),
            secret: SecretRef {
                secret_id,
                json_key: t.json_key.clone().unwrap_or_else(|| json_key.to_owned()),
                version_stage,
            },
            delivery: cli
                .delivery
                .or(t.delivery)
                .or(file.delivery)
                .unwrap_or_default(),
        });
    }
    if specs.is_empty() {
        return Err(no_target_matches(file, cli));
    }
    if let Some(dir) = &cli.state_dir {
        match specs.as_mut_slice() {
            [only] => only.state_dir = Some(dir.clone()),
            _ => {
                return Err(Error::config(format!(
                    "--state-dir names one state directory, but {} targets of the config file are selected: select one with --user/--unit",
                    specs.len()
                )))
            }
        }
    }
    Ok(specs)
}

/// A `[[target]]`'s unit: its `unit`, or the unit of its OpenClaw `profile`, or (neither) the
/// unit the command line names; `at` makes an error name the target.
fn target_unit(
    t: &FileTarget,
    file: &FileConfig,
    cli: &CliSelection,
    at: &dyn Fn(String) -> Error,
) -> Result<Option<String>> {
    Ok(match (&t.unit, &t.profile) {
        (Some(_), Some(_)) => return Err(at("give unit or profile, not both".into())),
        (Some(unit), None) => Some(unit_name(Some(unit.clone()), file)?),
        (None, Some(profile)) => {
            if profile.is_empty()
                || !profile
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            {
                return Err(at(format!("profile {profile:?} is not a profile name")));
            }
            Some(format!("openclaw-gateway-{profile}.service"))
        }
        // A table for every gateway of its user narrows to the unit the command line names.
        (None, None) => cli.unit.clone(),
    })
}

/// The error when the command line's selection matches no `[[target]]` (exit 2).
fn no_target_matches(file: &FileConfig, cli: &CliSelection) -> Error {
    Error::config(format!(
        "none of the {} [[target]]s of the config file matches{}{}{}",
        file.target.len(),
        cli.user
            .as_ref()
            .map(|u| format!(" --user {u}"))
            .unwrap_or_default(),
        cli.unit
            .as_ref()
            .map(|u| format!(" --unit {u}"))
            .unwrap_or_default(),
        cli.secret_id
            .as_ref()
            .map(|s| format!(" --secret-id {s}"))
            .unwrap_or_default(),
    ))
}

/// What the command line (flags and their environment variables) said, before the config file.
struct CliSelection {
    user: Option<String>,
    unit: Option<String>,
    secret_id: Option<String>,
    version_stage: Option<String>,
    state_dir: Option<PathBuf>,
    /// `--delivery` (or its variable): it wins over the targets' own.
    delivery: Option<crate::sync::Delivery>,
}

impl CliSelection {
    /// The selection `sync`'s flags make.
    fn of(args: &SyncArgs) -> Result<CliSelection> {
        Ok(CliSelection {
            user: args.host.user.clone(),
            unit: args
                .host
                .unit
                .clone()
                .map(|unit| unit_name(Some(unit), &FileConfig::default()))
                .transpose()?,
            secret_id: args.secret.secret_id.clone(),
            version_stage: args.version_stage.clone(),
            state_dir: args.host.state_dir.clone(),
            delivery: args.delivery,
        })
    }

    /// Whether a target of this user, unit and own secret (none: any) is selected.
    fn selects(
        &self,
        user: Option<&String>,
        unit: Option<&String>,
        secret_id: Option<&String>,
    ) -> bool {
        self.user.as_ref().is_none_or(|wanted| user == Some(wanted))
            && self.unit.as_ref().is_none_or(|wanted| unit == Some(wanted))
            && self
                .secret_id
                .as_ref()
                .is_none_or(|wanted| secret_id.is_none_or(|own| own == wanted))
    }
}

pub(super) fn sync_options(
    args: SyncArgs,
    file: FileConfig,
) -> Result<(SyncOptions, OutputFormat)> {
    let cli = CliSelection::of(&args)?;
    let verify = verify_limits(&args, &file);
    let delivery = args.delivery.or(file.delivery).unwrap_or_default();
    let (secret_id, json_key, aws) = args.secret.resolve(&file);
    let (probe, anthropic_base_url) = args.probe.resolve(&file);
    let host = args.host.resolve(&file)?;
    let default_stage = stage_name(
        args.version_stage
            .clone()
            .or(file.version_stage.clone())
            .unwrap_or_else(|| "AWSCURRENT".to_owned()),
    )?;
    let targets = if file.target.is_empty() {
        Vec::new()
    } else {
        file_targets(&file, &cli, &json_key, &default_stage)?
    };
    let secret_id = match (&targets[..], required_secret_id(secret_id, &file)) {
        (_, Ok(id)) => id,
        ([first, ..], Err(_)) => first.secret.secret_id.clone(),
        ([], Err(err)) => return Err(err),
    };
    if secret_id.is_empty() || secret_id.len() > 2048 {
        return Err(Error::config("--secret-id must be 1 to 2048 characters"));
    }
    let profile_ids = if args.profile_ids.is_empty() {
        file.profile_ids.filter(|ids| !ids.is_empty())
    } else {
        Some(args.profile_ids)
    };
    let containers = first_non_empty(args.containers, file.container);
    containers_alone(&containers, &targets)?;
    let options = SyncOptions {
        secret_id,
        json_key,
        user: host.user,
        home: host.home,
        discover: !host.unit_named,
        unit: host.unit,
        state_dir: host.state_dir,
        profile_ids,
        shell_profile: layered(
            args.shell_profile,
            args.no_shell_profile,
            file.shell_profile,
            false,
        ),
        dry_run: layered(
            args.dry_run.then_some(true),
            args.no_dry_run,
            file.dry_run,
            false,
        ),
        force: layered(args.force.then_some(true), args.no_force, file.force, false),
        no_restart: layered(args.no_restart, args.restart, file.no_restart, false),
        delivery,
        restart_fallback: layered(
            args.restart_fallback,
            args.no_restart_fallback,
            file.restart_fallback,
            false,
        ),
        containers,
        probe,
        anthropic_base_url,
        version_stage: default_stage,
        targets,
        lock_timeout: Duration::from_secs(args.lock_timeout.or(file.lock_timeout).unwrap_or(120)),
        verify,
        user_timeout: Duration::from_secs(
            args.user_timeout
                .or(file.user_timeout)
                .unwrap_or(600)
                .max(1),
        ),
        aws,
    };
    let output = args.output.or(file.output).unwrap_or(OutputFormat::Text);
    Ok((options, output))
}

/// How long a gateway may take to stop, to start and to settle, and the proof's deadline.
fn verify_limits(args: &SyncArgs, file: &FileConfig) -> VerifyLimits {
    VerifyLimits {
        timeout: Duration::from_secs(args.verify_timeout.or(file.verify_timeout).unwrap_or(60)),
        settle: Duration::from_millis(args.settle_ms.or(file.settle_ms).unwrap_or(1500)),
        stop: Duration::from_secs(
            args.stop_timeout
                .or(file.stop_timeout)
                .unwrap_or(360)
                .max(1),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The flags of `sync` and `status` that are per run, not settings (README "Config file"
    /// names them): everything else is a key of the file by its long name.
    const NOT_KEYS: [&str; 11] = [
        "config",
        "no-restart-fallback",
        "verbose",
        "log-format",
        "help",
        "no-shell-profile",
        "no-dry-run",
        "no-force",
        "restart",
        "check-secret",
        "nagios",
    ];

    #[test]
    fn every_setting_flag_of_sync_and_status_is_a_key_by_its_long_name() {
        use clap::CommandFactory;
        let cli = super::super::args::Cli::command();
        for name in ["sync", "status"] {
            let command = cli.find_subcommand(name).expect("subcommand");
            for arg in command.get_arguments() {
                let Some(long) = arg.get_long() else { continue };
                if NOT_KEYS.contains(&long) {
                    continue;
                }
                // A wrong type is fine here; an unknown key is not.
                let error = toml::from_str::<FileConfig>(&format!("{long} = true"))
                    .err()
                    .map(|e| e.to_string())
                    .unwrap_or_default();
                assert!(
                    !error.contains("unknown field"),
                    "{name} --{long} has no key in the config file: {error}"
                );
            }
        }
    }

    #[test]
    fn unit_names_are_completed_like_systemctl_does() {
        assert_eq!(
            service_unit("openclaw-gateway".into()).unwrap(),
            "openclaw-gateway.service"
        );
        assert_eq!(
            service_unit("openclaw-gateway-work.service".into()).unwrap(),
            "openclaw-gateway-work.service"
        );
        assert_eq!(service_unit("gw@1".into()).unwrap(), "gw@1.service");
        assert_eq!(
            service_unit("openclaw.timer".into())
                .unwrap_err()
                .exit_code(),
            2
        );
    }

    #[test]
    fn every_boolean_can_be_switched_off_at_a_higher_layer() {
        // (flag or environment, off switch, config file) -> value
        assert!(!layered(None, false, None, false));
        assert!(layered(None, false, Some(true), false));
        assert!(
            !layered(Some(false), false, Some(true), false),
            "environment =false beats the file"
        );
        assert!(
            !layered(None, true, Some(true), false),
            "the off switch beats the file"
        );
        assert!(
            !layered(Some(true), true, None, false),
            "the off switch beats the environment"
        );
        assert!(layered(Some(true), false, Some(false), false));
    }
}
