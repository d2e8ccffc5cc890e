//! node_exporter textfile-collector metrics of a `sync` run (`--metrics-file`, README
//! "Metrics"). This module owns the metric names, what each run puts in them (pure:
//! [`render`]), the counters carried over from the previous file (`*_total`, the last success
//! time), and the write: atomic (temp file in the same directory whose name does not end in
//! `.prom`, so the collector never reads half a file; fsync; rename), mode 0644 so
//! node_exporter's own user can read it. A metrics file holds ids, times and counts, never a
//! token or a fingerprint.

use crate::anthropic_probe::Verdict;
use crate::error::{Error, Result};
use crate::sync::{GatewayAction, Outcome, SyncReport, SyncRun};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

/// Every metric name, in the order the file lists them.
pub const NAMES: [&str; 15] = [
    "openclaw_token_sync_build_info",
    "openclaw_token_sync_last_run_timestamp_seconds",
    "openclaw_token_sync_last_run_duration_seconds",
    "openclaw_token_sync_last_run_exit_code",
    "openclaw_token_sync_last_run_success",
    "openclaw_token_sync_last_success_timestamp_seconds",
    "openclaw_token_sync_runs_total",
    "openclaw_token_sync_gateway_last_run_success",
    "openclaw_token_sync_gateway_outcome",
    "openclaw_token_sync_gateway_restarts_total",
    "openclaw_token_sync_applied_version_created_timestamp_seconds",
    "openclaw_token_sync_token_expiry_timestamp_seconds",
    "openclaw_token_sync_token_days_left",
    "openclaw_token_sync_probe_result",
    "openclaw_token_sync_gateways",
];

const OUTCOMES: [&str; 4] = ["applied", "unchanged", "dry-run", "failed"];
const PROBE_RESULTS: [&str; 4] = ["accepted", "rejected", "inconclusive", "none"];
const DAY_SECONDS: f64 = 86_400.0;

/// What one gateway's run contributes.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GatewayFacts {
    pub user: String,
    pub unit: String,
    /// applied, unchanged, dry-run or failed.
    pub outcome: String,
    pub restarted: bool,
    pub version_created: Option<f64>,
    pub token_expiry: Option<f64>,
    /// accepted, rejected, inconclusive, or none (no live probe this run).
    pub probe: String,
}

/// What one run contributes: its end, length, exit code and gateways.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RunFacts {
    pub finished_at: f64,
    pub duration_seconds: f64,
    pub exit_code: u8,
    /// The gateways the run reached; empty when it failed before (or as) its only gateway.
    pub gateways: Vec<GatewayFacts>,
    /// For a run that failed as a whole: the probe's answer when that was the failure
    /// (`rejected`), else none.
    pub failed_probe: Option<String>,
}

/// The values a new file continues from: every `*_total` series, the last success time, and
/// each known gateway's applied version and expiry (absolute times, still true after a failed
/// run, so an expiry alert does not clear while syncs fail).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Carried {
    /// Series text (name and labels, exactly as written) to value.
    pub counters: BTreeMap<String, f64>,
    pub last_success: Option<f64>,
    /// `(user, unit)` to (version created, token expiry).
    pub gateways: BTreeMap<(String, String), (Option<f64>, Option<f64>)>,
}

/// `user="..",unit=".."` as this module writes it, back to the two values.
fn parse_gateway_labels(labels: &str) -> Option<(String, String)> {
    let mut values = Vec::new();
    let mut rest = labels;
    for key in ["user=\"", ",unit=\""] {
        rest = rest.strip_prefix(key)?;
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next()? {
                (i, '"') => break i,
                (_, '\\') => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                (_, c) => value.push(c),
            }
        };
        values.push(value);
        rest = &rest[end + 1..];
    }
    rest.is_empty()
        .then(|| (values[0].clone(), values[1].clone()))
}

