# A Conv2D module learns the edge kernel [1, -1] by gradient descent through `.data`, as the
# tutorial wrote it for PyTorch; only the import differs.
"""
首先,创建要给Conv2D的类(class),继承nn.Moudule;
其次,人为设定一个图像,用于边界检测;
再次,选用一个边界检测卷积核,用于计算图像的边界;
最终,通过梯度下降,求解初始化的Conv2D类中卷积核的参数如何根据输入输出学习出正确的边界检测卷积核。
"""
import convshade as torch
from convshade import nn


# 创建卷积核移动过程的计算函数
def conv2d(x, k):
    h, w = k.shape
    y = torch.zeros((x.shape[0] - h + 1, x.shape[1] - w + 1))
    for i in range(y.shape[0]):
        for j in range(y.shape[1]):
            y[i, j] = (x[i:i + h, j:j + w] * k).sum()
    return y


class Conv2D(nn.Module):
    def __init__(self, kernel_size):
        super(Conv2D, self).__init__()
        self.weight = nn.Parameter(torch.randn(kernel_size))
        self.bias = nn.Parameter(torch.randn(1))

    def forward(self, x):
        return conv2d(x, self.weight) + self.bias


# 创建图像x,其中人为设定边界区域
x = torch.ones(6, 8)
x[:, 3:7] = 0
# 创建卷积核
k = torch.tensor([[1, -1]])
# 通过卷积操作得到输出——边界检测结果
y = conv2d(x, k)
print(y)
# 构造一个卷积核为(2,1)的二维矩阵,自动初始化,输出权重
kernal = Conv2D(kernel_size=(1, 2))
print(kernal.weight, kernal.bias)
# 设置迭代次数
step = 40
# 学习率
lr = 0.01
for i in range(step):
    y_hat = kernal(x)
    l = ((y_hat - y) ** 2).sum()  # noqa: E741 (the tutorial's name)
    l.backward()
    # 梯度下降
    kernal.weight.data -= lr * kernal.weight.grad
    kernal.bias.data -= lr * kernal.bias.grad
    # 梯度清零
    kernal.weight.grad.fill_(0)
    kernal.bias.grad.fill_(0)
    if (i + 1) & 5 == 0:
        print('Step %d, loss %.3f' % (i + 1, l.item()))

# 输出训练(梯度下降)学习到的卷积核以及真实的卷积核对比
print("weight: ", kernal.weight.data)
print("bias: ", kernal.bias.data)
