//! The proof that matters: after `sync`, real OpenClaw (from npm) resolves Anthropic credentials
//! from the environment for every agent, and other providers' profiles still work.
//!
//! - `openclaw@2026.5.28` reads the JSON stores as written;
//! - the latest `openclaw` gets its SQLite stores (per-agent and shared) the realistic way: JSON
//!   stores migrated by its own `openclaw doctor --fix --non-interactive`.
//!
//! Each home has `main` and an agent `work` whose `agentDir` is outside the state dir, stale
//! Anthropic profiles in both, and an OpenAI profile.

mod common;

use common::*;
use serde_json::Value;
use std::fs;
use std::path::PathBuf;
use std::process::Command;

fn openclaw(version: &str) -> PathBuf {
    tools_dir().join(format!("openclaw-{version}/node_modules/.bin/openclaw"))
}

/// Runs OpenClaw as the test user with a clean environment plus `extra`. Values travel in the
/// environment only, never on a command line.
fn run_openclaw(
    user: &TestUser,
    version: &str,
    args: &[&str],
    extra: &[(&str, &str)],
) -> (bool, String, String) {
    let node_bin = tools_dir().join("node/bin");
    let output = Command::new("setpriv")
        .arg(format!("--reuid={}", user.uid))
        .arg(format!("--regid={}", user.gid))
        .arg("--init-groups")
        .arg(openclaw(version))
        .args(args)
        .env_clear()
        .env("HOME", &user.home)
        .env("USER", &user.name)
        .env("PATH", format!("{}:/usr/bin:/bin", node_bin.display()))
        .env("NO_COLOR", "1")
        .env("CI", "1")
        .envs(extra.iter().copied())
        .output()
        .expect("run openclaw");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn anthropic_and_openai(
    user: &TestUser,
    version: &str,
    agent: &str,
    env: &[(&str, &str)],
) -> (Value, Value) {
    let (ok, stdout, stderr) = run_openclaw(
        user,
        version,
        &["models", "status", "--agent", agent, "--json"],
        env,
    );
    assert!(
        ok,
        "openclaw models status --agent {agent} failed:\n{stderr}"
    );
    let start = stdout
        .find('{')
        .unwrap_or_else(|| panic!("no JSON from openclaw:\n{stdout}\n{stderr}"));
    let status: Value =
        serde_json::from_str(&stdout[start..]).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    let providers = status["auth"]["providers"]
        .as_array()
        .unwrap_or_else(|| panic!("no providers: {status}"));
    let find = |name: &str| {
        providers
            .iter()
            .find(|p| p["provider"] == name)
            .cloned()
            .unwrap_or(Value::Null)
    };
    (find("anthropic"), find("openai"))
}

fn prepare_home(user: &TestUser) {
    user.write(
        ".openclaw/agents/main/agent/auth-profiles.json",
        &fs::read(fixture("openclaw/auth-profiles.example.json")).unwrap(),
        0o600,
    );
    let mut work: Value =
        serde_json::from_slice(&fs::read(fixture("openclaw/case-a.json")).unwrap()).unwrap();
    work["profiles"]["openai:work"] = serde_json::json!({
        "type": "api_key", "provider": "openai", "key": "sk-proj-workagentfakekey00000000000000000000"
    });
    user.write(
        "workdir/agent/auth-profiles.json",
        serde_json::to_string_pretty(&work).unwrap().as_bytes(),
        0o600,
    );
    let config = serde_json::json!({
        "agents": { "list": [
            { "id": "main" },
            { "id": "work", "agentDir": user.path("workdir/agent") }
        ] }
    });
    user.write(
        ".openclaw/openclaw.json",
        serde_json::to_string_pretty(&config).unwrap().as_bytes(),
        0o600,
    );
}

fn end_to_end(version: &str, user_name: &str, migrate_to_sqlite: bool) {
    if !require_root(&format!("openclaw {version}")) {
        return;
    }
    let binary = openclaw(version);
    if !binary.exists() {
        let reason = format!(
            "{} missing: run scripts/install-test-deps --openclaw",
            binary.display()
        );
        assert!(!in_ci(), "{reason}");
        eprintln!("skipped: {reason}");
        return;
    }
    let user = TestUser::new(user_name, true);
    prepare_home(&user);
    if migrate_to_sqlite {
        let (ok, _, stderr) = run_openclaw(
            &user,
            version,
            &["doctor", "--fix", "--non-interactive"],
            &[],
        );
        assert!(ok, "openclaw doctor --fix failed:\n{stderr}");
        assert!(
            user.path("workdir/agent/openclaw-agent.sqlite").exists(),
            "doctor made no per-agent SQLite store"
        );
        assert!(
            user.path(".openclaw/state/openclaw.sqlite").exists(),
            "doctor made no shared SQLite store"
        );
        assert!(!user.path("workdir/agent/auth-profiles.json").exists());
    }

    // Before: the stale profiles win over the environment (so the assertions below can fail).
    let token = new_token(false);
    let env = [("ANTHROPIC_OAUTH_TOKEN", token.as_str())];
    for agent in ["main", "work"] {
        let (anthropic, _) = anthropic_and_openai(&user, version, agent, &env);
        assert_eq!(
            anthropic["effective"]["kind"], "profiles",
            "{version} {agent} before sync: {anthropic}"
        );
    }

    let secret = create_secret(&format!("tests/e2e-{user_name}"), &token);
    let run = sync_for(
        &user,
        &secret,
        &["--output", "json"],
        std::slice::from_ref(&token),
    );
    run.expect_status(0);
    let report = run.json();
    let removed: Vec<String> = report["stores"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| {
            s["removed_profiles"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| format!("{}:{}", s["agent"].as_str().unwrap(), p.as_str().unwrap()))
        })
        .collect();
    assert!(
        removed.contains(&"main:anthropic:claude-code".to_string()),
        "{report}"
    );
    assert!(
        removed.contains(&"work:anthropic:claude-code".to_string()),
        "{report}"
    );

    // After: OpenClaw, given the gateway's own environment, uses the variable for every agent.
    let gateway_token = user
        .gateway_env("ANTHROPIC_OAUTH_TOKEN")
        .expect("gateway has the token");
    assert_eq!(gateway_token, token);
    let env = [("ANTHROPIC_OAUTH_TOKEN", gateway_token.as_str())];
    for agent in ["main", "work"] {
        let (anthropic, openai) = anthropic_and_openai(&user, version, agent, &env);
        assert_eq!(
            anthropic["effective"]["kind"], "env",
            "{version} {agent} after sync: {anthropic}"
        );
        assert_eq!(
            openai["effective"]["kind"], "profiles",
            "{version} {agent}: OpenAI profile lost: {openai}"
        );
        let labels = openai["profiles"]["labels"].to_string();
        assert!(
            labels.contains("openai:default"),
            "{version} {agent}: {labels}"
        );
    }
    let (_, openai_work) = anthropic_and_openai(&user, version, "work", &env);
    assert!(
        openai_work["profiles"]["labels"]
            .to_string()
            .contains("openai:work"),
        "{openai_work}"
    );
    if migrate_to_sqlite {
        assert!(
            !user.path("workdir/agent/auth-profiles.json").exists(),
            "sync must not create a JSON store beside SQLite"
        );
        assert!(!user
            .path(".openclaw/agents/main/agent/auth-profiles.json")
            .exists());
    }

    // And a second sync is a no-op.
    let run = sync_for(&user, &secret, &[], std::slice::from_ref(&token));
    run.expect_status(0);
    assert!(run.stdout.starts_with("unchanged:"), "{}", run.stdout);
}

#[test]
fn openclaw_2026_5_28_json_stores_fall_through_to_the_environment() {
    end_to_end("2026.5.28", "ocs-oc-json", false);
}

#[test]
fn latest_openclaw_sqlite_stores_fall_through_to_the_environment() {
    end_to_end("2026.9.6", "ocs-oc-sqlite", true);
}
