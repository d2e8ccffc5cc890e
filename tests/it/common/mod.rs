//! Test harness shared by the integration tests: a real moto server (Secrets Manager) on a free
//! loopback port, a throwaway user with a real `systemd --user` manager running a stand-in gateway
//! unit, token generation, and a leak check applied to everything a run prints.
//!
//! Nothing here talks to AWS: every client has an explicit loopback endpoint, static test
//! credentials, `AWS_EC2_METADATA_DISABLED=true` and empty AWS config files.
#![allow(dead_code)]

pub mod openclaw;

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_openclaw-token-sync");
pub const MANIFEST_DIR: &str = env!("CARGO_MANIFEST_DIR");

/// Where `scripts/install-test-deps` put moto, Node and OpenClaw.
pub fn tools_dir() -> PathBuf {
    std::env::var_os("OCSYNC_TEST_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(MANIFEST_DIR).join("target/test-tools"))
}

pub fn fixture(name: &str) -> PathBuf {
    Path::new(MANIFEST_DIR).join("tests/fixtures").join(name)
}

pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Skips (returns false) a test that needs root, printing why; in CI a skip is a failure.
pub fn require_root(test: &str) -> bool {
    if is_root() {
        return true;
    }
    skip(&format!(
        "{test}: needs root to create a user and run its systemd --user manager"
    ));
    false
}

/// Records a skipped test. Under `CI=true` a skip is a failure (panics with the reason);
/// otherwise the reason goes to stderr and to `target/test-skips.log`, which `scripts/test`
/// prints after cargo's summary (cargo hides the stderr of a test that passes).
pub fn skip(reason: &str) {
    assert!(
        !in_ci(),
        "skipped: {reason} (CI=true: skipping is a failure)"
    );
    eprintln!("skipped: {reason}");
    let log = std::env::var_os("OCSYNC_SKIP_LOG")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(MANIFEST_DIR).join("target/test-skips.log"));
    if let Ok(mut file) = fs::OpenOptions::new().create(true).append(true).open(log) {
        let _ = std::io::Write::write_all(&mut file, format!("skipped: {reason}\n").as_bytes());
    }
}

// ---------------------------------------------------------------- moto

pub struct Moto {
    pub endpoint: String,
    _watchdog: Mutex<Child>,
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The moto server shared by this test binary. It is started under a watchdog shell that kills
/// it when this process exits (its stdin pipe closes).
pub fn moto() -> &'static Moto {
    static MOTO: OnceLock<Moto> = OnceLock::new();
    MOTO.get_or_init(|| {
        let server = tools_dir().join("venv/bin/moto_server");
        assert!(
            server.exists(),
            "{} missing: run scripts/install-test-deps first",
            server.display()
        );
        let port = free_port();
        let log = std::env::temp_dir().join(format!("ocsync-moto-{port}.log"));
        let child = Command::new("bash")
            .arg("-c")
            .arg(r#""$1" -H 127.0.0.1 -p "$2" >"$3" 2>&1 & m=$!; read -r _; kill "$m"; wait "$m""#)
            .arg("watchdog")
            .arg(&server)
            .arg(port.to_string())
            .arg(&log)
            .stdin(Stdio::piped())
            .spawn()
            .expect("start moto");
        let endpoint = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if http_get_ok(port, "/moto-api/") {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "moto did not answer; log in {}",
                log.display()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Moto {
            endpoint,
            _watchdog: Mutex::new(child),
        }
    })
}

pub fn http_get_ok(port: u16, path: &str) -> bool {
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").is_err() {
        return false;
    }
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).is_ok() && line.contains(" 200")
}

/// Environment for anything that talks to moto: explicit endpoint, static credentials, no IMDS,
/// empty AWS config files.
pub fn aws_env(endpoint: &str) -> Vec<(String, String)> {
    let empty = std::env::temp_dir().join("ocsync-empty-aws-config");
    if !empty.exists() {
        fs::write(&empty, "").unwrap();
        fs::set_permissions(&empty, fs::Permissions::from_mode(0o644)).unwrap();
    }
    let empty = empty.display().to_string();
    vec![
        ("AWS_ACCESS_KEY_ID".into(), "testing".into()),
        ("AWS_SECRET_ACCESS_KEY".into(), "testing".into()),
        ("AWS_REGION".into(), "us-east-1".into()),
        ("AWS_DEFAULT_REGION".into(), "us-east-1".into()),
        ("AWS_EC2_METADATA_DISABLED".into(), "true".into()),
        ("AWS_CONFIG_FILE".into(), empty.clone()),
        ("AWS_SHARED_CREDENTIALS_FILE".into(), empty),
        ("AWS_ENDPOINT_URL".into(), endpoint.into()),
        // Not AWS, but in every environment the tool runs with: direct token probes go to the
        // shared loopback Anthropic stand-in, never to the real API (an empty value, set by a
        // test after this, means "where the gateway's own config points").
        (
            "OPENCLAW_TOKEN_SYNC_ANTHROPIC_BASE_URL".into(),
            shared_standin().base_url.clone(),
        ),
    ]
}

