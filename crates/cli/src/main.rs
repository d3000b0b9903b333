//! The stock `promoml` binary: the CLI with the built-in plugins.

fn main() -> std::process::ExitCode {
    promoml_cli::main_with(&[])
}
