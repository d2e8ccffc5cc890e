//! The `openclaw-token-sync` binary: everything lives in the library; see `cli`.

fn main() -> std::process::ExitCode {
    openclaw_token_sync::cli::main()
}