/// What a new file continues from, out of an earlier file of ours; anything else is ignored.
pub fn carried_from(previous: &str) -> Carried {
    let mut carried = Carried::default();
    for line in previous.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Ok(value) = value.parse::<f64>() else {
            continue;
        };
        if !value.is_finite() || value < 0.0 {
            continue;
        }
        let (name, labels) = match series.split_once('{') {
            Some((name, labels)) => (name, labels.strip_suffix('}').unwrap_or_default()),
            None => (series, ""),
        };
        if name == "openclaw_token_sync_last_success_timestamp_seconds" {
            carried.last_success = Some(value);
            continue;
        }
        if name.ends_with("_total") && NAMES.contains(&name) {
            carried.counters.insert(series.to_owned(), value);
        }
        // The gateways the previous file showed (every shown gateway has this gauge; a restart
        // counter outlives a gateway that is gone, so it does not count).
        let Some(gateway) = parse_gateway_labels(labels) else {
            continue;
        };
        match name {
            "openclaw_token_sync_gateway_last_run_success" => {
                carried.gateways.entry(gateway).or_default();
            }
            "openclaw_token_sync_applied_version_created_timestamp_seconds" => {
                carried.gateways.entry(gateway).or_default().0 = Some(value)
            }
            "openclaw_token_sync_token_expiry_timestamp_seconds" => {
                carried.gateways.entry(gateway).or_default().1 = Some(value)
            }
            _ => {}
        }
    }
    carried
}

/// A label value as the text format wants it: `\`, `"` and newlines escaped.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn gateway_labels(gateway: &GatewayFacts) -> String {
    format!(
        "user=\"{}\",unit=\"{}\"",
        escape(&gateway.user),
        escape(&gateway.unit)
    )
}

struct Text(String);

impl Text {
    fn header(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}");
        let _ = writeln!(self.0, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, series: &str, value: f64) {
        let _ = writeln!(self.0, "{series} {value}");
    }
}

/// The run's gateways as the file shows them: a failed gateway keeps the version and expiry
/// the earlier file knew, and a run that failed as a whole counts as failed for every gateway
/// the earlier file knew.
fn shown_gateways(run: &RunFacts, carried: &Carried) -> Vec<GatewayFacts> {
    let known = |g: &GatewayFacts| {
        carried
            .gateways
            .get(&(g.user.clone(), g.unit.clone()))
            .copied()
            .unwrap_or_default()
    };
    let failed_as_known = |user: Option<&str>, probe: &str| {
        carried
            .gateways
            .iter()
            .filter(|((u, _), _)| user.is_none_or(|user| user == u))
            .map(|((user, unit), (created, expiry))| GatewayFacts {
                user: user.clone(),
                unit: unit.clone(),
                outcome: "failed".to_owned(),
                restarted: false,
                version_created: *created,
                token_expiry: *expiry,
                probe: probe.to_owned(),
            })
            .collect::<Vec<_>>()
    };
    if run.gateways.is_empty() && run.exit_code != 0 {
        return failed_as_known(None, run.failed_probe.as_deref().unwrap_or("none"));
    }
    let mut shown = Vec::new();
    for g in &run.gateways {
        // A user whose worker failed before naming its gateways: the ones the file knew.
        if g.outcome == "failed" && g.unit == crate::sync::EVERY_GATEWAY_OF_THE_USER {
            let known_ones = failed_as_known(Some(&g.user), &g.probe);
            if !known_ones.is_empty() {
                shown.extend(known_ones);
                continue;
            }
        }
        let (created, expiry) = known(g);
        shown.push(GatewayFacts {
            version_created: g.version_created.or(created),
            token_expiry: g.token_expiry.or(expiry),
            ..g.clone()
        });
    }
    shown
}

/// The file for this run, continuing what `carried` holds of the previous one.
pub fn render(run: &RunFacts, carried: &Carried) -> String {
    let gateways = shown_gateways(run, carried);
    let run = &RunFacts {
        gateways,
        ..run.clone()
    };
    let success = run.exit_code == 0;
    let counters = counted(run, carried, success);
    let last_success = if success {
        Some(run.finished_at)
    } else {
        carried.last_success
    };
    let mut text = Text(String::new());
    run_samples(&mut text, run, success, last_success, &counters);
    gateway_samples(&mut text, run, &counters);
    text.0
}

/// The counters carried over, with this run counted: one run by its result, and a restart of
/// each gateway restarted.
fn counted(run: &RunFacts, carried: &Carried, success: bool) -> BTreeMap<String, f64> {
    let mut counters = carried.counters.clone();
    let result = if success { "success" } else { "failure" };
    for other in ["success", "failure"] {
        counters
            .entry(format!(
                "openclaw_token_sync_runs_total{{result=\"{other}\"}}"
            ))
            .or_insert(0.0);
    }
    *counters
        .get_mut(&format!(
            "openclaw_token_sync_runs_total{{result=\"{result}\"}}"
        ))
        .expect("inserted above") += 1.0;
    for gateway in &run.gateways {
        let series = format!(
            "openclaw_token_sync_gateway_restarts_total{{{}}}",
            gateway_labels(gateway)
        );
        // A gateway the run reached starts its counter at 0 (so the first restart shows as an
        // increase); a failed one only keeps the count it had.
        if gateway.restarted || gateway.outcome != "failed" {
            let count = counters.entry(series).or_insert(0.0);
            if gateway.restarted {
                *count += 1.0;
            }
        }
    }
    counters
}

