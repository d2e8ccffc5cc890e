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
/// `secret_region`: the configuration is for the secret itself (Secrets Manager), so an ARN's
/// region is where the request must go (the service answers an ARN only there): it wins over a
/// region from the environment, the profile or the instance, and one given on the command line
/// or in the config file that contradicts it is a usage error. Otherwise (SSM for `trigger`) the
/// ARN's region is only the fallback when none is set.
pub async fn load_config(
    settings: &AwsSettings,
    secret_id: &str,
    secret_region: bool,
) -> Result<SdkConfig> {
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
    if let Some(url) = config.endpoint_url() {
        check_endpoint_url(url)?;
    }
    match (region_from_arn(secret_id), &settings.region) {
        (Some(arn_region), Some(given)) if secret_region && *given != arn_region => {
            return Err(Error::config(format!(
                "--region (or the config file's region) is {given} but the secret's ARN names {arn_region}: Secrets Manager answers an ARN only in its own region; drop the setting or pass --region {arn_region}"
            )));
        }
        (Some(arn_region), None)
            if secret_region && config.region().is_some_and(|r| r.as_ref() != arn_region) =>
        {
            tracing::info!(region = %arn_region, "the secret's ARN names the region");
            config = config
                .into_builder()
                .region(Region::new(arn_region))
                .build();
        }
        _ => {}
    }
    if config.region().is_none() {
        let Some(region) = region_from_arn(secret_id) else {
            return Err(Error::config(
                "no AWS region: pass --region, set AWS_REGION, name one in the AWS profile or the config file, or use the secret's full ARN",
            ));
        };
        config = config.into_builder().region(Region::new(region)).build();
    }
    let endpoint = Endpoint::of(&config, "secretsmanager");
    tracing::debug!(region = %endpoint.region, endpoint = %endpoint.host, "Secrets Manager");
    CONFIG.with(|current| *current.borrow_mut() = Some(config.clone()));
    Ok(config)
}

/// Resolves credentials now, with the current (root) environment, and pins them into the
/// configuration. Used before a privilege drop, after which root's `~/.aws` is unreadable.
pub async fn freeze_credentials(config: SdkConfig) -> Result<SdkConfig> {
    let Some(provider) = config.credentials_provider() else {
        return Ok(config);
    };
    let credentials = provider
        .provide_credentials()
        .await
        .map_err(|e| Error::failed(describe_credentials_error(&e)))?;
    Ok(config
        .into_builder()
        .credentials_provider(SharedCredentialsProvider::new(credentials))
        .build())
}

/// The start of the message for a credential chain that found nothing.
const NO_CREDENTIALS: &str = "no AWS credentials found (environment variables, AWS profile, web identity, container or instance role)";

