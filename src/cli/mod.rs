//! The command line (DESIGN.md section 5): `args` (what clap parses), `config` (flags over
//! environment over the TOML config file, into each command's options), `output` (text and
//! JSON), and here the entry point: logging setup, dispatch, and turning a report or an error
//! into an exit code (0 success, 1 failure, 2 usage or configuration).

mod args;
mod config;
mod journal;
mod manual;
mod output;

pub use output::summary_line;

use crate::error::{Error, Result};
use crate::fleet::promote::{self, StageMove, StageOptions};
use crate::fleet::put::{self, PutOptions};
use crate::fleet::trigger::{self, TriggerReport};
use crate::status::{self, StatusRun};
use crate::sync;
use args::{
    ChangeArgs, Cli, Command, FleetArgs, OutputFormat, PutArgs, StageArgs, StatusArgs, TriggerArgs,
};
use clap::Parser;
use config::*;
use output::*;
use std::path::Path;
use std::process::ExitCode;

/// Default config file, read when it exists and `--config` is not given.
pub const DEFAULT_CONFIG: &str = "/etc/openclaw-token-sync/config.toml";

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

/// `status`, with its own exit codes or a monitoring plugin's (`--nagios`).
fn run_status(args: StatusArgs, config: Option<&Path>) -> ExitCode {
    let json_requested = args.output == Some(OutputFormat::Json);
    let nagios = args.nagios;
    let prepared = load_file_config(config).and_then(|file| status_options(args, file));
    if !nagios {
        return execute(
            json_requested,
            prepared,
            status::run,
            print_status,
            StatusRun::exit_code,
        );
    }
    let (options, output) = match prepared {
        Ok(prepared) => prepared,
        Err(err) => {
            let _ = fail(&err, json_requested);
            return ExitCode::from(status::NAGIOS_UNKNOWN);
        }
    };
    match status::run(&options) {
        Ok(report) => {
            let code = status::nagios_code(report.exit_code());
            print_status_as(&report, output, code);
            ExitCode::from(code)
        }
        Err(err) => {
            let _ = fail(&err, output == OutputFormat::Json);
            ExitCode::from(status::NAGIOS_UNKNOWN)
        }
    }
}

/// Entry point: parses arguments, runs the command, prints the outcome, returns the exit code.
pub fn main() -> ExitCode {
    // Files are created with explicit modes; a restrictive umask covers anything else.
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    let cli = Cli::parse();
    journal::init_logging(cli.verbose, cli.log_format);
    let config = cli.config.as_deref();
    match cli.command {
        Command::Sync(args) => run_sync(args, config),
        Command::Status(args) => run_status(args, config),
        Command::Trigger(args) => run_trigger(args, config),
        Command::Put(args) => run_put(args, config),
        Command::Promote(args) => run_stage(
            canary_label(args.label.unwrap_or_else(|| "CANARY".to_owned()))
                .map(|label| StageMove::Promote { label }),
            args.stage,
            config,
        ),
        Command::Rollback(args) => run_stage(
            match args.label {
                Some(label) => canary_label(label).map(|label| StageMove::Abort { label }),
                None => Ok(StageMove::Rollback),
            },
            args.stage,
            config,
        ),
        Command::Completions { shell } => manual::completions(shell),
        Command::Man { out_dir } => manual::man(out_dir.as_deref()),
        Command::Help { command } => manual::help(command.as_deref()),
    }
}

