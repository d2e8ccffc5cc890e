//! `status` on real hosts: each finding is caused for real (moto, a user manager, real files and
//! stores) and asserted through the JSON output; exit codes 0 / 1 / 3 and the text's fix lines.

use crate::common::*;
use serde_json::Value;
use std::fs;
use std::os::unix::fs::PermissionsExt;

fn status(user: &TestUser, extra: &[&str], tokens: &[String]) -> (i32, Value) {
    let mut args = vec!["status", "--user", user.name.as_str(), "--output", "json"];
    args.extend_from_slice(extra);
    let run = run_tool(&args, &[], tokens);
    (run.status, run.report())
}

fn finding<'a>(report: &'a Value, check: &str) -> Vec<&'a Value> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["check"] == check)
        .collect()
}

fn severity_of(report: &Value, check: &str) -> String {
    let found = finding(report, check);
    assert!(!found.is_empty(), "no {check} finding in {report:#}");
    found
        .iter()
        .map(|f| f["severity"].as_str().unwrap())
        .max_by_key(|s| match *s {
            "problem" => 2,
            "warning" => 1,
            _ => 0,
        })
        .unwrap()
        .to_owned()
}

fn synced_user(name: &str, secret_name: &str) -> (TestUser, String, String) {
    let user = TestUser::new(name, true);
    let token = new_token(false);
    let secret = create_secret(secret_name, &token);
    sync_for(&user, &secret, &[], std::slice::from_ref(&token)).expect_status(0);
    (user, token, secret)
}

#[test]
fn a_healthy_host_exits_0() {
    if !require_root("status_healthy") {
        return;
    }
    let (user, token, secret) = synced_user("ocs-st-ok", "tests/status-ok");
    let tokens = vec![token];
    let (code, report) = status(&user, &["--check-secret", "--secret-id", &secret], &tokens);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["healthy"], true);
    for check in [
        "gateway-unit",
        "drop-in",
        "gateway-environment",
        "environment-file-override",
        "stores",
        "file-permissions",
        "state",
        "secret-current",
        "token-expiry",
        "legacy-timer",
        "claude-credentials",
    ] {
        assert_eq!(severity_of(&report, check), "ok", "{check}: {report:#}");
    }
    // What the prose says is in numbers and ids too (`facts`), for scripts.
    let facts = |check: &str| finding(&report, check)[0]["facts"].clone();
    assert_eq!(
        facts("gateway-unit")["main_pid"],
        user.main_pid(),
        "{report:#}"
    );
    assert_eq!(facts("gateway-unit")["active_state"], "active");
    let days = facts("token-expiry")["days_left"].as_i64().unwrap();
    assert!((363..=365).contains(&days), "{report:#}");
    let state = fs::read_to_string(user.state_file()).unwrap();
    let applied = facts("secret-current")["applied_version_id"].clone();
    assert!(state.contains(applied.as_str().unwrap()), "{report:#}");
    assert_eq!(facts("secret-current")["current_version_id"], applied);
    let text = run_tool(&["status", "--user", &user.name], &[], &tokens);
    text.expect_status(0);
    assert!(
        text.stdout.contains("healthy: 0 problem(s), 0 warning(s)"),
        "{}",
        text.stdout
    );
    assert!(!text.stdout.contains("fix:"), "{}", text.stdout);
}

