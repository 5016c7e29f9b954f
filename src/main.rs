use std::process::ExitCode;

fn main() -> ExitCode {
    match runneriq::cli::run() {
        Ok(code) => code,
        Err(err) => {
            eprintln!("runneriq: {}", runneriq::error::describe(&err));
            ExitCode::from(runneriq::error::exit_code(&err))
        }
    }
}
