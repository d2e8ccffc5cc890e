//! `trigger`: fan a sync (or a status check) out over SSM Run Command.
//!
//! One `SendCommand` of our document per target set: `--targets tag:KEY=VALUE` (repeatable, one
//! command) or `--instance-ids` (50 per command, SSM's limit). Parameters are validated against
//! the document's own rules first. With `--wait`, each poll round costs one `ListCommands` per
//! command (its status and completed/error counts drive the progress line); once a command is
//! terminal its invocations are listed once, 50 per page, with their output. For N instances
//! that is O(N/50) calls per round. Exit 0 only when every invocation succeeded.

use crate::aws::AwsSettings;
use crate::error::{Error, Result};
use crate::fleet::ssm_document;
use aws_sdk_ssm::types::Target;
use serde::Serialize;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// SSM accepts at most this many instance ids per SendCommand, and pages invocations by it.
pub const BATCH: usize = 50;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Sync,
    Status,
}

impl Action {
    fn as_str(self) -> &'static str {
        match self {
            Action::Sync => "sync",
            Action::Status => "status",
        }
    }
}

#[derive(Clone, Debug)]
pub struct TriggerOptions {
    /// `(tag key, value)` pairs from `--targets tag:KEY=VALUE`.
    pub tags: Vec<(String, String)>,
    pub instance_ids: Vec<String>,
    pub document: String,
    pub action: Action,
    pub secret_id: String,
    pub user: String,
    /// The unit to sync; `None`: every OpenClaw gateway of the user (the parameter is not sent).
    pub unit: Option<String>,
    /// Region parameter passed to the instances ("" = their own).
    pub instance_region: String,
    pub extra_args: Vec<String>,
    /// The staging label the instances sync (sent only when given, so documents that predate
    /// the parameter keep working and each instance otherwise keeps its own setting).
    pub version_stage: Option<String>,
    pub max_concurrency: String,
    pub max_errors: String,
    pub comment: String,
    pub wait: bool,
    pub timeout: Duration,
    pub poll_interval: Duration,
    pub aws: AwsSettings,
}

/// Parses `tag:KEY=VALUE`.
pub fn parse_target(text: &str) -> Result<(String, String)> {
    let rest = text
        .strip_prefix("tag:")
        .ok_or_else(|| Error::config(format!("--targets {text:?}: expected tag:KEY=VALUE")))?;
    let (key, value) = rest
        .split_once('=')
        .filter(|(k, v)| !k.is_empty() && !v.is_empty())
        .ok_or_else(|| Error::config(format!("--targets {text:?}: expected tag:KEY=VALUE")))?;
    Ok((key.to_owned(), value.to_owned()))
}

#[derive(Serialize, Debug, Clone)]
pub struct InstanceResult {
    pub instance_id: String,
    pub command_id: String,
    pub status: String,
    /// The last line the command printed (the sync's summary line), if any.
    pub summary: String,
    pub response_code: Option<i32>,
}

#[derive(Serialize, Debug)]
pub struct TriggerReport {
    pub document: String,
    pub action: &'static str,
    pub command_ids: Vec<String>,
    pub waited: bool,
    pub complete: bool,
    pub instances: Vec<InstanceResult>,
    pub succeeded: usize,
    pub failed: usize,
    /// With `--wait`: why the run counts as failed although no instance failed (none reached).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

impl TriggerReport {
    pub fn exit_code(&self) -> u8 {
        if !self.waited {
            return 0;
        }
        if self.complete
            && self.problem.is_none()
            && !self.instances.is_empty()
            && self.failed == 0
            && self.succeeded == self.instances.len()
        {
            0
        } else {
            1
        }
    }
}

fn ssm_error<E: aws_sdk_ssm::error::ProvideErrorMetadata, R>(
    what: &str,
    err: aws_sdk_ssm::error::SdkError<E, R>,
) -> Error {
    Error::failed(crate::aws::describe_failure(what, "ssm", &err))
}

fn is_terminal(status: &str) -> bool {
    !matches!(
        status,
        "Pending" | "InProgress" | "Delayed" | "Cancelling" | ""
    )
}

/// Sends the command(s) and, with `--wait`, follows them to the end.
pub fn run(options: &TriggerOptions) -> Result<TriggerReport> {
    if options.tags.is_empty() == options.instance_ids.is_empty() {
        return Err(Error::config(
            "give exactly one of --targets tag:KEY=VALUE or --instance-ids ID,...",
        ));
    }
    let parameters = ssm_document::parameters(&command_parameters(options))?;
    check_instance_ids(&options.instance_ids)?;

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::failed(format!("cannot start the async runtime: {e}")))?;
    let config = runtime.block_on(crate::aws::load_config(
        &options.aws,
        &options.secret_id,
        false,
    ))?;
    let client = aws_sdk_ssm::Client::new(&config);
    let command_ids = send_commands(&runtime, &client, options, &parameters)?;

