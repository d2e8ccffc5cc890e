//! Talking to AWS Secrets Manager: building the SDK configuration from the standard environment
//! and credential chain (with `--region` / `--endpoint-url` and the config file layered as the
//! command line says), explicit connect and operation timeouts, and the one `GetSecretValue` a
//! sync makes.
//!
//! Error messages are built from error codes and kinds only. The SDK's `DisplayErrorContext`
//! includes raw response headers and bodies, so it is never printed.

use crate::error::{Error, Result};
use crate::secret::{self, SecretMetadata, Token};
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sdk_secretsmanager::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueError;
use std::time::Duration;
use zeroize::Zeroizing;

/// AWS settings after flags, environment and config file were layered.
#[derive(Clone, Debug, Default)]
pub struct AwsSettings {
    /// Explicit region (flag, or config file when the environment names none).
    pub region: Option<String>,
    /// Explicit endpoint (flag, or config file when the environment names none).
    pub endpoint_url: Option<String>,
    /// Overall deadline for one API operation, retries included.
    pub operation_timeout: Duration,
    /// TCP/TLS connect timeout.
    pub connect_timeout: Duration,
}

/// A fetched and validated secret version.
#[derive(Debug)]
pub struct FetchedSecret {
    /// The staging label whose version this is (AWSCURRENT after a canary fallback).
    pub stage: String,
    /// The label asked for that no version carries, when AWSCURRENT was applied instead.
    pub fallback_from: Option<String>,
    pub arn: String,
    pub version_id: String,
    pub created_date: Option<String>,
    pub token: Token,
    pub metadata: SecretMetadata,
}

/// Region from a Secrets Manager ARN (`arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME`).
pub fn region_from_arn(secret_id: &str) -> Option<String> {
    let mut parts = secret_id.split(':');
    (parts.next()? == "arn").then_some(())?;
    parts.next()?;
    (parts.next()? == "secretsmanager").then_some(())?;
    parts.next().filter(|r| !r.is_empty()).map(str::to_owned)
}

/// Attempts per API call (the first plus retries). Throttling, 5xx, timeouts and dropped
/// connections are retried with exponential backoff and full jitter (the SDK's standard mode).
pub const MAX_ATTEMPTS: u32 = 4;

/// Loads the SDK configuration. The overall deadline (`--timeout`) bounds all attempts together;
/// each attempt gets a third of it, so a hung connection is retried within the deadline.
pub async fn load_config(settings: &AwsSettings, secret_id: &str) -> Result<SdkConfig> {
    let attempt_timeout = (settings.operation_timeout / 3).max(Duration::from_secs(1));
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(settings.connect_timeout)
        .read_timeout(attempt_timeout)
        .operation_attempt_timeout(attempt_timeout)
        .operation_timeout(settings.operation_timeout)
        .build();
    let retries = aws_config::retry::RetryConfig::standard()
        .with_max_attempts(MAX_ATTEMPTS)
        .with_initial_backoff(Duration::from_millis(200))
        .with_max_backoff(Duration::from_secs(5));
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .timeout_config(timeouts)
        .retry_config(retries);
    if let Some(region) = &settings.region {
        loader = loader.region(Region::new(region.clone()));
    }
    if let Some(endpoint) = &settings.endpoint_url {
        loader = loader.endpoint_url(endpoint.clone());
    }
    let mut config = loader.load().await;
    if config.region().is_none() {
        let Some(region) = region_from_arn(secret_id) else {
            return Err(Error::config(
                "no AWS region: pass --region, set AWS_REGION, name one in the AWS profile or the config file, or use the secret's full ARN",
            ));
        };
        config = config.into_builder().region(Region::new(region)).build();
    }
    Ok(config)
}

/// Resolves credentials now, with the current (root) environment, and pins them into the
/// configuration. Used before a privilege drop, after which root's `~/.aws` is unreadable.
pub async fn freeze_credentials(config: SdkConfig) -> Result<SdkConfig> {
    let Some(provider) = config.credentials_provider() else {
        return Ok(config);
    };
    let credentials = provider.provide_credentials().await.map_err(|e| {
        Error::failed(format!(
            "cannot load AWS credentials before dropping privileges: {e}"
        ))
    })?;
    Ok(config
        .into_builder()
        .credentials_provider(SharedCredentialsProvider::new(credentials))
        .build())
}

