//! Configuration: flags beat environment beat the config file, and every usage or configuration
//! error exits 2 with a message naming what is wrong. Runs as the invoking user with a sandbox
//! `--home` and `--no-restart` (no user manager needed).

use crate::common::*;
use std::fs;

#[test]
fn flags_beat_environment_beat_the_config_file() {
    let token = new_token(false);
    let tokens = vec![token.clone()];
    let good = create_secret("tests/config-good", &token);
    let home = tempfile::tempdir().unwrap();
    let config = home.path().join("config.toml");
    fs::write(
        &config,
        format!("secret-id = \"tests/config-missing-from-file\"\nhome = \"{}\"\nno-restart = true\noutput = \"json\"\n", home.path().display()),
    )
    .unwrap();
    let config_arg = config.to_str().unwrap();

    // The file alone: its secret id is used (and does not exist).
    let run = run_tool(&["sync", "--config", config_arg], &[], &tokens);
    run.expect_status(1);
    assert!(
        run.stderr.contains("tests/config-missing-from-file"),
        "{}",
        run.stderr
    );
    assert_eq!(
        run.json()["result"],
        "failed",
        "output = json from the file"
    );

    // The environment beats the file.
    let env = [("OPENCLAW_TOKEN_SYNC_SECRET_ID", good.as_str())];
    let run = run_tool(&["sync", "--config", config_arg], &env, &tokens);
    run.expect_status(0);
    assert_eq!(run.report()["secret"]["fingerprint"], fingerprint(&token));
    assert_eq!(
        run.report()["gateway"]["action"],
        "not-restarted",
        "no-restart from the file"
    );
    assert!(
        fs::read_to_string(home.path().join(".openclaw-env"))
            .unwrap()
            .contains(&token),
        "home from the file"
    );

    // A flag beats the environment.
    let run = run_tool(
        &[
            "sync",
            "--config",
            config_arg,
            "--secret-id",
            "tests/config-missing-from-flag",
            "--output",
            "text",
        ],
        &env,
        &tokens,
    );
    run.expect_status(1);
    assert!(
        run.stderr.contains("tests/config-missing-from-flag"),
        "{}",
        run.stderr
    );
    assert!(
        run.stdout.is_empty(),
        "--output text beats the file's json: {}",
        run.stdout
    );
}

#[test]
fn usage_and_configuration_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let bad_key = dir.path().join("typo.toml");
    fs::write(&bad_key, "secret-idd = \"x\"\n").unwrap();
    let bad_syntax = dir.path().join("broken.toml");
    fs::write(&bad_syntax, "secret-id = \n").unwrap();
    let bad_type = dir.path().join("typed.toml");
    fs::write(
        &bad_type,
        "secret-id = \"x\"\n# a comment\nlock-timeout = \"30\"\n",
    )
    .unwrap();
    let typed = format!("{}:3:16: invalid config file", bad_type.display());
    let home = dir.path().to_str().unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["sync", "--config", bad_key.to_str().unwrap()],
            "typo.toml",
        ),
        (
            vec!["sync", "--config", bad_type.to_str().unwrap()],
            typed.as_str(),
        ),
        (
            vec!["sync", "--config", bad_type.to_str().unwrap()],
            "(in `lock-timeout = …`)",
        ),
        (
            vec!["sync", "--config", bad_key.to_str().unwrap()],
            "typo.toml:1:1: invalid config file: unknown field `secret-idd`",
        ),
        (
            vec!["sync", "--config", bad_syntax.to_str().unwrap()],
            "broken.toml",
        ),
        (
            vec![
                "sync",
                "--config",
                "/nonexistent/config.toml",
                "--secret-id",
                "x",
            ],
            "/nonexistent/config.toml",
        ),
        (vec!["sync", "--home", home], "no secret"),
        (
            vec!["sync", "--secret-id", "x", "--user", "no-such-user-ocsync"],
            "no such user",
        ),
        (
            vec!["sync", "--secret-id", "x", "--home", home, "--unit", "a b"],
            "not a unit name",
        ),
        (
            vec!["sync", "--secret-id", "x", "--no-such-flag"],
            "unexpected argument",
        ),
        (
            vec!["status", "--check-secret", "--home", home],
            "--check-secret needs --secret-id",
        ),
        (
            vec!["trigger", "--secret-id", "x"],
            "exactly one of --targets",
        ),
        (
            vec!["trigger", "--secret-id", "x", "--targets", "Role=gw"],
            "tag:KEY=VALUE",
        ),
        (
            vec!["put", "--secret-id", "x", "--targets", "tag:Role=gw"],
            "need --trigger",
        ),
    ];
    for (args, expected) in cases {
        let run = run_tool(&args, &[], &[]);
        assert_eq!(run.status, 2, "{args:?}: {}", run.stderr);
        assert!(
            run.stderr.contains(expected),
            "{args:?} should mention {expected:?}: {}",
            run.stderr
        );
    }
    if !is_root() {
        let run = run_tool(&["sync", "--secret-id", "x", "--user", "root"], &[], &[]);
        assert_eq!(run.status, 2, "--user for another user needs root");
    }
}

