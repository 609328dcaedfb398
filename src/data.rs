//! Batches from an in-memory image dataset: seeded shuffling per epoch, the last partial batch
//! kept or dropped, and optional augmentation as torchvision's `RandomCrop(size, padding)` (zero
//! padding) and `RandomHorizontalFlip()`. Batches are assembled on the host and uploaded.

use std::path::Path;

use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::{ensure, Device, Error, Result, Tensor};

/// Images `(n, c, h, w)` and their class labels.
#[derive(Clone, Debug)]
pub struct Dataset {
    images: Vec<f32>,
    dims: [usize; 4],
    labels: Vec<usize>,
}

impl Dataset {
    /// `images` holds `dims = (n, c, h, w)` values in row-major order; one label per image.
    pub fn new(images: Vec<f32>, dims: [usize; 4], labels: Vec<usize>) -> Result<Dataset> {
        let per = dims[1] * dims[2] * dims[3];
        ensure!(
            dims[0].checked_mul(per) == Some(images.len()),
            "Dataset",
            "{} values do not make images of {dims:?}",
            images.len()
        );
        ensure!(
            labels.len() == dims[0],
            "Dataset",
            "{} labels for {} images",
            labels.len(),
            dims[0]
        );
        Ok(Dataset { images, dims, labels })
    }

    /// An MNIST-style pair of IDX files (`.gz` or not): images scaled to `[0, 1]` as
    /// `(n, 1, rows, cols)`, and labels. Errors name the file.
    pub fn from_idx(images: impl AsRef<Path>, labels: impl AsRef<Path>) -> Result<Dataset> {
        let (images, labels) = (images.as_ref(), labels.as_ref());
        let (dims, x) = crate::io::read_idx_images(images)?;
        let y = crate::io::load_idx_labels(labels)?;
        if y.len() != dims[0] {
            return Err(Error::Format {
                path: labels.display().to_string(),
                msg: format!(
                    "{} labels for the {} images of {}",
                    y.len(),
                    dims[0],
                    images.display()
                ),
            });
        }
        Dataset::new(x, dims, y)
    }

    /// The number of images.
    pub fn len(&self) -> usize {
        self.dims[0]
    }

    /// Whether the dataset holds no image.
    pub fn is_empty(&self) -> bool {
        self.dims[0] == 0
    }

    /// `(n, c, h, w)`.
    pub fn dims(&self) -> [usize; 4] {
        self.dims
    }

    /// One class label per image.
    pub fn labels(&self) -> &[usize] {
        &self.labels
    }
}

/// Random augmentation of each training image.
#[derive(Clone, Copy, Debug, Default)]
pub struct Augment {
    /// Pad by this many zeros on every side, then crop back to the original size at a random
    /// offset (0: no crop).
    pub crop_padding: usize,
    /// Mirror left-right with probability 1/2.
    pub hflip: bool,
}

/// Batches of a [`Dataset`], epoch by epoch.
#[derive(Clone, Debug)]
pub struct DataLoader {
    batch_size: usize,
    shuffle: Option<u64>,
    drop_last: bool,
    augment: Option<Augment>,
}

impl DataLoader {
    /// In order, every image, the last batch possibly smaller, no augmentation.
    pub fn new(batch_size: usize) -> Result<DataLoader> {
        ensure!(batch_size > 0, "DataLoader", "batch size must be positive, got 0");
        Ok(DataLoader { batch_size, shuffle: None, drop_last: false, augment: None })
    }
    /// A fresh order each epoch, drawn from `seed` and the epoch number.
    pub fn shuffle(mut self, seed: u64) -> Self {
        self.shuffle = Some(seed);
        self
    }
    /// Leave out a last batch smaller than the batch size.
    pub fn drop_last(mut self, on: bool) -> Self {
        self.drop_last = on;
        self
    }
    /// Augment each image of a batch with `a`.
    pub fn augment(mut self, a: Augment) -> Self {
        self.augment = Some(a);
        self
    }

    /// Batches per epoch of `data`.
    pub fn num_batches(&self, data: &Dataset) -> usize {
        if self.drop_last {
            data.len() / self.batch_size
        } else {
            data.len().div_ceil(self.batch_size)
        }
    }

