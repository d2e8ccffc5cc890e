//! Every credential-store generation, from fixtures: what is removed, that everything else is
//! kept byte for byte, idempotence, and that bad stores are reported and left untouched.
//! No root, no AWS: these call the library directly.

use openclaw_token_sync::openclaw::stores::document::ProfileSelector;
use openclaw_token_sync::openclaw::stores::{
    discover_agents, sqlite_agent, sqlite_shared, stores_in, Agent, CredentialStore,
};
use rusqlite::Connection;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

fn example() -> Vec<u8> {
    fs::read(crate::common::fixture(
        "openclaw/auth-profiles.example.json",
    ))
    .unwrap()
}

fn agent_dir(root: &Path, id: &str) -> PathBuf {
    let dir = root.join("agents").join(id).join("agent");
    fs::create_dir_all(&dir).unwrap();
    dir
}

fn write_private(path: &Path, bytes: &[u8]) {
    fs::write(path, bytes).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o600)).unwrap();
}

fn only_store(agent: &Agent, state: &Path) -> Box<dyn CredentialStore> {
    let mut found = stores_in(agent, state);
    assert_eq!(found.len(), 1, "expected one store for {}", agent.id);
    found.remove(0).store
}

fn all() -> ProfileSelector {
    ProfileSelector::default()
}

/// The text of a JSON member exactly as it stands in a document.
fn raw_member<'a>(text: &'a str, key: &str) -> &'a str {
    let start = text
        .find(&format!("\"{key}\": {{"))
        .unwrap_or_else(|| panic!("{key} in {text}"));
    let open = start + text[start..].find('{').unwrap();
    let mut depth = 0;
    for (offset, ch) in text[open..].char_indices() {
        match ch {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return &text[start..open + offset + 1];
                }
            }
            _ => {}
        }
    }
    panic!("unbalanced");
}

#[test]
fn single_file_store_loses_anthropic_entries_and_keeps_the_rest_byte_for_byte() {
    let root = tempfile::tempdir().unwrap();
    let dir = agent_dir(root.path(), "main");
    let mut original = String::from_utf8(example()).unwrap();
    // An unknown top-level key from a future release must survive in place.
    original = original.replacen(
        "\"version\": 1,",
        "\"version\": 1,\n  \"futureField\": {\"x\": [1, 2.50, true]},",
        1,
    );
    let path = dir.join("auth-profiles.json");
    write_private(&path, original.as_bytes());
    let agent = Agent {
        id: "main".into(),
        dir,
    };
    let store = only_store(&agent, root.path());
    assert_eq!(store.layout(), "json-single");

    let planned = store.inspect(&all()).unwrap();
    assert_eq!(
        planned.removed_profiles,
        ["anthropic:claude-code", "anthropic:default"]
    );
    assert_eq!(
        fs::read_to_string(&path).unwrap(),
        original,
        "inspect must not write"
    );
    let done = store.clean(&all()).unwrap();
    assert_eq!(done, planned);
    assert_eq!(done.removed_references, 5);

    let cleaned = fs::read_to_string(&path).unwrap();
    assert!(!cleaned.contains("anthropic"), "{cleaned}");
    for kept in [
        "openai:default",
        "openai-codex:user@example.com",
        "openrouter:default",
    ] {
        assert_eq!(
            raw_member(&cleaned, kept),
            raw_member(&original, kept),
            "{kept} must be kept byte for byte"
        );
    }
    assert!(
        cleaned.contains("\"futureField\": {\"x\": [1, 2.50, true]}"),
        "{cleaned}"
    );
    let keys: Vec<String> =
        serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&cleaned)
            .unwrap()
            .keys()
            .cloned()
            .collect();
    assert_eq!(
        keys,
        [
            "version",
            "futureField",
            "profiles",
            "order",
            "lastGood",
            "usageStats"
        ]
    );
    let value: serde_json::Value = serde_json::from_str(&cleaned).unwrap();
    assert_eq!(
        value["lastGood"],
        serde_json::json!({"openai": "openai:default"})
    );
    assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o600);

    // Idempotent: a second pass finds nothing and writes nothing.
    let mtime = fs::metadata(&path).unwrap().mtime_nsec();
    assert!(store.clean(&all()).unwrap().is_empty());
    assert_eq!(fs::read_to_string(&path).unwrap(), cleaned);
    assert_eq!(fs::metadata(&path).unwrap().mtime_nsec(), mtime);
}

