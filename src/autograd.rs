//! Reverse-mode differentiation: ops attach a backward rule to their output; `backward` walks
//! the graph from the loss in reverse topological order.

use std::cell::Cell;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use crate::tensor::{Tensor, TensorId};
use crate::Result;

/// Gradients of every input of an op given the gradient of its output (None: not needed).
pub(crate) type BackwardFn = Box<dyn Fn(&Tensor) -> Result<Vec<Option<Tensor>>> + Send + Sync>;

/// How an op's output was made.
pub(crate) struct Node {
    pub(crate) inputs: Vec<Tensor>,
    pub(crate) backward: BackwardFn,
}

thread_local! {
    static GRAD_ENABLED: Cell<bool> = const { Cell::new(true) };
}

pub(crate) fn grad_enabled() -> bool {
    GRAD_ENABLED.with(|g| g.get())
}

/// Runs `f` without recording any graph (parameter updates, evaluation).
pub fn no_grad<T>(f: impl FnOnce() -> T) -> T {
    /// Restores the flag even if `f` panics.
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            GRAD_ENABLED.with(|g| g.set(self.0));
        }
    }
    let _restore = Restore(GRAD_ENABLED.with(|g| g.replace(false)));
    f()
}

/// Turns graph recording on or off for this thread until set again, and returns the previous
/// setting: for bindings whose scopes are not closures (a Python `with no_grad():` block).
/// [`no_grad`] is the scoped form.
pub fn set_grad_enabled(enabled: bool) -> bool {
    GRAD_ENABLED.with(|g| g.replace(enabled))
}

/// Whether ops record the graph on this thread (false inside [`no_grad`]).
pub fn is_grad_enabled() -> bool {
    grad_enabled()
}

/// Gradients of the loss with respect to the variables (leaves) it depends on, by tensor id.
/// Gradients of intermediate tensors are not kept.
#[derive(Default)]
pub struct GradStore {
    grads: HashMap<TensorId, Tensor>,
}

impl GradStore {
    /// The gradient of the loss with respect to the leaf `t` (a variable or a tensor made with
    /// `requires_grad_`), if `t` took part in computing it.
    pub fn get(&self, t: &Tensor) -> Option<&Tensor> {
        self.grads.get(&t.id())
    }
    /// Gradient of a trainable variable.
    pub fn get_var(&self, v: &Var) -> Option<&Tensor> {
        self.grads.get(&v.id())
    }
    /// Sets the gradient of a trainable variable (averaged gradients, for the optimizers).
    pub fn insert_var(&mut self, v: &Var, grad: Tensor) {
        self.grads.insert(v.id(), grad);
    }
    /// The number of gradients held.
    pub fn len(&self) -> usize {
        self.grads.len()
    }
    /// Whether no gradient is held.
    pub fn is_empty(&self) -> bool {
        self.grads.is_empty()
    }
}

/// Computes the gradient of `loss` with respect to every tensor it depends on, seeded with
/// `seed` (ones when `None`).
pub(crate) fn backward(loss: &Tensor, seed: Option<&Tensor>) -> Result<GradStore> {
    // Reverse topological order by an iterative DFS (deep graphs must not overflow the stack).
    let mut order: Vec<Tensor> = Vec::new();
    let mut seen: HashSet<TensorId> = HashSet::new();
    let mut stack: Vec<(Tensor, bool)> = vec![(loss.clone(), false)];
    while let Some((t, expanded)) = stack.pop() {
        if expanded {
            order.push(t);
            continue;
        }
        if !seen.insert(t.id()) {
            continue;
        }
        stack.push((t.clone(), true));
        if let Some(node) = t.node() {
            for i in &node.inputs {
                if i.requires_grad() && !seen.contains(&i.id()) {
                    stack.push((i.clone(), false));
                }
            }
        }
    }
    let mut store = GradStore::default();
    crate::no_grad(|| -> Result<()> {
        let seed = match seed {
            Some(g) => g.detach(),
            None => loss.ones_like()?,
        };
        store.grads.insert(loss.id(), seed);
        for t in order.iter().rev() {
            let Some(node) = t.node() else { continue };
            // An intermediate's gradient is needed only to pass it on: drop it now (as PyTorch
            // keeps only leaf gradients), so peak memory stays near one layer's worth.
            let Some(g) = store.grads.remove(&t.id()) else {
                continue;
            };
            let input_grads = (node.backward)(&g)?;
            for (input, ig) in node.inputs.iter().zip(input_grads) {
                let Some(ig) = ig else { continue };
                if !input.requires_grad() {
                    continue;
                }
                let acc = match store.grads.remove(&input.id()) {
                    Some(prev) => prev.add(&ig)?,
                    None => ig,
                };
                store.grads.insert(input.id(), acc);
            }
        }
        Ok(())
    })?;
    Ok(store)
}

/// A trainable tensor: its value can be replaced (by an optimizer) while keeping its identity,
/// so gradients found by `backward` can be looked up with it.
#[derive(Clone)]
pub struct Var {
    inner: Arc<Mutex<Tensor>>,
    id: TensorId,
}

impl std::fmt::Debug for Var {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Var({:?})", self.as_tensor())
    }
}

impl Var {
    /// Makes `t` (its value, detached) trainable.
    pub fn new(t: &Tensor) -> Var {
        let v = t.as_var();
        Var { id: v.id(), inner: Arc::new(Mutex::new(v)) }
    }
    /// The current value, tracked by autograd.
    pub fn as_tensor(&self) -> Tensor {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
    pub(crate) fn id(&self) -> TensorId {
        self.id
    }
    /// Replaces the value; the shape must stay the same.
    pub fn set(&self, value: &Tensor) -> Result<()> {
        let cur = self.as_tensor();
        crate::ensure!(
            cur.shape() == value.shape(),
            "Var::set",
            "new value has shape {} but the variable has shape {}",
            value.shape(),
            cur.shape()
        );
        crate::ensure!(
            cur.device() == value.device(),
            "Var::set",
            "new value is on {} but the variable is on {}",
            value.device().name(),
            cur.device().name()
        );
        *self.inner.lock().unwrap_or_else(|e| e.into_inner()) = value.with_id_as_var(self.id);
        Ok(())
    }
}