/// One `GetSecretValue` of the version under `stage` (AWSCURRENT, or a canary label), parsed and
/// validated. A canary label no version carries (promoted, or never put) falls back to
/// AWSCURRENT: a second call, only then.
pub async fn fetch_secret(
    config: &SdkConfig,
    secret_id: &str,
    json_key: &str,
    stage: &str,
) -> Result<FetchedSecret> {
    let client = aws_sdk_secretsmanager::Client::new(config);
    // AWSCURRENT is the default; asking for it by name also holds on servers that keep a
    // separate "default version" (moto does not move it on UpdateSecretVersionStage).
    let get = |stage: &str| {
        client
            .get_secret_value()
            .secret_id(secret_id)
            .version_stage(stage)
            .send()
    };
    let (output, applied) = match get(stage).await {
        Err(SdkError::ServiceError(context))
            if stage != "AWSCURRENT"
                && matches!(
                    context.err(),
                    GetSecretValueError::ResourceNotFoundException(_)
                ) =>
        {
            tracing::info!(stage, "no version carries the label; applying AWSCURRENT");
            (get("AWSCURRENT").await, "AWSCURRENT")
        }
        other => (other, stage),
    };
    let fallback_from = (applied != stage).then(|| stage.to_owned());
    let mut output = output.map_err(|e| describe_get_error(secret_id, e))?;
    let arn = output.arn.take().unwrap_or_else(|| secret_id.to_owned());
    let version_id = output.version_id.take().ok_or_else(|| {
        Error::failed(format!(
            "secret {secret_id}: Secrets Manager returned no VersionId"
        ))
    })?;
    let created_date = output
        .created_date
        .take()
        .and_then(|d| d.fmt(aws_smithy_types::date_time::Format::DateTime).ok());
    let parsed = if let Some(text) = output.secret_string.take() {
        secret::parse_secret_string(Zeroizing::new(text), json_key)
    } else if let Some(blob) = output.secret_binary.take() {
        secret::parse_secret_binary(Zeroizing::new(blob.into_inner()), json_key)
    } else {
        Err(secret::SecretError::NoValue)
    };
    let (token, metadata) = parsed
        .map_err(|e| Error::failed(format!("secret {secret_id} (version {version_id}): {e}")))?;
    Ok(FetchedSecret {
        stage: applied.to_owned(),
        fallback_from,
        arn,
        version_id,
        created_date,
        token,
        metadata,
    })
}

fn describe_get_error(secret_id: &str, err: SdkError<GetSecretValueError>) -> Error {
    let what = format!("GetSecretValue for {secret_id}");
    match err {
        SdkError::ServiceError(context) => {
            let service_error = context.into_err();
            let Some(code) = service_error.code().map(str::to_owned) else {
                return Error::failed(format!(
                    "{what} failed: the response from Secrets Manager could not be read (malformed or unexpected body)"
                ));
            };
            let message = service_error.message().unwrap_or("").to_owned();
            let hint = match &service_error {
                GetSecretValueError::ResourceNotFoundException(_) => {
                    " (no such secret in this region and account, or no AWSCURRENT version)"
                }
                _ if code == "AccessDeniedException" => {
                    " (the instance role needs secretsmanager:GetSecretValue on this secret; see iam-policy.json)"
                }
                GetSecretValueError::DecryptionFailure(_) => {
                    " (the role may lack kms:Decrypt on the secret's customer key)"
                }
                _ => "",
            };
            Error::failed(format!("{what} failed: {code}: {message}{hint}"))
        }
        SdkError::TimeoutError(_) => Error::failed(format!(
            "{what} timed out (no answer within the operation timeout; raise --timeout or check the network path to Secrets Manager)"
        )),
        SdkError::DispatchFailure(failure) => {
            let kind = if failure.is_timeout() {
                "connection timed out"
            } else if failure.is_io() {
                "connection failed"
            } else if failure.is_user() {
                "invalid request settings (endpoint URL?)"
            } else {
                "request could not be sent"
            };
            let detail = failure
                .as_connector_error()
                .map(|c| std::error::Error::source(c).map(|s| s.to_string()).unwrap_or_else(|| c.to_string()))
                .unwrap_or_default();
            Error::failed(format!("{what} failed: {kind}: {detail}"))
        }
        SdkError::ResponseError(_) => Error::failed(format!(
            "{what} failed: the response from Secrets Manager could not be read (malformed or cut off)"
        )),
        SdkError::ConstructionFailure(_) => Error::failed(format!(
            "{what} failed: the request could not be built (check credentials, region and endpoint settings)"
        )),
        _ => Error::failed(format!("{what} failed")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_comes_from_a_secret_arn() {
        assert_eq!(
            region_from_arn(
                "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/anthropic-AbCdEf"
            )
            .as_deref(),
            Some("eu-west-1")
        );
        assert_eq!(region_from_arn("prod/anthropic"), None);
        assert_eq!(region_from_arn("arn:aws:s3:::bucket"), None);
    }
}
