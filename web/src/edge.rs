//! The corr2d tutorial in the page: the worked corr2d numbers, the edges a [1, -1] kernel finds
//! in a 6x8 image, and that kernel learned back by gradient descent.

use convshade::{conv2d, corr2d, no_grad, Conv2dOptions, Device, Result, Tensor, Var};
use wasm_bindgen::prelude::*;

use crate::{device, js};

/// What the page shows of the tutorial.
#[derive(serde::Serialize)]
struct EdgeReport {
    /// corr2d(arange(9) as 3x3, arange(4) as 2x2)
    corr2d: Vec<f32>,
    /// the 6x7 edges of the image
    edges: Vec<f32>,
    /// (epoch, loss) every epoch
    losses: Vec<(usize, f32)>,
    /// the kernel learned back
    kernel: Vec<f32>,
}

/// Runs the tutorial on device `name` (`gpu` or `cpu`); resolves to a JSON object with
/// `corr2d`, `edges`, `losses` and `kernel`.
#[wasm_bindgen]
pub async fn edge_demo(name: String) -> std::result::Result<String, JsError> {
    let dev = device(&name).await.map_err(crate::js)?;
    let report = run(&dev).await.map_err(js)?;
    serde_json::to_string(&report).map_err(|e| JsError::new(&e.to_string()))
}

async fn run(dev: &Device) -> Result<EdgeReport> {
    let x = Tensor::arange(0.0, 9.0, dev)?.reshape([3, 3])?;
    let k = Tensor::arange(0.0, 4.0, dev)?.reshape([2, 2])?;
    let corr = corr2d(&x, &k)?.to_vec_async().await?;

    // a 6x8 image, white with black columns 2..6
    let img: Vec<f32> =
        (0..48).map(|i| if (2..6).contains(&(i % 8)) { 0.0 } else { 1.0 }).collect();
    let image = Tensor::from_vec(img, [6, 8], dev)?;
    let edge = Tensor::from_vec(vec![1.0, -1.0], [1, 2], dev)?;
    let edges = corr2d(&image, &edge)?;

    // the kernel learned from (image, edges): a 1x2 convolution without bias
    let x = image.reshape([1, 1, 6, 8])?;
    let target = edges.reshape([1, 1, 6, 7])?;
    let kernel = Var::new(&Tensor::rand([1, 1, 1, 2], 42, dev)?.sub_scalar(0.5)?);
    let mut losses = Vec::new();
    for epoch in 1..=10 {
        let pred = conv2d(&x, &kernel.as_tensor(), None, &Conv2dOptions::default())?;
        let loss = pred.sub(&target)?.square()?.sum_all()?;
        let grads = loss.backward()?;
        let Some(g) = grads.get_var(&kernel) else {
            return Err(convshade::Error::Invalid { op: "edge_demo", msg: "no gradient".into() });
        };
        kernel.set(&no_grad(|| kernel.as_tensor().sub(&g.mul_scalar(3e-2)?))?)?;
        losses.push((epoch, loss.to_scalar_async().await?));
    }
    Ok(EdgeReport {
        corr2d: corr,
        edges: edges.to_vec_async().await?,
        losses,
        kernel: kernel.as_tensor().to_vec_async().await?,
    })
}
