//! Per-adapter tuning of the GEMM kernel (the products and the implicit convolutions): its
//! candidate tilings are timed the first time a kernel meets a shape class, the fastest is kept
//! for the context and cached on disk, keyed by the adapter, its driver and this engine's
//! version. Every tiling adds each output's terms in the same order, so whichever wins, the
//! results are the same bits.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use web_time::Instant;

use serde::{Deserialize, Serialize};

use super::kernel::KernelInfo;
use super::lock::lock;
use super::tiles::GemmTiles;
use crate::{Error, Result};

/// When the GEMM's tilings are timed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tuning {
    /// Never: the default tiling by adapter type and product size (`GemmTiling::pick`).
    Off,
    /// The disk cache's choices where it has them, else the default; nothing is timed.
    Cached,
    /// Time the candidates the first time a kernel meets a shape class, and cache the winner.
    OnFirstUse,
}

impl Tuning {
    /// `off`, `cached` or `on` (`CONVSHADE_TUNE`).
    pub fn from_name(name: &str) -> Option<Tuning> {
        match name.trim().to_ascii_lowercase().as_str() {
            "off" | "0" => Some(Tuning::Off),
            "cached" | "cache" => Some(Tuning::Cached),
            "on" | "1" => Some(Tuning::OnFirstUse),
            _ => None,
        }
    }

    /// `CONVSHADE_TUNE`'s value, if set: an unknown one is an error naming the variable.
    pub(crate) fn from_env(value: Option<&str>) -> Result<Option<Tuning>> {
        value
            .map(|v| {
                Tuning::from_name(v).ok_or_else(|| Error::Invalid {
                    op: "CONVSHADE_TUNE",
                    msg: format!("unknown value {v:?}; expected off, cached or on"),
                })
            })
            .transpose()
    }
}

/// Timed runs of every candidate, in rounds over all of them.
const TIMED_ROUNDS: usize = 3;
/// How much faster than the default a candidate must be to replace it: less is noise.
const MARGIN: f64 = 0.03;

/// The cache file: per adapter fingerprint, the tiling chosen per kernel and shape class.
#[derive(Default, Serialize, Deserialize)]
struct CacheFile {
    adapters: BTreeMap<String, BTreeMap<String, GemmTiles>>,
}

/// A context's tuning state.
pub(crate) struct Tuner {
    mode: Tuning,
    path: Option<PathBuf>,
    /// `adapter (backend) | driver | engine version | kernels`: a change of any invalidates the
    /// cache.
    fingerprint: String,
    candidates: Vec<GemmTiles>,
    chosen: Mutex<BTreeMap<String, GemmTiles>>,
}

/// Where the cache lives by default: the user's cache folder.
pub(crate) fn default_cache_path() -> Option<PathBuf> {
    dirs::cache_dir().map(|d| d.join("convshade").join("tuning.json"))
}

/// The shape class of a product: each of `(batch, m, n, k)` rounded up to a power of two.
fn class([batch, m, n, k]: [usize; 4]) -> String {
    let p = |v: usize| v.max(1).next_power_of_two();
    format!("b{} m{} n{} k{}", p(batch), p(m), p(n), p(k))
}

/// The cache key of kernel `k` on a product of `dims`.
fn key(k: &KernelInfo, dims: [usize; 4]) -> String {
    let constants: Vec<String> = k.constants.iter().map(|(n, v)| format!("{n}={v}")).collect();
    format!("{} {}[{}] {}", k.module.name, k.entry, constants.join(","), class(dims))
}

fn read_cache(path: &Path) -> CacheFile {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or_default()
}

impl Tuner {
    pub(crate) fn new(
        mode: Tuning, path: Option<PathBuf>, fingerprint: String, candidates: Vec<GemmTiles>,
    ) -> Self {
        let chosen = match (&path, mode) {
            (Some(p), Tuning::Cached | Tuning::OnFirstUse) => {
                read_cache(p).adapters.remove(&fingerprint).unwrap_or_default()
            }
            _ => BTreeMap::new(),
        };
        Tuner { mode, path, fingerprint, candidates, chosen: Mutex::new(chosen) }
    }

    /// Writes this context's choices into the cache file, beside other adapters' (a write to a
    /// temporary file, then a rename, so a reader never sees half a file). A cache that cannot
    /// be written costs the next process a timing, nothing else.
    fn save(&self, chosen: &BTreeMap<String, GemmTiles>) {
        let Some(path) = &self.path else { return };
        let mut file = read_cache(path);
        // the same adapter under another driver or engine version: stale
        let adapter = |fp: &str| fp.split(" | ").next().unwrap_or_default().to_string();
        let mine = adapter(&self.fingerprint);
        file.adapters.retain(|fp, _| adapter(fp) != mine);
        file.adapters.insert(self.fingerprint.clone(), chosen.clone());
        let (Some(dir), Ok(text)) = (path.parent(), serde_json::to_string_pretty(&file)) else {
            return;
        };
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        let written = std::fs::create_dir_all(dir)
            .and_then(|_| std::fs::write(&tmp, text))
            .and_then(|_| std::fs::rename(&tmp, path));
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
    }

