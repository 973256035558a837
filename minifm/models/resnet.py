"""ResNet (He, Zhang, Ren & Sun, 2015, "Deep Residual Learning for Image Recognition").

A residual block learns a correction F(x) to its input instead of a whole new mapping,
and outputs relu(F(x) + shortcut(x)). The shortcut is the identity wherever the shapes
agree, so a deep stack starts close to the identity and the gradient reaches the first
layers through the shortcuts undiminished: that is what lets 100+ layers train.

Two families, both built from the same two blocks:

- `resnet18/34/50/101/152`: the ImageNet networks, with torchvision's module names,
  initialization and state_dict keys (`conv1`, `bn1`, `layer1.0.conv1`, ...,
  `layer2.0.downsample.0`/`.1`, `fc`), so a torchvision checkpoint loads with
  `load_state_dict` and gives the same logits. A stem (7x7 stride-2 convolution, 3x3
  stride-2 max pool) takes the side down 4x, then four stages of 64, 128, 256, 512
  "planes"; each stage after the first halves the side in its first block. BasicBlock
  (two 3x3 convolutions) makes resnet18/34; Bottleneck (1x1 down, 3x3, 1x1 up to 4x the
  planes) makes the deeper ones. Where a block changes the shape, its shortcut is a
  strided 1x1 convolution and batch norm (the paper's option B), as in torchvision
  (its v1.5: the stride sits on the Bottleneck's 3x3 convolution, not the first 1x1).
- `resnet20/32/44/56`: the paper's CIFAR-10 networks (section 4.2) for small images: a
  3x3 convolution to 16 channels, then three stages of n BasicBlocks each (depth 6n + 2)
  with 16, 32 and 64 channels on maps of side S, S/2 and S/4. Their shortcuts are
  parameter-free (option A): where a block halves the side and doubles the channels, the
  shortcut keeps every other pixel and pads the new channels with zeros, so the networks
  have exactly the paper's parameter counts (0.27M for resnet20 ... 0.85M for resnet56).

Not included: torchvision's `groups`, `width_per_group` (ResNeXt, Wide ResNet),
`replace_stride_with_dilation` and `norm_layer` options.
"""
from __future__ import annotations

import minifm.nn as nn
from minifm.nn import functional as F


def conv3x3(in_planes, out_planes, stride=1):
    """3x3 convolution with padding 1: keeps the side at stride 1, halves it at stride 2."""
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


def conv1x1(in_planes, out_planes, stride=1):
    """1x1 convolution: mixes channels per pixel (a projection shortcut, a bottleneck)."""
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    """relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)), two 3x3 convolutions.

    `downsample` maps x to the output's shape when the block changes it (stride 2, or
    other channels); None means the identity.
    """

    expansion = 1  # output channels = planes * expansion

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x):
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        return self.relu(out)


