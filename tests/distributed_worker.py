"""Run by tests/test_distributed.py under `accelerate launch`: trains the scenarios of a plan on every process.

Usage: distributed_worker.py PLAN.json. The plan lists runs: {"name", "config" (a YAML file), "via" ("cli" or
"api"), "overrides" (extra fields), optionally "expect_code" (the CLI's exit status, default 0)}. A Python audit hook records every write (open for writing, mkdir, rename,
remove) under the plan's `watch` folder; each process prints one line `RESULT {json}` with its rank, its writes,
and per run the final SM scalars and a digest of the weights it holds (all processes must hold the same).
"""
import json
import os
import sys


def main(plan_file: str) -> int:
    plan = json.loads(open(plan_file).read())
    watch = os.path.realpath(plan["watch"])
    writes = []

    def under(path) -> bool:
        try:
            return os.path.realpath(os.fsdecode(path)).startswith(watch)
        except (TypeError, ValueError):
            return False

    def audit(event, args):
        if event == "open" and args[0] is not None and not isinstance(args[0], int):
            mode, flags = args[1] or "r", args[2] or 0
            writing = any(c in str(mode) for c in "wax+") or flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT)
            if writing and under(args[0]):
                writes.append(f"open {args[0]}")
        elif event in ("os.mkdir", "os.rename", "os.remove", "os.rmdir", "shutil.rmtree") and under(args[0]):
            writes.append(f"{event} {args[0]}")

    sys.addaudithook(audit)

    import torch
    import smkit
    from smkit.cli import main as cli_main
    from smkit.core.config import load_file
    from smkit.training.train import TrainConfig

    torch.set_num_threads(1)
    runs = {}
    for run in plan["runs"]:
        if run["via"] == "cli":
            args = ["train", "--config", run["config"]]
            for key, value in run.get("overrides", {}).items():
                args += [f"--{key.replace('_', '-')}", str(value)]
            code = cli_main(args)
            if code != run.get("expect_code", 0):
                return 1 if code == 0 else code
            model = None
        else:
            cfg = TrainConfig.from_dict({**load_file(run["config"]), **run.get("overrides", {})})
            model = smkit.train(cfg).model
        if model is not None:
            runs[run["name"]] = {"sm": model.soft_mask.values(),
                                 "digest": float(sum(p.double().abs().sum() for p in model.parameters()))}
    from accelerate import PartialState
    print("RESULT " + json.dumps({"rank": PartialState().process_index, "writes": writes, "runs": runs}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
