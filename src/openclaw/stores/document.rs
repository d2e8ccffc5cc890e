//! OpenClaw's auth JSON documents (`{version, profiles}` and `{version, order, lastGood,
//! usageStats}`, in files or in SQLite rows) edited without disturbing anything we do not remove.
//!
//! Members are kept as raw JSON text (`serde_json::value::RawValue`): every profile, provider list
//! and unknown key we keep is written back exactly as it was read, byte for byte, in its original
//! order. Only the containers we edit are re-serialised, in the style the document already had
//! (pretty with two-space indentation as `JSON.stringify(x, null, 2)` writes, or compact), so a
//! document OpenClaw wrote comes back identical except for the removed entries.

use indexmap::IndexMap;
use serde::{Serialize, Serializer};
use serde_json::value::RawValue;
use std::collections::BTreeSet;

/// The only store `version` this tool understands.
pub const KNOWN_VERSION: u64 = 1;

/// Why a document was not edited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DocumentProblem {
    /// Not JSON, or not the shape OpenClaw writes.
    Corrupt(String),
    /// A `version` this tool does not know: left alone on purpose.
    UnknownVersion(String),
}

impl std::fmt::Display for DocumentProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DocumentProblem::Corrupt(why) => write!(f, "corrupt: {why}"),
            DocumentProblem::UnknownVersion(v) => write!(
                f,
                "unknown store version {v} (this tool knows version {KNOWN_VERSION}); left untouched"
            ),
        }
    }
}

enum Node {
    Raw(Box<RawValue>),
    Object(IndexMap<String, Node>),
    Array(Vec<Node>),
}

impl Serialize for Node {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Node::Raw(raw) => raw.serialize(serializer),
            Node::Object(map) => map.serialize(serializer),
            Node::Array(items) => items.serialize(serializer),
        }
    }
}

/// A top-level auth document.
pub struct Document {
    members: IndexMap<String, Node>,
    pretty: bool,
    trailing_newline: bool,
}

/// Which Anthropic profiles to remove.
#[derive(Clone, Debug, Default)]
pub struct ProfileSelector {
    /// `None`: every profile whose provider is `anthropic`. `Some(ids)`: only these ids, and only
    /// when they are Anthropic profiles.
    pub only_ids: Option<Vec<String>>,
    /// Keep our secret reference (`--delivery secret-ref`): a profile that
    /// [`crate::openclaw::secret_ref::is_our_reference`] is never removed.
    pub keep_reference: bool,
    /// Also clear the kept reference's `usageStats` (cooldown, disabled state, error count): the
    /// token behind it changed, and OpenClaw would not even try the new one until a cooldown
    /// earned by the old one expires (DESIGN.md section 10).
    pub reset_reference: bool,
    /// Select our secret reference only, whatever `only_ids` says (switching back to `env`
    /// delivery: OpenClaw refuses to delete a provider a profile still references).
    pub references_only: bool,
}

impl ProfileSelector {
    fn selects(&self, id: &str) -> bool {
        self.only_ids
            .as_ref()
            .is_none_or(|ids| ids.iter().any(|wanted| wanted == id))
    }
}

#[derive(serde::Deserialize)]
struct ProfileHead {
    provider: Option<String>,
}

fn corrupt(why: impl Into<String>) -> DocumentProblem {
    DocumentProblem::Corrupt(why.into())
}

fn parse_object(raw: &str, what: &str) -> Result<IndexMap<String, Box<RawValue>>, DocumentProblem> {
    serde_json::from_str(raw).map_err(|e| {
        if raw.trim_start().starts_with('{') {
            corrupt(format!(
                "{what}: invalid JSON at line {} column {}",
                e.line(),
                e.column()
            ))
        } else {
            corrupt(format!("{what} is not a JSON object"))
        }
    })
}

fn is_anthropic_id(id: &str) -> bool {
    id.starts_with("anthropic:")
}

fn is_reference(body: &RawValue) -> bool {
    serde_json::from_str::<serde_json::Value>(body.get())
        .is_ok_and(|value| crate::openclaw::secret_ref::is_our_reference(&value))
}