/// The run's own series: build info, when and how it ended, the last success, runs by result.
fn run_samples(
    text: &mut Text,
    run: &RunFacts,
    success: bool,
    last_success: Option<f64>,
    counters: &BTreeMap<String, f64>,
) {
    text.header(
        NAMES[0],
        "gauge",
        "Always 1; the labels say which build wrote this file.",
    );
    text.sample(
        &format!(
            "{}{{version=\"{}\",commit=\"{}\"}}",
            NAMES[0],
            escape(env!("CARGO_PKG_VERSION")),
            escape(env!("OCSYNC_GIT_COMMIT"))
        ),
        1.0,
    );
    text.header(
        NAMES[1],
        "gauge",
        "When the last sync run ended (Unix time).",
    );
    text.sample(NAMES[1], run.finished_at);
    text.header(NAMES[2], "gauge", "How long the last sync run took.");
    text.sample(NAMES[2], run.duration_seconds);
    text.header(
        NAMES[3],
        "gauge",
        "Exit code of the last sync run (0 success, 1 failure, 2 configuration).",
    );
    text.sample(NAMES[3], f64::from(run.exit_code));
    text.header(
        NAMES[4],
        "gauge",
        "1 when the last sync run exited 0, else 0.",
    );
    text.sample(NAMES[4], if success { 1.0 } else { 0.0 });
    if let Some(at) = last_success {
        text.header(
            NAMES[5],
            "gauge",
            "When a sync run last exited 0 (Unix time).",
        );
        text.sample(NAMES[5], at);
    }
    text.header(NAMES[6], "counter", "Sync runs by result.");
    counter_samples(text, counters, NAMES[6]);
}

/// The per-gateway series: how many, success and outcome of each, restarts, the applied
/// version's age and expiry, the probe's answer.
fn gateway_samples(text: &mut Text, run: &RunFacts, counters: &BTreeMap<String, f64>) {
    text.header(NAMES[14], "gauge", "Gateways the last sync run acted for.");
    text.sample(NAMES[14], run.gateways.len() as f64);
    if !run.gateways.is_empty() {
        text.header(
            NAMES[7],
            "gauge",
            "1 when the last run succeeded for this gateway, else 0.",
        );
        for gateway in &run.gateways {
            let ok = gateway.outcome != "failed";
            text.sample(
                &format!("{}{{{}}}", NAMES[7], gateway_labels(gateway)),
                if ok { 1.0 } else { 0.0 },
            );
        }
        enum_per_gateway(
            text,
            run,
            NAMES[8],
            "What the last run did for this gateway: 1 for its outcome (applied, unchanged, dry-run, failed), 0 for the others.",
            ("outcome", &OUTCOMES),
            |g| &g.outcome,
        );
    }
    text.header(
        NAMES[9],
        "counter",
        "Gateway restarts by sync (a restart happens only when the secret version changed, or with --force).",
    );
    counter_samples(text, counters, NAMES[9]);
    gauge_per_gateway(
        text,
        run,
        NAMES[10],
        "Creation time of the secret version applied to this gateway (Unix time).",
        |g| g.version_created,
    );
    gauge_per_gateway(
        text,
        run,
        NAMES[11],
        "When the applied token expires (Unix time): the secret's expires_at, else the version's creation plus token-lifetime-days.",
        |g| g.token_expiry,
    );
    gauge_per_gateway(
        text,
        run,
        NAMES[12],
        "Whole days until the applied token expires (negative once expired).",
        |g| {
            g.token_expiry
                .map(|at| ((at - run.finished_at) / DAY_SECONDS).floor())
        },
    );
    if !run.gateways.is_empty() {
        enum_per_gateway(
            text,
            run,
            NAMES[13],
            "Anthropic's answer to this run's live probe of the token: 1 for the result (accepted, rejected, inconclusive, none = not probed), 0 for the others.",
            ("result", &PROBE_RESULTS),
            |g| &g.probe,
        );
    }
}

