//! `promote` and `rollback`: moving AWSCURRENT between versions that already exist, the second
//! half of a staged rotation (`put --label CANARY`, watch the canaries, then promote; or roll
//! back). `promote` moves AWSCURRENT to the version a label points at (default `CANARY`) and
//! removes the label; `rollback` moves AWSCURRENT back to the AWSPREVIOUS version. Secrets
//! Manager moves AWSPREVIOUS along (onto the version AWSCURRENT left), so a rollback after a
//! rollback returns to where it started. Both refuse (exit 2) when there is nothing to move, and
//! confirm the move through the staging labels afterwards.
//!
//! Before anything moves, the target version is checked as `put` checks a token: its value must
//! hold a valid token (validated as `sync` validates it; a JSON secret's under the JSON key), or
//! the move is refused with exit 2, naming the version and its label, never the value (the
//! template's generated placeholder, left as AWSPREVIOUS by the first `put`, is the usual case).
//! Then, unless `--no-probe`, one live request must show that Anthropic accepts it, exactly as
//! `put` probes before storing ([`crate::fleet::put::require_accepted`]). Otherwise every gateway would
//! be pushed onto a token it cannot use. Abandoning a canary (`rollback --label`) is not checked:
//! it moves nothing onto AWSCURRENT, the canaries fall back to the token the fleet already runs.
//! Values are read only to check them and to print their fingerprints.

use crate::aws::AwsSettings;
use crate::error::{Error, Result};
use crate::fleet::put::{
    holder_of, labelled_versions, move_stage, require_accepted, sdk_failure, secrets_client,
    stage_version, CURRENT,
};
use crate::secret::{self, Token};
use aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueOutput;
use serde::Serialize;
use zeroize::Zeroizing;

/// Which move.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StageMove {
    /// AWSCURRENT to the version carrying this label; the label is removed.
    Promote { label: String },
    /// AWSCURRENT back to AWSPREVIOUS.
    Rollback,
    /// A canary abandoned: the label is removed, AWSCURRENT stays (its instances fall back).
    Abort { label: String },
}

#[derive(Clone, Debug)]
pub struct StageOptions {
    pub secret_id: String,
    /// Key of the token in a JSON secret (for the fingerprints) [default: token].
    pub json_key: String,
    /// Prove with one request that Anthropic accepts the target's token before moving
    /// AWSCURRENT onto it.
    pub probe: bool,
    /// Where that request goes (default: the public API).
    pub anthropic_base_url: Option<String>,
    pub aws: AwsSettings,
}

/// One version as printed: its id and the fingerprint of the token it holds.
#[derive(Serialize, Debug, Clone)]
pub struct VersionView {
    pub version_id: String,
    /// `None` when the value could not be read or holds no valid token.
    pub fingerprint: Option<String>,
    pub kind: Option<&'static str>,
}

#[derive(Serialize, Debug)]
pub struct StageReport {
    pub arn: String,
    /// "promote" or "rollback".
    pub action: &'static str,
    /// The label promoted (and removed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// AWSCURRENT before and after (for a canary rollback: the canary's version, and the
    /// AWSCURRENT version its instances fall back to).
    pub before: VersionView,
    pub after: VersionView,
}

const PREVIOUS: &str = "AWSPREVIOUS";

/// A move that passed its checks: from AWSCURRENT's version to the target, whose token is valid.
struct Plan {
    arn: String,
    current: String,
    target: String,
    /// The label the target carries (`CANARY`, or AWSPREVIOUS for a rollback).
    stage: String,
    /// `promote`: the label, removed after the move.
    label: Option<String>,
    token: Token,
}