#[test]
fn split_store_cleans_profiles_and_their_references_in_the_state_file() {
    let root = tempfile::tempdir().unwrap();
    let dir = agent_dir(root.path(), "work");
    let profiles = fs::read(crate::common::fixture("openclaw/split-auth-profiles.json")).unwrap();
    let state = fs::read(crate::common::fixture("openclaw/split-auth-state.json")).unwrap();
    write_private(&dir.join("auth-profiles.json"), &profiles);
    write_private(&dir.join("auth-state.json"), &state);
    let agent = Agent {
        id: "work".into(),
        dir: dir.clone(),
    };
    let store = only_store(&agent, root.path());
    assert_eq!(store.layout(), "json-split");
    let done = store.clean(&all()).unwrap();
    assert_eq!(
        done.removed_profiles,
        ["anthropic:claude-code", "anthropic:default"]
    );
    assert_eq!(done.removed_references, 5);
    let state_after: serde_json::Value =
        serde_json::from_slice(&fs::read(dir.join("auth-state.json")).unwrap()).unwrap();
    assert_eq!(state_after["order"], serde_json::json!({}));
    assert_eq!(
        state_after["lastGood"],
        serde_json::json!({"openai": "openai:default"})
    );
    assert_eq!(state_after["usageStats"], serde_json::json!({}));
    let profiles_after: serde_json::Value =
        serde_json::from_slice(&fs::read(dir.join("auth-profiles.json")).unwrap()).unwrap();
    let profiles_before: serde_json::Value = serde_json::from_slice(&profiles).unwrap();
    assert_eq!(
        profiles_after["profiles"]["openai-codex:user@example.com"],
        profiles_before["profiles"]["openai-codex:user@example.com"]
    );
    assert_eq!(profiles_after["profiles"].as_object().unwrap().len(), 3);
}

#[test]
fn a_selector_removes_only_the_named_profiles() {
    let root = tempfile::tempdir().unwrap();
    let dir = agent_dir(root.path(), "main");
    write_private(&dir.join("auth-profiles.json"), &example());
    let agent = Agent {
        id: "main".into(),
        dir: dir.clone(),
    };
    let store = only_store(&agent, root.path());
    let only = ProfileSelector {
        only_ids: Some(vec![
            "anthropic:claude-code".into(),
            "openai:default".into(),
        ]),
        ..ProfileSelector::default()
    };
    let done = store.clean(&only).unwrap();
    assert_eq!(
        done.removed_profiles,
        ["anthropic:claude-code"],
        "non-Anthropic ids are never removed"
    );
    let after: serde_json::Value =
        serde_json::from_slice(&fs::read(dir.join("auth-profiles.json")).unwrap()).unwrap();
    assert!(after["profiles"].get("anthropic:default").is_some());
    assert_eq!(
        after["order"]["anthropic"],
        serde_json::json!(["anthropic:default"])
    );
}

const AGENT_SCHEMA: &str = "
    CREATE TABLE auth_profile_store (store_key TEXT NOT NULL PRIMARY KEY, store_json TEXT NOT NULL, updated_at INTEGER NOT NULL) STRICT;
    CREATE TABLE auth_profile_state (state_key TEXT NOT NULL PRIMARY KEY, state_json TEXT NOT NULL, updated_at INTEGER NOT NULL) STRICT;
    CREATE TABLE sessions (id TEXT PRIMARY KEY, body TEXT NOT NULL);
    INSERT INTO sessions VALUES ('s1', '{\"anthropic:claude-code\":\"not ours to touch\"}');
    PRAGMA journal_mode = WAL;
";

fn compact(value: &serde_json::Value) -> String {
    serde_json::to_string(value).unwrap()
}

fn split_documents() -> (serde_json::Value, serde_json::Value) {
    let example: serde_json::Value = serde_json::from_slice(&example()).unwrap();
    let profiles = serde_json::json!({"version": 1, "profiles": example["profiles"]});
    let state = serde_json::json!({"version": 1, "order": example["order"], "lastGood": example["lastGood"], "usageStats": example["usageStats"]});
    (profiles, state)
}