/// A credential chain that gave nothing, in an operator's words (the SDK's own text says "the
/// credential provider was not enabled").
fn describe_credentials_error(
    err: &aws_credential_types::provider::error::CredentialsError,
) -> String {
    use aws_credential_types::provider::error::CredentialsError;
    let chain = error_chain(err);
    let cause = chain
        .get(1)
        .map(|(message, _)| format!(": {}", crate::openclaw::gateway_rpc::short(message)))
        .unwrap_or_default();
    match err {
        CredentialsError::CredentialsNotLoaded(_) => NO_CREDENTIALS.to_owned(),
        CredentialsError::ProviderTimedOut(_) => "AWS credentials: the provider timed out (is the instance metadata service reachable from this host?)".to_owned(),
        CredentialsError::InvalidConfiguration(_) => format!("AWS credentials: the AWS profile or environment is not valid{cause}"),
        _ => format!("AWS credentials could not be loaded{cause}"),
    }
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
    let endpoint = Endpoint::of(config, "secretsmanager");
    let mut output = output.map_err(|e| describe_get_error(secret_id, &endpoint, e))?;
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
    let (token, metadata) = parsed.map_err(|e| {
        // The message's command, for this secret.
        let said = e.to_string().replace("<secret>", secret_id);
        Error::failed(format!("secret {secret_id} (version {version_id}): {said}"))
    })?;
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

fn describe_get_error(
    secret_id: &str,
    endpoint: &Endpoint,
    err: SdkError<GetSecretValueError>,
) -> Error {
    let what = format!("GetSecretValue for {secret_id}");
    let SdkError::ServiceError(context) = err else {
        let mut failure = transport_failure(&err, endpoint);
        if failure.starts_with(NO_CREDENTIALS) {
            // Said on the host the token goes to: what its instance role needs.
            failure.push_str("; on EC2 attach an instance profile with the permissions in `man openclaw-token-sync` (IAM)");
        }
        return Error::failed(format!("{what} failed: {failure}"));
    };
    let service_error = context.into_err();
    let Some(code) = service_error.code().map(str::to_owned) else {
        return Error::failed(format!(
            "{what} failed: the response from {} could not be read (malformed or unexpected body)",
            endpoint.host
        ));
    };
    let message = service_error.message().unwrap_or("").to_owned();
    let hint = match &service_error {
        GetSecretValueError::ResourceNotFoundException(_) => format!(
            " (no such secret in region {}{}, or no version under the stage asked for; a secret scheduled for deletion is not found either)",
            endpoint.region,
            account_from_arn(secret_id)
                .map(|account| format!(" of account {account}"))
                .unwrap_or_else(|| " of the account of the credentials".to_owned())
        ),
        _ if code == "AccessDeniedException" => {
            " (the credentials need secretsmanager:GetSecretValue on this secret: `man openclaw-token-sync`, IAM)".to_owned()
        }
        GetSecretValueError::InvalidRequestException(_)
            if message.contains("marked for deletion") || message.contains("marked deleted") =>
        {
            format!(" (the secret is scheduled for deletion; `aws secretsmanager restore-secret --secret-id {secret_id}` brings it back)")
        }
        GetSecretValueError::DecryptionFailure(_) => {
            " (the credentials may lack kms:Decrypt on the secret's customer key)".to_owned()
        }
        _ => String::new(),
    };
    Error::failed(format!("{what} failed: {code}: {message}{hint}"))
}

thread_local! {
    /// The configuration this thread's AWS calls use (the last `load_config`), so a call that
    /// got no service answer can be described with the region and endpoint it went to.
    static CONFIG: std::cell::RefCell<Option<SdkConfig>> = const { std::cell::RefCell::new(None) };
}

/// `{what} failed: …` for any AWS call: the service's code and message where it answered,
/// else the transport failure in words (see [`transport_failure`]), never the request.
pub fn describe_failure<E: ProvideErrorMetadata, R>(
    what: &str,
    service: &str,
    err: &SdkError<E, R>,
) -> String {
    if let (SdkError::ServiceError(_), Some(code)) = (err, err.code()) {
        return format!("{what} failed: {code}: {}", err.message().unwrap_or(""));
    }
    let endpoint = CONFIG.with(|config| {
        config
            .borrow()
            .as_ref()
            .map(|config| Endpoint::of(config, service))
    });
    match endpoint {
        Some(endpoint) => format!("{what} failed: {}", transport_failure(err, &endpoint)),
        None => format!("{what} failed: no usable answer (network, timeout or malformed response)"),
    }
}

/// Where an AWS service is asked, for messages: the region and the endpoint's host and port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub region: String,
    /// `host:port`.
    pub host: String,
    /// The endpoint speaks plain HTTP.
    pub plain_http: bool,
}

impl Endpoint {
    /// The endpoint of `service` (`secretsmanager`, `ssm`) under `config`: its `--endpoint-url`,
    /// else the service's public regional endpoint.
    pub fn of(config: &SdkConfig, service: &str) -> Endpoint {
        let region = config.region().map(|r| r.to_string()).unwrap_or_default();
        let specific = match service {
            "secretsmanager" => std::env::var("AWS_ENDPOINT_URL_SECRETS_MANAGER").ok(),
            "ssm" => std::env::var("AWS_ENDPOINT_URL_SSM").ok(),
            _ => None,
        }
        .filter(|url| !url.is_empty());
        match specific.as_deref().or(config.endpoint_url()) {
            Some(url) => {
                let plain_http = url.starts_with("http://");
                let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
                let authority = rest.split('/').next().unwrap_or(rest);
                let host = if authority.contains(':') && !authority.ends_with(']') {
                    authority.to_owned()
                } else {
                    format!("{authority}:{}", if plain_http { 80 } else { 443 })
                };
                Endpoint {
                    region,
                    host,
                    plain_http,
                }
            }
            None => Endpoint {
                host: format!("{service}.{region}.amazonaws.com:443"),
                region,
                plain_http: false,
            },
        }
    }

    fn hostname(&self) -> &str {
        self.host
            .rsplit_once(':')
            .map_or(self.host.as_str(), |(host, _)| host)
    }
}