/// Moves AWSCURRENT (see the module docs).
pub fn run(options: &StageOptions, movement: &StageMove) -> Result<StageReport> {
    let (runtime, client) = secrets_client(&options.aws, &options.secret_id)?;
    let label = match movement {
        StageMove::Abort { label } => return runtime.block_on(abort(&client, options, label)),
        StageMove::Promote { label } => Some(label.as_str()),
        StageMove::Rollback => None,
    };
    let plan = runtime.block_on(plan(&client, options, label))?;
    if options.probe {
        // Outside the runtime: the probe runs one of its own.
        let subject = format!(
            "the token {} of {} version {}",
            plan.token.fingerprint(),
            plan.stage,
            plan.target
        );
        require_accepted(
            &plan.token,
            options.anthropic_base_url.as_deref(),
            &subject,
            "nothing was moved",
            "moves it",
        )?;
    }
    runtime.block_on(apply(&client, options, plan))
}

/// AWSCURRENT's version, the target (the version carrying `label`, or AWSPREVIOUS) and its
/// checked token; refused (exit 2) when there is nothing to move or no valid token to move to.
async fn plan(
    client: &aws_sdk_secretsmanager::Client,
    options: &StageOptions,
    label: Option<&str>,
) -> Result<Plan> {
    let secret_id = options.secret_id.as_str();
    let versions = labelled_versions(client, secret_id).await?;
    let current = current_of(&versions, secret_id)?;
    let stage = label.unwrap_or(PREVIOUS);
    let target = holder_of(&versions, stage).ok_or_else(|| match label {
        Some(label) => Error::config(format!(
            "no version of {secret_id} carries the label {label}: nothing to promote (put one with `put --label {label}`)"
        )),
        None => Error::config(format!(
            "{secret_id} has no AWSPREVIOUS version: nothing to roll back to"
        )),
    })?;
    if target == current {
        return Err(Error::config(format!(
            "{stage} is already AWSCURRENT of {secret_id} (version {current}): nothing to move"
        )));
    }
    let (arn, token) = checked_token(client, options, &target, stage).await?;
    Ok(Plan {
        arn,
        current,
        target,
        stage: stage.to_owned(),
        label: label.map(str::to_owned),
        token,
    })
}

/// The token a version holds, validated as `sync` validates it. A version without one is
/// refused (exit 2) by its id and label; the value is never part of the message.
async fn checked_token(
    client: &aws_sdk_secretsmanager::Client,
    options: &StageOptions,
    version_id: &str,
    stage: &str,
) -> Result<(String, Token)> {
    let secret_id = options.secret_id.as_str();
    let mut got = client
        .get_secret_value()
        .secret_id(secret_id)
        .version_id(version_id)
        .send()
        .await
        .map_err(|e| {
            Error::failed(format!(
                "cannot check the token of {stage} version {version_id}: {}; nothing was moved",
                sdk_failure("GetSecretValue", secret_id, e)
            ))
        })?;
    let arn = got.arn.take().unwrap_or_else(|| secret_id.to_owned());
    let token = token_of(&mut got, &options.json_key).map_err(|e| {
        Error::config(format!(
            "refusing to make {stage} version {version_id} of {secret_id} AWSCURRENT: it holds no valid token ({e}); nothing was moved"
        ))
    })?;
    Ok((arn, token))
}

/// Moves AWSCURRENT to the planned version, removes a promoted label, and confirms the move
/// through the staging labels.
async fn apply(
    client: &aws_sdk_secretsmanager::Client,
    options: &StageOptions,
    plan: Plan,
) -> Result<StageReport> {
    let secret_id = options.secret_id.as_str();
    let (_, before) = view(client, secret_id, &plan.current, &options.json_key).await;
    // By version id: the version checked above moves, whatever the label points at by now.
    move_stage(
        client,
        secret_id,
        CURRENT,
        &plan.target,
        Some(&plan.current),
    )
    .await?;
    if let Some(label) = &plan.label {
        // The canary is over: the label goes (its instances follow AWSCURRENT again).
        remove_label(client, secret_id, label, &plan.target).await?;
    }
    let on_current = stage_version(client, secret_id, CURRENT).await?;
    if on_current.as_deref() != Some(plan.target.as_str()) {
        return Err(Error::failed(format!(
            "{secret_id}: AWSCURRENT is on version {} instead of {}: another writer changed the secret meanwhile",
            on_current.as_deref().unwrap_or("none"),
            plan.target
        )));
    }
    Ok(StageReport {
        arn: plan.arn,
        action: if plan.label.is_some() {
            "promote"
        } else {
            "rollback"
        },
        after: VersionView {
            version_id: plan.target,
            fingerprint: Some(plan.token.fingerprint().to_string()),
            kind: Some(plan.token.kind().label()),
        },
        label: plan.label,
        before,
    })
}

