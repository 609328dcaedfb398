//! The split paths of the window and channel ops (convolutions, pools, upsampling, batch
//! norm's channel primitives): each runs its kernel on the whole batch where it fits one
//! binding, else on pieces of the batch or of the planes (`split`), or a convolution's image
//! in bands of rows (`split_conv`). `impl Backend for GpuBackend` calls these.

use super::split::{too_large, Rows};
use super::{GpuBackend, GpuBuffer};
use crate::backend::{AvgPoolOpts, ConvSpec, UpsampleGeom};
use crate::shape::WindowGeom;
use crate::Result;

/// Elements of one image of a window op's input, `c * h * w`.
fn chw(g: &WindowGeom) -> usize {
    g.c * g.h * g.w
}

/// Elements of one image of a window op's output, `c * oh * ow`.
fn cohw(g: &WindowGeom) -> usize {
    g.c * g.oh * g.ow
}

/// A window op's geometry over a batch of `n` (a run of a split batch).
pub(super) fn batch(g: &WindowGeom, n: usize) -> WindowGeom {
    WindowGeom { n, ..*g }
}

/// A window op's geometry over `k` planes of one channel each: pools split by plane, since
/// their planes are independent (one image past a binding still splits).
fn planes(g: &WindowGeom, k: usize) -> WindowGeom {
    WindowGeom { n: k, c: 1, ..*g }
}

impl GpuBackend {
    pub(super) fn conv2d_any(
        &self,
        x: &GpuBuffer,
        w: &GpuBuffer,
        bias: Option<&GpuBuffer>,
        s: &ConvSpec,
        relu: bool,
    ) -> Result<GpuBuffer> {
        if !self.image_fits(&s.g, s.d) {
            self.each_fits("conv2d", &[w.len, bias.map_or(0, |b| b.len)])?;
            return self.by_bands("conv2d", x, &s.g, s.d, |xb, bg| {
                self.conv_implicit(xb, w, bias, relu, &s.with_g(bg))
            });
        }
        let mut ins = vec![Rows::per(x, s.g.c * s.g.h * s.g.w), Rows::whole(w)];
        ins.extend(bias.map(Rows::whole));
        let out = s.d * s.ohw();
        self.by_items("conv2d", s.g.n, &ins, out, |p, n| {
            self.conv_implicit(
                p[0],
                p[1],
                p.get(2).copied(),
                relu,
                &s.with_g(&batch(&s.g, n)),
            )
        })
    }

    pub(super) fn conv2d_backward_input_any(
        &self,
        grad: &GpuBuffer,
        w: &GpuBuffer,
        s: &ConvSpec,
    ) -> Result<GpuBuffer> {
        if !self.image_fits(&s.g, s.d) {
            self.each_fits("conv2d_backward_input", &[w.len])?;
            return self.by_bands_input("conv2d_backward_input", grad, &s.g, s.d, |gb, bg| {
                self.conv_input_implicit(gb, w, &s.with_g(bg))
            });
        }
        let ins = [Rows::per(grad, s.d * s.ohw()), Rows::whole(w)];
        let out = s.g.c * s.g.h * s.g.w;
        self.by_items("conv2d_backward_input", s.g.n, &ins, out, |p, n| {
            self.conv_input_implicit(p[0], p[1], &s.with_g(&batch(&s.g, n)))
        })
    }

    pub(super) fn conv2d_backward_weight_any(
        &self,
        x: &GpuBuffer,
        grad: &GpuBuffer,
        s: &ConvSpec,
    ) -> Result<GpuBuffer> {
        let len = s.d * s.cgkk();
        if !self.image_fits(&s.g, s.d) {
            let op = "conv2d_backward_weight";
            return self.by_bands_weight(op, (x, grad), &s.g, s.d, len, |xb, gb, bg| {
                self.conv_weight_implicit(xb, gb, &s.with_g(bg))
            });
        }
        let ins = [
            Rows::per(x, s.g.c * s.g.h * s.g.w),
            Rows::per(grad, s.d * s.ohw()),
        ];
        self.by_items_summed("conv2d_backward_weight", s.g.n, &ins, len, |p, n| {
            self.conv_weight_implicit(p[0], p[1], &s.with_g(&batch(&s.g, n)))
        })
    }

