//! The files a sync manages for the target user (DESIGN.md section 3): where they are, what they
//! must contain for a given token (pure functions, no I/O), and the per-file plan that compares
//! that with what is on disk.
//!
//! - the systemd drop-in `<unit>.d/anthropic.conf` and the legacy `~/.openclaw-env` are ours and
//!   always written;
//! - `<state>/.env` is OpenClaw's global dotenv file: it always carries our variable (the line is
//!   updated in place, or appended, or the file created 0600), every other byte is kept. From
//!   OpenClaw 2026.8.1 on this is what keeps the token alive inside the gateway: at start the
//!   gateway deletes from its own environment every key its unit lists in
//!   `OPENCLAW_SERVICE_MANAGED_ENV_KEYS` that no global dotenv file holds, so a token that only
//!   the drop-in sets is gone (README "How the token reaches the gateway");
//! - `<state>/gateway.systemd.env` (the unit's `EnvironmentFile=`, which overrides drop-ins) and
//!   `~/.config/openclaw/gateway.env` (the second global dotenv file, loaded after `<state>/.env`
//!   with managed keys overriding) belong to OpenClaw: only a line that already sets a managed
//!   variable is changed, every other byte is kept;
//! - `~/.bash_profile` is touched only with `--shell-profile`: a marked block that sources
//!   `~/.openclaw-env`, and removal of lines that hold a literal token (the runbook's old habit).

use crate::host::fsutil::ExistingFile;
use crate::secret::{Token, TokenKind, CREDENTIAL_VARIABLES, MANAGED_VARIABLES};
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// The gateway unit OpenClaw installs (without a profile).
pub const DEFAULT_UNIT: &str = "openclaw-gateway.service";

/// Name of the drop-in file inside `<unit>.d/`.
pub const DROPIN_NAME: &str = "anthropic.conf";
const PROFILE_BEGIN: &str = "# >>> openclaw-token-sync >>>";
const PROFILE_END: &str = "# <<< openclaw-token-sync <<<";
const HEADER: &str =
    "# Managed by openclaw-token-sync; it is rewritten on every sync that changes the token.\n";

/// What each managed file is for; decides how it is rendered and whether a change needs a restart.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FileRole {
    DropIn,
    /// A system unit's token: root's 0600 `<unit>.d/anthropic.env`, which its drop-in names in
    /// `EnvironmentFile=` (a system unit's `Environment=` is readable by every local user
    /// through D-Bus, so the token is never in the drop-in itself).
    SystemEnv,
    LegacyEnv,
    DotEnv,
    GatewayEnv,
    GlobalGatewayEnv,
    ShellProfile,
    /// `secret-ref` delivery: the file the gateway's secret reference points at.
    SecretRef,
}

impl FileRole {
    /// A changed file of this role only reaches the gateway through a restart.
    pub fn affects_gateway(self) -> bool {
        !matches!(self, FileRole::ShellProfile)
    }
}

/// All paths a sync may touch for one user.
#[derive(Clone, Debug)]
pub struct ManagedPaths {
    pub home: PathBuf,
    /// The gateway unit these paths are for.
    pub unit: String,
    pub dropin_dir: PathBuf,
    pub dropin: PathBuf,
    pub legacy_env: PathBuf,
    pub dot_env: PathBuf,
    pub gateway_env: PathBuf,
    pub global_gateway_env: PathBuf,
    pub shell_profile: PathBuf,
    pub state_dir: PathBuf,
    /// Where releases that took `--unit NAME` literally wrote the drop-in for `NAME.service`
    /// (`NAME.d/`, which systemd never reads): removed when it is ours.
    pub stray_dropin: Option<PathBuf>,
    /// The unit runs in the system manager: the drop-in is root's, in the system unit
    /// directory, read and written as root.
    pub system_dropin: bool,
    /// For a system unit: root's environment file with the token, beside the drop-in.
    pub system_env: Option<PathBuf>,
}

