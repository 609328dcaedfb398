//! AdamW against PyTorch's update rule computed here in f64, on each device; learning-rate
//! schedules against their closed forms; bad settings are errors.

mod common;

use common::{assert_close, gpu};
use convshade::{
    Adam, AdamW, CosineLr, Device, LrSchedule, Optimizer, Scheduler, Sgd, StepLr, Tensor, Var,
};

fn devices() -> Vec<Device> {
    let mut d = vec![Device::cpu()];
    d.extend(gpu());
    d
}

/// `torch.optim.AdamW` on `loss = sum(w^2)` (gradient 2w), in f64: three steps.
fn adamw_reference(w0: &[f64], lr: f64, wd: f64) -> Vec<f64> {
    let (b1, b2, eps) = (0.9f64, 0.999f64, 1e-8f64);
    let mut w = w0.to_vec();
    let mut m = vec![0.0; w.len()];
    let mut v = vec![0.0; w.len()];
    for t in 1..=3 {
        for i in 0..w.len() {
            let g = 2.0 * w[i];
            w[i] *= 1.0 - lr * wd;
            m[i] = b1 * m[i] + (1.0 - b1) * g;
            v[i] = b2 * v[i] + (1.0 - b2) * g * g;
            let mh = m[i] / (1.0 - b1.powi(t));
            let vh = v[i] / (1.0 - b2.powi(t));
            w[i] -= lr * mh / (vh.sqrt() + eps);
        }
    }
    w
}

fn three_steps(opt: &mut dyn Optimizer, w: &Var) {
    for _ in 0..3 {
        let g = w.as_tensor().square().unwrap().sum_all().unwrap().backward().unwrap();
        opt.step(&g).unwrap();
    }
}

#[test]
fn adamw_follows_pytorchs_rule_on_each_device() {
    let w0 = [3.0f32, -0.5, 0.1, 20.0];
    let want: Vec<f32> =
        adamw_reference(&w0.map(f64::from), 0.1, 0.5).iter().map(|&v| v as f32).collect();
    // the decoupled decay matters here: plain Adam lands elsewhere
    let adam: Vec<f32> =
        adamw_reference(&w0.map(f64::from), 0.1, 0.0).iter().map(|&v| v as f32).collect();
    assert!((want[3] - adam[3]).abs() > 0.5);
    for dev in devices() {
        let w = Var::new(&Tensor::from_vec(w0.to_vec(), [4], &dev).unwrap());
        let mut opt = AdamW::new(vec![w.clone()], 0.1).unwrap().weight_decay(0.5).unwrap();
        three_steps(&mut opt, &w);
        assert_close(&w.as_tensor().to_vec().unwrap(), &want, 1e-5, 1e-6, &format!("{dev:?}"));
    }
}

#[test]
fn adamw_without_decay_is_adam_bit_for_bit() {
    let w0 = vec![1.5f32, -2.0, 0.25];
    let run = |opt: &mut dyn Optimizer, w: &Var| {
        three_steps(opt, w);
        w.as_tensor().to_vec().unwrap()
    };
    let d = Device::cpu();
    let a = Var::new(&Tensor::from_vec(w0.clone(), [3], &d).unwrap());
    let b = Var::new(&Tensor::from_vec(w0, [3], &d).unwrap());
    let mut adam = Adam::new(vec![a.clone()], 0.05).unwrap();
    let mut adamw = AdamW::new(vec![b.clone()], 0.05).unwrap().weight_decay(0.0).unwrap();
    assert_eq!(run(&mut adam, &a), run(&mut adamw, &b));
}

#[test]
fn schedules_follow_their_closed_forms() {
    let step = StepLr::new(2, 0.1).unwrap();
    let got: Vec<f32> = (0..6).map(|e| step.rate(1.0, e)).collect();
    assert_close(&got, &[1.0, 1.0, 0.1, 0.1, 0.01, 0.01], 1e-6, 0.0, "StepLr");
    let cos = CosineLr::new(10, 0.001).unwrap();
    assert_eq!(cos.rate(0.1, 0), 0.1);
    assert!((cos.rate(0.1, 5) - 0.0505).abs() < 1e-7);
    assert!((cos.rate(0.1, 10) - 0.001).abs() < 1e-9);
    // a scheduler sets the optimizer's rate epoch by epoch, from the rate at its creation
    let w = Var::new(&Tensor::from_vec(vec![1.0], [1], &Device::cpu()).unwrap());
    let mut sgd = Sgd::new(vec![w], 0.5).unwrap();
    let mut sched = Scheduler::new(StepLr::new(1, 0.5).unwrap(), &sgd);
    let mut rates = Vec::new();
    for _ in 0..3 {
        sched.step(&mut sgd).unwrap();
        rates.push(sgd.learning_rate());
    }
    assert_eq!(rates, [0.25, 0.125, 0.0625]);
    assert_eq!(sched.epoch(), 3);
}

#[test]
fn bad_settings_are_errors() {
    let w = Var::new(&Tensor::from_vec(vec![1.0], [1], &Device::cpu()).unwrap());
    for lr in [f32::NAN, f32::INFINITY, -1.0] {
        let e = AdamW::new(vec![w.clone()], lr).err().expect("refused");
        assert!(e.to_string().starts_with("adamw: learning rate"), "{e}");
    }
    assert!(AdamW::new(vec![w.clone()], 0.1).unwrap().weight_decay(f32::NAN).is_err());
    let e = StepLr::new(0, 0.1).err().expect("refused");
    assert!(e.to_string().starts_with("StepLr: step_size"), "{e}");
    assert!(CosineLr::new(0, 0.0).is_err());
    assert!(CosineLr::new(5, f32::INFINITY).is_err());
}
