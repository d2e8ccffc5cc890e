//! The command line's arguments as clap parses them: one struct per command, and the groups
//! several commands share (host, secret, probe, fleet, API access). Values stay `Option`s here;
//! `config` layers them over the environment and the config file.

use super::journal::LogFormat;
use crate::fleet::trigger;
use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "openclaw-token-sync",
    version = env!("OCSYNC_VERSION"),
    // Our own `help` below: clap's takes no flags, so `help --help` was an error.
    disable_help_subcommand = true,
    about = "Keeps one long-lived Anthropic token from AWS Secrets Manager in sync on an OpenClaw gateway host"
)]
pub(crate) struct Cli {
    /// TOML config file holding any flag (flags beat environment beat file).
    #[arg(
        long,
        global = true,
        env = "OPENCLAW_TOKEN_SYNC_CONFIG",
        value_name = "FILE"
    )]
    pub(crate) config: Option<PathBuf>,
    /// More log detail on stderr (-v info, -vv debug). Logs never contain a token.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub(crate) verbose: u8,
    /// Log lines on stderr as text or as one JSON object per line. Under systemd each line
    /// also carries its syslog priority, so `journalctl -p warning` shows only problems.
    #[arg(
        long,
        global = true,
        value_enum,
        env = "OPENCLAW_TOKEN_SYNC_LOG_FORMAT",
        default_value_t = LogFormat::Text
    )]
    pub(crate) log_format: LogFormat,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Subcommand, Debug)]
pub(crate) enum Command {
    /// Fetch the token, update files and stores, restart and verify the gateway if it changed.
    Sync(SyncArgs),
    /// Diagnose this host read-only: exit 0 healthy, 1 problems, 3 warnings only.
    Status(StatusArgs),
    /// Run sync (or status) on many instances through SSM Run Command.
    Trigger(TriggerArgs),
    /// Store a new token (read from stdin) as the secret's AWSCURRENT version (or, with
    /// --label, as a canary), after a live request proved Anthropic accepts it.
    Put(PutArgs),
    /// Move AWSCURRENT to the version a label (default CANARY) points at, and remove the label,
    /// once its token proved valid and (unless --no-probe) accepted by Anthropic.
    Promote(PromoteArgs),
    /// Move AWSCURRENT back to the AWSPREVIOUS version, once its token proved valid and (unless
    /// --no-probe) accepted by Anthropic; or, with --label, abort a canary.
    Rollback(RollbackArgs),
    /// Print the shell completion script for SHELL (bash, zsh, fish, elvish, powershell).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print this help, or a command's (`help sync`, as `sync --help`).
    Help {
        /// The command whose help to print.
        command: Option<String>,
    },
    /// Print the man page (roff), or with --out-dir write it and one page per command there.
    Man {
        /// Write openclaw-token-sync.1 and openclaw-token-sync-COMMAND.1 into this directory.
        #[arg(long, value_name = "DIR")]
        out_dir: Option<PathBuf>,
    },
}

