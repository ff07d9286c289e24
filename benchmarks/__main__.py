"""``python -m benchmarks [--quick] [--no-smollm2] [--gpu [--budget S] [--dry-run]] [--out FILE]``: run the suite
and print a table: the random-model CPU suite (``suite.py``), then the real ``smollm2`` set (``smollm2_bench.py``)."""

from __future__ import annotations

import argparse
import os
import platform
import time

import torch

from .suite import run_cpu_suite


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks")
    p.add_argument("--quick", action="store_true", help="fewer tokens and repetitions (a smoke run)")
    p.add_argument("--gpu", action="store_true", help="CUDA, bf16, 1B and 7B bases with 1B ARMs (see gpu.py)")
    p.add_argument("--budget", type=float, help="--gpu: start no measurement after this many seconds (a short GPU lease)")
    p.add_argument("--dry-run", action="store_true",
                   help="--gpu on the CPU: the same script on small models, static cache instead of graphs")
    p.add_argument("--demo", help="demo model-set file for 6 and 7 (default: build or find the cached demo)")
    p.add_argument("--no-smollm2", action="store_true", help="skip the smollm2 section (it builds the set on first use)")
    p.add_argument("--out", help="also write the markdown table here")
    args = p.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    started = time.strftime("%Y-%m-%d %H:%M")
    machine = f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}"
    if args.gpu:
        from .gpu import run_gpu_suite

        report = run_gpu_suite(quick=args.quick, budget_s=args.budget, device="cpu" if args.dry_run else "cuda")
        machine += " (dry run on the CPU: small models)" if args.dry_run else f", {torch.cuda.get_device_name()}"
    else:
        demo = args.demo
        if demo is None:
            from genarm_core.demo.build import ensure_demo

            demo = str(ensure_demo())
        report = run_cpu_suite(quick=args.quick, demo_yaml=demo)
        if not args.no_smollm2:
            from .smollm2_bench import run_smollm2_section

            print("8. the real smollm2 set: base alone, GenARM 2 ARMs, the A/B pair; stacked rows vs the shared trunk",
                  flush=True)
            run_smollm2_section(report, rounds=2 if args.quick else 3, tokens=32 if args.quick else 64)
    table = f"Measured {started} on {machine}{' (quick run)' if args.quick else ''}:\n\n{report.markdown()}\n"
    print("\n" + table)
    if args.out:
        with open(args.out, "w") as fh:
            fh.write(table)


if __name__ == "__main__":
    main()
