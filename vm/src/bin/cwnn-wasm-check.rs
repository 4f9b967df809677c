//! `cwnn-wasm-check [--contract FILE]... [--module FILE]...`: the gate every Wasm build passes.
//! Contracts get cosmwasm-check 2.2.10's validation; plain modules the chain's feature set;
//! both the float scan. Exits 1 on any failure.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty() || args.iter().any(|a| a == "-h" || a == "--help") {
        eprintln!("usage: cwnn-wasm-check [--contract FILE]... [--module FILE]...");
        return ExitCode::from(2);
    }
    let mut failures = 0;
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let Some(path) = it.next() else {
            eprintln!("{flag}: missing file");
            return ExitCode::from(2);
        };
        let check = match flag.as_str() {
            "--contract" => cwnn_vm::check::check_contract,
            "--module" => cwnn_vm::check::check_module,
            other => {
                eprintln!("unknown option {other}");
                return ExitCode::from(2);
            }
        };
        let result = std::fs::read(path).map_err(anyhow::Error::from).and_then(|wasm| {
            check(&wasm)?;
            Ok(wasm.len())
        });
        match result {
            Ok(size) => println!("{path}: pass ({:.1} KiB, no float instructions)", size as f64 / 1024.0),
            Err(e) => {
                failures += 1;
                println!("{path}: FAIL\n  {e:#}");
            }
        }
    }
    if failures > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
