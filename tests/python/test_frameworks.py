"""LSGD, MLSGD and LSAdamW inside the training frameworks users plug optimizers into, each through its
own optimizer path and its own checkpoint/resume: Hugging Face ``transformers.Trainer``
(``optimizers=`` and ``optimizer_cls_and_kwargs=``), Lightning ``Trainer.fit``
(``configure_optimizers``, ``ModelCheckpoint`` and ``ckpt_path``, in 32-bit, bf16-mixed,
16-mixed with a GradScaler, and bf16-true), ``accelerate`` (``prepare``,
``save_state``/``load_state``) and timm (``create_optimizer_v2`` through timm's optimizer
registry, ``CheckpointSaver`` and ``resume_checkpoint``).

Every test trains a small model for STEPS steps without interruption, then again for
STEPS // 2 steps, checkpoints by the framework's own mechanism, resumes in a fresh model and
optimizer (and a fresh trainer) and finishes; the parameters and the optimizer's state must
equal the uninterrupted run's bit for bit (``torch.equal``, dtypes included). The frameworks
are pinned in requirements/frameworks.txt and installed into every test environment, so
every test runs on both torches of the suite; nothing touches the network.
"""

import math
import os

# No hub, no telemetry, no advisory notices: set before the Hugging Face packages read them.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ["TRANSFORMERS_NO_ADVISORY_WARNINGS"] = "1"

import accelerate  # noqa: E402
import lightning.pytorch as pl  # noqa: E402
import pytest  # noqa: E402
import timm  # noqa: E402
import timm.optim  # noqa: E402
import timm.scheduler  # noqa: E402
import timm.utils  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
import transformers  # noqa: E402
from accelerate.state import AcceleratorState  # noqa: E402
from lightning.pytorch.callbacks import ModelCheckpoint  # noqa: E402
from lightning.pytorch.plugins.precision import MixedPrecision  # noqa: E402
from timm.optim._optim_factory import default_registry  # noqa: E402
from torch.optim.optimizer import register_optimizer_step_post_hook  # noqa: E402

import torch_mlsgd  # noqa: E402

transformers.utils.logging.disable_progress_bar()

STEPS = 4  # the uninterrupted run; the interrupted one checkpoints after STEPS // 2
HPARAMS = dict(lr=0.05, momentum=0.9, weight_decay=1e-3, sigma=1.0)
SEED = 3  # MLSGD's schedule seed

# (class, fused): the fused kernel by default (None) and asked for (True), and the unfused
# foreach implementation (fused=False).
OPTIMIZERS = [
    pytest.param("LSGD", None, id="LSGD"),
    pytest.param("MLSGD", None, id="MLSGD"),
    pytest.param("MLSGD", True, id="MLSGD-fused"),
    pytest.param("LSGD", False, id="LSGD-unfused"),
    pytest.param("MLSGD", False, id="MLSGD-unfused"),
    pytest.param("LSAdamW", None, id="LSAdamW"),
    pytest.param("LSAdamW", False, id="LSAdamW-unfused"),
]
ADAMW_HPARAMS = dict(lr=1e-3, weight_decay=1e-2, sigma=1.0)

pytestmark = [
    # Lightning's notices, not about this code: the interrupted run's checkpoint folder is
    # where the resumed run writes too, and its own use of a torch pytree API torch deprecates.
    pytest.mark.filterwarnings("ignore:Checkpoint directory .* exists and is not empty"),
    pytest.mark.filterwarnings(r"ignore:`isinstance\(treespec, LeafSpec\)` is deprecated"),
]


def hparams(name):
    """The hyper-parameters the frameworks are given for the optimizer under test."""
    return ADAMW_HPARAMS if name == "LSAdamW" else HPARAMS


def optimizer_kwargs(name, fused):
    """The keyword arguments of the optimizer under test (MLSGD's include its seed)."""
    kwargs = dict(hparams(name), fused=fused)
    if name == "MLSGD":
        kwargs["seed"] = SEED
    return kwargs


