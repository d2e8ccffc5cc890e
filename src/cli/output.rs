//! Output: a report as text (one summary line, plus what a dry run would do) or JSON, warnings
//! and errors on stderr, and the JSON error body. Nothing here ever sees a token.

use super::args::OutputFormat;
use super::journal::Priority as P;
use crate::error::Error;
use crate::fleet::promote::{StageReport, VersionView};
use crate::fleet::put::{PutAction, PutReport};
use crate::fleet::trigger::TriggerReport;
use crate::status::{Severity, StatusReport, StatusRun};
use crate::sync::{self, GatewayAction, Outcome, SyncReport, SyncRun};
use std::process::ExitCode;

/// A line on stdout at a journal priority.
macro_rules! say {
    ($priority:expr, $($arg:tt)*) => {
        super::journal::out($priority, format_args!($($arg)*))
    };
}

/// A warning or error line on stderr (`openclaw-token-sync: error: ...`, or a JSON log event).
macro_rules! tell {
    ($priority:expr, $($arg:tt)*) => {
        super::journal::err($priority, format_args!($($arg)*))
    };
}

/// `put`'s JSON object.
pub(super) fn put_json(report: &PutReport) -> serde_json::Value {
    let result = match report.action {
        PutAction::Unchanged => "unchanged",
        PutAction::Created | PutAction::Moved => "changed",
    };
    with_result(report, result)
}

/// `promote`'s and `rollback`'s JSON object.
pub(super) fn stage_json(report: &StageReport) -> serde_json::Value {
    with_result(report, "changed")
}

/// `trigger`'s JSON object.
pub(super) fn trigger_json(report: &TriggerReport) -> serde_json::Value {
    let code = report.exit_code();
    let mut value = with_result(report, if code == 0 { "succeeded" } else { "failed" });
    value["exit_code"] = code.into();
    value
}

/// A change's JSON object with the push it chained (`--trigger`) under `trigger`: one object,
/// one line. `result` stays the change's; `exit_code` is the process's (the push's, since the
/// change succeeded); the push's own `result`/`exit_code` (or its error) are in `trigger`.
pub(super) fn print_chained_json(
    mut change: serde_json::Value,
    pushed: std::result::Result<&TriggerReport, &Error>,
) -> u8 {
    let (trigger, code) = match pushed {
        Ok(report) => (trigger_json(report), report.exit_code()),
        Err(err) => {
            tell!(P::Err, "{err}");
            (
                serde_json::json!({
                    "result": "failed",
                    "error": err.message(),
                    "exit_code": err.exit_code(),
                }),
                err.exit_code(),
            )
        }
    };
    change["trigger"] = trigger;
    change["exit_code"] = code.into();
    print_json_at(if code == 0 { P::Info } else { P::Err }, &change);
    code
}

pub(super) fn print_put(report: &PutReport, output: OutputFormat) {
    if output == OutputFormat::Json {
        return print_json(&put_json(report));
    }
    let what = format!(
        "version {} ({}, {})",
        report.version_id, report.kind, report.fingerprint
    );
    let was = report.previous_version_id.as_deref().unwrap_or("none");
    let stage = &report.stage;
    match report.action {
        PutAction::Created => say!(P::Info,
            "put: {what} is now {stage} of {} (a new version; {stage} was {was})",
            report.arn
        ),
        PutAction::Moved => say!(P::Info,
            "put: {what} is {stage} of {} again (an older version held this value: moved from {was}, no new version)",
            report.arn
        ),
        PutAction::Unchanged => say!(P::Info,
            "put: {what} was already {stage} of {}; nothing changed",
            report.arn
        ),
    }
}

pub(super) fn print_stage(report: &StageReport, output: OutputFormat) {
    if output == OutputFormat::Json {
        return print_json(&stage_json(report));
    }
    let show = |view: &VersionView| {
        format!(
            "version {} ({})",
            view.version_id,
            view.fingerprint.as_deref().unwrap_or("fingerprint unknown")
        )
    };
    if let (Some(label), "rollback") = (&report.label, report.action) {
        say!(
            P::Info,
            "rollback {label}: the label left {} of {}; its instances fall back to AWSCURRENT, {}",
            show(&report.before),
            report.arn,
            show(&report.after)
        );
        return;
    }
    say!(
        P::Info,
        "{}{}: AWSCURRENT of {} moved from {} to {}; AWSPREVIOUS is now {}",
        report.action,
        report
            .label
            .as_deref()
            .map(|l| format!(" {l}"))
            .unwrap_or_default(),
        report.arn,
        show(&report.before),
        show(&report.after),
        report.before.version_id
    );
}

