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


def _sm_value(text: str) -> tuple:
    from .core.soft_mask_params import FIELDS
    key, eq, value = text.partition("=")
    if not eq or key not in FIELDS:
        raise argparse.ArgumentTypeError(f"--sm {text!r}: give KEY=VALUE with KEY one of {list(FIELDS)}")
    try:
        return key, int(value) if key == "k" else float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--sm {text!r}: {key} must be a number") from None


def _cmd_train(args) -> int:
    from .training.train import TrainConfig, train
    values = load_file(args.config) if args.config else {}
    pairs = dict(vars(args).pop("task_param", None) or [])
    if pairs:  # --task-param KEY=VALUE flags win over the config file's task_params, key by key
        values["task_params"] = {**(values.get("task_params") or {}), **pairs}
    sm = dict(vars(args).pop("sm", None) or [])
    if sm:  # --sm KEY=VALUE likewise over the file's sm
        values["sm"] = {**(values.get("sm") or {}), **sm}
    values.update({k: v for k, v in vars(args).items()
                   if k not in ("config", "func", "command", "dry_run", "dry_run_processes")})
    overwrite = values.pop("overwrite")
    if args.dry_run:
        from .training.dry_run import dry_run
        print(dry_run(TrainConfig.from_dict(values), processes=args.dry_run_processes).summary())
        return 0
    cfg = TrainConfig.from_dict(values).validate()
    import os
    from pathlib import Path
    from .io.outputs import run_folder
    if os.environ.get("RANK", "0") in ("", "0"):   # under `accelerate launch` only rank 0 writes, and checks
        run_folder(Path(cfg.out_dir).expanduser(), "--out-dir", resume=cfg.resume, overwrite=overwrite)
    result = train(cfg)
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
                        "permanent (smkit/training/dry_run.py)")
    p.add_argument("--dry-run-processes", dest="dry_run_processes", type=int, default=1, metavar="N",
                   help="with --dry-run: the number of processes the recipe will be launched with; the batch must "
                        "divide by it (default: 1)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace a run already in --out-dir (without it, and without --resume true, such a folder "
                        "stops the command before any compute)")
    add_dataclass_options(p, TrainConfig)
    p.add_argument("--task-param", dest="task_param", action="append", type=_task_param, default=argparse.SUPPRESS,
                   metavar="KEY=VALUE", help="with --corpus task:NAME: one task parameter (repeatable), e.g. "
                                             "--task-param givens=35; values are read as integers, floats or "
                                             "true/false, else text (TrainConfig.task_params)")
    p.add_argument("--sm", dest="sm", action="append", type=_sm_value, default=argparse.SUPPRESS,
                   metavar="KEY=VALUE", help="one soft-masking value to start from (repeatable): k, scale, centre or "
                                             "steepness, e.g. --sm scale=0.1; with --init-from the others stay the "
                                             "base's (TrainConfig.sm)")
    p.set_defaults(func=_cmd_train)
    for register in _EXTRA_COMMANDS:
        register(sub)
    return parser


def _cmd_sample(args) -> int:
    import json
    from pathlib import Path

    from .io.formats import load_pretrained
    from .sampling.loop import SamplingConfig, generate
    from .core.trace_file import SUFFIX
    from .sampling.trace_sink import TraceFile

    opts = {k: v for k, v in vars(args).items()
            if k not in ("func", "command", "model", "out", "trace_file", "ema", "tokenizer")}
    trace_file = args.trace_file
    if trace_file is None:
        trace_file = str(Path(args.out).with_suffix("")) + SUFFIX
    elif trace_file.lower() in ("none", ""):
        trace_file = None
    _check_outputs(args.out, trace_file)
    model = load_pretrained(args.model, **_model_options(args))
    if opts.get("infill") is not None and "length" not in opts:
        opts["length"] = _infill_length(model, opts.get("prompt"), opts["infill"])
    cfg = SamplingConfig(**opts)
    # the trace is written while decoding (memory: one step); like the texts, it replaces an earlier run's file
    trace = False if trace_file is None else TraceFile(trace_file, overwrite=True)
    g = generate(model, **{k: v for k, v in vars(cfg).items() if k not in ("device",)},
                 device=cfg.device, trace=trace, progress=True)
    out = Path(args.out)
    completions = g.completions or [None] * len(g.tokens)
    with out.open("w", encoding="utf-8") as f:
        for i, row in enumerate(g.tokens.tolist()):
            f.write(json.dumps({"sample": cfg.first_sample + i, "text": g.texts[i] if g.texts else None,
                                "completion": completions[i], "tokens": row, "nfe": g.nfe}) + "\n")
    print(f"{len(g.tokens)} samples, {g.nfe} forward passes, {g.wall_time:.2f}s; texts in {out}"
          + (f", trace in {trace_file}" if trace_file else ""))
    return 0


