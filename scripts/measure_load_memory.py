"""Resident memory of loading a LLaDA-style model: its own folder (native) and the smkit folder `smkit convert`
makes of it. Each load runs in a fresh process; the figures are the peak RSS during the load minus the RSS before
it (after imports), sampled every 2 ms, and the RSS after the load and after a first forward (weights read from a
memory-mapped file become resident only when used).

    python scripts/measure_load_memory.py DIR [--hidden 1024 --layers 8 --vocab 32000]
    python scripts/measure_load_memory.py DIR --load FOLDER     # one folder only

writes DIR/llada (a random bf16 LLaDA folder), converts it to DIR/converted (`smkit convert`, default --dtype keep),
and prints one JSON line per load."""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_of(fn):
    start, peak, stop = rss(), [rss()], threading.Event()

    def watch():
        while not stop.is_set():
            peak[0] = max(peak[0], rss())
            time.sleep(0.002)
    t = threading.Thread(target=watch, daemon=True)
    t.start()
    out = fn()
    stop.set()
    t.join()
    return out, max(peak[0], rss()) - start


def make(folder: Path, hidden: int, layers: int, vocab: int) -> None:
    import torch
    from safetensors.torch import save_file
    from smkit.io.native_formats import NATIVE_FORMATS
    from smkit.models.bidirectional import DecoderShape, expected_weights, empty_decoder

    cfg = json.loads((Path(__file__).resolve().parents[1] / "tests/fixtures/llada_tiny/config.json").read_text())
    cfg.update(d_model=hidden, n_heads=hidden // 64, n_kv_heads=hidden // 64, n_layers=layers, mlp_hidden_size=4 * hidden,
               vocab_size=vocab, embedding_size=vocab, mask_token_id=vocab - 1, eos_token_id=vocab - 2,
               pad_token_id=vocab - 2, max_sequence_length=512, torch_dtype="bfloat16")
    fmt = NATIVE_FORMATS["llada"]
    shape = fmt.shape(cfg, str(folder))
    gen = torch.Generator().manual_seed(0)
    weights = {}
    for name, size in expected_weights(empty_decoder(shape)).items():
        w = torch.ones(size) if name.endswith("norm.weight") else torch.randn(size, generator=gen) * 0.02
        weights[fmt.to_folder(name)] = w.to(torch.bfloat16)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(cfg, indent=2))
    save_file(weights, str(folder / "model.safetensors"))


def load(path: str) -> None:
    import torch
    import smkit
    torch.set_num_threads(1)

    def forward(model):
        x = torch.arange(16).unsqueeze(0) % (model.mask_id - 1)
        x[:, ::3] = model.mask_id
        with torch.no_grad():
            logits = model(x).double()
        return float(logits[torch.isfinite(logits)].sum())

    start = rss()
    model, load_peak = peak_of(lambda: smkit.load_pretrained(path))
    after_load = rss() - start
    checksum, _ = peak_of(lambda: forward(model))
    size = sum(f.stat().st_size for f in Path(path).glob("*.safetensors"))
    print(json.dumps({"loaded": path, "stored_mb": round(size / 2**20, 1),
                      "load_peak_increase_mb": round(load_peak / 2**20, 1),
                      "resident_after_first_forward_mb": round((rss() - start) / 2**20, 1),
                      "resident_after_load_mb": round(after_load / 2**20, 1),
                      "dtype": str(model.embedding_weight.dtype), "logits_sum": checksum}), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dir")
    ap.add_argument("--hidden", type=int, default=1024)
    ap.add_argument("--layers", type=int, default=8)
    ap.add_argument("--vocab", type=int, default=32000)
    ap.add_argument("--load", help="measure loading this folder only")
    args = ap.parse_args()
    if args.load:
        return load(args.load)
    root = Path(args.dir)
    if not (root / "llada" / "model.safetensors").is_file():
        make(root / "llada", args.hidden, args.layers, args.vocab)
    if not (root / "converted" / "smkit.json").is_file():
        subprocess.run([sys.executable, "-m", "smkit.cli", "convert", str(root / "llada"), str(root / "converted")],
                       check=True)
    for path in (root / "llada", root / "converted"):
        subprocess.run([sys.executable, __file__, args.dir, "--load", str(path)], check=True)


if __name__ == "__main__":
    main()
