//! The command line (DESIGN.md section 5): argument parsing with clap, layering flags over
//! environment (`OPENCLAW_TOKEN_SYNC_*` and the standard AWS variables) over the TOML config file,
//! logging setup, and turning a report or an error into output and an exit code
//! (0 success, 1 failure, 2 usage or configuration).

use crate::aws::AwsSettings;
use crate::error::{Error, Result};
use crate::put::{self, PutOptions, PutReport};
use crate::status::{self, Severity, StatusOptions, StatusReport};
use crate::sync::{self, GatewayAction, Outcome, SyncOptions, SyncReport};
use crate::systemd::VerifyLimits;
use crate::trigger::{self, TriggerOptions, TriggerReport};
use clap::{Parser, Subcommand, ValueEnum};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// Default config file, read when it exists and `--config` is not given.
pub const DEFAULT_CONFIG: &str = "/etc/openclaw-token-sync/config.toml";

#[derive(Parser, Debug)]
#[command(
    name = "openclaw-token-sync",
    version,
    about = "Keeps one long-lived Anthropic token from AWS Secrets Manager in sync on an OpenClaw gateway host"
)]
struct Cli {
    /// TOML config file holding any flag (flags beat environment beat file).
    #[arg(
        long,
        global = true,
        env = "OPENCLAW_TOKEN_SYNC_CONFIG",
        value_name = "FILE"
    )]
    config: Option<PathBuf>,
    /// More log detail on stderr (-v info, -vv debug). Logs never contain a token.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Fetch the token, update files and stores, restart and verify the gateway if it changed.
    Sync(SyncArgs),
    /// Diagnose this host read-only: exit 0 healthy, 1 problems, 3 warnings only.
    Status(StatusArgs),
    /// Run sync (or status) on many instances through SSM Run Command.
    Trigger(TriggerArgs),
    /// Store a new token (read from stdin) as the secret's AWSCURRENT version.
    Put(PutArgs),
}

/// Where and how a fleet command runs; shared by `trigger` and `put --trigger`.
#[derive(clap::Args, Debug)]
struct FleetArgs {
    /// Instances by tag, as tag:KEY=VALUE (repeatable; all must match).
    #[arg(long = "targets", value_name = "tag:KEY=VALUE")]
    targets: Vec<String>,
    /// Instances by id, comma separated (sent 50 per command).
    #[arg(long, value_delimiter = ',', value_name = "ID,...")]
    instance_ids: Vec<String>,
    /// Name of the SSM document [default: OpenClawTokenSync].
    #[arg(long, value_name = "NAME")]
    document: Option<String>,
    /// The gateway's user on the instances [default: ubuntu].
    #[arg(long, env = "OPENCLAW_TOKEN_SYNC_USER", value_name = "NAME")]
    user: Option<String>,
    /// The gateway's unit on the instances [default: openclaw-gateway.service].
    #[arg(long, env = "OPENCLAW_TOKEN_SYNC_UNIT", value_name = "NAME")]
    unit: Option<String>,
    /// Region the instances read the secret from [default: their own].
    #[arg(long, value_name = "REGION")]
    instance_region: Option<String>,
    /// SSM MaxConcurrency, e.g. 10 or 10% [default: 10%].
    #[arg(long, value_name = "N|N%")]
    max_concurrency: Option<String>,
    /// SSM MaxErrors, e.g. 0 or 5% [default: 0].
    #[arg(long, value_name = "N|N%")]
    max_errors: Option<String>,
    /// Comment shown in the SSM console.
    #[arg(long, value_name = "TEXT")]
    comment: Option<String>,
    /// Wait for every instance and print one row each; exit 0 only if all succeeded.
    #[arg(long)]
    wait: bool,
    /// With --wait: give up waiting after this many seconds [default: 900].
    #[arg(long, value_name = "SECONDS")]
    timeout: Option<u64>,
    /// With --wait: seconds between poll rounds [default: 3].
    #[arg(long, value_name = "SECONDS")]
    poll_interval: Option<u64>,
    /// Pass --force to sync on the instances.
    #[arg(long)]
    force: bool,
    /// Pass --no-restart to sync on the instances.
    #[arg(long)]
    no_restart: bool,
    /// Pass --dry-run to sync on the instances.
    #[arg(long)]
    dry_run: bool,
}

