#!/usr/bin/env python3
"""PyTorch counterpart of `tensorgrid bench`: the same five architectures, data, batch sizes,
AdamW settings and f32, timing only the training step (forward, cross-entropy, backward, step,
loss read back). Prints JSON lines like the Rust bench.

    python scripts/bench_torch.py --threads 1 [--device cpu|cuda] [--precision f32|bf16|f16]
"""
import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.numpy import load_file

ROOT = Path(__file__).resolve().parent.parent


def spec(name):
    return json.loads((ROOT / "jobs" / f"{name}.json").read_text())


class Mlp(nn.Module):
    def __init__(self, sizes):
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes, sizes[1:]))

    def forward(self, x):
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = F.relu(x)
        return x


class Cnn(nn.Module):
    def __init__(self, shape, channels, classes):
        super().__init__()
        self.shape = shape
        convs, c_in = [], shape[0]
        for c in channels:
            convs.append(nn.Conv2d(c_in, c, 3, padding=1))
            c_in = c
        self.convs = nn.ModuleList(convs)
        self.fc = nn.Linear(c_in * (shape[1] // 2) * (shape[2] // 2), classes)

    def forward(self, x):
        x = x.view(x.shape[0], *self.shape)
        for conv in self.convs:
            x = F.relu(conv(x))
        return self.fc(F.max_pool2d(x, 2).flatten(1))


class ResBlock(nn.Module):
    def __init__(self, c_in, width):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, width, 3, padding=1, bias=False)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1, bias=False)
        self.n1, self.n2 = nn.GroupNorm(1, width), nn.GroupNorm(1, width)
        self.proj = nn.Conv2d(c_in, width, 1, bias=False) if c_in != width else None

    def forward(self, x):
        y = self.n2(self.conv2(F.relu(self.n1(self.conv1(x)))))
        return F.relu(y + (self.proj(x) if self.proj is not None else x))


class ResNet(nn.Module):
    """The engine's `resnet`: a 3x3 stem, stages of basic blocks with one-group group norms, a
    2x2 max-pool between stages, global average pooling, a linear classifier."""

    def __init__(self, shape, widths, blocks, classes):
        super().__init__()
        self.stem = nn.Conv2d(shape[0], widths[0], 3, padding=1, bias=False)
        self.stem_norm = nn.GroupNorm(1, widths[0])
        stages, c_in = [], widths[0]
        for w in widths:
            stage = []
            for _ in range(blocks):
                stage.append(ResBlock(c_in, w))
                c_in = w
            stages.append(nn.Sequential(*stage))
        self.stages = nn.ModuleList(stages)
        self.fc = nn.Linear(c_in, classes)
        self.shape = shape

    def forward(self, x):
        x = F.relu(self.stem_norm(self.stem(x.view(-1, *self.shape))))
        for i, stage in enumerate(self.stages):
            if i > 0:
                x = F.max_pool2d(x, 2)
            x = stage(x)
        return self.fc(x.mean((2, 3)))


class Block(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.heads = heads
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.fc, self.fc_proj = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)

    def forward(self, x, mask):
        b, t, d = x.shape
        hd = d // self.heads
        q, k, v = self.qkv(self.ln1(x)).view(b, t, 3, self.heads, hd).unbind(2)
        q, k, v = (z.transpose(1, 2) for z in (q, k, v))
        att = (q @ k.transpose(-1, -2)) / math.sqrt(hd) + mask
        y = (att.softmax(-1) @ v).transpose(1, 2).reshape(b, t, d)
        x = x + self.proj(y)
        return x + self.fc_proj(F.gelu(self.fc(self.ln2(x)), approximate="tanh"))


class CharTransformer(nn.Module):
    def __init__(self, vocab, layers, d, heads, context, tied=False):
        super().__init__()
        self.wte, self.wpe = nn.Embedding(vocab, d), nn.Embedding(context, d)
        self.blocks = nn.ModuleList(Block(d, heads) for _ in range(layers))
        self.ln_f, self.head = nn.LayerNorm(d), nn.Linear(d, vocab, bias=False)
        if tied:
            # GPT-2: the output layer is the token embedding.
            self.head.weight = self.wte.weight

    def forward(self, idx):
        t = idx.shape[1]
        mask = torch.full((t, t), float("-inf"), device=idx.device).triu(1)
        x = self.wte(idx) + self.wpe(torch.arange(t, device=idx.device))
        for blk in self.blocks:
            x = blk(x, mask)
        return self.head(self.ln_f(x))


def optimizer(model, s):
    o = s["training"]["optimizer"]
    return torch.optim.AdamW(model.parameters(), lr=o["lr"], weight_decay=o.get("weight_decay", 0.01), eps=1e-8)


PRECISION = "f32"


