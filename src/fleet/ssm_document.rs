//! The SSM Command document `deploy/ssm-document.json`, embedded in the binary so that `trigger`
//! validates its parameters with exactly the `allowedPattern` / `allowedValues` rules SSM applies
//! on the instance side. One source of truth: change the document, and the client follows.

use crate::error::{Error, Result};
use std::collections::BTreeMap;

/// The document as shipped in `deploy/`.
pub const DOCUMENT_JSON: &str = include_str!("../../deploy/ssm-document.json");

/// Default name the document is created under (CloudFormation template and README).
pub const DEFAULT_DOCUMENT_NAME: &str = "OpenClawTokenSync";

#[derive(serde::Deserialize)]
struct Document {
    parameters: BTreeMap<String, Parameter>,
}

#[derive(serde::Deserialize)]
struct Parameter {
    #[serde(rename = "allowedPattern")]
    allowed_pattern: Option<String>,
    #[serde(rename = "allowedValues")]
    allowed_values: Option<Vec<String>>,
    default: Option<String>,
}

fn document() -> Document {
    serde_json::from_str(DOCUMENT_JSON)
        .expect("deploy/ssm-document.json is valid (checked by tests)")
}

/// Checks one parameter value against the document's rules. The message names the parameter and
/// the rule, never the value (a value could be anything, even a token pasted by mistake).
pub fn validate(name: &str, value: &str) -> Result<()> {
    let document = document();
    let parameter = document
        .parameters
        .get(name)
        .ok_or_else(|| Error::config(format!("the SSM document has no parameter {name}")))?;
    if let Some(values) = &parameter.allowed_values {
        if !values.iter().any(|v| v == value) {
            return Err(Error::config(format!(
                "SSM parameter {name} must be one of {}",
                values.join(", ")
            )));
        }
    }
    if let Some(pattern) = &parameter.allowed_pattern {
        let regex = regex_lite::Regex::new(pattern).map_err(|e| {
            Error::config(format!(
                "the SSM document's pattern for {name} is invalid: {e}"
            ))
        })?;
        if !regex.is_match(value) {
            return Err(Error::config(format!(
                "SSM parameter {name} does not match the document's allowedPattern {pattern}"
            )));
        }
    }
    Ok(())
}

/// Validates every parameter and returns them as SendCommand wants them.
pub fn parameters(
    values: &[(&str, String)],
) -> Result<std::collections::HashMap<String, Vec<String>>> {
    let mut out = std::collections::HashMap::new();
    for (name, value) in values {
        validate(name, value)?;
        out.insert((*name).to_owned(), vec![value.clone()]);
    }
    Ok(out)
}

/// The document's default for a parameter.
pub fn default_of(name: &str) -> Option<String> {
    document()
        .parameters
        .get(name)
        .and_then(|p| p.default.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pattern_compiles_and_defaults_pass_their_own_rules() {
        let document = document();
        assert!(!document.parameters.is_empty());
        for (name, parameter) in &document.parameters {
            if let Some(default) = &parameter.default {
                validate(name, default).unwrap_or_else(|e| panic!("default of {name}: {e}"));
            }
        }
    }

    #[test]
    fn shell_metacharacters_never_pass() {
        for hostile in [
            "a'b",
            "x; rm -rf /",
            "$(id)",
            "`id`",
            "a b",
            "a\nb",
            "a|b",
            "a&b",
            "a>b",
            "\"x\"",
            "x\\y",
        ] {
            for name in ["secretId", "user", "unit", "region", "extraArgs", "action"] {
                assert!(
                    validate(name, hostile).is_err(),
                    "{name} accepted {hostile:?}"
                );
            }
        }
        assert!(validate("extraArgs", "--force --no-restart").is_ok());
        assert!(validate("extraArgs", "--force --exec=/bin/sh").is_err());
        assert!(validate(
            "secretId",
            "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/anthropic-AbCdEf"
        )
        .is_ok());
        assert!(validate("region", "eu-west-1").is_ok());
        assert!(validate("region", "").is_ok());
        let err = validate("user", "root; id").unwrap_err().to_string();
        assert!(!err.contains("root; id"), "{err}");
    }
}
