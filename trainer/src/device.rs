//! Where to train. CUDA is chosen only after libcuda loads and reports a device, so a machine
//! without a GPU (or without the driver) falls back to the CPU instead of panicking inside
//! the CUDA backend.

use anyhow::{bail, Result};

/// `--device`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum DeviceChoice {
    /// CUDA when a GPU is usable, else the CPU.
    #[default]
    Auto,
    Cuda,
    Cpu,
}

/// The device training runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Device {
    Cpu,
    Cuda,
}

impl std::fmt::Display for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Device::Cpu => "cpu",
            Device::Cuda => "cuda",
        })
    }
}

/// Why CUDA is not usable, or `Ok(n)` devices.
pub fn probe_cuda() -> Result<i32, String> {
    if !cfg!(feature = "cuda") {
        return Err("built without the `cuda` feature".into());
    }
    let names: &[&str] = if cfg!(windows) {
        &["nvcuda.dll"]
    } else {
        &["libcuda.so.1", "libcuda.so"]
    };
    let mut last = String::new();
    for name in names {
        // SAFETY: libcuda's initialisers have no preconditions; cuInit and cuDeviceGetCount are
        // called with the signatures of the CUDA driver API (cuda.h).
        unsafe {
            let lib = match libloading::Library::new(name) {
                Ok(lib) => lib,
                Err(e) => {
                    last = format!("{name}: {e}");
                    continue;
                }
            };
            let init: libloading::Symbol<unsafe extern "C" fn(u32) -> i32> =
                lib.get(b"cuInit\0").map_err(|e| format!("{name}: {e}"))?;
            let count: libloading::Symbol<unsafe extern "C" fn(*mut i32) -> i32> =
                lib.get(b"cuDeviceGetCount\0").map_err(|e| format!("{name}: {e}"))?;
            let rc = init(0);
            if rc != 0 {
                return Err(format!("cuInit failed with CUDA error {rc}"));
            }
            let mut n = 0;
            let rc = count(&mut n);
            if rc != 0 || n == 0 {
                return Err(format!("no CUDA device (error {rc}, {n} devices)"));
            }
            return Ok(n);
        }
    }
    Err(last)
}

/// Resolves `--device`: `auto` never fails, `cuda` fails with the reason when unusable.
pub fn choose(choice: DeviceChoice) -> Result<(Device, String)> {
    match (choice, probe_cuda()) {
        (DeviceChoice::Cpu, _) => Ok((Device::Cpu, "cpu (asked for)".into())),
        (_, Ok(n)) => Ok((Device::Cuda, format!("cuda ({n} device(s), using 0)"))),
        (DeviceChoice::Cuda, Err(why)) => bail!("--device cuda, but CUDA is not usable: {why}"),
        (DeviceChoice::Auto, Err(why)) => Ok((Device::Cpu, format!("cpu (no CUDA: {why})"))),
    }
}
