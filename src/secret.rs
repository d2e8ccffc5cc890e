//! The token itself: parsing a Secrets Manager value into a validated [`Token`], deciding which
//! environment variable carries it, and the SHA-256 fingerprint that is the only form of the token
//! this program ever prints.
//!
//! Every buffer that holds token bytes is [`zeroize`]-backed. [`Token`] implements no `Display`
//! and its `Debug` prints the fingerprint only, so a stray `{:?}` cannot leak it. Error messages
//! describe what is wrong (a position, a length, a missing key) and never echo the value.

use sha2::{Digest, Sha256};
use std::fmt;
use zeroize::{Zeroize, Zeroizing};

/// Prefix of a long-lived OAuth token from `claude setup-token`.
pub const OAUTH_PREFIX: &str = "sk-ant-oat01-";
/// Prefix of an Anthropic API key.
pub const API_KEY_PREFIX: &str = "sk-ant-api03-";
/// Shortest accepted token; real ones are a little over 100 characters.
pub const MIN_TOKEN_LEN: usize = 80;
/// Longest accepted token. Anything longer is not an Anthropic token and is refused before it is
/// copied anywhere.
pub const MAX_TOKEN_LEN: usize = 1024;
/// Largest secret value (plain or JSON) this program will look at.
pub const MAX_SECRET_BYTES: usize = 64 * 1024;

/// Which kind of credential a token is, and so which variable OpenClaw reads it from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenKind {
    /// `sk-ant-oat01-…`, read from `ANTHROPIC_OAUTH_TOKEN`.
    OAuth,
    /// `sk-ant-api03-…`, read from `ANTHROPIC_API_KEY`.
    ApiKey,
}

impl TokenKind {
    /// The environment variable that carries this kind of token.
    pub fn variable(self) -> &'static str {
        match self {
            TokenKind::OAuth => "ANTHROPIC_OAUTH_TOKEN",
            TokenKind::ApiKey => "ANTHROPIC_API_KEY",
        }
    }

    /// The variable of the other kind, which a sync removes from the files it manages.
    pub fn other_variable(self) -> &'static str {
        match self {
            TokenKind::OAuth => TokenKind::ApiKey.variable(),
            TokenKind::ApiKey => TokenKind::OAuth.variable(),
        }
    }

    /// Short name used in summaries and JSON output.
    pub fn label(self) -> &'static str {
        match self {
            TokenKind::OAuth => "oauth",
            TokenKind::ApiKey => "api-key",
        }
    }
}

/// Both variables this program manages.
pub const MANAGED_VARIABLES: [&str; 2] = ["ANTHROPIC_OAUTH_TOKEN", "ANTHROPIC_API_KEY"];

/// Every variable that carries an Anthropic credential: ours, and Claude Code's own (which the
/// runbook used to export too). Never passed on, never echoed.
pub const CREDENTIAL_VARIABLES: [&str; 3] = [
    "ANTHROPIC_OAUTH_TOKEN",
    "ANTHROPIC_API_KEY",
    "CLAUDE_CODE_OAUTH_TOKEN",
];

/// A validated Anthropic token. The bytes are wiped when it is dropped.
pub struct Token {
    value: Zeroizing<String>,
    kind: TokenKind,
    fingerprint: Fingerprint,
}

impl Token {
    /// The token text, for writing into a managed file. Never format it into a message.
    pub fn expose(&self) -> &str {
        &self.value
    }

    pub fn kind(&self) -> TokenKind {
        self.kind
    }

    pub fn fingerprint(&self) -> &Fingerprint {
        &self.fingerprint
    }