def timed(name, model, opt, x, y, items, unit, device, rounds, round_secs):
    """Median of `rounds` rounds of about `round_secs` each, after 3 warm-up steps (as in
    `tensorgrid bench`). Under --precision bf16/f16 on CUDA the forward pass and loss run
    under torch.autocast (f32 weights and optimizer: mixed precision, as the engine's), f16
    with a GradScaler; the CPU stays f32, as the engine's does."""
    half = {"bf16": torch.bfloat16, "f16": torch.float16}.get(PRECISION) if device == "cuda" else None
    scaler = torch.amp.GradScaler("cuda") if half == torch.float16 else None

    def step():
        with torch.autocast("cuda", dtype=half, enabled=half is not None):
            logits = model(x)
            loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
        else:
            loss.backward()
            opt.step()
        loss.item()

    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()

    t = time.perf_counter()
    for _ in range(3):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    per_round = max(1, math.ceil(round_secs / ((time.perf_counter() - t) / 3)))
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        for _ in range(per_round):
            step()
        times.append((time.perf_counter() - t) / per_round)
    secs = sorted(times)[len(times) // 2]
    row = {"model": name, "batch": items, "steps": per_round * rounds, "step_ms": secs * 1e3,
           "throughput": items / secs, "unit": unit,
           "precision": PRECISION if half is not None else "f32"}
    if device == "cuda":
        row["peak_mib"] = torch.cuda.max_memory_allocated() / 2**20
    print(json.dumps(row), flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--round-secs", type=float, default=0.4)
    ap.add_argument("--precision", choices=["f32", "bf16", "f16"], default="f32",
                    help="mixed precision on CUDA (autocast; the CPU stays f32)")
    ap.add_argument("--gpt2-spec", help="time only this gpt2 spec's model (e.g. GPT-2 small over a "
                    "tokens dataset), on random ids of its vocabulary")
    a = ap.parse_args()
    global PRECISION
    PRECISION = a.precision
    if PRECISION == "f32":
        # f32 as the engine computes it: no TF32 in matmuls or cuDNN convolutions.
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    dev = a.device
    if a.gpt2_spec:
        s = json.loads(Path(a.gpt2_spec).read_text())
        mg, fmt = s["model"], s["dataset"]["format"]
        vocab = fmt["vocab_size"]
        bs, ctx = s["training"]["batch_size"], mg["context"]
        ids = torch.randint(0, vocab, (bs, ctx + 1), generator=torch.Generator().manual_seed(0)).to(dev)
        m = CharTransformer(vocab, mg["layers"], mg["d_model"], mg["heads"], ctx, tied=True).to(dev)
        name = Path(a.gpt2_spec).stem
        timed(name, m, optimizer(m, s), ids[:, :-1], ids[:, 1:], bs * ctx, "tokens/s", dev, a.rounds, a.round_secs)
        return
    d = load_file(str(ROOT / "data" / "digits.safetensors"))
    x_all = torch.tensor(d["images"].astype(np.float32) / 16.0, device=dev)
    y_all = torch.tensor(d["labels"].astype(np.int64), device=dev)

    s = spec("digits-mlp")
    bs = s["training"]["batch_size"]
    m = Mlp([64, *s["model"]["hidden"], 10]).to(dev)
    timed("digits-mlp", m, optimizer(m, s), x_all[:bs], y_all[:bs], bs, "samples/s", dev, a.rounds, a.round_secs)

    s = spec("digits-cnn")
    bs = s["training"]["batch_size"]
    m = Cnn(s["model"]["input_shape"], s["model"]["channels"], 10).to(dev)
    timed("digits-cnn", m, optimizer(m, s), x_all[:bs], y_all[:bs], bs, "samples/s", dev, a.rounds, a.round_secs)

    s = spec("shapes-resnet")
    bs, mr = s["training"]["batch_size"], s["model"]
    shapes = np.frombuffer((ROOT / "data" / "shapes-cifar.bin").read_bytes(), dtype=np.uint8).reshape(-1, 3073)
    xs = torch.tensor(shapes[:bs, 1:].astype(np.float32) / 255.0, device=dev)
    ys = torch.tensor(shapes[:bs, 0].astype(np.int64), device=dev)
    m = ResNet(mr["input_shape"], mr["widths"], mr["blocks"], 10).to(dev)
    timed("shapes-resnet", m, optimizer(m, s), xs, ys, bs, "samples/s", dev, a.rounds, a.round_secs)

    s = spec("kjv-charlm")
    text = (ROOT / "data" / "kjv.txt").read_text()
    vocab = sorted(set(text))
    ids = torch.tensor([vocab.index(c) for c in text[:200_000]], device=dev)
    mc = s["model"]
    bs, ctx = s["training"]["batch_size"], mc["context"]
    xs = torch.stack([ids[b * ctx:(b + 1) * ctx] for b in range(bs)])
    ys = torch.stack([ids[b * ctx + 1:(b + 1) * ctx + 1] for b in range(bs)])
    m = CharTransformer(len(vocab), mc["layers"], mc["d_model"], mc["heads"], ctx).to(dev)
    timed("kjv-charlm", m, optimizer(m, s), xs, ys, bs * ctx, "tokens/s", dev, a.rounds, a.round_secs)

    # The BPE GPT-2: its 2,048 ids; which ids a batch holds does not change a step's time.
    s = spec("kjv-gpt2")
    mg = s["model"]
    vocab = s["dataset"]["format"]["vocab_size"]
    bs, ctx = s["training"]["batch_size"], mg["context"]
    ids = torch.randint(0, vocab, (bs, ctx + 1), generator=torch.Generator().manual_seed(0)).to(dev)
    m = CharTransformer(vocab, mg["layers"], mg["d_model"], mg["heads"], ctx, tied=True).to(dev)
    timed("kjv-gpt2", m, optimizer(m, s), ids[:, :-1], ids[:, 1:], bs * ctx, "tokens/s", dev, a.rounds, a.round_secs)


if __name__ == "__main__":
    main()
