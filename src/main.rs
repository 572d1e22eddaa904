//! The `rampart` binary: parses the command line, sets up tracing, runs the command.

fn main() -> std::process::ExitCode {
    rampart::cli::main()
}
