//! What an operator watches: the node_exporter metrics file after every `sync` (parsed by the
//! Prometheus client library's own text-format parser, from PyPI), JSON log lines, and the
//! journal's priorities for a sync run by a real systemd manager into a real journald.

use crate::common::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

/// `(name, sorted labels)` to value, as `prometheus_client.parser` reads the file.
type Samples = BTreeMap<(String, Vec<(String, String)>), f64>;

fn parse_metrics(path: &Path) -> Samples {
    let script = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = []
for family in text_string_to_metric_families(open(sys.argv[1]).read()):
    for s in family.samples:
        out.append([s.name, sorted(s.labels.items()), s.value, family.type])
print(json.dumps(out))
"#;
    let output = Command::new(tools_dir().join("venv/bin/python"))
        .args(["-c", script])
        .arg(path)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "the Prometheus parser rejected {}: {}\n{}",
        path.display(),
        String::from_utf8_lossy(&output.stderr),
        fs::read_to_string(path).unwrap_or_default()
    );
    let parsed: Vec<Value> = serde_json::from_slice(&output.stdout).unwrap();
    parsed
        .into_iter()
        .map(|s| {
            let labels = s[1]
                .as_array()
                .unwrap()
                .iter()
                .map(|pair| {
                    (
                        pair[0].as_str().unwrap().to_owned(),
                        pair[1].as_str().unwrap().to_owned(),
                    )
                })
                .collect();
            (
                (s[0].as_str().unwrap().to_owned(), labels),
                s[2].as_f64().unwrap(),
            )
        })
        .collect()
}

fn sample(samples: &Samples, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let mut labels: Vec<(String, String)> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    labels.sort();
    samples.get(&(name.to_owned(), labels)).copied()
}

fn seconds_of(rfc3339: &str) -> f64 {
    let parsed = aws_smithy_types::DateTime::from_str(
        rfc3339,
        aws_smithy_types::date_time::Format::DateTime,
    )
    .unwrap();
    parsed.as_secs_f64()
}