def make_optimizer(name, fused, params):
    return getattr(torch_mlsgd, name)(params, **optimizer_kwargs(name, fused))


def assert_identical(actual, expected, where="state"):
    """Equal bit for bit: tensors by torch.equal with the same dtype, everything else by ==."""
    if isinstance(expected, torch.Tensor):
        assert isinstance(actual, torch.Tensor), where
        assert actual.dtype == expected.dtype and actual.shape == expected.shape, where
        assert torch.equal(actual, expected), f"{where} differs by up to {(actual - expected).abs().max()}"
    elif isinstance(expected, dict):
        assert isinstance(actual, dict) and actual.keys() == expected.keys(), where
        for key in expected:
            assert_identical(actual[key], expected[key], f"{where}[{key!r}]")
    elif isinstance(expected, (list, tuple)):
        assert len(actual) == len(expected), where
        for i, (a, e) in enumerate(zip(actual, expected)):
            assert_identical(a, e, f"{where}[{i}]")
    else:
        assert actual == expected, where


def assert_same_run(resumed_model, resumed_optimizer, model, optimizer, name, steps=STEPS):
    """The resumed run ended where the uninterrupted one did, and it is one that trained
    (``steps`` optimizer steps: fewer than the loop's where a GradScaler skipped some)."""
    assert_identical(resumed_model.state_dict(), model.state_dict(), "model")
    assert_identical(resumed_optimizer.state_dict(), optimizer.state_dict(), "optimizer")
    assert type(optimizer) is getattr(torch_mlsgd, name)
    state = list(optimizer.state.values())
    if name == "LSAdamW":  # AdamW's state, its counts as torch keeps them
        assert state and all("exp_avg" in s and float(s["step"]) == steps for s in state)
        return
    assert state and all("momentum_buffer" in s for s in state)
    if name == "MLSGD":
        assert all(s["step"].dtype == torch.int64 and int(s["step"]) == steps for s in state)


class StepCount:
    """Counts the steps LSGD/MLSGD take inside a ``with`` block (a global step hook), so that a
    resumed run is seen to have resumed: had it ignored the checkpoint and trained from the
    start, it would equal the uninterrupted run too, but after STEPS steps."""

    def __enter__(self):
        self.steps = 0
        self.handle = register_optimizer_step_post_hook(self.hook)
        return self

    def hook(self, optimizer, args, kwargs):
        self.steps += isinstance(optimizer, (torch_mlsgd.LSGD, torch_mlsgd.MLSGD, torch_mlsgd.LSAdamW))

    def __exit__(self, *exc):
        self.handle.remove()


def unwrap(optimizer):
    """The optimizer inside a framework's wrapper (accelerate's AcceleratedOptimizer)."""
    return getattr(optimizer, "optimizer", optimizer)


@pytest.fixture(autouse=True)
def _fresh_accelerate_state():
    """accelerate keeps process-wide state (its mixed precision among it): each test starts afresh."""
    AcceleratorState._reset_state(True)
    yield
    AcceleratorState._reset_state(True)


# --- Hugging Face transformers.Trainer -----------------------------------------------------


class TokenData(torch.utils.data.Dataset):
    """Fixed random token sequences for causal language modelling."""

    def __init__(self, n=16, length=8, vocab=32):
        generator = torch.Generator().manual_seed(1)
        self.ids = torch.randint(0, vocab, (n, length), generator=generator)

    def __len__(self):
        return len(self.ids)

    def __getitem__(self, i):
        return {"input_ids": self.ids[i], "labels": self.ids[i]}


def tiny_gpt2():
    torch.manual_seed(0)
    config = transformers.GPT2Config(vocab_size=32, n_positions=8, n_embd=16, n_layer=1, n_head=2,
                                     resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=0,
                                     eos_token_id=0)
    return transformers.GPT2LMHeadModel(config)


