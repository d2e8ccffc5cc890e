//! `sync`'s decisions end to end, as root for throwaway users with a real `systemd --user`
//! manager running the stand-in gateway: a run killed while the gateway stops, store entries that
//! come back on every start or cannot be written, a root-owned legacy file, a unit name without
//! `.service`, a credential OpenClaw prefers over ours, an edit made while the gateway stops, and
//! booleans switched off above the config file. (The decision table itself is unit-tested in
//! `src/sync/decide.rs`.)

use crate::common::*;
use std::fs;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::time::{Duration, Instant};

const STORE: &str = ".openclaw/agents/main/agent/auth-profiles.json";
const MARKER: &str = ".local/state/openclaw-token-sync/restart-pending";

/// Makes the gateway take `seconds` to stop (OpenClaw's own unit allows 330 s), so a test can
/// act while a sync waits for the stop.
fn slow_stop(user: &TestUser, seconds: u32) {
    user.write(
        &format!(".config/systemd/user/{UNIT}.d/zz-slow-stop.conf"),
        format!("[Service]\nExecStop=/bin/sleep {seconds}\nTimeoutStopSec=60\n").as_bytes(),
        0o644,
    );
    user.systemctl(&["daemon-reload"]);
    user.systemctl(&["restart", UNIT]);
}

