//! The Rust-WGSL contract, checked with naga: every Params struct has the size and field
//! offsets of its WGSL twin, every opcode has its shader case, every pipeline constant is
//! declared, and (on an adapter) an unknown opcode gives NaN.

use std::mem::size_of;

use super::elementwise::{BinaryParams, UnaryParams, BINARY_WGSL, UNARY, UNARY_WGSL};
use super::gemm::{MatParams, GEMM_WGSL};
use super::reduce::{ReduceParams, REDUCE_WGSL, SUM_NARROW};
use super::runtime::kernel::{constants, Bind, Fields, KernelInfo, Module};
use super::runtime::uniforms::Uniform;
use super::runtime::GemmTiling;
use super::window::WindowParams;
use super::{kernels, GpuBuffer, MODULES};
use crate::backend::{BinaryOp, ReduceOp, UnaryOp, BINARY_OPCODES, REDUCE_OPCODES, UNARY_OPCODES};

/// A module, its opcode functions, its opcode table, and the variants' codes.
type OpcodeCheck = (&'static Module, &'static [&'static str], &'static [&'static str], Vec<u32>);

fn module(m: &Module) -> naga::Module {
    let src = m.source();
    naga::front::wgsl::parse_str(src)
        .unwrap_or_else(|e| panic!("{}: {}", m.name, e.emit_to_string(src)))
}

/// `(span, [(member, offset)])` of the WGSL struct `name`, padding members left out.
fn wgsl_layout(m: &naga::Module, name: &str) -> (u32, Vec<(String, u32)>) {
    let ty = m
        .types
        .iter()
        .find(|(_, t)| t.name.as_deref() == Some(name))
        .unwrap_or_else(|| panic!("no WGSL struct {name}"));
    let naga::TypeInner::Struct { members, span } = &ty.1.inner else {
        panic!("{name} is not a struct");
    };
    let fields = members
        .iter()
        .filter_map(|mb| {
            let n = mb.name.clone()?;
            (!n.starts_with('_')).then_some((n, mb.offset))
        })
        .collect();
    (*span, fields)
}

/// Rust's `(field, offset)` list, padding left out.
fn rust_layout(fields: Fields) -> Vec<(String, u32)> {
    fields
        .into_iter()
        .filter(|(name, ..)| !name.starts_with('_'))
        .map(|(name, _, _, offset)| (name.to_string(), offset as u32))
        .collect()
}

/// WGSL lays the uniform out as `#[repr(C)]` does: the same size, every field at the same
/// offset.
fn check_layout(m: &Module, name: &str, size: usize, fields: Fields) {
    let (span, wgsl) = wgsl_layout(&module(m), name);
    let what = format!("{}.wgsl {name}", m.name);
    assert_eq!(span as usize, size, "{what}: size");
    assert_eq!(wgsl, rust_layout(fields), "{what}: fields and offsets");
}

#[test]
fn uniforms_have_the_same_layout_in_rust_and_wgsl() {
    for k in kernels() {
        check_layout(k.module, k.uniform, k.uniform_size, (k.fields)());
    }
    // the structs nested in the GEMM's uniform
    check_layout(&GEMM_WGSL, MatParams::WGSL_NAME, size_of::<MatParams>(), MatParams::fields());
    let window = size_of::<WindowParams>();
    check_layout(&GEMM_WGSL, WindowParams::WGSL_NAME, window, WindowParams::fields());
}

/// Every entry point of every module has a kernel handle in `gpu::kernels()`, so the check
/// below reaches it (a new entry point, or a new module's, cannot go unchecked). A module that
/// includes another's text (the subgroup reduction) has that module's entry points checked
/// through its handles.
#[test]
fn every_entry_point_has_a_checked_handle() {
    let handles = kernels();
    for shader in MODULES {
        for ep in module(shader).entry_points {
            let mine = |k: &&&KernelInfo| {
                k.module.name == shader.name || shader.body().contains(k.module.body())
            };
            let held = handles.iter().filter(mine).any(|k| k.entry == ep.name);
            assert!(held, "{}.wgsl {}: no kernel handle in gpu::kernels()", shader.name, ep.name);
        }
    }
}

/// Every kernel handle names an entry point of its module that binds exactly the handle's
/// storage buffers, writes those it marks written and no others, and reads its uniform at
/// binding 0 as the handle's type.
#[test]
fn every_kernel_matches_its_entry_point() {
    for k in kernels() {
        check_kernel(k);
    }
}

fn check_kernel(k: &KernelInfo) {
    let m = module(k.module);
    let what = format!("{}.wgsl {}", k.module.name, k.entry);
    let info = naga::valid::Validator::new(
        naga::valid::ValidationFlags::all(),
        naga::valid::Capabilities::all(),
    )
    .validate(&m)
    .unwrap_or_else(|e| panic!("{what}: {e:?}"));
    let index = m
        .entry_points
        .iter()
        .position(|e| e.name == k.entry)
        .unwrap_or_else(|| panic!("{what}: no such entry point"));
    assert_eq!(m.entry_points[index].stage, naga::ShaderStage::Compute, "{what}");
    for (name, _) in k.constants {
        let declared = m.overrides.iter().any(|(_, o)| o.name.as_deref() == Some(*name));
        assert!(declared, "{what}: sets pipeline constant {name}, which the module lacks");
    }
    let uses = info.get_entry_point(index);
    let mut storage = Vec::new();
    for (h, g) in m.global_variables.iter() {
        let used = uses[h];
        let Some(binding) = &g.binding else { continue };
        if used.is_empty() {
            continue;
        }
        assert_eq!(binding.group, 0, "{what}: one bind group");
        match g.space {
            naga::AddressSpace::Uniform => {
                assert_eq!(binding.binding, 0, "{what}: the uniform is binding 0");
                let ty = m.types[g.ty].name.as_deref();
                assert_eq!(ty, Some(k.uniform), "{what}: uniform type");
            }
            naga::AddressSpace::Storage { .. } => {
                let written = used.contains(naga::valid::GlobalUse::WRITE);
                storage.push(match written {
                    true => Bind::Out(binding.binding),
                    false => Bind::In(binding.binding),
                });
            }
            _ => panic!("{what}: unexpected global {:?}", g.name),
        }
    }
    let mut declared = k.bindings.to_vec();
    declared.sort_by_key(|b| b.slot());
    assert_eq!(declared, storage, "{what}: storage bindings (read or written)");
}

/// Misaligned on purpose (a vec4 array after three u32s): the check above must catch it.
#[test]
fn a_layout_mismatch_is_caught() {
    super::runtime::uniforms::uniform! {
        Skewed as "Skewed" {
            a: u32,
            b: u32,
            c: u32,
            dims: [[u32; 4]; 2],
        }
    }
    let src = format!("{}@group(0) @binding(0) var<uniform> p: Skewed;\n", Skewed::wgsl());
    let m = naga::front::wgsl::parse_str(&src).unwrap();
    let (_, wgsl) = wgsl_layout(&m, "Skewed");
    let rust: Vec<(String, u32)> =
        Skewed::fields().into_iter().map(|(n, _, _, o)| (n.to_string(), o as u32)).collect();
    assert_ne!(wgsl, rust, "WGSL aligns the array to 16 bytes, repr(C) to 4");
}

/// Every case value of the `switch`es in function `func` of `shader`.
fn switch_cases(shader: &Module, func: &str) -> Vec<Vec<u32>> {
    fn walk(block: &naga::Block, out: &mut Vec<Vec<u32>>) {
        for st in block.iter() {
            match st {
                naga::Statement::Switch { cases, .. } => {
                    out.push(
                        cases
                            .iter()
                            .filter_map(|c| match c.value {
                                naga::SwitchValue::U32(v) => Some(v),
                                naga::SwitchValue::I32(v) => Some(v as u32),
                                naga::SwitchValue::Default => None,
                            })
                            .collect(),
                    );
                    for c in cases {
                        walk(&c.body, out);
                    }
                }
                naga::Statement::Block(b) => walk(b, out),
                naga::Statement::If { accept, reject, .. } => {
                    walk(accept, out);
                    walk(reject, out);
                }
                naga::Statement::Loop { body, continuing, .. } => {
                    walk(body, out);
                    walk(continuing, out);
                }
                _ => {}
            }
        }
    }
    let m = module(shader);
    let (_, f) = m
        .functions
        .iter()
        .find(|(_, f)| f.name.as_deref() == Some(func))
        .unwrap_or_else(|| panic!("{}.wgsl has no fn {func}", shader.name));
    let mut out = Vec::new();
    walk(&f.body, &mut out);
    out
}

#[test]
fn every_opcode_has_its_shader_case() {
    let unary: Vec<u32> = UnaryOp::ALL.iter().map(|op| op.code().0).collect();
    let binary: Vec<u32> = BinaryOp::ALL.iter().map(|op| op.code().0).collect();
    let reduce = vec![ReduceOp::Sum.code(), ReduceOp::Max.code()];
    let checks: [OpcodeCheck; 3] = [
        (&UNARY_WGSL, &["apply"], &UNARY_OPCODES, unary),
        (&BINARY_WGSL, &["apply"], &BINARY_OPCODES, binary),
        (&REDUCE_WGSL, &["identity", "combine"], &REDUCE_OPCODES, reduce),
    ];
    for (shader, funcs, table, mut codes) in checks {
        // every variant has a code in the table, each its own
        codes.sort();
        let all: Vec<u32> = (0..table.len() as u32).collect();
        assert_eq!(codes, all, "{}: variants and opcode table differ", shader.name);
        for func in funcs {
            let mut cases = switch_cases(shader, func);
            assert_eq!(cases.len(), 1, "{}::{func}: one opcode switch", shader.name);
            cases[0].sort();
            assert_eq!(cases[0], all, "{}::{func}: a case per opcode", shader.name);
        }
    }
}

#[test]
fn every_pipeline_constant_is_declared_and_set() {
    let constants = constants(&GemmTiling::HARDWARE.large);
    for shader in MODULES {
        let m = module(shader);
        let declared: Vec<(String, bool)> = m
            .overrides
            .iter()
            .filter_map(|(_, o)| Some((o.name.clone()?, o.init.is_some())))
            .collect();
        for (name, _) in &constants {
            assert!(
                declared.iter().any(|(n, _)| n == name),
                "{name} is set from Rust but {}.wgsl does not declare it",
                shader.name
            );
        }
        // one without a default is set for every pipeline, or by every kernel of the module
        let kernels: Vec<_> =
            kernels().into_iter().filter(|k| k.module.name == shader.name).collect();
        for (name, has_default) in &declared {
            let by_kernels = |k: &&KernelInfo| k.constants.iter().any(|(n, _)| n == name);
            assert!(
                *has_default
                    || constants.iter().any(|(n, _)| n == name)
                    || (!kernels.is_empty() && kernels.iter().all(by_kernels)),
                "{}.wgsl: override {name} has no default and Rust does not set it",
                shader.name
            );
        }
    }
}

/// On an adapter: an opcode with no shader case gives NaN, never another op's result.
#[test]
fn unknown_opcodes_give_nan_on_the_gpu() {
    let Some(ctx) = super::runtime::test_context() else {
        return;
    };
    let x = ctx.upload(&[1.5, -2.0, 0.0, 3.0], "test").unwrap();
    let unary = UnaryParams { n: 4, op: UNARY_OPCODES.len() as u32, alpha: 7.0, _pad: 0 };
    let reduce = ReduceParams {
        outer: 1,
        len: 4,
        inner: 1,
        op: REDUCE_OPCODES.len() as u32,
        chunk: 0,
        chunks: 1,
        _pad: [0; 2],
    };
    let binary = BinaryParams {
        n: 4,
        op: BINARY_OPCODES.len() as u32,
        alpha: 7.0,
        rank: 1,
        plain: 1,
        _pad: [0; 3],
        dims: [[4, 0, 0, 0], [0; 4]],
        a_strides: [[1, 0, 0, 0], [0; 4]],
        b_strides: [[1, 0, 0, 0], [0; 4]],
    };
    let all_nan = |y: &GpuBuffer, what: &str| {
        let got = ctx.read(y).unwrap();
        assert!(got.iter().all(|v| v.is_nan()), "{what}: {got:?}");
    };
    let (y4, y1) = (ctx.alloc(4, "test").unwrap(), ctx.alloc(1, "test").unwrap());
    ctx.launch(&UNARY, &unary, &[&x, &y4], [1, 1, 1]).unwrap();
    all_nan(&y4, "unary");
    let binary_kernel = &super::elementwise::BINARY;
    ctx.launch(binary_kernel, &binary, &[&x, &x, &y4], [1, 1, 1]).unwrap();
    all_nan(&y4, "binary");
    ctx.launch(&SUM_NARROW, &reduce, &[&x, &y1], [1, 1, 1]).unwrap();
    all_nan(&y1, "sum_narrow");
}

/// The GEMM's register arrays hold as many elements as the host's tilings may stage
/// (`tiles::MAX_LOADS`, checked by `GemmTiles::check`).
#[test]
fn gemm_register_capacity_matches_the_host() {
    let m = module(&GEMM_WGSL);
    let (_, c) = m
        .constants
        .iter()
        .find(|(_, c)| c.name.as_deref() == Some("MAX_LOADS"))
        .expect("gemm.wgsl declares MAX_LOADS");
    let naga::Expression::Literal(naga::Literal::U32(v)) = m.global_expressions[c.init] else {
        panic!("MAX_LOADS is not a u32 literal");
    };
    assert_eq!(v, super::runtime::tiles::MAX_LOADS);
}