    pub(super) fn depthwise_conv2d_any(
        &self,
        x: &GpuBuffer,
        w: &GpuBuffer,
        g: &WindowGeom,
        mult: usize,
    ) -> Result<GpuBuffer> {
        if !self.image_fits(g, g.c * mult) {
            self.each_fits("depthwise_conv2d", &[w.len])?;
            return self.by_bands("depthwise_conv2d", x, g, g.c * mult, |xb, bg| {
                self.depthwise("dw_fwd", xb, w, bg, mult)
            });
        }
        let ins = [Rows::per(x, chw(g)), Rows::whole(w)];
        self.by_items("depthwise_conv2d", g.n, &ins, mult * cohw(g), |p, n| {
            self.depthwise("dw_fwd", p[0], p[1], &batch(g, n), mult)
        })
    }

    pub(super) fn depthwise_conv2d_backward_input_any(
        &self,
        grad: &GpuBuffer,
        w: &GpuBuffer,
        g: &WindowGeom,
        mult: usize,
    ) -> Result<GpuBuffer> {
        let op = "depthwise_conv2d_backward_input";
        if !self.image_fits(g, g.c * mult) {
            self.each_fits(op, &[w.len])?;
            return self.by_bands_input(op, grad, g, g.c * mult, |gb, bg| {
                self.depthwise("dw_bwd_input", gb, w, bg, mult)
            });
        }
        let ins = [Rows::per(grad, mult * cohw(g)), Rows::whole(w)];
        self.by_items(op, g.n, &ins, chw(g), |p, n| {
            self.depthwise("dw_bwd_input", p[0], p[1], &batch(g, n), mult)
        })
    }

    pub(super) fn depthwise_conv2d_backward_weight_any(
        &self,
        x: &GpuBuffer,
        grad: &GpuBuffer,
        g: &WindowGeom,
        mult: usize,
    ) -> Result<GpuBuffer> {
        let (op, len) = ("depthwise_conv2d_backward_weight", mult * g.c * g.kh * g.kw);
        if !self.image_fits(g, g.c * mult) {
            return self.by_bands_weight(op, (x, grad), g, g.c * mult, len, |xb, gb, bg| {
                self.depthwise_weight(xb, gb, bg, mult)
            });
        }
        let ins = [Rows::per(x, chw(g)), Rows::per(grad, mult * cohw(g))];
        self.by_items_summed(op, g.n, &ins, len, |p, n| {
            self.depthwise_weight(p[0], p[1], &batch(g, n), mult)
        })
    }

    pub(super) fn max_pool2d_backward_any(
        &self,
        grad: &GpuBuffer,
        indices: &GpuBuffer,
        g: &WindowGeom,
    ) -> Result<GpuBuffer> {
        let ins = [
            Rows::per(grad, g.oh * g.ow),
            Rows::per(indices, g.oh * g.ow),
        ];
        self.by_items("max_pool2d_backward", g.n * g.c, &ins, g.h * g.w, |p, n| {
            self.max_pool_bwd(p[0], p[1], &planes(g, n))
        })
    }

    /// A one-input op over independent planes: `in_plane` elements of `src` per plane in,
    /// `out_plane` out; `run(piece, planes)`.
    fn by_planes(
        &self,
        op: &'static str,
        planes: usize,
        src: &GpuBuffer,
        (in_plane, out_plane): (usize, usize),
        run: impl Fn(&GpuBuffer, usize) -> Result<GpuBuffer>,
    ) -> Result<GpuBuffer> {
        let ins = [Rows::per(src, in_plane)];
        self.by_items(op, planes, &ins, out_plane, |p, n| run(p[0], n))
    }

