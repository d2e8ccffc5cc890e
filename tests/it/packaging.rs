//! How the tool is shipped, checked with the real tools: the Debian package built by cargo-deb
//! (`scripts/build-deb`) inspected with `dpkg-deb`, installed for real with `dpkg` through the
//! SSM Distributor package's own install script, its units checked by `systemd-analyze
//! verify`, then removed and purged; the Distributor manifest validated against the
//! documented schema (jsonschema from PyPI); completions parsed by `bash -n`; man pages
//! rendered by groff and `man -l`; `--version` naming the commit.

use crate::common::*;
use serde_json::Value;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo(path: &str) -> PathBuf {
    Path::new(MANIFEST_DIR).join(path)
}

fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"))
}

fn ok(output: Output, what: &str) -> String {
    assert!(
        output.status.success(),
        "{what}: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn bash_completion_parses_and_completes_the_commands() {
    let script = ok(run(BIN, &["completions", "bash"]), "completions bash");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("openclaw-token-sync.bash");
    fs::write(&path, &script).unwrap();
    ok(run("bash", &["-n", path.to_str().unwrap()]), "bash -n");
    // Loaded into a shell, it completes `openclaw-token-sync sy` and the flags of `sync`.
    let probe = format!(
        r#"source {path}
fn=$(complete -p openclaw-token-sync | sed -E 's/.*-F ([^ ]+).*/\1/')
COMP_WORDS=(openclaw-token-sync sy); COMP_CWORD=1; COMP_LINE="openclaw-token-sync sy"; COMP_POINT=${{#COMP_LINE}}
"$fn" openclaw-token-sync sy openclaw-token-sync; echo "commands: ${{COMPREPLY[*]}}"
COMP_WORDS=(openclaw-token-sync sync --metrics); COMP_CWORD=2; COMP_LINE="openclaw-token-sync sync --metrics"; COMP_POINT=${{#COMP_LINE}}
"$fn" openclaw-token-sync --metrics sync; echo "flags: ${{COMPREPLY[*]}}"
COMP_WORDS=(openclaw-token-sync status --output ""); COMP_CWORD=3; COMP_LINE="openclaw-token-sync status --output "; COMP_POINT=${{#COMP_LINE}}
"$fn" openclaw-token-sync "" --output; echo "values: ${{COMPREPLY[*]}}"
COMP_WORDS=(openclaw-token-sync sync --user roo); COMP_CWORD=3; COMP_LINE="openclaw-token-sync sync --user roo"; COMP_POINT=${{#COMP_LINE}}
"$fn" openclaw-token-sync roo --user; echo "users: ${{COMPREPLY[*]}}""#,
        path = path.display()
    );
    let out = ok(run("bash", &["-c", &probe]), "completion in bash");
    assert!(out.contains("commands: sync"), "{out}");
    assert!(out.contains("flags: --metrics-file"), "{out}");
    assert!(out.contains("values: text json"), "{out}");
    // --user completes user names, not file names.
    assert!(out.contains("users: root"), "{out}");
    // An unknown shell is a usage error.
    assert_eq!(run(BIN, &["completions", "tcsh"]).status.code(), Some(2));
}

#[test]
fn zsh_and_fish_completions_parse_and_fish_completes_the_commands() {
    let dir = tempfile::tempdir().unwrap();
    let zsh = dir.path().join("_openclaw-token-sync");
    fs::write(
        &zsh,
        ok(run(BIN, &["completions", "zsh"]), "completions zsh"),
    )
    .unwrap();
    let fish = dir.path().join("openclaw-token-sync.fish");
    fs::write(
        &fish,
        ok(run(BIN, &["completions", "fish"]), "completions fish"),
    )
    .unwrap();
    for (shell, check) in [("zsh", &["-n"][..]), ("fish", &["--no-execute"][..])] {
        if Command::new(shell).arg("--version").output().is_err() {
            skip(&format!(
                "completions_zsh_fish: {shell} is not installed (scripts/install-test-deps installs it)"
            ));
            return;
        }
        let script = if shell == "zsh" { &zsh } else { &fish };
        let mut args: Vec<&str> = check.to_vec();
        args.push(script.to_str().unwrap());
        ok(run(shell, &args), shell);
    }
    // fish completes for real: a command, a subcommand's flag, and a flag's values.
    let probe = format!(
        "source {}; complete -C 'openclaw-token-sync sy'; echo ---; complete -C 'openclaw-token-sync sync --metr'; echo ---; complete -C 'openclaw-token-sync status --output '",
        fish.display()
    );
    let out = ok(run("fish", &["-c", &probe]), "fish completion");
    let parts: Vec<&str> = out.split("---\n").collect();
    assert_eq!(parts.len(), 3, "{out}");
    assert!(parts[0].starts_with("sync\t"), "{out}");
    assert!(parts[1].starts_with("--metrics-file\t"), "{out}");
    let mut values: Vec<&str> = parts[2].lines().collect();
    values.sort();
    assert_eq!(values, ["json", "text"], "{out}");
}

#[test]
fn man_pages_render_with_groff_and_man() {
    let page = run(BIN, &["man"]);
    let roff = ok(page, "man");
    let dir = tempfile::tempdir().unwrap();
    let main = dir.path().join("main.1");
    fs::write(&main, &roff).unwrap();
    let rendered = Command::new("groff")
        .args(["-man", "-Tutf8", "-ww", "-z"])
        .arg(&main)
        .output()
        .expect("groff (Debian package groff-base)");
    assert!(
        rendered.status.success() && rendered.stderr.is_empty(),
        "groff warnings: {}",
        String::from_utf8_lossy(&rendered.stderr)
    );
    let pages = dir.path().join("pages");
    fs::create_dir(&pages).unwrap();
    ok(
        run(BIN, &["man", "--out-dir", pages.to_str().unwrap()]),
        "man --out-dir",
    );
    let mut names: Vec<String> = fs::read_dir(&pages)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let expected: Vec<String> = [
        "openclaw-token-sync-completions.1",
        "openclaw-token-sync-man.1",
        "openclaw-token-sync-promote.1",
        "openclaw-token-sync-put.1",
        "openclaw-token-sync-rollback.1",
        "openclaw-token-sync-status.1",
        "openclaw-token-sync-sync.1",
        "openclaw-token-sync-trigger.1",
        "openclaw-token-sync.1",
    ]
    .map(String::from)
    .to_vec();
    assert_eq!(names, expected);
    let text = |name: &str| {
        let out = Command::new("man")
            .arg("-l")
            .arg(pages.join(name))
            .env("MANWIDTH", "100")
            .env_remove("MAN_KEEP_FORMATTING")
            .env("MANPAGER", "cat")
            .output()
            .expect("man (Debian package man-db)");
        ok(out, name)
    };
    let main_text = text("openclaw-token-sync.1");
    for section in ["SYNOPSIS", "EXIT STATUS", "FILES", "ENVIRONMENT"] {
        assert!(main_text.contains(section), "{section} in\n{main_text}");
    }
    // The IAM policy messages point at is on the page, as JSON.
    assert!(
        main_text.contains("\"Action\": \"secretsmanager:GetSecretValue\""),
        "{main_text}"
    );
    // Every page it names exists: no page for `help`.
    assert!(
        !main_text.contains("openclaw-token-sync-help"),
        "{main_text}"
    );
    let sync_text = text("openclaw-token-sync-sync.1");
    for flag in ["--metrics-file", "--secret-id", "--log-format", "--dry-run"] {
        assert!(sync_text.contains(flag), "{flag} in\n{sync_text}");
    }
    for name in &expected[..expected.len() - 1] {
        let page = text(name);
        for section in ["EXIT STATUS", "EXAMPLES"] {
            assert!(page.contains(section), "{section} in {name}:\n{page}");
        }
    }
    assert!(text("openclaw-token-sync-status.1").contains("3 warnings only"));
}

#[test]
fn mistyped_commands_and_flags_get_the_likely_one() {
    let out = run(BIN, &["snyc"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("a similar subcommand exists: 'sync'"));
    let out = run(BIN, &["sync", "--dryrun"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("a similar argument exists: '--dry-run'"));
    // Help is wrapped to the terminal's width (COLUMNS where there is no terminal).
    let out = Command::new(BIN)
        .args(["sync", "--help"])
        .env("COLUMNS", "80")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.lines().all(|l| l.chars().count() <= 80), "{help}");
    // promote's own flags come first; the fleet flags only under their --trigger heading.
    let out = run(BIN, &["promote", "--help"]);
    let help = String::from_utf8_lossy(&out.stdout);
    let heading = help.find("With --trigger").expect("a --trigger heading");
    assert!(help.find("--instance-ids").unwrap() > heading, "{help}");
    assert!(help.find("--label").unwrap() < heading, "{help}");
    // --timeout is an API call's deadline in every command; trigger's wait is --wait-timeout.
    for command in ["sync", "status", "trigger", "put", "promote", "rollback"] {
        let out = run(BIN, &[command, "--help"]);
        let help = String::from_utf8_lossy(&out.stdout);
        let at = help
            .find("--timeout <SECONDS>")
            .unwrap_or_else(|| panic!("{command}: {help}"));
        let line = &help[at..help[at..].find("\n\n").map_or(help.len(), |end| at + end)];
        assert!(
            line.contains("Deadline in seconds for"),
            "{command}: {line}"
        );
    }
    let out = run(BIN, &["trigger", "--help"]);
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("--wait-timeout <SECONDS>"), "{help}");
    // `help` takes --help like every command, and names a command's help.
    let out = run(BIN, &["help", "--help"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Usage: openclaw-token-sync help"));
    let out = run(BIN, &["help", "sync"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Usage: openclaw-token-sync sync"));
    let out = run(BIN, &["help", "snyc"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("the commands are sync, status"));
}

#[test]
fn version_names_the_commit_it_was_built_from() {
    let version = ok(run(BIN, &["--version"]), "--version");
    let head = Command::new("git")
        .args(["-C", MANIFEST_DIR, "rev-parse", "--short=12", "HEAD"])
        .output();
    let toplevel = Command::new("git")
        .args(["-C", MANIFEST_DIR, "rev-parse", "--show-toplevel"])
        .output();
    // In a checkout of this crate, git must answer: a build that lost the commit fails here.
    if Path::new(MANIFEST_DIR).join(".git").exists() {
        let head = head.as_ref().expect("git");
        assert!(
            head.status.success(),
            "git rev-parse failed: {}",
            String::from_utf8_lossy(&head.stderr)
        );
        assert!(version.contains(" (commit "), "{version}");
    }
    let expected = match (head, toplevel) {
        (Ok(head), Ok(top))
            if head.status.success()
                && Path::new(String::from_utf8_lossy(&top.stdout).trim())
                    .canonicalize()
                    .ok()
                    == Path::new(MANIFEST_DIR).canonicalize().ok() =>
        {
            format!(
                "openclaw-token-sync {} (commit {})\n",
                env!("CARGO_PKG_VERSION"),
                String::from_utf8_lossy(&head.stdout).trim()
            )
        }
        _ => format!("openclaw-token-sync {}\n", env!("CARGO_PKG_VERSION")),
    };
    assert_eq!(version, expected);
}

fn build_deb() -> PathBuf {
    let out = ok(
        run(
            repo("scripts/build-deb").to_str().unwrap(),
            &["--binary", BIN],
        ),
        "scripts/build-deb",
    );
    PathBuf::from(
        out.lines()
            .last()
            .expect("build-deb prints the package")
            .trim(),
    )
}

fn dpkg_status(package: &str) -> String {
    let out = run("dpkg-query", &["-W", "-f=${Status}", package]);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Every file the manifest names is listed with the SHA-256 of the zip beside it, and the
/// manifest passes the documented schema.
fn check_distributor(dir: &Path) -> PathBuf {
    let manifest_path = dir.join("manifest.json");
    let manifest: Value = serde_json::from_slice(&fs::read(&manifest_path).unwrap()).unwrap();
    let validate = Command::new(tools_dir().join("venv/bin/python"))
        .args([
            "-c",
            "import json, sys, jsonschema; jsonschema.validate(json.load(open(sys.argv[1])), json.load(open(sys.argv[2])))",
        ])
        .arg(&manifest_path)
        .arg(fixture("distributor-manifest.schema.json"))
        .output()
        .unwrap();
    ok(validate, "manifest against the documented schema");
    let files = manifest["files"].as_object().unwrap();
    let mut zips = Vec::new();
    for (platform, versions) in manifest["packages"].as_object().unwrap() {
        for (_, archs) in versions.as_object().unwrap() {
            for (arch, entry) in archs.as_object().unwrap() {
                let file = entry["file"].as_str().unwrap();
                let sha = files[file]["checksums"]["sha256"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{platform}/{arch}: {file} is not under files"));
                let actual = ok(
                    run("sha256sum", &[dir.join(file).to_str().unwrap()]),
                    "sha256sum",
                );
                assert_eq!(actual.split_whitespace().next(), Some(sha), "{file}");
                zips.push(dir.join(file));
            }
        }
    }
    assert!(
        manifest["packages"]["ubuntu"]["_any"]["x86_64"].is_object()
            || cfg!(not(target_arch = "x86_64"))
    );
    zips.sort();
    zips.dedup();
    assert_eq!(zips.len(), 1, "one architecture built here: {zips:?}");
    zips.remove(0)
}

#[test]
fn the_debian_package_installs_through_distributor_verifies_and_purges() {
    if !require_root("debian_package_install") {
        return;
    }
    if !Command::new("cargo")
        .args(["deb", "--version"])
        .output()
        .is_ok_and(|o| o.status.success())
    {
        skip("debian_package_install: cargo-deb is not installed (scripts/install-test-deps installs it)");
        return;
    }
    assert!(
        !dpkg_status("openclaw-token-sync").contains("installed"),
        "openclaw-token-sync is already installed on this machine; this test installs and purges it"
    );
    let deb = build_deb();

    // What the package is.
    let field = |name: &str| ok(run("dpkg-deb", &["-f", deb.to_str().unwrap(), name]), name);
    assert_eq!(field("Package").trim(), "openclaw-token-sync");
    assert!(field("Depends").contains("systemd"), "{}", field("Depends"));
    let control = tempfile::tempdir().unwrap();
    ok(
        run(
            "dpkg-deb",
            &[
                "-e",
                deb.to_str().unwrap(),
                control.path().to_str().unwrap(),
            ],
        ),
        "dpkg-deb -e",
    );
    assert_eq!(
        fs::read_to_string(control.path().join("conffiles")).unwrap(),
        "/etc/openclaw-token-sync/config.toml\n"
    );
    for script in ["postinst", "prerm", "postrm"] {
        let path = control.path().join(script);
        ok(run("sh", &["-n", path.to_str().unwrap()]), script);
    }
    let listing = ok(
        run("dpkg-deb", &["-c", deb.to_str().unwrap()]),
        "dpkg-deb -c",
    );
    let contents = tempfile::tempdir().unwrap();
    ok(
        run(
            "dpkg-deb",
            &[
                "-x",
                deb.to_str().unwrap(),
                contents.path().to_str().unwrap(),
            ],
        ),
        "dpkg-deb -x",
    );
    for path in [
        "usr/bin/openclaw-token-sync",
        "usr/lib/systemd/system/openclaw-token-sync.service",
        "usr/lib/systemd/system/openclaw-token-sync.timer",
        "etc/openclaw-token-sync/config.toml",
        "usr/share/bash-completion/completions/openclaw-token-sync",
        "usr/share/zsh/vendor-completions/_openclaw-token-sync",
        "usr/share/fish/vendor_completions.d/openclaw-token-sync.fish",
        "usr/share/man/man1/openclaw-token-sync.1.gz",
        "usr/share/man/man1/openclaw-token-sync-sync.1.gz",
        // Messages name it: the permissions the instance role needs.
        "usr/share/doc/openclaw-token-sync/iam-policy.json",
        // The JSON Schema of --output json.
        "usr/share/doc/openclaw-token-sync/output.schema.json",
    ] {
        assert!(contents.path().join(path).is_file(), "{path} in\n{listing}");
    }
    assert_eq!(
        fs::metadata(contents.path().join("usr/bin/openclaw-token-sync"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o755
    );
    // The units are shipped exactly as they are in deploy/: nothing is rendered per host.
    for unit in ["openclaw-token-sync.service", "openclaw-token-sync.timer"] {
        assert_eq!(
            fs::read(contents.path().join("usr/lib/systemd/system").join(unit)).unwrap(),
            fs::read(repo("deploy").join(unit)).unwrap(),
            "{unit}"
        );
    }

    // The Distributor package around it.
    let dist = tempfile::tempdir().unwrap();
    ok(
        run(
            repo("scripts/build-distributor").to_str().unwrap(),
            &[
                deb.to_str().unwrap(),
                "--out",
                dist.path().to_str().unwrap(),
            ],
        ),
        "scripts/build-distributor",
    );
    let zip = check_distributor(dist.path());
    let unpacked = tempfile::tempdir().unwrap();
    ok(
        run(
            "unzip",
            &[
                "-q",
                zip.to_str().unwrap(),
                "-d",
                unpacked.path().to_str().unwrap(),
            ],
        ),
        "unzip",
    );
    let distributor = |script: &str, env: &[(&str, &str)]| {
        let mut command = Command::new("sh");
        command.arg(unpacked.path().join(script));
        command.current_dir(unpacked.path());
        for (k, v) in env {
            command.env(k, v);
        }
        command.output().unwrap()
    };

    // Installed as AWS-ConfigureAWSPackage does it, without arguments: nothing configured,
    // nothing enabled.
    let wants_links = || {
        let mut found = Vec::new();
        if let Ok(dirs) = fs::read_dir("/etc/systemd/system") {
            for dir in dirs.flatten() {
                if let Ok(entries) = fs::read_dir(dir.path()) {
                    for entry in entries.flatten() {
                        if entry
                            .file_name()
                            .to_string_lossy()
                            .starts_with("openclaw-token-sync")
                        {
                            found.push(entry.path());
                        }
                    }
                }
            }
        }
        found
    };
    let result = std::panic::catch_unwind(|| {
        ok(distributor("install.sh", &[]), "distributor install.sh");
        assert!(dpkg_status("openclaw-token-sync").contains("install ok installed"));
        assert_eq!(
            wants_links(),
            Vec::<PathBuf>::new(),
            "the package enabled something"
        );
        let installed = ok(
            run("/usr/bin/openclaw-token-sync", &["--version"]),
            "installed --version",
        );
        assert_eq!(installed, ok(run(BIN, &["--version"]), "--version"));
        // The example config is a valid config that names no secret: a clear exit 2.
        let unconfigured = Command::new("/usr/bin/openclaw-token-sync")
            .args(["sync", "--dry-run"])
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&unconfigured.stderr);
        assert_eq!(unconfigured.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains("secret") && !stderr.contains("invalid config file"),
            "{stderr}"
        );

        // systemd accepts the installed units as they are.
        let verify = Command::new("systemd-analyze")
            .args([
                "verify",
                "/usr/lib/systemd/system/openclaw-token-sync.service",
                "/usr/lib/systemd/system/openclaw-token-sync.timer",
            ])
            .output()
            .unwrap();
        let complaints = String::from_utf8_lossy(&verify.stderr);
        assert!(verify.status.success(), "{complaints}");
        let own: Vec<&str> = complaints
            .lines()
            .filter(|l| l.contains("openclaw-token-sync"))
            .collect();
        assert!(
            own.is_empty(),
            "systemd-analyze on our units:\n{complaints}"
        );
        ok(
            run(
                "bash",
                &[
                    "-n",
                    "/usr/share/bash-completion/completions/openclaw-token-sync",
                ],
            ),
            "installed completion",
        );
        let page = Command::new("man")
            .args(["-l", "/usr/share/man/man1/openclaw-token-sync-sync.1.gz"])
            .env("MANPAGER", "cat")
            .output()
            .unwrap();
        assert!(ok(page, "installed man page").contains("--metrics-file"));

        // Enabling a timer that would fail every run is refused.
        let refused = distributor("install.sh", &[("SSM_ENABLE_TIMER", "true")]);
        assert_eq!(refused.status.code(), Some(1));
        assert!(
            String::from_utf8_lossy(&refused.stderr).contains("names no secret"),
            "{}",
            String::from_utf8_lossy(&refused.stderr)
        );

        // Again with arguments (an update): the host is configured; the config is not
        // rewritten a third time.
        let config = Path::new("/etc/openclaw-token-sync/config.toml");
        ok(
            distributor(
                "install.sh",
                &[
                    ("SSM_SECRET_ID", "openclaw/anthropic"),
                    ("SSM_USER", "ubuntu"),
                ],
            ),
            "distributor install.sh with arguments",
        );
        let written = fs::read_to_string(config).unwrap();
        assert!(
            written.contains("secret-id = \"openclaw/anthropic\"\nuser = \"ubuntu\"\n"),
            "{written}"
        );
        ok(
            distributor("install.sh", &[("SSM_SECRET_ID", "other")]),
            "distributor install.sh again",
        );
        assert_eq!(fs::read_to_string(config).unwrap(), written);
        // Hostile arguments are refused before anything happens.
        for (key, value) in [
            ("SSM_USER", "x; id"),
            (
                "SSM_USER",
                "ubuntu\nanthropic-base-url = \"https://elsewhere\"",
            ),
            ("SSM_SECRET_ID", "s\rx"),
        ] {
            let refused = distributor("install.sh", &[(key, value)]);
            assert_eq!(refused.status.code(), Some(1), "{key}={value:?}");
        }
        assert_eq!(fs::read_to_string(config).unwrap(), written);
        // The in-place update script installs over the installed package, config kept.
        ok(distributor("update.sh", &[]), "distributor update.sh");
        assert!(dpkg_status("openclaw-token-sync").contains("install ok installed"));
        assert_eq!(fs::read_to_string(config).unwrap(), written);

        // Uninstall removes the program and keeps the operator's config; purge removes it.
        ok(distributor("uninstall.sh", &[]), "distributor uninstall.sh");
        assert!(!Path::new("/usr/bin/openclaw-token-sync").exists());
        assert!(!Path::new("/usr/lib/systemd/system/openclaw-token-sync.service").exists());
        assert_eq!(fs::read_to_string(config).unwrap(), written);
    });
    let purge = run("dpkg", &["--purge", "openclaw-token-sync"]);
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
    ok(purge, "dpkg --purge");
    assert!(!Path::new("/etc/openclaw-token-sync").exists());
    assert_eq!(dpkg_status("openclaw-token-sync").trim(), "");

    // A host with a tarball install (deploy/install.sh, for real): the Distributor package
    // takes over. The tarball's binary, units, drop-in, man pages and record go; its config
    // stays and is the package's from now on.
    let tarball = Command::new("bash")
        .arg(repo("deploy/install.sh"))
        .args([
            "--user",
            "root",
            "--secret-id",
            "tests/takeover",
            "--no-enable",
            "--binary",
            BIN,
        ])
        .output()
        .unwrap();
    let result = std::panic::catch_unwind(|| {
        ok(tarball, "deploy/install.sh");
        let config = Path::new("/etc/openclaw-token-sync/config.toml");
        let tarball_config = fs::read_to_string(config).unwrap();
        ok(
            distributor("install.sh", &[]),
            "distributor install.sh over a tarball install",
        );
        for gone in [
            "/usr/local/bin/openclaw-token-sync",
            "/etc/systemd/system/openclaw-token-sync.service",
            "/etc/systemd/system/openclaw-token-sync.timer",
            "/etc/systemd/system/openclaw-token-sync.service.d",
            "/usr/local/share/man/man1/openclaw-token-sync.1",
            "/usr/local/share/bash-completion/completions/openclaw-token-sync",
            "/var/lib/openclaw-token-sync/installed-files",
        ] {
            assert!(!Path::new(gone).exists(), "{gone} left behind");
        }
        assert!(Path::new("/usr/bin/openclaw-token-sync").exists());
        assert_eq!(fs::read_to_string(config).unwrap(), tarball_config);
    });
    let purge = run("dpkg", &["--purge", "openclaw-token-sync"]);
    let _ = Command::new("bash")
        .arg(repo("deploy/install.sh"))
        .args(["--uninstall", "--purge"])
        .output();
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
    ok(purge, "dpkg --purge after the takeover");
}