class Bottleneck(nn.Module):
    """relu(bn3(conv3(...)) + shortcut(x)) through 1x1 -> 3x3 -> 1x1 convolutions.

    The 1x1 convolutions shrink the channels to `planes` and grow them back to
    4 * planes, so the costly 3x3 convolution works on a quarter of the channels. The
    stride sits on the 3x3 convolution (torchvision's "ResNet v1.5").
    """

    expansion = 4

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = conv1x1(inplanes, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = conv1x1(planes, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x):
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        return self.relu(out)


def init_weights(model, zero_init_residual):
    """torchvision's initialization: He et al.'s normal init for every convolution
    (std sqrt(2 / fan_out), fan_out = out_channels * kernel area), batch norm weight 1 and
    bias 0; Linear layers keep their default init. zero_init_residual zeroes the weight of
    each block's last batch norm, so every block starts as the identity (Goyal et al.,
    2017: better accuracy for large-batch training)."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.constant_(m.weight, 1)
            nn.init.constant_(m.bias, 0)
    if zero_init_residual:
        for m in model.modules():
            if isinstance(m, Bottleneck):
                nn.init.constant_(m.bn3.weight, 0)
            elif isinstance(m, BasicBlock):
                nn.init.constant_(m.bn2.weight, 0)


class ResNet(nn.Module):
    """torchvision's ResNet: images (N, 3, H, W) -> logits (N, num_classes).

    `layers` holds the number of blocks in each of the four stages. Any side from 32 up
    works (the stem and stages take it down 32x before the global average pool).
    """

    def __init__(self, block, layers, num_classes=1000, zero_init_residual=False):
        super().__init__()
        self.inplanes = 64  # the channels entering the next block _make_layer builds
        self.conv1 = nn.Conv2d(3, self.inplanes, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(self.inplanes)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, 64, layers[0])
        self.layer2 = self._make_layer(block, 128, layers[1], stride=2)
        self.layer3 = self._make_layer(block, 256, layers[2], stride=2)
        self.layer4 = self._make_layer(block, 512, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * block.expansion, num_classes)
        init_weights(self, zero_init_residual)

    def _make_layer(self, block, planes, blocks, stride=1):
        """A stage of `blocks` blocks; the first one strides and, when the shape changes,
        gets a projection shortcut (strided 1x1 convolution + batch norm)."""
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(conv1x1(self.inplanes, planes * block.expansion, stride),
                                       nn.BatchNorm2d(planes * block.expansion))
        layers = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(self.avgpool(x).flatten(1))


def resnet18(num_classes=1000, zero_init_residual=False):
    """ResNet-18: BasicBlocks, [2, 2, 2, 2] per stage (11.7M parameters at 1000 classes)."""
    return ResNet(BasicBlock, [2, 2, 2, 2], num_classes, zero_init_residual)


def resnet34(num_classes=1000, zero_init_residual=False):
    """ResNet-34: BasicBlocks, [3, 4, 6, 3] per stage (21.8M parameters)."""
    return ResNet(BasicBlock, [3, 4, 6, 3], num_classes, zero_init_residual)


def resnet50(num_classes=1000, zero_init_residual=False):
    """ResNet-50: Bottlenecks, [3, 4, 6, 3] per stage (25.6M parameters)."""
    return ResNet(Bottleneck, [3, 4, 6, 3], num_classes, zero_init_residual)


def resnet101(num_classes=1000, zero_init_residual=False):
    """ResNet-101: Bottlenecks, [3, 4, 23, 3] per stage (44.5M parameters)."""
    return ResNet(Bottleneck, [3, 4, 23, 3], num_classes, zero_init_residual)


def resnet152(num_classes=1000, zero_init_residual=False):
    """ResNet-152: Bottlenecks, [3, 8, 36, 3] per stage (60.2M parameters)."""
    return ResNet(Bottleneck, [3, 8, 36, 3], num_classes, zero_init_residual)


# ============================================================================ CIFAR-style
class ZeroPadShortcut(nn.Module):
    """The paper's option A shortcut: x[:, :, ::stride, ::stride] with `extra` zero
    channels appended, the identity extended to a block that halves the side and adds
    channels. It has no parameters: the new channels' shortcut carries nothing."""

    def __init__(self, extra, stride):
        super().__init__()
        self.extra, self.stride = extra, stride

    def forward(self, x):
        return F.pad(x[:, :, ::self.stride, ::self.stride], (0, 0, 0, 0, 0, self.extra))

    def extra_repr(self):
        return f"extra={self.extra}, stride={self.stride}"


class CifarResNet(nn.Module):
    """He et al.'s CIFAR network of depth 6n + 2: images (N, in_channels, S, S) -> logits.

    conv3x3 to 16 channels + batch norm + ReLU, three stages of n BasicBlocks (16, 32, 64
    channels; the second and third halve the side), global average pool, `fc`. Any side
    S >= 4 works: 32 for CIFAR, 8 for scikit-learn's digits.
    """

    def __init__(self, depth, num_classes=10, in_channels=3, zero_init_residual=False):
        super().__init__()
        if depth < 8 or (depth - 2) % 6:
            raise ValueError(f"CifarResNet: depth must be 6n + 2 with n >= 1, got {depth}")
        blocks = (depth - 2) // 6
        self.inplanes = 16
        self.conv1 = conv3x3(in_channels, self.inplanes)
        self.bn1 = nn.BatchNorm2d(self.inplanes)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = self._make_layer(16, blocks)
        self.layer2 = self._make_layer(32, blocks, stride=2)
        self.layer3 = self._make_layer(64, blocks, stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(64, num_classes)
        init_weights(self, zero_init_residual)

    def _make_layer(self, planes, blocks, stride=1):
        """A stage of `blocks` BasicBlocks; the first strides, with an option A shortcut."""
        downsample = None
        if stride != 1 or self.inplanes != planes:
            downsample = ZeroPadShortcut(planes - self.inplanes, stride)
        layers = [BasicBlock(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes
        layers += [BasicBlock(planes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(self.avgpool(x).flatten(1))


def resnet20(num_classes=10, in_channels=3, zero_init_residual=False):
    """CIFAR ResNet-20 (n = 3; 0.27M parameters at 3 channels and 10 classes)."""
    return CifarResNet(20, num_classes, in_channels, zero_init_residual)


def resnet32(num_classes=10, in_channels=3, zero_init_residual=False):
    """CIFAR ResNet-32 (n = 5; 0.46M parameters)."""
    return CifarResNet(32, num_classes, in_channels, zero_init_residual)


def resnet44(num_classes=10, in_channels=3, zero_init_residual=False):
    """CIFAR ResNet-44 (n = 7; 0.66M parameters)."""
    return CifarResNet(44, num_classes, in_channels, zero_init_residual)


def resnet56(num_classes=10, in_channels=3, zero_init_residual=False):
    """CIFAR ResNet-56 (n = 9; 0.85M parameters)."""
    return CifarResNet(56, num_classes, in_channels, zero_init_residual)