    let mut report = TriggerReport {
        document: options.document.clone(),
        action: options.action.as_str(),
        command_ids: command_ids.clone(),
        waited: options.wait,
        complete: false,
        instances: Vec::new(),
        succeeded: 0,
        failed: 0,
        problem: None,
    };
    if !options.wait {
        return Ok(report);
    }
    let stopped_before = follow_commands(&runtime, &client, options, command_ids, &mut report)?;
    report
        .instances
        .sort_by(|a, b| a.instance_id.cmp(&b.instance_id));
    report.succeeded = report
        .instances
        .iter()
        .filter(|i| i.status == "Success")
        .count();
    report.failed = report
        .instances
        .iter()
        .filter(|i| is_terminal(&i.status) && i.status != "Success")
        .count();
    report.problem = waited_problem(options, stopped_before, report.instances.is_empty());
    Ok(report)
}

/// The document's parameters for these options (`unit`, `versionStage` only when given).
fn command_parameters(options: &TriggerOptions) -> Vec<(&'static str, String)> {
    let mut parameters = vec![
        ("action", options.action.as_str().to_owned()),
        ("secretId", options.secret_id.clone()),
        ("region", options.instance_region.clone()),
    ];
    if !options.user.is_empty() {
        parameters.push(("user", options.user.clone()));
    }
    if let Some(unit) = &options.unit {
        parameters.push(("unit", unit.clone()));
    }
    if options.action == Action::Sync {
        parameters.push(("extraArgs", options.extra_args.join(" ")));
        if let Some(stage) = options
            .version_stage
            .as_ref()
            .filter(|s| *s != "AWSCURRENT")
        {
            parameters.push(("versionStage", stage.clone()));
        }
    }
    parameters
}

/// Refuses anything that is not an EC2 instance id.
fn check_instance_ids(instance_ids: &[String]) -> Result<()> {
    for id in instance_ids {
        if !id.starts_with("i-") || id.len() > 32 || !id[2..].bytes().all(|b| b.is_ascii_hexdigit())
        {
            return Err(Error::config(format!("{id:?} is not an EC2 instance id")));
        }
    }
    Ok(())
}

/// One `SendCommand` per target set (the tags, or each batch of instance ids); their command ids.
fn send_commands(
    runtime: &tokio::runtime::Runtime,
    client: &aws_sdk_ssm::Client,
    options: &TriggerOptions,
    parameters: &std::collections::HashMap<String, Vec<String>>,
) -> Result<Vec<String>> {
    let mut command_ids = Vec::new();
    let batches: Vec<Vec<String>> = if options.tags.is_empty() {
        options
            .instance_ids
            .chunks(BATCH)
            .map(<[String]>::to_vec)
            .collect()
    } else {
        vec![Vec::new()]
    };
    for batch in batches {
        let mut request = client
            .send_command()
            .document_name(&options.document)
            .set_parameters(Some(parameters.clone()))
            .max_concurrency(&options.max_concurrency)
            .max_errors(&options.max_errors)
            .comment(&options.comment);
        if batch.is_empty() {
            for (key, value) in &options.tags {
                request = request.targets(
                    Target::builder()
                        .key(format!("tag:{key}"))
                        .values(value)
                        .build(),
                );
            }
        } else {
            request = request.set_instance_ids(Some(batch));
        }
        let response = runtime
            .block_on(request.send())
            .map_err(|e| ssm_error("SendCommand", e))?;
        let id = response
            .command()
            .and_then(|c| c.command_id())
            .ok_or_else(|| Error::failed("SendCommand returned no command id"))?;
        command_ids.push(id.to_owned());
    }
    Ok(command_ids)
}

