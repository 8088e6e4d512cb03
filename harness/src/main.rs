fn main() -> std::process::ExitCode {
    ppvnet::cli::main()
}