fn secrets_client(endpoint: &str) -> (tokio::runtime::Runtime, aws_sdk_secretsmanager::Client) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let config = aws_sdk_secretsmanager::Config::builder()
        .behavior_version(aws_sdk_secretsmanager::config::BehaviorVersion::latest())
        .region(aws_sdk_secretsmanager::config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_secretsmanager::config::Credentials::new(
            "testing", "testing", None, None, "tests",
        ))
        .build();
    (runtime, aws_sdk_secretsmanager::Client::from_conf(config))
}

/// Creates a secret with a string value; returns its name.
/// Schedules a secret for deletion (the default 30-day recovery window), as an operator's
/// `aws secretsmanager delete-secret` does.
pub fn schedule_deletion(name: &str) {
    let (runtime, client) = secrets_client(&moto().endpoint);
    runtime
        .block_on(client.delete_secret().secret_id(name).send())
        .expect("delete secret in moto");
}

pub fn create_secret(name: &str, value: &str) -> String {
    let (runtime, client) = secrets_client(&moto().endpoint);
    runtime
        .block_on(
            client
                .create_secret()
                .name(name)
                .secret_string(value)
                .send(),
        )
        .expect("create secret in moto");
    name.to_owned()
}

/// Creates a secret with a binary value.
pub fn create_binary_secret(name: &str, value: &[u8]) -> String {
    let (runtime, client) = secrets_client(&moto().endpoint);
    runtime
        .block_on(
            client
                .create_secret()
                .name(name)
                .secret_binary(aws_smithy_types::Blob::new(value.to_vec()))
                .send(),
        )
        .expect("create binary secret in moto");
    name.to_owned()
}

/// Puts a new AWSCURRENT version; returns its version id.
pub fn put_secret(name: &str, value: &str) -> String {
    let (runtime, client) = secrets_client(&moto().endpoint);
    runtime
        .block_on(
            client
                .put_secret_value()
                .secret_id(name)
                .secret_string(value)
                .send(),
        )
        .expect("put secret value in moto")
        .version_id
        .unwrap()
}

/// The AWSCURRENT value of a secret (asked by stage, as moto keeps a stale default).
pub fn current_value(name: &str) -> String {
    let (runtime, client) = secrets_client(&moto().endpoint);
    runtime
        .block_on(
            client
                .get_secret_value()
                .secret_id(name)
                .version_stage("AWSCURRENT")
                .send(),
        )
        .expect("get secret value from moto")
        .secret_string
        .unwrap_or_default()
}

// ---------------------------------------------------------------- tokens

/// A fresh test token: a canary marker plus random characters, unique per call.
pub fn new_token(api_key: bool) -> String {
    let prefix = if api_key {
        "sk-ant-api03-"
    } else {
        "sk-ant-oat01-"
    };
    let mut bytes = [0u8; 48];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
        .unwrap();
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let random: String = bytes
        .iter()
        .map(|b| alphabet[*b as usize % alphabet.len()] as char)
        .collect();
    format!("{prefix}CANARY-{random}-{}", "x".repeat(40))
}

/// The part of a token that identifies it: the random middle.
fn leak_markers(token: &str) -> Vec<String> {
    let mut markers = vec![token.to_owned()];
    if let Some(start) = token.find("CANARY-") {
        let core = &token[start + "CANARY-".len()..];
        markers.push(core.chars().take(48).collect());
    }
    markers
}

/// Fails if any token (or its random core) appears in `text`.
pub fn assert_no_leak(what: &str, text: &[u8], tokens: &[String]) {
    let text = String::from_utf8_lossy(text);
    for token in tokens {
        for marker in leak_markers(token) {
            assert!(!text.contains(&marker), "token leaked into {what}:\n{text}");
        }
    }
}

/// Scans every regular file below `dir` for tokens, except the files that are meant to hold one.
pub fn assert_no_leak_in_tree(dir: &Path, allowed: &[PathBuf], tokens: &[String]) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let meta = fs::symlink_metadata(&path).unwrap();
        if meta.is_dir() {
            assert_no_leak_in_tree(&path, allowed, tokens);
        } else if meta.is_file() && !allowed.contains(&path) {
            assert_no_leak(
                &path.display().to_string(),
                &fs::read(&path).unwrap(),
                tokens,
            );
        }
    }
}

