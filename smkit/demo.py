"""`python -m smkit.demo`: the shipped model decodes the same prompt with and without SM, in the terminal.

`make demo` runs the quickstart notebook headless instead; this is the view without a notebook.
"""
from __future__ import annotations

import argparse
import textwrap

import smkit


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m smkit.demo", description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="shakespeare-sm", help="a text model: shipped name or checkpoint folder")
    ap.add_argument("--prompt", default="ROMEO.\n")
    ap.add_argument("--length", type=int, default=96, help="tokens per sample, prompt included")
    ap.add_argument("--steps", type=int, default=24, help="denoising steps (a low budget: 4 tokens a step)")
    ap.add_argument("--samples", type=int, default=2)
    ap.add_argument("--strategy", default="confidence")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    model = smkit.load_pretrained(args.model)
    w = model.soft_mask.values()
    print(f"model: {args.model} | k={w['k']} scale={w['scale']:.3f} steepness={w['steepness']:.2f} "
          f"centre={w['centre']:.3f} | length {args.length}, {args.steps} steps, strategy {args.strategy}\n")
    for soft in (False, True):
        g = smkit.generate(model, prompt=args.prompt, num_samples=args.samples, length=args.length,
                           steps=args.steps, strategy=args.strategy, soft_mask=soft, seed=args.seed, trace=False)
        print(f"=== {'soft-masked' if soft else 'binary'} decoding: {g.nfe} forward passes, {g.wall_time:.2f} s ===")
        for i, text in enumerate(g.texts):
            print(f"--- sample {i}\n{textwrap.indent(text.strip(), '    ')}")
        print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