    /// Average pooling forward, or backward (`src` the output gradient), by plane.
    pub(super) fn avg_pool2d_any(
        &self,
        backward: bool,
        src: &GpuBuffer,
        g: &WindowGeom,
        opts: AvgPoolOpts,
    ) -> Result<GpuBuffer> {
        let (x, y) = (g.h * g.w, g.oh * g.ow);
        let (op, sizes) = match backward {
            false => ("avg_pool2d", (x, y)),
            true => ("avg_pool2d_backward", (y, x)),
        };
        self.by_planes(op, g.n * g.c, src, sizes, |p, n| {
            self.avg_pool(backward, p, &planes(g, n), opts)
        })
    }

    /// Adaptive average pooling, `adaptive_fwd` or `adaptive_bwd`, by plane.
    pub(super) fn adaptive_avg_pool2d_any(
        &self,
        entry: &'static str,
        src: &GpuBuffer,
        dims: (usize, usize, usize, usize),
        out: (usize, usize),
    ) -> Result<GpuBuffer> {
        let (x, y) = (dims.2 * dims.3, out.0 * out.1);
        let sizes = if entry == "adaptive_fwd" {
            (x, y)
        } else {
            (y, x)
        };
        self.by_planes(entry, dims.0 * dims.1, src, sizes, |p, n| {
            self.adaptive(entry, p, (n, 1, dims.2, dims.3), out)
        })
    }

    /// Upsampling, `nearest_fwd`, `bilinear_fwd` or their `_bwd`, by plane.
    pub(super) fn upsample_any(
        &self,
        entry: &'static str,
        src: &GpuBuffer,
        g: &UpsampleGeom,
    ) -> Result<GpuBuffer> {
        let (x, y) = (g.h * g.w, g.oh * g.ow);
        let sizes = if entry.ends_with("_fwd") {
            (x, y)
        } else {
            (y, x)
        };
        self.by_planes(entry, g.n * g.c, src, sizes, |p, n| {
            self.upsample(entry, p, &UpsampleGeom { n, c: 1, ..*g })
        })
    }

    pub(super) fn adaptive_max_pool2d_backward_any(
        &self,
        grad: &GpuBuffer,
        indices: &GpuBuffer,
        dims: (usize, usize, usize, usize),
        out: (usize, usize),
    ) -> Result<GpuBuffer> {
        let o = out.0 * out.1;
        let ins = [Rows::per(grad, o), Rows::per(indices, o)];
        self.by_items(
            "adaptive_max_pool2d_backward",
            dims.0 * dims.1,
            &ins,
            dims.2 * dims.3,
            |p, n| self.adaptive_max_bwd(p[0], p[1], (n, 1, dims.2, dims.3), out),
        )
    }

    pub(super) fn channel_dot_any(
        &self,
        x: &GpuBuffer,
        mean: &GpuBuffer,
        g: Option<&GpuBuffer>,
        dims: (usize, usize, usize),
    ) -> Result<GpuBuffer> {
        let (n, c, hw) = dims;
        if c * hw > self.binding_len() {
            return self.channel_dot_runs(x, mean, g, dims);
        }
        let mut ins = vec![Rows::per(x, c * hw), Rows::whole(mean)];
        ins.extend(g.map(|g| Rows::per(g, c * hw)));
        self.by_items_summed("batch_norm2d channel_dot", n, &ins, c, |p, n| {
            self.channel_dot_kernel(p[0], p[1], p.get(2).copied(), (n, c, hw))
        })
    }

    pub(super) fn channel_combine_any(
        &self,
        u: &GpuBuffer,
        a: &GpuBuffer,
        vb: Option<(&GpuBuffer, &GpuBuffer)>,
        k: &GpuBuffer,
        dims: (usize, usize, usize),
    ) -> Result<GpuBuffer> {
        let (n, c, hw) = dims;
        if c * hw > self.binding_len() {
            return self.channel_combine_runs(u, a, vb, k, dims);
        }
        let mut ins = vec![Rows::per(u, c * hw), Rows::whole(a), Rows::whole(k)];
        if let Some((v, b)) = vb {
            ins.extend([Rows::per(v, c * hw), Rows::whole(b)]);
        }
        self.by_items("batch_norm2d channel_combine", n, &ins, c * hw, |p, n| {
            let vb = (p.len() == 5).then(|| (p[3], p[4]));
            self.channel_combine_kernel(p[0], p[1], vb, p[2], (n, c, hw))
        })
    }