/// AWS access and output for the operator-side commands (`trigger`, `put`).
#[derive(clap::Args, Debug)]
struct ApiArgs {
    /// AWS region of Secrets Manager and SSM (else AWS_REGION, the profile, the config file).
    #[arg(long, value_name = "REGION")]
    region: Option<String>,
    /// Endpoint for Secrets Manager and SSM (else AWS_ENDPOINT_URL, the config file).
    #[arg(long, value_name = "URL")]
    endpoint_url: Option<String>,
    /// Deadline in seconds for each API call, retries included [default: 30].
    #[arg(long, value_name = "SECONDS")]
    api_timeout: Option<u64>,
    /// Output format [default: text].
    #[arg(long, value_enum, env = "OPENCLAW_TOKEN_SYNC_OUTPUT")]
    output: Option<OutputFormat>,
}

impl ApiArgs {
    fn settings(self, file: &FileConfig) -> (AwsSettings, OutputFormat) {
        let output = self.output.or(file.output).unwrap_or(OutputFormat::Text);
        (
            aws_settings(self.region, self.endpoint_url, self.api_timeout, file),
            output,
        )
    }
}

#[derive(clap::Args, Debug)]
struct TriggerArgs {
    /// Secrets Manager secret name or ARN the instances read.
    #[arg(long, env = "OPENCLAW_TOKEN_SYNC_SECRET_ID", value_name = "NAME|ARN")]
    secret_id: Option<String>,
    /// What the instances run [default: sync].
    #[arg(long, value_enum)]
    action: Option<trigger::Action>,
    #[command(flatten)]
    fleet: FleetArgs,
    #[command(flatten)]
    api: ApiArgs,
}

#[derive(clap::Args, Debug)]
struct PutArgs {
    /// Secrets Manager secret name or ARN.
    #[arg(long, env = "OPENCLAW_TOKEN_SYNC_SECRET_ID", value_name = "NAME|ARN")]
    secret_id: Option<String>,
    /// Store {"KEY": token} instead of the plain token.
    #[arg(long, value_name = "KEY")]
    json_key: Option<String>,
    /// Then run `trigger` with the fleet flags below.
    #[arg(long)]
    trigger: bool,
    #[command(flatten)]
    fleet: FleetArgs,
    #[command(flatten)]
    api: ApiArgs,
}

/// Which user and gateway on this host a command acts for; shared by `sync` and `status`.
#[derive(clap::Args, Debug)]
struct HostArgs {
    /// Act for this user (needs root); privileges are dropped to it before any file is touched.
    #[arg(long, env = "OPENCLAW_TOKEN_SYNC_USER", value_name = "NAME")]
    user: Option<String>,
    /// Home directory of the target user, for unusual layouts.
    #[arg(long, env = "OPENCLAW_TOKEN_SYNC_HOME", value_name = "DIR")]
    home: Option<PathBuf>,
    /// Gateway user unit [default: openclaw-gateway.service].
    #[arg(long, env = "OPENCLAW_TOKEN_SYNC_UNIT", value_name = "NAME")]
    unit: Option<String>,
    /// OpenClaw state directory (else OPENCLAW_STATE_DIR, OPENCLAW_HOME/.openclaw, ~/.openclaw).
    #[arg(long, env = "OPENCLAW_TOKEN_SYNC_STATE_DIR", value_name = "DIR")]
    state_dir: Option<PathBuf>,
}

/// The secret and how to reach it; shared by `sync` and `status --check-secret`.
#[derive(clap::Args, Debug)]
struct SecretArgs {
    /// Secrets Manager secret name or ARN.
    #[arg(long, env = "OPENCLAW_TOKEN_SYNC_SECRET_ID", value_name = "NAME|ARN")]
    secret_id: Option<String>,
    /// Key holding the token when the secret is a JSON object [default: token].
    #[arg(long, env = "OPENCLAW_TOKEN_SYNC_JSON_KEY", value_name = "KEY")]
    json_key: Option<String>,
    /// AWS region (else AWS_REGION, the AWS profile, the config file, or the secret ARN).
    #[arg(long, value_name = "REGION")]
    region: Option<String>,
    /// Secrets Manager endpoint (else AWS_ENDPOINT_URL, or the config file).
    #[arg(long, value_name = "URL")]
    endpoint_url: Option<String>,
    /// Deadline in seconds for the Secrets Manager call, retries included [default: 30].
    #[arg(long, value_name = "SECONDS")]
    timeout: Option<u64>,
}

