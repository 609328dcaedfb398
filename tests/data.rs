//! The data loader: every image once per epoch in seeded orders, the last partial batch kept or
//! dropped, augmentation as torchvision's RandomCrop(padding) and RandomHorizontalFlip, IDX
//! files in, clear errors.

use convshade::data::{Augment, DataLoader, Dataset};
use convshade::Device;

/// `n` images of 1x3x4 whose pixels encode (image, position); label = image % 10.
fn dataset(n: usize) -> Dataset {
    let px = (0..n * 12).map(|i| (i / 12 * 100 + i % 12 + 1) as f32).collect();
    Dataset::new(px, [n, 1, 3, 4], (0..n).map(|i| i % 10).collect()).unwrap()
}

fn epoch(loader: &DataLoader, data: &Dataset, e: u64) -> Vec<(Vec<f32>, Vec<usize>)> {
    let dev = Device::cpu();
    loader
        .epoch(data, e, &dev)
        .map(|b| {
            let (x, y) = b.unwrap();
            assert_eq!(x.dims()[1..], [1, 3, 4]);
            (x.to_vec().unwrap(), y)
        })
        .collect()
}

/// The image indices of a batch, read back from the pixels.
fn ids(x: &[f32]) -> Vec<usize> {
    x.chunks(12).map(|img| (img[0] as usize - 1) / 100).collect()
}

#[test]
fn every_image_once_per_epoch_in_seeded_orders() {
    let data = dataset(23);
    let loader = DataLoader::new(5).unwrap().shuffle(7);
    assert_eq!(loader.num_batches(&data), 5);
    let e0 = epoch(&loader, &data, 0);
    let sizes: Vec<usize> = e0.iter().map(|(_, y)| y.len()).collect();
    assert_eq!(sizes, [5, 5, 5, 5, 3], "the last batch keeps the rest");
    let mut seen: Vec<usize> = e0.iter().flat_map(|(x, _)| ids(x)).collect();
    // labels travel with their images
    for (x, y) in &e0 {
        assert_eq!(ids(x).iter().map(|i| i % 10).collect::<Vec<_>>(), *y);
    }
    assert_ne!(seen, (0..23).collect::<Vec<_>>(), "shuffled");
    seen.sort();
    assert_eq!(seen, (0..23).collect::<Vec<_>>());
    // the same seed and epoch: the same batches; another epoch: another order
    assert_eq!(epoch(&loader, &data, 0), e0);
    assert_ne!(epoch(&loader, &data, 1), e0);
    // no shuffle: in order; drop_last: no partial batch
    let plain = DataLoader::new(5).unwrap().drop_last(true);
    let b = epoch(&plain, &data, 3);
    assert_eq!(b.len(), 4);
    assert_eq!(b.iter().flat_map(|(x, _)| ids(x)).collect::<Vec<_>>(), (0..20).collect::<Vec<_>>());
}

#[test]
fn augmentation_crops_and_flips_like_torchvision() {
    let data = dataset(40);
    let src = |i: usize, y: isize, x: isize| -> f32 {
        if (0..3).contains(&y) && (0..4).contains(&x) {
            (i * 100 + (y * 4 + x) as usize + 1) as f32
        } else {
            0.0
        }
    };
    let a = Augment { crop_padding: 1, hflip: true };
    let loader = DataLoader::new(40).unwrap().augment(a);
    let (x, _) = &epoch(&loader, &data, 0)[0];
    let mut kinds = std::collections::BTreeSet::new();
    for (i, img) in x.chunks(12).enumerate() {
        // some offset in [-1, 1]^2 and flip explains the image exactly
        let mut found = None;
        for dy in -1..=1isize {
            for dx in -1..=1isize {
                for flip in [false, true] {
                    let want: Vec<f32> = (0..12)
                        .map(|k| {
                            let (y, x) = ((k / 4) as isize, (k % 4) as isize);
                            let ox = if flip { 3 - x } else { x };
                            src(i, y + dy, ox + dx)
                        })
                        .collect();
                    if want == img {
                        found = Some((dy, dx, flip));
                    }
                }
            }
        }
        kinds.insert(found.unwrap_or_else(|| panic!("image {i}: {img:?} is no crop or flip")));
    }
    // 40 draws cover flips both ways and several offsets
    assert!(kinds.iter().any(|k| k.2) && kinds.iter().any(|k| !k.2));
    assert!(kinds.len() >= 6, "{kinds:?}");
    // no augmentation asked: the images as they are
    let none = DataLoader::new(40).unwrap().augment(Augment::default());
    assert_eq!(ids(&epoch(&none, &data, 0)[0].0), (0..40).collect::<Vec<_>>());
}

#[test]
fn idx_files_load_and_bad_ones_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let idx = |dims: &[u32], body: &[u8]| {
        let mut v = vec![0, 0, 8, dims.len() as u8];
        dims.iter().for_each(|d| v.extend(d.to_be_bytes()));
        v.extend(body);
        v
    };
    let img = dir.path().join("img");
    let lab = dir.path().join("lab");
    std::fs::write(&img, idx(&[2, 2, 2], &[0, 255, 51, 102, 1, 2, 3, 4])).unwrap();
    std::fs::write(&lab, idx(&[2], &[7, 3])).unwrap();
    let d = Dataset::from_idx(&img, &lab).unwrap();
    assert_eq!(d.dims(), [2, 1, 2, 2]);
    assert_eq!(d.labels(), [7, 3]);
    let (x, _) = DataLoader::new(1).unwrap().epoch(&d, 0, &Device::cpu()).next().unwrap().unwrap();
    assert_eq!(x.to_vec().unwrap(), [0.0, 1.0, 0.2, 0.4]);
    // three labels for two images
    std::fs::write(&lab, idx(&[3], &[7, 3, 1])).unwrap();
    let e = Dataset::from_idx(&img, &lab).unwrap_err().to_string();
    assert!(e.contains("lab") && e.contains("3 labels"), "{e}");
    // a missing file is named
    let e = Dataset::from_idx(dir.path().join("none"), &lab).unwrap_err().to_string();
    assert!(e.contains("none"), "{e}");
    assert!(DataLoader::new(0).is_err());
    assert!(Dataset::new(vec![0.0; 5], [1, 1, 2, 2], vec![0]).is_err());
}
