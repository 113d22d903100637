//! The `packyard` command.

fn main() -> std::process::ExitCode {
    packyard::cli::main()
}
