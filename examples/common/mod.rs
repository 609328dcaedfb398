//! What the training examples share: their flags, the data (with errors that say how to fetch
//! it), the training loop with its progress bar, evaluation, saving and resuming.

#[cfg(feature = "mpi")]
mod distributed;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};

use convshade::data::{DataLoader, Dataset};
use convshade::nn::{BatchNorm2d, Module, Sequential};
use convshade::{
    cross_entropy_labels, no_grad, AdamW, CosineLr, CrossEntropyOptions, Device, Error, GradStore,
    Optimizer, Result, Scheduler, Tensor,
};

/// The flags both examples take; unset ones take the example's [`Defaults`].
#[derive(clap::Args)]
pub struct TrainFlags {
    /// Folder holding the gzipped IDX files (default: the repository's data/cache/<dataset>)
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Device to run on (default: CONVSHADE_DEVICE, else auto)
    #[arg(long, value_parser = ["cpu", "gpu", "auto"])]
    pub device: Option<String>,
    /// Epochs to train
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Images per training batch
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// AdamW's base learning rate (cosine-annealed over the epochs)
    #[arg(long)]
    pub lr: Option<f32>,
    /// Seed of the shuffling, dropout and initial weights
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Save the trained weights (PyTorch's state dict keys) to this .safetensors file
    #[arg(long)]
    pub save: Option<PathBuf>,
    /// Start from the weights in this .safetensors file
    #[arg(long)]
    pub resume: Option<PathBuf>,
    /// Train data-parallel on the processes of `mpirun -np N` (built with `--features mpi`):
    /// the batch size is per process; rank 0 prints and saves
    #[arg(long)]
    pub distributed: bool,
    /// With --distributed, batch norm's statistics over every process's batch
    #[arg(long, requires = "distributed")]
    pub sync_bn: bool,
}

/// Which batch norm a network uses: per process, or synchronised over the processes.
#[derive(Clone, Copy, Debug)]
pub enum Norm {
    Plain,
    #[cfg(feature = "mpi")]
    Sync,
}

impl Norm {
    /// A batch-norm layer over `channels` channels.
    #[allow(dead_code)] // not every example normalises
    pub fn layer(self, channels: usize, dev: &Device) -> Result<Box<dyn Module>> {
        Ok(match self {
            Norm::Plain => Box::new(BatchNorm2d::new(channels, dev)?),
            #[cfg(feature = "mpi")]
            Norm::Sync => Box::new(convshade::distributed::SyncBatchNorm2d::new(channels, dev)?),
        })
    }
}

/// How a run is spread over processes: one, or MPI's ranks (`--distributed`).
pub trait Ranks {
    /// Whether this process prints and saves.
    fn is_root(&self) -> bool {
        true
    }
    /// This process's share of epoch `epoch` of `len` samples, in order; None: all of them,
    /// shuffled by the loader.
    fn share(&self, _len: usize, _epoch: u64) -> Option<Vec<usize>> {
        None
    }
    /// This process's part of `len` samples to evaluate, each sample on exactly one process
    /// (no padding, unlike a training share); None: all of them.
    fn eval_share(&self, _len: usize) -> Option<Vec<usize>> {
        None
    }
    /// Every process's gradients averaged.
    fn average(&self, grads: GradStore) -> Result<GradStore> {
        Ok(grads)
    }
    /// `values` summed over the processes, in place.
    fn sum(&self, _values: &mut [f64]) {}
}

/// A run in one process.
pub struct OneProcess;

impl Ranks for OneProcess {}

/// An example's dataset and training settings.
pub struct Defaults {
    /// `mnist` or `fashion`: the folder under data/cache
    pub dataset: &'static str,
    pub epochs: usize,
    pub batch_size: usize,
    pub lr: f32,
}

/// The command line of a training example: the shared flags only.
#[derive(clap::Parser)]
struct Cli {
    #[command(flatten)]
    train: TrainFlags,
}

/// A training example's `main`: parses the flags (`about` is its `--help` line), builds
/// `network(seed, device)` and trains it.
pub fn main_with(
    about: &'static str, d: &Defaults, network: fn(u64, &Device, Norm) -> Result<Sequential>,
) {
    use clap::{CommandFactory, FromArgMatches};
    let matches = Cli::command().about(about).get_matches();
    let flags = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit()).train;
    exit_on_error(|| {
        if flags.distributed {
            #[cfg(feature = "mpi")]
            return distributed::main(&flags, d, network);
            #[cfg(not(feature = "mpi"))]
            return Err(Error::Distributed {
                op: "--distributed",
                msg: "this build has no MPI: build with `cargo build --release --features mpi \
                      --examples` (needs openmpi-bin libopenmpi-dev libclang-dev)"
                    .into(),
            });
        }
        let dev = device(&flags)?;
        let mut net = network(flags.seed, &dev, Norm::Plain)?;
        train(&mut net, &flags, d, &dev, &OneProcess, &mut std::io::stdout())
    });
}