#[test]
fn per_agent_sqlite_store_is_edited_in_one_transaction_and_nothing_else_changes() {
    let root = tempfile::tempdir().unwrap();
    let dir = agent_dir(root.path(), "work");
    let db = dir.join(sqlite_agent::FILE_NAME);
    let (profiles, state) = split_documents();
    {
        let conn = Connection::open(&db).unwrap();
        conn.execute_batch(AGENT_SCHEMA).unwrap();
        conn.execute(
            "INSERT INTO auth_profile_store VALUES ('primary', ?1, 1000)",
            [compact(&profiles)],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO auth_profile_state VALUES ('primary', ?1, 1000)",
            [compact(&state)],
        )
        .unwrap();
    }
    let agent = Agent {
        id: "work".into(),
        dir: dir.clone(),
    };
    let store = only_store(&agent, root.path());
    assert_eq!(store.layout(), "sqlite-agent");
    assert_eq!(store.inspect(&all()).unwrap().removed_profiles.len(), 2);
    let done = store.clean(&all()).unwrap();
    assert_eq!(
        done.removed_profiles,
        ["anthropic:claude-code", "anthropic:default"]
    );

    let conn = Connection::open(&db).unwrap();
    let (store_json, updated): (String, i64) = conn
        .query_row(
            "SELECT store_json, updated_at FROM auth_profile_store WHERE store_key='primary'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert!(
        updated > 1_700_000_000_000,
        "updated_at is set in milliseconds"
    );
    assert!(!store_json.contains("anthropic"));
    assert!(
        !store_json.contains('\n'),
        "a compact document stays compact"
    );
    let kept = compact(&profiles["profiles"]["openai-codex:user@example.com"]);
    assert!(store_json.contains(&kept), "other providers byte for byte");
    let state_json: String = conn
        .query_row("SELECT state_json FROM auth_profile_state", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(
        state_json,
        r#"{"version":1,"order":{},"lastGood":{"openai":"openai:default"},"usageStats":{}}"#
    );
    let session: String = conn
        .query_row("SELECT body FROM sessions", [], |r| r.get(0))
        .unwrap();
    assert!(session.contains("not ours to touch"));
    assert!(
        !dir.join("auth-profiles.json").exists(),
        "no JSON store may appear beside SQLite"
    );
    assert!(store.clean(&all()).unwrap().is_empty(), "idempotent");
}

#[test]
fn shared_sqlite_store_of_the_main_agent() {
    let root = tempfile::tempdir().unwrap();
    let main_dir = agent_dir(root.path(), "main");
    let db = sqlite_shared::path_in(root.path());
    fs::create_dir_all(db.parent().unwrap()).unwrap();
    let (profiles, state) = split_documents();
    {
        let conn = Connection::open(&db).unwrap();
        conn.execute_batch("CREATE TABLE config_machine_state (state_key TEXT NOT NULL PRIMARY KEY, value_json TEXT NOT NULL, updated_at_ms INTEGER NOT NULL) STRICT;").unwrap();
        conn.execute(
            "INSERT INTO config_machine_state VALUES ('authProfiles.store', ?1, 5)",
            [compact(&profiles)],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO config_machine_state VALUES ('authProfiles.state', ?1, 5)",
            [compact(&state)],
        )
        .unwrap();
        conn.execute("INSERT INTO config_machine_state VALUES ('auth.sharedStore', '{\"location\":\"state-db\"}', 5)", []).unwrap();
    }
    let main = Agent {
        id: "main".into(),
        dir: main_dir,
    };
    let store = only_store(&main, root.path());
    assert_eq!(store.layout(), "sqlite-shared");
    let done = store.clean(&all()).unwrap();
    assert_eq!(done.removed_profiles.len(), 2);
    let conn = Connection::open(&db).unwrap();
    let (marker, at): (String, i64) = conn
        .query_row("SELECT value_json, updated_at_ms FROM config_machine_state WHERE state_key='auth.sharedStore'", [], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap();
    assert_eq!((marker.as_str(), at), ("{\"location\":\"state-db\"}", 5));
    // Other agents do not see the shared store.
    let other = Agent {
        id: "work".into(),
        dir: agent_dir(root.path(), "work"),
    };
    assert!(stores_in(&other, root.path()).is_empty());
}

#[test]
fn a_leftover_json_beside_sqlite_is_cleaned_in_place_and_reported() {
    let root = tempfile::tempdir().unwrap();
    let dir = agent_dir(root.path(), "work");
    Connection::open(dir.join(sqlite_agent::FILE_NAME))
        .unwrap()
        .execute_batch(AGENT_SCHEMA)
        .unwrap();
    write_private(
        &dir.join("auth-profiles.json"),
        &fs::read(crate::common::fixture("openclaw/case-a.json")).unwrap(),
    );
    let agent = Agent {
        id: "work".into(),
        dir: dir.clone(),
    };
    let found = stores_in(&agent, root.path());
    assert_eq!(found.len(), 2);
    let leftover = found
        .iter()
        .find(|d| d.store.layout() == "json-single")
        .unwrap();
    assert!(leftover
        .note
        .as_deref()
        .unwrap()
        .contains("openclaw doctor --fix"));
    assert_eq!(
        leftover.store.clean(&all()).unwrap().removed_profiles,
        ["anthropic:claude-code"]
    );
    // The empty database has no rows: nothing to do, and no error.
    let database = found
        .iter()
        .find(|d| d.store.layout() == "sqlite-agent")
        .unwrap();
    assert!(database.store.clean(&all()).unwrap().is_empty());
}

#[test]
fn bad_stores_are_reported_and_left_untouched() {
    let root = tempfile::tempdir().unwrap();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "invalid-json",
            b"{\"version\": 1, \"profiles\": {".to_vec(),
            "invalid JSON",
        ),
        ("not-an-object", b"[1, 2]".to_vec(), "not a JSON object"),
        (
            "unknown-version",
            fs::read(crate::common::fixture("openclaw/unknown-version.json")).unwrap(),
            "unknown store version 2",
        ),
        (
            "profiles-wrong-type",
            b"{\"version\":1,\"profiles\":[]}".to_vec(),
            "not a JSON object",
        ),
        (
            "profile-wrong-type",
            b"{\"version\":1,\"profiles\":{\"anthropic:x\":\"y\"}}".to_vec(),
            "wrong type",
        ),
        (
            "order-wrong-type",
            b"{\"version\":1,\"profiles\":{},\"order\":{\"anthropic\":\"x\"}}".to_vec(),
            "wrong type",
        ),
        (
            "no-version",
            b"{\"profiles\":{}}".to_vec(),
            "no \"version\"",
        ),
        ("not-utf8", vec![0xff, 0xfe, b'{'], "not UTF-8"),
    ];
    for (label, bytes, expected) in cases {
        let dir = agent_dir(root.path(), label);
        let path = dir.join("auth-profiles.json");
        write_private(&path, &bytes);
        let store = only_store(
            &Agent {
                id: label.into(),
                dir,
            },
            root.path(),
        );
        let err = store.clean(&all()).unwrap_err().to_string();
        assert!(err.contains(expected), "{label}: {err}");
        assert!(
            err.contains(&path.display().to_string()),
            "{label}: names the file: {err}"
        );
        assert_eq!(fs::read(&path).unwrap(), bytes, "{label}: left untouched");
    }

    // A directory where the store file should be, and a symlink to a file we must not read.
    let dir = agent_dir(root.path(), "dir-not-file");
    fs::create_dir(dir.join("auth-profiles.json")).unwrap();
    let err = only_store(
        &Agent {
            id: "d".into(),
            dir,
        },
        root.path(),
    )
    .inspect(&all())
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("not a regular file") || err.contains("directory"),
        "{err}"
    );
    let dir = agent_dir(root.path(), "symlink");
    let outside = root.path().join("outside.json");
    write_private(&outside, &example());
    std::os::unix::fs::symlink(&outside, dir.join("auth-profiles.json")).unwrap();
    let err = only_store(
        &Agent {
            id: "s".into(),
            dir,
        },
        root.path(),
    )
    .clean(&all())
    .unwrap_err()
    .to_string();
    assert!(err.contains("symlink"), "{err}");
    assert_eq!(fs::read(&outside).unwrap(), example());

    // SQLite: not a database, and a database of another schema.
    let dir = agent_dir(root.path(), "not-a-db");
    fs::write(
        dir.join(sqlite_agent::FILE_NAME),
        b"this is not a database, just text long enough to fail the header check",
    )
    .unwrap();
    let before = fs::read(dir.join(sqlite_agent::FILE_NAME)).unwrap();
    let err = only_store(
        &Agent {
            id: "n".into(),
            dir: dir.clone(),
        },
        root.path(),
    )
    .clean(&all())
    .unwrap_err()
    .to_string();
    assert!(err.contains("not a") || err.contains("database"), "{err}");
    assert_eq!(fs::read(dir.join(sqlite_agent::FILE_NAME)).unwrap(), before);
    let dir = agent_dir(root.path(), "other-schema");
    Connection::open(dir.join(sqlite_agent::FILE_NAME))
        .unwrap()
        .execute_batch("CREATE TABLE auth_profile_store (k TEXT);")
        .unwrap();
    let err = only_store(
        &Agent {
            id: "o".into(),
            dir,
        },
        root.path(),
    )
    .clean(&all())
    .unwrap_err()
    .to_string();
    assert!(err.contains("unknown schema"), "{err}");
}

