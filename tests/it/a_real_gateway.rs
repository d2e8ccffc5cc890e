//! The proof that counts: real OpenClaw gateways, started from the unit each release installs,
//! under a real `systemd --user` manager, running real agent turns against the project's loopback
//! Anthropic stand-in. After `sync`, every request the gateway sends carries exactly the synced
//! credential (fingerprints recorded by the stand-in), through rotations, a switch to an API key
//! and back, and a token the stand-in rejects makes `sync` and `status` fail.
//!
//! Releases: 2026.5.28 (JSON stores; no managed-key guard), 2026.8.1 (the first release whose
//! gateway drops managed keys that no dotenv file holds), 2026.9.6 (SQLite stores made by its own
//! `openclaw doctor --fix`). One gateway at a time (`gateway_slot`).

use crate::common::openclaw::*;
use crate::common::*;
use serde_json::Value;
use std::sync::Mutex;

/// Real gateways run one at a time. Measured on two cores in clean-clone CI runs (2026-12-03),
/// with the `secret-ref` scenarios: one at a time, the test phase took 553 s (2026.9.6 last, 352
/// s of it alone); in two lanes (2026.9.6 beside 2026.5.28 then 2026.8.1) 603 s, 2026.9.6 alone
/// taking 602 s. The machine's CPU, not the order, bounds the chain: its Node starts keep both
/// cores busy.
static ONE_GATEWAY: Mutex<()> = Mutex::new(());

/// The one gateway slot, held for a test's life.
fn gateway_slot() -> std::sync::MutexGuard<'static, ()> {
    ONE_GATEWAY.lock().unwrap_or_else(|e| e.into_inner())
}