impl SecretArgs {
    /// `(secret id if any, JSON key, AWS settings)`, flags and environment over the config file.
    fn resolve(self, file: &FileConfig) -> (Option<String>, String, AwsSettings) {
        let json_key = self
            .json_key
            .or_else(|| file.json_key.clone())
            .unwrap_or_else(|| "token".to_owned());
        let aws = aws_settings(self.region, self.endpoint_url, self.timeout, file);
        (self.secret_id, json_key, aws)
    }
}

/// `HostArgs` after the config file filled what the flags and environment left open.
struct Host {
    user: Option<String>,
    home: Option<PathBuf>,
    unit: String,
    state_dir: Option<PathBuf>,
}

impl HostArgs {
    fn resolve(self, file: &FileConfig) -> Result<Host> {
        Ok(Host {
            unit: unit_name(self.unit, file)?,
            user: self.user.or_else(|| file.user.clone()),
            home: self.home.or_else(|| file.home.clone()),
            state_dir: self.state_dir.or_else(|| file.state_dir.clone()),
        })
    }
}

#[derive(clap::Args, Debug)]
struct StatusArgs {
    #[command(flatten)]
    host: HostArgs,
    /// Also compare with the secret's AWSCURRENT version (one GetSecretValue; needs --secret-id).
    #[arg(long)]
    check_secret: bool,
    #[command(flatten)]
    secret: SecretArgs,
    /// Assumed token lifetime when the secret has no expires_at [default: 365].
    #[arg(long, value_name = "DAYS")]
    token_lifetime_days: Option<u64>,
    /// Warn when the token expires within this many days [default: 30].
    #[arg(long, value_name = "DAYS")]
    expiry_warning_days: Option<u64>,
    #[command(flatten)]
    probe: ProbeArgs,
    /// Output format [default: text].
    #[arg(long, value_enum, env = "OPENCLAW_TOKEN_SYNC_OUTPUT")]
    output: Option<OutputFormat>,
}

/// The live token probe, shared by `sync` and `status`.
#[derive(clap::Args, Debug)]
struct ProbeArgs {
    /// Skip the live request that proves Anthropic accepts the token.
    #[arg(long, env = "OPENCLAW_TOKEN_SYNC_NO_PROBE")]
    no_probe: bool,
    /// Send our own probe here instead of the gateway's configured Anthropic base URL
    /// (proxies, tests) [default: the gateway's `models.providers.anthropic.baseUrl`, else
    /// https://api.anthropic.com].
    #[arg(
        long,
        value_name = "URL",
        env = "OPENCLAW_TOKEN_SYNC_ANTHROPIC_BASE_URL"
    )]
    anthropic_base_url: Option<String>,
}

impl ProbeArgs {
    /// (probe on?, base URL override), flags and environment over the config file.
    fn resolve(self, file: &FileConfig) -> (bool, Option<String>) {
        (
            !self.no_probe && file.probe.unwrap_or(true),
            self.anthropic_base_url
                .or_else(|| file.anthropic_base_url.clone())
                .filter(|url| !url.is_empty()),
        )
    }
}

#[derive(clap::Args, Debug)]
struct SyncArgs {
    #[command(flatten)]
    secret: SecretArgs,
    #[command(flatten)]
    host: HostArgs,
    /// Remove only these Anthropic profile ids from the stores (repeatable) [default: all].
    #[arg(long = "profile-id", value_name = "ID")]
    profile_ids: Vec<String>,
    /// Also keep a marked block in ~/.bash_profile that sources ~/.openclaw-env.
    #[arg(long, env = "OPENCLAW_TOKEN_SYNC_SHELL_PROFILE")]
    shell_profile: bool,
    /// Say what would change (fingerprints, never values); touch nothing.
    #[arg(long)]
    dry_run: bool,
    /// Rewrite, clean and restart even when nothing changed.
    #[arg(long)]
    force: bool,
    /// Write files and clean stores but do not stop/start the gateway.
    #[arg(long, env = "OPENCLAW_TOKEN_SYNC_NO_RESTART")]
    no_restart: bool,
    #[command(flatten)]
    probe: ProbeArgs,
    /// Output format [default: text].
    #[arg(long, value_enum, env = "OPENCLAW_TOKEN_SYNC_OUTPUT")]
    output: Option<OutputFormat>,
    /// Seconds to wait for another run's lock [default: 120].
    #[arg(long, value_name = "SECONDS")]
    lock_timeout: Option<u64>,
    /// Seconds to wait for the restarted gateway to run [default: 60].
    #[arg(long, value_name = "SECONDS")]
    verify_timeout: Option<u64>,
    /// Milliseconds the restarted gateway must keep running to count as up [default: 1500].
    #[arg(long, value_name = "MS")]
    settle_ms: Option<u64>,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    Text,
    Json,
}