impl ManagedPaths {
    pub fn new(home: &Path, unit: &str, openclaw_state_dir: &Path) -> ManagedPaths {
        let dropin_dir = home.join(".config/systemd/user").join(format!("{unit}.d"));
        ManagedPaths {
            home: home.to_path_buf(),
            unit: unit.to_owned(),
            dropin: dropin_dir.join(DROPIN_NAME),
            dropin_dir,
            legacy_env: home.join(".openclaw-env"),
            dot_env: openclaw_state_dir.join(".env"),
            gateway_env: openclaw_state_dir.join("gateway.systemd.env"),
            global_gateway_env: home.join(".config/openclaw/gateway.env"),
            shell_profile: home.join(".bash_profile"),
            state_dir: home.join(".local/state/openclaw-token-sync"),
            stray_dropin: unit.strip_suffix(".service").map(|bare| {
                home.join(".config/systemd/user")
                    .join(format!("{bare}.d"))
                    .join(DROPIN_NAME)
            }),
            system_dropin: false,
            system_env: None,
        }
    }

    /// The same paths for a unit of the system manager: the drop-in goes to
    /// `<system unit dir>/<unit>.d/` (`/etc/systemd/system`), everything else stays the user's.
    pub fn in_system_manager(mut self, system_unit_dir: &Path) -> ManagedPaths {
        self.dropin_dir = system_unit_dir.join(format!("{}.d", self.unit));
        self.dropin = self.dropin_dir.join(DROPIN_NAME);
        self.stray_dropin = None;
        self.system_dropin = true;
        self.system_env = Some(self.dropin_dir.join("anthropic.env"));
        self
    }

    /// `state.json` for the default unit; `state-<unit>.json` for every other gateway of the
    /// user, so several gateways keep separate records (the same for the marker and the store
    /// cleanings).
    /// Where OpenClaw's CLI keeps its own state (its device identity) when this tool runs it.
    pub fn cli_state(&self) -> PathBuf {
        self.state_dir.join("openclaw-cli")
    }

    pub fn state_file(&self) -> PathBuf {
        self.per_unit("state", ".json")
    }

    /// The marker that says "this tool stopped the gateway and has not started it yet".
    pub fn restart_marker(&self) -> PathBuf {
        self.per_unit("restart-pending", "")
    }

    pub fn cleanings_file(&self) -> PathBuf {
        self.per_unit("store-cleanings", ".json")
    }

    fn per_unit(&self, stem: &str, extension: &str) -> PathBuf {
        if self.system_dropin {
            // A system unit may share its name with a user unit of the same user.
            self.state_dir
                .join(format!("{stem}-system-{}{extension}", self.unit))
        } else if self.unit == DEFAULT_UNIT {
            self.state_dir.join(format!("{stem}{extension}"))
        } else {
            self.state_dir
                .join(format!("{stem}-{}{extension}", self.unit))
        }
    }

    pub fn lock_file(&self) -> PathBuf {
        self.state_dir.join("lock")
    }
}

/// Whether a file's content is one this tool rendered whole (drop-in, `~/.openclaw-env`).
pub fn written_by_us(content: &[u8]) -> bool {
    content.starts_with(HEADER.as_bytes())
}

/// Content of the drop-in for a token.
pub fn dropin_content(token: &Token) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(256));
    out.extend_from_slice(HEADER.as_bytes());
    out.extend_from_slice(b"[Service]\nEnvironment=");
    push_assignment(&mut out, token);
    out.push(b'\n');
    out
}

/// A system unit's drop-in: no token, only the root-owned environment file that holds it.
pub fn system_dropin_content(env_file: &Path) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(256));
    out.extend_from_slice(HEADER.as_bytes());
    out.extend_from_slice(b"[Service]\nEnvironmentFile=");
    out.extend_from_slice(env_file.as_os_str().as_encoded_bytes());
    out.push(b'\n');
    out
}

/// Content of the legacy `~/.openclaw-env` (an `EnvironmentFile=` that shells can source too).
pub fn legacy_env_content(token: &Token) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(256));
    out.extend_from_slice(HEADER.as_bytes());
    push_assignment(&mut out, token);
    out.push(b'\n');
    out
}