/// Stale stores like the runbook's: `main` with every profile shape, `work` (its own `agentDir`
/// outside the state dir) with `anthropic:claude-code` and an OpenAI profile.
fn stale_stores(user: &TestUser) {
    // Without the OpenRouter profile: its keyRef names an environment variable the gateway
    // requires at start (2026.5.28 refuses to start without it).
    let mut main: Value = serde_json::from_slice(
        &std::fs::read(fixture("openclaw/auth-profiles.example.json")).unwrap(),
    )
    .unwrap();
    main["profiles"]
        .as_object_mut()
        .unwrap()
        .remove("openrouter:default");
    user.write(
        ".openclaw/agents/main/agent/auth-profiles.json",
        serde_json::to_string_pretty(&main).unwrap().as_bytes(),
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

/// `sync` as root for the user with the default settle time, JSON report. Direct probes go
/// where the gateway's own `openclaw.json` points (the empty override).
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
    // Every child of the run (systemd-run) and every OpenClaw CLI call it makes is scanned for
    // the tokens in its argv and environment while it runs.
    let scan = ChildScan::start(tokens);
    let began = std::time::Instant::now();
    let run = run_tool(
        &args,
        &[("OPENCLAW_TOKEN_SYNC_ANTHROPIC_BASE_URL", "")],
        tokens,
    );
    // Printed with --nocapture: where the suite's time goes (never asserted).
    eprintln!(
        "sync {} {:.1} s",
        extra.join(" "),
        began.elapsed().as_secs_f64()
    );
    let (runs, calls) = scan.finish();
    if run.status == 0 && run.stdout.contains("\"restarted\"") {
        // A run that restarted proved the gateway through its CLI: the scan saw it.
        assert!(
            runs > 0 && calls > 0,
            "the scan saw {runs} systemd-run and {calls} CLI call(s): {}",
            run.stdout
        );
    }
    run
}

/// The proof a release's gateway offers: `models.probe` from 2026.8.1, `models.authStatus`
/// plus the process environment and our own probe before.
fn expected_proof(version: &str) -> (&'static str, &'static str) {
    if version == SEED_RELEASE {
        ("gateway-auth-status", "direct")
    } else {
        ("gateway-probe", "gateway")
    }
}

/// A sync that applied `token`: restarted, proven through the gateway with the release's
/// strongest means, the live probe accepted and seen by the stand-in with that token.
fn assert_applied_and_proven(run: &Run, version: &str, token: &str, standin: &AnthropicStandIn) {
    run.expect_status(0);
    let report = run.report();
    assert_eq!(report["result"], "applied", "{report}");
    assert_eq!(report["gateway"]["action"], "restarted", "{report}");
    let proof = &report["gateway"]["proof"];
    let (method, via) = expected_proof(version);
    assert_eq!(proof["method"], method, "{version}: {report}");
    assert_eq!(proof["probe"]["via"], via, "{version}: {report}");
    assert_eq!(proof["probe"]["verdict"], "accepted", "{version}: {report}");
    if via == "gateway" {
        let variable = if token.starts_with("sk-ant-api03-") {
            "ANTHROPIC_API_KEY"
        } else {
            "ANTHROPIC_OAUTH_TOKEN"
        };
        assert_eq!(proof["source"], format!("env: {variable}"), "{report}");
    }
    let probes: Vec<Value> = standin
        .requests()
        .into_iter()
        .filter(|r| r["path"] == "/v1/messages")
        .collect();
    assert!(
        !probes.is_empty(),
        "{version}: the stand-in saw no probe during sync"
    );
    for r in &probes {
        assert_eq!(r["fingerprint"], fingerprint(token), "{version} probe: {r}");
    }
    if via == "direct" {
        let ours: Vec<&Value> = probes
            .iter()
            .filter(|r| {
                r["agent"]
                    .as_str()
                    .unwrap_or_default()
                    .starts_with("openclaw-token-sync/")
            })
            .collect();
        assert_eq!(
            ours.len(),
            1,
            "one direct probe per applying sync: {probes:?}"
        );
        if token.starts_with("sk-ant-oat01-") {
            assert!(
                ours[0]["beta"]
                    .as_str()
                    .unwrap()
                    .contains("oauth-2025-04-20"),
                "{ours:?}"
            );
        }
    }
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
    // 2026.5.28's CLI quietly runs the turn itself when the gateway fails: that is no proof.
    assert!(
        !stderr.contains("EMBEDDED FALLBACK") && !stdout.contains("fallbackFrom"),
        "{} turn for {agent} did not run in the gateway:\n{stdout}\n{stderr}",
        gateway.version
    );
    assert!(
        ok,
        "{} agent turn for {agent} failed:\nstdout:\n{stdout}\nstderr:\n{stderr}\nstand-in saw: {requests:?}",
        gateway.version
    );
    // What reached "Anthropic" for this turn (fingerprints and header kinds only).
    for r in &requests {
        eprintln!(
            "{} turn {agent}: {} {} {} {} stream={} agent={}",
            gateway.version,
            r["method"],
            r["path"],
            r["kind"],
            r["fingerprint"],
            r["stream"],
            r["agent"]
        );
    }
    requests
}

/// Every request of the turn carried exactly `token`, Messages calls in the header its kind uses,
/// and at least one was a streamed Messages call.
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
        // The gateway's OpenAI-style side call (`/chat/completions`) sends any credential as a
        // bearer token; the Messages API gets the header of the token's kind.
        if r["path"] == "/v1/messages" {
            assert_eq!(r["kind"], kind, "{what}: {r}");
        }
    }
}