/// `sync`, then the metrics file when one is asked for (`--metrics-file`, its environment
/// variable or the config file): written after every run, failed ones included. A metrics
/// file that cannot be written turns an otherwise successful run into exit 1.
fn run_sync(args: args::SyncArgs, config: Option<&Path>) -> ExitCode {
    let started = std::time::SystemTime::now();
    let json_requested = args.output == Some(OutputFormat::Json);
    let flag_metrics = args.metrics_file.clone();
    let file = load_file_config(config);
    let named_metrics = flag_metrics
        .or_else(|| file.as_ref().ok().and_then(|f| f.metrics_file.clone()))
        .map(absolute);
    // A path the operator named is checked like any other input (exit 2).
    let default_metrics = match named_metrics {
        Some(_) => None,
        None => usable_default_metrics(),
    };
    let lifetime = file
        .as_ref()
        .ok()
        .map_or(DEFAULT_TOKEN_LIFETIME_DAYS, |f| f.token_lifetime_days());
    let prepared = file.and_then(|file| {
        if let Some(path) = &named_metrics {
            crate::metrics::check_path(path)?;
        }
        sync_options(args, file)
    });
    let metrics_file = named_metrics.or(default_metrics);
    let (options, output) = match prepared {
        Ok(prepared) => prepared,
        Err(err) => {
            let code = fail(&err, json_requested);
            let facts = crate::metrics::run_facts(Err(&err), err.exit_code(), started, lifetime);
            if let Some(path) = metrics_file.filter(|p| crate::metrics::check_path(p).is_ok()) {
                write_metrics(&path, &facts);
            }
            return code;
        }
    };
    let sync_and_print = || run_and_print_sync(&options, output, started, lifetime);
    // A dry run changes nothing, so it leaves the metrics alone too (its version is not the
    // applied one).
    let Some(path) = metrics_file.filter(|_| !options.dry_run) else {
        return ExitCode::from(sync_and_print().0);
    };
    // The run drops to the gateway's user for good; root still has to write the metrics file
    // afterwards, so root runs it in a child process and gets its figures back.
    let (code, facts) = if nix::unistd::geteuid().is_root() {
        let failed = |why: String| {
            let err = Error::failed(why);
            fail(&err, output == OutputFormat::Json);
            (
                1,
                crate::metrics::run_facts(Err(&err), 1, started, lifetime),
            )
        };
        match crate::host::forked::answer_of(options.whole_run_limit(), sync_and_print) {
            Ok(Ok(answer)) => answer,
            Ok(Err(why)) => failed(format!("the sync process {why}")),
            Err(err) => failed(err.message()),
        }
    } else {
        sync_and_print()
    };
    let wrote = write_metrics(&path, &facts);
    ExitCode::from(if code == 0 && !wrote { 1 } else { code })
}

/// The path made absolute (as it is when that fails).
fn absolute(path: std::path::PathBuf) -> std::path::PathBuf {
    std::path::absolute(&path).unwrap_or(path)
}

/// The packaged default metrics file, a convenience: when its directory cannot be written (a
/// sandbox drop-in that left it out, another owner), the sync goes on and says why there are no
/// metrics.
fn usable_default_metrics() -> Option<std::path::PathBuf> {
    default_metrics_file().map(absolute).filter(|path| {
        crate::metrics::check_path(path)
            .inspect_err(|err| {
                journal::err(
                    journal::Priority::Warning,
                    format_args!("no metrics this run: {err}"),
                )
            })
            .is_ok()
    })
}

/// Runs the sync and prints its report or error; the exit code and the metrics' figures.
fn run_and_print_sync(
    options: &sync::SyncOptions,
    output: OutputFormat,
    started: std::time::SystemTime,
    lifetime: u64,
) -> (u8, crate::metrics::RunFacts) {
    let run = sync::run(options);
    let code = match &run {
        Ok(report) => {
            print_sync(report, output);
            report.exit_code()
        }
        Err(err) => {
            fail(err, output == OutputFormat::Json);
            err.exit_code()
        }
    };
    (
        code,
        crate::metrics::run_facts(run.as_ref(), code, started, lifetime),
    )
}

/// The packaged service's default (`OPENCLAW_TOKEN_SYNC_DEFAULT_METRICS_FILE`), used only when
/// nothing else names a metrics file and the file's directory exists (node_exporter installed).
fn default_metrics_file() -> Option<std::path::PathBuf> {
    let path = std::path::PathBuf::from(std::env::var_os(
        "OPENCLAW_TOKEN_SYNC_DEFAULT_METRICS_FILE",
    )?);
    path.parent()
        .is_some_and(|dir| !dir.as_os_str().is_empty() && dir.is_dir())
        .then_some(path)
}