fn push_assignment(out: &mut Vec<u8>, token: &Token) {
    out.extend_from_slice(token.kind().variable().as_bytes());
    out.push(b'=');
    out.extend_from_slice(token.expose().as_bytes());
}

/// Splits text into lines that keep their endings, so edits preserve `\r\n` and a missing final
/// newline byte for byte.
fn lines_with_endings(content: &[u8]) -> impl Iterator<Item = &[u8]> {
    content.split_inclusive(|&b| b == b'\n')
}

fn line_ending(line: &[u8]) -> &[u8] {
    if line.ends_with(b"\r\n") {
        b"\r\n"
    } else if line.ends_with(b"\n") {
        b"\n"
    } else {
        b""
    }
}

/// Parses `[ws][export ws]KEY=...` and returns (leading part up to the key, key, rest after `=`).
fn split_assignment(line: &[u8]) -> Option<(&[u8], &[u8], &[u8])> {
    let indent = line
        .iter()
        .take_while(|b| **b == b' ' || **b == b'\t')
        .count();
    let mut rest = &line[indent..];
    let mut lead_len = indent;
    if let Some(after) = rest.strip_prefix(b"export") {
        let spaces = after
            .iter()
            .take_while(|b| **b == b' ' || **b == b'\t')
            .count();
        if spaces > 0 {
            lead_len += 6 + spaces;
            rest = &after[spaces..];
        }
    }
    let eq = rest.iter().position(|b| *b == b'=')?;
    let key = &rest[..eq];
    if key.is_empty() || !key.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'_') {
        return None;
    }
    Some((&line[..lead_len], key, &rest[eq + 1..]))
}

fn is_managed_key(key: &[u8]) -> bool {
    MANAGED_VARIABLES.iter().any(|v| v.as_bytes() == key)
}

/// Whether an OpenClaw env file sets one of our variables (and so is ours to keep current).
pub fn env_file_holds_managed_key(content: &[u8]) -> bool {
    lines_with_endings(content)
        .filter_map(split_assignment)
        .any(|(_, key, _)| is_managed_key(key))
}

/// Rewrites an OpenClaw env file: the first line that sets a managed variable becomes
/// `VAR=<token>` (keeping its indentation, `export ` and line ending), later ones are removed,
/// every other line is kept byte for byte. `None` when the file sets no managed variable.
pub fn edit_env_file(content: &[u8], token: &Token) -> Option<Zeroizing<Vec<u8>>> {
    let mut out = Zeroizing::new(Vec::with_capacity(content.len() + 128));
    let mut replaced = false;
    for line in lines_with_endings(content) {
        match split_assignment(line) {
            Some((lead, key, _)) if is_managed_key(key) => {
                if !replaced {
                    out.extend_from_slice(lead);
                    push_assignment(&mut out, token);
                    out.extend_from_slice(line_ending(line));
                    replaced = true;
                }
            }
            _ => out.extend_from_slice(line),
        }
    }
    replaced.then_some(out)
}

/// An env file without the lines that set one of our variables (every other line kept byte for
/// byte); `None` when it sets none. `secret-ref` delivery leaves no token in the environment: a
/// profile outranks it anyway, and a copy there would outlive the rotation.
pub fn strip_env_file(content: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    let mut out = Zeroizing::new(Vec::with_capacity(content.len()));
    let mut removed = false;
    for line in lines_with_endings(content) {
        match split_assignment(line) {
            Some((_, key, _)) if is_managed_key(key) => removed = true,
            _ => out.extend_from_slice(line),
        }
    }
    removed.then_some(out)
}

/// `<state>/.env` with our variable in it: the existing managed line rewritten in place (see
/// [`edit_env_file`]), or, when the file sets none, the assignment appended after every existing
/// byte; a missing file is created with just the header and the assignment.
pub fn dot_env_content(existing: Option<&[u8]>, token: &Token) -> Zeroizing<Vec<u8>> {
    let Some(content) = existing else {
        return legacy_env_content(token);
    };
    if let Some(edited) = edit_env_file(content, token) {
        return edited;
    }
    let mut out = Zeroizing::new(Vec::with_capacity(content.len() + 256));
    out.extend_from_slice(content);
    if !out.is_empty() && !out.ends_with(b"\n") {
        out.push(b'\n');
    }
    out.extend_from_slice(
        b"# Anthropic credential for the OpenClaw gateway: managed by openclaw-token-sync.\n",
    );
    push_assignment(&mut out, token);
    out.push(b'\n');
    out
}

