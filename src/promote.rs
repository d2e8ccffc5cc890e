//! `promote` and `rollback`: moving AWSCURRENT between versions that already exist, the second
//! half of a staged rotation (`put --label CANARY`, watch the canaries, then promote; or roll
//! back). `promote` moves AWSCURRENT to the version a label points at (default `CANARY`) and
//! removes the label; `rollback` moves AWSCURRENT back to the AWSPREVIOUS version. Secrets
//! Manager moves AWSPREVIOUS along (onto the version AWSCURRENT left), so a rollback after a
//! rollback returns to where it started. Both refuse (exit 2) when there is nothing to move, and
//! confirm the move through the staging labels afterwards. Values are read only to print their
//! fingerprints.

use crate::aws::AwsSettings;
use crate::error::{Error, Result};
use crate::put::{
    holder_of, labelled_versions, move_stage, sdk_failure, secrets_client, stage_version, CURRENT,
};
use crate::secret;
use serde::Serialize;

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

/// Moves AWSCURRENT (see the module docs).
pub fn run(options: &StageOptions, movement: &StageMove) -> Result<StageReport> {
    let (runtime, client) = secrets_client(&options.aws, &options.secret_id)?;
    let secret_id = options.secret_id.as_str();
    runtime.block_on(async {
        let versions = labelled_versions(&client, secret_id).await?;
        let holder_of = |label: &str| holder_of(&versions, label);
        let current = holder_of(CURRENT)
            .ok_or_else(|| Error::config(format!("{secret_id} has no AWSCURRENT version")))?;
        if let StageMove::Abort { label } = movement {
            let canary = holder_of(label).ok_or_else(|| {
                Error::config(format!(
                    "no version of {secret_id} carries the label {label}: nothing to roll back"
                ))
            })?;
            let (arn, before) = view(&client, secret_id, &canary, &options.json_key).await;
            client
                .update_secret_version_stage()
                .secret_id(secret_id)
                .version_stage(label)
                .remove_from_version_id(&canary)
                .send()
                .await
                .map_err(|e| sdk_failure("UpdateSecretVersionStage", secret_id, e))?;
            let (_, after) = view(&client, secret_id, &current, &options.json_key).await;
            return Ok(StageReport {
                arn,
                action: "rollback",
                label: Some(label.clone()),
                before,
                after,
            });
        }
        let (target, label) = match movement {
            StageMove::Promote { label } => (
                holder_of(label).ok_or_else(|| {
                    Error::config(format!(
                        "no version of {secret_id} carries the label {label}: nothing to promote (put one with `put --label {label}`)"
                    ))
                })?,
                Some(label.clone()),
            ),
            StageMove::Abort { .. } => unreachable!("handled above"),
            StageMove::Rollback => (
                holder_of("AWSPREVIOUS").ok_or_else(|| {
                    Error::config(format!(
                        "{secret_id} has no AWSPREVIOUS version: nothing to roll back to"
                    ))
                })?,
                None,
            ),
        };
        if target == current {
            return Err(Error::config(format!(
                "{} is already AWSCURRENT of {secret_id} (version {current}): nothing to move",
                label.as_deref().unwrap_or("AWSPREVIOUS")
            )));
        }
        let (arn, before) = view(&client, secret_id, &current, &options.json_key).await;
        move_stage(&client, secret_id, CURRENT, &target, Some(&current)).await?;
        if let Some(label) = &label {
            // The canary is over: the label goes (its instances follow AWSCURRENT again).
            client
                .update_secret_version_stage()
                .secret_id(secret_id)
                .version_stage(label)
                .remove_from_version_id(&target)
                .send()
                .await
                .map_err(|e| sdk_failure("UpdateSecretVersionStage", secret_id, e))?;
        }
        let on_current = stage_version(&client, secret_id, CURRENT).await?;
        if on_current.as_deref() != Some(target.as_str()) {
            return Err(Error::failed(format!(
                "{secret_id}: AWSCURRENT is on version {} instead of {target}: another writer changed the secret meanwhile",
                on_current.as_deref().unwrap_or("none")
            )));
        }
        let (_, after) = view(&client, secret_id, &target, &options.json_key).await;
        Ok(StageReport {
            arn,
            action: match movement {
                StageMove::Promote { .. } => "promote",
                _ => "rollback",
            },
            label,
            before,
            after,
        })
    })
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
    if let Some(text) = got.secret_string.take() {
        if let Ok((token, _)) = secret::parse_secret_string(zeroize::Zeroizing::new(text), json_key)
        {
            view.fingerprint = Some(token.fingerprint().to_string());
            view.kind = Some(token.kind().label());
        }
    }
    (arn, view)
}
