//! Typed kernels and the pipeline cache's maps (`dispatch.rs` fills them). A [`Module`] is one WGSL file of `shaders/` with, in
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
use crate::backend::{BINARY_OPCODES, REDUCE_OPCODES, UNARY_OPCODES};

/// Threads per workgroup of the one-dimensional kernels (`override WG`).
pub(crate) const WG: usize = 256;

const PRELUDE: &str = include_str!("../../../shaders/prelude.wgsl");

/// A storage buffer a module declares, at the next binding after the uniform's 0: its WGSL
/// name, whether any kernel of the module writes it, and its element type.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Buffer {
    name: &'static str,
    write: bool,
    elem: &'static str,
}

impl Buffer {
    /// A source read and an output written: most window and map modules.
    pub(crate) const SRC_DST: &'static [Buffer] = &[Buffer::read("src"), Buffer::write("dst")];

    /// An `array<f32>` the kernels only read.
    pub(crate) const fn read(name: &'static str) -> Self {
        Buffer { name, write: false, elem: "f32" }
    }
    /// An `array<f32>` some kernel writes.
    pub(crate) const fn write(name: &'static str) -> Self {
        Buffer { name, write: true, elem: "f32" }
    }
    /// The same buffer of another element type.
    pub(crate) const fn of(self, elem: &'static str) -> Self {
        Buffer { elem, ..self }
    }
}

/// A WGSL module of `shaders/`. Its resources are declared here, not in its file: the uniform
/// `p` at binding 0 and the storage buffers after it, generated in front of the module with
/// the uniform structs (from their Rust declarations) and the prelude.
pub(crate) struct Module {
    pub name: &'static str,
    /// The module's own text, as in `shaders/`.
    body: &'static str,
    /// The uniform structs the module reads, declared from Rust.
    uniforms: fn() -> String,
    /// The WGSL name of the struct at binding 0.
    params: &'static str,
    buffers: &'static [Buffer],
    /// Entry points generated in Rust, appended to the body.
    tail: Option<fn() -> String>,
    source: OnceLock<String>,
}

impl Module {
    pub(crate) const fn new(
        name: &'static str, body: &'static str, uniforms: fn() -> String, params: &'static str,
        buffers: &'static [Buffer],
    ) -> Self {
        Module { name, body, uniforms, params, buffers, tail: None, source: OnceLock::new() }
    }

    /// A module whose body is followed by the text `tail` generates.
    pub(crate) const fn with_tail(
        name: &'static str, body: &'static str, uniforms: fn() -> String, params: &'static str,
        buffers: &'static [Buffer], tail: fn() -> String,
    ) -> Self {
        let source = OnceLock::new();
        Module { name, body, uniforms, params, buffers, tail: Some(tail), source }
    }

    /// The module's own text (for the contract checks).
    #[cfg(test)]
    pub(crate) fn body(&self) -> &'static str {
        self.body
    }

    /// What the device compiles: the opcode constants, the module's uniforms and resources,
    /// the prelude, then the module.
    pub(crate) fn source(&self) -> &str {
        self.source.get_or_init(|| {
            let mut res = format!("@group(0) @binding(0) var<uniform> p: {};\n", self.params);
            for (i, b) in self.buffers.iter().enumerate() {
                let access = if b.write { "read_write" } else { "read" };
                res += &format!(
                    "@group(0) @binding({}) var<storage, {access}> {}: array<{}>;\n",
                    i + 1,
                    b.name,
                    b.elem
                );
            }
            let tail = self.tail.map(|f| f()).unwrap_or_default();
            let uniforms = (self.uniforms)();
            format!("{}{uniforms}{res}{PRELUDE}\n{}{tail}", opcode_constants(), self.body)
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
    /// One input at binding 1, the output at binding 2: a map.
    pub(crate) const MAP: &'static [Bind] = &[Bind::In(1), Bind::Out(2)];

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
    /// Pipeline constants of this kernel's own (an entry point specialised several ways).
    pub constants: &'static [(&'static str, u32)],
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
        module: &'static Module, entry: &'static str, op: &'static str, bindings: &'static [Bind],
        constants: &'static [(&'static str, u32)],
    ) -> Self {
        Kernel {
            info: KernelInfo {
                module,
                entry,
                op,
                constants,
                bindings,
                uniform: P::WGSL_NAME,
                uniform_size: std::mem::size_of::<P>(),
                fields: P::fields,
            },
            _params: PhantomData,
        }
    }
}

/// Declares a family's kernels, one line each, `NAME = (entry, public op, bindings[, "CONST" =
/// value]*);` (the constants: pipeline constants of this kernel's own), after a
/// head naming their module and uniform type: `MODULE: Params;` for a module declared
/// elsewhere, or `MODULE = (name, source, buffers[, uniforms]): Params;` to declare it here
/// (its uniforms default to `Params`'s own declaration).
macro_rules! kernels {
    (@uniforms $params:ty) => { <$params as $crate::gpu::runtime::uniforms::Uniform>::wgsl };
    (@uniforms $params:ty, $uniforms:expr) => { $uniforms };
    ($m:ident = ($name:literal, $src:expr, $buffers:expr $(, $uniforms:expr)?): $params:ty; $($rest:tt)*) => {
        pub(crate) static $m: $crate::gpu::runtime::kernel::Module = $crate::gpu::runtime::kernel::Module::new(
            $name,
            $src,
            $crate::gpu::runtime::kernel::kernels!(@uniforms $params $(, $uniforms)?),
            <$params as $crate::gpu::runtime::uniforms::Uniform>::WGSL_NAME,
            $buffers,
        );
        $crate::gpu::runtime::kernel::kernels!($m: $params; $($rest)*);
    };
    ($module:ident: $params:ty; $($(#[$doc:meta])* $k:ident = ($entry:literal, $op:literal, $binds:expr $(, $c:literal = $v:expr)*);)*) => {
        $($(#[$doc])* pub(crate) static $k: $crate::gpu::runtime::kernel::Kernel<$params> =
            $crate::gpu::runtime::kernel::Kernel::new(&$module, $entry, $op, $binds, &[$(($c, $v)),*]);)*
    };
}
pub(crate) use kernels;

/// The values of the prelude's `override`s, set on every pipeline: `WG` and the GEMM tiling.
pub(crate) fn constants(tiles: &GemmTiles) -> Vec<(&'static str, f64)> {
    let mut c = vec![("WG", WG as f64)];
    c.extend(tiles.constants());
    c
}

/// `const UNARY_NEG: u32 = 0u;` and so on for every opcode table in `crate::backend`.
fn opcode_constants() -> String {
    let tables: [(&str, &[&str]); 3] =
        [("UNARY", &UNARY_OPCODES), ("BINARY", &BINARY_OPCODES), ("REDUCE", &REDUCE_OPCODES)];
    let mut out = String::from("// Generated from the opcode tables in src/backend/opcodes.rs.\n");
    for (prefix, names) in tables {
        for (code, name) in names.iter().enumerate() {
            out.push_str(&format!("const {prefix}_{name}: u32 = {code}u;\n"));
        }
    }
    out
}

/// A pipeline: a module's entry point, the GEMM tiling, and the kernel's own constants.
type PipelineKey = (&'static str, &'static str, GemmTiles, &'static [(&'static str, u32)]);

/// Compiled modules and pipelines, each made once per context.
#[derive(Default)]
pub(crate) struct Pipelines {
    pub(super) modules: Mutex<HashMap<&'static str, wgpu::ShaderModule>>,
    pub(super) pipelines: Mutex<HashMap<PipelineKey, wgpu::ComputePipeline>>,
}
