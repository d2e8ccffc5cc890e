//! The deploy kit, checked with real tools: `systemd-analyze verify` on the units as installed,
//! `cfn-lint` on the CloudFormation template, `parliament` on every IAM identity policy, and
//! `deploy/install.sh` run into a scratch root (legacy timer retired, then uninstalled).

use crate::common::*;
use serde_json::Value;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo(path: &str) -> PathBuf {
    Path::new(MANIFEST_DIR).join(path)
}

fn tool(name: &str) -> PathBuf {
    tools_dir().join("venv/bin").join(name)
}

fn install(root: &Path, args: &[&str]) -> std::process::Output {
    Command::new("bash")
        .arg(repo("deploy/install.sh"))
        .arg("--root")
        .arg(root)
        .args(args)
        .output()
        .unwrap()
}

fn scratch_install(root: &Path) -> std::process::Output {
    install(
        root,
        &[
            "--user",
            "ubuntu",
            "--home",
            "/home/ubuntu",
            "--uid",
            "1000",
            "--secret-id",
            "openclaw/anthropic",
            "--region",
            "eu-west-1",
            "--binary",
            BIN,
        ],
    )
}

#[test]
fn install_sh_installs_into_a_scratch_root_retires_the_legacy_timer_and_uninstalls() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    for legacy in [
        "etc/systemd/system/fetch-claude-token.timer",
        "usr/local/bin/fetch-claude-token.sh",
        "home/ubuntu/.config/systemd/user/fetch-claude-token.service",
    ] {
        fs::create_dir_all(r.join(legacy).parent().unwrap()).unwrap();
        fs::write(r.join(legacy), format!("legacy {legacy}\n")).unwrap();
    }
    let output = scratch_install(r);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );

    // The gateway's user lingers, so its user unit runs without a login session.
    assert!(r.join("var/lib/systemd/linger/ubuntu").exists(), "{stdout}");
    assert!(stdout.contains("lingering"), "{stdout}");

    let bin = r.join("usr/local/bin/openclaw-token-sync");
    assert_eq!(
        fs::metadata(&bin).unwrap().permissions().mode() & 0o777,
        0o755
    );
    // Man pages and completion, from the installed binary.
    assert!(r
        .join("usr/local/share/man/man1/openclaw-token-sync-sync.1")
        .is_file());
    let completion = r.join("usr/local/share/bash-completion/completions/openclaw-token-sync");
    assert!(Command::new("bash")
        .arg("-n")
        .arg(&completion)
        .status()
        .unwrap()
        .success());
    let config = r.join("etc/openclaw-token-sync/config.toml");
    assert_eq!(
        fs::metadata(&config).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let config_text = fs::read_to_string(&config).unwrap();
    assert!(
        config_text.contains("secret-id = \"openclaw/anthropic\"")
            && config_text.contains("user = \"ubuntu\"")
            && config_text.contains("region = \"eu-west-1\"")
    );
    // The installed binary reads the config it was given as far as its user: the key check
    // passes (an unknown key would be named) and the run stops only because this machine has
    // no user "ubuntu". The same file with one unknown key is refused for that key, so the check
    // can tell the two apart.
    let check = |config: &Path| {
        let output = Command::new(&bin)
            .args(["sync", "--dry-run", "--config"])
            .arg(config)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .envs(aws_env(&moto().endpoint))
            .output()
            .unwrap();
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let (code, stderr) = check(&config);
    let ubuntu_exists = Command::new("id")
        .arg("ubuntu")
        .output()
        .unwrap()
        .status
        .success();
    if ubuntu_exists {
        // (A host with that user goes on to moto, where the secret does not exist: not exit 2.)
        assert!(!stderr.contains("unknown field"), "{stderr}");
    } else {
        assert_eq!(code, Some(2), "{stderr}");
        assert!(stderr.contains("no such user: ubuntu"), "{stderr}");
    }
    let tampered = r.join("tampered.toml");
    fs::write(&tampered, format!("{config_text}secret-idd = \"typo\"\n")).unwrap();
    let (code, stderr) = check(&tampered);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("secret-idd"), "{stderr}");
    // The unit is installed as the package ships it; this host's values are in a drop-in that
    // resets ExecStart and ReadWritePaths before setting its own.
    let service =
        fs::read_to_string(r.join("etc/systemd/system/openclaw-token-sync.service")).unwrap();
    assert_eq!(
        service,
        fs::read_to_string(repo("deploy/openclaw-token-sync.service")).unwrap()
    );
    let dropin =
        fs::read_to_string(r.join("etc/systemd/system/openclaw-token-sync.service.d/install.conf"))
            .unwrap();
    let lines: Vec<&str> = dropin.lines().collect();
    let reset = lines
        .iter()
        .position(|l| *l == "ReadWritePaths=")
        .expect(&dropin);
    assert_eq!(
        lines[reset + 1],
        "ReadWritePaths=/home/ubuntu -/run/user/1000 -/var/lib/prometheus/node-exporter",
        "{dropin}"
    );
    let exec_reset = lines
        .iter()
        .position(|l| *l == "ExecStart=")
        .expect(&dropin);
    assert!(
        lines[exec_reset + 1].starts_with("ExecStart=/usr/local/bin/openclaw-token-sync sync"),
        "{dropin}"
    );
    assert!(r
        .join("etc/systemd/system/openclaw-token-sync.timer")
        .exists());

    // Legacy pieces: gone from their places, a copy kept.
    for legacy in [
        "etc/systemd/system/fetch-claude-token.timer",
        "usr/local/bin/fetch-claude-token.sh",
        "home/ubuntu/.config/systemd/user/fetch-claude-token.service",
    ] {
        assert!(!r.join(legacy).exists(), "{legacy} still in place");
    }
    let backups: Vec<_> = fs::read_dir(r.join("var/backups/openclaw-token-sync"))
        .unwrap()
        .flatten()
        .collect();
    assert_eq!(backups.len(), 1);
    let kept: Vec<String> = fs::read_dir(backups[0].path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(kept.len(), 3, "{kept:?}");
    assert!(stdout.contains("retired legacy"), "{stdout}");

    // A second install keeps the operator's config.
    fs::write(&config, "secret-id = \"edited\"\n").unwrap();
    assert!(scratch_install(r).status.success());
    assert_eq!(
        fs::read_to_string(&config).unwrap(),
        "secret-id = \"edited\"\n"
    );

    // Uninstall removes what it installed and keeps the config; --purge removes that too.
    let output = install(r, &["--uninstall"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!bin.exists());
    assert!(!completion.exists());
    assert!(!r
        .join("usr/local/share/man/man1/openclaw-token-sync.1")
        .exists());
    assert!(!r
        .join("etc/systemd/system/openclaw-token-sync.service")
        .exists());
    assert!(!r
        .join("etc/systemd/system/openclaw-token-sync.timer")
        .exists());
    assert!(!r
        .join("etc/systemd/system/openclaw-token-sync.service.d")
        .exists());
    assert!(config.exists());
    assert!(install(r, &["--uninstall", "--purge"]).status.success());
    assert!(!config.exists());

    // Hostile input is refused before anything is written.
    let fresh = tempfile::tempdir().unwrap();
    let output = install(
        fresh.path(),
        &[
            "--user",
            "ubuntu; id",
            "--home",
            "/home/x",
            "--uid",
            "1",
            "--secret-id",
            "s",
            "--binary",
            BIN,
        ],
    );
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(fs::read_dir(fresh.path()).unwrap().count(), 0);
}

#[test]
fn installed_units_pass_systemd_analyze_verify() {
    let root = tempfile::tempdir().unwrap();
    let output = scratch_install(root.path());
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // verify checks that ExecStart exists: point it at the binary the scratch install placed.
    let units = tempfile::tempdir().unwrap();
    let installed_bin = root.path().join("usr/local/bin/openclaw-token-sync");
    fs::create_dir(units.path().join("openclaw-token-sync.service.d")).unwrap();
    for name in [
        "openclaw-token-sync.service",
        "openclaw-token-sync.timer",
        "openclaw-token-sync.service.d/install.conf",
    ] {
        let text = fs::read_to_string(root.path().join("etc/systemd/system").join(name)).unwrap();
        fs::write(
            units.path().join(name),
            text.replace(
                "/usr/local/bin/openclaw-token-sync",
                installed_bin.to_str().unwrap(),
            ),
        )
        .unwrap();
    }
    // The man pages the units name are in the scratch root, not where man looks: the package
    // test verifies them installed for real.
    let output = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(units.path().join("openclaw-token-sync.service"))
        .arg(units.path().join("openclaw-token-sync.timer"))
        .output()
        .expect("systemd-analyze (Debian package systemd)");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let own: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("openclaw-token-sync"))
        .collect();
    assert!(
        own.is_empty(),
        "systemd-analyze complained about our units:\n{stderr}"
    );
}

#[test]
fn the_cloudformation_template_passes_cfn_lint_and_carries_the_document() {
    let output = Command::new(tool("cfn-lint"))
        .arg(repo("deploy/cloudformation.json"))
        .output()
        .expect("cfn-lint");
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let template: Value =
        serde_json::from_slice(&fs::read(repo("deploy/cloudformation.json")).unwrap()).unwrap();
    let document: Value =
        serde_json::from_slice(&fs::read(repo("deploy/ssm-document.json")).unwrap()).unwrap();
    let resources = &template["Resources"];
    assert_eq!(
        resources["SyncDocument"]["Properties"]["Content"], document,
        "the template must ship deploy/ssm-document.json unchanged"
    );
    let pattern = &resources["PushOnRotation"]["Properties"]["EventPattern"];
    assert_eq!(
        pattern["detail-type"],
        serde_json::json!(["Secret Label Updated"])
    );
    assert_eq!(
        pattern["detail"]["labelUpdated"],
        serde_json::json!(["AWSCURRENT"])
    );
    assert!(
        resources["TokenSecret"]["Properties"]
            .get("SecretString")
            .is_none(),
        "no token in the template"
    );
    assert_eq!(
        template["Parameters"]["AssociationRateMinutes"]["MinValue"],
        30
    );
    // The push goes through the rollout runbook, whose run of the sync document has a brake.
    let runbook = &resources["RolloutRunbook"]["Properties"];
    assert_eq!(runbook["DocumentType"], "Automation");
    let step = &runbook["Content"]["mainSteps"][0];
    assert_eq!(step["action"], "aws:runCommand");
    assert_eq!(step["inputs"]["MaxErrors"], "{{ MaxErrors }}");
    assert_eq!(step["inputs"]["MaxConcurrency"], "{{ MaxConcurrency }}");
    assert_eq!(
        step["inputs"]["Parameters"]["versionStage"],
        serde_json::json!(["{{ VersionStage }}"])
    );
    assert_eq!(template["Parameters"]["RolloutMaxErrors"]["Default"], "0");
    assert_eq!(
        runbook["Content"]["parameters"]["MaxErrors"]["default"], "0",
        "the first failure stops a rollout"
    );
    assert_eq!(step["inputs"]["Targets"][0]["Key"], "tag:{{ TagKey }}");
    // A document update must not need a replacement (the documents have names of their own).
    for document in ["SyncDocument", "RolloutRunbook"] {
        assert_eq!(
            resources[document]["Properties"]["UpdateMethod"], "NewVersion",
            "{document}"
        );
    }
    assert_eq!(
        template["Parameters"]["RolloutMaxConcurrency"]["Default"],
        "10%"
    );
    for (rule, label, stage) in [
        ("PushOnRotation", "AWSCURRENT", None),
        ("PushCanary", "CANARY", Some("CANARY")),
    ] {
        let properties = &resources[rule]["Properties"];
        assert_eq!(
            properties["EventPattern"]["detail"]["labelUpdated"],
            serde_json::json!([label])
        );
        let target = &properties["Targets"][0];
        assert!(
            target["Arn"]["Fn::Sub"]
                .as_str()
                .unwrap()
                .contains("automation-definition/${RolloutRunbook}"),
            "{rule}: {target}"
        );
        let input = target["Input"]["Fn::Sub"][0].as_str().unwrap();
        assert!(input.contains("${RolloutMaxErrors}"), "{rule}: {input}");
        match stage {
            // The fleet push leaves each instance its own stage (a canary keeps CANARY).
            None => assert!(!input.contains("VersionStage"), "{rule}: {input}"),
            Some(stage) => assert!(
                input.contains(&format!("\"VersionStage\":[\"{stage}\"]")),
                "{rule}: {input}"
            ),
        }
    }
    // No direct Run Command push is left: every rule goes through the runbook.
    assert!(resources
        .as_object()
        .unwrap()
        .values()
        .filter(|r| r["Type"] == "AWS::Events::Rule")
        .all(|r| r["Properties"]["Targets"][0]
            .get("RunCommandParameters")
            .is_none()));
}

/// parliament's action table lists only `document` resources for ssm:SendCommand, while AWS also
/// authorises it on instances; our tag-scoped instance statement is the least-privilege form.
fn known_false_positive(finding: &Value) -> bool {
    finding["issue"] == "RESOURCE_MISMATCH"
        && finding["detail"].to_string().contains("ssm:SendCommand")
}

#[test]
fn every_iam_identity_policy_passes_parliament() {
    let mut policies = vec![repo("iam-policy.json")];
    for entry in fs::read_dir(repo("deploy/iam")).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        // Trust relationships are resource policies, not identity policies; parliament is for the latter.
        if name.ends_with(".json") && !name.contains("trust") {
            policies.push(entry.path());
        }
    }
    assert!(policies.len() >= 4, "{policies:?}");
    for policy in policies {
        let text = fs::read_to_string(&policy).unwrap();
        let document: Value = serde_json::from_str(&text).unwrap();
        let output = Command::new(tool("parliament"))
            .args(["--json", "--string", &text])
            .stdin(std::process::Stdio::null())
            .output()
            .expect("parliament");
        let findings: Vec<Value> = String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                serde_json::from_str(l).unwrap_or_else(|e| panic!("{}: {e}: {l}", policy.display()))
            })
            .collect();
        // parliament exits 1 exactly when it reports findings; anything else (a crash, a
        // missing module) would otherwise pass as "no findings".
        assert_eq!(
            output.status.code(),
            Some(i32::from(!findings.is_empty())),
            "{}: parliament exited {:?}: {}",
            policy.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        let real: Vec<&Value> = findings
            .iter()
            .filter(|f| !known_false_positive(f))
            .collect();
        assert!(real.is_empty(), "{}: {real:#?}", policy.display());
        // Least privilege: no wildcard actions, and "*" resources only for actions without resource types.
        for statement in document["Statement"].as_array().unwrap() {
            let actions = statement["Action"].to_string();
            assert!(
                !actions.contains(":*") && !actions.contains("\"*\""),
                "{}: wildcard action",
                policy.display()
            );
            if statement["Resource"] == "*" {
                assert!(
                    actions.contains("ssm:List") || actions.contains("ssm:GetCommandInvocation"),
                    "{}: * resource for {actions}",
                    policy.display()
                );
            }
        }
    }
}