#[test]
fn a_user_whose_manager_is_not_running_is_told_how_to_start_it() {
    if !require_root("no_manager") {
        return;
    }
    // A user with no systemd --user manager (no linger, no session): what a fresh host has.
    let name = "ocs-nomgr";
    ensure_user(name);
    let token = new_token(false);
    let tokens = vec![token.clone()];
    let secret = create_secret("tests/no-manager", &token);
    let home = std::path::PathBuf::from(format!("/home/{name}"));
    let before = snapshot(&home);
    let run = run_tool(
        &["sync", "--secret-id", &secret, "--user", name],
        &[],
        &tokens,
    );
    assert_ne!(run.status, 0, "{}", run.stdout);
    // Said before anything is written.
    assert_eq!(
        snapshot(&home),
        before,
        "files changed for a user with no manager"
    );
    // The cause and the command that fixes it, for this user; not the --user hint meant for
    // root's own manager.
    assert!(
        run.stderr
            .contains(&format!("the user manager of {name} is not running"))
            && run
                .stderr
                .contains(&format!("sudo loginctl enable-linger {name}")),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("pass --user NAME"), "{}", run.stderr);
}

#[test]
fn root_without_user_and_without_its_own_manager_is_told_to_name_the_user() {
    if !require_root("root_no_manager") {
        return;
    }
    let _absent = without_root_manager();
    let token = new_token(false);
    let tokens = vec![token.clone()];
    let secret = create_secret("tests/root-no-manager", &token);
    // A dry run: the hint must come before anything would be written (and this test writes
    // nothing in root's home either way).
    let run = run_tool(&["sync", "--secret-id", &secret, "--dry-run"], &[], &tokens);
    assert_eq!(run.status, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr
            .contains("the user manager of root is not running")
            && run.stderr.contains("pass --user NAME"),
        "{}",
        run.stderr
    );
    assert!(!run.stdout.contains("would change"), "{}", run.stderr);
    // The cause and the next command first, systemctl's own words after.
    let hint = run.stderr.find("pass --user NAME").unwrap();
    let raw = run
        .stderr
        .find("Failed to connect to bus")
        .unwrap_or(usize::MAX);
    assert!(hint < raw, "{}", run.stderr);
}

#[test]
fn a_setting_has_the_flag_s_name_in_the_config_file_too() {
    let token = new_token(false);
    let tokens = vec![token.clone()];
    let secret = create_secret("tests/config-flag-names", &token);
    let home = tempfile::tempdir().unwrap();
    let agent = home.path().join(".openclaw/agents/main/agent");
    fs::create_dir_all(&agent).unwrap();
    fs::write(
        agent.join("auth-profiles.json"),
        fs::read(fixture("openclaw/auth-profiles.example.json")).unwrap(),
    )
    .unwrap();
    let config = home.path().join("config.toml");
    // `--profile-id` and `--no-probe` as the config file's keys (the example says "any flag").
    fs::write(
        &config,
        format!(
            "secret-id = \"{secret}\"\nhome = \"{}\"\nno-restart = true\nprofile-id = [\"anthropic:default\"]\nno-probe = true\n",
            home.path().display()
        ),
    )
    .unwrap();
    let run = run_tool(
        &[
            "sync",
            "--config",
            config.to_str().unwrap(),
            "--output",
            "json",
        ],
        &[(
            "OPENCLAW_TOKEN_SYNC_ANTHROPIC_BASE_URL",
            "http://127.0.0.1:1",
        )],
        &tokens,
    );
    run.expect_status(0);
    let report = run.report();
    // Only the named profile went; no probe was tried (its endpoint refuses connections, which
    // a probe would have warned about).
    let removed = report["stores"][0]["removed_profiles"].clone();
    assert_eq!(
        removed,
        serde_json::json!(["anthropic:default"]),
        "{report}"
    );
    assert!(!run.stderr.contains("could not check"), "{}", run.stderr);
}
