//! Several gateways on one host (issue 14), end to end with real user managers and moto:
//! a system unit with `User=` (run by root's user manager through the test seam, since this
//! machine's PID 1 is not systemd and there is no system manager to drive), the config file's
//! `[[target]]`s for several users and secrets (one GetSecretValue per distinct secret, one
//! failing gateway not stopping the others), and `status` on several gateways.

use crate::common::*;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Files below `dir` not owned by `uid` (root must never leave one in a user's home).
fn foreign_files(dir: &Path, uid: u32) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir).unwrap().flatten() {
        let meta = fs::symlink_metadata(entry.path()).unwrap();
        if meta.uid() != uid {
            found.push(entry.path());
        }
        if meta.is_dir() {
            found.extend(foreign_files(&entry.path(), uid));
        }
    }
    found
}

#[test]
fn a_system_unit_runs_the_gateway_for_its_user_and_is_synced_through_the_system_manager() {
    if !require_root("system_unit") {
        return;
    }
    // The user has no gateway of its own: OpenClaw runs as a system unit with User=.
    let user = TestUser::new("ocs-sysgw", false);
    let root = RootManager::start();
    let unit = "openclaw-gateway-ocs-sysgw.service";
    user.write(".openclaw-sys/openclaw.json", b"{}\n", 0o600);
    let stale = fs::read(fixture("openclaw/auth-profiles.example.json")).unwrap();
    user.write(
        ".openclaw-sys/agents/main/agent/auth-profiles.json",
        &stale,
        0o600,
    );
    let units = root.install_unit(
        unit,
        &format!(
            "User={name}\nExecStart=/bin/sleep infinity\nRestart=always\nRestartSec=1\nEnvironment=OPENCLAW_SERVICE_KIND=gateway\nEnvironment=OPENCLAW_PROFILE=sys\nEnvironment=HOME={home}\n",
            name = user.name,
            home = user.home.display()
        ),
    );
    let main_pid = || {
        root.systemctl(&["show", "-p", "MainPID", "--value", unit])
            .trim()
            .parse::<u32>()
            .unwrap()
    };
    let before = main_pid();
    assert_ne!(before, 0);

    let token = new_token(false);
    let tokens = vec![token.clone()];
    let secret = create_secret("tests/sysgw", &token);
    let seam = [("OPENCLAW_TOKEN_SYSTEM_MANAGER_RUNTIME_DIR", "/run/user/0")];
    let run = run_tool(
        &sync_args(&secret, &user, &["--output", "json", "-vv"]),
        &seam,
        &tokens,
    );
    run.expect_status(0);
    let report = run.report();
    assert_eq!(report["gateway"]["unit"], unit, "{report}");
    assert_eq!(report["gateway"]["action"], "restarted", "{report}");
    assert_eq!(
        report["state_dir"]["path"],
        user.path(".openclaw-sys").to_str().unwrap(),
        "OPENCLAW_PROFILE of the unit decides the state dir"
    );

    // The gateway, running as the user, carries the token.
    let pid = main_pid();
    assert_ne!(pid, before);
    let environ = fs::read(format!("/proc/{pid}/environ")).unwrap();
    assert!(environ
        .split(|b| *b == 0)
        .any(|e| e == format!("ANTHROPIC_OAUTH_TOKEN={token}").as_bytes()));
    assert_eq!(
        fs::metadata(format!("/proc/{pid}")).unwrap().uid(),
        user.uid
    );
    // The drop-in is root's, 0600, in the system unit directory, and names root's 0600
    // environment file: the token is not in the unit's Environment=, which the system manager
    // shows to every local user.
    let dropin = units.join(format!("{unit}.d/anthropic.conf"));
    let env_file = units.join(format!("{unit}.d/anthropic.env"));
    for file in [&dropin, &env_file] {
        let meta = fs::metadata(file).unwrap();
        assert_eq!(
            (meta.uid(), meta.mode() & 0o777),
            (0, 0o600),
            "{}",
            file.display()
        );
    }
    assert!(!fs::read_to_string(&dropin).unwrap().contains(&token));
    assert!(fs::read_to_string(&env_file).unwrap().contains(&token));
    let shown = root.systemctl(&["show", "-p", "Environment", unit]);
    assert!(!shown.contains(&token), "the token is visible over D-Bus");
    assert!(!user
        .path(&format!(".config/systemd/user/{unit}.d"))
        .exists());
    // The user's files were written as the user: not one root-owned file in the home.
    assert_eq!(foreign_files(&user.home, user.uid), Vec::<PathBuf>::new());
    assert!(fs::read_to_string(user.path(".openclaw-sys/.env"))
        .unwrap()
        .contains(&token));
    assert!(
        !fs::read_to_string(user.path(".openclaw-sys/agents/main/agent/auth-profiles.json"))
            .unwrap()
            .contains("anthropic:")
    );
    assert!(user
        .path(&format!(
            ".local/state/openclaw-token-sync/state-system-{unit}.json"
        ))
        .exists());

    // Current: nothing restarted.
    let run = run_tool(&sync_args(&secret, &user, &[]), &seam, &tokens);
    run.expect_status(0);
    assert!(run.stdout.starts_with("unchanged:"), "{}", run.stdout);
    assert_eq!(main_pid(), pid);

    // status finds the system unit for the user and reads its root-owned drop-in.
    let run = run_tool(
        &["status", "--user", &user.name, "--output", "json"],
        &seam,
        &tokens,
    );
    let status = run.report();
    assert_eq!(status["unit"], unit, "{status}");
    let drop_in = status["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["check"] == "drop-in")
        .cloned()
        .unwrap();
    assert_eq!(drop_in["severity"], "ok", "{status}");

    // A stopped system gateway: the fix goes to the system manager, not the user's.
    root.systemctl(&["stop", unit]);
    let run = run_tool(&["status", "--user", &user.name], &seam, &tokens);
    let start = format!("fix: systemctl start {unit}");
    assert!(run.stdout.contains(&start), "{}", run.stdout);
    assert!(!run.stdout.contains("systemctl --user"), "{}", run.stdout);

    root.remove_unit(unit);
}

#[test]
fn config_targets_cover_several_users_with_one_call_per_secret_and_a_failure_stops_no_other() {
    if !require_root("config_targets") {
        return;
    }
    let _turn = multi_user_turn();
    let alice = TestUser::new("ocs-mt-alice", true);
    let bob = TestUser::new("ocs-mt-bob", true);
    let one = new_token(false);
    let two = new_token(true);
    let three = new_token(false);
    let tokens = vec![one.clone(), two.clone(), three.clone()];
    let first = create_secret("tests/mt-one", &one);
    let second = create_secret("tests/mt-two", &two);
    let proxy = FaultProxy::start();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    let write_config = |bob_secret: &str| {
        fs::write(
            &config,
            format!(
                "secret-id = \"{first}\"\nsettle-ms = 300\n\n[[target]]\nuser = \"{}\"\n\n[[target]]\nuser = \"{}\"\nsecret-id = \"{bob_secret}\"\n\n[[target]]\nuser = \"{}\"\nunit = \"openclaw-gateway.service\"\n",
                alice.name, bob.name, alice.name
            ),
        )
        .unwrap();
    };
    let env = |config: &Path| {
        vec![
            ("AWS_ENDPOINT_URL".to_owned(), proxy.endpoint.clone()),
            (
                "OPENCLAW_TOKEN_SYNC_CONFIG".to_owned(),
                config.display().to_string(),
            ),
        ]
    };
    let run_with = |args: &[&str]| {
        let env = env(&config);
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        run_tool(args, &env, &tokens)
    };

    write_config(&second);
    let run = run_with(&["sync", "--output", "json"]);
    run.expect_status(0);
    let report = run.json();
    let gateways = report["gateways"].as_array().expect("several gateways");
    let seen: Vec<(&str, &str)> = gateways
        .iter()
        .map(|g| {
            (
                g["user"].as_str().unwrap(),
                g["report"]["gateway"]["action"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (alice.name.as_str(), "restarted"),
            (bob.name.as_str(), "restarted")
        ],
        "alice's unit named twice is synced once: {report}"
    );
    assert_eq!(
        proxy.count("secretsmanager.GetSecretValue"),
        2,
        "one per secret"
    );
    alice.assert_gateway_has("ANTHROPIC_OAUTH_TOKEN", &one);
    bob.assert_gateway_has("ANTHROPIC_API_KEY", &two);
    for user in [&alice, &bob] {
        assert_eq!(foreign_files(&user.home, user.uid), Vec::<PathBuf>::new());
    }

    // --user selects one target: bob only.
    let run = run_with(&["sync", "--user", &bob.name]);
    run.expect_status(0);
    assert!(run.stdout.starts_with("unchanged:"), "{}", run.stdout);
    assert!(run.stdout.contains(&bob.name), "{}", run.stdout);
    let run = run_with(&["sync", "--user", "nobody"]);
    run.expect_status(2);
    assert!(
        run.stderr.contains("matches --user nobody"),
        "{}",
        run.stderr
    );

    // Bob's secret is gone: bob fails, alice is still synced and the exit code says so.
    write_config("tests/mt-missing");
    put_secret(&first, &three);
    let run = run_with(&["sync", "--output", "json"]);
    run.expect_status(1);
    let report = run.json();
    let gateways = report["gateways"].as_array().unwrap();
    let alice_entry = gateways
        .iter()
        .find(|g| g["user"] == alice.name.as_str())
        .unwrap();
    let bob_entry = gateways
        .iter()
        .find(|g| g["user"] == bob.name.as_str())
        .unwrap();
    assert_eq!(
        alice_entry["report"]["gateway"]["action"], "restarted",
        "{report}"
    );
    assert!(
        bob_entry["error"]
            .as_str()
            .unwrap()
            .contains("tests/mt-missing"),
        "{report}"
    );
    alice.assert_gateway_has("ANTHROPIC_OAUTH_TOKEN", &three);
    bob.assert_gateway_has("ANTHROPIC_API_KEY", &two);
}

#[test]
fn status_reports_every_gateway_of_the_user() {
    if !require_root("status_several") {
        return;
    }
    let user = TestUser::new("ocs-st-two", true);
    user.add_profile_unit("work");
    fs::create_dir_all(user.path(".openclaw-work")).unwrap();
    chown_tree(&user.home, user.uid, user.gid);
    // Enabled (the link `systemctl --user enable` makes): a stopped gateway that should run is
    // still found, and reported down.
    let wants = user.path(".config/systemd/user/default.target.wants");
    fs::create_dir_all(&wants).unwrap();
    std::os::unix::fs::symlink(
        user.path(".config/systemd/user/openclaw-gateway-work.service"),
        wants.join("openclaw-gateway-work.service"),
    )
    .unwrap();
    chown_tree(&user.home, user.uid, user.gid);
    user.systemctl(&["daemon-reload"]);
    user.systemctl(&["start", "openclaw-gateway-work.service"]);
    let token = new_token(false);
    let tokens = vec![token.clone()];
    let secret = create_secret("tests/st-two", &token);
    sync_for(&user, &secret, &[], &tokens).expect_status(0);

    let run = run_tool(
        &["status", "--user", &user.name, "--output", "json"],
        &[],
        &tokens,
    );
    let report = run.json();
    let gateways = report["gateways"]
        .as_array()
        .expect("one report per gateway");
    let units: Vec<&str> = gateways
        .iter()
        .map(|g| g["unit"].as_str().unwrap())
        .collect();
    assert_eq!(
        units,
        ["openclaw-gateway-work.service", "openclaw-gateway.service"],
        "{report}"
    );
    for gateway in gateways {
        assert!(
            gateway["result"].is_string() && gateway["exit_code"].is_u64(),
            "{gateway}"
        );
        let state = gateway["report"]["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["check"] == "state-dir")
            .unwrap()
            .clone();
        assert_eq!(state["severity"], "ok", "{gateway}");
    }
    assert!(gateways[0]["report"]["findings"]
        .to_string()
        .contains(".openclaw-work"));

    // The work gateway stopped: reported (a warning, exit 3) for that unit, the other healthy.
    user.systemctl(&["stop", "openclaw-gateway-work.service"]);
    let run = run_tool(&["status", "--user", &user.name], &[], &tokens);
    assert_eq!(run.status, 3, "{}", run.stdout);
    assert!(
        run.stdout.contains(
            "WARNING  gateway-unit               openclaw-gateway-work.service is stopped"
        ),
        "{}",
        run.stdout
    );
    assert_eq!(
        run.stdout.matches("healthy: 0 problem(s)").count(),
        1,
        "{}",
        run.stdout
    );
    assert_eq!(
        run.stdout.matches("openclaw-token-sync status for").count(),
        2
    );
}