/// `--wait`: polls the commands until each is terminal or the timeout comes, their invocations
/// into the report. Returns how many instances SSM never ran because the error threshold stopped
/// a command.
fn follow_commands(
    runtime: &tokio::runtime::Runtime,
    client: &aws_sdk_ssm::Client,
    options: &TriggerOptions,
    mut pending: Vec<String>,
    report: &mut TriggerReport,
) -> Result<usize> {
    let deadline = Instant::now() + options.timeout;
    // Instances SSM never ran because the error threshold stopped the command.
    let mut stopped_before = 0usize;
    let progress = std::io::stderr().is_terminal();
    loop {
        let (mut done, mut errors, mut targets) = (0i32, 0i32, 0i32);
        let mut still_running = Vec::new();
        for id in &pending {
            let listed = runtime
                .block_on(client.list_commands().command_id(id).send())
                .map_err(|e| ssm_error("ListCommands", e))?;
            let command = listed
                .commands()
                .first()
                .ok_or_else(|| Error::failed(format!("ListCommands does not know command {id}")))?;
            done += command.completed_count();
            errors += command.error_count();
            targets += command.target_count();
            let status = command
                .status()
                .map(|s| s.as_str().to_owned())
                .unwrap_or_default();
            if is_terminal(&status) {
                let invocations = list_invocations(runtime, client, id)?;
                stopped_before += stopped_by_threshold(
                    &status,
                    usize::try_from(command.target_count()).unwrap_or(0),
                    &invocations,
                );
                report.instances.extend(invocations);
            } else {
                still_running.push(id.clone());
            }
        }
        pending = still_running;
        if progress {
            let _ = write!(std::io::stderr(), "\r\x1b[Ktrigger: {done}/{targets} done in this round, {errors} failed, {} command(s) running", pending.len());
        }
        if pending.is_empty() {
            report.complete = true;
            break;
        }
        if Instant::now() + options.poll_interval > deadline {
            for id in &pending {
                report
                    .instances
                    .extend(list_invocations(runtime, client, id)?);
            }
            break;
        }
        std::thread::sleep(options.poll_interval);
    }
    if progress {
        let _ = writeln!(std::io::stderr());
    }
    Ok(stopped_before)
}