// ---------------------------------------------------------------- runs

pub struct Run {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// The report of the one gateway of a `sync`/`status --output json` run: every such output
    /// is `{"result", "exit_code", "gateways": [{"user", "unit", "result", "exit_code",
    /// "report"}]}`, whatever the number of gateways; the envelope is checked here too.
    pub fn report(&self) -> serde_json::Value {
        let value = self.json();
        let gateways = value["gateways"]
            .as_array()
            .unwrap_or_else(|| panic!("no gateways list: {value}"));
        assert_eq!(gateways.len(), 1, "one gateway expected: {value}");
        assert!(value["result"].is_string(), "{value}");
        // The top carries the process's exit code (`--nagios` maps it); the entry its own.
        assert_eq!(value["exit_code"], self.status, "{value}");
        assert!(gateways[0]["exit_code"].is_u64(), "{value}");
        gateways[0]["report"].clone()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(self.stdout.trim()).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }

    /// A finished process's outcome, its stdout and stderr scanned for `tokens` first
    /// (`what` names the process in a leak's message).
    pub fn checked(what: &str, output: Output, tokens: &[String]) -> Run {
        assert_no_leak(&format!("{what} stdout"), &output.stdout, tokens);
        assert_no_leak(&format!("{what} stderr"), &output.stderr, tokens);
        Run {
            status: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    pub fn expect_status(&self, code: i32) -> &Run {
        assert_eq!(
            self.status, code,
            "exit status; stdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

/// `program` (the binary, or a tracer in front of it) with the moto environment, no config
/// file, `extra_env`, then `args`.
fn tool_command(program: &str, args: &[&str], extra_env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(program);
    command
        .args(args)
        .env("OPENCLAW_TOKEN_SYNC_CONFIG", "/dev/null")
        .envs(aws_env(&moto().endpoint))
        .envs(extra_env.iter().copied());
    command
}

/// Runs the binary with the moto environment and the given args, checks that no token leaked
/// into its output, and returns what it printed.
pub fn run_tool(args: &[&str], extra_env: &[(&str, &str)], tokens: &[String]) -> Run {
    let output: Output = tool_command(BIN, args, extra_env)
        .output()
        .expect("run openclaw-token-sync");
    Run::checked("run", output, tokens)
}

/// [`run_tool`] under `strace`: also every program the tool started (each `execve` after its
/// own), as "path argv…" lines.
pub fn run_tool_execs(
    args: &[&str],
    extra_env: &[(&str, &str)],
    tokens: &[String],
) -> (Run, Vec<String>) {
    let trace = tempfile::NamedTempFile::new().unwrap();
    let trace_path = trace.path().to_str().unwrap();
    let mut traced = vec![
        "-f",
        "-qq",
        "-s",
        "64",
        "-e",
        "trace=execve",
        "-o",
        trace_path,
        BIN,
    ];
    traced.extend_from_slice(args);
    let mut command = tool_command("strace", &traced, extra_env);
    let output = command
        .output()
        .expect("strace (scripts/install-test-deps installs it)");
    let run = Run::checked("run", output, tokens);
    let text = fs::read_to_string(trace.path()).unwrap();
    let execs: Vec<String> = text
        .lines()
        .filter(|l| l.contains("execve(") && !l.contains("= -1 "))
        .skip(1)
        .map(|l| {
            l.split_once("execve(")
                .map_or(l, |(_, rest)| rest)
                .to_owned()
        })
        .collect();
    (run, execs)
}

/// `sync --secret-id SECRET --user USER --settle-ms 300 EXTRA...`, as root for a test user.
pub fn sync_for(user: &TestUser, secret: &str, extra: &[&str], tokens: &[String]) -> Run {
    run_tool(&sync_args(secret, user, extra), &[], tokens)
}

/// `sync --secret-id SECRET --user USER --settle-ms 300 EXTRA...` as arguments.
pub fn sync_args<'a>(secret: &'a str, user: &'a TestUser, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "sync",
        "--secret-id",
        secret,
        "--user",
        user.name.as_str(),
        "--settle-ms",
        "300",
    ];
    args.extend_from_slice(extra);
    args
}

// ---------------------------------------------------------------- files

/// Path → (content, mode, mtime in ns) of every regular file below `dir`.
pub fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>, u32, i128)> {
    let mut out = Vec::new();
    fn walk(dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>, u32, i128)>) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        let mut entries: Vec<_> = entries.flatten().collect();
        entries.sort_by_key(|e| e.path());
        for entry in entries {
            let path = entry.path();
            let meta = fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                walk(&path, out);
            } else if meta.is_file() {
                let mtime = meta.mtime() as i128 * 1_000_000_000 + meta.mtime_nsec() as i128;
                out.push((
                    path.clone(),
                    fs::read(&path).unwrap(),
                    meta.mode() & 0o7777,
                    mtime,
                ));
            }
        }
    }
    walk(dir, &mut out);
    out
}