class StopAt(transformers.TrainerCallback):
    """Interrupts training after a given step (its checkpoint saved), as a crash would: the
    run keeps the uninterrupted run's max_steps, so its LR schedule is the same."""

    def __init__(self, step):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            control.should_training_stop = True


def hf_trainer(tmp_path, name, fused, route, bf16, stop_at=None):
    model = tiny_gpt2()
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path), max_steps=STEPS, per_device_train_batch_size=4, save_strategy="steps",
        save_steps=STEPS // 2, weight_decay=hparams(name)["weight_decay"], learning_rate=hparams(name)["lr"],
        report_to="none",
        disable_tqdm=True, logging_strategy="no", use_cpu=True, bf16=bf16, seed=0, dataloader_num_workers=0)
    if route == "optimizers":
        extra = {"optimizers": (make_optimizer(name, fused, model.parameters()), None)}
    else:
        extra = {"optimizer_cls_and_kwargs": (getattr(torch_mlsgd, name), optimizer_kwargs(name, fused))}
    callbacks = [StopAt(stop_at)] if stop_at is not None else []
    return transformers.Trainer(model=model, args=args, train_dataset=TokenData(), callbacks=callbacks, **extra)


@pytest.mark.parametrize("route, bf16", [("optimizers", False), ("optimizer_cls_and_kwargs", False),
                                         ("optimizers", True)])
@pytest.mark.parametrize("name, fused", OPTIMIZERS)
def test_transformers_trainer_resumes_bit_for_bit(tmp_path, name, fused, route, bf16):
    """Trainer steps the optimizer (given made, or made by Trainer from the class and keywords,
    with its weight-decay groups) with its linear LR schedule, in float32 or bf16 autocast; a
    run resumed from the mid-epoch checkpoint (optimizer.pt, scheduler.pt, RNG states) with
    resume_from_checkpoint ends where the uninterrupted run does."""
    full = hf_trainer(tmp_path / "full", name, fused, route, bf16)
    full.train()
    interrupted = hf_trainer(tmp_path / "resumed", name, fused, route, bf16, stop_at=STEPS // 2)
    interrupted.train()
    assert interrupted.state.global_step == STEPS // 2
    checkpoint = tmp_path / "resumed" / f"checkpoint-{STEPS // 2}"
    assert (checkpoint / "optimizer.pt").is_file()
    resumed = hf_trainer(tmp_path / "resumed", name, fused, route, bf16)
    with StepCount() as count:
        resumed.train(resume_from_checkpoint=str(checkpoint))
    assert count.steps == STEPS - STEPS // 2
    assert full.state.global_step == resumed.state.global_step == STEPS
    assert full.accelerator.native_amp == resumed.accelerator.native_amp == bf16  # bf16 autocast on CPU
    assert_same_run(resumed.model, unwrap(resumed.optimizer), full.model, unwrap(full.optimizer), name)
    assert resumed.lr_scheduler.get_last_lr() == full.lr_scheduler.get_last_lr() != [hparams(name)["lr"]] * 2


# --- Lightning Trainer.fit -------------------------------------------------------------------


def classification_data(n=8, features=6, classes=3):
    generator = torch.Generator().manual_seed(2)
    x = torch.randn(n, features, generator=generator)
    return torch.utils.data.TensorDataset(x, torch.randint(0, classes, (n,), generator=generator))


class LitClassifier(pl.LightningModule):
    """A small MLP whose configure_optimizers returns LSGD/MLSGD with a per-step LR schedule."""

    def __init__(self, name, fused):
        super().__init__()
        torch.manual_seed(0)
        self.net = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.Tanh(), torch.nn.Linear(16, 3))
        self.name, self.fused = name, fused

    def training_step(self, batch, batch_idx):
        x, y = batch
        return F.cross_entropy(self.net(x).float(), y)

    def configure_optimizers(self):
        optimizer = make_optimizer(self.name, self.fused, self.parameters())
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.7)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


