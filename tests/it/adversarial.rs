//! The gateway's Unix user is hostile (issue 21, README "Security model"): OpenClaw agents run
//! shell commands as that user, so everything the user can touch is attacker input for our root
//! process. One test per attack, as root, with real user managers and moto: each attack is
//! refused or contained (the other users are synced in the same run, the attacker's own gateway
//! is not left stopped), and nothing the user controls runs as root.
//!
//! System units run in root's own user manager through the test seam
//! (`OPENCLAW_TOKEN_SYSTEM_MANAGER_RUNTIME_DIR`, see `tests/it/hosts.rs`): this machine's PID 1 is
//! not systemd. What the seam does not cover is in the README ("Security model").

use crate::common::openclaw::{RealGateway, NEWEST_RELEASE};
use crate::common::*;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Waits for `child` at most `limit`; a run still going then is killed and the test fails (the
/// attack stalled it).
fn finish(mut child: Child, limit: Duration, tokens: &[String]) -> Run {
    let deadline = Instant::now() + limit;
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let output = child.wait_with_output().unwrap();
            panic!(
                "the run did not end within {} s (stalled by the attack); stderr:\n{}",
                limit.as_secs(),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Run::checked("run", child.wait_with_output().unwrap(), tokens)
}

/// A config file with one `[[target]]` per user, all on `secret`.
fn targets_config(dir: &Path, secret: &str, users: &[&TestUser]) -> PathBuf {
    let mut text = format!("secret-id = \"{secret}\"\nsettle-ms = 300\n");
    for user in users {
        text.push_str(&format!("\n[[target]]\nuser = \"{}\"\n", user.name));
    }
    let path = dir.join("config.toml");
    fs::write(&path, text).unwrap();
    path
}

/// `sync` over several users (the config's targets), in the background.
fn spawn_multi(config: &Path, extra: &[&str]) -> Child {
    let mut args = vec!["sync", "--output", "json"];
    args.extend_from_slice(extra);
    spawn_tool(
        &args,
        &[("OPENCLAW_TOKEN_SYNC_CONFIG", config.to_str().unwrap())],
    )
}

/// The JSON entry of `user` in a multi-user report.
fn entry_of(report: &serde_json::Value, user: &TestUser) -> serde_json::Value {
    report["gateways"]
        .as_array()
        .unwrap_or_else(|| panic!("several gateways expected: {report}"))
        .iter()
        .find(|g| g["user"] == user.name.as_str())
        .cloned()
        .unwrap_or_else(|| panic!("no entry for {}: {report}", user.name))
}

/// Runs `argv` as `user` (a process of theirs, as an agent would start it).
fn as_user(user: &TestUser, argv: &[&str]) -> Child {
    Command::new("setpriv")
        .arg(format!("--reuid={}", user.uid))
        .arg(format!("--regid={}", user.gid))
        .arg("--init-groups")
        .args(argv)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// A process started by [`as_user`], killed when dropped.
struct Holder(Child);

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn gateway_running(user: &TestUser) -> bool {
    user.show("ActiveState") == "active" && user.main_pid() != 0
}

#[test]
fn flocks_any_local_user_can_take_stall_no_root_run() {
    if !require_root("adversarial_flocks") {
        return;
    }
    let _turn = multi_user_turn();
    let alice = TestUser::new("ocs-adv-fl-alice", true);
    let bob = TestUser::new("ocs-adv-fl-bob", true);
    let token = new_token(false);
    let tokens = vec![token.clone()];
    let secret = create_secret("tests/adv-flocks", &token);
    let dir = tempfile::tempdir().unwrap();
    let config = targets_config(dir.path(), &secret, &[&alice, &bob]);
    // The metrics directory is world-readable, like node_exporter's; the binary is 0755.
    let metrics_dir = tempfile::tempdir().unwrap();
    fs::set_permissions(metrics_dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let metrics = metrics_dir.path().join("openclaw-token-sync.prom");
    let _binary = Holder(as_user(&alice, &["flock", BIN, "sleep", "600"]));
    let _directory = Holder(as_user(
        &alice,
        &[
            "flock",
            metrics_dir.path().to_str().unwrap(),
            "sleep",
            "600",
        ],
    ));
    wait_flocked(Path::new(BIN));
    wait_flocked(metrics_dir.path());

    let run = finish(
        spawn_multi(
            &config,
            &[
                "--lock-timeout",
                "3",
                "--metrics-file",
                metrics.to_str().unwrap(),
            ],
        ),
        Duration::from_secs(120),
        &tokens,
    );
    run.expect_status(0);
    alice.assert_gateway_has("ANTHROPIC_OAUTH_TOKEN", &token);
    bob.assert_gateway_has("ANTHROPIC_OAUTH_TOKEN", &token);
    let written = fs::read_to_string(&metrics).expect("metrics written");
    assert!(written.contains("openclaw_token_sync_"), "{written}");
    // Root's locks live where no other user can open them.
    let meta = fs::metadata("/run/openclaw-token-sync").unwrap();
    assert_eq!((meta.uid(), meta.mode() & 0o777), (0, 0o700));
}

#[test]
fn a_user_who_stops_their_own_worker_fails_alone() {
    if !require_root("adversarial_sigstop") {
        return;
    }
    let _turn = multi_user_turn();
    let mallory = TestUser::new("ocs-adv-stop-mal", true);
    let victim = TestUser::new("ocs-adv-stop-vic", true);
    let token = new_token(false);
    let tokens = vec![token.clone()];
    let secret = create_secret("tests/adv-sigstop", &token);
    let dir = tempfile::tempdir().unwrap();
    let config = targets_config(dir.path(), &secret, &[&mallory, &victim]);
    let child = spawn_multi(&config, &["--user-timeout", "8"]);
    // Mallory watches for her worker (a process of hers running our binary) and stops it.
    let deadline = Instant::now() + Duration::from_secs(60);
    let stopped = loop {
        let found = fs::read_dir("/proc").unwrap().flatten().find_map(|entry| {
            let pid: i32 = entry.file_name().to_str()?.parse().ok()?;
            let status = fs::read_to_string(entry.path().join("status")).ok()?;
            let uid_line = status.lines().find(|l| l.starts_with("Uid:"))?;
            let ours = uid_line.split_whitespace().nth(1)? == mallory.uid.to_string();
            let exe = fs::read_link(entry.path().join("exe")).ok()?;
            (ours && exe == Path::new(BIN)).then_some(pid)
        });
        if let Some(pid) = found {
            // Sent by root here, but allowed to mallory: the worker runs under her uid.
            nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGSTOP,
            )
            .unwrap();
            break pid;
        }
        assert!(Instant::now() < deadline, "mallory's worker never appeared");
        std::thread::sleep(Duration::from_millis(2));
    };
    let run = finish(child, Duration::from_secs(120), &tokens);
    run.expect_status(1);
    let report = run.json();
    let error = entry_of(&report, &mallory)["error"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        error.contains("did not finish within 8 s and was killed"),
        "{report}"
    );
    assert_eq!(
        entry_of(&report, &victim)["report"]["gateway"]["action"],
        "restarted",
        "{report}"
    );
    victim.assert_gateway_has("ANTHROPIC_OAUTH_TOKEN", &token);
    assert!(
        !Path::new(&format!("/proc/{stopped}/status")).exists()
            || fs::read_to_string(format!("/proc/{stopped}/status"))
                .unwrap()
                .contains("zombie"),
        "the stopped worker was killed"
    );
}

#[test]
fn a_fifo_lock_file_a_held_agent_directory_and_an_endless_stop_fail_only_their_owner() {
    if !require_root("adversarial_stalls") {
        return;
    }
    let _turn = multi_user_turn();
    let fifo_user = TestUser::new("ocs-adv-fifo", true);
    let flock_user = TestUser::new("ocs-adv-dirlock", true);
    let stop_user = TestUser::new("ocs-adv-endless", true);
    let victim = TestUser::new("ocs-adv-stall-vic", true);
    let token = new_token(false);
    let tokens = vec![token.clone()];
    let secret = create_secret("tests/adv-stalls", &token);
    let stale = fs::read(fixture("openclaw/auth-profiles.example.json")).unwrap();
    let profiles = ".openclaw/agents/main/agent/auth-profiles.json";
    for user in [&fifo_user, &flock_user, &victim] {
        user.write(profiles, &stale, 0o600);
    }
    // A FIFO where OpenClaw's lock file goes: opening it for reading blocks until a writer comes.
    let fifo = fifo_user.path(&format!("{profiles}.lock"));
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    chown_tree(&fifo_user.home, fifo_user.uid, fifo_user.gid);
    // A flock on the agent directory, held for ten minutes.
    let agent_dir = flock_user.path(".openclaw/agents/main/agent");
    let _held = Holder(as_user(
        &flock_user,
        &["flock", agent_dir.to_str().unwrap(), "sleep", "600"],
    ));
    wait_flocked(&agent_dir);
    // A drop-in whose stop never ends.
    stop_user.write(
        &format!(".config/systemd/user/{UNIT}.d/zz-endless.conf"),
        b"[Service]\nExecStop=/bin/sleep infinity\nTimeoutStopSec=infinity\n",
        0o644,
    );
    stop_user.systemctl(&["daemon-reload"]);
    let endless_pid = stop_user.main_pid();

    let dir = tempfile::tempdir().unwrap();
    let config = targets_config(
        dir.path(),
        &secret,
        &[&fifo_user, &flock_user, &stop_user, &victim],
    );
    let started = Instant::now();
    let run = finish(
        spawn_multi(&config, &["--stop-timeout", "4"]),
        Duration::from_secs(180),
        &tokens,
    );
    let took = started.elapsed();
    run.expect_status(1);
    let report = run.json();
    // The victim is synced in the same run.
    assert_eq!(
        entry_of(&report, &victim)["report"]["gateway"]["action"],
        "restarted",
        "{report}"
    );
    victim.assert_gateway_has("ANTHROPIC_OAUTH_TOKEN", &token);
    // Each attacker's store or stop is reported, bounded, and their gateway runs.
    let text = report.to_string();
    assert!(
        text.contains(fifo.to_str().unwrap()),
        "the FIFO lock is named: {report}"
    );
    assert!(
        text.contains("its directory is locked by process"),
        "the directory's flock and its holder are named: {report}"
    );
    assert!(
        entry_of(&report, &stop_user)["error"]
            .as_str()
            .unwrap_or_default()
            .contains("did not stop within 4 s"),
        "{report}"
    );
    for user in [&fifo_user, &flock_user] {
        assert!(
            gateway_running(user),
            "{}'s gateway was left stopped",
            user.name
        );
        assert!(
            fs::read_to_string(user.path(profiles))
                .unwrap()
                .contains("anthropic:"),
            "a store that could not be locked is left as it was"
        );
    }
    // The endless stop: the old process still serves (ExecStop= runs beside it).
    assert!(Path::new(&format!("/proc/{endless_pid}")).exists());
    assert!(
        took < Duration::from_secs(120),
        "bounded waits ({} s)",
        took.as_secs()
    );
}

/// Builds a preload library that records, for every process that loads it, its effective uid
/// and name in `log` (world-writable, so a user's process can write there too).
fn build_preload(dir: &Path, log: &Path) -> PathBuf {
    let source = dir.join("evil.c");
    fs::write(
        &source,
        format!(
            "#include <stdio.h>\n#include <unistd.h>\n__attribute__((constructor)) static void evil(void) {{\n  FILE *f = fopen(\"{}\", \"a\");\n  if (f) {{ char comm[64] = {{0}}; FILE *c = fopen(\"/proc/self/comm\", \"r\"); if (c) {{ fgets(comm, sizeof comm, c); fclose(c); }}\n    fprintf(f, \"euid=%d comm=%s\", (int)geteuid(), comm); fclose(f); }}\n}}\n",
            log.display()
        ),
    )
    .unwrap();
    let library = dir.join("evil.so");
    let status = Command::new("gcc")
        .args(["-shared", "-fPIC", "-o"])
        .arg(&library)
        .arg(&source)
        .status()
        .expect("gcc");
    assert!(status.success());
    fs::set_permissions(&library, fs::Permissions::from_mode(0o755)).unwrap();
    library
}

/// A script of the user's standing in for OpenClaw: as the gateway it sleeps; as the CLI
/// (`gateway call …`) it records who it runs as and what it was given, and lingers a moment so
/// the test can look at its transient unit.
const FAKE_OPENCLAW: &str = r#"#!/bin/sh
if [ "$1" = gateway ] && [ "$2" = call ]; then
    {
        echo "uid=$(id -u)"
        echo "state=${OPENCLAW_STATE_DIR:-}"
        echo "openai=${OPENAI_API_KEY:-}"
        echo "oauth=${ANTHROPIC_OAUTH_TOKEN:-}"
        echo "preload=${LD_PRELOAD:-}"
        echo "rootsecret=${ROOTS_SECRET:-}"
    } >> "$HOME/cli-ran.log"
    sleep 2
    echo '{"ok":false,"error":{"message":"not a real gateway"}}'
    exit 1
fi
exec /bin/sleep infinity
"#;

#[test]
fn nothing_from_a_system_units_user_reaches_root_or_a_unit_property() {
    if !require_root("adversarial_env_file") {
        return;
    }
    let user = TestUser::new("ocs-adv-envfile", false);
    let root = RootManager::start();
    let shared = tempfile::tempdir().unwrap();
    fs::set_permissions(shared.path(), fs::Permissions::from_mode(0o777)).unwrap();
    let log = shared.path().join("preload.log");
    fs::write(&log, "").unwrap();
    fs::set_permissions(&log, fs::Permissions::from_mode(0o666)).unwrap();
    let library = build_preload(shared.path(), &log);
    user.write("bin/openclaw", FAKE_OPENCLAW.as_bytes(), 0o755);
    // What the user (an agent of theirs) appends to their own 0600 env file, which OpenClaw's
    // system unit names with EnvironmentFile=.
    let private = "sk-private-marker-0b1d5e";
    user.write(
        ".openclaw/gateway.systemd.env",
        format!(
            "OPENAI_API_KEY={private}\nLD_PRELOAD={}\nDBUS_SESSION_BUS_ADDRESS=unix:path={}/evil-bus\nDBUS_SYSTEM_BUS_ADDRESS=unix:path={}/evil-bus\nSYSTEMD_LOG_LEVEL=debug\n",
            library.display(),
            user.home.display(),
            user.home.display()
        )
        .as_bytes(),
        0o600,
    );
    user.write(".openclaw/openclaw.json", b"{}\n", 0o600);
    let unit = "openclaw-gateway-ocs-adv-envfile.service";
    root.install_unit(
        unit,
        &format!(
            "User={name}\nExecStart={home}/bin/openclaw gateway --port 1\nEnvironmentFile=-{home}/.openclaw/gateway.systemd.env\nEnvironmentFile=-{home}/extra.env\nEnvironment=OPENCLAW_SERVICE_KIND=gateway\nEnvironment=HOME={home}\n",
            name = user.name,
            home = user.home.display()
        ),
    );
    let token = new_token(false);
    let tokens = vec![token.clone(), private.to_owned()];
    let secret = create_secret("tests/adv-envfile", &token);
    let seam = [("OPENCLAW_TOKEN_SYSTEM_MANAGER_RUNTIME_DIR", "/run/user/0")];

    // While the sync runs, every transient unit it makes is looked at as any local user could.
    let args = sync_args(&secret, &user, &["--output", "json"]);
    let child = spawn_tool(&args, &seam);
    let mut shown = Vec::new();
    let cli_log = user.path("cli-ran.log");
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline && shown.len() < 40 {
        let listed = root.try_systemctl(&[
            "list-units",
            "--all",
            "--plain",
            "--no-legend",
            "openclaw-token-sync-rpc*",
        ]);
        for name in listed
            .split_whitespace()
            .filter(|w| w.ends_with(".service"))
        {
            shown.push(root.try_systemctl(&[
                "show",
                "-p",
                "Environment,EnvironmentFiles,ExecStart",
                name,
            ]));
        }
        if cli_log.exists() && !shown.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let run = finish(child, Duration::from_secs(180), &tokens);
    let status_run = run_tool(&["status", "--user", &user.name], &seam, &tokens);

    let preloaded = fs::read_to_string(&log).unwrap();
    assert!(
        !preloaded.lines().any(|l| l.starts_with("euid=0 ")),
        "the user's LD_PRELOAD ran as root:\n{preloaded}\nsync: {}\nstatus: {}",
        run.stderr,
        status_run.stderr
    );
    let cli = fs::read_to_string(&cli_log).unwrap_or_else(|_| {
        panic!(
            "OpenClaw's CLI never ran for the proof: {}{}",
            run.stdout, run.stderr
        )
    });
    for line in cli.lines().filter(|l| l.starts_with("uid=")) {
        assert_eq!(line, format!("uid={}", user.uid), "{cli}");
    }
    // The CLI got the gateway's environment from systemd (the user's own values, as the user),
    // our private state dir over the gateway's, and no token.
    assert!(cli.contains(&format!("openai={private}")), "{cli}");
    assert!(
        cli.contains(&format!(
            "state={}",
            user.path(".local/state/openclaw-token-sync/openclaw-cli")
                .display()
        )),
        "{cli}"
    );
    assert!(cli.lines().any(|l| l == "oauth="), "{cli}");
    // What every local user can read over D-Bus holds nothing of the user's env file.
    assert!(!shown.is_empty(), "no transient unit was seen");
    for properties in &shown {
        assert!(!properties.contains(private), "{properties}");
        assert!(!properties.contains("LD_PRELOAD"), "{properties}");
        assert!(!properties.contains("evil-bus"), "{properties}");
    }
    // Root's file handed to systemd is gone after the call.
    let leftovers: Vec<_> = fs::read_dir("/run/openclaw-token-sync")
        .map(|d| {
            d.flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with("cli-"))
                .collect()
        })
        .unwrap_or_default();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // The unit's other env file made a symlink to a file only root may read: OpenClaw's CLI,
    // run for the proof, must not get its values (systemd, asked to read it for the CLI, would
    // follow the link as root).
    let root_only = shared.path().join("root-only.env");
    fs::write(&root_only, "ROOTS_SECRET=never-for-users\n").unwrap();
    fs::set_permissions(&root_only, fs::Permissions::from_mode(0o600)).unwrap();
    let env_file = user.path("extra.env");
    std::os::unix::fs::symlink(&root_only, &env_file).unwrap();
    let _ = std::os::unix::fs::lchown(&env_file, Some(user.uid), Some(user.gid));
    fs::remove_file(&cli_log).unwrap();
    let run = finish(
        spawn_tool(&sync_args(&secret, &user, &["--force"]), &seam),
        Duration::from_secs(180),
        &tokens,
    );
    let cli = fs::read_to_string(&cli_log)
        .unwrap_or_else(|_| panic!("the CLI did not run: {}{}", run.stdout, run.stderr));
    assert!(
        cli.lines()
            .filter(|l| l.starts_with("rootsecret="))
            .all(|l| l == "rootsecret="),
        "a root-only file reached the user's CLI through their symlink:\n{cli}"
    );

    root.remove_unit(unit);
}

#[test]
fn a_user_unit_with_user_root_and_a_script_of_theirs_runs_nothing_as_root() {
    if !require_root("adversarial_user_root") {
        return;
    }
    let user = TestUser::new("ocs-adv-userroot", false);
    user.write("bin/openclaw", FAKE_OPENCLAW.as_bytes(), 0o755);
    user.write(".openclaw/openclaw.json", b"{}\n", 0o600);
    let unit = "openclaw-gateway-evil.service";
    user.write(
        &format!(".config/systemd/user/{unit}"),
        format!(
            "[Service]\nUser=root\nExecStart={home}/bin/openclaw gateway --port 1\nEnvironment=OPENCLAW_SERVICE_KIND=gateway\nEnvironment=OPENCLAW_PROFILE=evil\n\n[Install]\nWantedBy=default.target\n",
            home = user.home.display()
        )
        .as_bytes(),
        0o644,
    );
    user.systemctl(&["daemon-reload"]);
    let token = new_token(false);
    let tokens = vec![token.clone()];
    let secret = create_secret("tests/adv-userroot", &token);
    let run = finish(
        spawn_tool(
            &sync_args(&secret, &user, &["--unit", unit, "--output", "json"]),
            &[],
        ),
        Duration::from_secs(180),
        &tokens,
    );
    let _ = run_tool(
        &["status", "--user", &user.name, "--unit", unit],
        &[],
        &tokens,
    );
    // Whatever the user's unit said, its programs ran as the user or not at all.
    if let Ok(cli) = fs::read_to_string(user.path("cli-ran.log")) {
        for line in cli.lines().filter(|l| l.starts_with("uid=")) {
            assert_eq!(line, format!("uid={}", user.uid), "{cli}");
        }
    }
    let root_owned: Vec<PathBuf> = walk(&user.home)
        .into_iter()
        .filter(|p| fs::symlink_metadata(p).unwrap().uid() != user.uid)
        .collect();
    assert!(root_owned.is_empty(), "{root_owned:?}\n{}", run.stderr);
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            found.extend(walk(&path));
        }
        found.push(path);
    }
    found
}

#[test]
fn fifos_symlinks_and_hard_links_in_the_home_never_stall_or_redirect_a_run() {
    if !require_root("adversarial_paths") {
        return;
    }
    let user = TestUser::new("ocs-adv-paths", true);
    let token = new_token(false);
    let tokens = vec![token.clone()];
    let secret = create_secret("tests/adv-paths", &token);
    // A root-only decoy: a symlink must never let the user read or write it through us.
    let decoy_dir = tempfile::tempdir().unwrap();
    let decoy = decoy_dir.path().join("decoy");
    fs::write(&decoy, "ANTHROPIC_OAUTH_TOKEN=root-only\n").unwrap();
    fs::set_permissions(&decoy, fs::Permissions::from_mode(0o600)).unwrap();
    let paths = [
        ".openclaw/.env",
        ".openclaw-env",
        ".openclaw/openclaw.json",
        ".local/state/openclaw-token-sync/state.json",
        ".local/state/openclaw-token-sync/lock",
        ".openclaw/agents/main/agent/auth-profiles.json",
    ];
    for kind in ["fifo", "symlink", "hardlink"] {
        for relative in paths {
            let path = user.path(relative);
            let _ = fs::remove_dir_all(user.path(".local/state/openclaw-token-sync"));
            let _ = fs::remove_file(&path);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            match kind {
                "fifo" => {
                    nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o600))
                        .unwrap()
                }
                "symlink" => std::os::unix::fs::symlink(&decoy, &path).unwrap(),
                _ => {
                    // A second link to a file of the user's, elsewhere in the home.
                    let other = user.path("elsewhere");
                    fs::write(&other, "A=1\n").unwrap();
                    fs::hard_link(&other, &path).unwrap();
                }
            }
            chown_tree(&user.home, user.uid, user.gid);
            let run = finish(
                spawn_tool(
                    &sync_args(&secret, &user, &["--force", "--lock-timeout", "3"]),
                    &[],
                ),
                Duration::from_secs(90),
                &tokens,
            );
            assert_eq!(
                fs::read_to_string(&decoy).unwrap(),
                "ANTHROPIC_OAUTH_TOKEN=root-only\n",
                "{kind} at {relative}"
            );
            assert_eq!(
                fs::metadata(&decoy).unwrap().mode() & 0o777,
                0o600,
                "{kind} at {relative}"
            );
            assert!(
                gateway_running(&user),
                "{kind} at {relative} left the gateway stopped: {}",
                run.stderr
            );
            let _ = fs::remove_file(&path);
            let _ = fs::remove_file(user.path("elsewhere"));
        }
    }
}

