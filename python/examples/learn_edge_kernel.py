# nn.Conv2d(1, 1, kernel_size=(1, 2), bias=False) learns the edge kernel through
# `weight.data[:] -= lr * weight.grad`, as the tutorial wrote it for PyTorch; only the import
# differs.
import convshade as torch
from convshade import nn


# 卷积实现
def cov(X, K):
    h, w = X.shape[0], X.shape[1]
    m, n = K.shape[0], K.shape[1]
    Y = torch.zeros(h - m + 1, w - n + 1)
    for i in range(Y.shape[0]):
        for j in range(Y.shape[1]):
            Y[i, j] = (X[i:i+m, j:j+n]*K).sum()
    return Y


X = torch.ones((6, 8))
X[:, 2:6] = 0
print(X)
K = torch.tensor([[1.0, -1.0]])
Y = cov(X, K)
print(Y)
# 构造卷积层, 1输出通道以及形状为(1,2)的卷积核
conv2d = nn.Conv2d(1, 1, kernel_size=(1, 2), bias=False)  # 注意这里的 kernel_size 设置
X = X.reshape((1, 1, 6, 8))
Y = Y.reshape((1, 1, 6, 7))
lr = 3e-2
for i in range(10):
    Y_hat = conv2d(X)
    loss = (Y_hat - Y)**2
    conv2d.zero_grad()
    loss.sum().backward()
    conv2d.weight.data[:] -= lr*conv2d.weight.grad
    if (i + 1) % 2 == 0:
        print(f'epoch {i + 1}, loss {loss.sum():.3f}')
print(conv2d.weight.data.reshape((1, 2)))  # 这里可以得到对应的卷积核