#[test]
fn a_json_store_locked_by_a_live_openclaw_process_is_not_edited() {
    let root = tempfile::tempdir().unwrap();
    let dir = agent_dir(root.path(), "main");
    let path = dir.join("auth-profiles.json");
    write_private(&path, &example());
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    fs::write(
        dir.join("auth-profiles.json.lock"),
        format!("{{\"pid\":{},\"createdAt\":{now_ms}}}", std::process::id()),
    )
    .unwrap();
    let store = only_store(
        &Agent {
            id: "main".into(),
            dir,
        },
        root.path(),
    );
    let err = store.clean(&all()).unwrap_err().to_string();
    assert!(err.contains("held by a running OpenClaw process"), "{err}");
    assert_eq!(fs::read(&path).unwrap(), example());
}

#[test]
fn agents_come_from_disk_and_from_both_config_formats() {
    let root = tempfile::tempdir().unwrap();
    let home = root.path().join("home");
    let state = home.join(".openclaw");
    agent_dir(&state, "alpha");
    let outside = home.join("elsewhere/agent");
    fs::create_dir_all(&outside).unwrap();
    fs::write(
        state.join("openclaw.json"),
        "// JSON5, as OpenClaw writes it by hand\n{ agents: { list: [ { id: 'main' }, { id: 'work', agentDir: '~/elsewhere/agent' }, ], }, }\n",
    )
    .unwrap();
    let (agents, warnings) = discover_agents(&state, &home);
    assert!(warnings.is_empty(), "{warnings:?}");
    let ids: Vec<&str> = agents.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(ids, ["main", "alpha", "work"]);
    assert_eq!(agents[2].dir, outside);

    fs::write(
        state.join("openclaw.json"),
        format!(
            "{{\"agents\":{{\"entries\":{{\"main\":{{}},\"work\":{{\"agentDir\":\"{}\"}}}}}}}}",
            outside.display()
        ),
    )
    .unwrap();
    let (agents, _) = discover_agents(&state, &home);
    assert!(agents.iter().any(|a| a.id == "work" && a.dir == outside));

    fs::write(state.join("openclaw.json"), "{ this is not json").unwrap();
    let (agents, warnings) = discover_agents(&state, &home);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("openclaw.json"));
    let ids: Vec<&str> = agents.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(ids, ["main", "alpha"], "agents on disk are still handled");
}

