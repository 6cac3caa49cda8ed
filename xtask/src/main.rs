use std::process::ExitCode;

use clap::Parser;
use xtask::cli::{self, Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Build(args) => cli::build(args),
        Command::TestBoot(args) => match cli::test_boot(args) {
            Ok(0) => Ok(()),
            Ok(code) => return ExitCode::from(code as u8),
            Err(error) => Err(error),
        },
        Command::Compdb(args) => cli::compdb(args),
        Command::Units(args) => cli::units(args),
        Command::Test => xtask::selftest::run(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(xtask::exit_code(&error))
        }
    }
}
