//! The `cwnn` command line.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use cwnn_importer::Package;
use cwnn_vm::report::measure;

#[derive(Parser)]
#[command(name = "cwnn", version, about = "Quantized neural networks for CosmWasm")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Per-layer gas of a model package on cosmwasm-vm with the chain's gas schedule, and the
    /// number of calls it needs.
    Gas {
        /// The model package directory.
        dir: PathBuf,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// SDK gas one Evaluate/Continue call may use (a block's or a transaction's limit).
        #[arg(long, default_value_t = 30_000_000)]
        block_gas: u64,
        /// The model contract's Wasm; by default the one scripts/build-wasm.sh builds here.
        #[arg(long)]
        wasm: Option<PathBuf>,
    },
}

fn gas(dir: PathBuf, json: bool, block_gas: u64, wasm: Option<PathBuf>) -> Result<()> {
    let package = Package::read(&dir)?;
    let wasm = match wasm {
        Some(path) => std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?,
        None => cwnn_vm::artifacts::read_wasm("cwnn_model_contract")?,
    };
    let msg = serde_json::to_value(&package.instantiate)?;
    let report = measure(&wasm, &msg, &package.weights, &package.input(), block_gas)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.table());
    }
    Ok(())
}

fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Command::Gas {
            dir,
            json,
            block_gas,
            wasm,
        } => gas(dir, json, block_gas, wasm),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
