//! The Rust-WGSL contract, checked with naga: every Params struct has the size and field
//! offsets of its WGSL twin, every opcode has its shader case, every pipeline constant is
//! declared, and (on an adapter) an unknown opcode gives NaN.

use std::mem::size_of;

use super::elementwise::{BinaryParams, CopyParams, UnaryParams};
use super::gemm::{GemmParams, MatParams};
use super::kernels::{constants, Shader};
use super::peak::PeakParams;
use super::reduce::ReduceParams;
use super::selftest::Params as SelfTestParams;
use super::tiles::GemmTiling;
use super::uniforms::Uniform;
use super::upsample::UpsampleParams;
use super::window::WindowParams;
use super::GpuBuffer;
use crate::backend::{BinaryOp, ReduceOp, UnaryOp, BINARY_OPCODES, REDUCE_OPCODES, UNARY_OPCODES};

/// A shader, its opcode functions, its opcode table, and the variants' codes.
type OpcodeCheck = (
    Shader,
    &'static [&'static str],
    &'static [&'static str],
    Vec<u32>,
);

fn module(shader: Shader) -> naga::Module {
    let src = shader.source();
    naga::front::wgsl::parse_str(src)
        .unwrap_or_else(|e| panic!("{}: {}", shader.name(), e.emit_to_string(src)))
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

/// WGSL lays `U` out as `#[repr(C)]` does: the same size, every field at the same offset.
fn check_layout<U: Uniform>(shader: Shader) {
    let (span, wgsl) = wgsl_layout(&module(shader), U::WGSL_NAME);
    let what = format!("{}.wgsl {}", shader.name(), U::WGSL_NAME);
    assert_eq!(span as usize, size_of::<U>(), "{what}: size");
    let rust: Vec<(String, u32)> = U::fields()
        .into_iter()
        .filter(|(name, ..)| !name.starts_with('_'))
        .map(|(name, _, _, offset)| (name.to_string(), offset as u32))
        .collect();
    assert_eq!(wgsl, rust, "{what}: fields and offsets");
}

#[test]
fn uniforms_have_the_same_layout_in_rust_and_wgsl() {
    check_layout::<UnaryParams>(Shader::Unary);
    check_layout::<BinaryParams>(Shader::Binary);
    check_layout::<ReduceParams>(Shader::Reduce);
    check_layout::<CopyParams>(Shader::Copy);
    check_layout::<MatParams>(Shader::Gemm);
    check_layout::<WindowParams>(Shader::Gemm);
    check_layout::<GemmParams>(Shader::Gemm);
    check_layout::<WindowParams>(Shader::Conv);
    check_layout::<WindowParams>(Shader::Pool);
    check_layout::<UpsampleParams>(Shader::Upsample);
    check_layout::<super::pad::PadParams>(Shader::Pad);
    check_layout::<super::channel::ChannelParams>(Shader::Channel);
    check_layout::<SelfTestParams>(Shader::SelfTest);
    check_layout::<PeakParams>(Shader::Peak);
}

/// Misaligned on purpose (a vec4 array after three u32s): the check above must catch it.
#[test]
fn a_layout_mismatch_is_caught() {
    super::uniforms::uniform! {
        Skewed as "Skewed" {
            a: u32,
            b: u32,
            c: u32,
            dims: [[u32; 4]; 2],
        }
    }
    let src = format!(
        "{}@group(0) @binding(0) var<uniform> p: Skewed;\n",
        Skewed::wgsl()
    );
    let m = naga::front::wgsl::parse_str(&src).unwrap();
    let (_, wgsl) = wgsl_layout(&m, "Skewed");
    let rust: Vec<(String, u32)> = Skewed::fields()
        .into_iter()
        .map(|(n, _, _, o)| (n.to_string(), o as u32))
        .collect();
    assert_ne!(
        wgsl, rust,
        "WGSL aligns the array to 16 bytes, repr(C) to 4"
    );
}

/// Every case value of the `switch`es in function `func` of `shader`.
fn switch_cases(shader: Shader, func: &str) -> Vec<Vec<u32>> {
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
                naga::Statement::Loop {
                    body, continuing, ..
                } => {
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
        .unwrap_or_else(|| panic!("{}.wgsl has no fn {func}", shader.name()));
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
        (Shader::Unary, &["apply"], &UNARY_OPCODES, unary),
        (Shader::Binary, &["apply"], &BINARY_OPCODES, binary),
        (
            Shader::Reduce,
            &["identity", "combine"],
            &REDUCE_OPCODES,
            reduce,
        ),
    ];
    for (shader, funcs, table, mut codes) in checks {
        // every variant has a code in the table, each its own
        codes.sort();
        let all: Vec<u32> = (0..table.len() as u32).collect();
        assert_eq!(
            codes,
            all,
            "{}: variants and opcode table differ",
            shader.name()
        );
        for func in funcs {
            let mut cases = switch_cases(shader, func);
            assert_eq!(
                cases.len(),
                1,
                "{}::{func}: one opcode switch",
                shader.name()
            );
            cases[0].sort();
            assert_eq!(
                cases[0],
                all,
                "{}::{func}: a case per opcode",
                shader.name()
            );
        }
    }
}

#[test]
fn every_pipeline_constant_is_declared_and_set() {
    let constants = constants(&GemmTiling::HARDWARE.large);
    for shader in Shader::ALL {
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
                shader.name()
            );
        }
        for (name, has_default) in &declared {
            assert!(
                *has_default || constants.iter().any(|(n, _)| n == name),
                "{}.wgsl: override {name} has no default and Rust does not set it",
                shader.name()
            );
        }
    }
}

