//! OpenClaw in a rootless Podman Quadlet container (README "Containers"), for real: OpenClaw's own
//! `openclaw.container` (scripts/podman/openclaw.container.in) in the test user's
//! `~/.config/containers/systemd/`, turned into `openclaw.service` by Podman's own Quadlet
//! generator run by the user's real `systemd --user` manager, started by that manager; Debian's
//! Podman runs the container rootless from an image the user imported from a Debian bookworm root
//! filesystem (no image registry), with OpenClaw 2026.9.6 and Node mounted read-only; agent turns
//! go over the gateway's HTTP endpoint to the loopback Anthropic stand-in.
//!
//! What this machine needs that a host with Podman 4.4 or later does not (each named where it is
//! set, and in the README):
//! - the generator is Debian 13's (`scripts/install-test-deps` fetches it), installed as this
//!   manager's `podman-user-generator` (the name Podman's package gives it): Debian 12's Podman
//!   (4.3.1) predates Quadlet; it runs the generated unit as is;
//! - the user's Podman configuration for a host whose PID 1 is not systemd, with hybrid cgroups
//!   (`runc`, `cgroupfs`, file events, kernel overlay), and `PodmanArgs=--cgroups=enabled` (the
//!   generated `--cgroups=split` needs delegated cgroup v2);
//! - `Network=host` instead of `PublishPort=` (slirp4netns needs `/dev/net/tun`, root's 0600
//!   here; the stand-in is on the host's loopback);
//! - a drop-in removing the container's ID file before a start: Podman 4.3.1 leaves it behind
//!   on stop, and the next start would fail ("container id file exists").

use super::containers::{
    assert_first_sync, assert_healthy, assert_turn_carries, wait_ready, write_gateway_state,
};
use crate::common::openclaw::*;
use crate::common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

const USER: &str = "ocs-quad";
const IMAGE: &str = "localhost/openclaw-test";
const CONTAINER: &str = "openclaw";
const UNIT: &str = "openclaw.service";

fn quadlet_available() -> bool {
    let wanted = [
        PathBuf::from("/usr/bin/podman"),
        PathBuf::from("/usr/bin/newuidmap"),
        tools_dir().join("quadlet/quadlet"),
        tools_dir().join("rootfs-bookworm.tar"),
    ];
    let missing: Vec<String> = wanted
        .iter()
        .filter(|p| !p.exists())
        .map(|p| p.display().to_string())
        .collect();
    if missing.is_empty() {
        return true;
    }
    skip(&format!(
        "Quadlet gateways: missing {} (scripts/install-test-deps --openclaw installs them as root)",
        missing.join(", ")
    ));
    false
}

/// A command as the test user, with the environment their manager's services have.
fn as_user(user: &TestUser, args: &[&str]) -> Command {
    let mut command = Command::new("setpriv");
    command
        .arg(format!("--reuid={}", user.uid))
        .arg(format!("--regid={}", user.gid))
        .arg("--init-groups")
        .args(["env", "-i", "PATH=/usr/bin:/bin"])
        .arg(format!("HOME={}", user.home.display()))
        .arg(format!("USER={}", user.name))
        .arg(format!("XDG_RUNTIME_DIR=/run/user/{}", user.uid))
        .args(args)
        .current_dir("/tmp");
    command
}

