//! `sync` end to end as root for a throwaway user: real moto, a real `systemd --user` manager
//! running a stand-in gateway, and the proof read back from `/proc/<MainPID>/environ`.

use crate::common::*;
use std::fs;
use std::os::unix::fs::MetadataExt;

#[test]
fn first_sync_applies_and_restarts_then_a_second_sync_changes_nothing() {
    if !require_root("first_sync") {
        return;
    }
    let user = TestUser::new("ocs-first", true);
    let token = new_token(false);
    let secret = create_secret("tests/first", &token);
    let old_pid = user.main_pid();
    let tokens = vec![token.clone()];

    let run = sync_for(&user, &secret, &["--output", "json"], &tokens);
    run.expect_status(0);
    let report = run.report();
    assert_eq!(report["result"], "applied");
    assert_eq!(report["gateway"]["action"], "restarted");
    let new_pid = user.main_pid();
    assert_ne!(new_pid, old_pid);
    assert_eq!(report["gateway"]["new_pid"], new_pid);
    user.assert_gateway_has("ANTHROPIC_OAUTH_TOKEN", &token);
    assert_eq!(user.gateway_env("ANTHROPIC_API_KEY"), None);
    assert!(user.show("DropInPaths").contains("anthropic.conf"));

    // Modes and ownership: files 0600, our directories 0700, everything owned by the user.
    for file in [user.dropin(), user.path(".openclaw-env"), user.state_file()] {
        let meta = fs::metadata(&file).unwrap();
        assert_eq!(meta.mode() & 0o777, 0o600, "{}", file.display());
        assert_eq!(
            (meta.uid(), meta.gid()),
            (user.uid, user.gid),
            "{}",
            file.display()
        );
    }
    for dir in [
        user.dropin().parent().unwrap().to_path_buf(),
        user.path(".local/state/openclaw-token-sync"),
    ] {
        let meta = fs::metadata(&dir).unwrap();
        assert_eq!(meta.mode() & 0o777, 0o700, "{}", dir.display());
        assert_eq!(meta.uid(), user.uid, "{}", dir.display());
    }
    let state: serde_json::Value =
        serde_json::from_slice(&fs::read(user.state_file()).unwrap()).unwrap();
    assert_eq!(state["gateway"], "verified");
    assert_eq!(state["fingerprint"], report["secret"]["fingerprint"]);
    assert_no_leak_in_tree(&user.path(".local/state"), &[], &tokens);

    let before = snapshot(&user.home);
    let run = sync_for(&user, &secret, &[], &tokens);
    run.expect_status(0);
    assert!(run.stdout.starts_with("unchanged:"), "{}", run.stdout);
    assert_eq!(user.main_pid(), new_pid, "a no-op sync must not restart");
    assert_eq!(
        snapshot(&user.home),
        before,
        "a no-op sync must not write (not even mtimes)"
    );
}

#[test]
fn a_new_secret_version_restarts_with_the_new_token() {
    if !require_root("new_version") {
        return;
    }
    let user = TestUser::new("ocs-rotate", true);
    let first = new_token(false);
    let second = new_token(false);
    let tokens = vec![first.clone(), second.clone()];
    let secret = create_secret("tests/rotate", &first);
    let run = sync_for(&user, &secret, &[], &tokens);
    run.expect_status(0);
    // The summary reads as one sentence: parentheses are never nested.
    let summary = run.stdout.lines().next().unwrap();
    assert!(
        summary.starts_with("applied: ") && summary.contains(" verified by "),
        "{summary}"
    );
    let mut depth = 0;
    for c in summary.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            _ => {}
        }
        assert!((0..=1).contains(&depth), "nested parentheses in: {summary}");
    }
    let pid_after_first = user.main_pid();

    let version = put_secret(&secret, &second);
    let run = sync_for(&user, &secret, &["--output", "json"], &tokens);
    run.expect_status(0);
    let report = run.report();
    assert_eq!(report["secret"]["version_id"], version);
    assert_eq!(report["gateway"]["action"], "restarted");
    assert_ne!(user.main_pid(), pid_after_first);
    user.assert_gateway_has("ANTHROPIC_OAUTH_TOKEN", &second);
    let dropin = fs::read_to_string(user.dropin()).unwrap();
    assert!(dropin.contains(&second) && !dropin.contains(&first));
}

#[test]
fn a_stale_token_in_gateway_systemd_env_is_replaced_and_other_lines_kept() {
    if !require_root("stale_gateway_env") {
        return;
    }
    let user = TestUser::new("ocs-gwenv", false);
    let stale = new_token(false);
    let token = new_token(false);
    let tokens = vec![stale.clone(), token.clone()];
    let original = format!("# written by openclaw\nOPENCLAW_GATEWAY_TOKEN=abc\r\nANTHROPIC_OAUTH_TOKEN={stale}\nNODE_OPTIONS=--max-old-space-size=4096\n");
    user.write(".openclaw/gateway.systemd.env", original.as_bytes(), 0o600);
    user.systemctl(&["start", UNIT]);
    user.assert_gateway_has("ANTHROPIC_OAUTH_TOKEN", &stale);

    let secret = create_secret("tests/gwenv", &token);
    sync_for(&user, &secret, &[], &tokens).expect_status(0);
    let expected = original.replace(&stale, &token);
    assert_eq!(
        fs::read_to_string(user.path(".openclaw/gateway.systemd.env")).unwrap(),
        expected
    );
    user.assert_gateway_has("ANTHROPIC_OAUTH_TOKEN", &token);
    assert_eq!(
        user.gateway_env("OPENCLAW_GATEWAY_TOKEN").as_deref(),
        Some("abc")
    );
}