/// Where and how a fleet command runs; shared by `trigger` and `put --trigger`.
#[derive(clap::Args, Debug)]
pub(crate) struct FleetArgs {
    /// Instances by tag, as tag:KEY=VALUE (repeatable; all must match).
    #[arg(long = "targets", value_name = "tag:KEY=VALUE")]
    pub(crate) targets: Vec<String>,
    /// Instances by id, comma separated (sent 50 per command).
    #[arg(long, value_delimiter = ',', value_name = "ID,...")]
    pub(crate) instance_ids: Vec<String>,
    /// Name of the SSM document [default: OpenClawTokenSync].
    #[arg(long, value_name = "NAME")]
    pub(crate) document: Option<String>,
    /// The gateway's user on the instances [default: each instance's own config file, as its
    /// install wrote it].
    #[arg(long, env = "OPENCLAW_TOKEN_SYNC_USER", value_name = "NAME", value_hint = clap::ValueHint::Username)]
    pub(crate) user: Option<String>,
    /// The gateway's unit on the instances [default: every OpenClaw gateway of the user].
    #[arg(long, env = "OPENCLAW_TOKEN_SYNC_UNIT", value_name = "NAME")]
    pub(crate) unit: Option<String>,
    /// Region the instances read the secret from [default: their own].
    #[arg(long, value_name = "REGION")]
    pub(crate) instance_region: Option<String>,
    /// SSM MaxConcurrency, e.g. 10 or 10% [default: 10%].
    #[arg(long, value_name = "N|N%")]
    pub(crate) max_concurrency: Option<String>,
    /// SSM MaxErrors, e.g. 0 or 5% [default: 0].
    #[arg(long, value_name = "N|N%")]
    pub(crate) max_errors: Option<String>,
    /// Comment shown in the SSM console.
    #[arg(long, value_name = "TEXT")]
    pub(crate) comment: Option<String>,
    /// Wait for every instance and print one row each; exit 0 only if all succeeded.
    #[arg(long)]
    pub(crate) wait: bool,
    /// With --wait: give up waiting after this many seconds [default: 900].
    #[arg(long = "wait-timeout", value_name = "SECONDS")]
    pub(crate) timeout: Option<u64>,
    /// With --wait: seconds between poll rounds [default: 3].
    #[arg(long, value_name = "SECONDS")]
    pub(crate) poll_interval: Option<u64>,
    /// Pass --force to sync on the instances.
    #[arg(long)]
    pub(crate) force: bool,
    /// Pass --no-restart to sync on the instances.
    #[arg(long)]
    pub(crate) no_restart: bool,
    /// Pass --dry-run to sync on the instances.
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// The staging label the instances sync [default: AWSCURRENT].
    #[arg(long, value_name = "NAME")]
    pub(crate) version_stage: Option<String>,
}

/// AWS access and output for the operator-side commands (`trigger`, `put`).
#[derive(clap::Args, Debug)]
pub(crate) struct ApiArgs {
    /// AWS region of Secrets Manager and SSM (else AWS_REGION, the profile, the config file).
    #[arg(long, value_name = "REGION")]
    pub(crate) region: Option<String>,
    /// Endpoint for Secrets Manager and SSM (else AWS_ENDPOINT_URL, the config file).
    #[arg(long, value_name = "URL")]
    pub(crate) endpoint_url: Option<String>,
    /// Deadline in seconds for each API call, retries included [default: 30] (as in `sync`;
    /// also spelled `--api-timeout`).
    #[arg(long = "timeout", alias = "api-timeout", value_name = "SECONDS")]
    pub(crate) api_timeout: Option<u64>,
    /// Output format [default: text].
    #[arg(long, value_enum, env = "OPENCLAW_TOKEN_SYNC_OUTPUT")]
    pub(crate) output: Option<OutputFormat>,
}

#[derive(clap::Args, Debug)]
pub(crate) struct TriggerArgs {
    /// Secrets Manager secret name or ARN the instances read.
    #[arg(long, env = "OPENCLAW_TOKEN_SYNC_SECRET_ID", value_name = "NAME|ARN")]
    pub(crate) secret_id: Option<String>,
    /// What the instances run [default: sync].
    #[arg(long, value_enum)]
    pub(crate) action: Option<trigger::Action>,
    #[command(flatten, next_help_heading = "Instances and rollout")]
    pub(crate) fleet: FleetArgs,
    #[command(flatten, next_help_heading = "AWS and output")]
    pub(crate) api: ApiArgs,
}

#[derive(clap::Args, Debug)]
pub(crate) struct PutArgs {
    /// Store {"KEY": token} instead of the plain token (the secret's other keys are kept).
    #[arg(long, value_name = "KEY")]
    pub(crate) json_key: Option<String>,
    /// Put the version under this staging label only (e.g. CANARY); AWSCURRENT stays.
    #[arg(long, value_name = "NAME")]
    pub(crate) label: Option<String>,
    #[command(flatten)]
    pub(crate) probe: ProbeArgs,
    #[command(flatten)]
    pub(crate) change: ChangeArgs,
}

