//! The promises of README "Guarantees", each as a test that could fail: AWS faults, SIGKILL at
//! random moments, concurrent runs, a gateway that will not start, hostile links at every
//! managed path, and no token in any child process's arguments.

use crate::common::*;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const GET: &str = "secretsmanager.GetSecretValue";

/// A home with a stale store, for runs that need no gateway (`--home` + `--no-restart`).
fn sandbox_home() -> tempfile::TempDir {
    let home = tempfile::tempdir().unwrap();
    let agent = home.path().join(".openclaw/agents/main/agent");
    fs::create_dir_all(&agent).unwrap();
    fs::write(
        agent.join("auth-profiles.json"),
        fs::read(fixture("openclaw/case-a.json")).unwrap(),
    )
    .unwrap();
    fs::write(
        home.path().join(".openclaw/gateway.systemd.env"),
        "ANTHROPIC_OAUTH_TOKEN=old\n",
    )
    .unwrap();
    home
}

#[test]
fn aws_faults_are_retried_within_the_deadline_and_a_failure_changes_nothing() {
    let proxy = FaultProxy::start();
    let first = new_token(false);
    let token = new_token(false);
    let tokens = vec![first.clone(), token.clone()];
    let secret = create_secret("tests/faults", &first);
    let home = sandbox_home();
    let home_arg = home.path().to_str().unwrap();
    let endpoint = [("AWS_ENDPOINT_URL", proxy.endpoint.as_str())];
    let args = [
        "sync",
        "--secret-id",
        &secret,
        "--home",
        home_arg,
        "--no-restart",
        "--timeout",
        "6",
    ];
    // A host that has synced before; then the operator rotates and AWS misbehaves.
    run_tool(&args, &endpoint, &tokens).expect_status(0);
    put_secret(&secret, &token);
    let before = snapshot(home.path());

    // Permanent faults: a clear error, exit 1, not one byte changed.
    let failures: [(&[&str], &str); 4] = [
        (&["500", "500", "500", "500"], "InternalServiceError"),
        (
            &["throttle", "throttle", "throttle", "throttle"],
            "ThrottlingException",
        ),
        (
            &["malformed", "malformed", "malformed", "malformed"],
            "could not be read",
        ),
        (&["hang", "hang", "hang", "hang"], "timed out"),
    ];
    for (faults, expected) in failures {
        proxy.reset();
        proxy.inject(faults);
        let started = Instant::now();
        let run = run_tool(&args, &endpoint, &tokens);
        run.expect_status(1);
        assert!(run.stderr.contains(expected), "{faults:?}: {}", run.stderr);
        assert!(
            started.elapsed() < Duration::from_secs(6 + 10),
            "{faults:?}: the deadline was not honoured"
        );
        assert_eq!(snapshot(home.path()), before, "{faults:?}: files changed");
        if faults[0] != "hang" && faults[0] != "malformed" {
            assert_eq!(proxy.count(GET), 4, "{faults:?}: four attempts");
        }
    }

    // Transient faults: retried with backoff, then applied.
    proxy.reset();
    proxy.inject(&["throttle", "500", "drop"]);
    let run = run_tool(&args, &endpoint, &tokens);
    run.expect_status(0);
    assert_eq!(proxy.count(GET), 4, "three faults, then success");
    assert!(fs::read_to_string(home.path().join(".openclaw-env"))
        .unwrap()
        .contains(&token));

    // A no-op costs exactly one API call.
    proxy.reset();
    run_tool(&args, &endpoint, &tokens).expect_status(0);
    assert_eq!(proxy.count(GET), 1);
}