#[test]
fn switching_between_oauth_token_and_api_key_switches_the_variable() {
    if !require_root("switch_kind") {
        return;
    }
    let user = TestUser::new("ocs-switch", true);
    let oauth = new_token(false);
    let api_key = new_token(true);
    let tokens = vec![oauth.clone(), api_key.clone()];
    user.write(
        ".openclaw/.env",
        format!("FOO=1\nANTHROPIC_OAUTH_TOKEN={oauth}\n").as_bytes(),
        0o600,
    );
    let secret = create_secret("tests/switch", &oauth);
    sync_for(&user, &secret, &[], &tokens).expect_status(0);
    user.assert_gateway_has("ANTHROPIC_OAUTH_TOKEN", &oauth);

    put_secret(&secret, &api_key);
    let run = sync_for(&user, &secret, &["--output", "json"], &tokens);
    run.expect_status(0);
    assert_eq!(run.report()["secret"]["variable"], "ANTHROPIC_API_KEY");
    user.assert_gateway_has("ANTHROPIC_API_KEY", &api_key);
    assert_eq!(
        user.gateway_env("ANTHROPIC_OAUTH_TOKEN"),
        None,
        "the OAuth variable must be gone"
    );
    for path in [user.dropin(), user.path(".openclaw-env")] {
        let text = fs::read_to_string(&path).unwrap();
        assert!(
            text.contains(&format!("ANTHROPIC_API_KEY={api_key}")),
            "{}",
            path.display()
        );
        assert!(
            !text.contains("ANTHROPIC_OAUTH_TOKEN"),
            "{}",
            path.display()
        );
    }
    assert_eq!(
        fs::read_to_string(user.path(".openclaw/.env")).unwrap(),
        format!("FOO=1\nANTHROPIC_API_KEY={api_key}\n")
    );

    put_secret(&secret, &oauth);
    sync_for(&user, &secret, &[], &tokens).expect_status(0);
    user.assert_gateway_has("ANTHROPIC_OAUTH_TOKEN", &oauth);
    assert_eq!(user.gateway_env("ANTHROPIC_API_KEY"), None);
}

