# The layer snippets of the tutorials (nn.Conv2d with stride and padding, the weight,
# F.conv2d, max and average pooling, F.interpolate, ReLU), as written for PyTorch; only the
# imports differ. Prints each output's shape.
import convshade as torch
import convshade.nn.functional as F
from convshade import nn

x = torch.rand(1, 1, 28, 28)
layer = nn.Conv2d(1, 3, kernel_size=3, stride=1, padding=0)
out = layer.forward(x)
print(out.shape)
layer = nn.Conv2d(1, 3, kernel_size=3, stride=1, padding=1)
out = layer.forward(x)
print(out.shape)
layer = nn.Conv2d(1, 3, kernel_size=3, stride=2, padding=1)
out = layer.forward(x)
print(out.shape)
out = layer(x)
print(out.shape)
print(layer.weight.shape, layer.weight.requires_grad)
print(layer.bias.shape)

w = torch.rand(16, 3, 5, 5)
b = torch.rand(16)
x = torch.randn(1, 3, 28, 28)
out = F.conv2d(x, w, b, stride=1, padding=1)
print(out.shape)
out = F.conv2d(x, w, b, stride=2, padding=2)
print(out.shape)

x = out
layer = nn.MaxPool2d(2, stride=2)
out = layer(x)
print(out.shape)
out = F.avg_pool2d(x, 2, stride=2)
print(out.shape)

x = out
out = F.interpolate(x, scale_factor=2, mode='nearest')
print(out.shape)
out = F.interpolate(x, scale_factor=3, mode='nearest')
print(out.shape)

layer = nn.ReLU(inplace=True)
out = layer(x)
print(out.shape)
out = F.relu(x)
print(out.shape)

# the values too: a 4x4 image pooled and upsampled
x = torch.arange(16.0).reshape(1, 1, 4, 4)
print(F.max_pool2d(x, 2, stride=2))
print(F.avg_pool2d(x, 2, stride=2))
print(F.interpolate(F.max_pool2d(x, 2), scale_factor=2, mode='nearest'))
print(F.interpolate(x, scale_factor=2, mode='bilinear', align_corners=False)[0, 0, :2])