/// The config file: any flag, kebab-case, as TOML.
#[derive(serde::Deserialize, Default, Debug)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileConfig {
    secret_id: Option<String>,
    json_key: Option<String>,
    region: Option<String>,
    endpoint_url: Option<String>,
    user: Option<String>,
    home: Option<PathBuf>,
    unit: Option<String>,
    state_dir: Option<PathBuf>,
    profile_ids: Option<Vec<String>>,
    shell_profile: Option<bool>,
    dry_run: Option<bool>,
    force: Option<bool>,
    no_restart: Option<bool>,
    probe: Option<bool>,
    anthropic_base_url: Option<String>,
    output: Option<OutputFormat>,
    timeout: Option<u64>,
    lock_timeout: Option<u64>,
    verify_timeout: Option<u64>,
    settle_ms: Option<u64>,
    token_lifetime_days: Option<u64>,
    expiry_warning_days: Option<u64>,
}

fn load_file_config(explicit: Option<&Path>) -> Result<FileConfig> {
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
    toml::from_str(&text).map_err(|e| {
        Error::config(format!(
            "{}: invalid config file: {}",
            path.display(),
            e.message()
        ))
    })
}

fn env_is_set(names: &[&str]) -> bool {
    names
        .iter()
        .any(|n| std::env::var_os(n).is_some_and(|v| !v.is_empty()))
}