/// A gauge with one series per gateway and value of `label`: 1 for the gateway's own, 0 for
/// the rest (so a query never has to tell a missing series from a zero).
fn enum_per_gateway(
    text: &mut Text,
    run: &RunFacts,
    name: &str,
    help: &str,
    (label, values): (&str, &[&str]),
    value_of: impl Fn(&GatewayFacts) -> &str,
) {
    text.header(name, "gauge", help);
    for gateway in &run.gateways {
        for value in values {
            text.sample(
                &format!("{name}{{{},{label}=\"{value}\"}}", gateway_labels(gateway)),
                if value_of(gateway) == *value {
                    1.0
                } else {
                    0.0
                },
            );
        }
    }
}

fn counter_samples(text: &mut Text, counters: &BTreeMap<String, f64>, name: &str) {
    for (series, value) in counters {
        if series.split('{').next() == Some(name) {
            text.sample(series, *value);
        }
    }
}

fn gauge_per_gateway(
    text: &mut Text,
    run: &RunFacts,
    name: &str,
    help: &str,
    value: impl Fn(&GatewayFacts) -> Option<f64>,
) {
    let samples: Vec<(String, f64)> = run
        .gateways
        .iter()
        .filter_map(|g| value(g).map(|v| (format!("{name}{{{}}}", gateway_labels(g)), v)))
        .collect();
    if samples.is_empty() {
        return;
    }
    text.header(name, "gauge", help);
    for (series, v) in samples {
        text.sample(&series, v);
    }
}

fn seconds(text: &str) -> Option<f64> {
    crate::status::parse_time_ms(text).map(|ms| ms as f64 / 1000.0)
}

/// One gateway's facts from its report (or its error).
pub fn gateway_facts(
    user: &str,
    unit: &str,
    report: Option<&SyncReport>,
    token_lifetime_days: u64,
) -> GatewayFacts {
    let Some(report) = report else {
        return GatewayFacts {
            user: user.to_owned(),
            unit: unit.to_owned(),
            outcome: "failed".to_owned(),
            restarted: false,
            version_created: None,
            token_expiry: None,
            probe: "none".to_owned(),
        };
    };
    let version_created = report.secret.created_date.as_deref().and_then(seconds);
    let token_expiry = report
        .secret
        .expires_at
        .as_deref()
        .and_then(seconds)
        .or_else(|| version_created.map(|c| c + token_lifetime_days as f64 * DAY_SECONDS));
    let probe = report
        .gateway
        .proof
        .as_ref()
        .and_then(|p| p.probe.as_ref())
        .map_or("none", |p| match p.finding.verdict {
            Verdict::Accepted => "accepted",
            Verdict::Rejected => "rejected",
            Verdict::Inconclusive => "inconclusive",
        });
    GatewayFacts {
        user: user.to_owned(),
        unit: unit.to_owned(),
        outcome: if report.exit_code() != 0 {
            "failed"
        } else {
            match report.result {
                Outcome::Applied => "applied",
                Outcome::Unchanged => "unchanged",
                Outcome::DryRun => "dry-run",
            }
        }
        .to_owned(),
        restarted: report.gateway.action == GatewayAction::Restarted,
        version_created,
        token_expiry,
        probe: probe.to_owned(),
    }
}

/// The facts of a whole run: its gateways, or none when it failed before reaching one.
pub fn run_facts(
    run: std::result::Result<&SyncRun, &Error>,
    exit_code: u8,
    started: std::time::SystemTime,
    token_lifetime_days: u64,
) -> RunFacts {
    let now = std::time::SystemTime::now();
    let since_epoch = |t: std::time::SystemTime| {
        t.duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0)
    };
    let (gateways, failed_probe) = match run {
        Ok(run) => (
            run.gateways
                .iter()
                .map(|g| {
                    let mut facts = gateway_facts(
                        &g.user,
                        &g.unit,
                        g.result.as_ref().ok(),
                        token_lifetime_days,
                    );
                    if let Err(Error::TokenRejected(_)) = &g.result {
                        facts.probe = "rejected".to_owned();
                    }
                    facts
                })
                .collect(),
            None,
        ),
        Err(Error::TokenRejected(_)) => (Vec::new(), Some("rejected".to_owned())),
        Err(_) => (Vec::new(), None),
    };
    RunFacts {
        finished_at: (since_epoch(now) * 1000.0).round() / 1000.0,
        duration_seconds: (now
            .duration_since(started)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0)
            * 1000.0)
            .round()
            / 1000.0,
        exit_code,
        gateways,
        failed_probe,
    }
}