impl Document {
    /// Parses a document and checks its `version`.
    pub fn parse(text: &[u8]) -> Result<Document, DocumentProblem> {
        let text = std::str::from_utf8(text).map_err(|_| corrupt("not UTF-8 text"))?;
        let raw_members = parse_object(text, "the document")?;
        let members: IndexMap<String, Node> = raw_members
            .into_iter()
            .map(|(k, v)| (k, Node::Raw(v)))
            .collect();
        let document = Document {
            members,
            pretty: text.trim_end().contains('\n'),
            trailing_newline: text.ends_with('\n'),
        };
        match document.raw_member("version") {
            None => return Err(corrupt("no \"version\" member")),
            Some(v) if v.get().trim() == KNOWN_VERSION.to_string() => {}
            Some(v) => {
                let shown: String = v.get().chars().take(32).collect();
                return Err(DocumentProblem::UnknownVersion(shown));
            }
        }
        Ok(document)
    }

    fn raw_member(&self, key: &str) -> Option<&RawValue> {
        match self.members.get(key) {
            Some(Node::Raw(raw)) => Some(raw),
            _ => None,
        }
    }

    /// Checks that the members OpenClaw defines have the types it writes, before anything is edited.
    pub fn check_shape(&self) -> Result<(), DocumentProblem> {
        for key in ["profiles", "order", "lastGood", "usageStats"] {
            if let Some(raw) = self.raw_member(key) {
                let map = parse_object(raw.get(), &format!("\"{key}\""))?;
                for (inner_key, value) in &map {
                    let text = value.get().trim_start();
                    let ok = match key {
                        "profiles" | "usageStats" => text.starts_with('{'),
                        "order" => text.starts_with('['),
                        _ => text.starts_with('"'),
                    };
                    if !ok {
                        return Err(corrupt(format!(
                            "\"{key}\".\"{inner_key}\" has the wrong type"
                        )));
                    }
                }
            }
        }
        Ok(())
    }

    /// Ids of Anthropic profiles the selector picks, in document order, without changing anything.
    pub fn anthropic_profile_ids(
        &self,
        selector: &ProfileSelector,
    ) -> Result<Vec<String>, DocumentProblem> {
        let Some(raw) = self.raw_member("profiles") else {
            return Ok(Vec::new());
        };
        let profiles = parse_object(raw.get(), "\"profiles\"")?;
        let mut ids = Vec::new();
        for (id, body) in &profiles {
            let head: ProfileHead = serde_json::from_str(body.get())
                .map_err(|_| corrupt(format!("profile \"{id}\" is not an object")))?;
            let anthropic = match head.provider.as_deref() {
                Some(provider) => provider == "anthropic",
                None => is_anthropic_id(id),
            };
            if anthropic && selector.keep_reference && is_reference(body) {
                continue;
            }
            if selector.references_only {
                if anthropic && is_reference(body) {
                    ids.push(id.clone());
                }
                continue;
            }
            if anthropic && selector.selects(id) {
                ids.push(id.clone());
            }
        }
        Ok(ids)
    }

    /// Ids of the profiles that are our secret reference.
    pub fn reference_profile_ids(&self) -> Result<BTreeSet<String>, DocumentProblem> {
        let Some(raw) = self.raw_member("profiles") else {
            return Ok(BTreeSet::new());
        };
        Ok(parse_object(raw.get(), "\"profiles\"")?
            .into_iter()
            .filter(|(_, body)| is_reference(body))
            .map(|(id, _)| id)
            .collect())
    }

    /// Removes the given profiles. Returns the ids actually removed.
    pub fn remove_profiles(
        &mut self,
        ids: &BTreeSet<String>,
    ) -> Result<Vec<String>, DocumentProblem> {
        let Some(raw) = self.raw_member("profiles") else {
            return Ok(Vec::new());
        };
        let profiles = parse_object(raw.get(), "\"profiles\"")?;
        if !profiles.keys().any(|k| ids.contains(k)) {
            return Ok(Vec::new());
        }
        let mut removed = Vec::new();
        let kept: IndexMap<String, Node> = profiles
            .into_iter()
            .filter_map(|(id, body)| {
                if ids.contains(&id) {
                    removed.push(id);
                    None
                } else {
                    Some((id, Node::Raw(body)))
                }
            })
            .collect();
        self.members.insert("profiles".into(), Node::Object(kept));
        Ok(removed)
    }