/// On an adapter: an opcode with no shader case gives NaN, never another op's result.
#[test]
fn unknown_opcodes_give_nan_on_the_gpu() {
    let Some(ctx) = super::context::test_context() else {
        return;
    };
    let x = ctx.upload(&[1.5, -2.0, 0.0, 3.0], "test").unwrap();
    // one thread per output over x: (shader, entry, params, outputs)
    let unary = UnaryParams {
        n: 4,
        op: UNARY_OPCODES.len() as u32,
        alpha: 7.0,
        _pad: 0,
    };
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
    let cases: [(Shader, &str, &[u8], usize); 3] = [
        (Shader::Unary, "unary", bytemuck::bytes_of(&unary), 4),
        (Shader::Binary, "binary", bytemuck::bytes_of(&binary), 4),
        (Shader::Reduce, "sum_narrow", bytemuck::bytes_of(&reduce), 1),
    ];
    for (shader, entry, params, n) in cases {
        let y = ctx.alloc(n, "test").unwrap();
        // binary reads x twice (bindings 1 and 2) and writes binding 3
        let bindings: Vec<(u32, &GpuBuffer)> = if shader == Shader::Binary {
            vec![(1, &x), (2, &x), (3, &y)]
        } else {
            vec![(1, &x), (2, &y)]
        };
        let out = bindings.len() as u32;
        ctx.dispatch(shader, entry, params, &bindings, &[out], [1, 1, 1])
            .unwrap();
        let got = ctx.read(&y).unwrap();
        assert!(got.iter().all(|v| v.is_nan()), "{entry}: {got:?}");
    }
}

/// The GEMM's register arrays hold as many elements as the host's tilings may stage
/// (`tiles::MAX_LOADS`, checked by `GemmTiles::check`).
#[test]
fn gemm_register_capacity_matches_the_host() {
    let m = module(Shader::Gemm);
    let (_, c) = m
        .constants
        .iter()
        .find(|(_, c)| c.name.as_deref() == Some("MAX_LOADS"))
        .expect("gemm.wgsl declares MAX_LOADS");
    let naga::Expression::Literal(naga::Literal::U32(v)) = m.global_expressions[c.init] else {
        panic!("MAX_LOADS is not a u32 literal");
    };
    assert_eq!(v, super::tiles::MAX_LOADS);
}