/// A test user with a running stand-in gateway, and a new secret holding a new token.
fn user_with_secret(name: &str, secret_name: &str) -> (TestUser, String, Vec<String>) {
    let user = TestUser::new(name, true);
    let token = new_token(false);
    let secret = create_secret(secret_name, &token);
    (user, secret, vec![token])
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

#[test]
fn the_metrics_file_follows_every_run_and_parses_as_prometheus_text() {
    if !require_root("metrics_file") {
        return;
    }
    let (user, secret, mut tokens) = user_with_secret("ocs-metrics", "tests/metrics");
    let dir = tempfile::tempdir().unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let path = dir.path().join("openclaw-token-sync.prom");
    let metrics = path.to_str().unwrap();
    let gw: [(&str, &str); 2] = [("user", "ocs-metrics"), ("unit", UNIT)];
    fn with<'a>(
        gw: &[(&'a str, &'a str)],
        extra: &[(&'a str, &'a str)],
    ) -> Vec<(&'a str, &'a str)> {
        let mut labels = gw.to_vec();
        labels.extend_from_slice(extra);
        labels
    }

    // A run that applies a new version and restarts the gateway.
    let run = sync_for(
        &user,
        &secret,
        &["--metrics-file", metrics, "--output", "json"],
        &tokens,
    );
    run.expect_status(0);
    let report = run.report();
    assert_eq!(report["gateway"]["action"], "restarted", "{report}");
    let m = parse_metrics(&path);
    assert_eq!(
        sample(&m, "openclaw_token_sync_last_run_success", &[]),
        Some(1.0)
    );
    assert_eq!(
        sample(&m, "openclaw_token_sync_last_run_exit_code", &[]),
        Some(0.0)
    );
    assert_eq!(
        sample(
            &m,
            "openclaw_token_sync_runs_total",
            &[("result", "success")]
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(&m, "openclaw_token_sync_gateway_restarts_total", &gw),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &m,
            "openclaw_token_sync_gateway_outcome",
            &with(&gw, &[("outcome", "applied")])
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &m,
            "openclaw_token_sync_gateway_outcome",
            &with(&gw, &[("outcome", "unchanged")])
        ),
        Some(0.0)
    );
    let created = seconds_of(report["secret"]["created_date"].as_str().unwrap());
    assert_eq!(
        sample(
            &m,
            "openclaw_token_sync_applied_version_created_timestamp_seconds",
            &gw
        ),
        Some(created)
    );
    assert_eq!(
        sample(
            &m,
            "openclaw_token_sync_token_expiry_timestamp_seconds",
            &gw
        ),
        Some(created + 365.0 * 86_400.0)
    );
    assert_eq!(
        sample(&m, "openclaw_token_sync_token_days_left", &gw),
        Some(364.0)
    );
    let verdict = report["gateway"]["proof"]["probe"]["verdict"]
        .as_str()
        .expect("the run probed the token");
    assert_eq!(
        sample(
            &m,
            "openclaw_token_sync_probe_result",
            &with(&gw, &[("result", verdict)])
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &m,
            "openclaw_token_sync_probe_result",
            &with(&gw, &[("result", "none")])
        ),
        Some(0.0)
    );
    let first_success = sample(
        &m,
        "openclaw_token_sync_last_success_timestamp_seconds",
        &[],
    )
    .expect("last success time");
    assert!((first_success - now()).abs() < 60.0, "{first_success}");
    // node_exporter runs as its own user: the file is world-readable, its directory holds
    // nothing else (no temp file left behind, none ending in .prom ever), and no token.
    assert_eq!(
        fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o644
    );
    let names: Vec<String> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec!["openclaw-token-sync.prom".to_owned()]);
    assert_no_leak("metrics file", &fs::read(&path).unwrap(), &tokens);

    // Nothing changed: no restart, the counters carry on.
    sync_for(&user, &secret, &["--metrics-file", metrics], &tokens).expect_status(0);
    let m = parse_metrics(&path);
    assert_eq!(
        sample(&m, "openclaw_token_sync_gateway_restarts_total", &gw),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &m,
            "openclaw_token_sync_runs_total",
            &[("result", "success")]
        ),
        Some(2.0)
    );
    assert_eq!(
        sample(
            &m,
            "openclaw_token_sync_gateway_outcome",
            &with(&gw, &[("outcome", "unchanged")])
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &m,
            "openclaw_token_sync_probe_result",
            &with(&gw, &[("result", "none")])
        ),
        Some(1.0),
        "a no-op run probes nothing"
    );

    // A JSON secret's expires_at is what the days left count down to.
    let rotated = new_token(false);
    tokens.push(rotated.clone());
    let expires = (now() as i64 / 86_400 + 41) * 86_400;
    let expires_text = aws_smithy_types::DateTime::from_secs(expires)
        .fmt(aws_smithy_types::date_time::Format::DateTime)
        .unwrap();
    put_secret(
        &secret,
        &serde_json::json!({"token": rotated, "expires_at": expires_text}).to_string(),
    );
    sync_for(&user, &secret, &["--metrics-file", metrics], &tokens).expect_status(0);
    let m = parse_metrics(&path);
    assert_eq!(
        sample(&m, "openclaw_token_sync_gateway_restarts_total", &gw),
        Some(2.0)
    );
    assert_eq!(
        sample(
            &m,
            "openclaw_token_sync_token_expiry_timestamp_seconds",
            &gw
        ),
        Some(expires as f64)
    );
    let days = sample(&m, "openclaw_token_sync_token_days_left", &gw).unwrap();
    assert!(days == 40.0 || days == 41.0, "{days}");
    let success_before = sample(
        &m,
        "openclaw_token_sync_last_success_timestamp_seconds",
        &[],
    );

    // A failed run is written too: failure counted, the last success and the restarts kept.
    let failed = sync_for(
        &user,
        "tests/metrics-missing",
        &["--metrics-file", metrics],
        &tokens,
    );
    failed.expect_status(1);
    let m = parse_metrics(&path);
    assert_eq!(
        sample(&m, "openclaw_token_sync_last_run_success", &[]),
        Some(0.0)
    );
    assert_eq!(
        sample(&m, "openclaw_token_sync_last_run_exit_code", &[]),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &m,
            "openclaw_token_sync_runs_total",
            &[("result", "failure")]
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &m,
            "openclaw_token_sync_last_success_timestamp_seconds",
            &[]
        ),
        success_before
    );
    assert_eq!(
        sample(&m, "openclaw_token_sync_gateway_restarts_total", &gw),
        Some(2.0)
    );
    // The gateway the failed run was for: failed, and its token's expiry still known, so an
    // expiry alert does not clear while syncs fail.
    assert_eq!(
        sample(
            &m,
            "openclaw_token_sync_gateway_outcome",
            &with(&gw, &[("outcome", "failed")])
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(&m, "openclaw_token_sync_gateway_last_run_success", &gw),
        Some(0.0)
    );
    assert_eq!(
        sample(
            &m,
            "openclaw_token_sync_token_expiry_timestamp_seconds",
            &gw
        ),
        Some(expires as f64)
    );

    // A dry run changes nothing, the metrics included.
    let before_dry = fs::read(&path).unwrap();
    sync_for(
        &user,
        &secret,
        &["--metrics-file", metrics, "--dry-run"],
        &tokens,
    )
    .expect_status(0);
    assert_eq!(fs::read(&path).unwrap(), before_dry);

    // A path the collector would never read, or in a missing directory: refused up front
    // (exit 2), before the run touches anything.
    let before = fs::read(&path).unwrap();
    for bad in [
        dir.path().join("metrics.txt"),
        dir.path().join("missing/openclaw-token-sync.prom"),
    ] {
        let run = sync_for(
            &user,
            &secret,
            &["--metrics-file", bad.to_str().unwrap(), "--force"],
            &tokens,
        );
        run.expect_status(2);
        assert!(run.stderr.contains(bad.to_str().unwrap()), "{}", run.stderr);
    }
    assert_eq!(fs::read(&path).unwrap(), before);

    // The packaged service's default: used only when its directory exists.
    let default_dir = tempfile::tempdir().unwrap();
    let default = default_dir
        .path()
        .join("node-exporter/openclaw-token-sync.prom");
    let env = [(
        "OPENCLAW_TOKEN_SYNC_DEFAULT_METRICS_FILE",
        default.to_str().unwrap(),
    )];
    run_tool(&sync_args(&secret, &user, &[]), &env, &tokens).expect_status(0);
    assert!(!default.exists());
    fs::create_dir(default.parent().unwrap()).unwrap();
    run_tool(&sync_args(&secret, &user, &[]), &env, &tokens).expect_status(0);
    let m = parse_metrics(&default);
    assert_eq!(
        sample(&m, "openclaw_token_sync_last_run_success", &[]),
        Some(1.0)
    );
}