#[test]
fn ten_concurrent_syncs_restart_the_gateway_exactly_once() {
    if !require_root("concurrency") {
        return;
    }
    let user = TestUser::new("ocs-race", true);
    let token = new_token(false);
    let secret = create_secret("tests/race", &token);
    let args = [
        "sync",
        "--secret-id",
        secret.as_str(),
        "--user",
        user.name.as_str(),
        "--settle-ms",
        "300",
        "--output",
        "json",
    ];
    let children: Vec<_> = (0..10).map(|_| spawn_tool(&args, &[])).collect();
    let mut applied = 0;
    for child in children {
        let output = child.wait_with_output().unwrap();
        assert_no_leak("stdout", &output.stdout, std::slice::from_ref(&token));
        assert_no_leak("stderr", &output.stderr, std::slice::from_ref(&token));
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let envelope: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        let report = &envelope["gateways"][0]["report"];
        if report["result"] == "applied" {
            applied += 1;
            assert_eq!(report["gateway"]["action"], "restarted");
        } else {
            assert_eq!(report["result"], "unchanged");
        }
    }
    assert_eq!(applied, 1, "exactly one run applies and restarts");
    user.assert_gateway_has("ANTHROPIC_OAUTH_TOKEN", &token);
}

#[test]
fn a_gateway_that_will_not_start_fails_the_run_and_the_next_run_retries() {
    if !require_root("wont_start") {
        return;
    }
    let user = TestUser::new("ocs-wontstart", true);
    let unit_path = user.path(".config/systemd/user").join(UNIT);
    let good_unit = fs::read_to_string(&unit_path).unwrap();
    user.write(
        &format!(".config/systemd/user/{UNIT}"),
        good_unit
            .replace(
                "ExecStart=/bin/sleep infinity",
                "ExecStart=/bin/sh -c 'sleep 0.2; exit 3'",
            )
            .as_bytes(),
        0o644,
    );
    user.systemctl(&["daemon-reload"]);
    let token = new_token(false);
    let tokens = vec![token.clone()];
    let secret = create_secret("tests/wontstart", &token);
    let args = [
        "sync",
        "--secret-id",
        &secret,
        "--user",
        &user.name,
        "--verify-timeout",
        "5",
        "--settle-ms",
        "1500",
    ];
    let run = run_tool(&args, &[], &tokens);
    run.expect_status(1);
    assert!(run.stderr.contains(UNIT), "{}", run.stderr);
    assert!(
        !user.state_file().exists(),
        "a failed run must not record the version"
    );
    assert!(
        !user
            .path(".local/state/openclaw-token-sync/restart-pending")
            .exists(),
        "the gateway was started again"
    );

    // Still broken: the next run tries again (no silent success).
    run_tool(&args, &[], &tokens).expect_status(1);
    assert!(!user.state_file().exists());

    // Fixed: the next run converges.
    user.write(
        &format!(".config/systemd/user/{UNIT}"),
        good_unit.as_bytes(),
        0o644,
    );
    user.systemctl(&["daemon-reload"]);
    let run = run_tool(&args, &[], &tokens);
    run.expect_status(0);
    assert!(user.state_file().exists());
    user.assert_gateway_has("ANTHROPIC_OAUTH_TOKEN", &token);
}

fn expected_dropin(token: &str) -> String {
    format!(
        "# Managed by openclaw-token-sync; it is rewritten on every sync that changes the token.\n[Service]\nEnvironment=ANTHROPIC_OAUTH_TOKEN={token}\n"
    )
}

fn temp_files_below(dir: &Path, found: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() && !path.is_symlink() {
            temp_files_below(&path, found);
        } else if entry.file_name().to_string_lossy().contains(".ocsync-tmp.") {
            found.push(path);
        }
    }
}

