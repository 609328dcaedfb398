//! Typed kernels and the pipeline cache. A [`Module`] is one WGSL file of `shaders/` with, in
//! front, the opcode constants and uniform structs generated from their Rust declarations and
//! the prelude. A [`Kernel`] is one entry point of a module with its uniform type, the storage
//! buffers it binds and which of them it writes, and the public op it serves (named in its
//! errors). Each kernel family declares its own; `contract.rs` checks every one against its
//! WGSL with naga.

use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::{Mutex, OnceLock};

use super::tiles::GemmTiles;
use super::uniforms::Uniform;
use super::{lock, GpuContext};
use crate::backend::{BINARY_OPCODES, REDUCE_OPCODES, UNARY_OPCODES};
use crate::Result;

/// Threads per workgroup of the one-dimensional kernels (`override WG`).
pub(crate) const WG: usize = 256;

const PRELUDE: &str = include_str!("../../../shaders/prelude.wgsl");

/// A WGSL module of `shaders/`.
pub(crate) struct Module {
    pub name: &'static str,
    /// The module's own text, as in `shaders/`.
    body: &'static str,
    /// The uniform structs the module reads, declared from Rust.
    uniforms: fn() -> String,
    source: OnceLock<String>,
}

impl Module {
    pub(crate) const fn new(
        name: &'static str,
        body: &'static str,
        uniforms: fn() -> String,
    ) -> Self {
        Module {
            name,
            body,
            uniforms,
            source: OnceLock::new(),
        }
    }

    /// What the device compiles: the opcode constants, the module's uniforms, the prelude, then
    /// the module.
    pub(crate) fn source(&self) -> &str {
        self.source.get_or_init(|| {
            format!(
                "{}{}{PRELUDE}\n{}",
                opcode_constants(),
                (self.uniforms)(),
                self.body
            )
        })
    }
}

/// A storage binding of a kernel: read, or written (the kernel's outputs; a failed batch
/// poisons what it wrote).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Bind {
    In(u32),
    Out(u32),
}

impl Bind {
    pub(crate) fn slot(self) -> u32 {
        match self {
            Bind::In(b) | Bind::Out(b) => b,
        }
    }
    pub(crate) fn written(self) -> bool {
        matches!(self, Bind::Out(_))
    }
}

/// `(field, WGSL type, scalars, byte offset)` of a uniform, as `Uniform::fields` gives them.
pub(crate) type Fields = Vec<(&'static str, &'static str, usize, usize)>;

/// A kernel without its uniform type: what the runtime and the contract checks need.
pub(crate) struct KernelInfo {
    pub module: &'static Module,
    pub entry: &'static str,
    /// The public op this kernel serves, named in its errors.
    pub op: &'static str,
    /// Its storage bindings, in the order a launch passes the buffers (the uniform is binding 0).
    pub bindings: &'static [Bind],
    /// The uniform struct's size, and its WGSL name and fields (for the contract checks).
    pub uniform_size: usize,
    #[cfg_attr(not(test), allow(dead_code))]
    pub uniform: &'static str,
    #[cfg_attr(not(test), allow(dead_code))]
    pub fields: fn() -> Fields,
}

/// One entry point of a module, launched with a `P` at binding 0.
pub(crate) struct Kernel<P> {
    pub info: KernelInfo,
    _params: PhantomData<fn(P)>,
}

impl<P: Uniform> Kernel<P> {
    pub(crate) const fn new(
        module: &'static Module,
        entry: &'static str,
        op: &'static str,
        bindings: &'static [Bind],
    ) -> Self {
        Kernel {
            info: KernelInfo {
                module,
                entry,
                op,
                bindings,
                uniform: P::WGSL_NAME,
                uniform_size: std::mem::size_of::<P>(),
                fields: P::fields,
            },
            _params: PhantomData,
        }
    }
}

/// The values of the prelude's `override`s, set on every pipeline: `WG` and the GEMM tiling.
pub(crate) fn constants(tiles: &GemmTiles) -> Vec<(&'static str, f64)> {
    let mut c = vec![("WG", WG as f64)];
    c.extend(tiles.constants());
    c
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

/// Compiled modules and pipelines, each made once per context.
#[derive(Default)]
pub(super) struct Pipelines {
    modules: Mutex<HashMap<&'static str, wgpu::ShaderModule>>,
    pipelines: Mutex<HashMap<(&'static str, &'static str, GemmTiles), wgpu::ComputePipeline>>,
}

impl GpuContext {
    /// The compute pipeline of kernel `k` with GEMM tiling `tiles`, compiled once.
    pub(super) fn pipeline(
        &self,
        k: &KernelInfo,
        tiles: GemmTiles,
    ) -> Result<wgpu::ComputePipeline> {
        let key = (k.module.name, k.entry, tiles);
        if let Some(p) = lock(&self.pipelines.pipelines).get(&key) {
            return Ok(p.clone());
        }
        let module = lock(&self.pipelines.modules)
            .entry(k.module.name)
            .or_insert_with(|| {
                self.device
                    .create_shader_module(wgpu::ShaderModuleDescriptor {
                        label: Some(k.module.name),
                        source: wgpu::ShaderSource::Wgsl(k.module.source().into()),
                    })
            })
            .clone();
        let (pipeline, status) = self.scoped(k.op, || {
            self.device
                .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                    label: Some(k.entry),
                    layout: None,
                    module: &module,
                    entry_point: Some(k.entry),
                    compilation_options: wgpu::PipelineCompilationOptions {
                        constants: &constants(&tiles),
                        ..Default::default()
                    },
                    cache: None,
                })
        });
        status?;
        lock(&self.pipelines.pipelines).insert(key, pipeline.clone());
        Ok(pipeline)
    }
}
