//! State dicts, PyTorch-compatible: each module names its tensors (`weight`, `bias`), and
//! containers prefix their children's names with the child's index (`0.weight`), as PyTorch's
//! `state_dict()` keys the same model.

use std::collections::HashMap;

use super::Module;
use crate::{Error, Result, Tensor, Var};

/// `(name, tensor)` pairs in module order.
pub type StateDict = Vec<(String, Tensor)>;

/// The tensors of `m` under their PyTorch names.
pub(super) fn state_dict(m: &(impl Module + ?Sized)) -> StateDict {
    m.named_state().into_iter().map(|(k, v)| (k, v.as_tensor())).collect()
}

/// Strict load: every key of `m` present with its shape, no other key; values moved to each
/// tensor's device. Nothing is changed unless all keys match.
pub(super) fn load_state_dict(
    m: &(impl Module + ?Sized), state: &[(String, Tensor)],
) -> Result<()> {
    let own = m.named_state();
    let given: HashMap<&str, &Tensor> = state.iter().map(|(k, t)| (k.as_str(), t)).collect();
    let missing: Vec<&str> =
        own.iter().map(|(k, _)| k.as_str()).filter(|k| !given.contains_key(k)).collect();
    let names: HashMap<&str, &Var> = own.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let unexpected: Vec<&str> =
        state.iter().map(|(k, _)| k.as_str()).filter(|k| !names.contains_key(k)).collect();
    let misshaped: Vec<String> = own
        .iter()
        .filter_map(|(k, v)| {
            let t = given.get(k.as_str())?;
            let want = v.as_tensor();
            (t.dims() != want.dims()).then(|| format!("{k}: {} for {}", t.shape(), want.shape()))
        })
        .collect();
    if !(missing.is_empty() && unexpected.is_empty() && misshaped.is_empty()) {
        let mut parts = Vec::new();
        if !missing.is_empty() {
            parts.push(format!("missing keys {missing:?}"));
        }
        if !unexpected.is_empty() {
            parts.push(format!("unexpected keys {unexpected:?}"));
        }
        if !misshaped.is_empty() {
            parts.push(format!("shape mismatches {misshaped:?}"));
        }
        return Err(Error::Invalid { op: "load_state_dict", msg: parts.join("; ") });
    }
    for (k, v) in &own {
        v.set(&given[k.as_str()].to_device(&v.as_tensor().device())?)?;
    }
    Ok(())
}