def _check_outputs(out: str, trace_file: str | None) -> None:
    """Before loading or decoding anything: both files can be written, and they are two different files."""
    from pathlib import Path

    from .io.outputs import writable_file
    writable_file(out, "--out")
    if trace_file is not None:
        if Path(trace_file).absolute() == Path(out).absolute():
            raise ConfigError(f"--trace-file={trace_file!r} is the --out file too; give the trace another name "
                              f"(or 'none')")
        writable_file(trace_file, "--trace-file")


def _infill_length(model, prompt, infill) -> int:
    """Without --length, an infill run stops at the template's end: prompt + template tokens."""
    from .sampling.loop import _token_ids
    prompt_ids = [] if prompt is None else _token_ids(prompt, "prompt", model, allow_mask=False)
    return len(prompt_ids) + len(_token_ids(infill, "infill", model, allow_mask=True))


def _register_sample(sub) -> None:
    from .sampling.loop import SamplingConfig
    p = sub.add_parser("sample", help="decode samples (texts as JSONL, plus a trace file)",
                       description="Sample from a model with any unmasking rule, with or without soft-masking.")
    p.add_argument("--model", default=None, help="shipped model name, checkpoint folder, paper-format file, or "
                   "LLaDA / Dream folder (default: the shipped default)")
    p.add_argument("--out", default="samples.jsonl", help="JSONL file, one line per sample (default: samples.jsonl)")
    _add_model_options(p)
    p.add_argument("--trace-file", dest="trace_file", default=None,
                   help="trace file (smkit's trace format, docs/traces.md); default <out>.trace; 'none' to skip "
                        "tracing")
    add_dataclass_options(p, SamplingConfig)
    length = p._option_string_actions["--length"]
    length.help = length.help.replace("(default: 128)", "(default: 128; with --infill: prompt + template)")
    p.set_defaults(func=_cmd_sample)


def _register_run(sub) -> None:
    from .notebooks import register
    register(sub)


def _add_model_options(p) -> None:
    p.add_argument("--ema", type=_optional(_parse_bool), default=None, metavar="BOOL",
                   help="a paper checkpoint's weights: true = EMA (an error without), false = raw; default: EMA when "
                        "the file has it")
    p.add_argument("--tokenizer", default=None, help="a paper-format, LLaDA or Dream model's tokenizer: a local "
                   "folder holding tokenizer.json or vocab.json + merges.txt (GPT-2's for the paper's models); "
                   "default: the model folder's own, else ids only")


def _model_options(args) -> dict:
    return {"ema": args.ema, "tokenizer": args.tokenizer}


CONVERT_DTYPES = ("keep", "float32", "bfloat16", "float16")


def _cmd_convert(args) -> int:
    import torch

    from .io.formats import load_pretrained, save_pretrained

    model = load_pretrained(args.src, **_model_options(args))
    # keep: the dtype the source's weights load in (a LLaDA / Dream folder's stored one), so a bf16 8B model is
    # not written as 30 GB of fp32
    dtype = model.embedding_weight.dtype if args.dtype == "keep" else getattr(torch, args.dtype)
    out = save_pretrained(model, args.dst, dtype=dtype)
    source = model.source or {}
    print(f"converted {args.src} ({source.get('format', 'smkit folder')}, {source.get('weights', 'stored')} weights) "
          f"to the smkit folder {out}, weights in {str(dtype).removeprefix('torch.')}")
    return 0


def _register_convert(sub) -> None:
    p = sub.add_parser("convert", help="write a model file of another format as an smkit folder",
                       description="Read SRC (a Lightning .ckpt of the soft-masking paper's code, a folder in MDLM's "
                                   "Hugging Face layout, a LLaDA or Dream folder, or an smkit folder) without running "
                                   "any code it holds, and "
                                   "write it to DST as an smkit folder (safetensors), which loads fast afterwards.")
    p.add_argument("src", help="the model file or folder to read")
    p.add_argument("dst", help="the smkit folder to write (new, empty, or an smkit folder to replace)")
    p.add_argument("--dtype", choices=CONVERT_DTYPES, default="keep",
                   help="the dtype the weights are written in: keep (default) = the dtype the source's weights load "
                        "in (a LLaDA or Dream folder's stored dtype, e.g. bfloat16), or float32, bfloat16, float16; "
                        "the three SM scalars stay float32")
    _add_model_options(p)
    p.set_defaults(func=_cmd_convert)


_EXTRA_COMMANDS: list = [_register_sample, _register_run, _register_convert]


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code = args.func(args)
        sys.stdout.flush()
        return code
    except BrokenPipeError:
        return _reader_left()
    except (ConfigError, ValueError) as err:
        print(f"smkit {args.command}: error: {err}", file=sys.stderr)
        return 2


def _reader_left() -> int:
    """The reader of our output went away (`smkit ... | head`): stop quietly, as `cat` does, instead of printing
    a traceback. stdout points at /dev/null from here on, so the interpreter's last flush cannot fail again."""
    import os
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return 141  # 128 + SIGPIPE: what a shell reports for a command stopped by a closed pipe


if __name__ == "__main__":
    sys.exit(main())
