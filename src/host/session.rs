//! Entering the target user's world, shared by every command that acts for a user: resolve the
//! user, load the AWS configuration while still root (and pin its credentials, since root's
//! `~/.aws` is unreadable afterwards), then drop privileges for good.

use crate::aws::{self, AwsSettings};
use crate::error::{Error, Result};
use crate::host::privileges::{self, TargetUser};
use aws_config::SdkConfig;
use std::path::Path;

/// The acting user, and an AWS client configuration when the command talks to AWS.
pub struct Session {
    pub target: TargetUser,
    pub aws: Option<(tokio::runtime::Runtime, SdkConfig)>,
}

/// Resolves the user and drops privileges; `aws` is `(settings, secret id)` for commands that
/// call AWS.
pub fn enter(
    user: Option<&str>,
    home: Option<&Path>,
    aws: Option<(&AwsSettings, &str)>,
) -> Result<Session> {
    enter_keeping_root(user, home, aws, false)
}

/// [`enter`], but with `keep_root` the process acts as the user with root kept back
/// (`privileges::act_as`), for a user whose gateway runs in the system manager.
pub fn enter_keeping_root(
    user: Option<&str>,
    home: Option<&Path>,
    aws: Option<(&AwsSettings, &str)>,
    keep_root: bool,
) -> Result<Session> {
    let target = privileges::resolve(user, home)?;
    let aws = match aws {
        None => None,
        Some((settings, secret_id)) => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| Error::failed(format!("cannot start the async runtime: {e}")))?;
            let mut config = runtime.block_on(aws::load_config(settings, secret_id, true))?;
            if privileges::must_drop(&target) {
                config = runtime.block_on(aws::freeze_credentials(config))?;
            }
            Some((runtime, config))
        }
    };
    if keep_root {
        privileges::act_as(&target)?;
    } else {
        privileges::drop_to(&target)?;
    }
    Ok(Session { target, aws })
}
