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
Every flag has an \fBOPENCLAW_TOKEN_SYNC_*\fR variable (see each command's page); flags beat
the environment, which beats the config file. The AWS SDK's own variables (\fBAWS_REGION\fR,
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
        out = bash_subcommand_names_fixed(&out);
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

/// The main page, with the sections clap has no place for.
fn main_page() -> std::io::Result<Vec<u8>> {
    let mut page = Vec::new();
    clap_mangen::Man::new(command()).render(&mut page)?;
    page.extend_from_slice(EXTRA_SECTIONS.as_bytes());
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
        pages.push((name, page));
    }
    Ok(pages)
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