#[test]
fn every_problem_is_found_and_comes_with_its_fix() {
    if !require_root("status_problems") {
        return;
    }
    let (user, token, _secret) = synced_user("ocs-st-bad", "tests/status-bad");
    let stale = new_token(false);
    let tokens = vec![token.clone(), stale.clone()];
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();

    // Stores: stale Anthropic profile, a profile in cooldown, leftover JSON beside SQLite, a corrupt one.
    user.write(
        ".openclaw/agents/work/agent/auth-profiles.json",
        &fs::read(fixture("openclaw/case-a.json")).unwrap(),
        0o600,
    );
    let cooling = serde_json::json!({
        "version": 1,
        "profiles": { "openai:default": { "type": "api_key", "provider": "openai", "key": "sk-proj-x" } },
        "usageStats": { "openai:default": { "cooldownUntil": now_ms + 3_600_000, "cooldownReason": "rate_limit" } }
    });
    user.write(
        ".openclaw/agents/cool/agent/auth-profiles.json",
        cooling.to_string().as_bytes(),
        0o600,
    );
    let mixed = user.path(".openclaw/agents/mixed/agent");
    fs::create_dir_all(&mixed).unwrap();
    rusqlite::Connection::open(mixed.join("openclaw-agent.sqlite"))
        .unwrap()
        .execute_batch("CREATE TABLE auth_profile_store (store_key TEXT NOT NULL PRIMARY KEY, store_json TEXT NOT NULL, updated_at INTEGER NOT NULL) STRICT; CREATE TABLE auth_profile_state (state_key TEXT NOT NULL PRIMARY KEY, state_json TEXT NOT NULL, updated_at INTEGER NOT NULL) STRICT;")
        .unwrap();
    user.write(
        ".openclaw/agents/mixed/agent/auth-profiles.json",
        b"{\"version\":1,\"profiles\":{}}",
        0o600,
    );
    user.write(
        ".openclaw/agents/broken/agent/auth-profiles.json",
        b"{\"version\": 1, \"profiles\": ",
        0o600,
    );

    // An EnvironmentFile= with a stale token, picked up by a restart done behind our back.
    user.write(
        ".openclaw/gateway.systemd.env",
        format!("ANTHROPIC_OAUTH_TOKEN={stale}\n").as_bytes(),
        0o600,
    );
    user.systemctl(&["restart", UNIT]);
    // And the state dir's .env (which OpenClaw 2026.8.1+ lets override managed keys) with one.
    user.write(
        ".openclaw/.env",
        format!("ANTHROPIC_OAUTH_TOKEN={stale}\n").as_bytes(),
        0o600,
    );
    // A token file readable by others.
    fs::set_permissions(
        user.path(".openclaw-env"),
        fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    // The old script's timer, still running.
    user.write(
        ".config/systemd/user/fetch-claude-token.service",
        b"[Service]\nType=oneshot\nExecStart=/bin/true\n",
        0o644,
    );
    user.write(
        ".config/systemd/user/fetch-claude-token.timer",
        b"[Timer]\nOnUnitActiveSec=6h\nOnBootSec=1h\n",
        0o644,
    );
    user.systemctl(&["daemon-reload"]);
    user.systemctl(&["start", "fetch-claude-token.timer"]);
    // Claude Code credentials with an OpenClaw release that imports them; the unit edit also
    // leaves systemd needing a daemon-reload.
    user.write(".claude/.credentials.json", b"{}", 0o600);
    let unit_path = format!(".config/systemd/user/{UNIT}");
    let unit = fs::read_to_string(user.path(&unit_path)).unwrap();
    user.write(
        &unit_path,
        format!("{unit}Environment=OPENCLAW_SERVICE_VERSION=2026.5.28\n").as_bytes(),
        0o644,
    );

    let (code, report) = status(&user, &[], &tokens);
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(report["healthy"], false);
    let expectations = [
        ("stale-profiles", "problem", "anthropic:claude-code"),
        ("cooldown", "warning", "openai:default"),
        ("leftover-json", "problem", "doctor --fix"),
        ("store-unreadable", "problem", "broken"),
        (
            "environment-file-override",
            "problem",
            "gateway.systemd.env",
        ),
        ("gateway-environment", "problem", &fingerprint(&stale)),
        ("file-permissions", "problem", "mode 644"),
        (
            "legacy-timer",
            "problem",
            "fetch-claude-token.timer is active",
        ),
        ("claude-credentials", "warning", "2026.5.28"),
        ("drop-in", "warning", "daemon-reload"),
    ];
    for (check, severity, seen) in expectations {
        assert_eq!(severity_of(&report, check), severity, "{check}: {report:#}");
        let text = finding(&report, check)
            .iter()
            .map(|f| f.to_string())
            .collect::<String>();
        assert!(
            text.contains(seen),
            "{check} should mention {seen:?}: {text}"
        );
        assert!(
            finding(&report, check)
                .iter()
                .all(|f| f["fix"].is_string() || f["severity"] == "ok"),
            "{check} has a fix"
        );
    }

    // Each overriding file is named with why it wins.
    let why = finding(&report, "environment-file-override")[0]["why"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        why.contains("gateway.systemd.env is the unit's EnvironmentFile=")
            && why.contains(".openclaw/.env at start"),
        "{why}"
    );

    let text = run_tool(&["status", "--user", &user.name], &[], &tokens);
    text.expect_status(1);
    // A fix line is pasted as root: it names the user it is for (a bare `sync` would sync
    // root's own gateways).
    // The user's own commands run in the user's world (pasted bare as root, `systemctl --user`
    // would act on root's manager).
    // ... and the secret it was synced from (the state file's ARN), where `<secret>` stood.
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(user.state_file()).unwrap()).unwrap();
    let arn = state["secret_arn"].as_str().unwrap().to_owned();
    let for_user = format!(
        "fix: openclaw-token-sync sync --user {} --force --secret-id {arn}",
        user.name
    );
    assert!(!text.stdout.contains("<secret>"), "{}", text.stdout);
    let in_world = format!(
        "sudo -u {} XDG_RUNTIME_DIR=/run/user/{} systemctl --user",
        user.name, user.uid
    );
    let timer = format!("fix: {in_world} disable --now fetch-claude-token.timer");
    let doctor = format!("fix: sudo -iu {} openclaw doctor --fix", user.name);
    let reload =
        format!("fix: {in_world} daemon-reload && {in_world} restart openclaw-gateway.service");
    for fix in [&timer, &doctor, &for_user, &reload] {
        assert!(
            text.stdout.contains(fix),
            "missing {fix:?} in:\n{}",
            text.stdout
        );
    }
    assert!(text.stdout.contains("PROBLEM"), "{}", text.stdout);
}

