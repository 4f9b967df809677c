//! A bake on a small runtime: the result is valid Wasm with the payload at `BASE`, bakes are
//! reproducible, and `verify` accepts exactly the genuine bake.

use cwnn_bake::{bake, verify, BakeError, Payload, RuntimeId, BASE, MEMORY_BYTES};
use sha2::{Digest, Sha256};

/// A runtime as the model contract is laid out: memory of `MEMORY_BYTES`, data below `BASE`,
/// a custom section after the data section.
fn runtime() -> Vec<u8> {
    let pages = MEMORY_BYTES / 65_536;
    let mut w = wat::parse_str(format!(
        r#"(module
             (memory (export "memory") {pages})
             (func (export "f") (result i32) (i32.load (i32.const {BASE})))
             (data (i32.const 1048576) "static data of the runtime")
             (data (i32.const 1048700) "\01\02\03"))"#
    ))
    .unwrap();
    w.extend_from_slice(&[0, 4, 3, b'a', b'b', b'c']); // custom section "abc", empty
    w
}

fn sha(b: &[u8]) -> Vec<u8> {
    Sha256::digest(b).to_vec()
}

#[test]
fn a_bake_is_valid_wasm_with_the_payload_at_base() {
    let baked = bake(&runtime(), br#"{"name":"m"}"#, &[7; 1000], &[0; 32]).unwrap();
    wasmparser::Validator::new().validate_all(&baked).unwrap();
    let mut found = None;
    for p in wasmparser::Parser::new(0).parse_all(&baked) {
        if let wasmparser::Payload::DataSection(r) = p.unwrap() {
            for seg in r {
                let seg = seg.unwrap();
                if let wasmparser::DataKind::Active { offset_expr, .. } = seg.kind {
                    let mut ops = offset_expr.get_operators_reader();
                    if let wasmparser::Operator::I32Const { value } = ops.read().unwrap() {
                        if value as u32 == BASE {
                            found = Some(seg.data.to_vec());
                        }
                    }
                }
            }
        }
    }
    let bytes = found.expect("a segment at BASE");
    let p = Payload::parse(&bytes).unwrap();
    assert_eq!((p.config, p.weights), (&br#"{"name":"m"}"#[..], &[7u8; 1000][..]));
    // The head the payload keeps is the data section's bytes before it.
    let d = &baked[baked.len() - p.head.len() - bytes.len()..];
    assert_eq!(p.data_section(), d);
}

#[test]
fn bakes_are_reproducible() {
    let a = bake(&runtime(), b"{}", &[1, 2, 3], &[0; 32]).unwrap();
    let b = bake(&runtime(), b"{}", &[1, 2, 3], &[0; 32]).unwrap();
    assert_eq!(a, b);
    assert_ne!(a, bake(&runtime(), b"{}", &[1, 2, 4], &[0; 32]).unwrap());
}

/// The data section `D` of a baked Wasm and its checksum.
fn proof(baked: &[u8], id: &RuntimeId) -> Vec<u8> {
    baked[id.hashed as usize + id.tail.len()..].to_vec()
}

#[test]
fn verify_accepts_a_genuine_bake_and_refuses_forgeries() {
    let rt = runtime();
    let id = RuntimeId::of(&rt).unwrap();
    let baked = bake(&rt, b"{}", &[5; 300], &[0; 32]).unwrap();
    let d = proof(&baked, &id);
    verify(&id, &d, &sha(&baked)).unwrap();

    // Another model's genuine data section does not match this code.
    let other = bake(&rt, b"{}", &[6; 300], &[0; 32]).unwrap();
    let e = verify(&id, &proof(&other, &id), &sha(&baked)).unwrap_err();
    assert_eq!(
        e,
        BakeError::Forged("code checksum differs from the runtime baked with this data")
    );

    // Changed code (a byte in P): the checksum cannot match.
    let mut code = baked.clone();
    let at = code.windows(4).position(|w| w == b"\x28\x02\x00\x0b").unwrap_or(40);
    code[at] ^= 1;
    assert!(verify(&id, &d, &sha(&code)).is_err());

    // Changed runtime data (in S), sent as it is: the data hash catches it.
    let mut forged = baked.clone();
    let s = forged.windows(6).position(|w| w == b"static").unwrap();
    forged[s] = b'S';
    let e = verify(&id, &proof(&forged, &id), &sha(&forged)).unwrap_err();
    assert_eq!(e, BakeError::Forged("the runtime's data segments differ"));

    // A second segment smuggled in: the count in the header differs.
    let mut d2 = d.clone();
    d2[6] += 1;
    assert_eq!(
        verify(&id, &d2, &sha(&baked)).unwrap_err(),
        BakeError::Forged("data section header")
    );
    assert_eq!(
        verify(&id, &d[..20], &sha(&baked)).unwrap_err(),
        BakeError::Forged("data section length")
    );

    // A payload whose copy of the section head is wrong (re-hashed to match its own code).
    let mut bad_head = baked.clone();
    let n = bad_head.len();
    bad_head[n - 1] ^= 1; // the copy ends the payload
    let e = verify(&id, &proof(&bad_head, &id), &sha(&bad_head)).unwrap_err();
    assert_eq!(e, BakeError::Forged("the payload's copy of the section head differs"));

    // A runtime entry out of range is refused, not wrapped.
    let huge = RuntimeId {
        segments: u32::MAX,
        ..id.clone()
    };
    assert_eq!(
        verify(&huge, &d, &sha(&baked)).unwrap_err(),
        BakeError::Forged("runtime entry out of range")
    );
}

#[test]
fn bad_runtimes_are_named_errors() {
    assert_eq!(
        bake(b"not wasm", b"{}", &[], &[0; 32]),
        Err(BakeError::Runtime("no Wasm 1.0 header"))
    );
    let small = wat::parse_str(r#"(module (memory 17) (data (i32.const 1048576) "x"))"#).unwrap();
    assert!(matches!(
        bake(&small, b"{}", &[], &[0; 32]),
        Err(BakeError::Memory { .. })
    ));
    // Baking a baked Wasm again: its payload segment sits at BASE.
    let baked = bake(&runtime(), b"{}", &[], &[0; 32]).unwrap();
    assert!(matches!(bake(&baked, b"{}", &[], &[0; 32]), Err(BakeError::Runtime(_))));
    let capped = wat::parse_str(r#"(module (memory 48 64) (data (i32.const 1048576) "x"))"#).unwrap();
    assert_eq!(
        bake(&capped, b"{}", &[], &[0; 32]),
        Err(BakeError::Runtime("a memory with a maximum, shared or 64-bit"))
    );
    let mut counted = wat::parse_str(r#"(module (memory 48))"#).unwrap();
    counted.extend_from_slice(&[12, 1, 0, 11, 1, 0]); // data count 0, then an empty data section
    assert_eq!(
        bake(&counted, b"{}", &[], &[0; 32]),
        Err(BakeError::Runtime("a data count section (bulk memory)"))
    );
    let e = bake(&runtime(), b"{}", &vec![0; 900 * 1024], &[0; 32]).unwrap_err();
    assert!(matches!(e, BakeError::TooLarge { max: 819_200, .. }), "{e}");
}
