//! `tensorgrid`: see the library for the commands.

fn main() -> std::process::ExitCode {
    tensorgrid_cli::main()
}