#[derive(clap::Args, Debug)]
pub(crate) struct PromoteArgs {
    /// The label whose version becomes AWSCURRENT [default: CANARY].
    #[arg(long, value_name = "NAME")]
    pub(crate) label: Option<String>,
    #[command(flatten)]
    pub(crate) stage: StageArgs,
}

#[derive(clap::Args, Debug)]
pub(crate) struct RollbackArgs {
    /// Abort a canary instead: remove this label (its instances fall back to AWSCURRENT);
    /// AWSCURRENT does not move.
    #[arg(long, value_name = "NAME")]
    pub(crate) label: Option<String>,
    #[command(flatten)]
    pub(crate) stage: StageArgs,
}

/// What `promote` and `rollback` share.
#[derive(clap::Args, Debug)]
pub(crate) struct StageArgs {
    /// Key of the token in a JSON secret, for the check and the fingerprints [default: token].
    #[arg(long, value_name = "KEY")]
    pub(crate) json_key: Option<String>,
    /// The live request that proves Anthropic accepts the target's token before AWSCURRENT
    /// moves onto it (as `put` probes before storing).
    #[command(flatten)]
    pub(crate) probe: ProbeArgs,
    #[command(flatten)]
    pub(crate) change: ChangeArgs,
}

/// What the commands that change the secret (`put`, `promote`, `rollback`) share: the secret,
/// AWS access, and the trigger they may chain.
#[derive(clap::Args, Debug)]
pub(crate) struct ChangeArgs {
    /// Secrets Manager secret name or ARN.
    #[arg(long, env = "OPENCLAW_TOKEN_SYNC_SECRET_ID", value_name = "NAME|ARN")]
    pub(crate) secret_id: Option<String>,
    /// Then run `trigger` with the fleet flags below.
    #[arg(long)]
    pub(crate) trigger: bool,
    #[command(
        flatten,
        next_help_heading = "With --trigger (as `trigger` takes them)"
    )]
    pub(crate) fleet: FleetArgs,
    #[command(flatten, next_help_heading = "AWS and output")]
    pub(crate) api: ApiArgs,
}

/// Which user and gateway on this host a command acts for; shared by `sync` and `status`.
#[derive(clap::Args, Debug)]
pub(crate) struct HostArgs {
    /// Act for this user (needs root); privileges are dropped to it before any file is touched.
    #[arg(long, env = "OPENCLAW_TOKEN_SYNC_USER", value_name = "NAME", value_hint = clap::ValueHint::Username)]
    pub(crate) user: Option<String>,
    /// Home directory of the target user, for unusual layouts.
    #[arg(long, env = "OPENCLAW_TOKEN_SYNC_HOME", value_name = "DIR", value_hint = clap::ValueHint::DirPath)]
    pub(crate) home: Option<PathBuf>,
    /// One gateway unit [default: every OpenClaw gateway unit of the user, found by its
    /// OPENCLAW_SERVICE_KIND=gateway marker; openclaw-gateway.service when there is none].
    #[arg(long, env = "OPENCLAW_TOKEN_SYNC_UNIT", value_name = "NAME")]
    pub(crate) unit: Option<String>,
    /// OpenClaw state directory (else OPENCLAW_STATE_DIR, OPENCLAW_HOME/.openclaw, ~/.openclaw).
    #[arg(long, env = "OPENCLAW_TOKEN_SYNC_STATE_DIR", value_name = "DIR")]
    pub(crate) state_dir: Option<PathBuf>,
}