    /// The batches of epoch `epoch`: `(images (b, c, h, w) on device, labels)`. The same seed
    /// and epoch give the same batches on every device.
    pub fn epoch<'a>(
        &'a self, data: &'a Dataset, epoch: u64, device: &'a Device,
    ) -> impl Iterator<Item = Result<(Tensor, Vec<usize>)>> + 'a {
        let mut order: Vec<usize> = (0..data.len()).collect();
        // one stream per epoch: shuffling first, then the augmentation draws
        let mut rng = epoch_rng(self.shuffle.unwrap_or(0), epoch);
        if self.shuffle.is_some() {
            order.shuffle(&mut rng);
        }
        let batches = self.num_batches(data);
        (0..batches).map(move |b| {
            let ids = &order[b * self.batch_size..((b + 1) * self.batch_size).min(order.len())];
            self.batch(data, ids, &mut rng, device)
        })
    }

    /// The batches of the samples `order` (a sampler's share of an epoch, in its order): this
    /// loader's batch size and augmentation, no shuffling of its own.
    pub fn batches_of<'a>(
        &'a self, data: &'a Dataset, order: Vec<usize>, epoch: u64, device: &'a Device,
    ) -> impl Iterator<Item = Result<(Tensor, Vec<usize>)>> + 'a {
        let mut rng = epoch_rng(self.shuffle.unwrap_or(0) ^ 0x5eed, epoch);
        let per = self.batch_size;
        let batches = if self.drop_last { order.len() / per } else { order.len().div_ceil(per) };
        (0..batches).map(move |b| {
            let ids = &order[b * per..((b + 1) * per).min(order.len())];
            if let Some(&bad) = ids.iter().find(|&&i| i >= data.len()) {
                return Err(Error::Invalid {
                    op: "DataLoader",
                    msg: format!("sample {bad} of a dataset of {}", data.len()),
                });
            }
            self.batch(data, ids, &mut rng, device)
        })
    }

    fn batch(
        &self, data: &Dataset, ids: &[usize], rng: &mut ChaCha8Rng, device: &Device,
    ) -> Result<(Tensor, Vec<usize>)> {
        let [_, c, h, w] = data.dims;
        let per = c * h * w;
        let mut x = crate::cpu::host_vec(ids.len() * per, 0.0, "DataLoader")?;
        for (dst, &i) in x.chunks_exact_mut(per).zip(ids) {
            let src = &data.images[i * per..(i + 1) * per];
            match self.augment {
                None => dst.copy_from_slice(src),
                Some(a) => augment_into(src, dst, (c, h, w), a, rng),
            }
        }
        let labels = ids.iter().map(|&i| data.labels[i]).collect();
        Ok((Tensor::from_vec(x, [ids.len(), c, h, w], device)?, labels))
    }
}

/// The generator of epoch `epoch` for `seed`: its shuffle, then its augmentation draws.
pub(crate) fn epoch_rng(seed: u64, epoch: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed ^ epoch.wrapping_mul(0x9e37_79b9_7f4a_7c15))
}

/// One image `src (c, h, w)` cropped at a random offset from its zero-padded copy and maybe
/// mirrored, into `dst` (zeros beforehand).
fn augment_into(
    src: &[f32], dst: &mut [f32], (c, h, w): (usize, usize, usize), a: Augment,
    rng: &mut ChaCha8Rng,
) {
    let p = a.crop_padding as i64;
    // the crop's top-left corner in padded coordinates, as an offset from the image's
    let (dy, dx) = if p > 0 {
        ((rng.random_range(0..=2 * p) - p) as isize, (rng.random_range(0..=2 * p) - p) as isize)
    } else {
        (0, 0)
    };
    let flip = a.hflip && rng.random::<bool>();
    for ch in 0..c {
        for y in 0..h {
            let sy = y as isize + dy;
            if sy < 0 || sy >= h as isize {
                continue;
            }
            for x in 0..w {
                let ox = if flip { w - 1 - x } else { x };
                let sx = ox as isize + dx;
                if sx >= 0 && sx < w as isize {
                    dst[(ch * h + y) * w + x] = src[(ch * h + sy as usize) * w + sx as usize];
                }
            }
        }
    }
}
