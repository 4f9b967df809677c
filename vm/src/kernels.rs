//! The kernel module in wasmtime, configured with the chain's feature set and deterministic
//! settings, so its outputs can be compared bit for bit with the native build.

use anyhow::{bail, Context, Result};
use wasmtime::{Config, Engine, Instance, Memory, Module, Store, TypedFunc};

/// An instantiated `cwnn-wasm-kernels` module.
pub struct KernelModule {
    store: Store<()>,
    memory: Memory,
    alloc: TypedFunc<u32, u32>,
    free: TypedFunc<(u32, u32), ()>,
    run: TypedFunc<(u32, u32, u32), u32>,
}

/// The engine configuration: post-MVP proposals off, fuel metering on (fuel counts Wasm
/// operators, the unit non-CosmWasm hosts bill in). Modules are also validated against the
/// chain's feature set before they get here ([`KernelModule::new`]).
pub fn engine() -> Result<Engine> {
    let mut c = Config::new();
    c.wasm_simd(false)
        .wasm_relaxed_simd(false)
        .wasm_bulk_memory(false)
        .wasm_multi_memory(false)
        .cranelift_nan_canonicalization(true)
        .consume_fuel(true);
    Ok(Engine::new(&c)?)
}

impl KernelModule {
    /// Validates `wasm` against the chain's feature set (and the float ban), then instantiates it.
    pub fn new(wasm: &[u8]) -> Result<Self> {
        crate::check::check_module(wasm)?;
        let engine = engine()?;
        let module =
            Module::new(&engine, wasm).map_err(|e| anyhow::Error::from(e).context("compiling the kernel module"))?;
        let mut store = Store::new(&engine, ());
        store.set_fuel(u64::MAX)?;
        let instance =
            Instance::new(&mut store, &module, &[]).map_err(|e| anyhow::Error::from(e).context("instantiating"))?;
        let memory = instance
            .get_memory(&mut store, "memory")
            .context("no exported memory")?;
        Ok(KernelModule {
            alloc: instance.get_typed_func(&mut store, "cwnn_alloc")?,
            free: instance.get_typed_func(&mut store, "cwnn_free")?,
            run: instance.get_typed_func(&mut store, "cwnn_run")?,
            store,
            memory,
        })
    }

    /// Runs `dispatch(op, input)` inside Wasm; returns its output and the fuel it used.
    pub fn run(&mut self, op: u32, input: &[u8]) -> Result<(Vec<u8>, u64)> {
        let len = u32::try_from(input.len())?;
        let ptr = self.alloc.call(&mut self.store, len)?;
        self.memory.write(&mut self.store, ptr as usize, input)?;
        let before = self.store.get_fuel()?;
        let out = self.run.call(&mut self.store, (op, ptr, len))?;
        let fuel = before - self.store.get_fuel()?;
        let mut hdr = [0u8; 4];
        self.memory.read(&self.store, out as usize, &mut hdr)?;
        let n = u32::from_le_bytes(hdr) as usize;
        let mut data = vec![0u8; n];
        self.memory.read(&self.store, out as usize + 4, &mut data)?;
        if data.is_empty() {
            bail!("kernel module returned an empty frame");
        }
        self.free.call(&mut self.store, (out, (n + 4) as u32))?;
        Ok((data, fuel))
    }
}

thread_local! {
    static BUILT: std::cell::RefCell<Option<KernelModule>> = const { std::cell::RefCell::new(None) };
}

/// Runs `op` in the kernel module that scripts/build-wasm.sh built (instantiated once per
/// thread): what the determinism tests compare the native build against.
pub fn run_built(op: u32, input: &[u8]) -> Result<Vec<u8>> {
    BUILT.with(|m| {
        let mut m = m.borrow_mut();
        if m.is_none() {
            *m = Some(KernelModule::new(&crate::artifacts::read_wasm("cwnn_wasm_kernels")?)?);
        }
        Ok(m.as_mut().expect("just set").run(op, input)?.0)
    })
}
