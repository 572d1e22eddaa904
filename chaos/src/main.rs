fn main() -> std::process::ExitCode {
    rampart_chaos::runner::main()
}