#[test]
fn warnings_only_exit_3() {
    if !require_root("status_warnings") {
        return;
    }
    let (user, token, secret) = synced_user("ocs-st-warn", "tests/status-warn");
    let newer = new_token(false);
    let tokens = vec![token, newer.clone()];
    put_secret(&secret, &newer);
    user.systemctl(&["stop", UNIT]);
    let args = [
        "--check-secret",
        "--secret-id",
        &secret,
        "--token-lifetime-days",
        "10",
        "--expiry-warning-days",
        "30",
    ];
    let (code, report) = status(&user, &args, &tokens);
    assert_eq!(code, 3, "{report:#}");
    let mut nagios_args = args.to_vec();
    nagios_args.push("--nagios");
    let (nagios, _) = status(&user, &nagios_args, &tokens);
    assert_eq!(nagios, 1, "warnings only are a monitoring plugin's WARNING");
    assert_eq!(severity_of(&report, "secret-current"), "warning");
    assert_eq!(severity_of(&report, "token-expiry"), "warning");
    assert_eq!(severity_of(&report, "gateway-unit"), "warning");
    assert_eq!(report["problems"], 0);
}

#[test]
fn an_expired_token_and_a_missing_unit_are_problems() {
    if !require_root("status_expired") {
        return;
    }
    let user = TestUser::new("ocs-st-exp", false);
    fs::remove_file(user.path(".config/systemd/user").join(UNIT)).unwrap();
    let token = new_token(false);
    let tokens = vec![token.clone()];
    let secret = create_secret(
        "tests/status-expired",
        &format!(r#"{{"token":"{token}","expires_at":"2026-01-01T00:00:00Z"}}"#),
    );
    run_tool(
        &[
            "sync",
            "--secret-id",
            &secret,
            "--user",
            &user.name,
            "--no-restart",
        ],
        &[],
        &tokens,
    )
    .expect_status(0);
    let (code, report) = status(&user, &["--check-secret", "--secret-id", &secret], &tokens);
    assert_eq!(code, 1, "{report:#}");
    // As a monitoring plugin: problems are CRITICAL, and a status that cannot run is UNKNOWN.
    let (nagios, _) = status(
        &user,
        &["--check-secret", "--secret-id", &secret, "--nagios"],
        &tokens,
    );
    assert_eq!(nagios, 2, "CRITICAL");
    let unknown = run_tool(
        &["status", "--nagios", "--user", "no-such-user-ocsync"],
        &[],
        &tokens,
    );
    assert_eq!(unknown.status, 3, "UNKNOWN: {}", unknown.stderr);
    assert_eq!(severity_of(&report, "token-expiry"), "problem");
    assert!(
        finding(&report, "token-expiry")[0]["facts"]["days_left"]
            .as_i64()
            .unwrap()
            < 0,
        "{report:#}"
    );
    assert!(finding(&report, "token-expiry")[0]["seen"]
        .as_str()
        .unwrap()
        .contains("expires_at"));
    assert_eq!(severity_of(&report, "gateway-unit"), "problem");
    assert_eq!(
        severity_of(&report, "state"),
        "warning",
        "unit-not-found is not a verified gateway"
    );

    // A secret scheduled for deletion is named as such, with the command that brings it back
    // (not blamed on the instance role).
    schedule_deletion(&secret);
    let (code, report) = status(&user, &["--check-secret", "--secret-id", &secret], &tokens);
    assert_eq!(code, 1, "{report:#}");
    let current = &finding(&report, "secret-current")[0];
    assert!(
        current["why"]
            .as_str()
            .unwrap()
            .contains("scheduled for deletion"),
        "{current}"
    );
    assert!(
        current["fix"].as_str().unwrap().contains(&format!(
            "aws secretsmanager restore-secret --secret-id {secret}"
        )),
        "{current}"
    );
    assert!(
        !current["fix"].as_str().unwrap().contains("instance role"),
        "{current}"
    );
}

#[test]
fn an_unloaded_drop_in_and_a_second_variable_are_reported() {
    if !require_root("status_unloaded") {
        return;
    }
    let user = TestUser::new("ocs-st-unload", true);
    let token = new_token(false);
    let api_key = new_token(true);
    let tokens = vec![token.clone(), api_key.clone()];
    let secret = create_secret("tests/status-unloaded", &token);
    // --no-restart writes the drop-in but neither reloads nor restarts.
    sync_for(&user, &secret, &["--no-restart"], &tokens).expect_status(0);
    let (code, report) = status(&user, &[], &tokens);
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(severity_of(&report, "drop-in"), "problem");
    assert!(finding(&report, "drop-in")[0]["seen"]
        .as_str()
        .unwrap()
        .contains("has not loaded it"));
    assert_eq!(
        severity_of(&report, "gateway-environment"),
        "problem",
        "the running gateway lacks the variable"
    );
    assert_eq!(
        severity_of(&report, "state"),
        "warning",
        "not restarted is not verified"
    );

    // Loaded and running, but an EnvironmentFile= also hands the gateway an API key.
    user.write(
        ".openclaw/gateway.systemd.env",
        format!("ANTHROPIC_API_KEY={api_key}\n").as_bytes(),
        0o600,
    );
    user.systemctl(&["daemon-reload"]);
    user.systemctl(&["restart", UNIT]);
    let (_, report) = status(&user, &[], &tokens);
    assert_eq!(severity_of(&report, "drop-in"), "ok", "{report:#}");
    assert_eq!(
        severity_of(&report, "both-variables"),
        "warning",
        "{report:#}"
    );
}

#[test]
fn a_user_without_linger_is_a_problem_when_unattended() {
    if !require_root("status_linger") {
        return;
    }
    let (user, token, _secret) = synced_user("ocs-st-linger", "tests/status-linger");
    let tokens = vec![token];
    let (_, report) = status(&user, &[], &tokens);
    assert_eq!(severity_of(&report, "linger"), "ok", "{report:#}");
    // As on a host where nobody ran `loginctl enable-linger` (the harness's manager stands in
    // for a lingering one and says so in logind's flag directory).
    let flag = std::path::Path::new("/var/lib/systemd/linger").join(&user.name);
    std::fs::remove_file(&flag).unwrap();
    let (_, report) = status(&user, &[], &tokens);
    std::fs::write(&flag, "").unwrap();
    assert_eq!(
        severity_of(&report, "linger"),
        "warning",
        "an operator at a shell"
    );
    std::fs::remove_file(&flag).unwrap();
    // Under the timer (a systemd service has INVOCATION_ID): a problem.
    let run = run_tool(
        &["status", "--user", &user.name, "--output", "json"],
        &[("INVOCATION_ID", "0123456789abcdef")],
        &tokens,
    );
    std::fs::write(&flag, "").unwrap();
    let report = run.report();
    assert_eq!(run.status, 1, "{report:#}");
    assert_eq!(severity_of(&report, "linger"), "problem");
    let linger = &finding(&report, "linger")[0];
    assert!(
        linger["fix"]
            .as_str()
            .unwrap()
            .contains("loginctl enable-linger"),
        "{linger}"
    );
}