fn wait_for_state(user: &TestUser, state: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while user.show("ActiveState") != state {
        assert!(
            Instant::now() < deadline,
            "{UNIT} never became {state} (is {})",
            user.show("ActiveState")
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_run_killed_while_the_gateway_stops_is_finished_by_the_next_run() {
    if !require_root("killed_stop") {
        return;
    }
    let user = TestUser::new("ocs-killstop", true);
    slow_stop(&user, 4);
    let token = new_token(false);
    let tokens = vec![token.clone()];
    let secret = create_secret("tests/killstop", &token);
    sync_for(&user, &secret, &[], &tokens).expect_status(0);

    // Same version, files and state current: only --force restarts. Killed during the stop.
    let mut child = spawn_tool(&sync_args(&secret, &user, &["--force"]), &[]);
    wait_for_state(&user, "deactivating");
    child.kill().unwrap();
    let output = child.wait_with_output().unwrap();
    assert_no_leak("killed run's stdout", &output.stdout, &tokens);
    assert_no_leak("killed run's stderr", &output.stderr, &tokens);
    wait_for_state(&user, "inactive");
    assert!(user.path(MARKER).exists(), "the killed run left its marker");

    let run = sync_for(&user, &secret, &["--output", "json"], &tokens);
    run.expect_status(0);
    let report = run.report();
    assert_eq!(report["gateway"]["action"], "restarted", "{report}");
    assert_eq!(user.show("ActiveState"), "active");
    user.assert_gateway_has("ANTHROPIC_OAUTH_TOKEN", &token);
    assert!(!user.path(MARKER).exists());
    let run = sync_for(&user, &secret, &[], &tokens);
    run.expect_status(0);
    assert!(run.stdout.starts_with("unchanged:"), "{}", run.stdout);

    // A run that only cleans a store (same version), killed the same way: the next run starts
    // the gateway and finishes the cleaning (not "came back": it was never removed).
    let seed = fs::read(fixture("openclaw/auth-profiles.example.json")).unwrap();
    user.write(STORE, &seed, 0o600);
    let mut child = spawn_tool(&sync_args(&secret, &user, &[]), &[]);
    wait_for_state(&user, "deactivating");
    child.kill().unwrap();
    let output = child.wait_with_output().unwrap();
    assert_no_leak("killed run's stdout", &output.stdout, &tokens);
    assert_no_leak("killed run's stderr", &output.stderr, &tokens);
    wait_for_state(&user, "inactive");
    let run = sync_for(&user, &secret, &["--output", "json"], &tokens);
    run.expect_status(0);
    let report = run.report();
    assert_eq!(report["gateway"]["action"], "restarted", "{report}");
    assert_eq!(
        report["stores"][0]["removed_profiles"],
        serde_json::json!(["anthropic:claude-code", "anthropic:default"]),
        "{report}"
    );
    assert!(!fs::read_to_string(user.path(STORE))
        .unwrap()
        .contains("anthropic:"));
    assert_eq!(user.show("ActiveState"), "active");
    sync_for(&user, &secret, &[], &tokens).expect_status(0);
}

#[test]
fn a_store_entry_the_gateway_recreates_on_start_costs_one_restart_per_version() {
    if !require_root("recreated") {
        return;
    }
    let user = TestUser::new("ocs-recreate", true);
    // Something re-creates the Anthropic profiles on every start (as a re-import would).
    let seed = fs::read(fixture("openclaw/auth-profiles.example.json")).unwrap();
    user.write("store-seed.json", &seed, 0o600);
    user.write(STORE, &seed, 0o600);
    let reimport = format!(".config/systemd/user/{UNIT}.d/zz-reimport.conf");
    user.write(
        &reimport,
        format!("[Service]\nExecStartPost=/bin/cp %h/store-seed.json %h/{STORE}\n").as_bytes(),
        0o644,
    );
    user.systemctl(&["daemon-reload"]);
    let token = new_token(false);
    let tokens = vec![token.clone()];
    let secret = create_secret("tests/recreate", &token);

    // The first run restarts (new version), cleans, and sees the entries back at once.
    let run = sync_for(&user, &secret, &["--output", "json"], &tokens);
    run.expect_status(1);
    let report = run.report();
    assert_eq!(report["gateway"]["action"], "restarted");
    let error = report["stores"][0]["error"].as_str().unwrap().to_owned();
    assert!(error.contains("anthropic:claude-code"), "{error}");
    assert!(error.contains("right after the gateway started"), "{error}");
    assert!(error.contains("--force"), "{error}");
    assert!(
        !user.state_file().exists(),
        "a store problem is a failed run"
    );

    // Later runs of the same version report it and do not restart again.
    let pid = user.main_pid();
    for _ in 0..3 {
        let run = sync_for(&user, &secret, &["--output", "json"], &tokens);
        run.expect_status(1);
        let report = run.report();
        assert_ne!(report["gateway"]["action"], "restarted", "{report}");
        let error = report["stores"][0]["error"].as_str().unwrap();
        assert!(error.contains("anthropic:default"), "{error}");
        assert!(error.contains("came back"), "{error}");
        assert!(run.stderr.contains(STORE.trim_start_matches(".openclaw/")));
        assert_eq!(
            user.main_pid(),
            pid,
            "no restart for a problem that comes back"
        );
    }

    // The operator removes the cause; the store still holds what the last start wrote, so the
    // plain run still holds it, and --force clears it for good.
    fs::remove_file(user.path(&reimport)).unwrap();
    user.systemctl(&["daemon-reload"]);
    sync_for(&user, &secret, &[], &tokens).expect_status(1);
    assert_eq!(user.main_pid(), pid);
    let run = sync_for(&user, &secret, &["--force", "--output", "json"], &tokens);
    run.expect_status(0);
    assert_eq!(run.report()["gateway"]["action"], "restarted");
    assert_ne!(user.main_pid(), pid);
    assert!(!fs::read_to_string(user.path(STORE))
        .unwrap()
        .contains("anthropic:"));
    let run = sync_for(&user, &secret, &[], &tokens);
    run.expect_status(0);
    assert!(run.stdout.starts_with("unchanged:"), "{}", run.stdout);

    // A new version may restart once more for the same entries.
    user.write(STORE, &seed, 0o600);
    let third = new_token(false);
    put_secret(&secret, &third);
    let pid = user.main_pid();
    let all = vec![token.clone(), third.clone()];
    let run = run_tool(&sync_args(&secret, &user, &["--output", "json"]), &[], &all);
    assert_eq!(
        run.report()["gateway"]["action"],
        "restarted",
        "{}",
        run.stdout
    );
    assert_ne!(user.main_pid(), pid);
}

#[test]
fn a_store_this_user_cannot_write_is_reported_and_never_restarted_for() {
    if !require_root("unwritable_store") {
        return;
    }
    let user = TestUser::new("ocs-rostore", true);
    let token = new_token(false);
    let tokens = vec![token.clone()];
    let secret = create_secret("tests/rostore", &token);
    sync_for(&user, &secret, &[], &tokens).expect_status(0);
    let pid = user.main_pid();

    // A stale store owned by root: readable, not writable for the user.
    let seed = fs::read(fixture("openclaw/auth-profiles.example.json")).unwrap();
    user.write(STORE, &seed, 0o644);
    let dir = user.path(".openclaw/agents/main/agent");
    chown_tree(&dir, 0, 0);
    fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    for _ in 0..3 {
        let run = sync_for(&user, &secret, &["--output", "json"], &tokens);
        run.expect_status(1);
        let report = run.report();
        let error = report["stores"][0]["error"].as_str().unwrap();
        assert!(error.contains("cannot write"), "{error}");
        assert!(error.contains("auth-profiles.json"), "{error}");
        assert_eq!(
            user.main_pid(),
            pid,
            "never stopped for a store it cannot clean"
        );
    }
    assert_eq!(fs::read(user.path(STORE)).unwrap(), seed);
}

#[test]
fn a_root_owned_legacy_env_file_is_replaced() {
    if !require_root("root_legacy") {
        return;
    }
    let user = TestUser::new("ocs-rootlegacy", true);
    let old = new_token(false);
    let token = new_token(false);
    let tokens = vec![old.clone(), token.clone()];
    // What the legacy root script left: root-owned 0600 in the user's home.
    let legacy = user.path(".openclaw-env");
    fs::write(&legacy, format!("export ANTHROPIC_OAUTH_TOKEN={old}\n")).unwrap();
    chown_tree(&legacy, 0, 0);
    fs::set_permissions(&legacy, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let secret = create_secret("tests/rootlegacy", &token);

    let run = sync_for(&user, &secret, &[], &tokens);
    run.expect_status(0);
    let meta = fs::metadata(&legacy).unwrap();
    assert_eq!(
        (meta.uid(), meta.mode() & 0o777),
        (user.uid, 0o600),
        "replaced, owned by the user"
    );
    let content = fs::read_to_string(&legacy).unwrap();
    assert!(content.contains(&token) && !content.contains(&old));
    user.assert_gateway_has("ANTHROPIC_OAUTH_TOKEN", &token);
    sync_for(&user, &secret, &[], &tokens).expect_status(0);
}

#[test]
fn a_unit_name_without_service_gets_it() {
    if !require_root("unit_suffix") {
        return;
    }
    let user = TestUser::new("ocs-unitname", true);
    let old = new_token(false);
    let token = new_token(false);
    let tokens = vec![old.clone(), token.clone()];
    // What earlier releases wrote for `--unit openclaw-gateway`: a token where nothing reads it.
    user.write(
        ".config/systemd/user/openclaw-gateway.d/anthropic.conf",
        format!("# Managed by openclaw-token-sync; it is rewritten on every sync that changes the token.\n[Service]\nEnvironment=ANTHROPIC_OAUTH_TOKEN={old}\n").as_bytes(),
        0o600,
    );
    let secret = create_secret("tests/unitname", &token);
    let run = sync_for(&user, &secret, &["--unit", "openclaw-gateway"], &tokens);
    run.expect_status(0);
    assert!(user.dropin().exists());
    assert!(
        !user
            .path(".config/systemd/user/openclaw-gateway.d")
            .exists(),
        "the stray drop-in and its directory are gone"
    );
    user.assert_gateway_has("ANTHROPIC_OAUTH_TOKEN", &token);
    // The same unit either way: nothing to do.
    let run = sync_for(&user, &secret, &[], &tokens);
    run.expect_status(0);
    assert!(run.stdout.starts_with("unchanged:"), "{}", run.stdout);
    let run = sync_for(&user, &secret, &["--unit", "openclaw.timer"], &tokens);
    run.expect_status(2);
}

#[test]
fn a_credential_openclaw_prefers_over_ours_is_never_reported_verified() {
    if !require_root("both_variables") {
        return;
    }
    let user = TestUser::new("ocs-bothvars", true);
    let oauth = new_token(false);
    let api_key = new_token(true);
    let tokens = vec![oauth.clone(), api_key.clone()];
    let operator = format!(".config/systemd/user/{UNIT}.d/zz-operator.conf");
    user.write(
        &operator,
        format!("[Service]\nEnvironment=ANTHROPIC_OAUTH_TOKEN={oauth}\n").as_bytes(),
        0o600,
    );
    user.systemctl(&["daemon-reload"]);
    let secret = create_secret("tests/bothvars", &api_key);

    // First run: the drop-in is new, so only the started process can tell.
    let run = sync_for(&user, &secret, &[], &tokens);
    run.expect_status(1);
    assert!(
        run.stderr.contains("ANTHROPIC_OAUTH_TOKEN"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("prefers"), "{}", run.stderr);
    assert!(!user.state_file().exists());
    let pid = user.main_pid();
    assert_ne!(pid, 0, "the gateway runs again");

    // Next runs refuse before stopping anything, naming the file.
    let run = sync_for(&user, &secret, &[], &tokens);
    run.expect_status(1);
    assert!(run.stderr.contains("refusing to touch"), "{}", run.stderr);
    assert!(run.stderr.contains("zz-operator.conf"), "{}", run.stderr);
    assert_eq!(user.main_pid(), pid, "a refusal does not restart");

    fs::remove_file(user.path(&operator)).unwrap();
    user.systemctl(&["daemon-reload"]);
    sync_for(&user, &secret, &[], &tokens).expect_status(0);
    user.assert_gateway_has("ANTHROPIC_API_KEY", &api_key);
    assert_eq!(user.gateway_env("ANTHROPIC_OAUTH_TOKEN"), None);
}

#[test]
fn an_edit_made_while_the_gateway_stops_is_kept() {
    if !require_root("edit_during_stop") {
        return;
    }
    let user = TestUser::new("ocs-editstop", true);
    slow_stop(&user, 3);
    user.write(".openclaw/.env", b"OPERATOR_A=1\n", 0o600);
    let first = new_token(false);
    let second = new_token(false);
    let tokens = vec![first.clone(), second.clone()];
    let secret = create_secret("tests/editstop", &first);
    sync_for(&user, &secret, &[], &tokens).expect_status(0);

    put_secret(&secret, &second);
    let child = spawn_tool(&sync_args(&secret, &user, &[]), &[]);
    wait_for_state(&user, "deactivating");
    let mut env = fs::OpenOptions::new()
        .append(true)
        .open(user.path(".openclaw/.env"))
        .unwrap();
    env.write_all(b"OPERATOR_B=2\n").unwrap();
    drop(env);
    let output = child.wait_with_output().unwrap();
    assert_no_leak("stdout", &output.stdout, &tokens);
    assert_no_leak("stderr", &output.stderr, &tokens);
    assert!(output.status.success(), "{output:?}");
    let content = fs::read_to_string(user.path(".openclaw/.env")).unwrap();
    assert!(content.contains("OPERATOR_A=1\n"), "{content}");
    assert!(
        content.contains("OPERATOR_B=2\n"),
        "the edit made meanwhile was lost"
    );
    assert!(content.contains(&second) && !content.contains(&first));
}

#[test]
fn config_file_booleans_can_be_switched_off_by_flags_and_environment() {
    if !require_root("config_booleans") {
        return;
    }
    let user = TestUser::new("ocs-cfgbool", true);
    let first = new_token(false);
    let second = new_token(false);
    let tokens = vec![first.clone(), second.clone()];
    let secret = create_secret("tests/cfgbool", &first);
    let config = tempfile::NamedTempFile::new().unwrap();
    fs::write(config.path(), "no-restart = true\nforce = true\n").unwrap();
    let config_path = config.path().to_str().unwrap();

    // --restart beats no-restart = true.
    let pid = user.main_pid();
    let run = sync_for(
        &user,
        &secret,
        &["--config", config_path, "--restart", "--output", "json"],
        &tokens,
    );
    run.expect_status(0);
    assert_eq!(run.report()["gateway"]["action"], "restarted");
    assert_ne!(user.main_pid(), pid);

    // --no-force beats force = true: nothing to do.
    let pid = user.main_pid();
    let run = sync_for(
        &user,
        &secret,
        &["--config", config_path, "--restart", "--no-force"],
        &tokens,
    );
    run.expect_status(0);
    assert!(run.stdout.starts_with("unchanged:"), "{}", run.stdout);
    assert_eq!(user.main_pid(), pid);

    // OPENCLAW_TOKEN_SYNC_NO_RESTART=false beats no-restart = true.
    put_secret(&secret, &second);
    let run = run_tool(
        &sync_args(
            &secret,
            &user,
            &["--config", config_path, "--no-force", "--output", "json"],
        ),
        &[("OPENCLAW_TOKEN_SYNC_NO_RESTART", "false")],
        &tokens,
    );
    run.expect_status(0);
    assert_eq!(run.report()["gateway"]["action"], "restarted");
    user.assert_gateway_has("ANTHROPIC_OAUTH_TOKEN", &second);
}

#[test]
fn a_new_token_anthropic_rejects_changes_nothing() {
    if !require_root("rejected_new_token") {
        return;
    }
    let user = TestUser::new("ocs-rejectnew", true);
    let good = new_token(false);
    let bad = new_token(false);
    let tokens = vec![good.clone(), bad.clone()];
    let secret = create_secret("tests/rejectnew", &good);
    sync_for(&user, &secret, &[], &tokens).expect_status(0);
    let before = snapshot(&user.home);
    let pid = user.main_pid();
    shared_standin().reject(&bad);
    put_secret(&secret, &bad);
    for extra in [&[][..], &["--force"][..]] {
        let run = sync_for(&user, &secret, extra, &tokens);
        run.expect_status(1);
        assert!(run.stderr.contains("rejected"), "{}", run.stderr);
        assert!(run.stderr.contains("nothing was changed"), "{}", run.stderr);
        assert_eq!(snapshot(&user.home), before, "not one byte changed");
        assert_eq!(
            user.main_pid(),
            pid,
            "the gateway keeps running on its token"
        );
    }
    user.assert_gateway_has("ANTHROPIC_OAUTH_TOKEN", &good);
}
