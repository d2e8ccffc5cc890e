//! Log and output lines as the journal wants them. When systemd connects stdout or stderr to
//! the journal it says so in `JOURNAL_STREAM` (`DEVICE:INODE` of that stream); each line written
//! to such a stream then starts with a syslog priority prefix (`<3>` error, `<4>` warning,
//! `<6>` info, `<7>` debug), which journald strips and records as the entry's `PRIORITY`
//! (systemd.exec(5), `SyslogLevelPrefix=`, on by default). So `journalctl -p warning -u
//! openclaw-token-sync` shows exactly the problems, while the summary line stays at info.
//! On a terminal, a pipe or a file nothing changes: the prefix is only written to a stream
//! that is the journal's.
//!
//! This module also owns the stderr log: tracing, as text or JSON lines (`--log-format`),
//! and the warning and error lines the commands print, which in JSON mode are log events too.

use std::fmt::Display;
use std::io::Write;
use std::os::fd::AsFd;
use std::sync::OnceLock;

/// A syslog priority (the subset this tool writes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Priority {
    Err = 3,
    Warning = 4,
    Info = 6,
    Debug = 7,
}

impl Priority {
    fn of(level: &tracing::Level) -> Priority {
        match *level {
            tracing::Level::ERROR => Priority::Err,
            tracing::Level::WARN => Priority::Warning,
            tracing::Level::INFO => Priority::Info,
            _ => Priority::Debug,
        }
    }
}

/// How stderr log lines are written.
#[derive(clap::ValueEnum, serde::Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// `openclaw-token-sync: warning: ...` lines, and tracing's text lines with -v.
    #[default]
    Text,
    /// One JSON object per line: `timestamp`, `level`, `fields.message`, `target`.
    Json,
}

/// Which of our standard streams systemd connected to the journal.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Streams {
    pub(crate) stdout: bool,
    pub(crate) stderr: bool,
}

/// Whether a stream with this `(device, inode)` is the one `JOURNAL_STREAM` names.
pub(crate) fn names_stream(journal_stream: &str, dev: u64, ino: u64) -> bool {
    let Some((d, i)) = journal_stream.split_once(':') else {
        return false;
    };
    d.parse::<u64>() == Ok(dev) && i.parse::<u64>() == Ok(ino)
}

// `st_dev` and `st_ino` are not u64 on every target.
#[allow(clippy::unnecessary_cast)]
fn is_journal(value: &str, fd: impl AsFd) -> bool {
    nix::sys::stat::fstat(fd)
        .map(|st| names_stream(value, st.st_dev as u64, st.st_ino as u64))
        .unwrap_or(false)
}

static STREAMS: OnceLock<Streams> = OnceLock::new();
static FORMAT: OnceLock<LogFormat> = OnceLock::new();

fn streams() -> Streams {
    *STREAMS.get_or_init(|| match std::env::var("JOURNAL_STREAM") {
        Ok(value) => Streams {
            stdout: is_journal(&value, std::io::stdout()),
            stderr: is_journal(&value, std::io::stderr()),
        },
        Err(_) => Streams::default(),
    })
}

/// The line with a priority prefix on every line when `journal` is true.
pub(crate) fn prefixed(text: &str, priority: Priority, journal: bool) -> String {
    if !journal {
        return text.to_owned();
    }
    text.split('\n')
        .map(|line| format!("<{}>{line}", priority as u8))
        .collect::<Vec<_>>()
        .join("\n")
}

/// One line of the command's output on stdout, at `priority` in the journal.
pub(crate) fn out(priority: Priority, text: impl Display) {
    let line = prefixed(&text.to_string(), priority, streams().stdout);
    let mut stdout = std::io::stdout().lock();
    // A closed stdout (`| head`) must not turn into a panic.
    let _ = writeln!(stdout, "{line}");
}

