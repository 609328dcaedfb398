//! The shader registry: every WGSL module of `shaders/` with, in front, the opcode constants
//! and uniform structs generated from their Rust declarations and the prelude; the sizes the
//! shaders take as pipeline constants; and the pipeline cache.

use std::sync::OnceLock;

use super::channel::ChannelParams;
use super::context::{lock, GpuContext};
use super::elementwise::{BinaryParams, CopyParams, UnaryParams};
use super::gemm::{GemmParams, MatParams};
use super::pad::PadParams;
use super::peak::PeakParams;
use super::reduce::ReduceParams;
use super::selftest::Params as SelfTestParams;
use super::tiles::GemmTiles;
use super::uniforms::Uniform;
use super::upsample::UpsampleParams;
use super::window::WindowParams;
use crate::backend::{BINARY_OPCODES, REDUCE_OPCODES, UNARY_OPCODES};
use crate::Result;

/// Threads per workgroup of the one-dimensional kernels (`override WG`).
pub(crate) const WG: usize = 256;

/// The values of the prelude's `override`s, set on every pipeline: `WG` and the context's GEMM
/// tiling.
pub(crate) fn constants(tiles: &GemmTiles) -> Vec<(&'static str, f64)> {
    let mut c = vec![("WG", WG as f64)];
    c.extend(tiles.constants());
    c
}

const PRELUDE: &str = include_str!("../../shaders/prelude.wgsl");

/// A WGSL module of `shaders/`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Shader {
    Unary,
    Binary,
    Reduce,
    /// reduce.wgsl with its subgroup entry point (adapters with `Features::SUBGROUP` only)
    ReduceSubgroups,
    Copy,
    Gemm,
    Conv,
    Pool,
    Upsample,
    Pad,
    Channel,
    SelfTest,
    Peak,
}

impl Shader {
    pub(crate) const ALL: [Shader; 13] = [
        Shader::Unary,
        Shader::Binary,
        Shader::Reduce,
        Shader::ReduceSubgroups,
        Shader::Copy,
        Shader::Gemm,
        Shader::Conv,
        Shader::Pool,
        Shader::Upsample,
        Shader::Pad,
        Shader::Channel,
        Shader::SelfTest,
        Shader::Peak,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Shader::Unary => "unary",
            Shader::Binary => "binary",
            Shader::Reduce => "reduce",
            Shader::ReduceSubgroups => "reduce_subgroups",
            Shader::Copy => "copy",
            Shader::Gemm => "gemm",
            Shader::Conv => "conv",
            Shader::Pool => "pool",
            Shader::Upsample => "upsample",
            Shader::Pad => "pad",
            Shader::Channel => "channel",
            Shader::SelfTest => "selftest",
            Shader::Peak => "peak",
        }
    }

    /// The module's own text, as in `shaders/`.
    fn body(self) -> &'static str {
        match self {
            Shader::ReduceSubgroups => concat!(
                include_str!("../../shaders/reduce.wgsl"),
                "\n",
                include_str!("../../shaders/reduce_subgroups.wgsl")
            ),
            Shader::Unary => include_str!("../../shaders/unary.wgsl"),
            Shader::Binary => include_str!("../../shaders/binary.wgsl"),
            Shader::Reduce => include_str!("../../shaders/reduce.wgsl"),
            Shader::Copy => include_str!("../../shaders/copy.wgsl"),
            Shader::Gemm => include_str!("../../shaders/gemm.wgsl"),
            Shader::Conv => include_str!("../../shaders/conv.wgsl"),
            Shader::Pool => include_str!("../../shaders/pool.wgsl"),
            Shader::Upsample => include_str!("../../shaders/upsample.wgsl"),
            Shader::Pad => include_str!("../../shaders/pad.wgsl"),
            Shader::Channel => include_str!("../../shaders/channel.wgsl"),
            Shader::SelfTest => include_str!("../../shaders/selftest.wgsl"),
            Shader::Peak => include_str!("../../shaders/peak.wgsl"),
        }
    }

    /// The uniform structs the module reads, declared from Rust.
    fn uniforms(self) -> String {
        match self {
            Shader::Unary => UnaryParams::wgsl(),
            Shader::Binary => BinaryParams::wgsl(),
            Shader::Reduce | Shader::ReduceSubgroups => ReduceParams::wgsl(),
            Shader::Copy => CopyParams::wgsl(),
            Shader::Gemm => MatParams::wgsl() + &WindowParams::wgsl() + &GemmParams::wgsl(),
            Shader::Conv | Shader::Pool => WindowParams::wgsl(),
            Shader::Upsample => UpsampleParams::wgsl(),
            Shader::Pad => PadParams::wgsl(),
            Shader::Channel => ChannelParams::wgsl(),
            Shader::SelfTest => SelfTestParams::wgsl(),
            Shader::Peak => PeakParams::wgsl(),
        }
    }

    /// What the device compiles: the opcode constants, the module's uniforms, the prelude, then
    /// the module.
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
    /// The compute pipeline of `entry` in `shader` with GEMM tiling `tiles`, compiled once.
    pub(super) fn pipeline(
        &self,
        shader: Shader,
        entry: &'static str,
        tiles: GemmTiles,
    ) -> Result<wgpu::ComputePipeline> {
        let key = (shader, entry, tiles);
        if let Some(p) = lock(&self.pipelines).get(&key) {
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
                        constants: &constants(&tiles),
                        ..Default::default()
                    },
                    cache: None,
                })
        });
        status?;
        lock(&self.pipelines).insert(key, pipeline.clone());
        Ok(pipeline)
    }
}