#[test]
fn a_state_dir_in_another_users_home_or_in_etc_changes_nothing_there() {
    if !require_root("adversarial_state_dir") {
        return;
    }
    let mallory = TestUser::new("ocs-adv-sd-mal", true);
    let victim = TestUser::new("ocs-adv-sd-vic", false);
    let stale = fs::read(fixture("openclaw/auth-profiles.example.json")).unwrap();
    victim.write(
        ".openclaw/agents/main/agent/auth-profiles.json",
        &stale,
        0o600,
    );
    victim.write(".openclaw/.env", b"ANTHROPIC_OAUTH_TOKEN=victims\n", 0o600);
    let token = new_token(false);
    let tokens = vec![token.clone()];
    let secret = create_secret("tests/adv-statedir", &token);
    let etc_files = [
        "/etc/.env",
        "/etc/agents",
        "/etc/openclaw.json",
        "/etc/state",
    ];
    for target in [victim.path(".openclaw"), PathBuf::from("/etc")] {
        // /etc itself changes while other tests add users: what a sync would write there is
        // checked instead.
        let before = if target == Path::new("/etc") {
            Vec::new()
        } else {
            snapshot(&target)
        };
        mallory.write(
            ".openclaw/gateway.systemd.env",
            format!("OPENCLAW_STATE_DIR={}\n", target.display()).as_bytes(),
            0o600,
        );
        let _ = finish(
            spawn_tool(&sync_args(&secret, &mallory, &["--force"]), &[]),
            Duration::from_secs(90),
            &tokens,
        );
        if target == Path::new("/etc") {
            for file in etc_files {
                assert!(
                    !Path::new(file).exists(),
                    "{file} written through OPENCLAW_STATE_DIR"
                );
            }
        } else {
            assert!(
                snapshot(&target) == before,
                "{} changed through mallory's OPENCLAW_STATE_DIR",
                target.display()
            );
        }
    }
}

