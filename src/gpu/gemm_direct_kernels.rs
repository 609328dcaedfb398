//! The GEMM's direct variant as kernels (gemm_direct.rs writes their entry points into the
//! GEMM module): one per kind of operand and block, and which of them runs a product.

use super::gemm::{Extra, GemmParams, GEMM_BINDINGS, GEMM_SUBGROUPS_WGSL, GEMM_WGSL};
use super::gemm_direct::{self, Operand};
use super::gemm_subgroup;
use super::runtime::kernel::kernels;
use super::runtime::{Bind, GemmTiles, Kernel};
use crate::backend::GemmSpec;
use crate::{Error, Result};

kernels! { GEMM_WGSL: GemmParams;
    /// The direct variant of [`GEMM`](super::gemm::GEMM) (`GemmTiles::direct`), one entry
    /// point per block.
    GEMM_DIRECT_8X8 = ("gemm_direct_8x8", "matmul", DIRECT_BINDINGS, "MODE" = 0);
    GEMM_DIRECT_16X16 = ("gemm_direct_16x16", "matmul", DIRECT_BINDINGS, "MODE" = 0);
    GEMM_DIRECT_32X16 = ("gemm_direct_32x16", "matmul", DIRECT_BINDINGS, "MODE" = 0);
    /// The direct variant of conv2d's forward (mode 1), one entry point per block.
    CONV_DIRECT_8X8 = ("conv_direct_8x8", "conv2d", CONV_DIRECT_BINDINGS, "MODE" = 1);
    CONV_DIRECT_16X16 = ("conv_direct_16x16", "conv2d", CONV_DIRECT_BINDINGS, "MODE" = 1);
    CONV_DIRECT_32X16 = ("conv_direct_32x16", "conv2d", CONV_DIRECT_BINDINGS, "MODE" = 1);
    /// The direct variant of conv2d's weight gradient (mode 2), one entry point per block.
    WGRAD_DIRECT_8X8 = ("wgrad_direct_8x8", "conv2d_backward_weight", CONV_DIRECT_BINDINGS, "MODE" = 2);
    WGRAD_DIRECT_16X16 = ("wgrad_direct_16x16", "conv2d_backward_weight", CONV_DIRECT_BINDINGS, "MODE" = 2);
    WGRAD_DIRECT_32X16 = ("wgrad_direct_32x16", "conv2d_backward_weight", CONV_DIRECT_BINDINGS, "MODE" = 2);
    /// The direct variant of conv2d's forward with A read one element at a time (any K).
    CONVK_DIRECT_8X8 = ("convk_direct_8x8", "conv2d", GEMM_BINDINGS, "MODE" = 1);
    CONVK_DIRECT_16X16 = ("convk_direct_16x16", "conv2d", GEMM_BINDINGS, "MODE" = 1);
    CONVK_DIRECT_32X16 = ("convk_direct_32x16", "conv2d", GEMM_BINDINGS, "MODE" = 1);
}

kernels! { GEMM_SUBGROUPS_WGSL: GemmParams;
    /// The subgroup variant (`GemmTiles::subgroup`), as the direct kernels above.
    GEMM_SUBGROUP_8X8 = ("gemm_subgroup_8x8", "matmul", DIRECT_BINDINGS, "MODE" = 0);
    GEMM_SUBGROUP_16X16 = ("gemm_subgroup_16x16", "matmul", DIRECT_BINDINGS, "MODE" = 0);
    GEMM_SUBGROUP_32X16 = ("gemm_subgroup_32x16", "matmul", DIRECT_BINDINGS, "MODE" = 0);
    CONV_SUBGROUP_8X8 = ("conv_subgroup_8x8", "conv2d", CONV_DIRECT_BINDINGS, "MODE" = 1);
    CONV_SUBGROUP_16X16 = ("conv_subgroup_16x16", "conv2d", CONV_DIRECT_BINDINGS, "MODE" = 1);
    CONV_SUBGROUP_32X16 = ("conv_subgroup_32x16", "conv2d", CONV_DIRECT_BINDINGS, "MODE" = 1);
    WGRAD_SUBGROUP_8X8 = ("wgrad_subgroup_8x8", "conv2d_backward_weight", CONV_DIRECT_BINDINGS, "MODE" = 2);
    WGRAD_SUBGROUP_16X16 = ("wgrad_subgroup_16x16", "conv2d_backward_weight", CONV_DIRECT_BINDINGS, "MODE" = 2);
    WGRAD_SUBGROUP_32X16 = ("wgrad_subgroup_32x16", "conv2d_backward_weight", CONV_DIRECT_BINDINGS, "MODE" = 2);
    CONVK_SUBGROUP_8X8 = ("convk_subgroup_8x8", "conv2d", GEMM_BINDINGS, "MODE" = 1);
    CONVK_SUBGROUP_16X16 = ("convk_subgroup_16x16", "conv2d", GEMM_BINDINGS, "MODE" = 1);
    CONVK_SUBGROUP_32X16 = ("convk_subgroup_32x16", "conv2d", GEMM_BINDINGS, "MODE" = 1);
}