#[test]
fn sigkill_at_random_moments_never_tears_a_file_and_the_next_run_converges() {
    if !require_root("crash") {
        return;
    }
    let kills: usize = std::env::var("OCSYNC_CRASH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let user = TestUser::new("ocs-crash", true);
    let stale_store = fs::read(fixture("openclaw/auth-profiles.example.json")).unwrap();
    let store_path = user.path(".openclaw/agents/main/agent/auth-profiles.json");
    user.write(
        ".openclaw/agents/main/agent/auth-profiles.json",
        &stale_store,
        0o600,
    );
    let mut tokens = vec![new_token(false)];
    let secret = create_secret("tests/crash", &tokens[0]);
    let args = [
        "sync",
        "--secret-id",
        secret.as_str(),
        "--user",
        user.name.as_str(),
        "--settle-ms",
        "100",
    ];

    // How long a full applying run takes, to spread the kills over all of it.
    let started = Instant::now();
    run_tool(&args, &[], &tokens).expect_status(0);
    let full_run = started.elapsed();
    let mut seed: u64 = 0x9e3779b97f4a7c15 ^ std::process::id() as u64;
    let mut next_random = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut cleaned_store: Option<Vec<u8>> = Some(fs::read(&store_path).unwrap());
    let marker = user.path(".local/state/openclaw-token-sync/restart-pending");
    let (mut between_stop_and_start, mut during_a_write, mut gateway_down) = (0, 0, 0);
    for iteration in 0..kills {
        if iteration % 3 == 0 {
            let token = new_token(false);
            put_secret(&secret, &token);
            tokens.push(token);
        }
        if iteration % 5 == 0 {
            user.write(
                ".openclaw/agents/main/agent/auth-profiles.json",
                &stale_store,
                0o600,
            );
        }
        let mut child = spawn_tool(&args, &[]);
        let delay =
            Duration::from_micros(next_random() % (full_run.as_micros() as u64 * 6 / 5).max(1));
        std::thread::sleep(delay);
        let _ = child.kill();
        let output = child.wait_with_output().unwrap();
        assert_no_leak("stdout", &output.stdout, &tokens);
        assert_no_leak("stderr", &output.stderr, &tokens);
        if marker.exists() {
            between_stop_and_start += 1;
        }
        if user.main_pid() == 0 {
            gateway_down += 1;
        }
        let mut temps = Vec::new();
        temp_files_below(&user.home, &mut temps);
        if !temps.is_empty() {
            during_a_write += 1;
        }

        // Every managed file is entirely some version's content.
        let dropin = fs::read_to_string(user.dropin()).unwrap();
        let dropin_index = tokens
            .iter()
            .position(|t| dropin == expected_dropin(t))
            .unwrap_or_else(|| {
                panic!(
                    "iteration {iteration}: torn drop-in ({} bytes)",
                    dropin.len()
                )
            });
        let env_file = fs::read_to_string(user.path(".openclaw-env")).unwrap();
        assert!(
            tokens
                .iter()
                .any(|t| env_file.ends_with(&format!("\nANTHROPIC_OAUTH_TOKEN={t}\n"))),
            "iteration {iteration}: torn ~/.openclaw-env"
        );
        let store = fs::read(&store_path).unwrap();
        if store != stale_store {
            match &cleaned_store {
                Some(clean) => assert_eq!(&store, clean, "iteration {iteration}: torn store"),
                None => cleaned_store = Some(store),
            }
        }
        // The state never claims a version ahead of the files.
        if let Ok(state) = fs::read(user.state_file()) {
            let state: serde_json::Value = serde_json::from_slice(&state)
                .unwrap_or_else(|e| panic!("iteration {iteration}: torn state: {e}"));
            let claimed = tokens
                .iter()
                .position(|t| state["fingerprint"] == fingerprint(t))
                .unwrap_or_else(|| {
                    panic!("iteration {iteration}: state claims an unknown fingerprint")
                });
            assert!(
                claimed <= dropin_index,
                "iteration {iteration}: state ahead of the drop-in"
            );
        }
    }

    // The next complete run converges: verified gateway, latest token, no leftovers.
    let latest = tokens.last().unwrap().clone();
    let run = run_tool(&[&args[..], &["--output", "json"]].concat(), &[], &tokens);
    run.expect_status(0);
    user.assert_gateway_has("ANTHROPIC_OAUTH_TOKEN", &latest);
    let state: serde_json::Value =
        serde_json::from_slice(&fs::read(user.state_file()).unwrap()).unwrap();
    assert_eq!(state["fingerprint"], fingerprint(&latest));
    assert_eq!(state["gateway"], "verified");
    assert!(!fs::read_to_string(&store_path)
        .unwrap()
        .contains("anthropic"));
    assert!(!user
        .path(".local/state/openclaw-token-sync/restart-pending")
        .exists());
    let mut leftovers = Vec::new();
    temp_files_below(&user.home, &mut leftovers);
    assert!(
        leftovers.is_empty(),
        "temp files left behind: {leftovers:?}"
    );
    assert_no_leak_in_tree(&user.path(".local/state"), &[], &tokens);
    eprintln!(
        "crash test: {kills} runs killed with SIGKILL over {full_run:?} per run; {between_stop_and_start} between stop and start ({gateway_down} with the gateway down), {during_a_write} during a write"
    );
    if kills >= 100 {
        assert!(
            between_stop_and_start > 0,
            "no kill landed between stop and start: the test did not cover that window"
        );
    }
}

/// A root-owned file the attacker wants us to overwrite.
fn victim(name: &str, content: &str) -> PathBuf {
    let path = PathBuf::from(format!("/etc/ocsync-victim-{name}"));
    fs::write(&path, content).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    path
}

#[test]
fn links_at_managed_paths_are_refused_and_their_targets_unchanged() {
    if !require_root("links") {
        return;
    }
    let user = TestUser::new("ocs-links", true);
    let token = new_token(false);
    let tokens = vec![token.clone()];
    let secret = create_secret("tests/links", &token);
    let victim_dir = PathBuf::from("/etc/ocsync-victim-dir");
    let _ = fs::remove_dir_all(&victim_dir);
    fs::create_dir(&victim_dir).unwrap();
    fs::write(victim_dir.join("keep"), "root's\n").unwrap();
    let dropin_dir = format!(".config/systemd/user/{UNIT}.d");
    let cases: Vec<(&str, String, bool, &str)> = vec![
        (
            "dropin",
            format!("{dropin_dir}/anthropic.conf"),
            false,
            "symlink",
        ),
        ("dropin-dir", dropin_dir.clone(), true, "symlink"),
        ("legacy-env", ".openclaw-env".into(), false, "symlink"),
        (
            "gateway-env",
            ".openclaw/gateway.systemd.env".into(),
            false,
            "symlink",
        ),
        ("dot-env", ".openclaw/.env".into(), false, "symlink"),
        (
            "state-dir",
            ".local/state/openclaw-token-sync".into(),
            true,
            "symlink",
        ),
        (
            "lock",
            ".local/state/openclaw-token-sync/lock".into(),
            false,
            "symlink",
        ),
        (
            "state-file",
            ".local/state/openclaw-token-sync/state.json".into(),
            false,
            "symlink",
        ),
        (
            "store",
            ".openclaw/agents/main/agent/auth-profiles.json".into(),
            false,
            "symlink",
        ),
        ("hardlink-env", ".openclaw-env".into(), false, "hard links"),
        (
            "hardlink-gateway-env",
            ".openclaw/gateway.systemd.env".into(),
            false,
            "hard links",
        ),
    ];
    for (label, relative, is_dir, expected) in cases {
        // Fresh state for every case.
        for dir in [
            ".config/systemd/user/openclaw-gateway.service.d",
            ".local",
            ".openclaw",
        ] {
            let _ = fs::remove_dir_all(user.path(dir));
        }
        let _ = fs::remove_file(user.path(".openclaw-env"));
        let path = user.path(&relative);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        chown_tree(&user.home, user.uid, user.gid);
        let target = if is_dir {
            victim_dir.clone()
        } else {
            victim(
                label,
                "ANTHROPIC_OAUTH_TOKEN=root-owned\n{\"version\":1,\"profiles\":{}}\n",
            )
        };
        if label.starts_with("hardlink") {
            fs::hard_link(&target, &path).unwrap();
        } else {
            std::os::unix::fs::symlink(&target, &path).unwrap();
            let _ = std::os::unix::fs::lchown(&path, Some(user.uid), Some(user.gid));
        }
        let before = if is_dir {
            fs::read(victim_dir.join("keep")).unwrap()
        } else {
            fs::read(&target).unwrap()
        };
        let before_meta = fs::metadata(&target).unwrap();
        let run = sync_for(&user, &secret, &[], &tokens);
        assert_ne!(
            run.status, 0,
            "{label}: a link at {relative} must fail the run\n{}",
            run.stdout
        );
        assert!(run.stderr.contains(expected), "{label}: {}", run.stderr);
        let after = if is_dir {
            fs::read(victim_dir.join("keep")).unwrap()
        } else {
            fs::read(&target).unwrap()
        };
        assert_eq!(after, before, "{label}: the target changed");
        let after_meta = fs::metadata(&target).unwrap();
        assert_eq!(
            (after_meta.mode(), after_meta.uid()),
            (before_meta.mode(), before_meta.uid()),
            "{label}"
        );
        if is_dir {
            assert_eq!(
                fs::read_dir(&victim_dir).unwrap().count(),
                1,
                "{label}: nothing created in the target dir"
            );
        }
        let _ = fs::remove_file(&path);
        if !is_dir {
            let _ = fs::remove_file(&target);
        }
    }
    let _ = fs::remove_dir_all(&victim_dir);

    // Privileges really were dropped: after a clean run, nothing in the home belongs to root.
    for dir in [
        ".config/systemd/user/openclaw-gateway.service.d",
        ".local",
        ".openclaw",
    ] {
        let _ = fs::remove_dir_all(user.path(dir));
    }
    let _ = fs::remove_file(user.path(".openclaw-env"));
    user.write(
        ".openclaw/agents/main/agent/auth-profiles.json",
        &fs::read(fixture("openclaw/case-a.json")).unwrap(),
        0o600,
    );
    sync_for(&user, &secret, &[], &tokens).expect_status(0);
    fn owned_by(dir: &Path, uid: u32) {
        for entry in fs::read_dir(dir).unwrap().flatten() {
            let meta = fs::symlink_metadata(entry.path()).unwrap();
            assert_eq!(
                meta.uid(),
                uid,
                "{} is not owned by the user",
                entry.path().display()
            );
            if meta.is_dir() {
                owned_by(&entry.path(), uid);
            }
        }
    }
    owned_by(&user.home, user.uid);
}

#[test]
fn no_child_process_sees_the_token_in_its_arguments_or_environment() {
    if !require_root("argv") {
        return;
    }
    let user = TestUser::new("ocs-argv", true);
    let token = new_token(false);
    let secret = create_secret("tests/argv", &token);
    let child = spawn_tool(
        &[
            "sync",
            "--secret-id",
            &secret,
            "--user",
            &user.name,
            "--settle-ms",
            "500",
        ],
        &[],
    );
    let tool_pid = child.id();
    let mut scans = 0u64;
    let mut child = child;
    let mut systemctl_seen = 0;
    loop {
        let done = child.try_wait().unwrap().is_some();
        for entry in fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            if pid == tool_pid {
                continue;
            }
            if let Ok(cmdline) = fs::read(entry.path().join("cmdline")) {
                assert_no_leak(
                    &format!("argv of pid {pid}"),
                    &cmdline,
                    std::slice::from_ref(&token),
                );
                if cmdline.starts_with(b"systemctl") {
                    systemctl_seen += 1;
                    if let Ok(environ) = fs::read(entry.path().join("environ")) {
                        assert_no_leak(
                            &format!("environment of systemctl pid {pid}"),
                            &environ,
                            std::slice::from_ref(&token),
                        );
                    }
                }
            }
        }
        scans += 1;
        if done {
            break;
        }
    }
    let output = child.wait_with_output().unwrap();
    assert_no_leak("stdout", &output.stdout, std::slice::from_ref(&token));
    assert_no_leak("stderr", &output.stderr, std::slice::from_ref(&token));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(scans > 10, "the scan ran while sync ran");
    assert!(systemctl_seen > 0, "the scan saw the systemctl children");
    user.assert_gateway_has("ANTHROPIC_OAUTH_TOKEN", &token);
}