// ---------------------------------------------------------------- user manager

/// A throwaway user with a fresh home and a running `systemd --user` manager. Dropping it stops
/// the manager (and with it the stand-in gateway).
pub struct TestUser {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: PathBuf,
    manager_pid: String,
}

pub const UNIT: &str = "openclaw-gateway.service";

fn global_user_lock() -> fs::File {
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open("/tmp/ocsync-test-useradd.lock")
        .unwrap();
    file.lock().unwrap();
    file
}

/// Creates user `name` (with a home, no manager, no linger) unless it exists.
pub fn ensure_user(name: &str) {
    assert!(name.len() <= 31);
    let _guard = global_user_lock();
    let exists = Command::new("id")
        .arg(name)
        .output()
        .unwrap()
        .status
        .success();
    if !exists {
        let status = Command::new("useradd")
            .args(["-m", "-s", "/bin/bash", name])
            .status()
            .unwrap();
        assert!(status.success(), "useradd {name}");
    }
}

impl TestUser {
    /// Creates (or reuses) user `name`, wipes its home, installs the stand-in gateway unit and
    /// starts the user manager. With `start_gateway`, the gateway is enabled and running.
    pub fn new(name: &str, start_gateway: bool) -> TestUser {
        ensure_user(name);
        let uid = command_stdout("id", &["-u", name]).trim().parse().unwrap();
        let gid = command_stdout("id", &["-g", name]).trim().parse().unwrap();
        let home = PathBuf::from(format!("/home/{name}"));
        // A manager left over from an aborted run would hold the old home.
        let _ = Command::new("pkill").args(["-KILL", "-u", name]).status();
        std::thread::sleep(Duration::from_millis(100));
        let _ = fs::remove_dir_all(&home);
        fs::create_dir_all(home.join(".config/systemd/user")).unwrap();
        fs::create_dir_all(home.join(".openclaw")).unwrap();
        fs::copy(
            fixture("stand-in-gateway.service"),
            home.join(".config/systemd/user").join(UNIT),
        )
        .unwrap();
        chown_tree(&home, uid, gid);
        fs::set_permissions(&home, fs::Permissions::from_mode(0o750)).unwrap();
        let script = Path::new(MANIFEST_DIR).join("tests/support/user-manager.sh");
        let manager_pid = command_stdout(script.to_str().unwrap(), &["start", name])
            .trim()
            .to_owned();
        let user = TestUser {
            name: name.into(),
            uid,
            gid,
            home,
            manager_pid,
        };
        if start_gateway {
            user.systemctl(&["start", UNIT]);
            assert!(user.main_pid() != 0, "stand-in gateway did not start");
        }
        user
    }

    /// Where the user's manager sees `/` (its private `/run/systemd` in standalone mode).
    pub fn manager_root(&self) -> PathBuf {
        PathBuf::from(format!("/proc/{}/root", self.manager_pid))
    }

    /// Runs `systemctl --user` as the user; panics on failure.
    pub fn systemctl(&self, args: &[&str]) -> String {
        let output = Command::new("setpriv")
            .arg(format!("--reuid={}", self.uid))
            .arg(format!("--regid={}", self.gid))
            .arg("--init-groups")
            .arg("env")
            .arg(format!("XDG_RUNTIME_DIR=/run/user/{}", self.uid))
            .arg("systemctl")
            .arg("--user")
            .args(args)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "systemctl --user {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    pub fn show(&self, property: &str) -> String {
        self.systemctl(&["show", "-p", property, "--value", UNIT])
            .trim()
            .to_owned()
    }

    pub fn main_pid(&self) -> u32 {
        self.show("MainPID").parse().unwrap()
    }