fn real_gateway_end_to_end(version: &str, user_name: &str, sqlite: bool, full: bool) {
    if !require_root(&format!("real gateway {version}")) || !require_release(version) {
        return;
    }
    let _slot = gateway_slot();
    let begun = std::time::Instant::now();
    // Where the test's time goes (printed with --nocapture; measured, never asserted).
    let phase = |what: &str| {
        eprintln!(
            "phase {version} {:6.1} s {what}",
            begun.elapsed().as_secs_f64()
        )
    };
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
    phase("installed");
    gateway.start(&user);
    let mut tokens = Vec::new();

    phase("started");
    // The gateway runs on stale profiles; the first sync removes them and hands it the token.
    let first = new_token(false);
    tokens.push(first.clone());
    let secret = create_secret(&format!("tests/real-{user_name}"), &first);
    standin.reset();
    let started = std::time::Instant::now();
    let run = sync(&user, &secret, &[], &tokens);
    // Printed for BENCHMARKS.md (timings are measured, never asserted).
    eprintln!(
        "timing {version}: applying sync (stop, write, clean, start, verify, prove) {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert_applied_and_proven(&run, version, &first, &standin);
    for agent in ["main", "work"] {
        let requests = turn(&gateway, &user, &standin, agent);
        assert_turn_carries(
            &requests,
            &first,
            &format!("{version} {agent} after the first sync"),
        );
    }

    phase("first sync + 2 turns");
    // The gateway's own RPC: other providers' profiles are intact (2026.8.1 wants an agent id
    // once several agents are configured; 2026.5.28 knows no parameters).
    let mut call = vec!["gateway", "call", "models.authStatus", "--json"];
    if version != SEED_RELEASE {
        call.extend(["--params", r#"{"agentId":"main"}"#]);
    }
    let (ok, stdout, stderr) = run_openclaw(&user, version, &call, &[]);
    assert!(ok, "{stdout}\n{stderr}");
    let auth = json_in(&stdout).unwrap_or_else(|| panic!("{stdout}"));
    let providers = auth["providers"].to_string();
    assert!(
        providers.contains("openai:default"),
        "{version}: OpenAI profile lost: {auth}"
    );
    assert!(!providers.contains("anthropic:"), "{version}: {auth}");

    phase("authStatus");
    // A second run is a no-op: no OpenClaw process started (OpenClaw's CLI runs as a transient
    // unit of the user's manager, so the manager's count of jobs it ever installed stays put),
    // no probe of ours (the gateway itself may still be busy with the last turn).
    standin.reset();
    let jobs = || user.systemctl(&["show", "-p", "NInstalledJobs", "--value"]);
    let jobs_before = jobs();
    let run = sync(&user, &secret, &["-vv"], &tokens);
    run.expect_status(0);
    assert_eq!(run.report()["result"], "unchanged", "{}", run.stdout);
    assert_eq!(
        jobs(),
        jobs_before,
        "the no-op started something in the user's manager: {}",
        run.stderr
    );
    assert!(
        !standin.requests().iter().any(|r| r["agent"]
            .as_str()
            .unwrap_or_default()
            .starts_with("openclaw-token-sync/")),
        "{:?}",
        standin.requests()
    );

    phase("no-op");
    // Rotation, then a switch to an API key: each turn carries exactly the new credential.
    let mut rotations = vec![new_token(false), new_token(true)];
    if full {
        rotations.push(new_token(false)); // and back to an OAuth token
    }
    for (round, next) in rotations.into_iter().enumerate() {
        tokens.push(next.clone());
        put_secret(&secret, &next);
        standin.reset();
        if round == 0 {
            // The first rotation runs inside the hardened service's sandbox.
            under_the_hardened_service(&user, version, &secret, &next, &tokens);
        } else {
            let run = sync(&user, &secret, &[], &tokens);
            assert_applied_and_proven(&run, version, &next, &standin);
        }
        let requests = turn(&gateway, &user, &standin, "main");
        assert_turn_carries(&requests, &next, &format!("{version} after rotating"));
    }
    phase("rotations");
    let current = tokens.last().unwrap().clone();

    if full {
        // OpenClaw's own repair tool afterwards undoes nothing: our files stay as they are, the
        // next sync has nothing to do, and turns still carry the token. (Run with the gateway
        // stopped: with it running, doctor's service check needs PID 1 to be systemd.)
        let ours = [user.dropin(), user.path(".openclaw/.env")];
        let before: Vec<Vec<u8>> = ours.iter().map(|p| std::fs::read(p).unwrap()).collect();
        doctor_fix(&user, version);
        for (path, content) in ours.iter().zip(&before) {
            assert_eq!(
                &std::fs::read(path).unwrap(),
                content,
                "doctor changed {}",
                path.display()
            );
        }
        let started = std::time::Instant::now();
        gateway.start(&user);
        eprintln!(
            "timing {version}: gateway start to listening {:.1} s",
            started.elapsed().as_secs_f64()
        );
        let run = sync(&user, &secret, &[], &tokens);
        run.expect_status(0);
        assert_eq!(
            run.report()["result"],
            "unchanged",
            "after doctor --fix: {}",
            run.stdout
        );
        let requests = turn(&gateway, &user, &standin, "main");
        assert_turn_carries(
            &requests,
            &current,
            &format!("{version} after doctor --fix"),
        );

        phase("doctor");
        // Why `<state>/.env` carries the token: without it a guard release's gateway drops the
        // managed key at start although the drop-in sets it, and turns fail (2026.5.28 still
        // works). sync puts it back.
        user.write(".openclaw/.env", b"# emptied by hand\n", 0o600);
        user.systemctl(&["restart", UNIT]);
        gateway.wait_listening(std::time::Duration::from_secs(90));
        user.assert_gateway_has(
            if current.starts_with("sk-ant-api03-") {
                "ANTHROPIC_API_KEY"
            } else {
                "ANTHROPIC_OAUTH_TOKEN"
            },
            &current,
        );
        if version == SEED_RELEASE {
            // Before the guard the drop-in alone is enough.
            let requests = turn(&gateway, &user, &standin, "main");
            assert_turn_carries(
                &requests,
                &current,
                &format!("{version} with the drop-in alone"),
            );
        } else {
            standin.reset();
            let (ok, stdout, stderr) = gateway.agent_turn(&user, "main");
            assert!(
                !ok && format!("{stdout}{stderr}").contains("No API key found"),
                "{version}: a drop-in-only token was expected to be dropped by the gateway:\n{stdout}\n{stderr}"
            );
            assert!(standin.requests().is_empty());
        }
        let run = sync(&user, &secret, &[], &tokens);
        assert_applied_and_proven(&run, version, &current, &standin);
        let requests = turn(&gateway, &user, &standin, "main");
        assert_turn_carries(&requests, &current, &format!("{version} after the repair"));
    }

    phase("env repair");
    // A token Anthropic rejects: sync checks a new token before it writes anything, so it fails,
    // names the rejection, records nothing, and the gateway keeps running on its token.
    let state_before = std::fs::read(user.state_file()).unwrap();
    let dropin_before = std::fs::read(user.dropin()).unwrap();
    let pid = user.main_pid();
    let bad = new_token(false);
    tokens.push(bad.clone());
    standin.reject(&bad);
    put_secret(&secret, &bad);
    for _ in 0..2 {
        let run = sync(&user, &secret, &[], &tokens);
        assert_eq!(run.status, 1, "{}\n{}", run.stdout, run.stderr);
        assert!(run.stderr.contains("rejected"), "{}", run.stderr);
        assert!(run.stderr.contains(&fingerprint(&bad)), "{}", run.stderr);
        assert_eq!(
            std::fs::read(user.state_file()).unwrap(),
            state_before,
            "state written for a rejected token"
        );
        assert_eq!(
            std::fs::read(user.dropin()).unwrap(),
            dropin_before,
            "a rejected token reached the drop-in"
        );
        assert_eq!(
            user.main_pid(),
            pid,
            "a rejected token must not restart the gateway"
        );
    }
    phase("rejected");
    // A token revoked while the gateway runs on it: status fails.
    standin.reject(&current);
    let status = run_tool(
        &["status", "--user", &user.name, "--output", "json"],
        &[("OPENCLAW_TOKEN_SYNC_ANTHROPIC_BASE_URL", "")],
        &tokens,
    );
    assert_eq!(status.status, 1, "{}\n{}", status.stdout, status.stderr);
    let findings = status.report();
    assert!(
        findings["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["check"] == "token-probe" && f["severity"] == "problem"),
        "{findings}"
    );

    phase("status");
    if full {
        by_reference(&gateway, &user, &standin, &secret, &mut tokens);
        phase("secret-ref");
    }
    // Only the files meant to hold a token hold one.
    let allowed = [
        user.dropin(),
        user.path(".openclaw-env"),
        user.path(".openclaw/.env"),
    ];
    assert_no_leak_in_tree(&user.home, &allowed, &tokens);
}

/// `openclaw doctor --fix` with the gateway stopped (with it running, doctor's service check
/// needs PID 1 to be systemd). Its last step, restoring the managed service, needs PID 1 to be
/// systemd, which it is not on this machine; every repair before it runs.
fn doctor_fix(user: &TestUser, version: &str) {
    user.systemctl(&["stop", UNIT]);
    let (ok, _, stderr) = run_openclaw(
        user,
        version,
        &["doctor", "--fix", "--non-interactive"],
        &[],
    );
    assert!(
        ok || stderr.contains("SystemSystemdOwnershipError"),
        "openclaw doctor --fix failed:\n{stderr}"
    );
}

/// The secret file of `--delivery secret-ref`.
const SECRET_FILE: &str = ".openclaw/secrets/openclaw-token-sync.token";

/// A `--delivery secret-ref` sync that applied `token` in place: reloaded (or, at set-up on a
/// release that needs it, restarted once), proven by the gateway naming the reference, and the
/// file holding the token. Returns the report.
fn assert_reloaded(run: &Run, version: &str, token: &str, action: &str) -> Value {
    run.expect_status(0);
    let report = run.report();
    assert_eq!(report["result"], "applied", "{report}");
    assert_eq!(report["gateway"]["action"], action, "{version}: {report}");
    let proof = &report["gateway"]["proof"];
    assert_eq!(
        proof["source"], "profile anthropic:default (secret reference)",
        "{version}: {report}"
    );
    let (method, _) = expected_proof(version);
    assert_eq!(proof["method"], method, "{version}: {report}");
    assert_eq!(proof["probe"]["verdict"], "accepted", "{version}: {report}");
    let _ = token;
    report
}

/// `status` of a gateway in `secret-ref` delivery whose token Anthropic now rejects (a 401 just
/// put the profile in cooldown): the reference itself is sound, the probe says rejected, and the
/// profile's cooldown is reported.
fn assert_reference_status(user: &TestUser, version: &str, rejected: &str, tokens: &[String]) {
    let status = run_tool(
        &["status", "--user", &user.name, "--output", "json"],
        &[("OPENCLAW_TOKEN_SYNC_ANTHROPIC_BASE_URL", "")],
        tokens,
    );
    // Not healthy: the cooldown's warning, and where the gateway has `models.probe` (2026.8.1+)
    // its verdict, "auth" (a problem) or, while the profile cools down, "unknown" (a warning).
    assert!(
        status.status == 1 || status.status == 3,
        "{}\n{}",
        status.stdout,
        status.stderr
    );
    let report = status.report();
    let finding = |check: &str| -> Vec<Value> {
        report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["check"] == check)
            .cloned()
            .collect()
    };
    for check in [
        "delivery",
        "reference-file",
        "reference-provider",
        "reference-profiles",
        "reference-resolves",
    ] {
        let found = finding(check);
        assert!(
            found.len() == 1 && found[0]["severity"] == "ok",
            "{version} {check}: {report}"
        );
    }
    assert!(finding("drop-in").is_empty(), "env checks ran: {report}");
    if version != SEED_RELEASE {
        assert_ne!(finding("token-probe")[0]["severity"], "ok", "{report}");
    }
    assert!(
        finding("cooldown")
            .iter()
            .any(|f| f["seen"].as_str().unwrap().contains("anthropic:default")),
        "{version}: the cooldown of {} is not reported: {report}",
        fingerprint(rejected)
    );
}

/// `--delivery secret-ref` on a gateway that ran in `env` delivery (issue 24's proof): set-up
/// through OpenClaw's own `secrets apply`, rotations OAuth → OAuth (with a slow turn in flight)
/// → API key → OAuth reloaded in place with the PID unchanged, a rejected token that leaves the
/// last good one serving, a cooldown a 401 left that does not block the next good token,
/// `doctor --fix` afterwards, and the switch back to `env`.
fn by_reference(
    gateway: &RealGateway,
    user: &TestUser,
    standin: &AnthropicStandIn,
    secret: &str,
    tokens: &mut Vec<String>,
) {
    let version = gateway.version.as_str();
    let begun = std::time::Instant::now();
    // Where the scenario's time goes (printed with --nocapture; measured, never asserted).
    let step = |what: &str| {
        eprintln!(
            "secret-ref {version} {:6.1} s {what}",
            begun.elapsed().as_secs_f64()
        )
    };
    let secret_ref = ["--delivery", "secret-ref"];
    let file = user.path(SECRET_FILE);
    let first = new_token(false);
    tokens.push(first.clone());
    put_secret(secret, &first);
    standin.reset();
    let pid_before = user.main_pid();
    let run = sync(user, secret, &secret_ref, tokens);
    // 2026.9.6 picks the new provider up by a reload; earlier releases need one restart.
    let setup_action = if version == NEWEST_RELEASE {
        "reloaded"
    } else {
        "restarted"
    };
    assert_reloaded(&run, version, &first, setup_action);
    step("set-up");
    if version == NEWEST_RELEASE {
        assert_eq!(user.main_pid(), pid_before, "the set-up restarted 9.6");
    }
    assert_eq!(
        std::fs::read(&file).unwrap(),
        format!("{first}\n").as_bytes()
    );
    assert!(!user.dropin().exists(), "the env drop-in is left");
    let dot_env = std::fs::read_to_string(user.path(".openclaw/.env")).unwrap_or_default();
    assert!(!dot_env.contains("ANTHROPIC_"), "{dot_env}");
    for agent in ["main", "work"] {
        let requests = turn(gateway, user, standin, agent);
        assert_turn_carries(
            &requests,
            &first,
            &format!("{version} {agent} after set-up"),
        );
    }
    step("2 turns");
    let pid = user.main_pid();
    // Nothing to do: no process started.
    let run = sync(user, secret, &["--delivery", "secret-ref", "-vv"], tokens);
    run.expect_status(0);
    assert_eq!(
        run.report()["result"],
        "unchanged",
        "{}\n{}",
        run.stdout,
        run.stderr
    );

    // Rotations, each reloaded in place; the first with a slow turn in flight.
    for (round, next) in [new_token(false), new_token(true), new_token(false)]
        .into_iter()
        .enumerate()
    {
        let previous = tokens.last().unwrap().clone();
        tokens.push(next.clone());
        put_secret(secret, &next);
        standin.reset();
        let in_flight = (round == 0).then(|| {
            standin.slow(12);
            let (port, gateway_token) = (gateway.port, gateway_token(user));
            let slow = std::thread::spawn(move || http_turn(port, &gateway_token, "main"));
            let seen = std::time::Instant::now();
            while !standin
                .requests()
                .iter()
                .any(|r| r["path"] == "/v1/messages")
            {
                assert!(
                    seen.elapsed().as_secs() < 60,
                    "the slow turn never reached the stand-in"
                );
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            slow
        });
        if round == 2 {
            // The API key the gateway runs on now is revoked: the next turn fails with a 401,
            // which OpenClaw records as a cooldown of the profile; the rotation must clear it,
            // or OpenClaw would not even try the new token for a while.
            standin.reject(&previous);
            let _ = gateway.agent_turn(user, "main");
            let rejected: Vec<Value> = standin.requests();
            assert!(
                rejected
                    .iter()
                    .any(|r| r["status"] == 401 && r["fingerprint"] == fingerprint(&previous)),
                "{version}: the revoked key was not tried: {rejected:?}"
            );
            assert_reference_status(user, version, &previous, tokens);
        }
        let run = sync(user, secret, &secret_ref, tokens);
        assert_reloaded(&run, version, &next, "reloaded");
        assert_eq!(
            user.main_pid(),
            pid,
            "{version}: a rotation restarted the gateway"
        );
        if let Some(slow) = in_flight {
            let (ok, body, status) = slow.join().unwrap();
            assert!(
                ok,
                "{version}: the turn in flight during the reload failed: {status}\n{body}"
            );
            let finished: Vec<Value> = standin.requests();
            assert!(
                finished
                    .iter()
                    .any(|r| r["path"] == "/v1/messages"
                        && r["fingerprint"] == fingerprint(&previous)),
                "{finished:?}"
            );
        }
        step(&format!("rotation {round}"));
        // Every agent reads the same file: both turn after the switch to an API key.
        let agents: &[&str] = if round == 1 {
            &["main", "work"]
        } else {
            &["main"]
        };
        for agent in agents {
            let requests = turn(gateway, user, standin, agent);
            assert_turn_carries(
                &requests,
                &next,
                &format!("{version} {agent} after rotation {round}"),
            );
        }
    }
    let current = tokens.last().unwrap().clone();
    assert_no_leak_in_tree(&user.home, std::slice::from_ref(&file), tokens);

    // A token Anthropic rejects: nothing changes, the last good one keeps serving.
    let bad = new_token(false);
    tokens.push(bad.clone());
    put_secret(secret, &bad);
    standin.reset();
    standin.reject(&bad);
    let run = sync(user, secret, &secret_ref, tokens);
    assert_eq!(run.status, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("rejected"), "{}", run.stderr);
    assert_eq!(
        std::fs::read(&file).unwrap(),
        format!("{current}\n").as_bytes()
    );
    let requests = turn(gateway, user, standin, "main");
    assert_turn_carries(
        &requests,
        &current,
        &format!("{version} after a rejected token"),
    );
    put_secret(secret, &current);

    step("rejected");
    // OpenClaw's repair tool afterwards keeps the reference working.
    doctor_fix(user, version);
    gateway.start(user);
    let run = sync(user, secret, &secret_ref, tokens);
    run.expect_status(0);
    let requests = turn(gateway, user, standin, "main");
    assert_turn_carries(
        &requests,
        &current,
        &format!("{version} after doctor --fix"),
    );

    step("doctor");
    // Back to env: the reference goes (a forgotten one would outrank the environment).
    let run = sync(user, secret, &[], tokens);
    assert_applied_and_proven(&run, version, &current, standin);
    assert!(!file.exists(), "the secret file is left");
    let config = std::fs::read_to_string(user.path(".openclaw/openclaw.json")).unwrap();
    assert!(!config.contains("openclaw-token-sync"), "{config}");
    let requests = turn(gateway, user, standin, "main");
    assert_turn_carries(
        &requests,
        &current,
        &format!("{version} back in env delivery"),
    );
}

/// `sync` of a new version (an OAuth token) inside the sandbox of
/// `deploy/openclaw-token-sync.service` (applied to a transient service of the user's manager):
/// Node cannot even start there (`MemoryDenyWriteExecute=yes`), yet the sync restarts the gateway
/// and proves it through the gateway's RPC, because the OpenClaw CLI runs as a transient unit of
/// the user's manager, outside the sandbox.
fn under_the_hardened_service(
    user: &TestUser,
    version: &str,
    secret: &str,
    token: &str,
    tokens: &[String],
) {
    let sandbox = user.service_sandbox();
    assert!(
        sandbox.iter().any(|p| p == "MemoryDenyWriteExecute=yes"),
        "{sandbox:?}"
    );
    let node = node();
    let (code, _, stderr) = user.run_transient(&sandbox, &[node.to_str().unwrap(), "-e", "1"], &[]);
    assert_ne!(
        code, 0,
        "node ran inside the sandbox, so this test proves nothing: {stderr}"
    );

    let mut env = aws_env(&moto().endpoint);
    env.push(("OPENCLAW_TOKEN_SYNC_CONFIG".into(), "/dev/null".into()));
    env.push(("HOME".into(), user.home.display().to_string()));
    env.push((
        "OPENCLAW_TOKEN_SYNC_ANTHROPIC_BASE_URL".into(),
        String::new(),
    ));
    let (code, stdout, stderr) = user.run_transient(
        &sandbox,
        &[BIN, "sync", "--secret-id", secret, "--output", "json"],
        &env,
    );
    assert_no_leak("sandboxed stdout", stdout.as_bytes(), tokens);
    assert_no_leak("sandboxed stderr", stderr.as_bytes(), tokens);
    assert_eq!(code, 0, "sync in the service sandbox:\n{stdout}\n{stderr}");
    let envelope: Value = serde_json::from_str(stdout.trim()).unwrap();
    let report = envelope["gateways"][0]["report"].clone();
    assert_eq!(report["gateway"]["action"], "restarted", "{envelope}");
    assert_eq!(
        report["gateway"]["proof"]["method"],
        expected_proof(version).0,
        "{report}"
    );
    assert_eq!(
        report["gateway"]["proof"]["probe"]["verdict"], "accepted",
        "{report}"
    );
    user.assert_gateway_has("ANTHROPIC_OAUTH_TOKEN", token);
}

#[test]
fn openclaw_2026_9_6_gateway_runs_on_the_synced_token() {
    real_gateway_end_to_end(NEWEST_RELEASE, "ocs-gw-96", true, true);
}

#[test]
fn openclaw_2026_8_1_gateway_runs_on_the_synced_token() {
    real_gateway_end_to_end(FIRST_GUARD_RELEASE, "ocs-gw-81", true, false);
}

#[test]
fn openclaw_2026_5_28_gateway_runs_on_the_synced_token() {
    real_gateway_end_to_end(SEED_RELEASE, "ocs-gw-528", false, true);
}