    /// Anthropic-looking ids referenced in order / lastGood / usageStats that have no profile:
    /// leftovers of an earlier, partial clean-up.
    pub fn dangling_anthropic_references(
        &self,
        existing_profiles: &BTreeSet<String>,
    ) -> Result<BTreeSet<String>, DocumentProblem> {
        let mut found = BTreeSet::new();
        let mut consider = |id: &str| {
            if is_anthropic_id(id) && !existing_profiles.contains(id) {
                found.insert(id.to_owned());
            }
        };
        if let Some(raw) = self.raw_member("order") {
            for (_, list) in parse_object(raw.get(), "\"order\"")? {
                let ids: Vec<String> = serde_json::from_str(list.get())
                    .map_err(|_| corrupt("\"order\" holds a list that is not a list of ids"))?;
                ids.iter().for_each(|id| consider(id));
            }
        }
        if let Some(raw) = self.raw_member("lastGood") {
            for (_, id) in parse_object(raw.get(), "\"lastGood\"")? {
                if let Ok(id) = serde_json::from_str::<String>(id.get()) {
                    consider(&id);
                }
            }
        }
        if let Some(raw) = self.raw_member("usageStats") {
            for (id, _) in parse_object(raw.get(), "\"usageStats\"")? {
                consider(&id);
            }
        }
        Ok(found)
    }

    /// Ids of all profiles in the document.
    pub fn profile_ids(&self) -> Result<BTreeSet<String>, DocumentProblem> {
        match self.raw_member("profiles") {
            None => Ok(BTreeSet::new()),
            Some(raw) => Ok(parse_object(raw.get(), "\"profiles\"")?
                .into_keys()
                .collect()),
        }
    }

    /// Removes every reference to `ids` from order / lastGood / usageStats, and the `usageStats`
    /// entries of `stats_only` (a kept profile's cooldown). A provider whose order list becomes
    /// empty loses its entry. Returns how many references were removed.
    pub fn remove_references(
        &mut self,
        ids: &BTreeSet<String>,
        stats_only: &BTreeSet<String>,
    ) -> Result<usize, DocumentProblem> {
        let mut removed = 0;
        if let Some(raw) = self.raw_member("order") {
            let order = parse_object(raw.get(), "\"order\"")?;
            let mut changed = false;
            let mut edited = IndexMap::new();
            for (provider, list) in order {
                let items: Vec<Box<RawValue>> = serde_json::from_str(list.get())
                    .map_err(|_| corrupt(format!("\"order\".\"{provider}\" is not a list")))?;
                let before = items.len();
                let kept: Vec<Box<RawValue>> = items
                    .into_iter()
                    .filter(|item| {
                        serde_json::from_str::<String>(item.get())
                            .map_or(true, |id| !ids.contains(&id))
                    })
                    .collect();
                if kept.len() == before {
                    edited.insert(provider, Node::Raw(list));
                    continue;
                }
                changed = true;
                removed += before - kept.len();
                if !kept.is_empty() {
                    edited.insert(
                        provider,
                        Node::Array(kept.into_iter().map(Node::Raw).collect()),
                    );
                }
            }
            if changed {
                self.members.insert("order".into(), Node::Object(edited));
            }
        }
        if let Some(raw) = self.raw_member("lastGood") {
            let last_good = parse_object(raw.get(), "\"lastGood\"")?;
            let before = last_good.len();
            let kept: IndexMap<String, Node> = last_good
                .into_iter()
                .filter(|(_, id)| {
                    serde_json::from_str::<String>(id.get()).map_or(true, |id| !ids.contains(&id))
                })
                .map(|(k, v)| (k, Node::Raw(v)))
                .collect();
            if kept.len() != before {
                removed += before - kept.len();
                self.members.insert("lastGood".into(), Node::Object(kept));
            }
        }
        if let Some(raw) = self.raw_member("usageStats") {
            let stats = parse_object(raw.get(), "\"usageStats\"")?;
            let before = stats.len();
            let kept: IndexMap<String, Node> = stats
                .into_iter()
                .filter(|(id, _)| !ids.contains(id) && !stats_only.contains(id))
                .map(|(k, v)| (k, Node::Raw(v)))
                .collect();
            if kept.len() != before {
                removed += before - kept.len();
                self.members.insert("usageStats".into(), Node::Object(kept));
            }
        }
        Ok(removed)
    }