pub(super) fn print_trigger(report: &TriggerReport, output: OutputFormat) {
    if output == OutputFormat::Json {
        return print_json(&trigger_json(report));
    }
    say!(
        P::Info,
        "trigger: {} sent with document {} as {} command(s): {}",
        report.action,
        report.document,
        report.command_ids.len(),
        report.command_ids.join(", ")
    );
    if !report.waited {
        return;
    }
    if let Some(problem) = &report.problem {
        tell!(P::Err, "{problem}");
    }
    for instance in &report.instances {
        say!(
            P::Info,
            "{:<20} {:<12} {}",
            instance.instance_id,
            instance.status,
            instance.summary
        );
    }
    say!(
        P::Info,
        "{} instance(s): {} succeeded, {} failed{}",
        report.instances.len(),
        report.succeeded,
        report.failed,
        if report.complete {
            ""
        } else {
            ", gave up waiting (--wait-timeout)"
        }
    );
}

/// Text: each gateway's report in turn. JSON, however many gateways: one object,
/// `{"result": "healthy"|"attention", "exit_code", "gateways": [{"user", "unit", "result",
/// "exit_code", "report"}]}` (README "`status`").
pub(super) fn print_status(run: &StatusRun, output: OutputFormat) {
    print_status_as(run, output, run.exit_code())
}

/// [`print_status`] with the process's own exit code at the top of the JSON (`--nagios` maps
/// it; each gateway's entry keeps its status code).
pub(super) fn print_status_as(run: &StatusRun, output: OutputFormat, code: u8) {
    if output == OutputFormat::Text {
        return run
            .reports
            .iter()
            .for_each(|report| print_status_report(report, output));
    }
    let health = |code: u8| if code == 0 { "healthy" } else { "attention" };
    let gateways: Vec<serde_json::Value> = run
        .reports
        .iter()
        .map(|report| {
            serde_json::json!({
                "user": report.user,
                "unit": report.unit,
                "result": health(report.exit_code()),
                "exit_code": report.exit_code(),
                "report": report,
            })
        })
        .collect();
    let priority = if run.exit_code() == 0 {
        P::Info
    } else {
        P::Err
    };
    print_json_at(
        priority,
        &serde_json::json!({
            "result": health(run.exit_code()),
            "exit_code": code,
            "gateways": gateways,
        }),
    );
}

