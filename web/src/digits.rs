//! The demo's CNN, trained in the page on the real 8x8 handwritten digits the repository ships
//! (data/digits: 1500 for training, 297 for testing), as examples/train_digits.rs trains it.
//! Training steps are recorded without waiting; only the page's progress, evaluation and
//! prediction calls read back, each a promise.

use std::cell::RefCell;
use std::rc::Rc;

use convshade::nn::{Conv2d, Flatten, Linear, MaxPool2d, Module, ReLU, Sequential};
use convshade::{
    cross_entropy, no_grad, one_hot, Adam, Conv2dOptions, Device, Error, MaxPool2dOptions,
    Optimizer, Result, Tensor,
};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use crate::{device, js};

const SIDE: usize = 8;
const PIXELS: usize = SIDE * SIDE;
const TRAIN: usize = 1500;
const BATCH: usize = 50;

struct State {
    dev: Device,
    net: Sequential,
    opt: Adam,
    /// (n, 1, 8, 8) pixels in [0, 1], and the labels
    pixels: Vec<f32>,
    labels: Vec<usize>,
    /// the next training image, and the epochs completed
    cursor: usize,
    epoch: usize,
    /// the summed loss of this epoch's images so far, on the device, and their count
    loss_sum: Option<Tensor>,
    seen: usize,
}

/// The digits CNN of one page: conv -> relu -> max pool -> conv -> relu -> max pool -> linear,
/// trained with Adam (learning rate 0.01) in batches of 50.
#[wasm_bindgen]
pub struct Digits {
    state: Rc<RefCell<State>>,
}

/// A new CNN on device `name` (`gpu` or `cpu`) over the digits' `images.npy` (n, 1, 8, 8) and
/// `labels.npy` (n) bytes; the first 1500 train it, the rest test it.
#[wasm_bindgen]
pub async fn open_digits(
    name: String, images: Vec<u8>, labels: Vec<u8>,
) -> std::result::Result<Digits, JsError> {
    let dev = device(&name).await.map_err(js)?;
    let state = build(dev, &images, &labels).map_err(js)?;
    Ok(Digits { state: Rc::new(RefCell::new(state)) })
}

fn build(dev: Device, images: &[u8], labels: &[u8]) -> Result<State> {
    let images = convshade::io::parse_npy(images, "images.npy")?;
    let labels = convshade::io::parse_npy(labels, "labels.npy")?;
    let n = labels.len();
    if images.shape() != [n, 1, SIDE, SIDE] || n <= TRAIN {
        let msg =
            format!("images {:?} for {n} labels; need (n, 1, 8, 8), n > {TRAIN}", images.shape());
        return Err(Error::Invalid { op: "open_digits", msg });
    }
    let same = Conv2dOptions::new().padding(1);
    let net = Sequential::new()
        .push(Conv2d::new(1, 16, 3, same, true, 1, &dev)?) // (n, 16, 8, 8)
        .push(ReLU)
        .push(MaxPool2d(MaxPool2dOptions::new(2))) // (n, 16, 4, 4)
        .push(Conv2d::new(16, 32, 3, same, true, 2, &dev)?) // (n, 32, 4, 4)
        .push(ReLU)
        .push(MaxPool2d(MaxPool2dOptions::new(2))) // (n, 32, 2, 2)
        .push(Flatten)
        .push(Linear::new(32 * 2 * 2, 10, true, 3, &dev)?);
    let opt = Adam::new(net.parameters(), 1e-2)?;
    Ok(State {
        dev,
        net,
        opt,
        pixels: images.iter().copied().collect(),
        labels: labels.iter().map(|&v| v as usize).collect(),
        cursor: 0,
        epoch: 0,
        loss_sum: None,
        seen: 0,
    })
}

impl State {
    /// Images `lo..hi` as a (hi - lo, 1, 8, 8) tensor, and their labels.
    fn batch(&self, lo: usize, hi: usize) -> Result<(Tensor, &[usize])> {
        let x = Tensor::from_vec(
            self.pixels[lo * PIXELS..hi * PIXELS].to_vec(),
            [hi - lo, 1, SIDE, SIDE],
            &self.dev,
        )?;
        Ok((x, &self.labels[lo..hi]))
    }