def lightning_fit(tmp_path, name, fused, precision, max_epochs, ckpt_path=None):
    """fit() on two batches per epoch, gradients clipped (after the GradScaler's unscaling in
    16-mixed); ModelCheckpoint saves every epoch's end. With fused=True the optimizer takes
    the GradScaler's scale itself (_step_supports_amp_scaling, as torch's fused SGD), and
    Lightning's mixed precisions refuse to clip for such optimizers: those cases do not clip."""
    module = LitClassifier(name, fused)
    precision_args = {"plugins": [MixedPrecision("16-mixed", "cpu")]} if precision == "16-mixed" \
        else {"precision": precision}
    clip = None if fused is True and precision in ("16-mixed", "bf16-mixed") else 1.0
    trainer = pl.Trainer(
        accelerator="cpu", devices=1, max_epochs=max_epochs, gradient_clip_val=clip, logger=False,
        enable_progress_bar=False, enable_model_summary=False,
        callbacks=[ModelCheckpoint(dirpath=tmp_path, filename="{epoch}", save_top_k=-1, every_n_epochs=1)],
        **precision_args)
    loader = torch.utils.data.DataLoader(classification_data(), batch_size=4, shuffle=False)
    trainer.fit(module, loader, ckpt_path=ckpt_path)
    return trainer, module


# Lightning's precision flag "16-mixed" with accelerator="cpu" is rewritten to "bf16-mixed"
# (a warning says so: accelerator_connector.py), so float16 AMP on CPU is asked for the way
# Lightning's API allows: its MixedPrecision("16-mixed", "cpu") plugin, with
# torch.amp.GradScaler("cpu").
PRECISIONS = ["32-true", "bf16-mixed", "16-mixed", "bf16-true"]


@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("name, fused", OPTIMIZERS)
def test_lightning_fit_resumes_bit_for_bit(tmp_path, name, fused, precision):
    """configure_optimizers' optimizer and step-wise scheduler under Trainer.fit; resuming
    from the ModelCheckpoint of the first epoch with fit(ckpt_path=...) ends where the
    uninterrupted run does (with 16-mixed, the GradScaler's state too)."""
    epochs = STEPS // 2  # two batches an epoch
    full, full_module = lightning_fit(tmp_path / "full", name, fused, precision, epochs)
    lightning_fit(tmp_path / "resumed", name, fused, precision, 1)
    checkpoint = tmp_path / "resumed" / "epoch=0.ckpt"
    assert checkpoint.is_file()
    with StepCount() as count:
        resumed, resumed_module = lightning_fit(tmp_path / "resumed", name, fused, precision, epochs, str(checkpoint))
    assert count.steps == STEPS - STEPS // 2
    assert full.global_step == resumed.global_step == STEPS
    assert_same_run(resumed_module, resumed.optimizers[0], full_module, full.optimizers[0], name)
    assert resumed.lr_scheduler_configs[0].scheduler.state_dict() == full.lr_scheduler_configs[0].scheduler.state_dict()
    if precision == "16-mixed":
        scaler, resumed_scaler = full.precision_plugin.scaler, resumed.precision_plugin.scaler
        assert isinstance(scaler, torch.amp.GradScaler) and scaler.is_enabled()
        assert_identical(resumed_scaler.state_dict(), scaler.state_dict(), "GradScaler")
    if precision == "bf16-true":
        assert all(p.dtype == torch.bfloat16 for p in full_module.parameters())
    else:
        assert all(p.dtype == torch.float32 for p in full_module.parameters())


# --- accelerate -------------------------------------------------------------------------------


