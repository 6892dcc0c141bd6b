"""Parameter shapes of common models, written out by hand (no downloads).

Each function returns the list of parameter shapes in the order
``model.parameters()`` yields them.
"""

from typing import List, Tuple

Shape = Tuple[int, ...]


def _basic_block(c_in: int, c_out: int, downsample: bool) -> List[Shape]:
    shapes = [(c_out, c_in, 3, 3), (c_out,), (c_out,), (c_out, c_out, 3, 3), (c_out,), (c_out,)]
    if downsample:
        shapes += [(c_out, c_in, 1, 1), (c_out,), (c_out,)]
    return shapes


def _bottleneck(c_in: int, width: int, downsample: bool) -> List[Shape]:
    c_out = 4 * width
    shapes = [(width, c_in, 1, 1), (width,), (width,), (width, width, 3, 3), (width,), (width,),
              (c_out, width, 1, 1), (c_out,), (c_out,)]
    if downsample:
        shapes += [(c_out, c_in, 1, 1), (c_out,), (c_out,)]
    return shapes


def lenet5() -> List[Shape]:
    """LeNet-5 of examples/compare.py (28 x 28 inputs): 10 tensors, 61,706 parameters."""
    return [(6, 1, 5, 5), (6,), (16, 6, 5, 5), (16,), (120, 400), (120,), (84, 120), (84,), (10, 84), (10,)]


def resnet18() -> List[Shape]:
    """torchvision.models.resnet18(): 62 tensors, 11,689,512 parameters."""
    shapes: List[Shape] = [(64, 3, 7, 7), (64,), (64,)]
    c_in = 64
    for c_out, first_stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
        shapes += _basic_block(c_in, c_out, downsample=first_stride != 1 or c_in != c_out)
        shapes += _basic_block(c_out, c_out, downsample=False)
        c_in = c_out
    return shapes + [(1000, 512), (1000,)]


def resnet50() -> List[Shape]:
    """torchvision.models.resnet50(): 161 tensors, 25,557,032 parameters."""
    shapes: List[Shape] = [(64, 3, 7, 7), (64,), (64,)]
    c_in = 64
    for width, blocks in ((64, 3), (128, 4), (256, 6), (512, 3)):
        shapes += _bottleneck(c_in, width, downsample=True)
        c_in = 4 * width
        for _ in range(blocks - 1):
            shapes += _bottleneck(c_in, width, downsample=False)
    return shapes + [(1000, 2048), (1000,)]


def gpt2_small(layers: int = 12) -> List[Shape]:
    """GPT-2 small (HF layout): 148 tensors, 124,439,808 parameters at 12 layers."""
    d, vocab, context = 768, 50257, 1024
    shapes: List[Shape] = [(vocab, d), (context, d)]
    for _ in range(layers):
        shapes += [(d,), (d,), (d, 3 * d), (3 * d,), (d, d), (d,), (d,), (d,), (d, 4 * d), (4 * d,),
                   (4 * d, d), (d,)]
    return shapes + [(d,), (d,)]


def count(shapes: List[Shape]) -> int:
    total = 0
    for s in shapes:
        n = 1
        for x in s:
            n *= x
        total += n
    return total