/// Refuses a metrics path the collector would never read, or whose directory is missing, before
/// the run touches anything (a configuration error, exit 2).
pub fn check_path(path: &Path) -> Result<()> {
    if path.extension().and_then(|e| e.to_str()) != Some("prom") {
        return Err(Error::config(format!(
            "{}: a metrics file must end in .prom (node_exporter's textfile collector reads only those)",
            path.display()
        )));
    }
    match path.parent() {
        Some(dir) if dir.as_os_str().is_empty() || dir.is_dir() => {}
        _ => {
            return Err(Error::config(format!(
                "{}: the metrics file's directory does not exist",
                path.display()
            )))
        }
    }
    // A read-only directory (the service's sandbox: add it to ReadWritePaths=) or one this
    // user may not write.
    match crate::host::fsutil::unwritable_reason(path, false) {
        Some(reason) => Err(Error::config(format!(
            "metrics file {}: {reason}",
            path.display()
        ))),
        None => Ok(()),
    }
}

/// How long a metrics write waits for another run's.
const METRICS_LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// Writes the file for `run` at `path`, continuing the counters of the file already there.
/// Two runs at once (the timer and an SSM push) take turns on a lock, so neither loses the
/// other's counts: root's `metrics.lock` in its private run directory (`crate::host::locks`; the
/// metrics directory is world-readable, so anyone could hold a flock on it), or, for a run
/// without root, the directory itself; either wait is bounded.
pub fn write(path: &Path, run: &RunFacts) -> Result<()> {
    check_path(path)?;
    let dir = crate::host::fsutil::parent_of(path)?;
    let held = if nix::unistd::geteuid().is_root() {
        crate::host::locks::root_lock("metrics.lock", METRICS_LOCK_WAIT)?
    } else {
        crate::host::locks::dir_lock(dir, METRICS_LOCK_WAIT)?
    };
    crate::host::fsutil::refuse_symlink(path)?;
    let previous = match crate::host::fsutil::read_regular(path) {
        Ok(Some(bytes)) => String::from_utf8_lossy(&bytes).into_owned(),
        Ok(None) => String::new(),
        Err(e) => {
            return Err(Error::failed(format!(
                "cannot read the previous metrics file: {e}"
            )))
        }
    };
    let text = render(run, &carried_from(&previous));
    let written = crate::host::fsutil::write_atomic(path, text.as_bytes(), 0o644);
    drop(held);
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gateway(outcome: &str, restarted: bool) -> GatewayFacts {
        GatewayFacts {
            user: "ubuntu".into(),
            unit: "openclaw-gateway.service".into(),
            outcome: outcome.into(),
            restarted,
            version_created: Some(1_700_000_000.0),
            token_expiry: Some(1_700_000_000.0 + 365.0 * DAY_SECONDS),
            probe: "accepted".into(),
        }
    }

    fn run(exit_code: u8, gateways: Vec<GatewayFacts>) -> RunFacts {
        RunFacts {
            finished_at: 1_700_000_100.0,
            duration_seconds: 0.5,
            exit_code,
            gateways,
            failed_probe: None,
        }
    }

    fn value(text: &str, series: &str) -> Option<f64> {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
    }

    #[test]
    fn counters_continue_across_runs_and_failures_keep_the_last_success() {
        let first = render(&run(0, vec![gateway("applied", true)]), &Carried::default());
        let restarts = "openclaw_token_sync_gateway_restarts_total{user=\"ubuntu\",unit=\"openclaw-gateway.service\"}";
        assert_eq!(value(&first, restarts), Some(1.0));
        let mut second_run = run(0, vec![gateway("unchanged", false)]);
        second_run.finished_at += 900.0;
        let second = render(&second_run, &carried_from(&first));
        assert_eq!(value(&second, restarts), Some(1.0));
        assert_eq!(
            value(
                &second,
                "openclaw_token_sync_runs_total{result=\"success\"}"
            ),
            Some(2.0)
        );
        let mut third_run = run(1, Vec::new());
        third_run.finished_at += 1800.0;
        let third = render(&third_run, &carried_from(&second));
        assert_eq!(value(&third, restarts), Some(1.0), "kept without gateways");
        assert_eq!(
            value(&third, "openclaw_token_sync_runs_total{result=\"failure\"}"),
            Some(1.0)
        );
        assert_eq!(
            value(&third, "openclaw_token_sync_last_success_timestamp_seconds"),
            Some(1_700_001_000.0)
        );
        assert_eq!(
            value(&third, "openclaw_token_sync_last_run_success"),
            Some(0.0)
        );
    }

    #[test]
    fn days_left_and_enums() {
        let text = render(&run(0, vec![gateway("applied", true)]), &Carried::default());
        let labels = "user=\"ubuntu\",unit=\"openclaw-gateway.service\"";
        assert_eq!(
            value(
                &text,
                &format!("openclaw_token_sync_token_days_left{{{labels}}}")
            ),
            Some(364.0)
        );
        assert_eq!(
            value(
                &text,
                &format!("openclaw_token_sync_gateway_outcome{{{labels},outcome=\"applied\"}}")
            ),
            Some(1.0)
        );
        assert_eq!(
            value(
                &text,
                &format!("openclaw_token_sync_gateway_outcome{{{labels},outcome=\"failed\"}}")
            ),
            Some(0.0)
        );
        for name in NAMES {
            assert!(text.contains(&format!("# TYPE {name} ")), "{name}");
        }
    }

    #[test]
    fn a_failed_run_keeps_each_known_gateways_expiry_and_marks_it_failed() {
        let mut g = gateway("applied", true);
        g.unit = "odd \"unit\"\\x".into();
        let first = render(&run(0, vec![g.clone()]), &Carried::default());
        let mut failed = run(1, Vec::new());
        failed.failed_probe = Some("rejected".into());
        let text = render(&failed, &carried_from(&first));
        let labels = gateway_labels(&g);
        assert_eq!(
            value(
                &text,
                &format!("openclaw_token_sync_gateway_outcome{{{labels},outcome=\"failed\"}}")
            ),
            Some(1.0)
        );
        assert_eq!(
            value(
                &text,
                &format!("openclaw_token_sync_token_expiry_timestamp_seconds{{{labels}}}")
            ),
            g.token_expiry
        );
        assert_eq!(
            value(
                &text,
                &format!("openclaw_token_sync_probe_result{{{labels},result=\"rejected\"}}")
            ),
            Some(1.0)
        );
    }

    #[test]
    fn a_gateway_gone_from_the_config_is_not_brought_back_by_its_counter() {
        let mut b = gateway("applied", true);
        b.unit = "openclaw-gateway-b.service".into();
        let first = render(
            &run(0, vec![gateway("applied", true), b.clone()]),
            &Carried::default(),
        );
        // The next run reaches only the first gateway; then a run fails as a whole.
        let second = render(
            &run(0, vec![gateway("unchanged", false)]),
            &carried_from(&first),
        );
        let third = render(&run(1, Vec::new()), &carried_from(&second));
        let b_labels = gateway_labels(&b);
        assert_eq!(
            value(
                &third,
                &format!("openclaw_token_sync_gateway_restarts_total{{{b_labels}}}")
            ),
            Some(1.0),
            "its count stays"
        );
        assert!(
            !third.contains(&format!("openclaw_token_sync_gateway_outcome{{{b_labels}")),
            "{third}"
        );
        assert_eq!(value(&third, "openclaw_token_sync_gateways"), Some(1.0));
    }

    #[test]
    fn a_users_failed_worker_stands_for_the_gateways_the_file_knew() {
        let first = render(&run(0, vec![gateway("applied", true)]), &Carried::default());
        let mut worker = gateway("failed", false);
        worker.unit = crate::sync::EVERY_GATEWAY_OF_THE_USER.into();
        worker.version_created = None;
        worker.token_expiry = None;
        let text = render(&run(1, vec![worker]), &carried_from(&first));
        let labels = gateway_labels(&gateway("applied", true));
        assert_eq!(
            value(
                &text,
                &format!("openclaw_token_sync_gateway_outcome{{{labels},outcome=\"failed\"}}")
            ),
            Some(1.0)
        );
        assert!(!text.contains("(every gateway"), "{text}");
    }

    #[test]
    fn label_values_are_escaped() {
        let mut g = gateway("failed", false);
        g.unit = "a\"b\\c\nd".into();
        let text = render(&run(1, vec![g]), &Carried::default());
        assert!(text.contains("unit=\"a\\\"b\\\\c\\nd\""));
    }
}