/// A canary abandoned: the label goes, AWSCURRENT stays. Nothing new becomes AWSCURRENT (the
/// canaries fall back to the version the fleet runs already), so its token is not checked.
async fn abort(
    client: &aws_sdk_secretsmanager::Client,
    options: &StageOptions,
    label: &str,
) -> Result<StageReport> {
    let secret_id = options.secret_id.as_str();
    let versions = labelled_versions(client, secret_id).await?;
    let current = current_of(&versions, secret_id)?;
    let canary = holder_of(&versions, label).ok_or_else(|| {
        Error::config(format!(
            "no version of {secret_id} carries the label {label}: nothing to roll back"
        ))
    })?;
    let (arn, before) = view(client, secret_id, &canary, &options.json_key).await;
    remove_label(client, secret_id, label, &canary).await?;
    let (_, after) = view(client, secret_id, &current, &options.json_key).await;
    Ok(StageReport {
        arn,
        action: "rollback",
        label: Some(label.to_owned()),
        before,
        after,
    })
}

/// The version carrying AWSCURRENT among `versions`.
fn current_of(versions: &[(String, Vec<String>)], secret_id: &str) -> Result<String> {
    holder_of(versions, CURRENT)
        .ok_or_else(|| Error::config(format!("{secret_id} has no AWSCURRENT version")))
}

/// Removes a staging label from a version.
async fn remove_label(
    client: &aws_sdk_secretsmanager::Client,
    secret_id: &str,
    label: &str,
    version_id: &str,
) -> Result<()> {
    client
        .update_secret_version_stage()
        .secret_id(secret_id)
        .version_stage(label)
        .remove_from_version_id(version_id)
        .send()
        .await
        .map_err(|e| sdk_failure("UpdateSecretVersionStage", secret_id, e))?;
    Ok(())
}

/// The token a version's value holds (a string or UTF-8 binary value, plain or JSON).
fn token_of(
    got: &mut GetSecretValueOutput,
    json_key: &str,
) -> std::result::Result<Token, secret::SecretError> {
    let parsed = if let Some(text) = got.secret_string.take() {
        secret::parse_secret_string(Zeroizing::new(text), json_key)
    } else if let Some(blob) = got.secret_binary.take() {
        secret::parse_secret_binary(Zeroizing::new(blob.into_inner()), json_key)
    } else {
        Err(secret::SecretError::NoValue)
    };
    parsed.map(|(token, _)| token)
}

/// A version's id and token fingerprint (the ARN comes along).
async fn view(
    client: &aws_sdk_secretsmanager::Client,
    secret_id: &str,
    version_id: &str,
    json_key: &str,
) -> (String, VersionView) {
    let mut view = VersionView {
        version_id: version_id.to_owned(),
        fingerprint: None,
        kind: None,
    };
    let Ok(mut got) = client
        .get_secret_value()
        .secret_id(secret_id)
        .version_id(version_id)
        .send()
        .await
    else {
        return (secret_id.to_owned(), view);
    };
    let arn = got.arn.take().unwrap_or_else(|| secret_id.to_owned());
    if let Ok(token) = token_of(&mut got, json_key) {
        view.fingerprint = Some(token.fingerprint().to_string());
        view.kind = Some(token.kind().label());
    }
    (arn, view)
}