fn print_status_report(report: &StatusReport, output: OutputFormat) {
    if output == OutputFormat::Json {
        return print_json(report);
    }
    say!(
        P::Info,
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
        let priority = match finding.severity {
            Severity::Ok => P::Info,
            Severity::Warning => P::Warning,
            Severity::Problem => P::Err,
        };
        say!(
            priority,
            "  {label:<8} {:<26} {}",
            finding.check,
            finding.seen
        );
        if let Some(why) = &finding.why {
            say!(priority, "  {:<8} {:<26} why: {why}", "", "");
        }
        if let Some(fix) = &finding.fix {
            say!(priority, "  {:<8} {:<26} fix: {fix}", "", "");
        }
    }
    let priority = match (report.problems, report.warnings) {
        (0, 0) => P::Info,
        (0, _) => P::Warning,
        _ => P::Err,
    };
    say!(
        priority,
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

pub(super) fn fail(err: &Error, json: bool) -> ExitCode {
    tell!(P::Err, "{err}");
    if json {
        let body = serde_json::json!({
            "result": "failed",
            "error": err.message(),
            "exit_code": err.exit_code(),
        });
        say!(P::Err, "{body}");
    }
    ExitCode::from(err.exit_code())
}

/// Text: each gateway's report (or error) in turn. JSON, however many gateways: one object,
/// `{"result", "exit_code", "gateways": [{"user", "unit", "result", "exit_code", "report"} |
/// {"user", "unit", "result": "failed", "exit_code", "error"}]}` (README "JSON output").
pub(super) fn print_sync(run: &SyncRun, output: OutputFormat) {
    if output == OutputFormat::Json {
        let entries: Vec<(String, u8, serde_json::Value)> = run
            .gateways
            .iter()
            .map(|gateway| match &gateway.result {
                Ok(report) => {
                    tell_problems(report);
                    let value = serde_json::to_value(report).expect("report serialises");
                    let result = match report.exit_code() {
                        0 => value["result"].as_str().unwrap_or("applied").to_owned(),
                        _ => "failed".to_owned(),
                    };
                    let entry = serde_json::json!({
                        "user": gateway.user,
                        "unit": gateway.unit,
                        "result": result,
                        "exit_code": report.exit_code(),
                        "report": value,
                    });
                    (result, report.exit_code(), entry)
                }
                Err(err) => {
                    let entry = serde_json::json!({
                        "user": gateway.user,
                        "unit": gateway.unit,
                        "result": "failed",
                        "exit_code": err.exit_code(),
                        "error": err.message(),
                    });
                    ("failed".to_owned(), err.exit_code(), entry)
                }
            })
            .collect();
        let code = run.exit_code();
        let result = overall_result(entries.iter().map(|(result, _, _)| result.as_str()), code);
        let gateways: Vec<serde_json::Value> =
            entries.into_iter().map(|(_, _, entry)| entry).collect();
        let priority = if code == 0 { P::Info } else { P::Err };
        return print_json_at(
            priority,
            &serde_json::json!({ "result": result, "exit_code": code, "gateways": gateways }),
        );
    }
    for gateway in &run.gateways {
        match &gateway.result {
            Ok(report) => print_report(report),
            Err(err) => {
                let (user, unit) = (&gateway.user, &gateway.unit);
                tell!(P::Err, "{unit} of {user}: {err}");
                say!(P::Err, "failed: {unit} of {user}: {err}");
            }
        }
    }
}

/// A report's warnings and the stores that need attention, on stderr (in both formats).
fn tell_problems(report: &SyncReport) {
    for warning in &report.warnings {
        tell!(P::Warning, "{warning}");
    }
    for store in report.stores.iter().filter(|s| s.error.is_some()) {
        tell!(
            P::Err,
            "store of agent {} ({}) needs attention: {}",
            store.agent,
            store.path.display(),
            store.error.as_deref().unwrap_or_default()
        );
    }
}

/// One gateway's report as text: the dry run's lines, the stores an apply cleaned, the summary.
fn print_report(report: &SyncReport) {
    tell_problems(report);
    if report.result == Outcome::DryRun {
        for line in dry_run_lines(report) {
            say!(P::Info, "{line}");
        }
    }
    if report.result == Outcome::Applied {
        for store in report.stores.iter().filter(|s| s.error.is_none()) {
            say!(P::Info, "{}", store_line("removed from", store));
        }
    }
    let priority = if report.exit_code() == 0 {
        P::Info
    } else {
        P::Err
    };
    say!(priority, "{}", summary_line(report));
}

pub(super) fn dry_run_lines(report: &SyncReport) -> Vec<String> {
    let mut lines = Vec::new();
    for file in &report.files {
        let verb = match file.action {
            crate::host::managed_files::FileAction::Create => "create",
            crate::host::managed_files::FileAction::Update => "update",
            crate::host::managed_files::FileAction::FixMetadata => "fix mode/owner of",
            crate::host::managed_files::FileAction::Replace => "replace (unreadable)",
            crate::host::managed_files::FileAction::Remove => "remove",
            crate::host::managed_files::FileAction::Unchanged => continue,
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
pub(super) fn store_line(verb: &str, store: &sync::StoreReport) -> String {
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
    let stage = match (&report.secret.fallback_from, report.secret.stage.as_str()) {
        (Some(label), _) => format!(" under AWSCURRENT ({label} is on no version)"),
        (None, "AWSCURRENT") => String::new(),
        (None, label) => format!(" under {label}"),
    };
    let secret = format!(
        "version {}{stage} ({}, {})",
        report.secret.version_id, report.secret.kind, report.secret.fingerprint
    );
    let changed_files = report
        .files
        .iter()
        .filter(|f| f.action != crate::host::managed_files::FileAction::Unchanged)
        .count();
    let removed: usize = report.stores.iter().map(|s| s.removed_profiles.len()).sum();
    let agents = report
        .stores
        .iter()
        .filter(|s| !s.removed_profiles.is_empty() || s.removed_references > 0)
        .count();
    let skipped = report.stores.iter().filter(|s| s.error.is_some()).count();
    let gateway = gateway_phrase(&report.gateway);
    let skipped_note = if skipped > 0 {
        format!("; {skipped} store(s) need attention (exit 1)")
    } else {
        String::new()
    };
    match report.result {
        Outcome::Unchanged => format!(
            "unchanged: {secret} already applied for {}; {gateway}{skipped_note}",
            report.user
        ),
        Outcome::Applied => {
            let removed = match removed {
                0 => String::new(),
                _ => format!(", {removed} Anthropic profile(s) removed from {agents} store(s)"),
            };
            format!(
                "applied: {secret} for {}: {changed_files} file(s) written{removed}; {gateway}{skipped_note}",
                report.user
            )
        }
        Outcome::DryRun => {
            let removed = match removed {
                0 => String::new(),
                _ => format!(", {removed} Anthropic profile(s) would be removed"),
            };
            format!(
                "dry run: {secret} for {}: {changed_files} file(s) would change{removed}; nothing was touched{skipped_note}",
                report.user
            )
        }
    }
}

/// What happened to the gateway, in the summary line's words.
fn gateway_phrase(gateway: &sync::GatewayReport) -> String {
    let proof = gateway
        .proof
        .as_ref()
        .map(|p| format!(" by {}", p.describe()))
        .unwrap_or_default();
    match gateway.action {
        GatewayAction::Restarted => format!(
            "{} restarted (pid {} -> {}) and verified{proof}",
            gateway.unit,
            gateway.old_pid.map_or("-".into(), |p| p.to_string()),
            gateway.new_pid.map_or("-".into(), |p| p.to_string())
        ),
        GatewayAction::Reloaded => format!(
            "{} reloaded the token in place (pid {}){proof}",
            gateway.unit,
            gateway.new_pid.unwrap_or(0)
        ),
        GatewayAction::Verified => format!(
            "{} verified without restart (pid {}){proof}",
            gateway.unit,
            gateway.new_pid.unwrap_or(0)
        ),
        GatewayAction::Unchanged => format!("{} not restarted", gateway.unit),
        GatewayAction::NotRestarted => {
            format!("{} not restarted (--no-restart)", gateway.unit)
        }
        GatewayAction::UnitNotFound => {
            format!("{} not found, nothing restarted", gateway.unit)
        }
        GatewayAction::Inactive => format!("{} is stopped, left stopped", gateway.unit),
        GatewayAction::WouldRestart => format!("{} would be restarted", gateway.unit),
    }
}

/// The run's result from its gateways': "failed" when the run fails, else "applied" when any
/// gateway was applied, "dry-run" for a dry run, else "unchanged".
fn overall_result<'a>(results: impl Iterator<Item = &'a str>, code: u8) -> &'static str {
    if code != 0 {
        return "failed";
    }
    let results: Vec<&str> = results.collect();
    if results.contains(&"applied") {
        "applied"
    } else if results.contains(&"dry-run") {
        "dry-run"
    } else {
        "unchanged"
    }
}

/// A success report with the fields every JSON answer has, as a failure has them: `result`
/// and `exit_code` (0).
fn with_result(report: &impl serde::Serialize, result: &str) -> serde_json::Value {
    let mut value = serde_json::to_value(report).expect("report serialises");
    if let Some(object) = value.as_object_mut() {
        object.insert("result".to_owned(), result.into());
        object.insert("exit_code".to_owned(), 0.into());
    }
    value
}

/// One report as one line of JSON on stdout.
fn print_json(report: &impl serde::Serialize) {
    print_json_at(P::Info, report)
}

/// One report as one line of JSON on stdout, at `priority` in the journal.
fn print_json_at(priority: P, report: &impl serde::Serialize) {
    say!(
        priority,
        "{}",
        serde_json::to_string(report).expect("report serialises")
    );
}