    /// One training step on the next batch, recorded without waiting for the device.
    fn step(&mut self) -> Result<()> {
        if self.cursor >= TRAIN {
            self.cursor = 0;
            self.epoch += 1;
            self.loss_sum = None;
            self.seen = 0;
        }
        let hi = (self.cursor + BATCH).min(TRAIN);
        let (x, y) = self.batch(self.cursor, hi)?;
        let targets = one_hot(y, 10, &self.dev)?;
        let loss = cross_entropy(&self.net.forward(&x)?, &targets)?;
        self.opt.step(&loss.backward()?)?;
        let weighted = loss.detach().mul_scalar((hi - self.cursor) as f32)?;
        self.loss_sum = Some(match &self.loss_sum {
            Some(s) => s.add(&weighted)?,
            None => weighted,
        });
        self.seen += hi - self.cursor;
        self.cursor = hi;
        Ok(())
    }
}

#[wasm_bindgen]
impl Digits {
    /// Records `count` training steps (batches of 50) without waiting for the device; returns
    /// the images they train on.
    pub fn train(&self, count: usize) -> std::result::Result<usize, JsError> {
        let mut st = self.state.borrow_mut();
        let before = st.epoch * TRAIN + st.cursor;
        for _ in 0..count {
            st.step().map_err(js)?;
        }
        Ok(st.epoch * TRAIN + st.cursor - before)
    }

    /// Resolves, once the recorded steps have run, to `{"epoch", "images", "loss"}`: the epochs
    /// completed, the images of this epoch so far and their mean loss.
    pub fn progress(&self) -> js_sys::Promise {
        let st = self.state.borrow();
        let (sum, seen, epoch) = (st.loss_sum.clone(), st.seen, st.epoch);
        let dev = st.dev.clone();
        future_to_promise(async move {
            dev.sync_async().await.map_err(js)?;
            let loss = match sum {
                Some(s) => s.to_scalar_async().await.map_err(js)? / seen as f32,
                None => f32::NAN,
            };
            let json = serde_json::json!({ "epoch": epoch, "images": seen, "loss": loss });
            Ok(JsValue::from_str(&json.to_string()))
        })
    }

    /// Resolves to the test accuracy in percent (the 297 images after the first 1500), the
    /// predictions taken on the device.
    pub fn evaluate(&self) -> js_sys::Promise {
        let st = self.state.borrow();
        let n = st.labels.len();
        let run = || -> Result<(Tensor, Vec<usize>)> {
            let (x, y) = st.batch(TRAIN, n)?;
            let pred = no_grad(|| st.net.forward(&x)?.argmax(1, false))?;
            Ok((pred, y.to_vec()))
        };
        let ran = run();
        future_to_promise(async move {
            let (pred, y) = ran.map_err(js)?;
            let pred = pred.to_vec_async().await.map_err(js)?;
            let correct = pred.iter().zip(&y).filter(|(p, &y)| **p as usize == y).count();
            Ok(JsValue::from_f64(100.0 * correct as f64 / y.len() as f64))
        })
    }

    /// Resolves to the ten class probabilities of one 8x8 image (64 values in [0, 1], row by
    /// row, ink high).
    pub fn predict(&self, pixels: Vec<f32>) -> js_sys::Promise {
        let st = self.state.borrow();
        let run = || -> Result<Tensor> {
            if pixels.len() != PIXELS {
                let msg = format!("{} pixels; an 8x8 image has 64", pixels.len());
                return Err(Error::Invalid { op: "predict", msg });
            }
            let x = Tensor::from_vec(pixels, [1, 1, SIDE, SIDE], &st.dev)?;
            no_grad(|| st.net.forward(&x)?.softmax(1))
        };
        let ran = run();
        future_to_promise(async move {
            let p = ran.map_err(js)?.to_vec_async().await.map_err(js)?;
            Ok(js_sys::Float32Array::from(p.as_slice()).into())
        })
    }
}
