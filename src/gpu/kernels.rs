//! The shader registry: every WGSL module of `shaders/` with, in front, the opcode constants
//! and uniform structs generated from their Rust declarations and the prelude; the sizes the
//! shaders take as pipeline constants; and the pipeline cache.

use std::sync::OnceLock;

use super::context::{lock, GpuContext};
use super::elementwise::{BinaryParams, CopyParams, UnaryParams};
use super::gemm::{GemmParams, MatParams};
use super::peak::PeakParams;
use super::reduce::ReduceParams;
use super::selftest::Params as SelfTestParams;
use super::uniforms::Uniform;
use super::upsample::UpsampleParams;
use super::window::WindowParams;
use crate::backend::{BINARY_OPCODES, REDUCE_OPCODES, UNARY_OPCODES};
use crate::Result;

/// Threads per workgroup of the one-dimensional kernels (`override WG`).
pub(crate) const WG: usize = 256;
/// Output tile edge of the GEMM kernel (`override GEMM_TILE`); each thread owns a 4x4 block.
pub(crate) const GEMM_TILE: usize = 64;
/// K depth of one GEMM tile (`override GEMM_BK`).
pub(crate) const GEMM_BK: usize = 16;

/// The values of the prelude's `override`s, set on every pipeline.
pub(crate) const CONSTANTS: [(&str, f64); 3] = [
    ("WG", WG as f64),
    ("GEMM_TILE", GEMM_TILE as f64),
    ("GEMM_BK", GEMM_BK as f64),
];

const PRELUDE: &str = include_str!("../../shaders/prelude.wgsl");

/// A WGSL module of `shaders/`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Shader {
    Unary,
    Binary,
    Reduce,
    Copy,
    Gemm,
    Conv,
    Pool,
    Upsample,
    SelfTest,
    Peak,
}

impl Shader {
    pub(crate) const ALL: [Shader; 10] = [
        Shader::Unary,
        Shader::Binary,
        Shader::Reduce,
        Shader::Copy,
        Shader::Gemm,
        Shader::Conv,
        Shader::Pool,
        Shader::Upsample,
        Shader::SelfTest,
        Shader::Peak,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Shader::Unary => "unary",
            Shader::Binary => "binary",
            Shader::Reduce => "reduce",
            Shader::Copy => "copy",
            Shader::Gemm => "gemm",
            Shader::Conv => "conv",
            Shader::Pool => "pool",
            Shader::Upsample => "upsample",
            Shader::SelfTest => "selftest",
            Shader::Peak => "peak",
        }
    }

    /// The module's own text, as in `shaders/`.
    fn body(self) -> &'static str {
        match self {
            Shader::Unary => include_str!("../../shaders/unary.wgsl"),
            Shader::Binary => include_str!("../../shaders/binary.wgsl"),
            Shader::Reduce => include_str!("../../shaders/reduce.wgsl"),
            Shader::Copy => include_str!("../../shaders/copy.wgsl"),
            Shader::Gemm => include_str!("../../shaders/gemm.wgsl"),
            Shader::Conv => include_str!("../../shaders/conv.wgsl"),
            Shader::Pool => include_str!("../../shaders/pool.wgsl"),
            Shader::Upsample => include_str!("../../shaders/upsample.wgsl"),
            Shader::SelfTest => include_str!("../../shaders/selftest.wgsl"),
            Shader::Peak => include_str!("../../shaders/peak.wgsl"),
        }
    }

    /// The uniform structs the module reads, declared from Rust.
    fn uniforms(self) -> String {
        match self {
            Shader::Unary => UnaryParams::wgsl(),
            Shader::Binary => BinaryParams::wgsl(),
            Shader::Reduce => ReduceParams::wgsl(),
            Shader::Copy => CopyParams::wgsl(),
            Shader::Gemm => MatParams::wgsl() + &WindowParams::wgsl() + &GemmParams::wgsl(),
            Shader::Conv | Shader::Pool => WindowParams::wgsl(),
            Shader::Upsample => UpsampleParams::wgsl(),
            Shader::SelfTest => SelfTestParams::wgsl(),
            Shader::Peak => PeakParams::wgsl(),
        }
    }

    /// What the device compiles: the opcode constants, the module's uniforms, the prelude,
    /// then the module.
    pub(crate) fn source(self) -> &'static str {
        static SOURCES: OnceLock<Vec<String>> = OnceLock::new();
        let all = SOURCES.get_or_init(|| {
            let consts = opcode_constants();
            Shader::ALL
                .iter()
                .map(|s| format!("{consts}{}{PRELUDE}\n{}", s.uniforms(), s.body()))
                .collect()
        });
        // ALL lists the variants in declaration order
        &all[self as usize]
    }
}

/// `const UNARY_NEG: u32 = 0u;` and so on for every opcode table in `crate::backend`.
fn opcode_constants() -> String {
    let tables: [(&str, &[&str]); 3] = [
        ("UNARY", &UNARY_OPCODES),
        ("BINARY", &BINARY_OPCODES),
        ("REDUCE", &REDUCE_OPCODES),
    ];
    let mut out = String::from("// Generated from the opcode tables in src/backend/opcodes.rs.\n");
    for (prefix, names) in tables {
        for (code, name) in names.iter().enumerate() {
            out.push_str(&format!("const {prefix}_{name}: u32 = {code}u;\n"));
        }
    }
    out
}

/// Every WGSL module with its name, as the device compiles it, for tools and tests.
pub fn shader_sources() -> Vec<(&'static str, &'static str)> {
    Shader::ALL.iter().map(|s| (s.name(), s.source())).collect()
}

impl GpuContext {
    /// The compute pipeline of `entry` in `shader`, compiled once.
    pub(super) fn pipeline(
        &self,
        shader: Shader,
        entry: &'static str,
    ) -> Result<wgpu::ComputePipeline> {
        if let Some(p) = lock(&self.pipelines).get(&(shader, entry)) {
            return Ok(p.clone());
        }
        let module = {
            let mut modules = lock(&self.modules);
            modules
                .entry(shader)
                .or_insert_with(|| {
                    self.device
                        .create_shader_module(wgpu::ShaderModuleDescriptor {
                            label: Some(shader.name()),
                            source: wgpu::ShaderSource::Wgsl(shader.source().into()),
                        })
                })
                .clone()
        };
        let (pipeline, status) = self.scoped(|| {
            self.device
                .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                    label: Some(entry),
                    layout: None,
                    module: &module,
                    entry_point: Some(entry),
                    compilation_options: wgpu::PipelineCompilationOptions {
                        constants: &CONSTANTS,
                        ..Default::default()
                    },
                    cache: None,
                })
        });
        status?;
        lock(&self.pipelines).insert((shader, entry), pipeline.clone());
        Ok(pipeline)
    }
}