    /// The document as text, in the style it was read in.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = if self.pretty {
            serde_json::to_vec_pretty(&self.members)
        } else {
            serde_json::to_vec(&self.members)
        }
        .expect("serialising raw JSON members cannot fail");
        if self.trailing_newline {
            out.push(b'\n');
        }
        out
    }
}

/// A profile that OpenClaw will not use until `until_ms` (its `usageStats` entry has
/// `cooldownUntil` or `disabledUntil` in the future).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Cooldown {
    pub profile: String,
    pub until_ms: u64,
    pub reason: Option<String>,
}

#[derive(serde::Deserialize)]
struct UsageHead {
    #[serde(rename = "cooldownUntil")]
    cooldown_until: Option<u64>,
    #[serde(rename = "disabledUntil")]
    disabled_until: Option<u64>,
    #[serde(rename = "cooldownReason")]
    cooldown_reason: Option<String>,
}

/// Profiles in cooldown at `now_ms`, from a document holding `usageStats`.
pub fn cooldowns(text: &[u8], now_ms: u64) -> Result<Vec<Cooldown>, DocumentProblem> {
    let document = Document::parse(text)?;
    let Some(raw) = document.raw_member("usageStats") else {
        return Ok(Vec::new());
    };
    let mut found = Vec::new();
    for (profile, stats) in parse_object(raw.get(), "\"usageStats\"")? {
        let Ok(head) = serde_json::from_str::<UsageHead>(stats.get()) else {
            continue;
        };
        let until = head
            .cooldown_until
            .into_iter()
            .chain(head.disabled_until)
            .max();
        if let Some(until_ms) = until.filter(|u| *u > now_ms) {
            found.push(Cooldown {
                profile,
                until_ms,
                reason: head.cooldown_reason,
            });
        }
    }
    Ok(found)
}

/// The outcome of cleaning one store (one or two documents).
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Cleaning {
    /// Profile ids removed from `profiles`.
    pub removed_profiles: Vec<String>,
    /// References removed from order / lastGood / usageStats (to removed or dangling ids).
    pub removed_references: usize,
}

impl Cleaning {
    pub fn is_empty(&self) -> bool {
        self.removed_profiles.is_empty() && self.removed_references == 0
    }
}

/// The result of [`clean_documents`]: what was removed and the new text of each document that
/// changed (`None`: leave that document as it is).
#[derive(Debug, Default)]
pub struct CleanedDocuments {
    pub cleaning: Cleaning,
    pub profiles: Option<Vec<u8>>,
    pub state: Option<Vec<u8>>,
}