/// An endpoint URL the SDK can use: `http://` or `https://`, then a host (the SDK otherwise
/// fails each request with a dump of it).
pub fn check_endpoint_url(url: &str) -> Result<()> {
    let lower = url.to_ascii_lowercase();
    let host = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"))
        .map(|rest| rest.split('/').next().unwrap_or(""));
    match host {
        Some(host) if !host.is_empty() && !host.contains(char::is_whitespace) => Ok(()),
        _ => Err(Error::config(format!(
            "endpoint URL {url:?} (from --endpoint-url, AWS_ENDPOINT_URL or the config file): expected http://HOST[:PORT] or https://HOST[:PORT]"
        ))),
    }
}

/// Account from a Secrets Manager ARN.
pub fn account_from_arn(secret_id: &str) -> Option<String> {
    let parts: Vec<&str> = secret_id.splitn(6, ':').collect();
    (parts.len() == 6 && parts[0] == "arn" && parts[2] == "secretsmanager" && !parts[4].is_empty())
        .then(|| parts[4].to_owned())
}

/// What went wrong when AWS gave no service answer, in an operator's words: missing
/// credentials, a name that does not resolve, a refused connection, TLS spoken to a plain-HTTP
/// endpoint, a timeout. Built from error kinds and the messages of the error chain (never a
/// `Debug` dump, never a response body).
pub fn transport_failure<E, R>(err: &SdkError<E, R>, endpoint: &Endpoint) -> String {
    match err {
        SdkError::TimeoutError(_) => format!(
            "timed out waiting for {} (no answer within the operation timeout; raise --timeout, or check the network path to it)",
            endpoint.host
        ),
        SdkError::DispatchFailure(failure) => {
            let connector = failure.as_connector_error();
            let chain = connector.map(|e| error_chain(e)).unwrap_or_default();
            let credentials = connector.and_then(|e| credentials_in_chain(e));
            describe_dispatch(&chain, credentials.as_deref(), failure.is_timeout(), endpoint)
        }
        SdkError::ResponseError(_) => format!(
            "the response from {} could not be read (malformed or cut off)",
            endpoint.host
        ),
        SdkError::ConstructionFailure(_) => {
            "the request could not be built (check the region and --endpoint-url)".to_owned()
        }
        SdkError::ServiceError(_) => format!("{} answered with an error", endpoint.host),
        _ => format!("no usable answer from {}", endpoint.host),
    }
}

/// The credential chain's own error, where that is what stopped the request, in words.
fn credentials_in_chain(err: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut next = Some(err);
    while let Some(current) = next {
        if let Some(credentials) =
            current.downcast_ref::<aws_credential_types::provider::error::CredentialsError>()
        {
            return Some(describe_credentials_error(credentials));
        }
        next = current.source();
    }
    None
}

