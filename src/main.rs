//! The `openclaw-token-sync` binary: everything lives in the library; see `cli`.

fn main() -> std::process::ExitCode {
    openclaw_token_sync::host::privileges::no_core_files();
    openclaw_token_sync::host::privileges::forbid_core_dumps();
    openclaw_token_sync::cli::main()
}