/// Every `KEY=value` assignment of an env file (or, with `Environment=` lines, a drop-in), in
/// order, as (key, raw value): line endings and one leading `Environment=` or `export ` removed.
pub fn assignments(content: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    lines_with_endings(content).filter_map(|line| {
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let line = line.strip_prefix(b"Environment=").unwrap_or(line);
        let (_, key, value) = split_assignment(line)?;
        Some((key, value))
    })
}

/// The value the last assignment of `variable` in an env file (or, with `Environment=` lines, a
/// drop-in) gives it, as systemd reads it: later lines win.
pub fn assigned_value<'a>(content: &'a [u8], variable: &str) -> Option<&'a [u8]> {
    assignments(content)
        .filter(|(key, _)| *key == variable.as_bytes())
        .map(|(_, value)| value)
        .last()
}

fn holds_literal_token(line: &[u8]) -> bool {
    let Some((_, key, value)) = split_assignment(line) else {
        return false;
    };
    let value = value
        .strip_prefix(b"\"")
        .or_else(|| value.strip_prefix(b"'"))
        .unwrap_or(value);
    CREDENTIAL_VARIABLES.iter().any(|v| v.as_bytes() == key) && value.starts_with(b"sk-ant-")
}

fn profile_block(kind: TokenKind) -> String {
    let mut block = String::new();
    block.push_str(PROFILE_BEGIN);
    block.push('\n');
    block.push_str("# Loads the Anthropic token from ~/.openclaw-env (mode 0600). Managed by openclaw-token-sync;\n");
    block.push_str("# never write the token itself into this file.\n");
    block.push_str("if [ -r \"$HOME/.openclaw-env\" ]; then\n");
    block.push_str("    set -a\n    . \"$HOME/.openclaw-env\"\n    set +a\n");
    match kind {
        TokenKind::OAuth => {
            block.push_str("    export CLAUDE_CODE_OAUTH_TOKEN=\"$ANTHROPIC_OAUTH_TOKEN\"\n");
        }
        TokenKind::ApiKey => {
            block.push_str("    unset ANTHROPIC_OAUTH_TOKEN CLAUDE_CODE_OAUTH_TOKEN\n");
        }
    }
    block.push_str("fi\n");
    block.push_str(PROFILE_END);
    block.push('\n');
    block
}

/// The shell profile with our block in place (replacing an earlier one where it stood) and every
/// line that exported a literal token removed. A new `~/.bash_profile` first sources `~/.profile`,
/// because bash stops reading `~/.profile` once `~/.bash_profile` exists.
/// Returns the content and how many literal-token lines were removed.
pub fn edit_shell_profile(existing: Option<&[u8]>, kind: TokenKind) -> (Zeroizing<Vec<u8>>, usize) {
    let block = profile_block(kind);
    let mut out = Zeroizing::new(Vec::new());
    let mut removed = 0;
    let Some(content) = existing else {
        out.extend_from_slice(
            b"# Created by openclaw-token-sync; bash skips ~/.profile once this file exists.\n",
        );
        out.extend_from_slice(b"if [ -f \"$HOME/.profile\" ]; then . \"$HOME/.profile\"; fi\n");
        out.extend_from_slice(block.as_bytes());
        return (out, 0);
    };
    let mut in_block = false;
    let mut placed = false;
    for line in lines_with_endings(content) {
        let trimmed = line.strip_suffix(b"\n").unwrap_or(line);
        let trimmed = trimmed.strip_suffix(b"\r").unwrap_or(trimmed);
        if trimmed == PROFILE_BEGIN.as_bytes() {
            in_block = true;
            continue;
        }
        if in_block {
            if trimmed == PROFILE_END.as_bytes() {
                in_block = false;
                if !placed {
                    out.extend_from_slice(block.as_bytes());
                    placed = true;
                }
            }
            continue;
        }
        if holds_literal_token(line) {
            removed += 1;
            continue;
        }
        out.extend_from_slice(line);
    }
    if !placed {
        if !out.is_empty() && !out.ends_with(b"\n") {
            out.push(b'\n');
        }
        out.extend_from_slice(block.as_bytes());
    }
    (out, removed)
}

