"""PyTorch's `Dataset`, `TensorDataset` and `DataLoader` (batch_size, shuffle, drop_last).
A `TensorDataset`'s batches are gathered in NumPy and uploaded once per batch."""

import numpy as _np


class Dataset:
    def __getitem__(self, index):
        raise NotImplementedError

    def __len__(self):
        raise NotImplementedError


class TensorDataset(Dataset):
    def __init__(self, *tensors):
        if any(len(t) != len(tensors[0]) for t in tensors):
            raise ValueError("Size mismatch between tensors")
        self.tensors = tensors
        self._arrays = [t.numpy() for t in tensors]

    def __getitem__(self, index):
        return tuple(t[index] for t in self.tensors)

    def __len__(self):
        return len(self.tensors[0])

    def _batch(self, indices):
        from .. import tensor

        return [tensor(a[indices], device=t.device) for a, t in zip(self._arrays, self.tensors)]


def default_collate(items):
    from .. import Tensor, stack, tensor

    first = items[0]
    if isinstance(first, Tensor):
        return stack(items, 0)
    if isinstance(first, (int, float)):
        return tensor(items)
    if isinstance(first, (tuple, list)):
        return [default_collate(list(col)) for col in zip(*items)]
    raise TypeError(f"default_collate: cannot batch items of type {type(first).__name__}")


class DataLoader:
    def __init__(self, dataset, batch_size=1, shuffle=False, drop_last=False, collate_fn=None,
                 num_workers=0, generator=None, **kwargs):
        self.dataset, self.batch_size, self.shuffle = dataset, batch_size, shuffle
        self.drop_last, self.collate_fn = drop_last, collate_fn

    def __len__(self):
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self):
        from .. import _generator

        n = len(self.dataset)
        order = _generator().permutation(n) if self.shuffle else _np.arange(n)
        for b in range(len(self)):
            idx = order[b * self.batch_size:(b + 1) * self.batch_size]
            if isinstance(self.dataset, TensorDataset) and self.collate_fn is None:
                yield self.dataset._batch(idx)
            else:
                collate = self.collate_fn or default_collate
                yield collate([self.dataset[int(i)] for i in idx])