def accelerate_run(tmp_path, name, fused, mixed_precision, steps, save_after=None, load=False):
    """accelerate's loop: prepare(model, optimizer, dataloader, scheduler), backward, step;
    save_state after ``save_after`` steps, or load_state and skip_first_batches to resume."""
    accelerator = accelerate.Accelerator(cpu=True, mixed_precision=mixed_precision, project_dir=str(tmp_path))
    assert accelerator.native_amp == (mixed_precision == "bf16")  # bf16 autocast on CPU
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.Tanh(), torch.nn.Linear(16, 3))
    optimizer = make_optimizer(name, fused, model.parameters())
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.7)
    loader = torch.utils.data.DataLoader(classification_data(n=4 * STEPS), batch_size=4, shuffle=False)
    model, optimizer, loader, scheduler = accelerator.prepare(model, optimizer, loader, scheduler)
    done = 0
    if load:
        accelerator.load_state(str(tmp_path / "state"))
        done = STEPS // 2
        loader = accelerator.skip_first_batches(loader, done)
    for x, y in loader:
        loss = F.cross_entropy(model(x).float(), y)
        accelerator.backward(loss)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()
        done += 1
        if done == save_after:
            accelerator.save_state(str(tmp_path / "state"))
        if done == steps:
            break
    AcceleratorState._reset_state(True)
    return accelerator.unwrap_model(model), optimizer, scheduler