/// Why a waited run counts as failed although no instance failed: the error threshold stopped
/// the rollout, or no instance was reached.
fn waited_problem(
    options: &TriggerOptions,
    stopped_before: usize,
    no_instances: bool,
) -> Option<String> {
    if stopped_before > 0 {
        Some(format!(
            "the rollout stopped at the error threshold (--max-errors {}): {stopped_before} instance(s) never ran; find the cause in the failed rows (a token Anthropic rejects: `openclaw-token-sync rollback`), then trigger again",
            options.max_errors
        ))
    } else if no_instances {
        Some(if options.tags.is_empty() {
            format!(
                "none of the {} instance id(s) was reached: check that they exist in this region and are online in SSM (managed instances with the agent running)",
                options.instance_ids.len()
            )
        } else {
            format!(
                "no instance matched {}: check the tag and the region, and that the instances are online in SSM",
                options
                    .tags
                    .iter()
                    .map(|(k, v)| format!("tag:{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(" and ")
            )
        })
    } else {
        None
    }
}

/// How many targets a finished command never ran because its error threshold stopped it: SSM
/// marks such a command Failed and sends nothing more (targets without an invocation) or cancels
/// what had not started.
pub fn stopped_by_threshold(status: &str, targets: usize, invocations: &[InstanceResult]) -> usize {
    if status != "Failed" {
        return 0;
    }
    targets.saturating_sub(invocations.len())
        + invocations
            .iter()
            .filter(|i| i.status == "Cancelled")
            .count()
}

/// Every invocation of one command with its output, 50 per page.
fn list_invocations(
    runtime: &tokio::runtime::Runtime,
    client: &aws_sdk_ssm::Client,
    command_id: &str,
) -> Result<Vec<InstanceResult>> {
    let mut results = Vec::new();
    let mut next_token = None;
    loop {
        let page = runtime
            .block_on(
                client
                    .list_command_invocations()
                    .command_id(command_id)
                    .details(true)
                    .max_results(BATCH as i32)
                    .set_next_token(next_token.take())
                    .send(),
            )
            .map_err(|e| ssm_error("ListCommandInvocations", e))?;
        for invocation in page.command_invocations() {
            let plugin = invocation.command_plugins().first();
            let output = plugin.and_then(|p| p.output()).unwrap_or_default();
            results.push(InstanceResult {
                instance_id: invocation.instance_id().unwrap_or_default().to_owned(),
                command_id: command_id.to_owned(),
                status: invocation
                    .status()
                    .map(|s| s.as_str().to_owned())
                    .unwrap_or_default(),
                summary: output
                    .lines()
                    .rev()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or_default()
                    .to_owned(),
                response_code: plugin.map(|p| p.response_code()),
            });
        }
        match page.next_token() {
            Some(token) if !token.is_empty() => next_token = Some(token.to_owned()),
            _ => break,
        }
    }
    Ok(results)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(statuses: &[&str], complete: bool) -> TriggerReport {
        let instances: Vec<InstanceResult> = statuses
            .iter()
            .enumerate()
            .map(|(i, s)| InstanceResult {
                instance_id: format!("i-{i:017x}"),
                command_id: "c".into(),
                status: (*s).into(),
                summary: String::new(),
                response_code: Some(0),
            })
            .collect();
        TriggerReport {
            document: "d".into(),
            action: "sync",
            command_ids: vec!["c".into()],
            waited: true,
            complete,
            problem: None,
            succeeded: statuses.iter().filter(|s| **s == "Success").count(),
            failed: statuses
                .iter()
                .filter(|s| is_terminal(s) && **s != "Success")
                .count(),
            instances,
        }
    }

    #[test]
    fn a_failed_command_with_targets_left_was_stopped_by_its_threshold() {
        let row = |status: &str| InstanceResult {
            instance_id: "i-1".into(),
            command_id: "c".into(),
            status: status.into(),
            summary: String::new(),
            response_code: None,
        };
        let ran = [row("Failed"), row("Success")];
        assert_eq!(stopped_by_threshold("Failed", 10, &ran), 8);
        assert_eq!(stopped_by_threshold("Success", 10, &ran), 0);
        assert_eq!(
            stopped_by_threshold("Failed", 2, &ran),
            0,
            "all ran: just failures"
        );
        assert_eq!(
            stopped_by_threshold(
                "Failed",
                3,
                &[row("Failed"), row("Cancelled"), row("Cancelled")]
            ),
            2
        );
        let mut stopped = report(&["Failed", "Success"], true);
        stopped.problem = Some("stopped".into());
        assert_eq!(stopped.exit_code(), 1);
    }

    #[test]
    fn exit_code_is_0_only_when_every_instance_succeeded() {
        assert_eq!(report(&["Success", "Success"], true).exit_code(), 0);
        assert_eq!(report(&["Success", "Failed"], true).exit_code(), 1);
        assert_eq!(report(&["Success", "TimedOut"], true).exit_code(), 1);
        assert_eq!(report(&["Success", "InProgress"], false).exit_code(), 1);
        assert_eq!(report(&[], false).exit_code(), 1);
        assert_eq!(
            report(&[], true).exit_code(),
            1,
            "nobody reached is a failure"
        );
    }

    #[test]
    fn targets_parse_as_tag_key_value() {
        assert_eq!(
            parse_target("tag:Role=gateway").unwrap(),
            ("Role".into(), "gateway".into())
        );
        assert_eq!(
            parse_target("tag:a=b=c").unwrap(),
            ("a".into(), "b=c".into())
        );
        for bad in ["Role=gateway", "tag:=x", "tag:Role=", "tag:Role"] {
            assert!(parse_target(bad).is_err(), "{bad}");
        }
    }
}