    pub(super) fn max_pool2d_any(
        &self,
        x: &GpuBuffer,
        g: &WindowGeom,
    ) -> Result<(GpuBuffer, GpuBuffer)> {
        let ins = [Rows::per(x, g.h * g.w)];
        self.by_items2("max_pool2d", g.n * g.c, &ins, g.oh * g.ow, |p, n| {
            self.max_pool_fwd(p[0], &planes(g, n))
        })
    }

    pub(super) fn adaptive_max_pool2d_any(
        &self,
        x: &GpuBuffer,
        dims: (usize, usize, usize, usize),
        out: (usize, usize),
    ) -> Result<(GpuBuffer, GpuBuffer)> {
        let (ins, per) = ([Rows::per(x, dims.2 * dims.3)], out.0 * out.1);
        self.by_items2("adaptive_max_pool2d", dims.0 * dims.1, &ins, per, |p, n| {
            self.adaptive_max_fwd(p[0], (n, 1, dims.2, dims.3), out)
        })
    }
}

/// Batch norm's channel primitives when one image is past a binding: runs of channels of each
/// image, each run's per-channel vectors copied out with it.
impl GpuBackend {
    /// Channels per run: a run of one image's planes within a binding.
    fn channel_run(&self, op: &'static str, hw: usize) -> Result<usize> {
        let max = self.binding_len();
        match max / hw.max(1) {
            0 => Err(too_large(op, hw, max)),
            r => Ok(r),
        }
    }

    fn channel_dot_runs(
        &self,
        x: &GpuBuffer,
        mean: &GpuBuffer,
        g: Option<&GpuBuffer>,
        (n, c, hw): (usize, usize, usize),
    ) -> Result<GpuBuffer> {
        let op = "batch_norm2d channel_dot";
        let per = self.channel_run(op, hw)?;
        let out = self.full(c, 0.0)?;
        for c0 in (0..c).step_by(per) {
            let k = per.min(c - c0);
            let m = self.owned_range(mean, c0, k)?;
            let mut sum: Option<GpuBuffer> = None;
            for i in 0..n {
                let at = (i * c + c0) * hw;
                let xs = self.owned_range(x, at, k * hw)?;
                let gs = g.map(|g| self.owned_range(g, at, k * hw)).transpose()?;
                let part = self.channel_dot_kernel(&xs, &m, gs.as_ref(), (1, k, hw))?;
                sum = Some(match sum {
                    None => part,
                    Some(s) => self.add_same(&s, &part, k)?,
                });
            }
            if let Some(s) = sum {
                self.ctx.copy_range((&s, 0), (&out, c0), k)?;
            }
        }
        Ok(out)
    }

    fn channel_combine_runs(
        &self,
        u: &GpuBuffer,
        a: &GpuBuffer,
        vb: Option<(&GpuBuffer, &GpuBuffer)>,
        k: &GpuBuffer,
        (n, c, hw): (usize, usize, usize),
    ) -> Result<GpuBuffer> {
        let op = "batch_norm2d channel_combine";
        let per = self.channel_run(op, hw)?;
        let out = self.ctx.alloc_any(n * c * hw, op)?;
        for c0 in (0..c).step_by(per) {
            let run = per.min(c - c0);
            let (ar, kr) = (self.owned_range(a, c0, run)?, self.owned_range(k, c0, run)?);
            let br = vb.map(|(_, b)| self.owned_range(b, c0, run)).transpose()?;
            for i in 0..n {
                let at = (i * c + c0) * hw;
                let ur = self.owned_range(u, at, run * hw)?;
                let vr = vb
                    .map(|(v, _)| self.owned_range(v, at, run * hw))
                    .transpose()?;
                let pair = vr.as_ref().zip(br.as_ref());
                let y = self.channel_combine_kernel(&ur, &ar, pair, &kr, (1, run, hw))?;
                self.ctx.copy_range((&y, 0), (&out, at), run * hw)?;
            }
        }
        Ok(out)
    }
}