/// What a sync will do to one file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FileAction {
    Create,
    Update,
    /// Same content, wrong mode or owner: rewritten atomically, no restart needed.
    FixMetadata,
    /// A file of ours this user cannot read (left root-owned by the legacy root script): replaced
    /// by a rename in the user's own directory, which needs no access to the old file.
    Replace,
    /// `secret-ref` delivery: a file `env` delivery wrote, removed.
    Remove,
    Unchanged,
}

/// One managed file's desired state compared with what is on disk.
pub struct FilePlan {
    pub role: FileRole,
    pub path: PathBuf,
    pub desired: Zeroizing<Vec<u8>>,
    pub mode: u32,
    pub action: FileAction,
    /// Lines with a literal token removed (shell profile only).
    pub removed_literal_tokens: usize,
    /// Root's file (a system unit's drop-in): read, checked and written as root.
    pub privileged: bool,
}

impl std::fmt::Debug for FilePlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FilePlan")
            .field("role", &self.role)
            .field("path", &self.path)
            .field("mode", &format_args!("{:o}", self.mode))
            .field("action", &self.action)
            .finish_non_exhaustive()
    }
}

impl FilePlan {
    /// Compares a desired content and mode with the file found on disk.
    pub fn compare(
        role: FileRole,
        path: PathBuf,
        desired: Zeroizing<Vec<u8>>,
        mode: u32,
        existing: Option<&ExistingFile>,
        expected_uid: u32,
    ) -> FilePlan {
        let action = match existing {
            None => FileAction::Create,
            Some(file) if *file.content != *desired => FileAction::Update,
            Some(file) if file.mode != mode || file.uid != expected_uid => FileAction::FixMetadata,
            Some(_) => FileAction::Unchanged,
        };
        FilePlan {
            role,
            path,
            desired,
            mode,
            action,
            removed_literal_tokens: 0,
            privileged: false,
        }
    }

    /// A file of ours that cannot be read: it is replaced.
    pub fn replace_unreadable(
        role: FileRole,
        path: PathBuf,
        desired: Zeroizing<Vec<u8>>,
        mode: u32,
    ) -> FilePlan {
        FilePlan {
            role,
            path,
            desired,
            mode,
            action: FileAction::Replace,
            removed_literal_tokens: 0,
            privileged: false,
        }
    }