/// The plain product's: A and B viewed as vec4s, C, the bias.
const DIRECT_BINDINGS: &[Bind] = &[Bind::In(5), Bind::In(6), Bind::Out(3), Bind::In(4)];
/// The convolution's: A as vec4s, the input B gathered, C, the bias.
const CONV_DIRECT_BINDINGS: &[Bind] = &[Bind::In(5), Bind::In(2), Bind::Out(3), Bind::In(4)];

/// What B is to the direct variant of kernel `k`: None where it has none.
fn direct_operand(k: &Kernel<GemmParams>) -> Option<Operand> {
    match k.info.constants {
        [("MODE", 0)] => Some(Operand::Matrix),
        [("MODE", 1)] => Some(Operand::Columns),
        [("MODE", 2)] => Some(Operand::Windows),
        _ => None,
    }
}

/// How the direct variant of kernel `k` reads this product's B (and A): None where it cannot.
pub(crate) fn direct_fit(
    s: &GemmSpec, k: &Kernel<GemmParams>, ks: usize, (a_len, b_len): (usize, usize),
    extra: &Extra<'_>,
) -> Option<Operand> {
    let b = direct_operand(k)?;
    let fit = match b {
        Operand::Matrix => gemm_direct::fits(s, ks, (a_len, b_len)),
        Operand::Columns if gemm_direct::fits_conv(s, ks, a_len) => true,
        // weights that are not whole vec4s along K: read one at a time
        Operand::Columns | Operand::ColumnsAnyK => {
            return gemm_direct::fits_conv_any_k(s, ks).then_some(Operand::ColumnsAnyK)
        }
        Operand::Windows => {
            let ohw = (extra.win.oh * extra.win.ow) as usize;
            gemm_direct::fits_wgrad(s, ks, a_len, ohw, extra.images[0])
        }
    };
    fit.then_some(b)
}

/// The direct variant's kernels, in `gemm_direct::entry`'s order (operand, then block).
pub(crate) static DIRECT_KERNELS: [&Kernel<GemmParams>; 12] = [
    &GEMM_DIRECT_8X8,
    &GEMM_DIRECT_16X16,
    &GEMM_DIRECT_32X16,
    &CONV_DIRECT_8X8,
    &CONV_DIRECT_16X16,
    &CONV_DIRECT_32X16,
    &WGRAD_DIRECT_8X8,
    &WGRAD_DIRECT_16X16,
    &WGRAD_DIRECT_32X16,
    &CONVK_DIRECT_8X8,
    &CONVK_DIRECT_16X16,
    &CONVK_DIRECT_32X16,
];

/// The subgroup variant's kernels, in the same order.
pub(crate) static SUBGROUP_KERNELS: [&Kernel<GemmParams>; 12] = [
    &GEMM_SUBGROUP_8X8,
    &GEMM_SUBGROUP_16X16,
    &GEMM_SUBGROUP_32X16,
    &CONV_SUBGROUP_8X8,
    &CONV_SUBGROUP_16X16,
    &CONV_SUBGROUP_32X16,
    &WGRAD_SUBGROUP_8X8,
    &WGRAD_SUBGROUP_16X16,
    &WGRAD_SUBGROUP_32X16,
    &CONVK_SUBGROUP_8X8,
    &CONVK_SUBGROUP_16X16,
    &CONVK_SUBGROUP_32X16,
];

/// The direct (or subgroup) variant's kernel for `tiles`' block and B read as `b` says.
pub(crate) fn direct_kernel(tiles: GemmTiles, b: Operand) -> Result<&'static Kernel<GemmParams>> {
    let found = match tiles.subgroup {
        true => gemm_subgroup::entry(tiles.rows, tiles.cols, b).map(|(_, i)| SUBGROUP_KERNELS[i]),
        false => gemm_direct::entry(tiles.rows, tiles.cols, b).map(|(_, i)| DIRECT_KERNELS[i]),
    };
    found.ok_or_else(|| Error::Gpu(format!("gemm: no direct kernel for {tiles}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu::gemm_direct::{BLOCKS, OPERANDS};

    #[test]
    fn each_direct_and_subgroup_kernel_runs_its_own_block_and_operand() {
        for b in OPERANDS {
            for (rows, cols) in BLOCKS {
                let tiles = GemmTiles::new(4, 4, 4).block(rows, cols).direct();
                let (name, _) = gemm_direct::entry(rows, cols, b).unwrap();
                assert_eq!(direct_kernel(tiles, b).unwrap().info.entry, name);
                let (name, _) = gemm_subgroup::entry(rows, cols, b).unwrap();
                assert_eq!(direct_kernel(tiles.subgroup(), b).unwrap().info.entry, name);
            }
        }
        assert!(
            direct_kernel(GemmTiles::new(4, 4, 4).direct().block(4, 4), Operand::Matrix).is_err()
        );
    }
}
