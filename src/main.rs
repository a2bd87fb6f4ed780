//! The `cashmatch` command line: a thin shell over the library. The subcommands are declared
//! and carried out in `cli`; the end-to-end benchmarks (`cashmatch bench`) are in `bench`, outside
//! the library's API. Errors are printed here, with their causes, and give exit code 2.

mod bench;
mod cli;

use clap::Parser;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let cli = cli::Cli::parse();
    if let Err(e) = cli::run(cli) {
        eprintln!("cashmatch: error: {e:#}");
        std::process::exit(2);
    }
}