#[test]
fn a_process_holding_a_token_is_never_dumpable() {
    if !require_root("adversarial_dumpable") {
        return;
    }
    let user = TestUser::new("ocs-adv-dump", true);
    let token = new_token(false);
    let secret = create_secret("tests/adv-dump", &token);
    // The run waits on the user's lock (held by a process of the user's) before it fetches: long
    // enough to look at it while it runs as the user.
    let state = user.path(".local/state/openclaw-token-sync");
    fs::create_dir_all(&state).unwrap();
    let lock = state.join("lock");
    fs::write(&lock, "").unwrap();
    chown_tree(&user.home, user.uid, user.gid);
    let _held = Holder(as_user(
        &user,
        &["flock", lock.to_str().unwrap(), "sleep", "600"],
    ));
    wait_flocked(&lock);
    for as_root in [false, true] {
        let mut command = if as_root {
            let mut c = Command::new(BIN);
            c.args(sync_args(&secret, &user, &["--lock-timeout", "20"]));
            c
        } else {
            let mut c = Command::new("setpriv");
            c.arg(format!("--reuid={}", user.uid))
                .arg(format!("--regid={}", user.gid))
                .arg("--init-groups")
                .arg(BIN)
                .args(["sync", "--secret-id", &secret, "--lock-timeout", "20"])
                .env("HOME", &user.home);
            c
        };
        let mut child = command
            .env("OPENCLAW_TOKEN_SYNC_CONFIG", "/dev/null")
            .envs(aws_env(&moto().endpoint))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Once it runs as the user (waiting for the lock), its /proc entries must still be
        // root's: the kernel's sign of a process that is not dumpable.
        let pid = child.id();
        let deadline = Instant::now() + Duration::from_secs(15);
        let mut seen = false;
        while Instant::now() < deadline {
            let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
            let runs_as_user = status
                .lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2))
                == Some(user.uid.to_string().as_str());
            if runs_as_user {
                std::thread::sleep(Duration::from_millis(300));
                let owner = fs::metadata(format!("/proc/{pid}/environ")).unwrap().uid();
                assert_eq!(
                    owner, 0,
                    "dumpable while acting as the user (root: {as_root})"
                );
                seen = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        assert!(seen, "the run never acted as the user (root: {as_root})");
    }
}

