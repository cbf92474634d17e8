"""The `smkit` command: `smkit train`, `smkit sample`, `smkit run` (notebooks).

`smkit train` runs unchanged under `accelerate launch -m smkit.cli train ...` (docs/distributed.md)."""
from __future__ import annotations

import argparse
import dataclasses
import sys
import typing

from .core.config import ConfigError, load_file


def _parse_bool(text: str) -> bool:
    low = text.lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _optional(kind):
    def parse(text: str):
        return None if text.lower() in ("none", "null", "") else kind(text)
    return parse


def _field_comments(cls) -> dict:
    """The trailing `# comment` of each dataclass field, used as its --help text."""
    import inspect
    out = {}
    for line in inspect.getsource(cls).splitlines():
        line = line.strip()
        if ":" in line and "#" in line and not line.startswith(("#", '"')):
            out[line.split(":", 1)[0].strip()] = line.split("#", 1)[1].strip()
    return out


def add_dataclass_options(parser: argparse.ArgumentParser, cls) -> None:
    """One --flag per field; mapping fields (dict) have no single-value flag: the caller adds a KEY=VALUE one."""
    hints = typing.get_type_hints(cls)
    helps = _field_comments(cls)
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        args = typing.get_args(hint)
        base = next((a for a in args if a is not type(None)), hint) if args else hint
        if base is dict:
            continue
        parse = _parse_bool if base is bool else base
        if type(None) in args:
            parse = _optional(parse)
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        parser.add_argument(f"--{f.name.replace('_', '-')}", dest=f.name, type=parse, default=argparse.SUPPRESS,
                            metavar=base.__name__.upper(), help=f"{helps.get(f.name, '')} (default: {default!r})")


def _task_param(text: str) -> tuple:
    from .tasks import TaskError, parse_param
    try:
        return parse_param(text)
    except TaskError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _cmd_train(args) -> int:
    from .training.train import TrainConfig, train
    values = load_file(args.config) if args.config else {}
    pairs = dict(vars(args).pop("task_param", None) or [])
    if pairs:  # --task-param KEY=VALUE flags win over the config file's task_params, key by key
        values["task_params"] = {**(values.get("task_params") or {}), **pairs}
    values.update({k: v for k, v in vars(args).items()
                   if k not in ("config", "func", "command", "dry_run", "dry_run_processes")})
    if args.dry_run:
        from .training.dry_run import dry_run
        print(dry_run(TrainConfig.from_dict(values), processes=args.dry_run_processes).summary())
        return 0
    result = train(TrainConfig.from_dict(values))
    if result.rank != 0:
        return 0
    last = result.history.iloc[-1]
    print(f"trained {int(last.step)} updates, {int(last.forward_passes)} forward passes; "
          f"validation bound {last.val_bound:.4f} (binary), {last.val_bound_sm:.4f} (SM); model in {result.out_dir / 'model'}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from .training.train import TrainConfig
    parser = argparse.ArgumentParser(prog="smkit", description="Soft-masked diffusion language models.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("train", help="train a binary or soft-masked MDLM",
                       description="Train a denoiser. Fields come from --config (YAML/JSON) and flags (flags win).")
    p.add_argument("--config", help="YAML or JSON file of TrainConfig fields")
    p.add_argument("--dry-run", dest="dry_run", action="store_true",
                   help="check the config offline on CPU: validate it, count the full-size model's parameters, train "
                        "2 updates of that model on a tiny local sample through the same data path, write nothing "
                        "permanent (smkit/dry_run.py)")
    p.add_argument("--dry-run-processes", dest="dry_run_processes", type=int, default=1, metavar="N",
                   help="with --dry-run: the number of processes the recipe will be launched with; the batch must "
                        "divide by it (default: 1)")
    add_dataclass_options(p, TrainConfig)
    p.add_argument("--task-param", dest="task_param", action="append", type=_task_param, default=argparse.SUPPRESS,
                   metavar="KEY=VALUE", help="with --corpus task:NAME: one task parameter (repeatable), e.g. "
                                             "--task-param givens=35; values are read as integers, floats or "
                                             "true/false, else text (TrainConfig.task_params)")
    p.set_defaults(func=_cmd_train)
    for register in _EXTRA_COMMANDS:
        register(sub)
    return parser


def _cmd_sample(args) -> int:
    import json
    from pathlib import Path

    from .io.formats import load_pretrained
    from .sampling.loop import SamplingConfig, generate

    opts = {k: v for k, v in vars(args).items() if k not in ("func", "command", "model", "out", "trace_file")}
    trace_file = args.trace_file
    if trace_file is None:
        trace_file = str(Path(args.out).with_suffix("")) + ".trace.safetensors"
    elif trace_file.lower() in ("none", ""):
        trace_file = None
    model = load_pretrained(args.model)
    if opts.get("infill") is not None and "length" not in opts:
        opts["length"] = _infill_length(model, opts.get("prompt"), opts["infill"])
    cfg = SamplingConfig(**opts)
    g = generate(model, **{k: v for k, v in vars(cfg).items() if k not in ("device",)},
                 device=cfg.device, trace=trace_file is not None, progress=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    completions = g.completions or [None] * len(g.tokens)
    with out.open("w", encoding="utf-8") as f:
        for i, row in enumerate(g.tokens.tolist()):
            f.write(json.dumps({"sample": cfg.first_sample + i, "text": g.texts[i] if g.texts else None,
                                "completion": completions[i], "tokens": row, "nfe": g.nfe}) + "\n")
    if trace_file is not None:
        g.trace.save(trace_file)
    print(f"{len(g.tokens)} samples, {g.nfe} forward passes, {g.wall_time:.2f}s; texts in {out}"
          + (f", trace in {trace_file}" if trace_file else ""))
    return 0


def _infill_length(model, prompt, infill) -> int:
    """Without --length, an infill run stops at the template's end: prompt + template tokens."""
    from .sampling.loop import _token_ids
    prompt_ids = [] if prompt is None else _token_ids(prompt, "prompt", model, allow_mask=False)
    return len(prompt_ids) + len(_token_ids(infill, "infill", model, allow_mask=True))


def _register_sample(sub) -> None:
    from .sampling.loop import SamplingConfig
    p = sub.add_parser("sample", help="decode samples (texts as JSONL, plus a trace file)",
                       description="Sample from a model with any unmasking rule, with or without soft-masking.")
    p.add_argument("--model", default=None, help="shipped model name or checkpoint folder (default: the shipped default)")
    p.add_argument("--out", default="samples.jsonl", help="JSONL file, one line per sample (default: samples.jsonl)")
    p.add_argument("--trace-file", dest="trace_file", default=None,
                   help="trace file (safetensors); default <out>.trace.safetensors; 'none' to skip tracing")
    add_dataclass_options(p, SamplingConfig)
    length = p._option_string_actions["--length"]
    length.help = length.help.replace("(default: 128)", "(default: 128; with --infill: prompt + template)")
    p.set_defaults(func=_cmd_sample)


def _register_run(sub) -> None:
    from .notebooks import register
    register(sub)


_EXTRA_COMMANDS: list = [_register_sample, _register_run]


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ConfigError, ValueError) as err:
        print(f"smkit {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
