//! The fleet: `trigger` and `put` against moto (through the counting proxy, whose
//! ListCommandInvocations stand-in is named in tests/support/fault_proxy.py), and the SSM
//! document's own commands rendered with parameters and executed for real on this machine.

use crate::common::*;
use openclaw_token_sync::fleet::ssm_document;
use serde_json::Value;
use std::path::Path;
use std::process::Command;

fn moto_admin(args: &[&str]) -> String {
    moto_admin_in("us-east-1", args)
}

fn moto_admin_in(region: &str, args: &[&str]) -> String {
    let output = Command::new(tools_dir().join("venv/bin/python"))
        .arg(Path::new(MANIFEST_DIR).join("tests/support/moto_admin.py"))
        .args(args)
        .envs(aws_env(&moto().endpoint))
        .env("AWS_DEFAULT_REGION", region)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "moto_admin {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn document(name: &str) -> String {
    moto_admin(&[
        "document",
        name,
        Path::new(MANIFEST_DIR)
            .join("deploy/ssm-document.json")
            .to_str()
            .unwrap(),
    ]);
    name.to_owned()
}

pub fn instances(count: usize, tag: &str) -> Vec<String> {
    moto_admin(&["instances", &count.to_string(), "Role", tag])
        .lines()
        .map(str::to_owned)
        .collect()
}

/// `trigger --secret-id prod/anthropic --document DOC --wait --poll-interval 1 ARGS...` through
/// the counting proxy.
fn trigger_and_wait(proxy: &FaultProxy, doc: &str, args: &[&str]) -> Run {
    let mut all = vec![
        "trigger",
        "--secret-id",
        "prod/anthropic",
        "--document",
        doc,
        "--wait",
        "--poll-interval",
        "1",
    ];
    all.extend_from_slice(args);
    run_tool(&all, &[("AWS_ENDPOINT_URL", proxy.endpoint.as_str())], &[])
}