/// Cleans a profiles document and, where the layout keeps them apart, its state document.
/// Pure: text in, text out.
pub fn clean_documents(
    profiles_text: &[u8],
    state_text: Option<&[u8]>,
    selector: &ProfileSelector,
) -> Result<CleanedDocuments, DocumentProblem> {
    let mut profiles = Document::parse(profiles_text)?;
    profiles.check_shape()?;
    let mut state = match state_text {
        Some(text) => {
            let doc = Document::parse(text)?;
            doc.check_shape()?;
            Some(doc)
        }
        None => None,
    };
    let mut targets: BTreeSet<String> = profiles
        .anthropic_profile_ids(selector)?
        .into_iter()
        .collect();
    if selector.only_ids.is_none() && !selector.references_only {
        let existing = profiles.profile_ids()?;
        targets.extend(profiles.dangling_anthropic_references(&existing)?);
        if let Some(state) = &state {
            targets.extend(state.dangling_anthropic_references(&existing)?);
        }
    }
    let reset: BTreeSet<String> = if selector.reset_reference {
        profiles.reference_profile_ids()?
    } else {
        BTreeSet::new()
    };
    let removed_profiles = profiles.remove_profiles(&targets)?;
    let references_in_profiles = profiles.remove_references(&targets, &reset)?;
    let profiles_changed = !removed_profiles.is_empty() || references_in_profiles > 0;
    let mut cleaning = Cleaning {
        removed_profiles,
        removed_references: references_in_profiles,
    };
    let mut new_state = None;
    if let Some(state) = state.as_mut() {
        let removed = state.remove_references(&targets, &reset)?;
        if removed > 0 {
            cleaning.removed_references += removed;
            new_state = Some(state.to_bytes());
        }
    }
    Ok(CleanedDocuments {
        cleaning,
        profiles: profiles_changed.then(|| profiles.to_bytes()),
        state: new_state,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const STORE: &str = r#"{
  "version": 1,
  "profiles": {
    "anthropic:default": {"type": "token", "provider": "anthropic", "tokenRef": {"source": "file", "provider": "openclaw-token-sync", "id": "value"}},
    "anthropic:claude-code": {"type": "token", "provider": "anthropic", "token": "sk-ant-oat01-old"},
    "openai:default": {"type": "api_key", "provider": "openai", "key": "sk-openai"}
  },
  "usageStats": {
    "anthropic:default": {"cooldownUntil": 99999999999999, "cooldownReason": "auth", "errorCount": 3},
    "openai:default": {"errorCount": 1}
  }
}
"#;

    fn profiles_of(text: &[u8]) -> Vec<String> {
        Document::parse(text)
            .unwrap()
            .profile_ids()
            .unwrap()
            .into_iter()
            .collect()
    }

    #[test]
    fn secret_ref_keeps_our_reference_and_removes_every_other_anthropic_profile() {
        let selector = ProfileSelector {
            keep_reference: true,
            ..ProfileSelector::default()
        };
        let cleaned = clean_documents(STORE.as_bytes(), None, &selector).unwrap();
        assert_eq!(cleaned.cleaning.removed_profiles, ["anthropic:claude-code"]);
        let text = cleaned.profiles.unwrap();
        assert_eq!(profiles_of(&text), ["anthropic:default", "openai:default"]);
        // The reference's cooldown stays unless the token behind it changed.
        assert_eq!(cooldowns(&text, 0).unwrap().len(), 1);
    }

    #[test]
    fn a_changed_token_clears_the_references_cooldown_and_nothing_else() {
        let selector = ProfileSelector {
            keep_reference: true,
            reset_reference: true,
            ..ProfileSelector::default()
        };
        let cleaned = clean_documents(STORE.as_bytes(), None, &selector).unwrap();
        let text = cleaned.profiles.unwrap();
        assert!(cooldowns(&text, 0).unwrap().is_empty());
        let value: serde_json::Value = serde_json::from_slice(&text).unwrap();
        assert_eq!(value["usageStats"]["openai:default"]["errorCount"], 1);
        assert!(value["profiles"]["anthropic:default"]["tokenRef"].is_object());
    }

    #[test]
    fn switching_back_removes_the_reference_alone_whatever_the_profile_ids() {
        let selector = ProfileSelector {
            only_ids: Some(vec!["anthropic:claude-code".into()]),
            references_only: true,
            ..ProfileSelector::default()
        };
        let cleaned = clean_documents(STORE.as_bytes(), None, &selector).unwrap();
        assert_eq!(cleaned.cleaning.removed_profiles, ["anthropic:default"]);
        assert_eq!(
            profiles_of(&cleaned.profiles.unwrap()),
            ["anthropic:claude-code", "openai:default"]
        );
    }

    #[test]
    fn env_delivery_removes_the_reference_with_its_state() {
        let cleaned = clean_documents(STORE.as_bytes(), None, &ProfileSelector::default()).unwrap();
        assert_eq!(
            cleaned.cleaning.removed_profiles,
            ["anthropic:default", "anthropic:claude-code"]
        );
        let text = cleaned.profiles.unwrap();
        assert_eq!(profiles_of(&text), ["openai:default"]);
        assert!(cooldowns(&text, 0).unwrap().is_empty());
    }
}