@pytest.mark.parametrize("mixed_precision", ["no", "bf16"])
@pytest.mark.parametrize("name, fused", OPTIMIZERS)
def test_accelerate_resumes_bit_for_bit(tmp_path, name, fused, mixed_precision):
    """The prepared (wrapped) optimizer steps ours; save_state/load_state carry its state, the
    scheduler's and the model's, and the resumed run ends where the uninterrupted one does."""
    model, optimizer, scheduler = accelerate_run(tmp_path / "full", name, fused, mixed_precision, STEPS)
    accelerate_run(tmp_path / "resumed", name, fused, mixed_precision, STEPS // 2, save_after=STEPS // 2)
    with StepCount() as count:
        resumed_model, resumed_optimizer, resumed_scheduler = accelerate_run(
            tmp_path / "resumed", name, fused, mixed_precision, STEPS, load=True)
    assert count.steps == STEPS - STEPS // 2
    assert isinstance(optimizer, accelerate.optimizer.AcceleratedOptimizer)
    assert_same_run(resumed_model, unwrap(resumed_optimizer), model, unwrap(optimizer), name)
    assert resumed_scheduler.state_dict() == scheduler.state_dict()
    assert scheduler.get_last_lr()[0] == pytest.approx(hparams(name)["lr"] * 0.7 ** STEPS)


# --- timm --------------------------------------------------------------------------------------

# timm creates optimizers by name from its registry; a package's optimizer joins it as an
# OptimInfo (the class may be given as an import string, imported on first use).
TIMM_OPTIMIZERS = {
    "LSGD": timm.optim.OptimInfo(name="lsgd", opt_class="torch_mlsgd.LSGD", description="Laplacian smoothing SGD",
                                 has_eps=False, has_momentum=True),
    "MLSGD": timm.optim.OptimInfo(name="mlsgd", opt_class="torch_mlsgd.MLSGD",
                                  description="Laplacian smoothing SGD, scheduled smoothing", has_eps=False,
                                  has_momentum=True),
    "LSAdamW": timm.optim.OptimInfo(name="lsadamw", opt_class="torch_mlsgd.LSAdamW",
                                    description="AdamW on Laplacian-smoothed gradients", has_betas=True),
}


@pytest.fixture
def timm_registry():
    """LSGD and MLSGD in timm's default registry for one test, removed afterwards."""
    for info in TIMM_OPTIMIZERS.values():
        default_registry.register(info)
    yield
    for info in TIMM_OPTIMIZERS.values():
        default_registry._optimizers.pop(info.name)


def timm_run(tmp_path, name, fused, amp, steps, resume=None):
    """timm's train.py loop in small: create_model, create_optimizer_v2 (weight decay off for
    biases and norms), create_scheduler_v2 stepped per update, autocast with NativeScaler for
    float16; CheckpointSaver after every epoch (one step), resume_checkpoint to resume."""
    torch.manual_seed(0)
    model = timm.create_model("test_resnet", pretrained=False, num_classes=3)
    kwargs = optimizer_kwargs(name, fused)
    optimizer = timm.optim.create_optimizer_v2(model, TIMM_OPTIMIZERS[name].name, **kwargs)
    scheduler, _ = timm.scheduler.create_scheduler_v2(optimizer, sched="cosine", num_epochs=STEPS,
                                                      updates_per_epoch=1, warmup_epochs=0, step_on_epochs=False)
    scaler = timm.utils.NativeScaler(device="cpu") if amp == "float16" else None
    tmp_path.mkdir(parents=True, exist_ok=True)
    saver = timm.utils.CheckpointSaver(model, optimizer, amp_scaler=scaler, checkpoint_dir=str(tmp_path),
                                       recovery_dir=str(tmp_path))
    start = 0
    if resume is not None:
        start = timm.models.resume_checkpoint(model, resume, optimizer=optimizer, loss_scaler=scaler, log_info=False)
    generator = torch.Generator().manual_seed(4)
    batches = [(torch.randn(4, 3, 32, 32, generator=generator), torch.randint(0, 3, (4,), generator=generator))
               for _ in range(STEPS)]
    taken = []  # the optimizer steps taken (a GradScaler skips those with non-finite gradients)
    model.train()
    for epoch in range(start, steps):
        x, y = batches[epoch]
        with torch.autocast("cpu", dtype=torch.float16, enabled=amp == "float16"):
            loss = F.cross_entropy(model(x), y)
        if scaler is not None:
            # A skipped step lowers the scale (step() is still called when the optimizer
            # takes the scaler's found_inf itself: fused=True).
            scale = scaler._scaler.get_scale()
            scaler(loss, optimizer, parameters=model.parameters())
            taken += [1] if scaler._scaler.get_scale() >= scale else []
        else:
            loss.backward()
            optimizer.step()
            taken.append(1)
        optimizer.zero_grad()
        scheduler.step_update(num_updates=epoch + 1)
        saver.save_checkpoint(epoch)
    return model, optimizer, scaler, len(taken)


@pytest.mark.parametrize("amp", ["float32", "float16"])
@pytest.mark.parametrize("name, fused", OPTIMIZERS)
def test_timm_create_optimizer_v2_resumes_bit_for_bit(tmp_path, timm_registry, name, fused, amp):
    """create_optimizer_v2(model, "lsgd"/"mlsgd", ...) builds ours with timm's parameter
    groups; timm's CheckpointSaver and resume_checkpoint (weights_only loading) resume it bit
    for bit, with the cosine schedule and, in float16, the NativeScaler's GradScaler."""
    model, optimizer, scaler, taken = timm_run(tmp_path / "full", name, fused, amp, STEPS)
    first_taken = timm_run(tmp_path / "resumed", name, fused, amp, STEPS // 2)[3]
    checkpoint = tmp_path / "resumed" / f"checkpoint-{STEPS // 2 - 1}.pth.tar"
    assert checkpoint.is_file()
    resumed_model, resumed_optimizer, resumed_scaler, then_taken = timm_run(
        tmp_path / "resumed", name, fused, amp, STEPS, resume=str(checkpoint))
    assert first_taken + then_taken == taken  # the resumed run took the second half's steps only
    assert_same_run(resumed_model, resumed_optimizer, model, optimizer, name, steps=taken)
    assert taken == STEPS or (amp == "float16" and taken > 0)
    decays = sorted(group["weight_decay"] for group in optimizer.param_groups)
    assert decays == [0.0, hparams(name)["weight_decay"]]  # timm's groups: no decay for biases and norms
    assert all(group.get("momentum", 0.0) == hparams(name).get("momentum", 0.0) for group in optimizer.param_groups)
    assert all(math.isfinite(group["lr"]) and group["lr"] < hparams(name)["lr"] for group in optimizer.param_groups)
    if scaler is not None:
        assert_identical(resumed_scaler.state_dict(), scaler.state_dict(), "GradScaler")