/// Writes the metrics file; false when that failed (reported).
fn write_metrics(path: &Path, facts: &crate::metrics::RunFacts) -> bool {
    match crate::metrics::write(path, facts) {
        Ok(()) => true,
        Err(err) => {
            journal::err(
                journal::Priority::Err,
                format_args!("metrics not written: {err}"),
            );
            false
        }
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
    let json = args.change.api.output == Some(OutputFormat::Json);
    let prepared = load_file_config(config).and_then(|file| {
        let label = args.label.clone().map(canary_label).transpose()?;
        let (secret_id, aws, output, mut chained) = change_target(args.change, &file)?;
        if let (Some(trigger), Some(label)) = (chained.as_mut(), &label) {
            // A canary is pushed as a canary (unless --version-stage said otherwise).
            trigger.version_stage.get_or_insert_with(|| label.clone());
        }
        let (probe, anthropic_base_url) = args.probe.resolve_without_gateway(&file);
        let options = PutOptions {
            secret_id,
            json_key: args.json_key.clone(),
            label,
            probe,
            anthropic_base_url,
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
    if output == OutputFormat::Json && chained.is_some() {
        return run_chained_json(chained, output::put_json(&report));
    }
    print_put(&report, output);
    run_chained(chained, output)
}

/// `promote` and `rollback`; `movement` is the move asked for, or the error in its label.
fn run_stage(movement: Result<StageMove>, args: StageArgs, config: Option<&Path>) -> ExitCode {
    let json = args.change.api.output == Some(OutputFormat::Json);
    let prepared = load_file_config(config).and_then(|file| {
        let movement = movement?;
        let (secret_id, aws, output, chained) = change_target(args.change, &file)?;
        // The target's token is probed as `put` probes.
        let (probe, anthropic_base_url) = args.probe.resolve_without_gateway(&file);
        let options = StageOptions {
            secret_id,
            json_key: args
                .json_key
                .or(file.json_key.clone())
                .unwrap_or_else(|| "token".to_owned()),
            probe,
            anthropic_base_url,
            aws,
        };
        Ok((options, movement, chained, output))
    });
    let (options, movement, chained, output) = match prepared {
        Ok(prepared) => prepared,
        Err(err) => return fail(&err, json),
    };
    let report = match promote::run(&options, &movement) {
        Ok(report) => report,
        Err(err) => return fail(&err, output == OutputFormat::Json),
    };
    if output == OutputFormat::Json && chained.is_some() {
        return run_chained_json(chained, output::stage_json(&report));
    }
    print_stage(&report, output);
    run_chained(chained, output)
}

/// The secret a changing command acts on, its AWS settings and output, and the trigger it
/// chains (`--trigger` with the fleet flags).
fn change_target(
    change: ChangeArgs,
    file: &FileConfig,
) -> Result<(
    String,
    crate::aws::AwsSettings,
    OutputFormat,
    Option<trigger::TriggerOptions>,
)> {
    let (aws, output) = change.api.settings(file);
    let secret_id = required_secret_id(change.secret_id, file)?;
    let chained = chained_trigger(&secret_id, change.trigger, change.fleet, &aws, file)?;
    Ok((secret_id, aws, output, chained))
}

/// `--trigger` with the fleet flags, for the commands that change the secret.
fn chained_trigger(
    secret_id: &str,
    wanted: bool,
    fleet: FleetArgs,
    aws: &crate::aws::AwsSettings,
    file: &FileConfig,
) -> Result<Option<trigger::TriggerOptions>> {
    if wanted {
        Ok(Some(trigger_options(
            Some(secret_id.to_owned()),
            trigger::Action::Sync,
            fleet,
            aws.clone(),
            file,
        )?))
    } else if !fleet.targets.is_empty() || !fleet.instance_ids.is_empty() {
        Err(Error::config("--targets / --instance-ids need --trigger"))
    } else {
        Ok(None)
    }
}

/// The chained push in JSON: one object, the change's with the push under `trigger`.
fn run_chained_json(
    chained: Option<trigger::TriggerOptions>,
    change: serde_json::Value,
) -> ExitCode {
    let Some(trigger_options) = chained else {
        return ExitCode::SUCCESS;
    };
    let code = match trigger::run(&trigger_options) {
        Ok(report) => output::print_chained_json(change, Ok(&report)),
        Err(err) => output::print_chained_json(change, Err(&err)),
    };
    ExitCode::from(code)
}

fn run_chained(chained: Option<trigger::TriggerOptions>, output: OutputFormat) -> ExitCode {
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