/// The messages of an error and its sources, with the I/O error kinds met on the way.
fn error_chain(
    err: &(dyn std::error::Error + 'static),
) -> Vec<(String, Option<std::io::ErrorKind>)> {
    let mut chain = Vec::new();
    let mut next = Some(err);
    while let Some(current) = next {
        let kind = current
            .downcast_ref::<std::io::Error>()
            .map(std::io::Error::kind);
        chain.push((current.to_string(), kind));
        next = current.source();
    }
    chain
}

/// Pure: a dispatch failure's cause from its error chain.
fn describe_dispatch(
    chain: &[(String, Option<std::io::ErrorKind>)],
    credentials: Option<&str>,
    timed_out: bool,
    endpoint: &Endpoint,
) -> String {
    let text = chain
        .iter()
        .map(|(message, _)| message.to_ascii_lowercase())
        .collect::<Vec<_>>()
        .join(" | ");
    let kind = |k: std::io::ErrorKind| chain.iter().any(|(_, found)| *found == Some(k));
    let last = chain
        .last()
        .map(|(message, _)| crate::openclaw::gateway_rpc::short(message))
        .unwrap_or_default();
    if let Some(credentials) = credentials {
        return credentials.to_owned();
    }
    if text.contains("dns error") || text.contains("failed to lookup address") {
        let hint = if endpoint.hostname().ends_with(".amazonaws.com") {
            format!(
                " (is the region {} right? is there DNS on this host?)",
                endpoint.region
            )
        } else {
            " (is the endpoint URL right? is there DNS on this host?)".to_owned()
        };
        return format!("cannot resolve {}{hint}", endpoint.hostname());
    }
    if kind(std::io::ErrorKind::ConnectionRefused) || text.contains("connection refused") {
        return format!("connection refused by {}", endpoint.host);
    }
    if timed_out || kind(std::io::ErrorKind::TimedOut) {
        return format!(
            "timed out connecting to {} (no connection within the connect timeout)",
            endpoint.host
        );
    }
    if [
        "tls",
        "certificate",
        "handshake",
        "corrupt message",
        "invalidcontenttype",
    ]
    .iter()
    .any(|needle| text.contains(needle))
    {
        let hint = if endpoint.plain_http {
            ""
        } else {
            " (if the endpoint speaks plain HTTP, write http:// in --endpoint-url)"
        };
        return format!("TLS with {} failed: {last}{hint}", endpoint.host);
    }
    if kind(std::io::ErrorKind::ConnectionReset) || kind(std::io::ErrorKind::UnexpectedEof) {
        return format!(
            "{} closed the connection (is it the right endpoint and protocol?)",
            endpoint.host
        );
    }
    format!("cannot reach {}: {last}", endpoint.host)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(host: &str, plain_http: bool) -> Endpoint {
        Endpoint {
            region: "us-esat-1".to_owned(),
            host: host.to_owned(),
            plain_http,
        }
    }

    #[test]
    fn transport_failures_name_the_cause_and_the_endpoint() {
        use std::io::ErrorKind;
        let chain = |items: &[(&str, Option<ErrorKind>)]| -> Vec<(String, Option<ErrorKind>)> {
            items.iter().map(|(m, k)| (m.to_string(), *k)).collect()
        };
        let public = endpoint("secretsmanager.us-esat-1.amazonaws.com:443", false);
        let local = endpoint("127.0.0.1:47311", false);
        assert_eq!(
            describe_dispatch(&chain(&[("client error (Connect)", None), ("dns error", None), ("failed to lookup address information: Name or service not known", None)]), None, false, &public),
            "cannot resolve secretsmanager.us-esat-1.amazonaws.com (is the region us-esat-1 right? is there DNS on this host?)"
        );
        assert_eq!(
            describe_dispatch(
                &chain(&[
                    ("client error (Connect)", None),
                    ("tcp connect error", None),
                    (
                        "Connection refused (os error 111)",
                        Some(ErrorKind::ConnectionRefused)
                    )
                ]),
                None,
                false,
                &local
            ),
            "connection refused by 127.0.0.1:47311"
        );
        let tls = describe_dispatch(
            &chain(&[
                ("client error (Connect)", None),
                (
                    "received corrupt message of type InvalidContentType",
                    Some(ErrorKind::InvalidData),
                ),
            ]),
            None,
            false,
            &local,
        );
        assert!(
            tls.starts_with("TLS with 127.0.0.1:47311 failed") && tls.contains("write http://"),
            "{tls}"
        );
        // A chain that merely mentions credentials is not "no credentials"; the credential
        // chain's own error, found by type, is said as it is.
        let other = describe_dispatch(
            &chain(&[("credential file unreadable", None)]),
            None,
            false,
            &local,
        );
        assert!(!other.starts_with("no AWS credentials found"), "{other}");
        assert_eq!(
            describe_dispatch(&[], Some("no AWS credentials found (…)"), false, &local),
            "no AWS credentials found (…)"
        );
        assert_eq!(
            describe_dispatch(
                &chain(&[("client error (Connect)", None)]),
                None,
                true,
                &local
            ),
            "timed out connecting to 127.0.0.1:47311 (no connection within the connect timeout)"
        );
    }

    #[test]
    fn endpoint_urls_need_a_scheme_and_a_host() {
        assert!(check_endpoint_url("http://127.0.0.1:5000").is_ok());
        assert!(check_endpoint_url("https://secretsmanager.eu-west-1.amazonaws.com").is_ok());
        for bad in ["127.0.0.1:5000", "localhost", "https://", "ftp://host"] {
            let err = check_endpoint_url(bad).unwrap_err();
            assert!(
                err.to_string().contains("expected http://HOST"),
                "{bad}: {err}"
            );
        }
        assert_eq!(
            account_from_arn(
                "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/anthropic-AbCdEf"
            )
            .as_deref(),
            Some("123456789012")
        );
        assert_eq!(account_from_arn("prod/anthropic"), None);
    }

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