#[test]
fn a_json_secret_with_a_token_key_and_a_custom_key() {
    if !require_root("json_secret") {
        return;
    }
    let user = TestUser::new("ocs-json", true);
    let token = new_token(false);
    let tokens = vec![token.clone()];
    let secret = create_secret(
        "tests/json",
        &format!(r#"{{"token":"{token}","expires_at":"2027-11-01T00:00:00Z"}}"#),
    );
    sync_for(&user, &secret, &[], &tokens).expect_status(0);
    user.assert_gateway_has("ANTHROPIC_OAUTH_TOKEN", &token);

    let other = new_token(false);
    let tokens = vec![token, other.clone()];
    let secret = create_secret(
        "tests/json-custom",
        &format!(r#"{{"anthropic":"{other}"}}"#),
    );
    sync_for(&user, &secret, &["--json-key", "anthropic"], &tokens).expect_status(0);
    user.assert_gateway_has("ANTHROPIC_OAUTH_TOKEN", &other);
}

#[test]
fn dry_run_reports_what_would_change_and_touches_nothing() {
    if !require_root("dry_run") {
        return;
    }
    let user = TestUser::new("ocs-dryrun", true);
    let token = new_token(false);
    let tokens = vec![token.clone()];
    user.write(
        ".openclaw/agents/main/agent/auth-profiles.json",
        &fs::read(fixture("openclaw/case-a.json")).unwrap(),
        0o600,
    );
    let secret = create_secret("tests/dryrun", &token);
    let pid = user.main_pid();
    let before = snapshot(&user.home);
    let run = sync_for(&user, &secret, &["--dry-run"], &tokens);
    run.expect_status(0);
    assert!(run.stdout.contains("would create"), "{}", run.stdout);
    assert!(
        run.stdout.contains("anthropic:claude-code"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("sha256:"), "{}", run.stdout);
    assert_eq!(
        snapshot(&user.home),
        before,
        "dry run must not change a byte"
    );
    assert!(
        !user.path(".local/state").exists(),
        "dry run must not create the state directory"
    );
    assert_eq!(user.main_pid(), pid);
}

#[test]
fn malformed_secrets_are_rejected_before_any_file_is_touched() {
    if !require_root("malformed") {
        return;
    }
    let user = TestUser::new("ocs-malformed", true);
    let good = new_token(false);
    let secret = create_secret("tests/malformed", &good);
    let tokens = vec![good.clone()];
    sync_for(&user, &secret, &[], &tokens).expect_status(0);
    let pid = user.main_pid();
    let before = snapshot(&user.home);
    let body = &good["sk-ant-oat01-".len()..];
    let big = format!("sk-ant-oat01-{}", "A".repeat(60_000));
    let cases: Vec<(&str, String, &str)> = vec![
        ("single-space", " ".into(), "blank (only whitespace)"),
        ("whitespace", "   \t  ".into(), "blank (only whitespace)"),
        (
            "leading-space",
            format!(" sk-ant-oat01-{body}"),
            "a space at position 1;",
        ),
        (
            "trailing-newline",
            format!("sk-ant-oat01-{body}\n"),
            "followed by a line break (position",
        ),
        (
            "newline-injection",
            format!("sk-ant-oat01-{body}\nEVIL=1"),
            "a line break at position",
        ),
        (
            "cr",
            format!("sk-ant-oat01-{body}\r"),
            "followed by a carriage return",
        ),
        (
            "crlf",
            format!("sk-ant-oat01-{body}\r\n"),
            "followed by a carriage return",
        ),
        (
            "tab",
            format!("sk-ant-oat01-{}\t{}", &body[..10], &body[10..]),
            "a tab at position 24;",
        ),
        (
            "quote",
            format!("sk-ant-oat01-\"{body}"),
            "a double quote at position 14;",
        ),
        (
            "single-quote",
            format!("'sk-ant-oat01-{body}'"),
            "a single quote at position 1;",
        ),
        (
            "equals",
            format!("sk-ant-oat01-{body}=x"),
            "an equals sign at position",
        ),
        (
            "export-line",
            format!("ANTHROPIC_OAUTH_TOKEN=sk-ant-oat01-{body}"),
            "an equals sign at position 22;",
        ),
        (
            "nul",
            format!("sk-ant-oat01-{}\0{}", &body[..5], &body[5..]),
            "a NUL byte at position 19;",
        ),
        (
            "non-ascii",
            format!("sk-ant-oat01-{body}é"),
            "a non-ASCII character at position",
        ),
        (
            "prefix",
            format!("sk-ant-xxx01-{body}"),
            "does not start with",
        ),
        (
            "uppercase-prefix",
            format!("SK-ANT-OAT01-{body}"),
            "does not start with",
        ),
        ("prefix-only", "sk-ant-oat01-".into(), "shorter than"),
        (
            "placeholder",
            "pL4*vN8@rT5^bH3(sx$Yz9!kQ2#mW7&a".into(),
            "like the placeholder the CloudFormation stack creates",
        ),
        ("short", "sk-ant-oat01-abc".into(), "shorter than"),
        (
            "just-short",
            format!("sk-ant-oat01-{}", &body[..66]),
            "79 characters long",
        ),
        ("too-long", big.clone(), "longer than"),
        (
            "json-no-key",
            format!(r#"{{"value":"sk-ant-oat01-{body}"}}"#),
            "without the key \"token\"",
        ),
        ("json-empty-token", r#"{"token":""}"#.into(), "empty"),
        (
            "json-number",
            r#"{"token":12345}"#.into(),
            "does not hold a string",
        ),
        (
            "json-nested",
            format!(r#"{{"token":{{"value":"sk-ant-oat01-{body}"}}}}"#),
            "does not hold a string",
        ),
        (
            "json-broken",
            format!(r#"{{"token":"sk-ant-oat01-{body}""#),
            "does not parse",
        ),
        (
            "json-array",
            format!(r#"["sk-ant-oat01-{body}"]"#),
            "a punctuation character at position 1;",
        ),
    ];
    for (label, value, expected) in cases {
        let mut tokens = vec![good.clone()];
        if value.len() > 20 {
            tokens.push(value.clone());
        }
        let version = put_secret(&secret, &value);
        let run = sync_for(&user, &secret, &[], &tokens);
        run.expect_status(1);
        assert!(run.stderr.contains(expected), "{label}: {}", run.stderr);
        assert!(
            run.stderr.contains(&version),
            "{label}: the error names the version: {}",
            run.stderr
        );
        assert_eq!(snapshot(&user.home), before, "{label}: no file may change");
        assert_eq!(user.main_pid(), pid, "{label}: no restart");
        if label == "placeholder" {
            // The command to run next, for this secret.
            let put = format!("openclaw-token-sync put --secret-id {secret}`");
            assert!(run.stderr.contains(&put), "{}", run.stderr);
        }
    }
    let binary = create_binary_secret("tests/malformed-binary", &[0xff, 0xfe, 0x00, 0x01]);
    let run = sync_for(&user, &binary, &[], &tokens);
    run.expect_status(1);
    assert!(run.stderr.contains("binary"), "{}", run.stderr);
    assert_eq!(snapshot(&user.home), before);
}

#[test]
fn modes_hold_under_a_permissive_umask() {
    if !require_root("umask") {
        return;
    }
    let user = TestUser::new("ocs-umask", true);
    let token = new_token(false);
    let secret = create_secret("tests/umask", &token);
    let output = std::process::Command::new("sh")
        .arg("-c")
        .arg("umask 000; exec \"$@\"")
        .arg("sh")
        .arg(BIN)
        .args(sync_args(&secret, &user, &["--shell-profile"]))
        .env("OPENCLAW_TOKEN_SYNC_CONFIG", "/dev/null")
        .envs(aws_env(&moto().endpoint))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_no_leak("stdout", &output.stdout, std::slice::from_ref(&token));
    for file in [
        user.dropin(),
        user.path(".openclaw-env"),
        user.state_file(),
        user.path(".bash_profile"),
    ] {
        assert_eq!(
            fs::metadata(&file).unwrap().mode() & 0o777,
            0o600,
            "{}",
            file.display()
        );
    }
    for dir in [
        ".config/systemd/user/openclaw-gateway.service.d",
        ".local/state/openclaw-token-sync",
    ] {
        assert_eq!(
            fs::metadata(user.path(dir)).unwrap().mode() & 0o777,
            0o700,
            "{dir}"
        );
    }
    let profile = fs::read_to_string(user.path(".bash_profile")).unwrap();
    assert!(profile.contains(". \"$HOME/.openclaw-env\"") && !profile.contains(&token));
}

#[test]
fn a_missing_or_mistyped_unit_is_refused_and_no_restart_writes_the_files_alone() {
    if !require_root("no_unit") {
        return;
    }
    let user = TestUser::new("ocs-nounit", true);
    let token = new_token(false);
    let next = new_token(false);
    let tokens = vec![token.clone(), next.clone()];
    let secret = create_secret("tests/nounit", &token);
    sync_for(&user, &secret, &[], &tokens).expect_status(0);
    // A typo: refused before anything is written, naming the units that do exist; the dry run
    // says the same instead of promising a restart.
    put_secret(&secret, &next);
    let before = snapshot(&user.home);
    for extra in [
        &["--unit", "openclaw-gatway"][..],
        &["--unit", "openclaw-gatway", "--dry-run"],
    ] {
        let run = sync_for(&user, &secret, extra, &tokens);
        run.expect_status(2);
        for named in ["openclaw-gatway.service not found", UNIT, "--no-restart"] {
            assert!(run.stderr.contains(named), "{named}: {}", run.stderr);
        }
        assert!(snapshot(&user.home) == before, "{extra:?} wrote something");
        assert!(!user
            .path(".config/systemd/user/openclaw-gatway.service.d")
            .exists());
    }

    // No gateway at all: refused too, unless the operator asks for the files alone.
    user.systemctl(&["stop", UNIT]);
    fs::remove_file(user.path(".config/systemd/user").join(UNIT)).unwrap();
    user.systemctl(&["daemon-reload"]);
    let before = snapshot(&user.home);
    let run = sync_for(&user, &secret, &[], &tokens);
    run.expect_status(2);
    assert!(
        run.stderr.contains("no OpenClaw gateway found"),
        "{}",
        run.stderr
    );
    assert!(
        snapshot(&user.home) == before,
        "a refused run wrote something"
    );
    let run = sync_for(&user, &secret, &["--no-restart"], &tokens);
    run.expect_status(0);
    assert!(run.stdout.starts_with("applied:"), "{}", run.stdout);
    assert!(run.stdout.contains("(--no-restart)"), "{}", run.stdout);
    assert!(fs::read_to_string(user.dropin()).unwrap().contains(&next));

    // A repeat run while the unit is still missing writes nothing at all.
    let before = snapshot(&user.home);
    let run = sync_for(&user, &secret, &["--no-restart"], &tokens);
    run.expect_status(0);
    assert!(run.stdout.starts_with("unchanged:"), "{}", run.stdout);
    let after = snapshot(&user.home);
    let changed: Vec<_> = after
        .iter()
        .filter(|entry| !before.contains(entry))
        .map(|entry| entry.0.display().to_string())
        .collect();
    assert!(changed.is_empty(), "a no-op wrote {changed:?}");
}

#[test]
fn no_restart_writes_files_and_the_next_run_restarts() {
    if !require_root("no_restart") {
        return;
    }
    let user = TestUser::new("ocs-norestart", true);
    let token = new_token(false);
    let tokens = vec![token.clone()];
    let secret = create_secret("tests/norestart", &token);
    let pid = user.main_pid();
    let run = sync_for(&user, &secret, &["--no-restart"], &tokens);
    run.expect_status(0);
    assert_eq!(user.main_pid(), pid);
    assert!(fs::read_to_string(user.dropin()).unwrap().contains(&token));
    let before = snapshot(&user.home);
    let run = sync_for(&user, &secret, &["--no-restart"], &tokens);
    run.expect_status(0);
    assert!(run.stdout.starts_with("unchanged:"), "{}", run.stdout);
    assert_eq!(
        snapshot(&user.home),
        before,
        "a repeated --no-restart run writes nothing"
    );
    let run = sync_for(&user, &secret, &["--output", "json"], &tokens);
    run.expect_status(0);
    assert_eq!(run.report()["gateway"]["action"], "restarted");
    user.assert_gateway_has("ANTHROPIC_OAUTH_TOKEN", &token);
}

#[test]
fn an_overriding_drop_in_fails_verification_and_the_state_is_not_written() {
    if !require_root("override") {
        return;
    }
    let user = TestUser::new("ocs-override", true);
    let token = new_token(false);
    let other = new_token(false);
    let tokens = vec![token.clone(), other.clone()];
    user.write(
        &format!(".config/systemd/user/{UNIT}.d/zz-operator.conf"),
        format!("[Service]\nEnvironment=ANTHROPIC_OAUTH_TOKEN={other}\n").as_bytes(),
        0o600,
    );
    user.systemctl(&["daemon-reload"]);
    let secret = create_secret("tests/override", &token);
    let run = sync_for(&user, &secret, &[], &tokens);
    run.expect_status(1);
    assert!(run.stderr.contains("overrides ours"), "{}", run.stderr);
    assert!(
        !user.state_file().exists(),
        "state must not be written after a failed verification"
    );
    assert_ne!(
        user.main_pid(),
        0,
        "the gateway is running again after the failed run"
    );

    // Fix the cause: the next run retries and succeeds.
    fs::remove_file(user.path(&format!(".config/systemd/user/{UNIT}.d/zz-operator.conf"))).unwrap();
    user.systemctl(&["daemon-reload"]);
    let run = sync_for(&user, &secret, &["--output", "json"], &tokens);
    run.expect_status(0);
    assert_eq!(run.report()["result"], "applied");
    user.assert_gateway_has("ANTHROPIC_OAUTH_TOKEN", &token);
}

#[test]
fn stale_anthropic_profiles_are_removed_from_every_agent() {
    if !require_root("stores") {
        return;
    }
    let user = TestUser::new("ocs-stores", true);
    let token = new_token(false);
    let tokens = vec![token.clone()];
    let example = fs::read(fixture("openclaw/auth-profiles.example.json")).unwrap();
    user.write(
        ".openclaw/agents/main/agent/auth-profiles.json",
        &example,
        0o600,
    );
    user.write(
        ".openclaw/agents/work/agent/auth-profiles.json",
        &fs::read(fixture("openclaw/case-a.json")).unwrap(),
        0o600,
    );
    let secret = create_secret("tests/stores", &token);
    let run = sync_for(&user, &secret, &["--output", "json"], &tokens);
    run.expect_status(0);
    let report = run.report();
    let stores = report["stores"].as_array().unwrap();
    assert_eq!(stores.len(), 2, "{report}");
    assert_eq!(stores[0]["agent"], "main");
    assert_eq!(
        stores[0]["removed_profiles"],
        serde_json::json!(["anthropic:claude-code", "anthropic:default"])
    );
    assert_eq!(stores[1]["agent"], "work");
    let main: serde_json::Value = serde_json::from_slice(
        &fs::read(user.path(".openclaw/agents/main/agent/auth-profiles.json")).unwrap(),
    )
    .unwrap();
    let original: serde_json::Value = serde_json::from_slice(&example).unwrap();
    assert_eq!(
        main["profiles"]["openai:default"],
        original["profiles"]["openai:default"]
    );
    assert_eq!(
        main["lastGood"],
        serde_json::json!({"openai": "openai:default"})
    );
    assert!(!main.to_string().contains("anthropic"));
    let meta = fs::metadata(user.path(".openclaw/agents/work/agent/auth-profiles.json")).unwrap();
    assert_eq!((meta.mode() & 0o777, meta.uid()), (0o600, user.uid));
}

/// Every path below `dir` (and `dir` itself) belongs to `uid`.
fn assert_all_owned_by(dir: &std::path::Path, uid: u32) {
    let meta = fs::symlink_metadata(dir).unwrap();
    assert_eq!(
        meta.uid(),
        uid,
        "{} is not owned by uid {uid}",
        dir.display()
    );
    if meta.is_dir() {
        for entry in fs::read_dir(dir).unwrap() {
            assert_all_owned_by(&entry.unwrap().path(), uid);
        }
    }
}

#[test]
fn root_without_user_acts_as_the_owner_of_the_home() {
    if !require_root("root_no_user") {
        return;
    }
    let user = TestUser::new("ocs-rootnouser", true);
    let token = new_token(false);
    let tokens = vec![token.clone()];
    let secret = create_secret("tests/rootnouser", &token);
    let home = user.home.to_str().unwrap();
    let run = run_tool(
        &[
            "sync",
            "--secret-id",
            &secret,
            "--home",
            home,
            "--settle-ms",
            "300",
            "--output",
            "json",
        ],
        &[],
        &tokens,
    );
    run.expect_status(0);
    let report = run.report();
    assert_eq!(report["user"], user.name.as_str());
    assert_eq!(report["gateway"]["action"], "restarted");
    user.assert_gateway_has("ANTHROPIC_OAUTH_TOKEN", &token);
    assert_all_owned_by(&user.home, user.uid);
    // The same run with --user finds nothing to do.
    let run = sync_for(&user, &secret, &[], &tokens);
    run.expect_status(0);
    assert!(run.stdout.starts_with("unchanged:"), "{}", run.stdout);
    // --user with a home that belongs to someone else is refused.
    let run = run_tool(
        &[
            "sync",
            "--secret-id",
            &secret,
            "--user",
            &user.name,
            "--home",
            "/root",
        ],
        &[],
        &tokens,
    );
    run.expect_status(2);
    assert!(run.stderr.contains("belongs to uid 0"), "{}", run.stderr);
}

#[test]
fn the_state_dir_comes_from_the_gateway_s_environment() {
    if !require_root("gateway_state_dir") {
        return;
    }
    let user = TestUser::new("ocs-statedir", false);
    let stale = fs::read(fixture("openclaw/auth-profiles.example.json")).unwrap();
    // The unit points OpenClaw elsewhere; ~/.openclaw (made by the harness) is a decoy.
    user.write(
        &format!(".config/systemd/user/{UNIT}.d/zz-state.conf"),
        b"[Service]\nEnvironment=OPENCLAW_STATE_DIR=%h/oc-state\n",
        0o644,
    );
    user.write(
        "oc-state/agents/main/agent/auth-profiles.json",
        &stale,
        0o600,
    );
    user.systemctl(&["daemon-reload"]);
    user.systemctl(&["start", UNIT]);
    let token = new_token(false);
    let tokens = vec![token.clone()];
    let secret = create_secret("tests/statedir", &token);
    let run = sync_for(&user, &secret, &["--output", "json"], &tokens);
    run.expect_status(0);
    let report = run.report();
    assert_eq!(
        report["state_dir"]["path"],
        user.path("oc-state").to_str().unwrap()
    );
    assert_eq!(
        report["state_dir"]["source"],
        format!("OPENCLAW_STATE_DIR of {UNIT}")
    );
    assert_eq!(
        report["stores"][0]["path"],
        user.path("oc-state/agents/main/agent/auth-profiles.json")
            .to_str()
            .unwrap()
    );
    assert!(
        !fs::read_to_string(user.path("oc-state/agents/main/agent/auth-profiles.json"))
            .unwrap()
            .contains("anthropic:")
    );
    assert!(fs::read_to_string(user.path("oc-state/.env"))
        .unwrap()
        .contains(&token));
    assert!(
        !user.path(".openclaw/.env").exists(),
        "the decoy is left alone"
    );
    let status = run_tool(
        &[
            "status",
            "--user",
            &user.name,
            "--no-probe",
            "--output",
            "json",
        ],
        &[],
        &tokens,
    );
    let findings = status.report()["findings"].clone();
    let state = findings
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["check"] == "state-dir")
        .expect("a state-dir finding");
    assert!(
        state["seen"].as_str().unwrap().contains("oc-state")
            && state["seen"]
                .as_str()
                .unwrap()
                .contains("OPENCLAW_STATE_DIR of"),
        "{state}"
    );

    // Set only in the user manager's environment (`set-environment`), which every start gets.
    fs::remove_file(user.path(&format!(".config/systemd/user/{UNIT}.d/zz-state.conf"))).unwrap();
    user.write(
        ".openclaw-work/agents/main/agent/auth-profiles.json",
        &stale,
        0o600,
    );
    user.systemctl(&["set-environment", "OPENCLAW_PROFILE=work"]);
    user.systemctl(&["daemon-reload"]);
    user.systemctl(&["restart", UNIT]);
    let run = sync_for(&user, &secret, &["--force", "--output", "json"], &tokens);
    run.expect_status(0);
    let report = run.report();
    assert!(
        report["state_dir"]["source"]
            .as_str()
            .unwrap()
            .starts_with(&format!("OPENCLAW_PROFILE of {UNIT}")),
        "{report}"
    );
    assert!(
        !fs::read_to_string(user.path(".openclaw-work/agents/main/agent/auth-profiles.json"))
            .unwrap()
            .contains("anthropic:")
    );
}

#[test]
fn a_canary_syncs_its_label_and_follows_awscurrent_once_promoted() {
    if !require_root("canary_sync") {
        return;
    }
    let user = TestUser::new("ocs-canary", true);
    let (fleet, canary) = (new_token(false), new_token(false));
    let tokens = vec![fleet.clone(), canary.clone()];
    let secret = create_secret("tests/canary-sync", &fleet);
    put_at(
        &moto().endpoint,
        &secret,
        &canary,
        &["--label", "CANARY"],
        &tokens,
    )
    .expect_status(0);
    // A fleet instance stays on AWSCURRENT ...
    let run = sync_for(&user, &secret, &["--output", "json"], &tokens);
    run.expect_status(0);
    assert_eq!(run.report()["secret"]["stage"], "AWSCURRENT");
    user.assert_gateway_has("ANTHROPIC_OAUTH_TOKEN", &fleet);
    // ... a canary applies the label (flag or environment).
    let run = run_tool(
        &sync_args(&secret, &user, &["--output", "json"]),
        &[("OPENCLAW_TOKEN_SYNC_VERSION_STAGE", "CANARY")],
        &tokens,
    );
    run.expect_status(0);
    let report = run.report();
    assert_eq!(report["secret"]["stage"], "CANARY");
    assert_eq!(report["gateway"]["action"], "restarted");
    user.assert_gateway_has("ANTHROPIC_OAUTH_TOKEN", &canary);
    // Promoted: the label is gone, the canary falls back to AWSCURRENT, which is its version.
    run_tool(&["promote", "--secret-id", &secret], &[], &tokens).expect_status(0);
    let pid = user.main_pid();
    let run = sync_for(
        &user,
        &secret,
        &["--version-stage", "CANARY", "--output", "json"],
        &tokens,
    );
    run.expect_status(0);
    let report = run.report();
    assert_eq!(report["secret"]["stage"], "AWSCURRENT");
    assert_eq!(report["secret"]["fallback_from"], "CANARY");
    assert_eq!(report["result"], "unchanged", "{report}");
    assert_eq!(user.main_pid(), pid);
    // A mistyped label says so on every run, in a warning and in the summary line.
    for _ in 0..2 {
        let run = sync_for(&user, &secret, &["--version-stage", "CANRAY"], &tokens);
        run.expect_status(0);
        assert!(
            run.stdout
                .contains("under AWSCURRENT (CANRAY is on no version)"),
            "{}",
            run.stdout
        );
        assert!(
            run.stderr.contains("no version of") && run.stderr.contains("carries the label CANRAY"),
            "{}",
            run.stderr
        );
    }
}

/// The environment variable of a running unit's main process (another unit than `UNIT`).
fn unit_env(user: &TestUser, unit: &str, variable: &str) -> Option<String> {
    let pid = user.systemctl(&["show", "-p", "MainPID", "--value", unit]);
    let environ = fs::read(format!("/proc/{}/environ", pid.trim())).ok()?;
    environ
        .split(|b| *b == 0)
        .find_map(|entry| entry.strip_prefix(format!("{variable}=").as_bytes()))
        .map(|value| String::from_utf8_lossy(value).into_owned())
}

#[test]
fn every_gateway_of_the_user_is_synced_in_one_run_with_one_api_call() {
    if !require_root("two_gateways") {
        return;
    }
    let user = TestUser::new("ocs-twogw", true);
    let unit_text = fs::read_to_string(user.path(&format!(".config/systemd/user/{UNIT}"))).unwrap();
    // OpenClaw's unit for the profile `work` (state in ~/.openclaw-work) ...
    user.add_profile_unit("work");
    // ... and an OpenClaw unit that is not a gateway: left alone.
    user.write(
        ".config/systemd/user/openclaw-node.service",
        unit_text
            .replace(
                "OPENCLAW_SERVICE_KIND=gateway",
                "OPENCLAW_SERVICE_KIND=node",
            )
            .as_bytes(),
        0o644,
    );
    let stale = fs::read(fixture("openclaw/auth-profiles.example.json")).unwrap();
    user.write(
        ".openclaw-work/agents/main/agent/auth-profiles.json",
        &stale,
        0o600,
    );
    user.systemctl(&["daemon-reload"]);
    user.systemctl(&["start", "openclaw-gateway-work.service"]);
    let token = new_token(false);
    let tokens = vec![token.clone()];
    let secret = create_secret("tests/twogw", &token);
    let proxy = FaultProxy::start();
    let endpoint = [("AWS_ENDPOINT_URL", proxy.endpoint.as_str())];

    let run = run_tool(
        &sync_args(&secret, &user, &["--output", "json"]),
        &endpoint,
        &tokens,
    );
    run.expect_status(0);
    let report = run.json();
    let gateways = report["gateways"]
        .as_array()
        .expect("one entry per gateway");
    let units: Vec<&str> = gateways
        .iter()
        .map(|g| g["unit"].as_str().unwrap())
        .collect();
    assert_eq!(units, ["openclaw-gateway-work.service", UNIT], "{report}");
    assert_eq!(report["result"], "applied", "{report}");
    assert_eq!(report["exit_code"], 0, "{report}");
    for gateway in gateways {
        assert_eq!(gateway["result"], "applied", "{report}");
        assert_eq!(gateway["exit_code"], 0, "{report}");
        assert_eq!(
            gateway["report"]["gateway"]["action"], "restarted",
            "{gateway}"
        );
    }
    assert_eq!(
        gateways[0]["report"]["state_dir"]["path"],
        user.path(".openclaw-work").to_str().unwrap()
    );
    assert_eq!(
        proxy.count("secretsmanager.GetSecretValue"),
        1,
        "one call for both"
    );
    user.assert_gateway_has("ANTHROPIC_OAUTH_TOKEN", &token);
    assert_eq!(
        unit_env(
            &user,
            "openclaw-gateway-work.service",
            "ANTHROPIC_OAUTH_TOKEN"
        )
        .as_deref(),
        Some(token.as_str())
    );
    assert!(
        !fs::read_to_string(user.path(".openclaw-work/agents/main/agent/auth-profiles.json"))
            .unwrap()
            .contains("anthropic:")
    );
    assert!(fs::read_to_string(user.path(".openclaw-work/.env"))
        .unwrap()
        .contains(&token));
    assert!(!user
        .path(".config/systemd/user/openclaw-node.service.d")
        .exists());
    assert!(user
        .path(".local/state/openclaw-token-sync/state-openclaw-gateway-work.service.json")
        .exists());

    // Both current: one line each, nothing restarted.
    let run = run_tool(&sync_args(&secret, &user, &[]), &endpoint, &tokens);
    run.expect_status(0);
    assert_eq!(
        run.stdout
            .lines()
            .filter(|l| l.starts_with("unchanged:"))
            .count(),
        2,
        "{}",
        run.stdout
    );
}

#[test]
fn records_of_an_older_release_for_a_named_unit_move_to_that_unit() {
    if !require_root("legacy_records") {
        return;
    }
    let user = TestUser::new("ocs-legacyrec", true);
    let work = "openclaw-gateway-work.service";
    let unit_text = fs::read_to_string(user.path(&format!(".config/systemd/user/{UNIT}"))).unwrap();
    user.write(
        &format!(".config/systemd/user/{work}"),
        unit_text.as_bytes(),
        0o644,
    );
    user.systemctl(&["daemon-reload"]);
    user.systemctl(&["start", work]);
    let token = new_token(false);
    let tokens = vec![token.clone()];
    let secret = create_secret("tests/legacyrec", &token);
    sync_for(&user, &secret, &["--unit", work], &tokens).expect_status(0);
    let dir = user.path(".local/state/openclaw-token-sync");
    // What an older release left: one state.json and one restart-pending naming the unit, the
    // gateway stopped by a killed run.
    fs::rename(
        dir.join(format!("state-{work}.json")),
        dir.join("state.json"),
    )
    .unwrap();
    user.write(
        ".local/state/openclaw-token-sync/restart-pending",
        format!("{work}\n").as_bytes(),
        0o600,
    );
    user.systemctl(&["stop", work]);
    let run = sync_for(
        &user,
        &secret,
        &["--unit", work, "--output", "json"],
        &tokens,
    );
    run.expect_status(0);
    assert_eq!(
        run.report()["gateway"]["action"],
        "restarted",
        "the marker was honoured"
    );
    assert_eq!(
        user.systemctl(&["show", "-p", "ActiveState", "--value", work])
            .trim(),
        "active"
    );
    assert!(dir.join(format!("state-{work}.json")).exists());
    assert!(!dir.join("state.json").exists());
    assert!(!dir.join("restart-pending").exists());
    let run = sync_for(&user, &secret, &["--unit", work], &tokens);
    run.expect_status(0);
    assert!(run.stdout.starts_with("unchanged:"), "{}", run.stdout);
}

#[test]
fn a_run_waiting_for_a_lock_says_so_at_once_and_names_the_holder() {
    if !require_root("lock_wait_message") {
        return;
    }
    let user = TestUser::new("ocs-lockwait", true);
    let token = new_token(false);
    let tokens = vec![token.clone()];
    let secret = create_secret("tests/lockwait", &token);
    let state = user.path(".local/state/openclaw-token-sync");
    fs::create_dir_all(&state).unwrap();
    let lock = state.join("lock");
    fs::write(&lock, "").unwrap();
    chown_tree(&user.home, user.uid, user.gid);
    // `-o`: only flock itself holds the lock, so killing it frees the lock (and leaves no
    // `sleep` holding it behind).
    let hold = || {
        let holder = std::process::Command::new("flock")
            .arg("-o")
            .arg(&lock)
            .args(["sleep", "600"])
            .spawn()
            .unwrap();
        wait_flocked(&lock);
        holder
    };
    let mut holder = hold();
    let holder_named = format!("held by process {} (flock", holder.id());

    // Said at once, while the run still waits: the line is read before the holder lets go,
    // and the run then goes on and succeeds.
    let mut waiting = spawn_tool(&sync_args(&secret, &user, &["--lock-timeout", "60"]), &[]);
    let mut stderr = std::io::BufReader::new(waiting.stderr.take().unwrap());
    let mut line = String::new();
    while !line.contains("waiting for another run")
        && std::io::BufRead::read_line(&mut stderr, &mut line).unwrap() > 0
    {
        if !line.contains("waiting for another run") {
            line.clear();
        }
    }
    assert!(
        line.contains("waiting for another run: ")
            && line.contains(&holder_named)
            && line.contains("waiting up to 60 s"),
        "{line}"
    );
    assert!(
        waiting.try_wait().unwrap().is_none(),
        "the run did not wait"
    );
    let _ = holder.kill();
    let _ = holder.wait();
    let status = waiting.wait().unwrap();
    assert!(status.success(), "the run failed once the lock was free");

    // Past the bound: fails, naming the holder.
    let mut holder = hold();
    let run = sync_for(&user, &secret, &["--lock-timeout", "2"], &tokens);
    let _ = holder.kill();
    let _ = holder.wait();
    run.expect_status(1);
    let holder_named = format!("by process {} (flock", holder.id());
    assert!(run.stderr.contains(&holder_named), "{}", run.stderr);
    assert!(run.stderr.contains("(waited 2 s)"), "{}", run.stderr);
}

#[test]
fn a_no_op_starts_no_process_until_a_unit_changes() {
    if !require_root("noop_no_process") {
        return;
    }
    let user = TestUser::new("ocs-noproc", true);
    let token = new_token(false);
    let tokens = vec![token.clone()];
    let secret = create_secret("tests/noproc", &token);
    sync_for(&user, &secret, &[], &tokens).expect_status(0);

    // The timer's common case: one API call, no process (discovery is remembered).
    let (run, execs) = run_tool_execs(&sync_args(&secret, &user, &[]), &[], &tokens);
    run.expect_status(0);
    assert!(run.stdout.starts_with("unchanged:"), "{}", run.stdout);
    assert_eq!(execs, Vec::<String>::new(), "a no-op started processes");

    // A gateway installed since: the unit directory changed, so it is found and synced now.
    let work = user.add_profile_unit("work");
    user.systemctl(&["daemon-reload"]);
    user.systemctl(&["start", &work]);
    let (run, execs) = run_tool_execs(
        &sync_args(&secret, &user, &["--output", "json"]),
        &[],
        &tokens,
    );
    run.expect_status(0);
    let units: Vec<String> = run.json()["gateways"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["unit"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(units, [work.as_str(), UNIT], "{}", run.stdout);
    assert!(!execs.is_empty(), "a changed unit directory is asked about");
    assert_eq!(
        unit_env(&user, &work, "ANTHROPIC_OAUTH_TOKEN").as_deref(),
        Some(token.as_str())
    );

    // After that applying run the memo describes the new world: no process again, and nothing
    // written.
    let before = snapshot(&user.home);
    let (run, execs) = run_tool_execs(&sync_args(&secret, &user, &[]), &[], &tokens);
    run.expect_status(0);
    assert_eq!(execs, Vec::<String>::new(), "{}", run.stdout);
    assert_eq!(snapshot(&user.home), before, "a no-op writes nothing");

    // An edit in place of a unit file (OpenClaw's state dir moved) is seen too.
    let unit_file = user.path(&format!(".config/systemd/user/{work}"));
    let text = fs::read_to_string(&unit_file).unwrap().replace(
        "Environment=OPENCLAW_PROFILE=work",
        "Environment=OPENCLAW_PROFILE=moved",
    );
    fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&unit_file)
        .and_then(|mut f| std::io::Write::write_all(&mut f, text.as_bytes()))
        .unwrap();
    user.systemctl(&["daemon-reload"]);
    let run = sync_for(&user, &secret, &["--output", "json"], &tokens);
    run.expect_status(0);
    assert!(
        run.stdout
            .contains(user.path(".openclaw-moved").to_str().unwrap()),
        "{}",
        run.stdout
    );

    // The manager's environment changed and the gateway restarted by someone else (no file
    // shows it; the gateway's new process and cgroup do): its state dir is asked again.
    user.systemctl(&["set-environment", "OPENCLAW_PROFILE=fromenv"]);
    user.systemctl(&["restart", UNIT]);
    let run = sync_for(&user, &secret, &["--output", "json"], &tokens);
    run.expect_status(0);
    let report = run.json();
    let default_gateway = report["gateways"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["unit"] == UNIT)
        .expect("the default gateway")
        .clone();
    assert_eq!(
        default_gateway["report"]["state_dir"]["path"],
        user.path(".openclaw-fromenv").to_str().unwrap(),
        "{report}"
    );
    user.systemctl(&["unset-environment", "OPENCLAW_PROFILE"]);
    user.systemctl(&["restart", UNIT]);
    sync_for(&user, &secret, &[], &tokens).expect_status(0);

    // A memo the user forged (current, its stamp holds) with a unit name that would be an
    // option in systemctl's argv is not trusted.
    let memo = user.path(".local/state/openclaw-token-sync/discovery-user.json");
    assert!(memo.exists());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let forged = serde_json::json!({
        "format": 1,
        "written_unix": now,
        "stamps": [{"path": {"path": "/nonexistent", "stat": "absent"}}],
        "gateways": [{"unit": "--help.service", "user": ""}],
        "state_dirs": {}
    });
    user.write(
        ".local/state/openclaw-token-sync/discovery-user.json",
        forged.to_string().as_bytes(),
        0o600,
    );
    let run = sync_for(&user, &secret, &[], &tokens);
    run.expect_status(0);
    assert_eq!(
        run.stdout
            .lines()
            .filter(|l| l.starts_with("unchanged:"))
            .count(),
        2,
        "{}",
        run.stdout
    );
}
