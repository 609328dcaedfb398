//! Kernel parameters: each uniform struct is declared once, in Rust, and its WGSL twin is
//! generated from the same field list (the loader prepends it to the modules that use it), so
//! the two cannot drift apart; `contract.rs` checks that WGSL lays it out as `#[repr(C)]` does.

/// How a field type is spelt in WGSL, and how many scalar fields it expands to (padding
/// arrays become separate `u32`s, which a uniform array could not hold).
pub(crate) trait WgslType {
    const WGSL: &'static str;
    const SCALARS: usize = 1;
}

impl WgslType for u32 {
    const WGSL: &'static str = "u32";
}
impl WgslType for i32 {
    const WGSL: &'static str = "i32";
}
impl WgslType for f32 {
    const WGSL: &'static str = "f32";
}
/// Up to eight dims or strides, four to a 16-byte row as uniforms require.
impl WgslType for [[u32; 4]; 2] {
    const WGSL: &'static str = "array<vec4<u32>, 2>";
}
/// Padding only.
impl<const N: usize> WgslType for [u32; N] {
    const WGSL: &'static str = "u32";
    const SCALARS: usize = N;
}

/// A uniform struct with a WGSL twin.
pub(crate) trait Uniform {
    /// The struct's name in WGSL.
    const WGSL_NAME: &'static str;
    /// `(field, WGSL type, scalars, byte offset in Rust)`, in order.
    fn fields() -> Vec<(&'static str, &'static str, usize, usize)>;

    /// The WGSL declaration.
    fn wgsl() -> String {
        let mut out = format!("struct {} {{\n", Self::WGSL_NAME);
        for (name, ty, scalars, _) in Self::fields() {
            if scalars == 1 {
                out.push_str(&format!("    {name}: {ty},\n"));
            } else {
                for i in 0..scalars {
                    out.push_str(&format!("    {name}{i}: {ty},\n"));
                }
            }
        }
        out + "}\n"
    }
}

/// Declares a `#[repr(C)]` uniform struct and its [`Uniform`] impl from one field list.
macro_rules! uniform {
    (
        $(#[$doc:meta])*
        $name:ident as $wgsl:literal {
            $($(#[$fdoc:meta])* $field:ident: $ty:ty),* $(,)?
        }
    ) => {
        $(#[$doc])*
        #[repr(C)]
        #[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
        pub(crate) struct $name {
            $($(#[$fdoc])* pub $field: $ty),*
        }

        impl $crate::gpu::runtime::uniforms::Uniform for $name {
            const WGSL_NAME: &'static str = $wgsl;
            fn fields() -> Vec<(&'static str, &'static str, usize, usize)> {
                use $crate::gpu::runtime::uniforms::WgslType;
                vec![$((
                    stringify!($field),
                    <$ty as WgslType>::WGSL,
                    <$ty as WgslType>::SCALARS,
                    std::mem::offset_of!($name, $field),
                )),*]
            }
        }
    };
}
pub(crate) use uniform;