#[test]
fn trigger_by_tag_sends_one_command_and_reports_every_instance() {
    let proxy = FaultProxy::start();
    let doc = document("OpenClawTokenSync-tag");
    let ids = instances(5, "gw-tag");
    let run = trigger_and_wait(
        &proxy,
        &doc,
        &[
            "--targets",
            "tag:Role=gw-tag",
            "--user",
            "ubuntu",
            "--force",
            "--output",
            "json",
        ],
    );
    run.expect_status(0);
    let report = run.json();
    assert_eq!(report["result"], "succeeded", "{report}");
    assert_eq!(report["exit_code"], 0, "{report}");
    assert_eq!(proxy.count("AmazonSSM.SendCommand"), 1);
    let mut seen: Vec<String> = report["instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["instance_id"].as_str().unwrap().to_owned())
        .collect();
    seen.sort();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(seen, expected);
    assert!(report["instances"]
        .as_array()
        .unwrap()
        .iter()
        .all(|i| i["status"] == "Success"));
    assert_eq!(report["succeeded"], 5);

    // The parameters SSM received are the document's, validated.
    let command_id = report["command_ids"][0].as_str().unwrap();
    let listed = aws_json("ssm", "list-commands", &["--command-id", command_id]);
    let parameters = &listed["Commands"][0]["Parameters"];
    assert_eq!(parameters["action"], serde_json::json!(["sync"]));
    assert_eq!(
        parameters["secretId"],
        serde_json::json!(["prod/anthropic"])
    );
    assert_eq!(parameters["user"], serde_json::json!(["ubuntu"]));
    assert_eq!(parameters["extraArgs"], serde_json::json!(["--force"]));
    assert_eq!(listed["Commands"][0]["Targets"][0]["Key"], "tag:Role");
    assert!(
        parameters.get("versionStage").is_none(),
        "AWSCURRENT is the document's default: not sent, so older documents keep working"
    );

    // A canary push names the label.
    let run = trigger_and_wait(
        &proxy,
        &doc,
        &[
            "--targets",
            "tag:Role=gw-tag",
            "--version-stage",
            "CANARY",
            "--output",
            "json",
        ],
    );
    run.expect_status(0);
    let command_id = run.json()["command_ids"][0].as_str().unwrap().to_owned();
    let listed = aws_json("ssm", "list-commands", &["--command-id", &command_id]);
    assert_eq!(
        listed["Commands"][0]["Parameters"]["versionStage"],
        serde_json::json!(["CANARY"])
    );
    // No --user: none is sent, so each instance's own config decides (not "ubuntu").
    assert!(
        listed["Commands"][0]["Parameters"].get("user").is_none(),
        "{listed}"
    );

    // Text output: one row per instance.
    let run = trigger_and_wait(&proxy, &doc, &["--targets", "tag:Role=gw-tag"]);
    run.expect_status(0);
    for id in &ids {
        assert!(run.stdout.contains(&format!("{id} ")), "{}", run.stdout);
    }
    assert!(
        run.stdout.contains("5 instance(s): 5 succeeded, 0 failed"),
        "{}",
        run.stdout
    );

    // A tag that matches nothing reached nobody: a failure that names the tag.
    let run = trigger_and_wait(&proxy, &doc, &["--targets", "tag:Role=gw-nobody"]);
    run.expect_status(1);
    assert!(run.stdout.contains("0 instance(s)"), "{}", run.stdout);
    assert!(
        run.stderr
            .contains("no instance matched tag:Role=gw-nobody"),
        "{}",
        run.stderr
    );
}

/// Calls moto through boto3's CLI-like client for assertions the tool does not make itself (and
/// set-ups it refuses to make); a value starting with `[` is a JSON list.
fn aws_json(service: &str, operation: &str, args: &[&str]) -> Value {
    let script = r#"
import json, sys, boto3
service, operation, *rest = sys.argv[1:]
kwargs = {}
for i in range(0, len(rest), 2):
    key = "".join(p.capitalize() for p in rest[i][2:].split("-"))
    value = rest[i + 1]
    kwargs[key] = json.loads(value) if value.startswith("[") else {"true": True, "false": False}.get(value, value)
method = getattr(boto3.client(service), operation.replace("-", "_"))
print(json.dumps(method(**kwargs), default=str))
"#;
    let output = Command::new(tools_dir().join("venv/bin/python"))
        .arg("-c")
        .arg(script)
        .arg(service)
        .arg(operation)
        .args(args)
        .envs(aws_env(&moto().endpoint))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn instance_ids_go_fifty_per_command() {
    // moto adds every EC2 instance of the region to a command sent without Targets (its tag
    // filter is then empty), so this test runs in a region where moto has no instances.
    let region = "eu-west-3";
    let proxy = FaultProxy::start();
    let doc = "OpenClawTokenSync-ids";
    moto_admin_in(
        region,
        &[
            "document",
            doc,
            Path::new(MANIFEST_DIR)
                .join("deploy/ssm-document.json")
                .to_str()
                .unwrap(),
        ],
    );
    let ids: Vec<String> = (1..=120).map(|n| format!("i-{n:017x}")).collect();
    let joined = ids.join(",");
    let run = trigger_and_wait(
        &proxy,
        doc,
        &[
            "--region",
            region,
            "--instance-ids",
            &joined,
            "--output",
            "json",
        ],
    );
    run.expect_status(0);
    assert_eq!(
        proxy.count("AmazonSSM.SendCommand"),
        3,
        "120 ids = 50 + 50 + 20"
    );
    let reported: Vec<String> = run.json()["instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["instance_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(reported, ids);
    assert_eq!(run.json()["command_ids"].as_array().unwrap().len(), 3);
}

#[test]
fn a_thousand_instances_cost_n_over_50_calls_per_poll_round() {
    let proxy = FaultProxy::start();
    let doc = document("OpenClawTokenSync-1000");
    instances(1000, "gw-1000");
    let run = trigger_and_wait(
        &proxy,
        &doc,
        &["--targets", "tag:Role=gw-1000", "--output", "json"],
    );
    run.expect_status(0);
    assert_eq!(run.json()["succeeded"], 1000);
    assert_eq!(proxy.count("AmazonSSM.SendCommand"), 1);
    assert_eq!(
        proxy.count("AmazonSSM.ListCommands"),
        1,
        "one poll round (moto completes at once)"
    );
    assert_eq!(
        proxy.count("AmazonSSM.ListCommandInvocations"),
        20,
        "1000 invocations, 50 per page"
    );
    eprintln!(
        "trigger, 1000 instances: SendCommand {}, ListCommands {}, ListCommandInvocations {}",
        proxy.count("AmazonSSM.SendCommand"),
        proxy.count("AmazonSSM.ListCommands"),
        proxy.count("AmazonSSM.ListCommandInvocations")
    );
}

#[test]
fn hostile_parameters_are_rejected_before_anything_is_sent() {
    let proxy = FaultProxy::start();
    let endpoint = [("AWS_ENDPOINT_URL", proxy.endpoint.as_str())];
    let cases: [&[&str]; 5] = [
        &["--user", "root; id"],
        &["--secret-id", "x'$(touch /tmp/ocsync-pwned)'"],
        &["--unit", "gw.service; reboot"],
        &["--instance-region", "us-east-1`id`"],
        &["--instance-ids", "i-0123;id"],
    ];
    for extra in cases {
        let mut args = vec!["trigger"];
        if extra[0] != "--instance-ids" {
            args.extend_from_slice(&["--targets", "tag:Role=none"]);
        }
        if extra[0] != "--secret-id" {
            args.extend_from_slice(&["--secret-id", "prod/anthropic"]);
        }
        args.extend_from_slice(extra);
        let run = run_tool(&args, &endpoint, &[]);
        run.expect_status(2);
        assert!(
            run.stderr.contains("SSM parameter")
                || run.stderr.contains("not an EC2 instance id")
                || run.stderr.contains("unit name"),
            "{extra:?}: {}",
            run.stderr
        );
    }
    assert_eq!(proxy.count("AmazonSSM.SendCommand"), 0);
    // Sent some other way (the console, another tool), the document itself refuses the same
    // values: its own allowedPattern for each parameter.
    for (parameter, value) in [
        ("user", "root; id"),
        ("secretId", "x'$(touch /tmp/ocsync-pwned)'"),
        ("unit", "gw.service; reboot"),
        ("region", "us-east-1`id`"),
    ] {
        assert!(
            ssm_document::validate(parameter, value).is_err(),
            "the document accepts {parameter}={value}"
        );
    }
}

fn put(secret: &str, stdin: &str, extra: &[&str], tokens: &[String]) -> Run {
    put_at(&moto().endpoint, secret, stdin, extra, tokens)
}

#[test]
fn put_validates_stores_idempotently_and_can_chain_a_trigger() {
    let first = new_token(false);
    let secret = create_secret("tests/put", &first);
    let token = new_token(false);
    let tokens = vec![first.clone(), token.clone()];

    let run = put(
        &secret,
        &format!("{token}\n"),
        &["--output", "json"],
        &tokens,
    );
    run.expect_status(0);
    let report = run.json();
    assert_eq!(report["fingerprint"], fingerprint(&token));
    let current = aws_json(
        "secretsmanager",
        "get-secret-value",
        &["--secret-id", &secret],
    );
    assert_eq!(current["SecretString"], token.as_str());
    assert_eq!(current["VersionId"], report["version_id"]);

    // The same token again: the same version, not a new one.
    let again = put(&secret, &token, &["--output", "json"], &tokens);
    again.expect_status(0);
    assert_eq!(again.json()["version_id"], report["version_id"]);
    let versions = aws_json(
        "secretsmanager",
        "list-secret-version-ids",
        &["--secret-id", &secret],
    );
    assert_eq!(
        versions["Versions"].as_array().unwrap().len(),
        2,
        "first + one put"
    );

    // Invalid input: refused before anything is sent; AWSCURRENT unchanged.
    for bad in [
        format!("{token}\nsecond line\n"),
        "sk-ant-oat01-short\n".to_string(),
        String::new(),
        format!(" {token}"),
    ] {
        let run = put(&secret, &bad, &[], &tokens);
        run.expect_status(1);
        assert!(run.stderr.contains("standard input"), "{}", run.stderr);
        let current = aws_json(
            "secretsmanager",
            "get-secret-value",
            &["--secret-id", &secret],
        );
        assert_eq!(current["SecretString"], token.as_str());
    }

    // put --trigger: the new version, then one SendCommand.
    let proxy = FaultProxy::start();
    let doc = document("OpenClawTokenSync-put");
    instances(2, "gw-put");
    let next = new_token(true);
    let tokens = vec![first, token, next.clone()];
    let run = put_at(
        &proxy.endpoint,
        &secret,
        &next,
        &[
            "--trigger",
            "--targets",
            "tag:Role=gw-put",
            "--document",
            &doc,
            "--wait",
            "--poll-interval",
            "1",
        ],
        &tokens,
    );
    run.expect_status(0);
    assert!(
        run.stdout.contains("api-key") && run.stdout.contains(&fingerprint(&next)),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("2 instance(s): 2 succeeded"),
        "{}",
        run.stdout
    );
    assert_eq!(proxy.count("secretsmanager.PutSecretValue"), 1);
    assert_eq!(proxy.count("AmazonSSM.SendCommand"), 1);

    // In JSON, the change and its push are one object on one line.
    let last = new_token(false);
    let tokens = [tokens, vec![last.clone()]].concat();
    let run = put_at(
        &proxy.endpoint,
        &secret,
        &last,
        &[
            "--trigger",
            "--targets",
            "tag:Role=gw-put",
            "--document",
            &doc,
            "--output",
            "json",
        ],
        &tokens,
    );
    run.expect_status(0);
    assert_eq!(run.stdout.lines().count(), 1, "{}", run.stdout);
    let report = run.json();
    assert_eq!(report["result"], "changed", "{report}");
    assert_eq!(report["exit_code"], 0, "{report}");
    assert_eq!(report["fingerprint"], fingerprint(&last), "{report}");
    assert_eq!(report["trigger"]["result"], "succeeded", "{report}");
    assert_eq!(
        report["trigger"]["command_ids"].as_array().map(Vec::len),
        Some(1),
        "{report}"
    );
    crate::observability::assert_matches_schema("put", &run.stdout);
}

#[test]
fn put_rolls_back_to_an_older_version_and_keeps_the_other_json_keys() {
    let first = new_token(false);
    let (a, b) = (new_token(false), new_token(false));
    let tokens = vec![first.clone(), a.clone(), b.clone()];
    let secret = create_secret("tests/put-rollback", &first);
    // By label: moto's label-less answer does not follow UpdateSecretVersionStage.
    let current = || {
        aws_json(
            "secretsmanager",
            "get-secret-value",
            &["--secret-id", &secret, "--version-stage", "AWSCURRENT"],
        )
    };
    let put_a = put(&secret, &a, &["--output", "json"], &tokens);
    put_a.expect_status(0);
    assert_eq!(put_a.json()["action"], "created");
    // Every JSON answer says its result and exit code, success as failure.
    assert_eq!(put_a.json()["result"], "changed");
    assert_eq!(put_a.json()["exit_code"], 0);
    let version_a = put_a.json()["version_id"].as_str().unwrap().to_owned();
    put(&secret, &b, &[], &tokens).expect_status(0);
    assert_eq!(current()["SecretString"], b.as_str());

    // Back to A: AWSCURRENT moves to A's version; no new version.
    let back = put(&secret, &a, &["--output", "json"], &tokens);
    back.expect_status(0);
    let report = back.json();
    assert_eq!(report["action"], "moved", "{report}");
    assert_eq!(report["version_id"], version_a.as_str());
    let now = current();
    assert_eq!(now["SecretString"], a.as_str());
    assert_eq!(now["VersionId"], version_a.as_str());
    let versions = aws_json(
        "secretsmanager",
        "list-secret-version-ids",
        &["--secret-id", &secret, "--include-deprecated", "true"],
    );
    assert_eq!(
        versions["Versions"].as_array().unwrap().len(),
        3,
        "{versions}"
    );
    let text = put(&secret, &a, &[], &tokens);
    text.expect_status(0);
    assert!(
        text.stdout.contains("already AWSCURRENT"),
        "{}",
        text.stdout
    );

    // --json-key: the new value keeps expires_at.
    let json_secret = create_secret(
        "tests/put-json",
        &format!(r#"{{"token":"{first}","expires_at":"2027-06-01T00:00:00Z"}}"#),
    );
    put(&json_secret, &b, &["--json-key", "token"], &tokens).expect_status(0);
    let stored = aws_json(
        "secretsmanager",
        "get-secret-value",
        &["--secret-id", &json_secret],
    );
    let value: Value = serde_json::from_str(stored["SecretString"].as_str().unwrap()).unwrap();
    assert_eq!(value["token"], b.as_str());
    assert_eq!(value["expires_at"], "2027-06-01T00:00:00Z");
}

/// version id -> staging labels of a secret, as moto lists them.
fn labels(secret: &str) -> std::collections::BTreeMap<String, Vec<String>> {
    let listed = aws_json(
        "secretsmanager",
        "list-secret-version-ids",
        &["--secret-id", secret],
    );
    listed["Versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            let mut stages: Vec<String> = v["VersionStages"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_str().unwrap().to_owned())
                .collect();
            stages.sort();
            (v["VersionId"].as_str().unwrap().to_owned(), stages)
        })
        .filter(|(_, stages)| !stages.is_empty())
        .collect()
}

/// AWSCURRENT and AWSPREVIOUS are on these versions.
fn assert_current_and_previous(secret: &str, current: &str, previous: &str) {
    assert_eq!(holder(secret, "AWSCURRENT").as_deref(), Some(current));
    assert_eq!(holder(secret, "AWSPREVIOUS").as_deref(), Some(previous));
}

fn holder(secret: &str, label: &str) -> Option<String> {
    labels(secret)
        .into_iter()
        .find(|(_, stages)| stages.iter().any(|s| s == label))
        .map(|(id, _)| id)
}

#[test]
fn put_probes_the_token_first_and_stores_nothing_anthropic_rejects() {
    let first = new_token(false);
    let (bad, good, later) = (new_token(false), new_token(true), new_token(false));
    let tokens = vec![first.clone(), bad.clone(), good.clone(), later.clone()];
    let secret = create_secret("tests/put-probe", &first);
    let current = || {
        aws_json(
            "secretsmanager",
            "get-secret-value",
            &["--secret-id", &secret, "--version-stage", "AWSCURRENT"],
        )["SecretString"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    // Rejected (the stand-in answers 401 authentication_error for it): nothing stored.
    shared_standin().reject(&bad);
    let run = put(&secret, &bad, &[], &tokens);
    run.expect_status(1);
    assert!(run.stderr.contains("401"), "{}", run.stderr);
    assert!(run.stderr.contains("nothing was stored"), "{}", run.stderr);
    assert!(run.stderr.contains(&fingerprint(&bad)), "{}", run.stderr);
    assert_eq!(current(), first);
    assert_eq!(labels(&secret).len(), 1, "no version was added");
    // Unreachable: nothing stored unless --no-probe.
    let closed = format!("http://127.0.0.1:{}", free_port());
    let run = put(&secret, &good, &["--anthropic-base-url", &closed], &tokens);
    run.expect_status(1);
    assert!(run.stderr.contains("--no-probe"), "{}", run.stderr);
    assert_eq!(current(), first);
    put(
        &secret,
        &good,
        &["--anthropic-base-url", &closed, "--no-probe"],
        &tokens,
    )
    .expect_status(0);
    assert_eq!(current(), good);
    // Accepted: the probe reached the stand-in with the token's fingerprint.
    put(&secret, &later, &[], &tokens).expect_status(0);
    assert_eq!(current(), later);
    assert!(shared_standin()
        .requests()
        .iter()
        .any(|r| r["fingerprint"] == fingerprint(&later).as_str()));
}

#[test]
fn canary_put_promote_and_rollback_move_the_staging_labels() {
    let (a, b) = (new_token(false), new_token(false));
    let tokens = vec![a.clone(), b.clone()];
    let secret = create_secret("tests/put-canary", &a);
    let version_a = holder(&secret, "AWSCURRENT").unwrap();

    // The canary: a new version under CANARY only; AWSCURRENT stays on A.
    let run = put(
        &secret,
        &b,
        &["--label", "CANARY", "--output", "json"],
        &tokens,
    );
    run.expect_status(0);
    let report = run.json();
    assert_eq!(report["stage"], "CANARY");
    assert_eq!(report["action"], "created");
    let version_b = report["version_id"].as_str().unwrap().to_owned();
    assert_eq!(
        holder(&secret, "CANARY").as_deref(),
        Some(version_b.as_str())
    );
    assert_eq!(
        holder(&secret, "AWSCURRENT").as_deref(),
        Some(version_a.as_str())
    );
    put(&secret, &b, &["--label", "AWSCURRENT"], &tokens).expect_status(2);

    // Promote: AWSCURRENT to B, AWSPREVIOUS to A, the label gone.
    let run = run_tool(
        &["promote", "--secret-id", &secret, "--output", "json"],
        &[],
        &tokens,
    );
    run.expect_status(0);
    let report = run.json();
    assert_eq!(report["result"], "changed", "{report}");
    assert_eq!(report["before"]["version_id"], version_a.as_str());
    assert_eq!(report["after"]["version_id"], version_b.as_str());
    assert_eq!(report["after"]["fingerprint"], fingerprint(&b).as_str());
    assert_current_and_previous(&secret, &version_b, &version_a);
    assert_eq!(holder(&secret, "CANARY"), None);
    // Nothing left to promote.
    let run = run_tool(&["promote", "--secret-id", &secret], &[], &tokens);
    run.expect_status(2);
    assert!(run.stderr.contains("CANARY"), "{}", run.stderr);

    // Roll back, then roll the rollback back.
    let run = run_tool(&["rollback", "--secret-id", &secret], &[], &tokens);
    run.expect_status(0);
    assert!(
        run.stdout.contains(&fingerprint(&a)) && run.stdout.contains(&fingerprint(&b)),
        "{}",
        run.stdout
    );
    assert_current_and_previous(&secret, &version_a, &version_b);
    run_tool(&["rollback", "--secret-id", &secret], &[], &tokens).expect_status(0);
    assert_current_and_previous(&secret, &version_b, &version_a);
    // A canary abandoned: rollback --label removes the label, AWSCURRENT stays.
    let c = new_token(false);
    let tokens = vec![a.clone(), b.clone(), c.clone()];
    put(&secret, &c, &["--label", "CANARY"], &tokens).expect_status(0);
    let run = run_tool(
        &["rollback", "--secret-id", &secret, "--label", "CANARY"],
        &[],
        &tokens,
    );
    run.expect_status(0);
    assert!(run.stdout.contains("fall back"), "{}", run.stdout);
    assert_eq!(holder(&secret, "CANARY"), None);
    assert_eq!(
        holder(&secret, "AWSCURRENT").as_deref(),
        Some(version_b.as_str())
    );
    run_tool(
        &["rollback", "--secret-id", &secret, "--label", "CANARY"],
        &[],
        &tokens,
    )
    .expect_status(2);
    // A secret with one version has nothing to roll back to.
    let single = create_secret("tests/put-single", &a);
    run_tool(&["rollback", "--secret-id", &single], &[], &tokens).expect_status(2);
}

/// What the generated initial value of the template's secret looks like: no token at all.
const PLACEHOLDER: &str = "q7T#vL2!pZ9@rW4$mN8&kB3*hJ6^dF1%";

/// Stores `value` as a new version carrying only `label`; returns its version id.
fn put_labelled(secret: &str, value: &str, label: &str) -> String {
    let label = format!(r#"["{label}"]"#);
    let put = aws_json(
        "secretsmanager",
        "put-secret-value",
        &[
            "--secret-id",
            secret,
            "--secret-string",
            value,
            "--version-stages",
            &label,
        ],
    );
    put["VersionId"].as_str().unwrap().to_owned()
}

#[test]
fn promote_and_rollback_refuse_a_version_without_a_valid_token() {
    let (a, b) = (new_token(false), new_token(false));
    // The placeholder counts as a secret too: it never shows in the output.
    let tokens = vec![a.clone(), b.clone(), PLACEHOLDER.to_owned()];
    let secret = create_secret("tests/stage-placeholder", PLACEHOLDER);
    let placeholder = holder(&secret, "AWSCURRENT").unwrap();
    put(&secret, &a, &[], &tokens).expect_status(0);
    let version_a = holder(&secret, "AWSCURRENT").unwrap();
    assert_current_and_previous(&secret, &version_a, &placeholder);

    // Rollback onto the placeholder: refused, with or without the probe; nothing moves.
    let before = labels(&secret);
    for extra in [&[][..], &["--no-probe"][..]] {
        let mut args = vec!["rollback", "--secret-id", &secret];
        args.extend_from_slice(extra);
        let run = run_tool(&args, &[], &tokens);
        run.expect_status(2);
        for named in [placeholder.as_str(), "AWSPREVIOUS", "no valid token"] {
            assert!(run.stderr.contains(named), "{named}: {}", run.stderr);
        }
        assert_eq!(labels(&secret), before);
    }

    // A canary holding no valid token: promote refuses it the same way.
    let canary = put_labelled(&secret, "sk-ant-oat01-too-short", "CANARY");
    let before = labels(&secret);
    let run = run_tool(&["promote", "--secret-id", &secret], &[], &tokens);
    run.expect_status(2);
    for named in [canary.as_str(), "CANARY", "no valid token", "shorter than"] {
        assert!(run.stderr.contains(named), "{named}: {}", run.stderr);
    }
    assert!(!run.stderr.contains("too-short"), "{}", run.stderr);
    assert_eq!(labels(&secret), before);
    assert_eq!(holder(&secret, "CANARY").as_deref(), Some(canary.as_str()));

    // A JSON secret: the token under the JSON key counts.
    let json = create_secret("tests/stage-json", &format!(r#"{{"token":"{a}"}}"#));
    let version_a = holder(&json, "AWSCURRENT").unwrap();
    let version_b = put_labelled(&json, &format!(r#"{{"token":"{b}","note":"x"}}"#), "CANARY");
    let other_key = run_tool(
        &["promote", "--secret-id", &json, "--json-key", "other"],
        &[],
        &tokens,
    );
    other_key.expect_status(2);
    assert!(
        other_key.stderr.contains("\"other\""),
        "{}",
        other_key.stderr
    );
    let run = run_tool(
        &["promote", "--secret-id", &json, "--output", "json"],
        &[],
        &tokens,
    );
    run.expect_status(0);
    assert_eq!(run.json()["after"]["fingerprint"], fingerprint(&b).as_str());
    assert_current_and_previous(&json, &version_b, &version_a);
}

/// How many probes carrying this token the stand-in answered.
fn probes_of(token: &str) -> usize {
    let print = fingerprint(token);
    shared_standin()
        .requests()
        .iter()
        .filter(|r| r["fingerprint"] == print.as_str())
        .count()
}

#[test]
fn promote_and_rollback_probe_the_target_token_first() {
    let (a, b) = (new_token(false), new_token(true));
    let tokens = vec![a.clone(), b.clone()];
    let secret = create_secret("tests/stage-probe", &a);
    let version_a = holder(&secret, "AWSCURRENT").unwrap();
    put(&secret, &b, &["--label", "CANARY"], &tokens).expect_status(0);
    let version_b = holder(&secret, "CANARY").unwrap();
    let promote = |extra: &[&str]| {
        let mut args = vec!["promote", "--secret-id", &secret];
        args.extend_from_slice(extra);
        run_tool(&args, &[], &tokens)
    };
    let rollback = |extra: &[&str]| {
        let mut args = vec!["rollback", "--secret-id", &secret];
        args.extend_from_slice(extra);
        run_tool(&args, &[], &tokens)
    };

    // Anthropic rejects the canary's token: nothing moves; --no-probe moves it anyway.
    shared_standin().reject(&b);
    let before = labels(&secret);
    let run = promote(&[]);
    run.expect_status(1);
    for named in ["401", "nothing was moved", version_b.as_str(), "CANARY"] {
        assert!(run.stderr.contains(named), "{named}: {}", run.stderr);
    }
    assert!(run.stderr.contains(&fingerprint(&b)), "{}", run.stderr);
    assert_eq!(labels(&secret), before);
    // No answer either way: refused too, naming --no-probe.
    let closed = format!("http://127.0.0.1:{}", free_port());
    let run = promote(&["--anthropic-base-url", &closed]);
    run.expect_status(1);
    assert!(run.stderr.contains("--no-probe"), "{}", run.stderr);
    assert_eq!(labels(&secret), before);
    promote(&["--no-probe"]).expect_status(0);
    assert_current_and_previous(&secret, &version_b, &version_a);
    assert_eq!(holder(&secret, "CANARY"), None);

    // Rollback onto A, which Anthropic accepts: the probe carried A's token.
    let probes = probes_of(&a);
    rollback(&[]).expect_status(0);
    assert_eq!(probes_of(&a), probes + 1);
    assert_current_and_previous(&secret, &version_a, &version_b);
    // Back onto the rejected B: refused; with --no-probe it proceeds.
    let before = labels(&secret);
    let run = rollback(&[]);
    run.expect_status(1);
    for named in ["401", version_b.as_str(), "AWSPREVIOUS"] {
        assert!(run.stderr.contains(named), "{named}: {}", run.stderr);
    }
    assert_eq!(labels(&secret), before);
    rollback(&["--no-probe"]).expect_status(0);
    assert_current_and_previous(&secret, &version_b, &version_a);
}

/// Runs a rendered document script with this build's binary against moto.
fn run_document(script: &str) -> std::process::Output {
    Command::new("bash")
        .arg("-c")
        .arg(script)
        .env("OPENCLAW_TOKEN_SYNC_BIN", BIN)
        .env("OPENCLAW_TOKEN_SYNC_CONFIG", "/dev/null")
        .envs(aws_env(&moto().endpoint))
        .output()
        .unwrap()
}

/// Renders the document's runCommand the way SSM does: `{{ name }}` replaced by the value, after
/// the value passed the document's rules.
fn render(parameters: &[(&str, &str)]) -> String {
    let document: Value = serde_json::from_str(ssm_document::DOCUMENT_JSON).unwrap();
    let mut script = document["mainSteps"][0]["inputs"]["runCommand"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap().to_owned())
        .collect::<Vec<_>>()
        .join("\n");
    for (name, spec) in document["parameters"].as_object().unwrap() {
        let value = parameters
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.to_string())
            .or_else(|| spec["default"].as_str().map(str::to_owned))
            .unwrap_or_else(|| panic!("no value for required parameter {name}"));
        ssm_document::validate(name, &value).unwrap_or_else(|e| panic!("{name}: {e}"));
        script = script.replace(&format!("{{{{ {name} }}}}"), &value);
    }
    assert!(!script.contains("{{"), "unrendered parameter in:\n{script}");
    script
}

#[test]
fn the_ssm_document_runs_sync_and_status_for_real() {
    if !require_root("ssm_document") {
        return;
    }
    let user = TestUser::new("ocs-ssmdoc", true);
    let token = new_token(false);
    let tokens = vec![token.clone()];
    let secret = create_secret("tests/ssm-document", &token);
    for (action, expected) in [
        ("sync", "applied:"),
        ("sync", "unchanged:"),
        ("status", "healthy:"),
    ] {
        let script = render(&[
            ("action", action),
            ("secretId", &secret),
            ("user", &user.name),
            ("extraArgs", ""),
        ]);
        let output = run_document(&script);
        assert_no_leak("document stdout", &output.stdout, &tokens);
        assert_no_leak("document stderr", &output.stderr, &tokens);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{action}: {stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(stdout.contains(expected), "{action}: {stdout}");
    }
    user.assert_gateway_has("ANTHROPIC_OAUTH_TOKEN", &token);

    // `status` with warnings only (exit 3: the gateway is stopped) is not a failed instance.
    user.systemctl(&["stop", UNIT]);
    let direct = run_tool(
        &[
            "status",
            "--user",
            &user.name,
            "--check-secret",
            "--secret-id",
            &secret,
        ],
        &[],
        &tokens,
    );
    direct.expect_status(3);
    let script = render(&[
        ("action", "status"),
        ("secretId", &secret),
        ("user", &user.name),
        ("extraArgs", ""),
    ]);
    let output = run_document(&script);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stdout).contains("warning(s)"));
    user.systemctl(&["start", UNIT]);

    // Portable to bash before 4.4 (Amazon Linux 2), where an empty array under `set -u` is an
    // unbound variable: the script expands no array at all.
    assert!(
        !script.contains("[@]") && !script.contains("[*]"),
        "{script}"
    );

    // Extra flags pass through as separate words.
    let script = render(&[
        ("action", "sync"),
        ("secretId", &secret),
        ("user", &user.name),
        ("extraArgs", "--dry-run --force"),
    ]);
    let output = run_document(&script);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("dry run:"));

    // Without a user (what `trigger` sends unless --user is given) the instance's own config
    // decides: here it names the user, whose gateway is synced (--force: a restart proves it
    // was this user's gateway the run reached, not root's).
    let config = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(config.path(), format!("user = \"{}\"\n", user.name)).unwrap();
    let script = render(&[
        ("action", "sync"),
        ("secretId", &secret),
        ("extraArgs", "--force"),
    ]);
    let before = user.main_pid();
    let output = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .env("OPENCLAW_TOKEN_SYNC_BIN", BIN)
        .envs(aws_env(&moto().endpoint))
        .env("OPENCLAW_TOKEN_SYNC_CONFIG", config.path())
        .output()
        .unwrap();
    assert_no_leak("document stdout", &output.stdout, &tokens);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        String::from_utf8_lossy(&output.stdout).contains(&format!("for {}", user.name)),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    assert_ne!(
        user.main_pid(),
        before,
        "the user's gateway was not restarted"
    );

    // A value with shell syntax never reaches the shell: the document's rules refuse it.
    for (name, hostile) in [
        ("user", "x'; touch /tmp/ocsync-pwned; '"),
        ("secretId", "$(touch /tmp/ocsync-pwned)"),
        ("extraArgs", "--force; touch /tmp/ocsync-pwned"),
    ] {
        assert!(
            ssm_document::validate(name, hostile).is_err(),
            "{name} accepted {hostile}"
        );
    }
}

#[test]
fn put_keeps_a_json_secret_s_shape_or_says_which_key() {
    let a = new_token(false);
    let b = new_token(false);
    let tokens = vec![a.clone(), b.clone()];
    // A JSON secret with the default key: only the token changes, expires_at is kept.
    let json = create_secret(
        "tests/put-json-shape",
        &format!(r#"{{"token":"{a}","expires_at":"2027-06-01T00:00:00Z"}}"#),
    );
    let run = put(&json, &b, &[], &tokens);
    run.expect_status(0);
    // ... and said: that date was the old token's.
    assert!(
        run.stderr
            .contains("expires_at (2027-06-01T00:00:00Z) was kept"),
        "{}",
        run.stderr
    );
    let stored: Value = serde_json::from_str(&current_value(&json)).unwrap();
    assert_eq!(
        stored,
        serde_json::json!({"token": b, "expires_at": "2027-06-01T00:00:00Z"})
    );
    // A JSON secret whose token sits under another key: refused, naming the keys.
    let other = create_secret(
        "tests/put-json-other",
        &format!(r#"{{"anthropic":"{a}","owner":"ops"}}"#),
    );
    let run = put(&other, &b, &[], &tokens);
    run.expect_status(2);
    assert!(
        run.stderr.contains("its keys: anthropic, owner") && run.stderr.contains("--json-key"),
        "{}",
        run.stderr
    );
    assert!(current_value(&other).contains(&a), "nothing was stored");
    put(&other, &b, &["--json-key", "anthropic"], &tokens).expect_status(0);
    let stored: Value = serde_json::from_str(&current_value(&other)).unwrap();
    assert_eq!(stored, serde_json::json!({"anthropic": b, "owner": "ops"}));
}