#[test]
fn state_dir_resolution_prefers_the_override_then_the_default_then_legacy() {
    use openclaw_token_sync::openclaw::state_dir;
    let root = tempfile::tempdir().unwrap();
    let home = root.path();
    let explicit = home.join("custom");
    let dir = |explicit: Option<&std::path::Path>| state_dir::resolve(home, explicit, &[]).path;
    assert_eq!(dir(Some(&explicit)), explicit);
    assert_eq!(dir(None), home.join(".openclaw"));
    fs::create_dir(home.join(".clawdbot")).unwrap();
    assert_eq!(dir(None), home.join(".clawdbot"));
    fs::create_dir(home.join(".openclaw")).unwrap();
    assert_eq!(dir(None), home.join(".openclaw"));
}

/// Many takers race for a store lock that starts out stale, round after round: at no moment do
/// two of them hold it (a takeover never removes a fresh lock another taker just made).
#[test]
fn racing_takeovers_of_a_stale_store_lock_never_give_two_holders() {
    use openclaw_token_sync::openclaw::stores::json_lock::StoreLock;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Barrier};
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("auth-profiles.json");
    let lock_path = dir.path().join("auth-profiles.json.lock");
    const TAKERS: usize = 8;
    let holders = Arc::new(AtomicUsize::new(0));
    let overlaps = Arc::new(AtomicUsize::new(0));
    for _round in 0..10 {
        // Stale: created long ago.
        std::fs::write(&lock_path, r#"{"pid":1,"createdAt":1000}"#).unwrap();
        let barrier = Arc::new(Barrier::new(TAKERS));
        let threads: Vec<_> = (0..TAKERS)
            .map(|_| {
                let (store, barrier) = (store.clone(), barrier.clone());
                let (holders, overlaps) = (holders.clone(), overlaps.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    let lock = StoreLock::acquire(&store, std::time::Duration::from_secs(20))
                        .expect("every taker gets the lock in turn");
                    if holders.fetch_add(1, Ordering::SeqCst) != 0 {
                        overlaps.fetch_add(1, Ordering::SeqCst);
                    }
                    std::thread::sleep(std::time::Duration::from_millis(2));
                    holders.fetch_sub(1, Ordering::SeqCst);
                    drop(lock);
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        assert!(!lock_path.exists(), "the last holder removed its lock");
    }
    assert_eq!(
        overlaps.load(Ordering::SeqCst),
        0,
        "two takers held the lock at once"
    );
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(left.is_empty(), "nothing left aside: {left:?}");
}