/// Every stderr line of a run, parsed as JSON.
fn json_lines(stderr: &str) -> Vec<Value> {
    stderr
        .lines()
        .map(|line| {
            serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("log line is not JSON ({e}): {line}\n{stderr}"))
        })
        .collect()
}

#[test]
fn json_logs_are_one_object_per_line_at_every_verbosity() {
    if !require_root("json_logs") {
        return;
    }
    let (user, secret, tokens) = user_with_secret("ocs-jsonlog", "tests/json-logs");
    let run = sync_for(&user, &secret, &["-vv", "--log-format", "json"], &tokens);
    run.expect_status(0);
    let lines = json_lines(&run.stderr);
    let levels: Vec<&str> = lines.iter().map(|l| l["level"].as_str().unwrap()).collect();
    assert!(
        levels.contains(&"DEBUG") && levels.contains(&"INFO"),
        "{levels:?}"
    );
    for line in &lines {
        assert!(line["timestamp"].is_string(), "{line}");
        assert!(line["fields"]["message"].is_string(), "{line}");
    }
    // stdout keeps the summary.
    assert!(run.stdout.starts_with("applied:"), "{}", run.stdout);
    // Even at -vv the decision is words, not a Rust enum's Debug form.
    let decided = lines
        .iter()
        .find(|l| l["fields"]["message"] == "decided")
        .unwrap_or_else(|| panic!("no decision event: {}", run.stderr));
    let action = decided["fields"]["action"].as_str().unwrap();
    assert!(action.starts_with("restart: "), "{decided}");
    assert!(
        !run.stderr.contains("Restart {") && !run.stderr.contains("Report("),
        "{}",
        run.stderr
    );

    // An error is a log event too, at ERROR, naming what failed.
    let failed = run_tool(
        &sync_args("tests/json-logs-missing", &user, &["--log-format", "json"]),
        &[],
        &tokens,
    );
    failed.expect_status(1);
    let lines = json_lines(&failed.stderr);
    let error = lines
        .iter()
        .find(|l| l["level"] == "ERROR")
        .unwrap_or_else(|| panic!("no ERROR event: {}", failed.stderr));
    assert!(
        error["fields"]["message"]
            .as_str()
            .unwrap()
            .contains("tests/json-logs-missing"),
        "{error}"
    );
}

