# The cross-correlation loop of the tutorials, as they wrote it for PyTorch; only the import
# differs. Prints the 2x2 result [[19, 25], [37, 43]] and the 4x4 example's output.
import convshade as torch
from convshade import nn

x = torch.tensor([[2, 1, 0, 2, 3],
                  [9, 5, 4, 2, 0],
                  [2, 3, 4, 5, 6],
                  [1, 2, 3, 1, 0],
                  [0, 4, 4, 2, 8]])
# 卷积核
k = torch.tensor([[0, 1],
                  [2, 3]])


# 创建卷积核移动过程的计算函数
def conv2d(x, k):
    h, w = k.shape
    y = torch.zeros((x.shape[0] - h + 1, x.shape[1] - w + 1))
    for i in range(y.shape[0]):
        for j in range(y.shape[1]):
            y[i, j] = (x[i:i + h, j:j + w] * k).sum()
    return y


# 输出
y = conv2d(x, k)
print(y)


# 卷积实现
def cov(X, K):
    h, w = X.shape[0], X.shape[1]
    m, n = K.shape[0], K.shape[1]
    Y = torch.zeros(h - m + 1, w - n + 1)
    for i in range(Y.shape[0]):
        for j in range(Y.shape[1]):
            Y[i, j] = (X[i:i+m, j:j+n]*K).sum()
    return Y


X = torch.arange(9).reshape((3, 3))
K = torch.arange(4).reshape((2, 2))
Y = cov(X, K)
print(Y)


# 实现卷积层 二维
class Conv2D(nn.Module):
    def __init__(self, kernel_size):
        super().__init__()
        self.weight = nn.Parameter(torch.rand(kernel_size))
        self.bias = nn.Parameter(torch.zeros(1))

    def forward(self, X):
        return cov(X, self.weight) + self.bias


net = Conv2D((2, 2))
# 注意网络参数初始化方式, 要么使用 nn.init 中的函数
# 要么直接 net.element.data = 直接初始化
net.weight.data = K.type(torch.float32)
nn.init.constant_(net.bias, 1)
Y = net(X)
print(Y)
