//! Property-based tests of the two pure cores: the store cleaner (arbitrary stores in; every
//! non-Anthropic byte out unchanged; idempotent) and secret parsing (never panics; accepts exactly
//! the documented token shape; never echoes the value in an error).

use openclaw_token_sync::openclaw::stores::document::{clean_documents, ProfileSelector};
use openclaw_token_sync::secret::{self, SecretError};
use proptest::prelude::*;
use std::collections::BTreeMap;
use zeroize::Zeroizing;

#[derive(Debug, Clone)]
struct Profile {
    id: String,
    provider: String,
    body: String,
}

fn profile() -> impl Strategy<Value = Profile> {
    (
        prop_oneof![
            Just("anthropic".to_string()),
            Just("openai".to_string()),
            Just("openrouter".to_string()),
            Just("openai-codex".to_string()),
            "[a-z]{3,8}",
        ],
        "[a-z0-9@._-]{1,12}",
        prop::collection::vec(("[a-zA-Z]{1,8}", "[ -~&&[^\"\\\\]]{0,16}"), 0..4),
        any::<bool>(),
    )
        .prop_map(|(provider, name, extra, inline)| {
            let mut fields = vec![
                format!("\"type\": \"api_key\""),
                format!("\"provider\": \"{provider}\""),
            ];
            for (k, v) in extra {
                if k != "provider" && k != "type" {
                    fields.push(format!("\"{k}\": \"{v}\""));
                }
            }
            let body = if inline {
                format!("{{ {} }}", fields.join(", "))
            } else {
                format!("{{\n      {}\n    }}", fields.join(",\n      "))
            };
            Profile {
                id: format!("{provider}:{name}"),
                provider: provider.to_string(),
                body,
            }
        })
}