#[test]
fn a_fifo_beside_a_sqlite_store_never_stalls_the_run() {
    if !require_root("adversarial_sqlite_side_file") {
        return;
    }
    let user = TestUser::new("ocs-adv-sqlwal", true);
    let token = new_token(false);
    let tokens = vec![token.clone()];
    let secret = create_secret("tests/adv-sqlwal", &token);
    let dir = user.path(".openclaw/agents/main/agent");
    fs::create_dir_all(&dir).unwrap();
    let database = dir.join("openclaw-agent.sqlite");
    {
        let conn = rusqlite::Connection::open(&database).unwrap();
        conn.execute_batch("CREATE TABLE auth_profile_store (store_key TEXT NOT NULL PRIMARY KEY, store_json TEXT NOT NULL, updated_at INTEGER NOT NULL) STRICT; CREATE TABLE auth_profile_state (state_key TEXT NOT NULL PRIMARY KEY, state_json TEXT NOT NULL, updated_at INTEGER NOT NULL) STRICT;").unwrap();
        conn.execute(
            "INSERT INTO auth_profile_store VALUES ('primary', ?1, 1)",
            [r#"{"version":1,"profiles":{"anthropic:default":{"type":"token","provider":"anthropic","token":"x"}}}"#],
        )
        .unwrap();
    }
    // SQLite opens its write-ahead log blocking: a FIFO there would hold the run for ever.
    let wal = dir.join("openclaw-agent.sqlite-wal");
    nix::unistd::mkfifo(&wal, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    chown_tree(&user.home, user.uid, user.gid);
    let before = fs::read(&database).unwrap();
    let run = finish(
        spawn_tool(&sync_args(&secret, &user, &["--output", "json"]), &[]),
        Duration::from_secs(90),
        &tokens,
    );
    run.expect_status(1);
    assert!(
        run.stdout.contains("-wal file is not a regular file"),
        "{}",
        run.stdout
    );
    assert_eq!(
        fs::read(&database).unwrap(),
        before,
        "the store is left as it was"
    );
    assert!(gateway_running(&user));
    user.assert_gateway_has("ANTHROPIC_OAUTH_TOKEN", &token);
}

/// `--delivery secret-ref` writes the token file as the gateway's user, never through a link:
/// mallory (a real OpenClaw unit, so the run gets as far as the write) points
/// `~/.openclaw/secrets` at the victim's state dir; the run fails and the victim's files are
/// exactly as they were.
#[test]
fn a_linked_secrets_directory_never_carries_the_token_elsewhere() {
    if !require_root("adversarial_secret_ref_link")
        || !crate::common::openclaw::require_release(NEWEST_RELEASE)
    {
        return;
    }
    let mallory = TestUser::new("ocs-adv-ref-mal", false);
    let victim = TestUser::new("ocs-adv-ref-vic", false);
    RealGateway::install(&mallory, NEWEST_RELEASE, &shared_standin().base_url);
    victim.write(".openclaw/openclaw.json", b"{}\n", 0o600);
    let before = snapshot(&victim.path(".openclaw"));
    let link = mallory.path(".openclaw/secrets");
    std::os::unix::fs::symlink(victim.path(".openclaw"), &link).unwrap();
    std::os::unix::fs::lchown(&link, Some(mallory.uid), Some(mallory.gid)).unwrap();
    let token = new_token(false);
    let tokens = vec![token.clone()];
    let secret = create_secret("tests/adv-secret-ref-link", &token);
    let base = shared_standin().base_url.clone();
    let run = run_tool(
        &sync_args(&secret, &mallory, &["--delivery", "secret-ref"]),
        &[("OPENCLAW_TOKEN_SYNC_ANTHROPIC_BASE_URL", base.as_str())],
        &tokens,
    );
    assert_ne!(run.status, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("symlink") || run.stderr.contains("ermission denied"),
        "{}",
        run.stderr
    );
    assert!(
        snapshot(&victim.path(".openclaw")) == before,
        "the victim's state dir changed through mallory's link"
    );
    assert!(!victim.path(".openclaw/openclaw-token-sync.token").exists());
}