/// A warning or error line on stderr: `openclaw-token-sync: warning: ...` as text, a log
/// event in JSON mode.
pub(crate) fn err(priority: Priority, text: impl Display) {
    let text = text.to_string();
    if FORMAT.get() == Some(&LogFormat::Json) {
        match priority {
            Priority::Err => tracing::error!("{text}"),
            Priority::Warning => tracing::warn!("{text}"),
            Priority::Info => tracing::info!("{text}"),
            Priority::Debug => tracing::debug!("{text}"),
        }
        return;
    }
    let label = match priority {
        Priority::Err => "error",
        Priority::Warning => "warning",
        Priority::Info => "info",
        Priority::Debug => "debug",
    };
    let line = prefixed(
        &format!("openclaw-token-sync: {label}: {text}"),
        priority,
        streams().stderr,
    );
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

/// Prefixes each event with its priority, then lets the inner formatter write it.
struct JournalPrefix<F> {
    inner: F,
    journal: bool,
}

impl<S, N, F> tracing_subscriber::fmt::FormatEvent<S, N> for JournalPrefix<F>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    N: for<'a> tracing_subscriber::fmt::FormatFields<'a> + 'static,
    F: tracing_subscriber::fmt::FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &tracing_subscriber::fmt::FmtContext<'_, S, N>,
        mut writer: tracing_subscriber::fmt::format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        if !self.journal {
            return self.inner.format_event(ctx, writer, event);
        }
        // Every line of a multi-line event carries the priority, not only the first.
        let mut text = String::new();
        self.inner.format_event(
            ctx,
            tracing_subscriber::fmt::format::Writer::new(&mut text),
            event,
        )?;
        let priority = Priority::of(event.metadata().level());
        let body = text.strip_suffix('\n').unwrap_or(&text);
        writeln!(writer, "{}", prefixed(body, priority, true))
    }
}

/// Sets up the stderr log: our events at warning (`-v` info, `-vv` debug); everyone else's
/// (the AWS SDK's) only with `-vv`, and then at warning at most: their text is `Debug` dumps of
/// SDK types, and their debug events can hold request bodies. Whatever they report reaches the
/// operator as our own error, in words.
pub(crate) fn init_logging(verbose: u8, format: LogFormat) {
    use tracing_subscriber::filter::{LevelFilter, Targets};
    use tracing_subscriber::prelude::*;
    let _ = FORMAT.set(format);
    let ours = match verbose {
        0 => LevelFilter::WARN,
        1 => LevelFilter::INFO,
        _ => LevelFilter::DEBUG,
    };
    let others = if verbose >= 2 {
        LevelFilter::WARN
    } else {
        LevelFilter::OFF
    };
    let filter = Targets::new()
        .with_default(others)
        .with_target("openclaw_token_sync", ours);
    let journal = streams().stderr;
    let ansi = !journal && std::io::IsTerminal::is_terminal(&std::io::stderr());
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    let layer = match format {
        LogFormat::Text => layer
            .with_target(false)
            .event_format(JournalPrefix {
                inner: tracing_subscriber::fmt::format().with_target(false),
                journal,
            })
            .boxed(),
        LogFormat::Json => layer
            .event_format(JournalPrefix {
                inner: tracing_subscriber::fmt::format().json(),
                journal,
            })
            .fmt_fields(tracing_subscriber::fmt::format::JsonFields::new())
            .boxed(),
    };
    let _ = tracing_subscriber::registry()
        .with(layer.with_filter(filter))
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_stream_must_name_this_device_and_inode() {
        assert!(names_stream("64769:1234", 64769, 1234));
        assert!(!names_stream("64769:1234", 64769, 1235));
        assert!(!names_stream("64769", 64769, 1234));
        assert!(!names_stream("", 0, 0));
        assert!(!names_stream("a:b", 0, 0));
    }

    #[test]
    fn every_line_gets_the_prefix_only_for_the_journal() {
        assert_eq!(
            prefixed("one\ntwo", Priority::Warning, true),
            "<4>one\n<4>two"
        );
        assert_eq!(prefixed("one", Priority::Err, false), "one");
    }
}