#[test]
fn unreadable_and_locked_stores_are_skipped_reported_and_left_untouched() {
    if !require_root("locked_stores") {
        return;
    }
    let user = TestUser::new("ocs-locked", true);
    let token = new_token(false);
    let tokens = vec![token.clone()];
    let secret = create_secret("tests/locked-stores", &token);

    // A store the user cannot read (root-owned, 0600).
    user.write(
        ".openclaw/agents/sealed/agent/auth-profiles.json",
        b"",
        0o600,
    );
    let sealed = user.path(".openclaw/agents/sealed/agent/auth-profiles.json");
    fs::write(&sealed, fs::read(fixture("openclaw/case-a.json")).unwrap()).unwrap();
    std::os::unix::fs::chown(&sealed, Some(0), Some(0)).unwrap();
    let sealed_before = fs::read(&sealed).unwrap();

    // A database another process holds an exclusive lock on.
    let locked_dir = user.path(".openclaw/agents/locked/agent");
    fs::create_dir_all(&locked_dir).unwrap();
    let database = locked_dir.join("openclaw-agent.sqlite");
    let profiles = r#"{"version":1,"profiles":{"anthropic:claude-code":{"type":"token","provider":"anthropic","token":"x"}}}"#;
    {
        let conn = rusqlite::Connection::open(&database).unwrap();
        conn.execute_batch("CREATE TABLE auth_profile_store (store_key TEXT NOT NULL PRIMARY KEY, store_json TEXT NOT NULL, updated_at INTEGER NOT NULL) STRICT; CREATE TABLE auth_profile_state (state_key TEXT NOT NULL PRIMARY KEY, state_json TEXT NOT NULL, updated_at INTEGER NOT NULL) STRICT;").unwrap();
        conn.execute(
            "INSERT INTO auth_profile_store VALUES ('primary', ?1, 1)",
            [profiles],
        )
        .unwrap();
    }
    chown_tree(&user.path(".openclaw/agents/locked"), user.uid, user.gid);
    // Read it before locking: closing any descriptor of the file in this process would drop
    // the POSIX locks SQLite holds on it.
    let locked_before = fs::read(&database).unwrap();
    let holder = rusqlite::Connection::open(&database).unwrap();
    holder.execute_batch("BEGIN EXCLUSIVE").unwrap();

    let run = sync_for(&user, &secret, &["--output", "json"], &tokens);
    run.expect_status(1);
    let report = run.report();
    let errors: Vec<String> = report["stores"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["error"].as_str().map(str::to_owned))
        .collect();
    assert!(
        errors
            .iter()
            .any(|e| e.contains("sealed") && e.contains("permission denied")),
        "{errors:?}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e.contains("openclaw-agent.sqlite") && e.contains("locked")),
        "{errors:?}\n{report:#}"
    );
    assert_eq!(
        report["gateway"]["action"], "restarted",
        "the rest of the run went on"
    );
    user.assert_gateway_has("ANTHROPIC_OAUTH_TOKEN", &token);
    assert_eq!(fs::read(&sealed).unwrap(), sealed_before);

    // Lock released: the file is as it was, the next run cleans that store, and the unreadable
    // one is still reported.
    holder.execute_batch("ROLLBACK").unwrap();
    drop(holder);
    assert_eq!(fs::read(&database).unwrap(), locked_before);
    let run = sync_for(&user, &secret, &["--output", "json"], &tokens);
    run.expect_status(1);
    let report = run.report();
    let cleaned = report["stores"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["agent"] == "locked")
        .unwrap();
    assert_eq!(
        cleaned["removed_profiles"],
        serde_json::json!(["anthropic:claude-code"])
    );
    assert_eq!(
        report["stores"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["error"].is_string())
            .count(),
        1
    );
}