    pub fn content_changes(&self) -> bool {
        matches!(
            self.action,
            FileAction::Create | FileAction::Update | FileAction::Replace
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::OAUTH_PREFIX;

    fn token(fill: &str) -> Token {
        Token::parse(Zeroizing::new(format!("{OAUTH_PREFIX}{}", fill.repeat(90)))).unwrap()
    }

    fn api_key() -> Token {
        Token::parse(Zeroizing::new(format!("sk-ant-api03-{}", "K".repeat(90)))).unwrap()
    }

    #[test]
    fn dropin_and_legacy_env_carry_the_variable() {
        let t = token("A");
        let dropin = String::from_utf8(dropin_content(&t).to_vec()).unwrap();
        assert!(dropin.contains("[Service]\nEnvironment=ANTHROPIC_OAUTH_TOKEN=sk-ant-oat01-AAA"));
        let env = String::from_utf8(legacy_env_content(&api_key()).to_vec()).unwrap();
        assert!(env.ends_with(&format!(
            "ANTHROPIC_API_KEY=sk-ant-api03-{}\n",
            "K".repeat(90)
        )));
    }

    #[test]
    fn env_file_edit_keeps_other_lines_byte_for_byte() {
        let original = b"# comment\r\nOPENAI_API_KEY=x\r\nexport ANTHROPIC_API_KEY=old\r\nFOO=bar\nANTHROPIC_OAUTH_TOKEN=dup\nLAST=1";
        let t = token("B");
        let edited = edit_env_file(original, &t).unwrap();
        let expected = format!(
            "# comment\r\nOPENAI_API_KEY=x\r\nexport ANTHROPIC_OAUTH_TOKEN={}\r\nFOO=bar\nLAST=1",
            t.expose()
        );
        assert_eq!(edited.as_slice(), expected.as_bytes());
        assert!(edit_env_file(b"OPENAI_API_KEY=x\n", &t).is_none());
        assert!(!env_file_holds_managed_key(b"XANTHROPIC_API_KEY=1\n"));
    }

    #[test]
    fn dot_env_gets_the_assignment_in_place_appended_or_in_a_new_file() {
        let t = token("D");
        let line = format!("ANTHROPIC_OAUTH_TOKEN={}\n", t.expose());
        let created = dot_env_content(None, &t);
        assert!(created.starts_with(HEADER.as_bytes()));
        assert!(created.ends_with(line.as_bytes()));
        let appended = dot_env_content(Some(b"OPENAI_API_KEY=x\nFOO=1"), &t);
        let text = String::from_utf8(appended.to_vec()).unwrap();
        assert!(
            text.starts_with("OPENAI_API_KEY=x\nFOO=1\n# Anthropic"),
            "{text}"
        );
        assert!(text.ends_with(&line));
        // The next run finds its line and edits in place: the same token changes nothing.
        assert_eq!(
            dot_env_content(Some(&appended), &t).as_slice(),
            appended.as_slice()
        );
        let switched = dot_env_content(Some(&appended), &api_key());
        let switched = String::from_utf8(switched.to_vec()).unwrap();
        assert!(!switched.contains("ANTHROPIC_OAUTH_TOKEN"), "{switched}");
        assert!(switched.contains("\nANTHROPIC_API_KEY=sk-ant-api03-KKK"));
        assert!(switched.starts_with("OPENAI_API_KEY=x\nFOO=1\n"));
    }

    #[test]
    fn assigned_value_reads_env_files_and_drop_ins_like_systemd() {
        let t = token("C");
        let dropin = dropin_content(&t);
        assert_eq!(
            assigned_value(&dropin, "ANTHROPIC_OAUTH_TOKEN"),
            Some(t.expose().as_bytes())
        );
        assert_eq!(
            assigned_value(b"A=1\r\nexport A=2\nB=3", "A"),
            Some(&b"2"[..])
        );
        assert_eq!(assigned_value(b"AA=1\n", "A"), None);
    }

    #[test]
    fn shell_profile_block_is_replaced_in_place_and_literal_tokens_removed() {
        let original = b"PATH=$PATH:~/bin\nexport ANTHROPIC_OAUTH_TOKEN=sk-ant-oat01-OLD\n# >>> openclaw-token-sync >>>\nold block\n# <<< openclaw-token-sync <<<\nalias ll='ls -l'\n";
        let (edited, removed) = edit_shell_profile(Some(original), TokenKind::OAuth);
        let text = String::from_utf8(edited.to_vec()).unwrap();
        assert_eq!(removed, 1);
        assert!(!text.contains("sk-ant-"));
        assert!(text.starts_with("PATH=$PATH:~/bin\n# >>> openclaw-token-sync >>>\n"));
        assert!(text.ends_with("# <<< openclaw-token-sync <<<\nalias ll='ls -l'\n"));
        assert!(text.contains("CLAUDE_CODE_OAUTH_TOKEN"));
        let (again, removed) = edit_shell_profile(Some(&edited), TokenKind::OAuth);
        assert_eq!((again.as_slice(), removed), (edited.as_slice(), 0));
        let (fresh, _) = edit_shell_profile(None, TokenKind::ApiKey);
        let fresh = String::from_utf8(fresh.to_vec()).unwrap();
        assert!(fresh.contains(". \"$HOME/.profile\""));
        assert!(!fresh.contains("export CLAUDE_CODE_OAUTH_TOKEN"));
    }
}