    /// The value of `variable` in the running gateway's environment. systemd reports a simple
    /// service's MainPID at the fork, and until the exec the process is systemd's own child
    /// (named "(sleep)", with the manager's environment): wait for the exec first.
    pub fn gateway_env(&self, variable: &str) -> Option<String> {
        let pid = self.main_pid();
        assert!(pid != 0, "gateway not running");
        let deadline = Instant::now() + Duration::from_secs(10);
        while fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.starts_with('('))
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        let environ = fs::read(format!("/proc/{pid}/environ")).unwrap();
        let prefix = format!("{variable}=");
        environ
            .split(|b| *b == 0)
            .find_map(|e| e.strip_prefix(prefix.as_bytes()))
            .map(|v| String::from_utf8_lossy(v).into_owned())
    }

    /// Asserts that the running gateway's environment gives `variable` exactly `token`.
    pub fn assert_gateway_has(&self, variable: &str, token: &str) {
        assert_eq!(
            self.gateway_env(variable).as_deref(),
            Some(token),
            "{variable} in the running gateway"
        );
    }

    /// The sandbox of `deploy/openclaw-token-sync.service`, as `systemd-run` properties: every
    /// hardening line of its `[Service]` section (read from the unit itself, as the package
    /// ships it). Left out, with the reason: the
    /// capability bounding set (this process does not need to drop privileges: it already is the
    /// user) and the settings a user manager cannot apply without privileges of its own here
    /// (`PrivateDevices`, `ProtectKernel*`, `ProtectClock`, `ProtectHostname`).
    pub fn service_sandbox(&self) -> Vec<String> {
        let unit =
            fs::read_to_string(Path::new(MANIFEST_DIR).join("deploy/openclaw-token-sync.service"))
                .unwrap();
        let skipped = [
            "Type",
            "ExecStart",
            "TimeoutStartSec",
            "CapabilityBoundingSet",
            "PrivateDevices",
            "ProtectKernelTunables",
            "ProtectKernelModules",
            "ProtectKernelLogs",
            "ProtectClock",
            "ProtectHostname",
            "ProtectControlGroups",
            // Root's lock directory (`/run/openclaw-token-sync`); a user's run does not use it.
            "RuntimeDirectory",
            "RuntimeDirectoryMode",
            "RuntimeDirectoryPreserve",
        ];
        unit.lines()
            .skip_while(|l| l.trim() != "[Service]")
            .skip(1)
            .take_while(|l| !l.starts_with('['))
            .filter(|l| !l.trim_start().starts_with('#') && l.contains('='))
            .filter(|l| !skipped.contains(&l.split('=').next().unwrap().trim()))
            .map(str::to_owned)
            .collect()
    }

    /// Runs `argv` as the user in a transient service of their manager with `properties`,
    /// passing `env` through systemd-run's own environment. Returns (exit code, stdout, stderr).
    pub fn run_transient(
        &self,
        properties: &[String],
        argv: &[&str],
        env: &[(String, String)],
    ) -> (i32, String, String) {
        let output = self
            .transient(&["--pipe"], properties, argv, env)
            .output()
            .unwrap();
        (
            output.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }

    /// Like `run_transient`, but the service's stdout and stderr go where its manager sends
    /// them by default: the journal. Returns the exit code.
    pub fn run_transient_to_journal(
        &self,
        properties: &[String],
        argv: &[&str],
        env: &[(String, String)],
    ) -> i32 {
        let output = self.transient(&[], properties, argv, env).output().unwrap();
        output.status.code().unwrap_or(-1)
    }

    fn transient(
        &self,
        extra: &[&str],
        properties: &[String],
        argv: &[&str],
        env: &[(String, String)],
    ) -> Command {
        let mut command = Command::new("setpriv");
        command
            .arg(format!("--reuid={}", self.uid))
            .arg(format!("--regid={}", self.gid))
            .arg("--init-groups")
            .arg("systemd-run")
            .args([
                "--user",
                "--quiet",
                "--wait",
                "--collect",
                "--service-type=exec",
            ])
            .args(extra)
            .args(properties.iter().map(|p| format!("--property={p}")))
            .args(env.iter().map(|(k, _)| format!("--setenv={k}")))
            .arg("--")
            .args(argv)
            .env_clear()
            .env("XDG_RUNTIME_DIR", format!("/run/user/{}", self.uid))
            .env("PATH", "/usr/bin:/bin")
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        command
    }

    pub fn path(&self, relative: &str) -> PathBuf {
        self.home.join(relative)
    }

    /// Writes a file as the user would have (owned by the user).
    pub fn write(&self, relative: &str, content: &[u8], mode: u32) {
        let path = self.path(relative);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, content).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
        chown_tree(&self.home, self.uid, self.gid);
    }

    /// Installs OpenClaw's gateway unit for profile `profile` (the stand-in with
    /// `OPENCLAW_PROFILE=<profile>`, so its state dir is `~/.openclaw-<profile>`); returns its
    /// name. Not started.
    pub fn add_profile_unit(&self, profile: &str) -> String {
        let unit = format!("openclaw-gateway-{profile}.service");
        let unit_text =
            fs::read_to_string(self.path(&format!(".config/systemd/user/{UNIT}"))).unwrap();
        self.write(
            &format!(".config/systemd/user/{unit}"),
            unit_text
                .replace(
                    "Environment=OPENCLAW_SERVICE_KIND=gateway",
                    &format!(
                        "Environment=OPENCLAW_SERVICE_KIND=gateway\nEnvironment=OPENCLAW_PROFILE={profile}"
                    ),
                )
                .as_bytes(),
            0o644,
        );
        unit
    }

    pub fn dropin(&self) -> PathBuf {
        self.path(&format!(".config/systemd/user/{UNIT}.d/anthropic.conf"))
    }

    pub fn state_file(&self) -> PathBuf {
        self.path(".local/state/openclaw-token-sync/state.json")
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        let script = Path::new(MANIFEST_DIR).join("tests/support/user-manager.sh");
        let _ = Command::new(script)
            .args(["stop", &self.name, &self.manager_pid])
            .status();
        let _ = Command::new("pkill")
            .args(["-KILL", "-u", &self.name])
            .status();
    }
}

