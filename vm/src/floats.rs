//! Finds every float in a Wasm module: instructions, and f32/f64 in signatures, locals and
//! globals. Contracts must have none (cwnn is integer-only so validators agree bit for bit and
//! no NaN canonicalisation is ever needed).

use anyhow::{Context, Result};
use wasmparser::{Operator, Parser, Payload, ValType};

/// One float use found in a module.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FloatUse {
    /// Index of the function (imports counted), when inside a function body.
    pub function: Option<u32>,
    /// Byte offset in the module.
    pub offset: usize,
    /// The instruction or declaration, e.g. `F64Add` or `local f32`.
    pub what: String,
}

fn is_float(t: &ValType) -> bool {
    matches!(t, ValType::F32 | ValType::F64)
}

/// Whether an operator reads, writes or produces a float. Operator names carry their types
/// (`F32Add`, `I32TruncF64S`, `F64Load`, `F32x4Mul`), so the name decides.
pub fn is_float_op(op: &Operator) -> bool {
    let name = format!("{op:?}");
    let name = name.split([' ', '{', '(']).next().unwrap_or("");
    name.contains("F32") || name.contains("F64")
}

/// Every float use in `wasm` (empty when the module is integer-only).
pub fn scan(wasm: &[u8]) -> Result<Vec<FloatUse>> {
    let mut found = Vec::new();
    let mut imported_funcs = 0u32;
    let mut body_index = 0u32;
    for payload in Parser::new(0).parse_all(wasm) {
        match payload.context("malformed Wasm")? {
            Payload::ImportSection(reader) => {
                for imp in reader.into_imports() {
                    if matches!(imp?.ty, wasmparser::TypeRef::Func(_)) {
                        imported_funcs += 1;
                    }
                }
            }
            Payload::TypeSection(reader) => {
                for (i, ty) in reader.into_iter_err_on_gc_types().enumerate() {
                    let ty = ty?;
                    if ty.params().iter().chain(ty.results()).any(is_float) {
                        found.push(FloatUse {
                            function: None,
                            offset: 0,
                            what: format!("type {i}: {ty}"),
                        });
                    }
                }
            }
            Payload::GlobalSection(reader) => {
                for g in reader.into_iter_with_offsets() {
                    let (offset, g) = g?;
                    if is_float(&g.ty.content_type) {
                        found.push(FloatUse {
                            function: None,
                            offset: offset as usize,
                            what: format!("global {}", g.ty.content_type),
                        });
                    }
                }
            }
            Payload::CodeSectionEntry(body) => {
                let func = imported_funcs + body_index;
                body_index += 1;
                let mut locals = body.get_locals_reader()?;
                for _ in 0..locals.get_count() {
                    let offset = locals.original_position() as usize;
                    let (_, ty) = locals.read()?;
                    if is_float(&ty) {
                        found.push(FloatUse {
                            function: Some(func),
                            offset,
                            what: format!("local {ty}"),
                        });
                    }
                }
                let mut ops = body.get_operators_reader()?;
                while !ops.eof() {
                    let (op, offset) = ops.read_with_offset()?;
                    if is_float_op(&op) {
                        let what = format!("{op:?}");
                        found.push(FloatUse {
                            function: Some(func),
                            offset: offset as usize,
                            what,
                        });
                    }
                }
            }
            _ => {}
        }
    }
    Ok(found)
}
