//! `promoml-example`: the stock promoml CLI plus the example plugin — the one line a team adds.

fn main() -> std::process::ExitCode {
    promoml_cli::main_with(&[promoml_example_plugin::register])
}