fn store() -> impl Strategy<Value = (String, Vec<Profile>, Vec<(String, String)>)> {
    (
        prop::collection::vec(profile(), 0..8),
        prop::collection::vec(("[a-z]{4,10}", "[1-9][0-9]{0,5}"), 0..3),
        any::<u64>(),
    )
        .prop_map(|(profiles, unknown, seed)| {
            let mut seen = BTreeMap::new();
            let profiles: Vec<Profile> = profiles
                .into_iter()
                .filter(|p| seen.insert(p.id.clone(), ()).is_none())
                .collect();
            let unknown: Vec<(String, String)> = unknown
                .into_iter()
                .filter(|(k, _)| {
                    !["version", "profiles", "order", "lastGood", "usageStats"]
                        .contains(&k.as_str())
                })
                .collect::<BTreeMap<_, _>>()
                .into_iter()
                .collect();
            let ids: Vec<&Profile> = profiles.iter().collect();
            let pick =
                |i: u64| ids.get((seed.rotate_left(i as u32) % ids.len().max(1) as u64) as usize);
            let mut members = vec!["  \"version\": 1".to_string()];
            for (k, v) in &unknown {
                members.push(format!("  \"{k}\": {v}"));
            }
            let body: Vec<String> = profiles
                .iter()
                .map(|p| format!("    \"{}\": {}", p.id, p.body))
                .collect();
            members.push(format!("  \"profiles\": {{\n{}\n  }}", body.join(",\n")));
            let mut by_provider: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
            for p in &profiles {
                by_provider.entry(&p.provider).or_default().push(&p.id);
            }
            let order: Vec<String> = by_provider
                .iter()
                .map(|(prov, ids)| {
                    format!(
                        "    \"{prov}\": [{}]",
                        ids.iter()
                            .map(|i| format!("\"{i}\""))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                })
                .collect();
            members.push(format!("  \"order\": {{\n{}\n  }}", order.join(",\n")));
            let mut last_good: BTreeMap<&str, &str> = BTreeMap::new();
            for i in 0..3 {
                if let Some(p) = pick(i) {
                    last_good.entry(&p.provider).or_insert(&p.id);
                }
            }
            let last_good: Vec<String> = last_good
                .iter()
                .map(|(prov, id)| format!("    \"{prov}\": \"{id}\""))
                .collect();
            members.push(format!(
                "  \"lastGood\": {{\n{}\n  }}",
                last_good.join(",\n")
            ));
            let stats: Vec<String> = profiles
                .iter()
                .map(|p| format!("    \"{}\": {{ \"errorCount\": 0 }}", p.id))
                .collect();
            members.push(format!("  \"usageStats\": {{\n{}\n  }}", stats.join(",\n")));
            (
                format!("{{\n{}\n}}\n", members.join(",\n")),
                profiles,
                unknown,
            )
        })
}

/// A valid token of either kind (prefix, then `[A-Za-z0-9_-]`, 80 to 313 characters).
fn valid_token() -> BoxedStrategy<String> {
    (
        prop_oneof![Just("sk-ant-oat01-"), Just("sk-ant-api03-")],
        "[A-Za-z0-9_-]{67,300}",
    )
        .prop_map(|(prefix, rest)| format!("{prefix}{rest}"))
        .boxed()
}

/// What a secret might hold: anything printable, valid tokens, and tokens one step from valid
/// (one character replaced by one the shape forbids, one character too short, a wrong prefix).
fn token_candidate() -> impl Strategy<Value = String> {
    let near = (
        valid_token(),
        any::<prop::sample::Index>(),
        prop_oneof![
            Just(" "),
            Just("\n"),
            Just("="),
            Just("\""),
            Just("é"),
            Just("."),
            Just("+"),
            Just("\0")
        ],
    )
        .prop_map(|(token, at, bad)| {
            let i = at.index(token.len());
            let mut token = token;
            token.replace_range(i..i + 1, bad);
            token
        });
    let short = valid_token().prop_map(|token| token[..79].to_owned());
    let wrong_prefix = valid_token().prop_map(|token| token.replacen("sk-ant-", "sk-ant-x", 1));
    prop_oneof![
        "(sk-ant-(oat01|api03|xxx99)-)?[ -~\\n\\r\\té]{0,140}",
        valid_token(),
        near,
        short,
        wrong_prefix,
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn cleaning_keeps_every_other_byte_and_is_idempotent((text, profiles, unknown) in store()) {
        let selector = ProfileSelector::default();
        let cleaned = clean_documents(text.as_bytes(), None, &selector).expect("generated stores are valid");
        let output = match &cleaned.profiles {
            Some(bytes) => String::from_utf8(bytes.clone()).unwrap(),
            None => text.clone(),
        };
        let parsed: serde_json::Value = serde_json::from_str(&output).expect("output is JSON");
        for p in &profiles {
            let present = parsed["profiles"].get(&p.id).is_some();
            if p.provider == "anthropic" {
                prop_assert!(!present, "{} survived", p.id);
                prop_assert!(cleaned.cleaning.removed_profiles.contains(&p.id));
                prop_assert!(!output.contains(&format!("\"{}\"", p.id)), "a reference to {} survived", p.id);
            } else {
                prop_assert!(present, "{} was lost", p.id);
                let raw = format!("\"{}\": {}", p.id, p.body);
                prop_assert!(output.contains(&raw), "{} not byte for byte:\n{}", p.id, output);
            }
        }
        for (k, v) in &unknown {
            let raw = format!("\"{k}\": {v}");
            prop_assert!(output.contains(&raw), "unknown key {} changed", k);
        }
        if !profiles.iter().any(|p| p.provider == "anthropic") {
            prop_assert!(cleaned.profiles.is_none(), "nothing to remove means nothing rewritten");
        }
        let again = clean_documents(output.as_bytes(), None, &selector).unwrap();
        prop_assert!(again.cleaning.is_empty() && again.profiles.is_none(), "second pass changed something");
    }

    #[test]
    fn secret_parsing_accepts_exactly_the_token_shape(candidate in token_candidate()) {
        let result = secret::parse_secret_string(Zeroizing::new(candidate.clone()), "token");
        let shape_ok = (candidate.starts_with("sk-ant-oat01-") || candidate.starts_with("sk-ant-api03-"))
            && candidate.len() >= 80
            && candidate.len() <= 1024
            && candidate.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        match result {
            Ok((token, _)) => {
                prop_assert!(shape_ok);
                prop_assert_eq!(token.expose(), candidate.as_str());
            }
            Err(err) => {
                // JSON-looking inputs fail as JSON; everything else must fail the shape rules.
                prop_assert!(!shape_ok || candidate.trim_start().starts_with('{'), "a valid token was refused");
                let message = err.to_string();
                if candidate.len() >= 8 && !matches!(err, SecretError::MissingJsonKey(_)) {
                    prop_assert!(!message.contains(&candidate), "error echoes the value");
                }
            }
        }
    }
}
