//! The floor for `sync`'s no-op cost: the least a Rust program can do to read the secret, one
//! `GetSecretValue` with the same SDK crates, runtime and timeouts, printing only the version id.
//! `scripts/bench` times `sync` against this.
//!
//! Usage: get_secret_floor SECRET_ID   (AWS settings from the standard environment)

use aws_config::timeout::TimeoutConfig;
use aws_config::BehaviorVersion;
use std::time::Duration;

fn main() -> std::process::ExitCode {
    let Some(secret_id) = std::env::args().nth(1) else {
        eprintln!("usage: get_secret_floor SECRET_ID");
        return std::process::ExitCode::from(2);
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let config = aws_config::defaults(BehaviorVersion::latest())
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(3))
                    .operation_timeout(Duration::from_secs(30))
                    .build(),
            )
            .load()
            .await;
        let client = aws_sdk_secretsmanager::Client::new(&config);
        match client.get_secret_value().secret_id(secret_id).send().await {
            Ok(output) => {
                println!("{}", output.version_id().unwrap_or_default());
                std::process::ExitCode::SUCCESS
            }
            Err(_) => {
                eprintln!("GetSecretValue failed");
                std::process::ExitCode::FAILURE
            }
        }
    })
}