/// `scripts/ensure-python-venv` installs python3-venv when `python3 -m venv` fails. A stand-in
/// `python3` (whose venv module is "missing" until the package is "installed") and a recording
/// `apt-get`: removing the real package from the test machine is not an option.
#[test]
fn a_python_without_venv_gets_python3_venv_installed() {
    if !require_root("venv_fallback") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    fs::create_dir(&bin).unwrap();
    let installed = dir.path().join("installed");
    let apt_log = dir.path().join("apt.log");
    let real_python = String::from_utf8(
        Command::new("sh")
            .args(["-c", "command -v python3"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    fs::write(
        bin.join("python3"),
        format!(
            "#!/bin/sh\nif [ \"$1 $2\" = \"-m venv\" ] && [ ! -e '{}' ]; then echo 'ensurepip is not available' >&2; exit 1; fi\nexec {} \"$@\"\n",
            installed.display(),
            real_python.trim()
        ),
    )
    .unwrap();
    fs::write(
        dir.path().join("apt-get"),
        format!(
            "#!/bin/sh\necho \"$*\" >> '{}'\ncase \"$*\" in *install*) touch '{}' ;; esac\n",
            apt_log.display(),
            installed.display()
        ),
    )
    .unwrap();
    for script in [bin.join("python3"), dir.path().join("apt-get")] {
        fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    }
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let run = |apt: &Path| {
        Command::new("bash")
            .arg(repo("scripts/ensure-python-venv"))
            .env("PATH", &path)
            .env("OCSYNC_APT_GET", apt)
            .output()
            .unwrap()
    };
    let output = run(&dir.path().join("apt-get"));
    assert!(output.status.success(), "{output:?}");
    let log = fs::read_to_string(&apt_log).unwrap();
    assert!(
        log.contains("install") && log.contains("python3-venv"),
        "{log}"
    );
    // Working already: nothing is installed.
    fs::remove_file(&apt_log).unwrap();
    assert!(run(&dir.path().join("apt-get")).status.success());
    assert!(!apt_log.exists());
    // Still broken after the install: a clear failure.
    fs::remove_file(&installed).unwrap();
    let output = run(Path::new("/bin/true"));
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("still does not work"));
}

/// The test harness picks the user manager that fits the host: the real user@UID.service with
/// linger where PID 1 is systemd, a hand-started `systemd --user` elsewhere (this machine).
#[test]
fn the_harness_picks_the_user_manager_mode_of_the_host() {
    let script = repo("tests/support/user-manager.sh");
    let mode = |env: &[(&str, &Path)]| {
        let output = Command::new("bash")
            .arg(&script)
            .arg("mode")
            .env_remove("OCSYNC_MANAGER_MODE")
            .envs(env.iter().map(|(k, v)| (*k, *v)))
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        String::from_utf8(output.stdout).unwrap().trim().to_owned()
    };
    // This host, as it is.
    let pid1 = fs::read_to_string("/proc/1/comm").unwrap_or_default();
    let booted = pid1.trim() == "systemd" && Path::new("/run/systemd/system").is_dir();
    assert_eq!(mode(&[]), if booted { "linger" } else { "standalone" });
    // A systemd host and a container, described by a /proc and a /run/systemd/system of our own.
    let fake = tempfile::tempdir().unwrap();
    let proc_dir = fake.path().join("proc");
    fs::create_dir_all(proc_dir.join("1")).unwrap();
    let run_systemd = fake.path().join("run-systemd-system");
    fs::create_dir(&run_systemd).unwrap();
    fs::write(proc_dir.join("1/comm"), "systemd\n").unwrap();
    let host = [
        ("OCSYNC_PROC", proc_dir.as_path()),
        ("OCSYNC_RUN_SYSTEMD", run_systemd.as_path()),
    ];
    assert_eq!(mode(&host), "linger");
    fs::write(proc_dir.join("1/comm"), "tini\n").unwrap();
    assert_eq!(mode(&host), "standalone");
    fs::write(proc_dir.join("1/comm"), "systemd\n").unwrap();
    let absent = fake.path().join("absent");
    let not_booted = [
        ("OCSYNC_PROC", proc_dir.as_path()),
        ("OCSYNC_RUN_SYSTEMD", absent.as_path()),
    ];
    assert_eq!(mode(&not_booted), "standalone");
}

/// Runs `deploy/install.sh` into an empty scratch root with valid values, `extra` appended (a
/// later flag overrides an earlier one), from `dir`.
fn install_with(root: &Path, dir: &Path, extra: &[&str]) -> std::process::Output {
    Command::new("bash")
        .arg(repo("deploy/install.sh"))
        .arg("--root")
        .arg(root)
        .args([
            "--user",
            "ubuntu",
            "--home",
            "/home/ubuntu",
            "--uid",
            "1000",
            "--secret-id",
            "openclaw/anthropic",
            "--region",
            "eu-west-1",
            "--binary",
            BIN,
        ])
        .args(extra)
        .current_dir(dir)
        .output()
        .unwrap()
}

/// A hostile value is refused with exit 2 by a message that names the flag, on one line with no
/// control character of the value echoed back, and before anything is written: the scratch root
/// stays empty (no config.toml, no unit, no drop-in, no manifest).
fn assert_refused(flag: &str, extra: &[&str]) {
    assert_refused_from(flag, extra, Path::new(MANIFEST_DIR));
}

fn assert_refused_from(flag: &str, extra: &[&str], dir: &Path) {
    let root = tempfile::tempdir().unwrap();
    let output = install_with(root.path(), dir, extra);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{extra:?}: {stderr}");
    assert!(
        stderr.starts_with(&format!("install.sh: {flag}: ")),
        "{extra:?}: {stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{extra:?}: {stderr:?}");
    assert!(
        stderr
            .trim_end_matches('\n')
            .chars()
            .all(|c| !c.is_control()),
        "{extra:?}: control character echoed: {stderr:?}"
    );
    for written in [
        "etc/openclaw-token-sync/config.toml",
        "etc/systemd/system/openclaw-token-sync.service",
        "etc/systemd/system/openclaw-token-sync.service.d/install.conf",
    ] {
        assert!(!root.path().join(written).exists(), "{extra:?}: {written}");
    }
    let left: Vec<_> = fs::read_dir(root.path()).unwrap().flatten().collect();
    assert!(left.is_empty(), "{extra:?}: {left:?}");
}

/// Issue 21, item 7: a line break in `--unit` wrote a key of the attacker's into config.toml.
#[test]
fn install_sh_refuses_a_line_break_in_unit() {
    let root = tempfile::tempdir().unwrap();
    let output = install_with(
        root.path(),
        Path::new(MANIFEST_DIR),
        &["--unit", "openclaw-gateway\nsecret-id = \"evil\""],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("line break"), "{stderr}");
    assert!(!stderr.contains("evil"), "the value is echoed: {stderr}");
    assert_refused(
        "--unit",
        &["--unit", "openclaw-gateway\nsecret-id = \"evil\""],
    );
    assert_refused("--unit", &["--unit", "openclaw-gateway\r"]);
    // Not a service unit, a template without its instance, an option in disguise.
    for unit in ["openclaw.timer", "openclaw-gateway@.service", "-x", "a/b"] {
        assert_refused("--unit", &["--unit", unit]);
    }
}

#[test]
fn install_sh_refuses_a_quote_in_secret_id() {
    assert_refused("--secret-id", &["--secret-id", "openclaw/anthropic\"x"]);
    assert_refused("--secret-id", &["--secret-id", "openclaw'x"]);
    assert_refused("--secret-id", &["--secret-id", "a\\\"b"]);
}

#[test]
fn install_sh_refuses_a_control_character_in_version_stage() {
    for stage in ["CAN\u{1b}[31mARY", "CAN\tARY", "CANARY\u{7f}"] {
        assert_refused("--version-stage", &["--version-stage", stage]);
    }
    assert_refused("--version-stage", &["--version-stage", &"A".repeat(257)]);
}

#[test]
fn install_sh_refuses_a_bad_region() {
    for region in [
        "eu-west",
        "EU-WEST-1",
        "eu-west-1\"",
        "eu-west-1 x",
        "eu-west-1\n",
    ] {
        assert_refused("--region", &["--region", region]);
    }
}

#[test]
fn install_sh_refuses_a_relative_binary() {
    // The relative path names the real binary from where the script runs: it is refused for
    // being relative, not for being absent.
    let bin = Path::new(BIN);
    let dir = bin.parent().unwrap();
    let name = bin.file_name().unwrap().to_str().unwrap();
    assert!(dir.join(name).is_file());
    assert_refused_from("--binary", &["--binary", name], dir);
    assert_refused_from("--binary", &["--binary", &format!("./{name}")], dir);
    assert_refused(
        "--binary",
        &["--binary", "/nonexistent/openclaw-token-sync"],
    );
    assert_refused("--binary", &["--binary", "/tmp"]);
}

/// The other values the script writes: the drop-in's home and uid, and the user.
#[test]
fn install_sh_refuses_hostile_home_uid_and_user() {
    for home in [
        "home/ubuntu",
        "/home/ubuntu /",
        "/home/ubuntu\n[Service]",
        "/home/%u",
        "/",
        "/home/../etc",
    ] {
        assert_refused("--home", &["--home", home]);
    }
    assert_refused("--uid", &["--uid", "1000\nExecStartPre=/bin/sh"]);
    assert_refused("--uid", &["--uid", "-1"]);
    for user in ["ubuntu\nx = 1", "ubuntu\"", "-ubuntu", "..", "1000"] {
        assert_refused("--user", &["--user", user]);
    }
    // A missing value is named too (not a shell error).
    assert_refused("--unit", &["--unit"]);
}

/// Valid values of every flag still install, and config.toml holds exactly them.
#[test]
fn install_sh_writes_valid_values_of_every_flag() {
    let root = tempfile::tempdir().unwrap();
    let secret =
        "arn:aws:secretsmanager:us-gov-west-1:123456789012:secret:prod/anthropic+x=y@z.AbCdEf";
    let output = install_with(
        root.path(),
        Path::new(MANIFEST_DIR),
        &[
            "--secret-id",
            secret,
            "--region",
            "us-gov-west-1",
            "--unit",
            "openclaw-gateway@work.service",
            "--version-stage",
            "CANARY_2.x",
            "--user",
            "deploy.user_1",
            "--home",
            "/srv/open-claw/deploy.user_1",
            "--uid",
            "4242",
        ],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let config: toml::Table =
        fs::read_to_string(root.path().join("etc/openclaw-token-sync/config.toml"))
            .unwrap()
            .parse()
            .unwrap();
    let expected: toml::Table = [
        ("secret-id", secret),
        ("user", "deploy.user_1"),
        ("unit", "openclaw-gateway@work.service"),
        ("region", "us-gov-west-1"),
        ("version-stage", "CANARY_2.x"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), toml::Value::String(v.to_owned())))
    .collect();
    assert_eq!(config, expected);
    let dropin = fs::read_to_string(
        root.path()
            .join("etc/systemd/system/openclaw-token-sync.service.d/install.conf"),
    )
    .unwrap();
    assert!(
        dropin.contains("\nReadWritePaths=/srv/open-claw/deploy.user_1 -/run/user/4242 "),
        "{dropin}"
    );
    // A bare unit name is accepted too (the binary adds .service).
    let bare = tempfile::tempdir().unwrap();
    let output = install_with(
        bare.path(),
        Path::new(MANIFEST_DIR),
        &["--unit", "openclaw-gateway-work"],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // The whole manifest is written: nothing is left half-recorded.
    assert!(!root
        .path()
        .join("var/lib/openclaw-token-sync/installed-files.new")
        .exists());
}

/// The value rules, verbatim the same in both install scripts.
fn value_rules(script: &str) -> String {
    let text = fs::read_to_string(repo(script)).unwrap();
    let start = text.find("# --- value rules").expect(script);
    let end = text.find("# --- end of the value rules").expect(script);
    text[start..end].to_owned()
}

#[test]
fn the_distributor_script_applies_the_rules_of_install_sh() {
    assert_eq!(
        value_rules("deploy/distributor/install.sh"),
        value_rules("deploy/install.sh")
    );
    // Run alone in a directory without a .deb: past its checks, it stops at the missing .deb
    // (exit 1, nothing installed), so what it refuses is told apart from what it accepts.
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("install.sh");
    fs::copy(repo("deploy/distributor/install.sh"), &script).unwrap();
    let run = |env: &[(&str, &str)]| {
        let output = Command::new("sh")
            .arg(&script)
            .env_remove("SSM_SECRET_ID")
            .env_remove("SSM_USER")
            .env_remove("SSM_REGION")
            .env_remove("SSM_VERSION_STAGE")
            .env_remove("SSM_ENABLE_TIMER")
            .envs(env.iter().copied())
            .output()
            .unwrap();
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let accepted = [
        (
            "SSM_SECRET_ID",
            "arn:aws:secretsmanager:eu-west-1:123456789012:secret:a/b-Cd",
        ),
        ("SSM_USER", "deploy.user_1"),
        ("SSM_REGION", "us-gov-west-1"),
        ("SSM_VERSION_STAGE", "CANARY"),
    ];
    let (code, stderr) = run(&accepted);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("no openclaw-token-sync_*.deb"), "{stderr}");
    for (key, value) in [
        ("SSM_SECRET_ID", "s\"x"),
        ("SSM_SECRET_ID", "s\rx"),
        ("SSM_USER", "ubuntu\nunit = \"evil\""),
        ("SSM_USER", "x; id"),
        ("SSM_REGION", "eu-west"),
        ("SSM_VERSION_STAGE", "CAN\u{1b}ARY"),
    ] {
        let (code, stderr) = run(&[(key, value)]);
        assert_eq!(code, Some(1), "{key}={value:?}: {stderr}");
        assert!(
            stderr.starts_with(&format!("openclaw-token-sync distributor: {key}: ")),
            "{key}={value:?}: {stderr}"
        );
        assert!(
            stderr
                .trim_end_matches('\n')
                .chars()
                .all(|c| !c.is_control()),
            "{key}={value:?}: {stderr:?}"
        );
        assert!(!stderr.contains(".deb"), "{key}={value:?}: {stderr}");
    }
}
