//! What the command line says about itself: shell completion scripts (clap_complete) and man
//! pages (clap_mangen), both generated from the clap definitions in `args`, so they never
//! drift from the real flags. The Debian package ships their output (`scripts/build-deb`).

use super::args::Cli;
use clap::CommandFactory;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

const NAME: &str = "openclaw-token-sync";

/// Sections clap has no place for, appended to the main page (roff).
const EXTRA_SECTIONS: &str = r#".SH "EXIT STATUS"
.TP
\fB0\fR
Success (\fBstatus\fR: healthy).
.TP
\fB1\fR
The command failed, or \fBstatus\fR found a problem.
.TP
\fB2\fR
Usage or configuration error; nothing was changed.
.TP
\fB3\fR
\fBstatus\fR found warnings only.
.SH ENVIRONMENT
Many flags have an \fBOPENCLAW_TOKEN_SYNC_*\fR variable, named beside the flag on each
command's page (\fB[env: ...]\fR); flags beat the environment, which beats the config file. The AWS SDK's own variables (\fBAWS_REGION\fR,
\fBAWS_ENDPOINT_URL\fR, \fBAWS_PROFILE\fR, ...) apply as usual.
.TP
\fBJOURNAL_STREAM\fR
Set by systemd; lines written to the journal carry their syslog priority.
.SH FILES
.TP
\fI/etc/openclaw-token-sync/config.toml\fR
The config file, read when it exists and \fB\-\-config\fR is not given.
.TP
\fI~/.openclaw\-env\fR, \fI~/.config/systemd/user/<unit>.d/anthropic.conf\fR
The files \fBsync\fR keeps (0600, owned by the gateway's user).
.TP
\fI/var/lib/prometheus/node\-exporter/openclaw\-token\-sync.prom\fR
Metrics, written by the packaged service when that directory exists.
.SH IAM
The instance role (or whatever credentials the host has) needs only this, with the secret's ARN
(the Debian package also ships it as \fI/usr/share/doc/openclaw\-token\-sync/iam\-policy.json\fR; add
\fBkms:Decrypt\fR on a customer key if the secret uses one):
.PP
.nf
"#;

/// After the IAM policy, the last section.
const SEE_ALSO: &str = r#".fi
.SH "SEE ALSO"
\fBsystemctl\fR(1), \fBjournalctl\fR(1), \fBsystemd.exec\fR(5)
"#;

fn command() -> clap::Command {
    let mut command = Cli::command();
    command.build();
    command
}

/// `completions SHELL`: the script on stdout.
pub(super) fn completions(shell: clap_complete::Shell) -> ExitCode {
    let mut command = command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut command, NAME, &mut out);
    if shell == clap_complete::Shell::Bash {
        out = bash_user_names_completed(&bash_subcommand_names_fixed(&out));
    }
    emit(&out)
}

/// clap_complete's bash script (4.6) names a command's `case` arms with every `-` of the binary's
/// name turned into `__subcmd__` (`openclaw__subcmd__token__...`), while the loop that finds the
/// command writes `__` (`openclaw__token__sync__subcmd__sync`): no subcommand's flags would ever
/// complete. The arms are renamed to what the loop writes (a no-op once clap_complete agrees;
/// the packaging test completes `sync --metrics` to prove it).
fn bash_subcommand_names_fixed(script: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(script);
    let wrong = NAME.replace('-', "__subcmd__");
    let right = NAME.replace('-', "__");
    text.replace(&wrong, &right).into_bytes()
}

/// What each command's page adds: its exit status and examples (roff).
fn command_sections(name: &str) -> String {
    let exit = match name {
        "status" => "\\fB0\\fR healthy; \\fB1\\fR a problem; \\fB2\\fR usage or configuration error; \\fB3\\fR warnings only (with \\fB\\-\\-nagios\\fR: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN).",
        "completions" | "man" => "\\fB0\\fR written; \\fB1\\fR it could not be written; \\fB2\\fR usage error.",
        "sync" => "\\fB0\\fR success; \\fB1\\fR the command failed (what was already changed is said); \\fB2\\fR usage or configuration error, nothing changed.",
        _ => "\\fB0\\fR success; \\fB1\\fR the command failed (what was already changed is said); \\fB2\\fR usage or configuration error (with \\fB\\-\\-trigger\\fR, the secret may have moved already: the message says).",
    };
    let examples: &[&str] = match name {
        "sync" => &[
            "openclaw-token-sync sync --secret-id prod/anthropic --user ubuntu",
            "openclaw-token-sync sync --secret-id prod/anthropic --user ubuntu --dry-run",
            "openclaw-token-sync sync --user ubuntu --unit openclaw-gateway-work.service --output json",
        ],
        "status" => &[
            "openclaw-token-sync status --check-secret --secret-id prod/anthropic --user ubuntu",
            "openclaw-token-sync status --user ubuntu --nagios",
        ],
        "put" => &[
            "claude setup-token | openclaw-token-sync put --secret-id prod/anthropic",
            "openclaw-token-sync put --secret-id prod/anthropic --label CANARY < token.txt",
        ],
        "trigger" => &[
            "openclaw-token-sync trigger --secret-id prod/anthropic --targets tag:openclaw=true",
            "openclaw-token-sync trigger --secret-id prod/anthropic --instance-ids i-0abc,i-0def --wait",
        ],
        "promote" => &["openclaw-token-sync promote --secret-id prod/anthropic"],
        "rollback" => &[
            "openclaw-token-sync rollback --secret-id prod/anthropic",
            "openclaw-token-sync rollback --secret-id prod/anthropic --label CANARY",
        ],
        "completions" => &["openclaw-token-sync completions bash > /etc/bash_completion.d/openclaw-token-sync"],
        "man" => &["openclaw-token-sync man --out-dir /usr/local/share/man/man1"],
        _ => &[],
    };
    let mut out = format!(".SH \"EXIT STATUS\"\n{exit}\n");
    if !examples.is_empty() {
        out.push_str(".SH EXAMPLES\n");
        for example in examples {
            out.push_str(&format!(".PP\n.nf\n{}\n.fi\n", example.replace('-', "\\-")));
        }
    }
    out.push_str(&format!(".SH \"SEE ALSO\"\n\\fB{NAME}\\fR(1)\n"));
    out
}

