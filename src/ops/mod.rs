//! Public tensor ops by family: argument checks, dispatch to the backend, and each op's backward
//! rule beside its forward.

/// Builder setters of an options struct: `field(value)` stores `conv` of the argument.
macro_rules! setters {
    ($($field:ident($arg:ident: $ty:ty) = $conv:expr;)*) => {
        $(
            #[doc = concat!("Sets the `", stringify!($field), "` field.")]
            pub fn $field(mut self, $arg: $ty) -> Self {
                self.$field = $conv;
                self
            }
        )*
    };
}

pub mod activation;
mod compare;
pub mod conv;
pub mod conv_transpose;
pub mod elementwise;
mod empty;
pub mod index;
pub mod layout;
pub mod loss;
pub mod matmul;
pub mod norm;
pub mod pad;
pub mod pool;
pub mod reduce;
mod unfold;
pub mod upsample;
pub mod volume;
pub mod volume_conv;
mod volume_cpu;

pub use conv::{conv2d, conv2d_relu, convolve2d, corr2d, im2row, row2im, Conv2dOptions, Padding};
pub use conv_transpose::{conv_transpose2d, ConvTranspose2dOptions};
pub use index::{cat, stack, AxisSlice};
pub use loss::{
    cross_entropy, cross_entropy_labels, mse_loss, mse_loss_with, one_hot, CrossEntropyOptions,
    Reduction,
};
pub use norm::{batch_norm2d, batch_norm2d_relu, BatchNormOptions, BatchNormOutput};
pub use pad::{pad, PadMode, PaddingMode};
pub use pool::{
    adaptive_avg_pool2d, adaptive_max_pool2d, adaptive_max_pool2d_with_indices, avg_pool2d,
    max_pool2d, max_pool2d_with_indices, AvgPool2dOptions, MaxPool2dOptions,
};
pub use upsample::{upsample, UpsampleMode, UpsampleOptions, UpsampleSize};
pub use volume::{
    adaptive_avg_pool3d, adaptive_max_pool3d, avg_pool3d, batch_norm3d, max_pool3d,
    max_pool3d_with_indices, upsample3d, AvgPool3dOptions, MaxPool3dOptions, Triple,
    Upsample3dMode, Upsample3dSize,
};
pub use volume_conv::{conv3d, conv_transpose3d, Conv3dOptions, ConvTranspose3dOptions, Padding3d};