fn podman(user: &TestUser, args: &[&str]) -> String {
    let mut argv = vec!["podman"];
    argv.extend_from_slice(args);
    let out = as_user(user, &argv).output().unwrap();
    assert!(
        out.status.success(),
        "podman {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Writes a file of the user's under their home (it and the directories made for it are
/// theirs); unlike `TestUser::write`, leaves the rest of the home alone (the user's Podman
/// storage holds files of their subordinate ids).
fn put(user: &TestUser, relative: &str, content: &[u8]) {
    let path = user.path(relative);
    let mut dir = path.parent().unwrap().to_path_buf();
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(&path, content).unwrap();
    let own = |p: &Path| std::os::unix::fs::chown(p, Some(user.uid), Some(user.gid)).unwrap();
    own(&path);
    while dir.starts_with(&user.home) {
        own(&dir);
        dir.pop();
    }
}

/// The user's Podman set up for this machine (see the module docs).
fn configure_podman(user: &TestUser) {
    let line = format!(
        "{}:{}:65536\n",
        user.name,
        100_000 + 65_536 * (user.uid % 64)
    );
    for file in ["/etc/subuid", "/etc/subgid"] {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        if !text
            .lines()
            .any(|l| l.starts_with(&format!("{}:", user.name)))
        {
            std::fs::write(file, text + &line).unwrap();
        }
    }
    put(
        user,
        ".config/containers/containers.conf",
        b"[engine]\nruntime = \"runc\"\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n",
    );
    put(
        user,
        ".config/containers/storage.conf",
        b"[storage]\ndriver = \"overlay\"\n",
    );
}

/// The gateway's image in the user's own storage, from the Debian root filesystem: the user
/// `node` at the test user's uid (`UserNS=keep-id` maps it to them), Node on the `PATH`,
/// OpenClaw's package as the working directory (both mounted read-only at run time).
fn import_image(user: &TestUser) {
    let scratch = PathBuf::from(format!("/tmp/ocsync-quadlet-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch).unwrap();
    let rootfs = tools_dir().join("rootfs-bookworm.tar");
    let status = Command::new("tar")
        .args([
            "-xf",
            rootfs.to_str().unwrap(),
            "-C",
            scratch.to_str().unwrap(),
        ])
        .status()
        .unwrap();
    assert!(status.success());
    let (uid, gid) = (user.uid, user.gid);
    for (file, line) in [
        (
            "etc/passwd",
            format!("node:x:{uid}:{gid}::/home/node:/bin/sh\n"),
        ),
        ("etc/group", format!("node:x:{gid}:\n")),
    ] {
        let text = std::fs::read_to_string(scratch.join(file)).unwrap();
        std::fs::write(scratch.join(file), text + &line).unwrap();
    }
    for dir in ["home/node", "opt/node", "app/node_modules"] {
        std::fs::create_dir_all(scratch.join(dir)).unwrap();
    }
    chown_tree(&scratch.join("home/node"), uid, gid);
    let mut tar = Command::new("tar")
        .args([
            "--numeric-owner",
            "-C",
            scratch.to_str().unwrap(),
            "-c",
            ".",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let out = as_user(user, &["podman", "import"])
        .args(["--change", "USER node", "--change", "ENV HOME=/home/node"])
        .args([
            "--change",
            "ENV PATH=/opt/node/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        ])
        .args(["--change", "WORKDIR /app/node_modules/openclaw", "-", IMAGE])
        .stdin(tar.stdout.take().unwrap())
        .output()
        .unwrap();
    assert!(tar.wait().unwrap().success());
    assert!(
        out.status.success(),
        "podman import: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(&scratch);
}

/// The read-only mounts that stand in for the official image's `/app`.
fn tool_mounts() -> [String; 2] {
    let node = tools_dir().join("node").canonicalize().unwrap();
    let modules = package_dir(NEWEST_RELEASE).parent().unwrap().to_path_buf();
    [
        format!("{}:/opt/node:ro", node.display()),
        format!("{}:/app/node_modules:ro", modules.display()),
    ]
}

/// OpenClaw's `scripts/podman/openclaw.container.in`, filled in as its `setup.sh` fills it;
/// every line that differs is marked ADAPT (module docs). `extra` goes into `[Container]`.
fn container_file(state: &Path, port: u16, extra: &str) -> String {
    let [node, modules] = tool_mounts();
    let state = state.display();
    format!(
        "# OpenClaw gateway — Podman Quadlet (rootless)\n\
         [Unit]\nDescription=OpenClaw gateway (rootless Podman)\n\n\
         [Container]\nImage={IMAGE}\nContainerName={CONTAINER}\nUserNS=keep-id\n\
         User=%U:%G\n\
         Volume={state}:/home/node/.openclaw:Z\n\
         Volume={state}/workspace:/home/node/.openclaw/workspace:Z\n\
         # ADAPT: Node and OpenClaw from the tests' tools (the official image has them in /app)\n\
         Volume={node}\nVolume={modules}\n\
         EnvironmentFile={state}/.env\n\
         Environment=HOME=/home/node\nEnvironment=TERM=xterm-256color\n\
         Environment=NPM_CONFIG_CACHE=/home/node/.openclaw/.npm\n\
         Environment=OPENCLAW_NO_RESPAWN=1\n\
         # ADAPT: the host's network instead of PublishPort= (no /dev/net/tun for slirp4netns)\n\
         Network=host\nPull=never\n\
         # ADAPT: Podman 4.3.1 on hybrid cgroups cannot make --cgroups=split's cgroup\n\
         PodmanArgs=--cgroups=enabled\n{extra}\
         Exec=node dist/index.js gateway --bind loopback --port {port}\n\n\
         [Service]\nTimeoutStartSec=300\nRestart=on-failure\n\n\
         [Install]\nWantedBy=default.target\n"
    )
}

/// Installs the Quadlet file and Podman's generator for the user's manager, and starts the unit.
fn install_quadlet(user: &TestUser, state: &Path, port: u16) {
    put(
        user,
        ".config/containers/systemd/openclaw.container",
        container_file(state, port, "").as_bytes(),
    );
    // ADAPT: Podman 4.3.1 leaves the ID file behind on stop (module docs).
    put(
        user,
        ".config/systemd/user/openclaw.service.d/cidfile.conf",
        b"[Service]\nExecStartPre=/bin/rm -f %t/%N.cid\n",
    );
    let generators = user.manager_root().join("run/systemd/user-generators");
    std::fs::create_dir_all(&generators).unwrap();
    let link = generators.join("podman-user-generator");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(tools_dir().join("quadlet/quadlet"), &link).unwrap();
    user.systemctl(&["daemon-reload"]);
    assert_eq!(
        user.unit_show("SourcePath").trim(),
        user.home
            .join(".config/containers/systemd/openclaw.container")
            .display()
            .to_string()
    );
    user.systemctl(&["start", UNIT]);
    wait_ready(port);
}

trait QuadletUnit {
    fn unit_show(&self, property: &str) -> String;
}

impl QuadletUnit for TestUser {
    fn unit_show(&self, property: &str) -> String {
        self.systemctl(&["show", "-p", property, "--value", UNIT])
            .trim()
            .to_owned()
    }
}

fn sync(secret: &str, extra: &[&str], tokens: &[String]) -> Run {
    let mut args = vec![
        "sync",
        "--user",
        USER,
        "--secret-id",
        secret,
        "--output",
        "json",
    ];
    args.extend_from_slice(extra);
    run_tool(
        &args,
        &[("OPENCLAW_TOKEN_SYNC_ANTHROPIC_BASE_URL", "")],
        tokens,
    )
}

/// The Quadlet gateway's report of a run (the user's only gateway).
fn quadlet_report(run: &Run) -> Value {
    let envelope = run.json();
    let gateways = envelope["gateways"].as_array().cloned().unwrap_or_default();
    assert_eq!(gateways.len(), 1, "{envelope}");
    assert_eq!(
        gateways[0]["unit"],
        format!("quadlet {UNIT} ({CONTAINER})"),
        "{envelope}"
    );
    gateways[0]["report"].clone()
}

#[test]
fn a_quadlet_gateway_is_found_synced_as_its_user_and_restarted_only_for_a_change() {
    if !require_root("Quadlet gateways") || !require_release(NEWEST_RELEASE) || !quadlet_available()
    {
        return;
    }
    let standin = AnthropicStandIn::start();
    let port = free_port();
    let user = TestUser::new(USER, false);
    // The user's gateway is the Quadlet one only.
    std::fs::remove_file(
        user.home
            .join(".config/systemd/user")
            .join(crate::common::UNIT),
    )
    .unwrap();
    configure_podman(&user);
    import_image(&user);
    let state = user.home.join(".openclaw");
    write_gateway_state(&state, port, &standin.base_url);
    std::fs::create_dir_all(state.join("workspace")).unwrap();
    std::fs::write(
        state.join(".env"),
        "# the gateway's own variables\nTZ=UTC\n",
    )
    .unwrap();
    chown_tree(&state, user.uid, user.gid);
    // OpenClaw's own repair turns the stale JSON profiles into its SQLite stores, as on a host.
    let volume = format!("{}:/home/node/.openclaw", state.display());
    let [node, modules] = tool_mounts();
    podman(
        &user,
        &[
            "run",
            "--rm",
            "--network",
            "host",
            "--userns",
            "keep-id",
            "-v",
            &volume,
            "-v",
            &node,
            "-v",
            &modules,
            IMAGE,
            "node",
            "dist/index.js",
            "doctor",
            "--fix",
            "--non-interactive",
        ],
    );
    install_quadlet(&user, &state, port);
    // Hostile neighbours in the user's Quadlet directory, which the user's part of root's run
    // reads: a FIFO (never opened: it would block the run), a link to a gateway file elsewhere
    // that the user may read (never followed), and a file that runs no gateway. Every report
    // below holds the one real gateway alone.
    let quadlets = user.path(".config/containers/systemd");
    let status = Command::new("mkfifo")
        .arg(quadlets.join("fifo.container"))
        .status()
        .unwrap();
    assert!(status.success());
    let elsewhere = PathBuf::from(format!("/tmp/ocsync-quadlet-root-{}", std::process::id()));
    let stolen =
        container_file(&state, port, "").replace("ContainerName=openclaw", "ContainerName=stolen");
    std::fs::write(&elsewhere, stolen).unwrap();
    std::fs::set_permissions(
        &elsewhere,
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .unwrap();
    put(
        &user,
        ".config/containers/systemd/sidecar.container",
        format!("[Container]\nImage={IMAGE}\nExec=sleep infinity\n").as_bytes(),
    );
    std::os::unix::fs::symlink(&elsewhere, quadlets.join("stolen.container")).unwrap();
    for link in [
        quadlets.join("fifo.container"),
        quadlets.join("stolen.container"),
    ] {
        let _ = std::os::unix::fs::lchown(&link, Some(user.uid), Some(user.gid));
    }
    // For BENCHMARKS.md (OCSYNC_BENCH=1, --nocapture; measured, never asserted): the unit's own
    // restart to ready, beside the syncs below. Left out of CI: a gateway start is 10-15 s of CPU.
    if std::env::var_os("OCSYNC_BENCH").is_some() {
        let began = Instant::now();
        user.systemctl(&["restart", UNIT]);
        wait_ready(port);
        eprintln!(
            "timing quadlet: systemctl --user restart to /readyz {:.1} s",
            began.elapsed().as_secs_f64()
        );
    }

    // The first sync, from root's run for the user: `.env` through the mount, the stale profiles
    // gone, one restart of the unit, proven by the gateway's models.probe through podman exec.
    let first = new_token(false);
    let mut tokens = vec![first.clone()];
    let secret = create_secret("tests/quadlet", &first);
    let began = Instant::now();
    let run = sync(&secret, &[], &tokens);
    eprintln!(
        "timing quadlet: applying sync (write, clean, restart, prove) {:.1} s",
        began.elapsed().as_secs_f64()
    );
    run.expect_status(0);
    let env = state.join(".env");
    assert_first_sync(&quadlet_report(&run), &env, user.uid, &first);
    let text = std::fs::read_to_string(&env).unwrap();
    assert!(
        text.starts_with("# the gateway's own variables\nTZ=UTC\n"),
        "{}",
        text.len()
    );
    assert_turn_carries(&standin, port, &first, "after the first sync");

    // Nothing changed: no restart.
    let pid = user.unit_show("MainPID");
    let began = Instant::now();
    let run = sync(&secret, &[], &tokens);
    eprintln!(
        "timing quadlet: no-op sync {:.2} s",
        began.elapsed().as_secs_f64()
    );
    run.expect_status(0);
    assert_eq!(quadlet_report(&run)["result"], "unchanged");
    assert_eq!(user.unit_show("MainPID"), pid, "a no-op restarted");

    // Rotation to an API key, the unit named. A dry run says what it would do and touches
    // nothing; `--no-restart` writes only; the next run restarts once and the next turn carries
    // it.
    let next = new_token(true);
    tokens.push(next.clone());
    put_secret(&secret, &next);
    let before = std::fs::read(&env).unwrap();
    let run = sync(&secret, &["--unit", UNIT, "--dry-run"], &tokens);
    run.expect_status(0);
    let report = quadlet_report(&run);
    assert_eq!(report["result"], "dry-run", "{report}");
    assert_eq!(report["gateway"]["action"], "would-restart", "{report}");
    assert_eq!(std::fs::read(&env).unwrap(), before, "a dry run wrote .env");
    let run = sync(&secret, &["--unit", UNIT, "--no-restart"], &tokens);
    run.expect_status(0);
    assert_eq!(quadlet_report(&run)["gateway"]["action"], "not-restarted");
    assert_eq!(user.unit_show("MainPID"), pid, "--no-restart restarted");
    assert!(std::fs::read_to_string(&env).unwrap().contains(&next));
    let run = sync(&secret, &["--unit", UNIT], &tokens);
    run.expect_status(0);
    assert_eq!(quadlet_report(&run)["gateway"]["action"], "restarted");
    assert_ne!(user.unit_show("MainPID"), pid);
    assert_turn_carries(&standin, port, &next, "after the rotation");
    let run = sync(&secret, &["--unit", UNIT], &tokens);
    run.expect_status(0);
    assert_eq!(
        quadlet_report(&run)["result"],
        "unchanged",
        "restarted twice"
    );

    // Stopped on purpose: its file is written, it stays stopped; started by its user, it is
    // proven without another restart.
    let third = new_token(false);
    tokens.push(third.clone());
    put_secret(&secret, &third);
    user.systemctl(&["stop", UNIT]);
    for round in 0..2 {
        let run = sync(&secret, &[], &tokens);
        run.expect_status(0);
        let expected = if round == 0 { "inactive" } else { "unchanged" };
        assert_eq!(quadlet_report(&run)["gateway"]["action"], expected);
        assert_eq!(
            user.unit_show("ActiveState"),
            "inactive",
            "a stopped unit was started"
        );
    }
    assert!(std::fs::read_to_string(&env)
        .unwrap()
        .contains(&format!("ANTHROPIC_OAUTH_TOKEN={third}")));
    user.systemctl(&["start", UNIT]);
    wait_ready(port);
    let pid = user.unit_show("MainPID");
    let run = sync(&secret, &[], &tokens);
    run.expect_status(0);
    let report = quadlet_report(&run);
    assert_eq!(report["gateway"]["action"], "verified", "{report}");
    assert_eq!(user.unit_show("MainPID"), pid, "restarted although proven");
    assert_turn_carries(&standin, port, &third, "after its user started it");

    // status: the Quadlet gateway in the user's report, running, proven, on AWSCURRENT.
    let status = run_tool(
        &[
            "status",
            "--user",
            USER,
            "--check-secret",
            "--secret-id",
            &secret,
            "--output",
            "json",
        ],
        &[],
        &tokens,
    );
    let envelope = status.json();
    assert_eq!(status.status, 0, "{envelope}\n{}", status.stderr);
    assert_healthy(&envelope);

    // Named, status reports that gateway alone; a unit from the Quadlet file that runs no
    // gateway is refused by sync (never a drop-in for it).
    let status = run_tool(
        &["status", "--user", USER, "--unit", UNIT, "--output", "json"],
        &[],
        &tokens,
    );
    assert_eq!(
        status.json()["gateways"].as_array().unwrap().len(),
        1,
        "{}",
        status.stdout
    );
    let run = sync(&secret, &["--unit", "sidecar.service"], &tokens);
    run.expect_status(2);
    assert!(
        run.stdout.contains("sidecar.container") || run.stderr.contains("sidecar.container"),
        "{}\n{}",
        run.stdout,
        run.stderr
    );
    assert!(!user.path(".config/systemd/user/sidecar.service.d").exists());

    // The user links `.env` to a file of root's: the run fails, root's file and the gateway are
    // untouched (the Quadlet part runs as the user).
    let victim = PathBuf::from(format!("/tmp/ocsync-quadlet-victim-{}", std::process::id()));
    std::fs::write(&victim, "root's\n").unwrap();
    std::fs::remove_file(&env).unwrap();
    std::os::unix::fs::symlink(&victim, &env).unwrap();
    let run = sync(&secret, &["--force"], &tokens);
    assert_eq!(run.status, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stdout.contains(".env"), "{}", run.stdout);
    assert!(
        std::fs::symlink_metadata(&env).unwrap().is_symlink(),
        "the link was replaced"
    );
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "root's\n");
    assert_eq!(
        user.unit_show("MainPID"),
        pid,
        "restarted for a linked .env"
    );
    std::fs::remove_file(&env).unwrap();
    let _ = std::fs::remove_file(&victim);

    // A Quadlet file that sets the variable itself (`.env` could never win): refused before
    // anything is written, and `status` names it (the unit stopped: nothing left to ask it).
    user.systemctl(&["stop", UNIT]);
    put(
        &user,
        ".config/containers/systemd/openclaw.container",
        container_file(
            &state,
            port,
            "Environment=ANTHROPIC_API_KEY=set-by-the-quadlet-file\n",
        )
        .as_bytes(),
    );
    let run = sync(&secret, &[], &tokens);
    run.expect_status(2);
    assert!(run.stdout.contains("ANTHROPIC_API_KEY"), "{}", run.stdout);
    assert!(!env.exists(), "a refused run wrote {}", env.display());
    let status = run_tool(
        &["status", "--user", USER, "--output", "json"],
        &[],
        &tokens,
    );
    assert_eq!(status.status, 1, "{}", status.stdout);
    assert!(
        status.stdout.contains("container-environment"),
        "{}",
        status.stdout
    );

    let _ = std::fs::remove_file(&elsewhere);
    for dir in [".openclaw", ".local/state", ".config"] {
        assert_no_leak_in_tree(&user.path(dir), &[], &tokens);
    }
}