/// Runs `main_body` and turns an `Err` into one line on stderr and exit status 1.
pub fn exit_on_error(main_body: impl FnOnce() -> Result<()>) {
    if let Err(e) = main_body() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

/// The device the flags ask for.
pub fn device(flags: &TrainFlags) -> Result<Device> {
    match &flags.device {
        Some(d) => Device::from_name(d),
        None => Device::from_env(),
    }
}

/// `DIR/name.gz`, or `DIR/name` where only that exists.
fn idx_file(dir: &Path, name: &str) -> PathBuf {
    let gz = dir.join(format!("{name}.gz"));
    let plain = dir.join(name);
    if !gz.exists() && plain.exists() {
        plain
    } else {
        gz
    }
}

/// The training and test sets, or an error naming the missing or corrupt file and how to fetch
/// it.
pub fn load_data(flags: &TrainFlags, d: &Defaults) -> Result<(Dataset, Dataset)> {
    let dir = flags.data.clone().unwrap_or_else(|| {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("data/cache").join(d.dataset)
    });
    let hint = "run `bash tools/fetch_data.sh` to fetch it, or pass --data DIR";
    let split = |prefix: &str| -> Result<Dataset> {
        let images = idx_file(&dir, &format!("{prefix}-images-idx3-ubyte"));
        let labels = idx_file(&dir, &format!("{prefix}-labels-idx1-ubyte"));
        for f in [&images, &labels] {
            if !f.exists() {
                return Err(Error::Io {
                    path: f.display().to_string(),
                    msg: format!("no such file; {hint}"),
                });
            }
        }
        Dataset::from_idx(&images, &labels).map_err(|e| match e {
            Error::Format { path, msg } | Error::Io { path, msg } => {
                Error::Format { path, msg: format!("{msg}; {hint} again") }
            }
            e => e,
        })
    };
    let (train, test) = (split("train")?, split("t10k")?);
    if train.dims()[1..] != test.dims()[1..] {
        return Err(Error::Format {
            path: dir.display().to_string(),
            msg: format!(
                "training images are {:?} but test images {:?}",
                &train.dims()[1..],
                &test.dims()[1..]
            ),
        });
    }
    Ok((train, test))
}

/// How many rows of `logits (b, classes)` have their first maximum at the row's label, as a
/// `()` tensor on the logits' device (nothing read back).
fn right_count(logits: &Tensor, labels: &[usize]) -> Result<Tensor> {
    let labels: Vec<f32> = labels.iter().map(|&l| l as f32).collect();
    let n = labels.len();
    let labels = Tensor::from_vec(labels, [n], &logits.device())?;
    logits.detach().argmax(1, false)?.eq(&labels)?.sum_all()
}

/// `a + b`, or `b` where there is no `a` yet: a running sum kept on the device.
fn accumulate(a: Option<Tensor>, b: Tensor) -> Result<Option<Tensor>> {
    Ok(Some(match a {
        Some(a) => a.add(&b)?,
        None => b,
    }))
}

/// The value of a running sum (0 before the first term): one read-back.
fn read(sum: &Option<Tensor>) -> Result<f64> {
    sum.as_ref().map_or(Ok(0.0), |t| Ok(t.to_scalar()? as f64))
}

/// Share of `labels` the network classifies right, in evaluation mode, in batches of 1,000,
/// counted on the device and read back once.
fn accuracy(
    net: &mut Sequential, data: &Dataset, device: &Device, ranks: &dyn Ranks,
) -> Result<f64> {
    net.set_training(false);
    let mut right = None;
    // every process its share of the images, the counts summed
    let share = ranks.eval_share(data.len());
    let loader = DataLoader::new(1000)?;
    let batches: Box<dyn Iterator<Item = Result<(Tensor, Vec<usize>)>>> = match share {
        Some(ids) => Box::new(loader.batches_of(data, ids, 0, device)),
        None => Box::new(loader.epoch(data, 0, device)),
    };
    for batch in batches {
        let (x, labels) = batch?;
        let logits = no_grad(|| net.forward(&x))?;
        right = accumulate(right, right_count(&logits, &labels)?)?;
    }
    net.set_training(true);
    let mut total = [read(&right)?];
    ranks.sum(&mut total);
    Ok(total[0] / data.len() as f64)
}

fn bar(batches: usize, epoch: usize, epochs: usize) -> ProgressBar {
    let style = ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg} ETA {eta}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    ProgressBar::new(batches as u64)
        .with_style(style)
        .with_prefix(format!("epoch {epoch}/{epochs}"))
}