/// clap_complete's bash script completes file names for every value without fixed choices;
/// `--user` takes a user name (zsh and fish already get the hint): `compgen -u` there.
fn bash_user_names_completed(script: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(script);
    text.replace(
        "--user)\n                    COMPREPLY=($(compgen -f \"${cur}\"))",
        "--user)\n                    COMPREPLY=($(compgen -u \"${cur}\"))",
    )
    .into_bytes()
}

/// The main page, with the sections clap has no place for. `help` is left out of its list of
/// commands: it has no page of its own (`openclaw-token-sync help COMMAND` prints the help).
fn main_page() -> std::io::Result<Vec<u8>> {
    let mut page = Vec::new();
    let main = Cli::command().mut_subcommand("help", |help| help.hide(true));
    clap_mangen::Man::new(main).render(&mut page)?;
    page.extend_from_slice(EXTRA_SECTIONS.as_bytes());
    page.extend_from_slice(
        include_str!("../../iam-policy.json")
            .replace('\\', "\\e")
            .replace('-', "\\-")
            .as_bytes(),
    );
    page.extend_from_slice(SEE_ALSO.as_bytes());
    Ok(page)
}

/// One page per command, named like git's: `openclaw-token-sync-sync(1)`.
fn command_pages() -> std::io::Result<Vec<(String, Vec<u8>)>> {
    let mut pages = Vec::new();
    for sub in command().get_subcommands() {
        if sub.get_name() == "help" {
            continue;
        }
        let name = format!("{NAME}-{}", sub.get_name());
        let mut page = Vec::new();
        clap_mangen::Man::new(
            sub.clone()
                .name(name.clone())
                .bin_name(format!("{NAME} {}", sub.get_name())),
        )
        .render(&mut page)?;
        page.extend_from_slice(command_sections(sub.get_name()).as_bytes());
        pages.push((name, page));
    }
    Ok(pages)
}

/// `help [COMMAND]`: the help of the tool or of one command, as `--help` prints it; an unknown
/// command is a usage error (exit 2).
pub(super) fn help(name: Option<&str>) -> ExitCode {
    let mut command = command();
    let printed = match name {
        None => command.print_help(),
        Some(name) => match command.find_subcommand_mut(name) {
            Some(sub) => sub.print_help(),
            None => {
                let known: Vec<String> = Cli::command()
                    .get_subcommands()
                    .map(|c| c.get_name().to_owned())
                    .collect();
                super::journal::err(
                    super::journal::Priority::Err,
                    format_args!("no command {name:?}; the commands are {}", known.join(", ")),
                );
                return ExitCode::from(2);
            }
        },
    };
    if printed.is_err() {
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}

/// `man`: the main page on stdout, or every page into `out_dir`.
pub(super) fn man(out_dir: Option<&Path>) -> ExitCode {
    let result = (|| -> std::io::Result<Option<Vec<u8>>> {
        let main = main_page()?;
        let Some(dir) = out_dir else {
            return Ok(Some(main));
        };
        std::fs::write(dir.join(format!("{NAME}.1")), main)?;
        for (name, page) in command_pages()? {
            std::fs::write(dir.join(format!("{name}.1")), page)?;
        }
        Ok(None)
    })();
    match result {
        Ok(Some(page)) => emit(&page),
        Ok(None) => ExitCode::SUCCESS,
        Err(err) => {
            let dir = out_dir.map_or_else(String::new, |d| format!("{}: ", d.display()));
            super::journal::err(
                super::journal::Priority::Err,
                format_args!("{dir}cannot write the man pages: {err}"),
            );
            ExitCode::from(1)
        }
    }
}

fn emit(bytes: &[u8]) -> ExitCode {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(_) => ExitCode::from(1),
    }
}