/// Flags beat the standard AWS environment, which beats the config file.
fn aws_settings(
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

fn unit_name(flag: Option<String>, file: &FileConfig) -> Result<String> {
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
    Ok(unit)
}

/// `--secret-id`, else the environment (through clap), else the config file.
fn required_secret_id(flag: Option<String>, file: &FileConfig) -> Result<String> {
    flag.or_else(|| file.secret_id.clone()).ok_or_else(|| {
        Error::config("no secret: pass --secret-id, set OPENCLAW_TOKEN_SYNC_SECRET_ID, or put secret-id in the config file")
    })
}

/// Runs one prepared command: configuration errors exit 2, run errors 1, reports their own code.
fn execute<O, R>(
    json_requested: bool,
    prepared: Result<(O, OutputFormat)>,
    run: impl FnOnce(&O) -> Result<R>,
    print: impl FnOnce(&R, OutputFormat),
    exit_code: impl FnOnce(&R) -> u8,
) -> ExitCode {
    let (options, output) = match prepared {
        Ok(prepared) => prepared,
        Err(err) => return fail(&err, json_requested),
    };
    match run(&options) {
        Ok(report) => {
            print(&report, output);
            ExitCode::from(exit_code(&report))
        }
        Err(err) => fail(&err, output == OutputFormat::Json),
    }
}

fn trigger_options(
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
            .unwrap_or_else(|| crate::ssm_document::DEFAULT_DOCUMENT_NAME.to_owned()),
        action,
        secret_id,
        user: fleet
            .user
            .or(file.user.clone())
            .or_else(|| crate::ssm_document::default_of("user"))
            .unwrap_or_default(),
        unit: unit_name(fleet.unit, file)?,
        instance_region: fleet.instance_region.unwrap_or_default(),
        extra_args,
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

fn status_options(args: StatusArgs, file: FileConfig) -> Result<(StatusOptions, OutputFormat)> {
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
            .unwrap_or(365),
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

fn sync_options(args: SyncArgs, file: FileConfig) -> Result<(SyncOptions, OutputFormat)> {
    let (secret_id, json_key, aws) = args.secret.resolve(&file);
    let (probe, anthropic_base_url) = args.probe.resolve(&file);
    let host = args.host.resolve(&file)?;
    let secret_id = required_secret_id(secret_id, &file)?;
    if secret_id.is_empty() || secret_id.len() > 2048 {
        return Err(Error::config("--secret-id must be 1 to 2048 characters"));
    }
    let profile_ids = if args.profile_ids.is_empty() {
        file.profile_ids.filter(|ids| !ids.is_empty())
    } else {
        Some(args.profile_ids)
    };
    let options = SyncOptions {
        secret_id,
        json_key,
        user: host.user,
        home: host.home,
        unit: host.unit,
        state_dir: host.state_dir,
        profile_ids,
        shell_profile: args.shell_profile || file.shell_profile.unwrap_or(false),
        dry_run: args.dry_run || file.dry_run.unwrap_or(false),
        force: args.force || file.force.unwrap_or(false),
        no_restart: args.no_restart || file.no_restart.unwrap_or(false),
        probe,
        anthropic_base_url,
        lock_timeout: Duration::from_secs(args.lock_timeout.or(file.lock_timeout).unwrap_or(120)),
        verify: VerifyLimits {
            timeout: Duration::from_secs(args.verify_timeout.or(file.verify_timeout).unwrap_or(60)),
            settle: Duration::from_millis(args.settle_ms.or(file.settle_ms).unwrap_or(1500)),
        },
        aws,
    };
    let output = args.output.or(file.output).unwrap_or(OutputFormat::Text);
    Ok((options, output))
}

fn init_logging(verbose: u8) {
    use tracing_subscriber::filter::{LevelFilter, Targets};
    use tracing_subscriber::prelude::*;
    let ours = match verbose {
        0 => LevelFilter::WARN,
        1 => LevelFilter::INFO,
        _ => LevelFilter::DEBUG,
    };
    // The SDK's own debug and trace events can include request and response bodies: never
    // let them through, whatever the verbosity.
    let filter = Targets::new()
        .with_default(LevelFilter::WARN)
        .with_target("openclaw_token_sync", ours);
    let _ = tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_target(false)
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                .with_filter(filter),
        )
        .try_init();
}

/// Entry point: parses arguments, runs the command, prints the outcome, returns the exit code.
pub fn main() -> ExitCode {
    // Files are created with explicit modes; a restrictive umask covers anything else.
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    let cli = Cli::parse();
    init_logging(cli.verbose);
    let config = cli.config.as_deref();
    match cli.command {
        Command::Sync(args) => {
            let json_requested = args.output == Some(OutputFormat::Json);
            let prepared = load_file_config(config).and_then(|file| sync_options(args, file));
            execute(
                json_requested,
                prepared,
                sync::run,
                print_report,
                SyncReport::exit_code,
            )
        }
        Command::Status(args) => {
            let json_requested = args.output == Some(OutputFormat::Json);
            let prepared = load_file_config(config).and_then(|file| status_options(args, file));
            execute(
                json_requested,
                prepared,
                status::run,
                print_status,
                StatusReport::exit_code,
            )
        }
        Command::Trigger(args) => run_trigger(args, config),
        Command::Put(args) => run_put(args, config),
    }
}

fn run_trigger(args: TriggerArgs, config: Option<&Path>) -> ExitCode {
    let json = args.api.output == Some(OutputFormat::Json);
    let prepared = load_file_config(config).and_then(|file| {
        let (aws, output) = args.api.settings(&file);
        let options = trigger_options(
            args.secret_id,
            args.action.unwrap_or(trigger::Action::Sync),
            args.fleet,
            aws,
            &file,
        )?;
        Ok((options, output))
    });
    execute(
        json,
        prepared,
        trigger::run,
        print_trigger,
        TriggerReport::exit_code,
    )
}

fn run_put(args: PutArgs, config: Option<&Path>) -> ExitCode {
    let json = args.api.output == Some(OutputFormat::Json);
    let prepared = load_file_config(config).and_then(|file| {
        let (aws, output) = args.api.settings(&file);
        let secret_id = required_secret_id(args.secret_id.clone(), &file)?;
        let chained = if args.trigger {
            Some(trigger_options(
                Some(secret_id.clone()),
                trigger::Action::Sync,
                args.fleet,
                aws.clone(),
                &file,
            )?)
        } else if !args.fleet.targets.is_empty() || !args.fleet.instance_ids.is_empty() {
            return Err(Error::config(
                "--targets / --instance-ids with put need --trigger",
            ));
        } else {
            None
        };
        let options = PutOptions {
            secret_id,
            json_key: args.json_key.clone(),
            aws,
        };
        Ok((options, chained, output))
    });
    let (options, chained, output) = match prepared {
        Ok(prepared) => prepared,
        Err(err) => return fail(&err, json),
    };
    let result = put::read_token_from_stdin().and_then(|token| put::run(&options, token));
    let report = match result {
        Ok(report) => report,
        Err(err) => return fail(&err, output == OutputFormat::Json),
    };
    print_put(&report, output);
    match chained {
        None => ExitCode::SUCCESS,
        Some(trigger_options) => match trigger::run(&trigger_options) {
            Ok(report) => {
                print_trigger(&report, output);
                ExitCode::from(report.exit_code())
            }
            Err(err) => fail(&err, output == OutputFormat::Json),
        },
    }
}

fn print_put(report: &PutReport, output: OutputFormat) {
    match output {
        OutputFormat::Json => println!(
            "{}",
            serde_json::to_string(report).expect("report serialises")
        ),
        OutputFormat::Text => println!(
            "put: version {} ({}, {}) is now AWSCURRENT of {}",
            report.version_id, report.kind, report.fingerprint, report.arn
        ),
    }
}

fn print_trigger(report: &TriggerReport, output: OutputFormat) {
    if output == OutputFormat::Json {
        println!(
            "{}",
            serde_json::to_string(report).expect("report serialises")
        );
        return;
    }
    println!(
        "trigger: {} sent with document {} as {} command(s): {}",
        report.action,
        report.document,
        report.command_ids.len(),
        report.command_ids.join(", ")
    );
    if !report.waited {
        return;
    }
    for instance in &report.instances {
        println!(
            "{:<20} {:<12} {}",
            instance.instance_id, instance.status, instance.summary
        );
    }
    println!(
        "{} instance(s): {} succeeded, {} failed{}",
        report.instances.len(),
        report.succeeded,
        report.failed,
        if report.complete {
            ""
        } else {
            ", gave up waiting (--timeout)"
        }
    );
}

fn print_status(report: &StatusReport, output: OutputFormat) {
    if output == OutputFormat::Json {
        println!(
            "{}",
            serde_json::to_string(report).expect("report serialises")
        );
        return;
    }
    println!(
        "openclaw-token-sync status for {} ({}), unit {}",
        report.user,
        report.home.display(),
        report.unit
    );
    for finding in &report.findings {
        let label = match finding.severity {
            Severity::Ok => "ok",
            Severity::Warning => "WARNING",
            Severity::Problem => "PROBLEM",
        };
        println!("  {label:<8} {:<26} {}", finding.check, finding.seen);
        if let Some(why) = &finding.why {
            println!("  {:<8} {:<26} why: {why}", "", "");
        }
        if let Some(fix) = &finding.fix {
            println!("  {:<8} {:<26} fix: {fix}", "", "");
        }
    }
    println!(
        "{}: {} problem(s), {} warning(s)",
        if report.healthy {
            "healthy"
        } else {
            "attention"
        },
        report.problems,
        report.warnings
    );
}

fn fail(err: &Error, json: bool) -> ExitCode {
    eprintln!("openclaw-token-sync: error: {err}");
    if json {
        let body = serde_json::json!({
            "result": "failed",
            "error": err.message(),
            "exit_code": err.exit_code(),
        });
        println!("{body}");
    }
    ExitCode::from(err.exit_code())
}

fn print_report(report: &SyncReport, output: OutputFormat) {
    for warning in &report.warnings {
        eprintln!("openclaw-token-sync: warning: {warning}");
    }
    for store in report.stores.iter().filter(|s| s.error.is_some()) {
        eprintln!(
            "openclaw-token-sync: warning: store of agent {} skipped: {}",
            store.agent,
            store.error.as_deref().unwrap_or_default()
        );
    }
    match output {
        OutputFormat::Json => println!(
            "{}",
            serde_json::to_string(report).expect("report serialises")
        ),
        OutputFormat::Text => {
            if report.result == Outcome::DryRun {
                for line in dry_run_lines(report) {
                    println!("{line}");
                }
            }
            if report.result == Outcome::Applied {
                for store in report.stores.iter().filter(|s| s.error.is_none()) {
                    println!("{}", store_line("removed from", store));
                }
            }
            println!("{}", summary_line(report));
        }
    }
}

fn dry_run_lines(report: &SyncReport) -> Vec<String> {
    let mut lines = Vec::new();
    for file in &report.files {
        let verb = match file.action {
            crate::managed_files::FileAction::Create => "create",
            crate::managed_files::FileAction::Update => "update",
            crate::managed_files::FileAction::FixMetadata => "fix mode/owner of",
            crate::managed_files::FileAction::Replace => "replace (unreadable)",
            crate::managed_files::FileAction::Unchanged => continue,
        };
        lines.push(format!(
            "would {verb} {} ({} {})",
            file.path.display(),
            report.secret.variable,
            report.secret.fingerprint
        ));
    }
    for store in &report.stores {
        if !store.removed_profiles.is_empty() || store.removed_references > 0 {
            lines.push(store_line("would remove from", store));
        }
    }
    if report.gateway.action == GatewayAction::WouldRestart {
        lines.push(format!(
            "would stop, then start {} and verify it",
            report.gateway.unit
        ));
    }
    lines
}

/// What was (or would be) removed from one store: ids and a count, never values.
fn store_line(verb: &str, store: &sync::StoreReport) -> String {
    format!(
        "{verb} agent {} ({}): profiles [{}], {} references",
        store.agent,
        store.path.display(),
        store.removed_profiles.join(", "),
        store.removed_references
    )
}

/// The one summary line of a run.
pub fn summary_line(report: &SyncReport) -> String {
    let secret = format!(
        "version {} ({}, {})",
        report.secret.version_id, report.secret.kind, report.secret.fingerprint
    );
    let changed_files = report
        .files
        .iter()
        .filter(|f| f.action != crate::managed_files::FileAction::Unchanged)
        .count();
    let removed: usize = report.stores.iter().map(|s| s.removed_profiles.len()).sum();
    let agents = report
        .stores
        .iter()
        .filter(|s| !s.removed_profiles.is_empty() || s.removed_references > 0)
        .count();
    let skipped = report.stores.iter().filter(|s| s.error.is_some()).count();
    let proof = report
        .gateway
        .proof
        .as_ref()
        .map(|p| format!(" ({})", p.describe()))
        .unwrap_or_default();
    let gateway = match report.gateway.action {
        GatewayAction::Restarted => format!(
            "{} restarted (pid {} -> {}) and verified{proof}",
            report.gateway.unit,
            report.gateway.old_pid.map_or("-".into(), |p| p.to_string()),
            report.gateway.new_pid.map_or("-".into(), |p| p.to_string())
        ),
        GatewayAction::Verified => format!(
            "{} verified without restart (pid {}){proof}",
            report.gateway.unit,
            report.gateway.new_pid.unwrap_or(0)
        ),
        GatewayAction::Unchanged => format!("{} not restarted", report.gateway.unit),
        GatewayAction::NotRestarted => {
            format!("{} not restarted (--no-restart)", report.gateway.unit)
        }
        GatewayAction::UnitNotFound => {
            format!("{} not found, nothing restarted", report.gateway.unit)
        }
        GatewayAction::Inactive => format!("{} is stopped, left stopped", report.gateway.unit),
        GatewayAction::WouldRestart => format!("{} would be restarted", report.gateway.unit),
    };
    let skipped_note = if skipped > 0 {
        format!("; {skipped} store(s) skipped")
    } else {
        String::new()
    };
    match report.result {
        Outcome::Unchanged => format!(
            "unchanged: {secret} already applied for {}; {gateway}{skipped_note}",
            report.user
        ),
        Outcome::Applied => format!(
            "applied: {secret} for {}: {changed_files} file(s) written, {removed} Anthropic profile(s) removed from {agents} store(s); {gateway}{skipped_note}",
            report.user
        ),
        Outcome::DryRun => format!(
            "dry run: {secret} for {}: {changed_files} file(s) would change, {removed} Anthropic profile(s) would be removed; nothing was touched{skipped_note}",
            report.user
        ),
    }
}