/// Trains `net` with AdamW (weight decay 0.01) and a cosine schedule stepped per epoch, writing
/// a line per epoch to `out` and, last, `test accuracy: XX.XX%`.
pub fn train(
    net: &mut Sequential, flags: &TrainFlags, d: &Defaults, device: &Device, ranks: &dyn Ranks,
    out: &mut dyn Write,
) -> Result<()> {
    let root = ranks.is_root();
    let mut say = |line: String| {
        if !root {
            return Ok(());
        }
        writeln!(out, "{line}").map_err(|e| Error::Io { path: "stdout".into(), msg: e.to_string() })
    };
    let (train, test) = load_data(flags, d)?;
    let epochs = flags.epochs.unwrap_or(d.epochs);
    let batch_size = flags.batch_size.unwrap_or(d.batch_size);
    let lr = flags.lr.unwrap_or(d.lr);
    say(format!(
        "device: {}; {} training and {} test images of {:?}; {epochs} epochs, batch {batch_size}, lr {lr}",
        device.name(),
        train.len(),
        test.len(),
        &train.dims()[1..]
    ))?;
    if let Some(path) = &flags.resume {
        net.load_state_dict(&convshade::io::load_safetensors(path, device)?)?;
        say(format!("resumed from {}", path.display()))?;
    }
    let mut opt = AdamW::new(net.parameters(), lr)?.weight_decay(0.01)?;
    let mut schedule = Scheduler::new(CosineLr::new(epochs.max(1), 0.0)?, &opt);
    let loader = DataLoader::new(batch_size)?.shuffle(flags.seed);
    let ce = CrossEntropyOptions::default();
    let mut test_acc = accuracy(net, &test, device, ranks)?;
    for epoch in 0..epochs {
        let share = ranks.share(train.len(), epoch as u64);
        let batches =
            share.as_ref().map_or(loader.num_batches(&train), |s| s.len().div_ceil(batch_size));
        let bar = if root { bar(batches, epoch + 1, epochs) } else { ProgressBar::hidden() };
        let start = Instant::now();
        // the running loss and accuracy stay on the device, read back only for the bar a few
        // times a second, so steps queue up without waiting for each other
        let (mut loss_sum, mut right, mut seen) = (None, None, 0usize);
        let mut shown = Instant::now();
        let epoch_batches: Box<dyn Iterator<Item = Result<(Tensor, Vec<usize>)>>> = match share {
            Some(ids) => Box::new(loader.batches_of(&train, ids, epoch as u64, device)),
            None => Box::new(loader.epoch(&train, epoch as u64, device)),
        };
        for batch in epoch_batches {
            let (x, labels) = batch?;
            let logits = net.forward(&x)?;
            let loss = cross_entropy_labels(&logits, &labels, ce)?;
            let grads = ranks.average(loss.backward()?)?;
            opt.step(&grads)?;
            // weighted by batch size, so a short last batch counts as much as its images
            let weighted = loss.detach().mul_scalar(labels.len() as f32)?;
            loss_sum = accumulate(loss_sum, weighted)?;
            right = accumulate(right, right_count(&logits, &labels)?)?;
            seen += labels.len();
            if shown.elapsed().as_secs_f64() >= 0.5 {
                shown = Instant::now();
                let rate = seen as f64 / start.elapsed().as_secs_f64();
                bar.set_message(format!(
                    "loss {:.4} acc {:.2}% {rate:.0} img/s",
                    read(&loss_sum)? / seen as f64,
                    100.0 * read(&right)? / seen as f64
                ));
            }
            bar.inc(1);
        }
        // over every process: the lines are those of one process on the combined batches
        let mut sums = [read(&loss_sum)?, read(&right)?, seen as f64];
        ranks.sum(&mut sums);
        let [loss_sum, right, seen] = sums;
        let seen = seen as usize;
        let secs = start.elapsed().as_secs_f64();
        bar.finish_and_clear();
        schedule.step(&mut opt)?;
        test_acc = accuracy(net, &test, device, ranks)?;
        say(format!(
            "epoch {}/{epochs}: loss {:.4}, train accuracy {:.2}%, test accuracy {:.2}%, {secs:.1} s ({:.0} images/s)",
            epoch + 1,
            loss_sum / seen.max(1) as f64,
            100.0 * right / seen.max(1) as f64,
            100.0 * test_acc,
            seen as f64 / secs
        ))?;
    }
    if let Some(path) = flags.save.as_ref().filter(|_| root) {
        convshade::io::save_safetensors(path, &net.state_dict())?;
        say(format!("saved the weights to {}", path.display()))?;
    }
    say(format!("test accuracy: {:.2}%", 100.0 * test_acc))
}