    /// Validates a candidate token, taking ownership of (and wiping) the buffer it came in.
    pub fn parse(candidate: Zeroizing<String>) -> Result<Token, SecretError> {
        let kind = validate(&candidate)?;
        let fingerprint = Fingerprint::of(candidate.as_bytes());
        Ok(Token {
            value: candidate,
            kind,
            fingerprint,
        })
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Token")
            .field("kind", &self.kind)
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

/// `sha256:` and the first 12 hex digits of the SHA-256 of a token: enough to tell two tokens
/// apart in a log, far too little to recover anything.
#[derive(Clone, PartialEq, Eq, Debug, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Fingerprint(String);

impl Fingerprint {
    pub fn of(bytes: &[u8]) -> Fingerprint {
        let digest = Sha256::digest(bytes);
        let mut hex = String::with_capacity(7 + 12);
        hex.push_str("sha256:");
        for byte in &digest[..6] {
            hex.push_str(&format!("{byte:02x}"));
        }
        Fingerprint(hex)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a secret value was refused. Messages never contain the value or any part of it.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SecretError {
    #[error("the secret value is empty")]
    Empty,
    #[error("the secret value is {0} bytes, more than the {MAX_SECRET_BYTES} bytes a token secret can be")]
    TooLarge(usize),
    #[error("the secret value is not valid UTF-8 text")]
    NotUtf8,
    #[error("the secret is binary (SecretBinary); store the token as SecretString")]
    Binary,
    #[error("the secret has neither SecretString nor SecretBinary")]
    NoValue,
    #[error("the secret is a JSON object without the key \"{0}\" (set --json-key to the key that holds the token)")]
    MissingJsonKey(String),
    #[error("the secret's JSON key \"{0}\" does not hold a string")]
    JsonKeyNotString(String),
    #[error("the secret looks like JSON but does not parse: {0}")]
    InvalidJson(String),
    #[error(
        "the token does not start with {OAUTH_PREFIX} (OAuth token) or {API_KEY_PREFIX} (API key)"
    )]
    UnknownPrefix,
    #[error("the secret value is blank (only whitespace)")]
    Blank,
    #[error("the secret holds no token yet: a {0}-character value without the sk-ant- prefix, like the placeholder the CloudFormation stack creates; store the token with `openclaw-token-sync put --secret-id <secret>` (it reads the token from stdin)")]
    Placeholder(usize),
    #[error("the token is followed by {what} (position {position}): store the token without anything after it")]
    TrailingCharacter { what: &'static str, position: usize },
    #[error("the token has {what} at position {position}; a token has only A-Z a-z 0-9 _ -")]
    BadCharacter { what: &'static str, position: usize },
    #[error("the token is {0} characters long, shorter than the {MIN_TOKEN_LEN} a real token has")]
    TooShort(usize),
    #[error("the token is {0} characters long, longer than the {MAX_TOKEN_LEN} this tool accepts")]
    TooLong(usize),
}

/// A value without the `sk-ant-` prefix up to this long is taken for a placeholder (the
/// CloudFormation stack's generated value is 32 characters); a real token is at least 80.
const PLACEHOLDER_MAX_LEN: usize = 64;

/// What to call a character a token may not hold, without showing it (a wrong secret may be
/// another credential): whitespace, quotes, `=` and NUL by name, the rest by class.
fn character_name(c: char) -> &'static str {
    match c {
        ' ' => "a space",
        '\n' => "a line break",
        '\r' => "a carriage return",
        '\t' => "a tab",
        '"' => "a double quote",
        '\'' => "a single quote",
        '=' => "an equals sign",
        '\0' => "a NUL byte",
        c if c.is_control() => "a control character",
        c if !c.is_ascii() => "a non-ASCII character",
        _ => "a punctuation character",
    }
}

/// Checks the token rules of DESIGN.md section 2 and says which kind it is.
pub fn validate(candidate: &str) -> Result<TokenKind, SecretError> {
    if candidate.is_empty() {
        return Err(SecretError::Empty);
    }
    if candidate.trim().is_empty() {
        return Err(SecretError::Blank);
    }
    let length = candidate.chars().count();
    if !candidate.starts_with("sk-ant-") && length <= PLACEHOLDER_MAX_LEN {
        return Err(SecretError::Placeholder(length));
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    if let Some((index, c)) = candidate.chars().enumerate().find(|(_, c)| !allowed(*c)) {
        let (what, position) = (character_name(c), index + 1);
        let rest_is_space = candidate.chars().skip(index).all(char::is_whitespace);
        return Err(if rest_is_space {
            SecretError::TrailingCharacter { what, position }
        } else {
            SecretError::BadCharacter { what, position }
        });
    }
    let kind = if candidate.starts_with(OAUTH_PREFIX) {
        TokenKind::OAuth
    } else if candidate.starts_with(API_KEY_PREFIX) {
        TokenKind::ApiKey
    } else {
        return Err(SecretError::UnknownPrefix);
    };
    let len = candidate.len();
    if len < MIN_TOKEN_LEN {
        return Err(SecretError::TooShort(len));
    }
    if len > MAX_TOKEN_LEN {
        return Err(SecretError::TooLong(len));
    }
    Ok(kind)
}

/// Optional metadata a JSON secret may carry beside the token.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SecretMetadata {
    /// `expires_at` from a JSON secret, as written there (RFC 3339 expected).
    pub expires_at: Option<String>,
}

/// Turns a secret string into a token: either the plain token, or a JSON object whose
/// `json_key` member holds it. The input buffer is wiped on every path.
pub fn parse_secret_string(
    raw: Zeroizing<String>,
    json_key: &str,
) -> Result<(Token, SecretMetadata), SecretError> {
    if raw.len() > MAX_SECRET_BYTES {
        return Err(SecretError::TooLarge(raw.len()));
    }
    if raw.is_empty() {
        return Err(SecretError::Empty);
    }
    let trimmed_start = raw.trim_start();
    if !trimmed_start.starts_with('{') {
        return Ok((Token::parse(raw)?, SecretMetadata::default()));
    }
    let mut object: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&raw)
        .map_err(|e| {
            // serde_json's messages name a line and column, never the content.
            SecretError::InvalidJson(format!("line {} column {}", e.line(), e.column()))
        })?;
    let result = (|| {
        let metadata = SecretMetadata {
            expires_at: object
                .get("expires_at")
                .and_then(|v| v.as_str())
                .map(str::to_owned),
        };
        match object.remove(json_key) {
            None => Err(SecretError::MissingJsonKey(json_key.to_owned())),
            Some(serde_json::Value::String(value)) => {
                Ok((Token::parse(Zeroizing::new(value))?, metadata))
            }
            Some(mut other) => {
                wipe_json(&mut other);
                Err(SecretError::JsonKeyNotString(json_key.to_owned()))
            }
        }
    })();
    for (_, mut value) in object {
        wipe_json(&mut value);
    }
    result
}

/// Turns a binary secret into a token when it is UTF-8 text; the usual case is a refusal.
pub fn parse_secret_binary(
    raw: Zeroizing<Vec<u8>>,
    json_key: &str,
) -> Result<(Token, SecretMetadata), SecretError> {
    if raw.len() > MAX_SECRET_BYTES {
        return Err(SecretError::TooLarge(raw.len()));
    }
    if std::str::from_utf8(&raw).is_err() {
        return Err(SecretError::Binary);
    }
    let text = Zeroizing::new(String::from_utf8_lossy(&raw).into_owned());
    parse_secret_string(text, json_key)
}

fn wipe_json(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::String(s) => s.zeroize(),
        serde_json::Value::Array(items) => items.iter_mut().for_each(wipe_json),
        serde_json::Value::Object(map) => map.values_mut().for_each(wipe_json),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oauth() -> String {
        format!("{OAUTH_PREFIX}{}", "A".repeat(90))
    }

    #[test]
    fn plain_oauth_token_is_accepted_and_selects_its_variable() {
        let (token, _) = parse_secret_string(Zeroizing::new(oauth()), "token").unwrap();
        assert_eq!(token.kind(), TokenKind::OAuth);
        assert_eq!(token.kind().variable(), "ANTHROPIC_OAUTH_TOKEN");
        assert_eq!(token.kind().other_variable(), "ANTHROPIC_API_KEY");
    }

    #[test]
    fn api_key_is_accepted() {
        let key = format!("{API_KEY_PREFIX}{}", "b_-9".repeat(20));
        let (token, _) = parse_secret_string(Zeroizing::new(key), "token").unwrap();
        assert_eq!(token.kind(), TokenKind::ApiKey);
    }

    #[test]
    fn json_secret_with_custom_key_and_expiry() {
        let raw = format!(
            r#"{{"note":"x","anthropic":"{}","expires_at":"2027-01-01T00:00:00Z"}}"#,
            oauth()
        );
        let (token, meta) = parse_secret_string(Zeroizing::new(raw), "anthropic").unwrap();
        assert_eq!(token.expose(), oauth());
        assert_eq!(meta.expires_at.as_deref(), Some("2027-01-01T00:00:00Z"));
    }

    #[test]
    fn refusals_name_the_problem_without_the_value() {
        let cases: Vec<(String, SecretError)> = vec![
            (String::new(), SecretError::Empty),
            (
                format!("{} ", oauth()),
                SecretError::TrailingCharacter {
                    what: "a space",
                    position: 104,
                },
            ),
            (
                format!("{}\r\n", oauth()),
                SecretError::TrailingCharacter {
                    what: "a carriage return",
                    position: 104,
                },
            ),
            (
                format!("{}\nEVIL=1", oauth()),
                SecretError::BadCharacter {
                    what: "a line break",
                    position: 104,
                },
            ),
            (
                format!("\"{}\"", oauth()),
                SecretError::BadCharacter {
                    what: "a double quote",
                    position: 1,
                },
            ),
            ("   \t".to_string(), SecretError::Blank),
            (
                "x$Yz9!kQ2#mW7&pL4*vN8@rT5^bH3(s".to_string(),
                SecretError::Placeholder(31),
            ),
            (
                format!("sk-ant-xyz01-{}", "A".repeat(90)),
                SecretError::UnknownPrefix,
            ),
            (format!("{OAUTH_PREFIX}short"), SecretError::TooShort(18)),
            (
                format!("{OAUTH_PREFIX}{}", "A".repeat(2000)),
                SecretError::TooLong(2013),
            ),
            (
                "{\"other\":\"x\"}".to_string(),
                SecretError::MissingJsonKey("token".into()),
            ),
            (
                "{\"token\":5}".to_string(),
                SecretError::JsonKeyNotString("token".into()),
            ),
        ];
        for (input, expected) in cases {
            let err = parse_secret_string(Zeroizing::new(input.clone()), "token").unwrap_err();
            assert_eq!(err, expected, "input of length {}", input.len());
            if input.len() > 20 {
                assert!(
                    !err.to_string().contains(&input[13..]),
                    "message echoes the value"
                );
            }
        }
    }

    #[test]
    fn debug_of_token_shows_only_the_fingerprint() {
        let (token, _) = parse_secret_string(Zeroizing::new(oauth()), "token").unwrap();
        let shown = format!("{token:?}");
        assert!(!shown.contains("AAAAAAAAAA"), "{shown}");
        assert!(shown.contains(token.fingerprint().as_str()));
        assert_eq!(token.fingerprint().as_str().len(), "sha256:".len() + 12);
    }

    /// Resolves to `true` only for types that implement `Display` (autoref specialisation).
    #[allow(dead_code)] // only the type matters
    struct Probe<'a, T>(&'a T);
    trait HasDisplay {
        fn implements_display(&self) -> bool {
            true
        }
    }
    impl<T: fmt::Display> HasDisplay for Probe<'_, T> {}
    trait NoDisplay {
        fn implements_display(&self) -> bool {
            false
        }
    }
    impl<T> NoDisplay for &Probe<'_, T> {}

    #[test]
    fn token_cannot_be_displayed() {
        let (token, _) = parse_secret_string(Zeroizing::new(oauth()), "token").unwrap();
        assert!(
            !(&Probe(&token)).implements_display(),
            "Token must not implement Display"
        );
        assert!(
            Probe(token.fingerprint()).implements_display(),
            "the probe itself works"
        );
    }

    #[test]
    fn binary_secret_is_refused_unless_it_is_text() {
        let err = parse_secret_binary(Zeroizing::new(vec![0xff, 0x00, 0x01]), "token").unwrap_err();
        assert_eq!(err, SecretError::Binary);
        let ok = parse_secret_binary(Zeroizing::new(oauth().into_bytes()), "token").unwrap();
        assert_eq!(ok.0.kind(), TokenKind::OAuth);
    }
}