/// The secret and how to reach it; shared by `sync` and `status --check-secret`.
#[derive(clap::Args, Debug)]
pub(crate) struct SecretArgs {
    /// Secrets Manager secret name or ARN.
    #[arg(long, env = "OPENCLAW_TOKEN_SYNC_SECRET_ID", value_name = "NAME|ARN")]
    pub(crate) secret_id: Option<String>,
    /// Key holding the token when the secret is a JSON object [default: token].
    #[arg(long, env = "OPENCLAW_TOKEN_SYNC_JSON_KEY", value_name = "KEY")]
    pub(crate) json_key: Option<String>,
    /// AWS region (else AWS_REGION, the AWS profile, the config file, or the secret ARN).
    #[arg(long, value_name = "REGION")]
    pub(crate) region: Option<String>,
    /// Secrets Manager endpoint (else AWS_ENDPOINT_URL, or the config file).
    #[arg(long, value_name = "URL")]
    pub(crate) endpoint_url: Option<String>,
    /// Deadline in seconds for the Secrets Manager call, retries included [default: 30].
    #[arg(long, value_name = "SECONDS")]
    pub(crate) timeout: Option<u64>,
}

#[derive(clap::Args, Debug)]
pub(crate) struct StatusArgs {
    #[command(flatten)]
    pub(crate) host: HostArgs,
    /// Also compare with the secret's AWSCURRENT version (one GetSecretValue; needs --secret-id).
    #[arg(long)]
    pub(crate) check_secret: bool,
    #[command(flatten)]
    pub(crate) secret: SecretArgs,
    /// Assumed token lifetime when the secret has no expires_at [default: 365].
    #[arg(long, value_name = "DAYS")]
    pub(crate) token_lifetime_days: Option<u64>,
    /// Warn when the token expires within this many days [default: 30].
    #[arg(long, value_name = "DAYS")]
    pub(crate) expiry_warning_days: Option<u64>,
    #[command(flatten)]
    pub(crate) probe: ProbeArgs,
    /// Output format [default: text].
    #[arg(long, value_enum, env = "OPENCLAW_TOKEN_SYNC_OUTPUT")]
    pub(crate) output: Option<OutputFormat>,
    /// Exit like a monitoring plugin (Nagios, Icinga, Sensu, Zabbix): 0 OK, 1 WARNING
    /// (warnings only), 2 CRITICAL (problems), 3 UNKNOWN (status could not run at all).
    #[arg(long)]
    pub(crate) nagios: bool,
}

/// The live token probe, shared by `sync` and `status`.
#[derive(clap::Args, Debug)]
pub(crate) struct ProbeArgs {
    /// Skip the live request that proves Anthropic accepts the token.
    #[arg(long, env = "OPENCLAW_TOKEN_SYNC_NO_PROBE", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = clap::builder::BoolishValueParser::new(), value_name = "BOOL")]
    pub(crate) no_probe: Option<bool>,
    /// Probe even when the environment or the config file turn it off.
    #[arg(long)]
    pub(crate) probe: bool,
    /// Send our own probe here instead of the gateway's configured Anthropic base URL
    /// (proxies, tests) [default: the gateway's `models.providers.anthropic.baseUrl`, else
    /// https://api.anthropic.com].
    #[arg(
        long,
        value_name = "URL",
        env = "OPENCLAW_TOKEN_SYNC_ANTHROPIC_BASE_URL"
    )]
    pub(crate) anthropic_base_url: Option<String>,
}

