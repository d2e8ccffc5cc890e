fn main() -> std::process::ExitCode {
    openclaw_token_sync::cli::main()
}
