"""Trains a CNN on handwritten digits in everyday PyTorch style: an nn.Module subclass, a
TensorDataset and DataLoader, AdamW with a cosine schedule, the running loss kept on the device,
and the state dict saved. Only the imports name convshade.

    python train_digits.py                  # the 8x8 digits in data/digits
    python train_digits.py --mnist DIR      # MNIST's gzipped IDX files (tools/fetch_data.sh)
    python train_digits.py --device cpu     # or gpu; default: CONVSHADE_DEVICE, else auto
"""

import argparse
import gzip
import time
from pathlib import Path

import numpy as np

import convshade as torch
import convshade.nn.functional as F
from convshade import nn
from convshade.utils.data import DataLoader, TensorDataset

ROOT = Path(__file__).resolve().parents[2]


class SmallNet(nn.Module):
    """conv -> relu -> pool -> conv -> relu -> pool -> linear, for the 8x8 digits."""

    def __init__(self, side):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.fc = nn.Linear(32 * (side // 4) ** 2, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.fc(torch.flatten(x, 1))


class MnistNet(nn.Module):
    """The MNIST CNN of the Rust example train_mnist: two convolutions, two linear layers."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10))

    def forward(self, x):
        return self.classifier(self.features(x))


def idx(path):
    with gzip.open(path) if path.suffix == ".gz" else open(path, "rb") as f:
        data = f.read()
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(data[3])]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * len(dims)).reshape(dims)


def load(args):
    if args.mnist is None:
        images = np.load(ROOT / "data/digits/images.npy")  # (1797, 1, 8, 8) in [0, 1]
        labels = np.load(ROOT / "data/digits/labels.npy")
        return (images[:1500], labels[:1500]), (images[1500:], labels[1500:])
    d = Path(args.mnist)

    def split(kind):
        x = idx(d / f"{kind}-images-idx3-ubyte.gz").astype(np.float32)[:, None] / 255.0
        return x, idx(d / f"{kind}-labels-idx1-ubyte.gz")

    return split("train"), split("t10k")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mnist", metavar="DIR")
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--batch-size", type=int, default=50)
    p.add_argument("--lr", type=float, default=1e-2)
    p.add_argument("--device", default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--save", default="digits_cnn.safetensors")
    args = p.parse_args()
    torch.manual_seed(args.seed)
    device = torch.device(args.device)

    (x_train, y_train), (x_test, y_test) = load(args)
    train = TensorDataset(torch.tensor(x_train), torch.tensor(y_train))
    loader = DataLoader(train, batch_size=args.batch_size, shuffle=True)
    test_x, test_y = torch.tensor(x_test, device=device), torch.tensor(y_test, device=device)
    model = (SmallNet(x_train.shape[-1]) if args.mnist is None else MnistNet()).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.epochs)
    print(f"device: {device.name}; {len(train)} training and {len(test_y)} test images; "
          f"{args.epochs} epochs, batch {args.batch_size}")

    for epoch in range(args.epochs):
        model.train()
        start, seen = time.perf_counter(), 0
        loss_sum = right = torch.zeros((), device=device)
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            optimizer.zero_grad()
            logits = model(x)
            loss = F.cross_entropy(logits, y)
            loss.backward()
            optimizer.step()
            # kept on the device: read back once per epoch
            loss_sum = loss_sum + loss.detach() * len(y)
            right = right + (logits.argmax(1) == y).sum()
            seen += len(y)
        secs = time.perf_counter() - start
        scheduler.step()
        model.eval()
        with torch.no_grad():
            acc = (model(test_x).argmax(1) == test_y).float().mean().item()
        print(f"epoch {epoch + 1}/{args.epochs}: loss {loss_sum.item() / seen:.4f}, "
              f"train accuracy {100 * right.item() / seen:.2f}%, test accuracy {100 * acc:.2f}%, "
              f"{secs:.1f} s ({seen / secs:.0f} images/s)")
    torch.save(model.state_dict(), args.save)
    print(f"test accuracy: {100 * acc:.2f}%; saved {args.save}")


if __name__ == "__main__":
    main()