pub fn command_stdout(program: &str, args: &[&str]) -> String {
    let output = Command::new(program).args(args).output().unwrap();
    assert!(
        output.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn chown_tree(path: &Path, uid: u32, gid: u32) {
    let _ = std::os::unix::fs::lchown(path, Some(uid), Some(gid));
    if fs::symlink_metadata(path).is_ok_and(|m| m.is_dir()) {
        for entry in fs::read_dir(path).unwrap().flatten() {
            chown_tree(&entry.path(), uid, gid);
        }
    }
}

// ---------------------------------------------------------------- fault proxy

/// `tests/support/fault_proxy.py` in front of the shared moto: counts requests per operation and
/// injects the faults moto cannot produce. Killed when dropped (and with the test process).
pub struct FaultProxy {
    pub port: u16,
    pub endpoint: String,
    _helper: PythonHelper,
}

/// A Python helper of the tests (`tests/support/<script>`) on a free loopback port, started
/// under a watchdog shell that kills it when this process exits (its stdin pipe closes) or
/// when dropped.
pub struct PythonHelper {
    pub port: u16,
    child: Child,
}

impl PythonHelper {
    /// Starts `script PORT args…` and waits until `GET ready_path` answers 200.
    pub fn start(script: &str, args: &[&str], ready_path: &str) -> PythonHelper {
        let port = free_port();
        let child = Command::new("bash")
            .arg("-c")
            .arg(r#"p="$1"; shift; "$p" "$@" >/dev/null 2>&1 & c=$!; read -r _; kill "$c""#)
            .arg("watchdog")
            .arg(tools_dir().join("venv/bin/python"))
            .arg(Path::new(MANIFEST_DIR).join("tests/support").join(script))
            .arg(port.to_string())
            .args(args)
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while !http_get_ok(port, ready_path) {
            assert!(Instant::now() < deadline, "{script} did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        PythonHelper { port, child }
    }
}

impl Drop for PythonHelper {
    fn drop(&mut self) {
        // Closing the watchdog's stdin makes it kill the helper; killing the watchdog itself
        // would orphan the helper.
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

impl FaultProxy {
    pub fn start() -> FaultProxy {
        let upstream = moto().endpoint.rsplit(':').next().unwrap().to_owned();
        let helper = PythonHelper::start("fault_proxy.py", &[&upstream], "/__proxy/stats");
        FaultProxy {
            port: helper.port,
            endpoint: format!("http://127.0.0.1:{}", helper.port),
            _helper: helper,
        }
    }

    fn request(&self, method: &str, path: &str, body: &str) -> String {
        loopback_request(self.port, method, path, body)
    }

    /// Queues faults, one per coming request: "throttle", "500", "hang", "drop", "malformed".
    pub fn inject(&self, faults: &[&str]) {
        self.request(
            "POST",
            "/__proxy/faults",
            &serde_json::json!({ "faults": faults }).to_string(),
        );
    }

    pub fn reset(&self) {
        self.request("POST", "/__proxy/reset", "");
    }

    /// Requests seen for one operation, e.g. "secretsmanager.GetSecretValue".
    pub fn count(&self, operation: &str) -> u64 {
        let stats: serde_json::Value =
            serde_json::from_str(&self.request("GET", "/__proxy/stats", "")).unwrap();
        stats["by_operation"][operation].as_u64().unwrap_or(0)
    }
}

/// One HTTP/1.0 request to a test helper on 127.0.0.1; returns the response body.
pub fn loopback_request(port: u16, method: &str, path: &str, body: &str) -> String {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    std::io::Read::read_to_string(&mut stream, &mut response).unwrap();
    response
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or_default()
        .to_owned()
}

/// The loopback Anthropic stand-in shared by this test binary (direct token probes).
pub fn shared_standin() -> &'static openclaw::AnthropicStandIn {
    static STANDIN: OnceLock<openclaw::AnthropicStandIn> = OnceLock::new();
    STANDIN.get_or_init(openclaw::AnthropicStandIn::start)
}

/// `put` against `endpoint` with `stdin` as its input; checks its output for leaks.
pub fn put_at(endpoint: &str, secret: &str, stdin: &str, extra: &[&str], tokens: &[String]) -> Run {
    let mut command = Command::new(BIN);
    command
        .args(["put", "--secret-id", secret])
        .args(extra)
        .env("OPENCLAW_TOKEN_SYNC_CONFIG", "/dev/null")
        .envs(aws_env(endpoint))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().unwrap();
    // A put refused before it reads stdin (bad usage) may have exited already.
    if let Err(e) = child.stdin.take().unwrap().write_all(stdin.as_bytes()) {
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
    }
    Run::checked("put", child.wait_with_output().unwrap(), tokens)
}

/// Spawns the binary in the background with the moto environment (for kills and races).
pub fn spawn_tool(args: &[&str], extra_env: &[(&str, &str)]) -> Child {
    tool_command(BIN, args, extra_env)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn openclaw-token-sync")
}

/// The fingerprint the tool prints for a token.
pub fn fingerprint(token: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(token.as_bytes());
    let hex: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

// ---------------------------------------------------------------- journal

/// A running systemd-journald (started here when none answers): services of the test users'
/// managers then log to the journal as they do on a real host, with `JOURNAL_STREAM` set.
/// Returns false when journald cannot be started.
pub fn journald() -> bool {
    static RUNNING: OnceLock<bool> = OnceLock::new();
    *RUNNING.get_or_init(|| {
        let answers =
            || std::os::unix::net::UnixStream::connect("/run/systemd/journal/stdout").is_ok();
        if answers() {
            return true;
        }
        let binary = [
            "/lib/systemd/systemd-journald",
            "/usr/lib/systemd/systemd-journald",
        ]
        .into_iter()
        .find(|p| Path::new(p).exists());
        let Some(binary) = binary else {
            return false;
        };
        // Left running for the rest of the run, like the journald of a real host.
        if Command::new(binary)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .is_err()
        {
            return false;
        }
        for _ in 0..100 {
            if answers() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    })
}

/// The journal's entries for one syslog identifier, as JSON objects.
pub fn journal_entries(identifier: &str) -> Vec<serde_json::Value> {
    let output = Command::new("journalctl")
        .args(["--no-pager", "-o", "json", "-t", identifier])
        .output()
        .expect("journalctl");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

// ---------------------------------------------------------------- root's manager, turns

/// Root's own user manager, standing in for the system manager (the test seam
/// `OPENCLAW_TOKEN_SYSTEM_MANAGER_RUNTIME_DIR=/run/user/0`, since PID 1 here is not systemd).
/// There is one per machine: `start` waits for the tests before it, and the turn lasts until
/// the manager is stopped (dropped).
pub struct RootManager {
    pid: String,
    _turn: std::sync::MutexGuard<'static, ()>,
}

static ROOT_MANAGER_TURN: Mutex<()> = Mutex::new(());

/// Root's own user manager is not running while the guard is held (no `RootManager` starts).
pub fn without_root_manager() -> std::sync::MutexGuard<'static, ()> {
    ROOT_MANAGER_TURN.lock().unwrap_or_else(|e| e.into_inner())
}

impl RootManager {
    pub fn start() -> RootManager {
        let turn = without_root_manager();
        let script = Path::new(MANIFEST_DIR).join("tests/support/user-manager.sh");
        let output = Command::new(&script)
            .args(["start", "root"])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "root's user manager: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        RootManager {
            pid: String::from_utf8_lossy(&output.stdout).trim().to_owned(),
            _turn: turn,
        }
    }

    /// Installs `unit` in root's unit directory (a "system" unit under the seam) with this
    /// `[Service]` body, a fresh drop-in directory, then enables and starts it. Returns the
    /// unit directory.
    pub fn install_unit(&self, unit: &str, service: &str) -> PathBuf {
        let units = PathBuf::from("/root/.config/systemd/user");
        fs::create_dir_all(&units).unwrap();
        let _ = fs::remove_dir_all(units.join(format!("{unit}.d")));
        fs::write(
            units.join(unit),
            format!("[Service]\n{service}\n[Install]\nWantedBy=default.target\n"),
        )
        .unwrap();
        self.systemctl(&["daemon-reload"]);
        self.systemctl(&["enable", "--now", unit]);
        units
    }

    /// Stops, disables and removes a unit [`Self::install_unit`] installed.
    pub fn remove_unit(&self, unit: &str) {
        let units = PathBuf::from("/root/.config/systemd/user");
        let _ = self.try_systemctl(&["disable", "--now", unit]);
        let _ = fs::remove_file(units.join(unit));
        let _ = fs::remove_dir_all(units.join(format!("{unit}.d")));
        let _ = self.try_systemctl(&["daemon-reload"]);
    }

    /// `systemctl --user ARGS` against root's manager; panics on failure.
    pub fn systemctl(&self, args: &[&str]) -> String {
        let output = self.command(args);
        assert!(
            output.status.success(),
            "systemctl --user {args:?} (root): {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Like `systemctl`, whatever the exit status (for polling).
    pub fn try_systemctl(&self, args: &[&str]) -> String {
        String::from_utf8_lossy(&self.command(args).stdout).into_owned()
    }

    fn command(&self, args: &[&str]) -> Output {
        Command::new("systemctl")
            .env("XDG_RUNTIME_DIR", "/run/user/0")
            .arg("--user")
            .args(args)
            .output()
            .unwrap()
    }
}

impl Drop for RootManager {
    fn drop(&mut self) {
        let script = Path::new(MANIFEST_DIR).join("tests/support/user-manager.sh");
        let _ = Command::new(script)
            .args(["stop", "root", &self.pid])
            .status();
    }
}

/// Runs over several users hold root's run lock (`/run/openclaw-token-sync/sync.lock`) for their
/// whole length, a stalled user's included: the tests that make them take turns, so none waits
/// out another's lock.
pub fn multi_user_turn() -> std::sync::MutexGuard<'static, ()> {
    static TURN: Mutex<()> = Mutex::new(());
    TURN.lock().unwrap_or_else(|e| e.into_inner())
}

/// Waits (at most 10 s) until `path` holds a flock: a holder started by the test has taken it.
pub fn wait_flocked(path: &Path) {
    let ino = fs::metadata(path).unwrap().ino();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let locks = fs::read_to_string("/proc/locks").unwrap();
        if locks
            .lines()
            .any(|l| l.contains("FLOCK") && l.contains(&format!(":{ino} ")))
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{} was not locked by the holder", path.display());
}

/// While a run works, watches every `systemd-run` process and every OpenClaw CLI call
/// (`… gateway call …`) on the machine: none may carry a token in its argv or environment (the
/// gateway itself is not looked at: it is meant to have the token). [`ChildScan::finish`] says
/// how many of each it saw, so a test can prove the scan was not empty.
pub struct ChildScan {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<(usize, usize)>,
}

impl ChildScan {
    pub fn start(tokens: &[String]) -> ChildScan {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let tokens = tokens.to_vec();
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut seen_runs = std::collections::HashSet::new();
            let mut seen_calls = std::collections::HashSet::new();
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                for entry in fs::read_dir("/proc").unwrap().flatten() {
                    let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                        continue;
                    };
                    let Ok(cmdline) = fs::read(entry.path().join("cmdline")) else {
                        continue;
                    };
                    let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
                    let is_run = args.first().is_some_and(|a| a.ends_with(b"systemd-run"));
                    let is_call = args
                        .windows(2)
                        .any(|w| w[0] == b"gateway" && w[1] == b"call");
                    if !is_run && !is_call {
                        continue;
                    }
                    assert_no_leak(&format!("argv of pid {pid}"), &cmdline, &tokens);
                    if let Ok(environ) = fs::read(entry.path().join("environ")) {
                        assert_no_leak(&format!("environment of pid {pid}"), &environ, &tokens);
                        if is_run {
                            seen_runs.insert(pid);
                        } else {
                            seen_calls.insert(pid);
                        }
                    }
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            (seen_runs.len(), seen_calls.len())
        });
        ChildScan { stop, thread }
    }

    /// Stops the scan: (systemd-run processes, OpenClaw CLI calls) seen; a leak panics here.
    pub fn finish(self) -> (usize, usize) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        match self.thread.join() {
            Ok(seen) => seen,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}
