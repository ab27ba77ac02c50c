//! The `concord` command line: serve, migrate, administer accounts, print configuration.

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    concord::memory::configure();
    cli::main()
}