    /// The tiling for a launch of GEMM kernel `k` on a product of `(batch, m, n, k)`: the one
    /// tuned for its class, else, in [`Tuning::OnFirstUse`], the fastest of the candidates,
    /// each run by `run(tiling)` and waited for by `sync`, else `default`.
    pub(crate) fn choose(
        &self, k: &KernelInfo, dims: [usize; 4], default: GemmTiles,
        mut run: impl FnMut(GemmTiles) -> Result<()>, sync: impl Fn() -> Result<()>,
    ) -> Result<GemmTiles> {
        let cached = self.mode == Tuning::Cached;
        if self.mode == Tuning::Off
            || self.candidates.len() < 2
            || (cached && lock(&self.chosen).is_empty())
        {
            return Ok(default);
        }
        let key = key(k, dims);
        // a hand-edited choice that is not a candidate here is not used
        let known = |t: &GemmTiles| self.candidates.contains(t);
        if let Some(&t) = lock(&self.chosen).get(&key).filter(|t| known(t)) {
            return Ok(t);
        }
        if cached {
            return Ok(default);
        }
        // each candidate once to compile its pipeline, then rounds over all of them, so that
        // a slow spell of a noisy machine falls on every candidate alike; each keeps its best
        sync()?;
        let mut time = |t: GemmTiles| -> Result<f64> {
            let t0 = Instant::now();
            run(t)?;
            sync()?;
            Ok(t0.elapsed().as_secs_f64())
        };
        let mut times: Vec<(GemmTiles, f64)> = Vec::new();
        for &t in &self.candidates {
            if time(t).is_ok() {
                times.push((t, f64::INFINITY));
            }
        }
        for _ in 0..TIMED_ROUNDS {
            for (t, best) in times.iter_mut() {
                if let Ok(secs) = time(*t) {
                    *best = best.min(secs);
                }
            }
        }
        // the default keeps its place unless another is clearly faster
        let scale = |t: GemmTiles| if t == default { 1.0 - MARGIN } else { 1.0 };
        let best =
            times.iter().map(|&(t, secs)| (secs * scale(t), t)).min_by(|a, b| a.0.total_cmp(&b.0));
        let Some((_, winner)) = best else { return Ok(default) };
        let mut chosen = lock(&self.chosen);
        chosen.insert(key, winner);
        self.save(&chosen);
        Ok(winner)
    }

    /// The tilings chosen so far, by kernel and shape class.
    pub(crate) fn chosen(&self) -> Vec<(String, GemmTiles)> {
        lock(&self.chosen).iter().map(|(k, t)| (k.clone(), *t)).collect()
    }

    pub(crate) fn candidates(&self) -> &[GemmTiles] {
        &self.candidates
    }

    pub(crate) fn mode(&self) -> (Tuning, Option<&Path>) {
        (self.mode, self.path.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiles(tx: u32, ty: u32, bk: u32) -> GemmTiles {
        GemmTiles::new(tx, ty, bk)
    }

    #[test]
    fn an_unknown_tuning_value_is_an_error_naming_the_variable() {
        assert_eq!(Tuning::from_env(Some("cached")).unwrap(), Some(Tuning::Cached));
        assert_eq!(Tuning::from_env(None).unwrap(), None);
        let e = Tuning::from_env(Some("fast")).unwrap_err();
        assert!(matches!(e, Error::Invalid { op: "CONVSHADE_TUNE", .. }), "{e}");
    }

    #[test]
    fn classes_round_up_to_powers_of_two() {
        assert_eq!(class([1, 1000, 64, 3]), "b1 m1024 n64 k4");
        assert_eq!(class([0, 1, 1, 1]), "b1 m1 n1 k1");
    }

    #[test]
    fn the_cache_keeps_each_adapter_and_drops_another_fingerprint() {
        let dir = std::env::temp_dir().join(format!("convshade-tune-{}", std::process::id()));
        let path = dir.join("tuning.json");
        let _ = std::fs::remove_dir_all(&dir);
        let cands = vec![tiles(8, 8, 8), tiles(16, 8, 16)];
        let open = |fp: &str, mode| Tuner::new(mode, Some(path.clone()), fp.into(), cands.clone());
        let (a1, a2, b1) = ("A (Vulkan) | d1 | v1", "A (Vulkan) | d2 | v1", "B (Gl) | d1 | v1");
        let chosen = BTreeMap::from([("gemm x".to_string(), tiles(16, 8, 16))]);
        open(a1, Tuning::Cached).save(&chosen);
        // another adapter's choices sit beside the first's
        let other = BTreeMap::from([("gemm y".to_string(), tiles(8, 8, 8))]);
        open(b1, Tuning::Cached).save(&other);
        assert_eq!(*lock(&open(a1, Tuning::Cached).chosen), chosen);
        assert_eq!(*lock(&open(b1, Tuning::OnFirstUse).chosen), other);
        // tuning off reads nothing
        assert!(lock(&open(a1, Tuning::Off).chosen).is_empty());
        // the same adapter with a new driver (or engine) starts afresh, and its first save
        // drops the stale choices
        let newer = open(a2, Tuning::Cached);
        assert!(lock(&newer.chosen).is_empty());
        newer.save(&other);
        assert!(lock(&open(a1, Tuning::Cached).chosen).is_empty());
        assert_eq!(*lock(&open(b1, Tuning::Cached).chosen), other);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