#[derive(clap::Args, Debug)]
pub(crate) struct SyncArgs {
    #[command(flatten)]
    pub(crate) secret: SecretArgs,
    #[command(flatten)]
    pub(crate) host: HostArgs,
    /// Remove only these Anthropic profile ids from the stores (repeatable) [default: all].
    #[arg(long = "profile-id", value_name = "ID")]
    pub(crate) profile_ids: Vec<String>,
    /// Also keep a marked block in ~/.bash_profile that sources ~/.openclaw-env.
    #[arg(long, env = "OPENCLAW_TOKEN_SYNC_SHELL_PROFILE", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = clap::builder::BoolishValueParser::new(), value_name = "BOOL")]
    pub(crate) shell_profile: Option<bool>,
    /// Leave ~/.bash_profile alone whatever the environment or the config file say.
    #[arg(long)]
    pub(crate) no_shell_profile: bool,
    /// Say what would change (fingerprints, never values); touch nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// Apply for real even when the config file says dry-run.
    #[arg(long)]
    pub(crate) no_dry_run: bool,
    /// Rewrite, clean and restart even when nothing changed.
    #[arg(long)]
    pub(crate) force: bool,
    /// Do not force, whatever the config file says.
    #[arg(long)]
    pub(crate) no_force: bool,
    /// Write files and clean stores but do not stop/start the gateway.
    #[arg(long, env = "OPENCLAW_TOKEN_SYNC_NO_RESTART", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = clap::builder::BoolishValueParser::new(), value_name = "BOOL")]
    pub(crate) no_restart: Option<bool>,
    /// Restart when needed whatever the environment or the config file say.
    #[arg(long)]
    pub(crate) restart: bool,
    /// How the token reaches the gateway: `env` (its environment, stale profiles removed, a
    /// restart) or `secret-ref` (a file secret reference, reloaded in place, no restart; README
    /// "Delivery: env or secret-ref") [default: env].
    #[arg(long, value_enum, env = "OPENCLAW_TOKEN_SYNC_DELIVERY")]
    pub(crate) delivery: Option<crate::sync::Delivery>,
    /// secret-ref: when the gateway's `secrets.reload` itself fails (unreachable, or refused),
    /// restart the gateway to apply the new token instead of putting the last good one back and
    /// failing.
    #[arg(long, env = "OPENCLAW_TOKEN_SYNC_RESTART_FALLBACK", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = clap::builder::BoolishValueParser::new(), value_name = "BOOL")]
    pub(crate) restart_fallback: Option<bool>,
    /// Never fall back to a restart, whatever the environment or the config file say.
    #[arg(long)]
    pub(crate) no_restart_fallback: bool,
    /// As root: sync only this Docker Compose gateway (its container name, its service, or
    /// PROJECT/SERVICE; repeatable) and no systemd gateway. Without it, root syncs every
    /// container gateway Docker runs beside the systemd ones (README "Containers").
    #[arg(long = "container", value_name = "NAME")]
    pub(crate) containers: Vec<String>,
    #[command(flatten)]
    pub(crate) probe: ProbeArgs,
    /// Output format [default: text].
    #[arg(long, value_enum, env = "OPENCLAW_TOKEN_SYNC_OUTPUT")]
    pub(crate) output: Option<OutputFormat>,
    /// Apply the version under this staging label (a canary), falling back to AWSCURRENT when
    /// no version carries it [default: AWSCURRENT].
    #[arg(long, env = "OPENCLAW_TOKEN_SYNC_VERSION_STAGE", value_name = "NAME")]
    pub(crate) version_stage: Option<String>,
    /// Seconds to wait for another run's lock [default: 120].
    #[arg(long, value_name = "SECONDS")]
    pub(crate) lock_timeout: Option<u64>,
    /// Seconds to wait for the restarted gateway to run [default: 60].
    #[arg(long, value_name = "SECONDS")]
    pub(crate) verify_timeout: Option<u64>,
    /// Milliseconds the restarted gateway must keep running to count as up [default: 1500].
    #[arg(long, value_name = "MS")]
    pub(crate) settle_ms: Option<u64>,
    /// Seconds to wait for the gateway to stop before giving up on this run (it is asked to
    /// start again after its stop, nothing is written) [default: 360, above OpenClaw's own TimeoutStopSec=330].
    #[arg(long, value_name = "SECONDS")]
    pub(crate) stop_timeout: Option<u64>,
    /// Seconds one user's gateways may take in a run over several users; past it that user's
    /// worker is killed and reported, and the next user is synced [default: 600].
    #[arg(long, value_name = "SECONDS")]
    pub(crate) user_timeout: Option<u64>,
    /// After every run, write node_exporter textfile-collector metrics here (atomically,
    /// mode 0644; see README "Metrics"). Its directory must exist.
    #[arg(long, env = "OPENCLAW_TOKEN_SYNC_METRICS_FILE", value_name = "PATH")]
    pub(crate) metrics_file: Option<PathBuf>,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    Text,
    Json,
}
