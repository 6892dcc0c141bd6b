"""The networks the examples train: LeNet-5 and an MLP for Fashion-MNIST, a byte-level transformer."""

import torch
import torch.nn.functional as F

#: The byte-level language model's vocabulary: every byte value.
VOCAB = 256


class LeNet(torch.nn.Module):
    """LeNet-5 for 28 x 28 images (ReLU, max pooling): 61 706 parameters."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = torch.nn.Conv2d(1, 6, 5, padding=2)
        self.conv2 = torch.nn.Conv2d(6, 16, 5)
        self.fc1 = torch.nn.Linear(16 * 5 * 5, 120)
        self.fc2 = torch.nn.Linear(120, 84)
        self.fc3 = torch.nn.Linear(84, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = F.relu(self.fc1(x.flatten(1)))
        return self.fc3(F.relu(self.fc2(x)))


def make_model(name: str) -> torch.nn.Module:
    """A fresh image classifier: "lenet", or "mlp" (two hidden layers of 256)."""
    if name == "lenet":
        return LeNet()
    if name != "mlp":
        raise ValueError(f"unknown model {name!r} (lenet or mlp)")
    return torch.nn.Sequential(
        torch.nn.Flatten(),
        torch.nn.Linear(784, 256),
        torch.nn.ReLU(),
        torch.nn.Linear(256, 256),
        torch.nn.ReLU(),
        torch.nn.Linear(256, 10),
    )


class CharTransformer(torch.nn.Module):
    """A pre-norm causal transformer over bytes: embedding, ``layers`` encoder layers, a linear head."""

    def __init__(
        self, d_model: int = 128, layers: int = 2, heads: int = 4, context: int = 128, vocab: int = VOCAB
    ) -> None:
        super().__init__()
        if d_model % heads:
            raise ValueError(f"d_model {d_model} is not a multiple of heads {heads}")
        self.context = context
        self.embed = torch.nn.Embedding(vocab, d_model)
        self.position = torch.nn.Parameter(torch.zeros(context, d_model))
        torch.nn.init.normal_(self.position, std=0.02)
        # A ModuleList rather than nn.TransformerEncoder: the latter warns about its nested-tensor
        # fast path on torch 2.x when norm_first is set, and adds nothing here.
        self.blocks = torch.nn.ModuleList(
            torch.nn.TransformerEncoderLayer(
                d_model,
                heads,
                dim_feedforward=4 * d_model,
                dropout=0.0,
                activation="gelu",
                batch_first=True,
                norm_first=True,
            )
            for _ in range(layers)
        )
        self.norm = torch.nn.LayerNorm(d_model)
        self.head = torch.nn.Linear(d_model, vocab)
        # -inf above the diagonal: position t attends to positions <= t only. A float mask,
        # which torch 1.13 and 2.x both take.
        self.register_buffer(
            "mask", torch.triu(torch.full((context, context), float("-inf")), diagonal=1), persistent=False
        )

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Logits (batch, time, vocab) of the next byte at every position of ``tokens`` (batch, time)."""
        length = tokens.shape[1]
        if length > self.context:
            raise ValueError(f"sequence of {length} tokens is longer than the context {self.context}")
        x = self.embed(tokens) + self.position[:length]
        mask = self.mask[:length, :length]
        for block in self.blocks:
            x = block(x, src_mask=mask)
        return self.head(self.norm(x))


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