/// `sync` with the standard test environment minus `remove`, plus `set`.
fn sync_with_env(
    home: &Path,
    secret: &str,
    remove: &[&str],
    set: &[(&str, &str)],
    extra: &[&str],
    tokens: &[String],
) -> Run {
    let mut command = std::process::Command::new(BIN);
    let home_arg = home.display().to_string();
    command
        .args([
            "sync",
            "--secret-id",
            secret,
            "--home",
            &home_arg,
            "--no-restart",
            "--timeout",
            "6",
        ])
        .args(extra)
        .env("OPENCLAW_TOKEN_SYNC_CONFIG", "/dev/null");
    for (k, v) in aws_env(&moto().endpoint) {
        if !remove.contains(&k.as_str()) {
            command.env(k, v);
        }
    }
    for key in remove {
        command.env_remove(key);
    }
    command.envs(set.iter().copied());
    Run::checked("sync", command.output().unwrap(), tokens)
}

#[test]
fn aws_setup_mistakes_name_the_cause_and_change_nothing() {
    let token = new_token(false);
    let tokens = vec![token.clone()];
    let secret = create_secret("tests/aws-mistakes", &token);
    let home = sandbox_home();
    // A host that has synced before (its lock file and state exist), then a setup mistake.
    let sync = |secret: &str, remove: &[&str], set: &[(&str, &str)], extra: &[&str]| {
        sync_with_env(home.path(), secret, remove, set, extra, &tokens)
    };
    sync(&secret, &[], &[], &[]).expect_status(0);
    let before = snapshot(home.path());
    // Each mistake: its exit status and what its message must name; all messages kept.
    let mut said = String::new();
    let mut expect = |run: Run, status: i32, needles: &[&str]| {
        run.expect_status(status);
        for needle in needles {
            assert!(run.stderr.contains(needle), "{needle}: {}", run.stderr);
        }
        said.push_str(&run.stderr);
    };

    // Nothing listens on the port: sync, put (its first call after its checks) and trigger
    // (SSM) say so alike; -vv says where the request went.
    let port = free_port();
    let refused = format!("http://127.0.0.1:{port}");
    let refused_by = format!("connection refused by 127.0.0.1:{port}");
    let run = sync(&secret, &[], &[("AWS_ENDPOINT_URL", &refused)], &["-vv"]);
    assert!(
        run.stderr.contains("region=us-east-1")
            && run.stderr.contains(&format!("endpoint=127.0.0.1:{port}")),
        "{}",
        run.stderr
    );
    expect(
        sync(&secret, &[], &[("AWS_ENDPOINT_URL", &refused)], &[]),
        1,
        &[&refused_by],
    );
    let put = put_at(
        &refused,
        &secret,
        &format!("{token}\n"),
        &["--no-probe"],
        &tokens,
    );
    expect(put, 1, &[&refused_by]);
    let trigger = run_tool(
        &[
            "trigger",
            "--secret-id",
            &secret,
            "--instance-ids",
            "i-0123456789abcdef0",
        ],
        &[("AWS_ENDPOINT_URL", &refused)],
        &tokens,
    );
    expect(trigger, 1, &[&format!("SendCommand failed: {refused_by}")]);

    // A host name that cannot resolve (`.invalid` never does, RFC 6761: nothing leaves the
    // host): the name is said, not "client error (Connect)".
    let run = sync(
        &secret,
        &[],
        &[(
            "AWS_ENDPOINT_URL",
            "http://secretsmanager.us-esat-1.invalid",
        )],
        &[],
    );
    expect(run, 1, &["cannot resolve secretsmanager.us-esat-1.invalid"]);

    // HTTPS spoken to moto's plain HTTP.
    let https = moto().endpoint.replace("http://", "https://");
    let run = sync(&secret, &[], &[("AWS_ENDPOINT_URL", &https)], &[]);
    expect(run, 1, &["TLS with 127.0.0.1:", "write http://"]);

    // An endpoint without a scheme is a usage error before any request.
    let run = sync(&secret, &[], &[], &["--endpoint-url", "127.0.0.1:5000"]);
    expect(run, 2, &["expected http://HOST"]);

    // No credentials anywhere (the instance role is off in tests).
    let run = sync(
        &secret,
        &["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"],
        &[],
        &[],
    );
    assert!(!run.stderr.contains("not enabled"), "{}", run.stderr);
    expect(run, 1, &["no AWS credentials found"]);

    // A --region that contradicts the secret's ARN is a usage error; a region from the
    // environment gives way to the ARN's (the request goes to eu-west-1, where moto has no
    // such secret: the error names that region and the ARN's account).
    let arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:tests/aws-mistakes-AbCdEf";
    let run = sync(arn, &[], &[], &["--region", "us-east-1"]);
    expect(
        run,
        2,
        &["is us-east-1 but the secret's ARN names eu-west-1"],
    );
    let run = sync(arn, &[], &[], &[]);
    expect(run, 1, &["in region eu-west-1 of account 123456789012"]);

    // A secret that does not exist: the region and account are named.
    let run = sync("tests/no-such-secret", &[], &[], &[]);
    expect(
        run,
        1,
        &[
            "ResourceNotFoundException",
            "in region us-east-1 of the account of the credentials",
        ],
    );

    // Never an SDK dump.
    for needle in [
        "SdkBody",
        "ProviderError",
        "DispatchFailure",
        "ConnectorError",
    ] {
        assert!(!said.contains(needle), "{needle}: {said}");
    }
    assert_eq!(snapshot(home.path()), before, "a failed run changed files");
}
