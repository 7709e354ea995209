use std::process::ExitCode;

fn main() -> ExitCode {
    jeeves::run()
}