#[test]
fn the_journal_gets_the_summary_at_info_and_problems_at_error() {
    if !require_root("journal_priorities") {
        return;
    }
    if !journald() {
        skip("journal_priorities: systemd-journald cannot be started here");
        return;
    }
    let (user, secret, tokens) = user_with_secret("ocs-journal", "tests/journal");
    let mut env = aws_env(&moto().endpoint);
    env.push(("OPENCLAW_TOKEN_SYNC_CONFIG".into(), "/dev/null".into()));
    env.push(("HOME".into(), user.home.display().to_string()));
    let identifier = format!("ocsync-journal-{}", std::process::id());
    let properties = [format!("SyslogIdentifier={identifier}")];
    let sync = |args: &[&str]| {
        let mut argv = vec![BIN, "sync", "--settle-ms", "300"];
        argv.extend_from_slice(args);
        user.run_transient_to_journal(&properties, &argv, &env)
    };
    assert_eq!(sync(&["--secret-id", &secret]), 0);
    assert_eq!(sync(&["--secret-id", "tests/journal-missing"]), 1);
    assert_eq!(
        sync(&[
            "--secret-id",
            &secret,
            "--force",
            "-vv",
            "--log-format",
            "json"
        ]),
        0
    );

    // journald reads the streams asynchronously: wait for the last run's summary.
    let mut entries = Vec::new();
    for _ in 0..50 {
        entries = journal_entries(&identifier);
        let summaries = entries
            .iter()
            .filter(|e| {
                e["MESSAGE"]
                    .as_str()
                    .is_some_and(|m| m.starts_with("applied:"))
            })
            .count();
        if summaries >= 2 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let messages: Vec<(String, String)> = entries
        .iter()
        .map(|e| {
            (
                e["PRIORITY"].as_str().unwrap_or_default().to_owned(),
                e["MESSAGE"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    for (_, message) in &messages {
        assert_no_leak("journal", message.as_bytes(), &tokens);
        assert!(
            !message.starts_with('<'),
            "prefix left in the journal: {message}"
        );
    }
    let priority_of = |wanted: &dyn Fn(&str) -> bool| -> Vec<String> {
        messages
            .iter()
            .filter(|(_, m)| wanted(m))
            .map(|(p, _)| p.clone())
            .collect()
    };
    assert_eq!(
        priority_of(&|m| m.starts_with("applied:")),
        vec!["6", "6"],
        "{messages:#?}"
    );
    // The stand-in gateway's unit does not run OpenClaw: a text-mode warning about it.
    let warnings = priority_of(&|m| m.starts_with("openclaw-token-sync: warning:"));
    assert!(
        !warnings.is_empty() && warnings.iter().all(|p| p == "4"),
        "{messages:#?}"
    );
    let errors = priority_of(&|m| m.contains("error:") && m.contains("tests/journal-missing"));
    assert!(
        !errors.is_empty() && errors.iter().all(|p| p == "3"),
        "{messages:#?}"
    );
    // The JSON run: each event at its level's priority.
    let mut seen = BTreeMap::new();
    for (priority, message) in &messages {
        if let Ok(event) = serde_json::from_str::<Value>(message) {
            let level = event["level"].as_str().unwrap().to_owned();
            let expected = match level.as_str() {
                "ERROR" => "3",
                "WARN" => "4",
                "INFO" => "6",
                _ => "7",
            };
            assert_eq!(priority, expected, "{message}");
            seen.insert(level, priority.clone());
        }
    }
    assert!(
        seen.contains_key("INFO") && seen.contains_key("DEBUG"),
        "{messages:#?}"
    );
}

/// Validates `output` (one line of `--output json`) against the shipped
/// `deploy/output.schema.json` with jsonschema (PyPI): the schema's root, then `$defs/<name>`.
fn schema_check(name: &str, output: &str) -> std::process::Output {
    let schema = Path::new(MANIFEST_DIR).join("deploy/output.schema.json");
    Command::new(tools_dir().join("venv/bin/python"))
        .args([
            "-c",
            "import json, sys, jsonschema\n\
             schema = json.load(open(sys.argv[1])); value = json.loads(sys.argv[3])\n\
             jsonschema.Draft202012Validator.check_schema(schema)\n\
             jsonschema.validate(value, schema, cls=jsonschema.Draft202012Validator)\n\
             sub = dict(schema); sub.pop('oneOf'); sub['$ref'] = '#/$defs/' + sys.argv[2]\n\
             jsonschema.validate(value, sub, cls=jsonschema.Draft202012Validator)",
        ])
        .arg(&schema)
        .arg(name)
        .arg(output.trim())
        .output()
        .unwrap()
}

pub fn assert_matches_schema(name: &str, output: &str) {
    let check = schema_check(name, output);
    assert!(
        check.status.success(),
        "{name} output does not match the schema: {}\n{output}",
        String::from_utf8_lossy(&check.stderr)
    );
}

#[test]
fn every_json_output_matches_the_shipped_schema() {
    let first = new_token(false);
    let second = new_token(false);
    let tokens = vec![first.clone(), second.clone()];
    let secret = create_secret("tests/json-schema", &first);
    let home = tempfile::tempdir().unwrap();
    fs::create_dir_all(home.path().join(".openclaw/agents/main/agent")).unwrap();
    fs::write(
        home.path()
            .join(".openclaw/agents/main/agent/auth-profiles.json"),
        fs::read(fixture("openclaw/case-a.json")).unwrap(),
    )
    .unwrap();
    let home_arg = home.path().to_str().unwrap();
    let sync = |extra: &[&str]| {
        let mut args = vec![
            "sync",
            "--secret-id",
            &secret,
            "--home",
            home_arg,
            "--no-restart",
        ];
        args.extend_from_slice(extra);
        args.extend(["--output", "json"]);
        run_tool(&args, &[], &tokens)
    };
    for (what, run) in [
        ("dry run", sync(&["--dry-run"])),
        ("apply", sync(&[])),
        ("no-op", sync(&[])),
    ] {
        assert_eq!(run.status, 0, "{what}: {}", run.stderr);
        assert_matches_schema("sync", &run.stdout);
    }
    let status = run_tool(
        &[
            "status",
            "--home",
            home_arg,
            "--check-secret",
            "--secret-id",
            &secret,
            "--output",
            "json",
        ],
        &[],
        &tokens,
    );
    assert!(matches!(status.status, 0 | 1 | 3), "{}", status.stderr);
    assert_matches_schema("status", &status.stdout);
    let put = put_at(
        &moto().endpoint,
        &secret,
        &format!("{second}\n"),
        &["--label", "CANARY", "--output", "json"],
        &tokens,
    );
    put.expect_status(0);
    assert_matches_schema("put", &put.stdout);
    for movement in ["promote", "rollback"] {
        let run = run_tool(
            &[
                movement,
                "--secret-id",
                &secret,
                "--no-probe",
                "--output",
                "json",
            ],
            &[],
            &tokens,
        );
        run.expect_status(0);
        assert_matches_schema("stage", &run.stdout);
    }
    // trigger alone, waited for (moto's SSM and instances, through the proxy that completes
    // moto's command invocations as the fleet tests do).
    let doc = crate::fleet::document("OpenClawTokenSync-schema");
    crate::fleet::instances(1, "gw-schema");
    let proxy = FaultProxy::start();
    let trigger = run_tool(
        &[
            "trigger",
            "--secret-id",
            &secret,
            "--targets",
            "tag:Role=gw-schema",
            "--document",
            &doc,
            "--wait",
            "--poll-interval",
            "1",
            "--output",
            "json",
        ],
        &[("AWS_ENDPOINT_URL", proxy.endpoint.as_str())],
        &tokens,
    );
    trigger.expect_status(0);
    assert_matches_schema("trigger", &trigger.stdout);
    let failed = run_tool(
        &[
            "sync",
            "--secret-id",
            "tests/json-schema-missing",
            "--home",
            home_arg,
            "--no-restart",
            "--output",
            "json",
        ],
        &[],
        &tokens,
    );
    failed.expect_status(1);
    assert_matches_schema("failure", &failed.stdout);
    // The schema is not a rubber stamp: a report without its gateways list is refused.
    let bare = schema_check("sync", r#"{"result": "applied", "exit_code": 0}"#);
    assert!(!bare.status.success(), "a report without gateways passed");
    assert!(
        String::from_utf8_lossy(&bare.stderr).contains("ValidationError"),
        "{}",
        String::from_utf8_lossy(&bare.stderr)
    );
}
