"""`disenttalk bench`: providers side by side on this device — eager reference, torch.compile of
it, and the fused C++ / CUDA / Triton kernels — per op and for whole model jobs; prints a table
with ratios, and optionally writes JSON and a PNG chart."""

from __future__ import annotations

import datetime
import math
import platform
import sys

from disenttalk_fast._torch import DTYPES
from disenttalk_fast.bench.providers import COMPILE_MODES


def add_parser(sub, name: str) -> None:
    p = sub.add_parser(name, help="benchmark ops and model jobs against the reference")
    p.add_argument("--suite", default="ops,model", help="comma list of: ops, model")
    p.add_argument("--ops", default="", help="comma list of op names (default: all)")
    p.add_argument("--shapes", default="", help="comma list of shape names (default: all)")
    p.add_argument("--jobs", default=None,
                   help="model suite: comma list of: step, ddim, ddpm, stream (default: all)")
    p.add_argument("--window", type=int, default=None,
                   help="model suite: frames per sampling window for the whole-clip runs "
                        "(default: the whole clip as one window)")
    p.add_argument("--providers", default="eager,compile,cpu,cuda,triton",
                   help="comma list of: eager, compile, cpu, cuda, triton")
    p.add_argument("--device", default=None,
                   help="cpu, cuda or cuda:N (default: cuda when available)")
    p.add_argument("--dtype", default="fp32", choices=sorted(DTYPES))
    p.add_argument("--compile-mode", default=None, choices=COMPILE_MODES,
                   help="torch.compile mode of the 'compile' provider (default: max-autotune on "
                        "a GPU, default on the CPU)")
    p.add_argument("--tf32", action="store_true",
                   help="fp32 matrix products as TF32 on the tensor cores for every provider "
                        "(torch.set_float32_matmul_precision('high'); the Triton kernels follow "
                        "it; CUDA only)")
    p.add_argument("--budget", type=float, default=1.0, help="seconds of timing per cell")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads for PyTorch and the C++ kernels (default: PyTorch's)")
    p.add_argument("--json", default=None, help="write the rows as JSON here")
    p.add_argument("--chart", default=None, help="write a PNG chart of speed-ups here")
    p.add_argument("--quick", action="store_true",
                   help="short sequences and fewer sampling steps (a smoke run)")
    p.set_defaults(run=run)


def _progress(row) -> None:
    """One stderr line per measured row, so a run cut off by a time limit still shows them."""
    took = f"{row.ms:.3f} ms" if row.ms is not None else row.status
    ratio = f" ({row.speedup_vs_eager:.2f}x eager)" if row.speedup_vs_eager else ""
    print(f"  {row.name} {row.shape} {row.provider}: {took}{ratio}", file=sys.stderr, flush=True)


def _warmed(name: str, shape: str, provider: str, seconds: float) -> None:
    """One stderr line per provider warmed up (with torch.compile that is its compilation)."""
    print(f"  {name} {shape} {provider}: warmed up in {seconds:.1f} s", file=sys.stderr,
          flush=True)


def _split(s: str) -> list[str]:
    return [x.strip() for x in s.split(",") if x.strip()]


def _choose(flag: str, value: str, names, what: str, *, all_hint: bool = False,
            required: bool = True) -> list[str]:
    """The comma list `value` of a selection flag, each item one of `names`; a one-line
    UserError for an unknown item, and (when `required`) for a list of none such as `,`, which
    would measure nothing. `all_hint`: leaving the flag out selects all (said in the error)."""
    from disenttalk_fast.cli import UserError

    chosen = _split(value)
    for item in chosen:
        if item not in names:
            raise UserError(f"{flag}: unknown {what} '{item}' (choose from {', '.join(names)})")
    if not chosen and required:
        hint = f"; leave {flag} out for all" if all_hint else ""
        raise UserError(f"{flag}: no {what} given (choose from {', '.join(names)}{hint})")
    return chosen


def run(args) -> int:
    from disenttalk_fast._torch import torch

    if not args.tf32:
        return _run(args)
    # The reference's cuBLAS products and the Triton kernels' tl.dot read the same switch; it is
    # process-wide, so it is put back afterwards (the command also runs in-process, e.g. tests).
    before = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("high")
    try:
        return _run(args)
    finally:
        torch.set_float32_matmul_precision(before)


def _run(args) -> int:
    from disenttalk_fast._torch import torch
    from disenttalk_fast.bench import model_cases, op_cases, providers, report, runner
    from disenttalk_fast.bench.bandwidth import peak_gbps
    from disenttalk_fast.cli import UserError, check_device_arg, check_output_file

    # Every argument is checked before anything is measured (and before --threads changes the
    # process's thread count): a bad one is a one-line error, never a table of nothing or a
    # failure to write after the whole run.
    if not (math.isfinite(args.budget) and args.budget > 0):
        raise UserError(f"--budget must be a number of seconds > 0, got {args.budget}")
    if args.threads is not None and args.threads < 1:
        raise UserError(f"--threads must be >= 1, got {args.threads}")
    # cpu / cuda / cuda:N that this machine has; 'meta' and the like would time nothing.
    device = torch.device(check_device_arg(args.device)
                          or ("cuda" if torch.cuda.is_available() else "cpu"))
    dtype = DTYPES[args.dtype]
    if args.tf32:
        if device.type != "cuda":
            raise UserError("--tf32: TF32 is a CUDA tensor-core format; this run is on the CPU")
        if args.dtype != "fp32":
            raise UserError(f"--tf32 applies to fp32 runs; this one is {args.dtype}")
    wanted = _choose("--providers", args.providers, providers.PROVIDERS, "provider")
    if "eager" not in wanted:
        wanted.insert(0, "eager")  # every ratio is against it
    suites = _choose("--suite", args.suite, ("ops", "model"), "suite")
    # A flag of a suite this run leaves out would be ignored without a word.
    for flag, value, suite in (("--ops", args.ops, "ops"), ("--shapes", args.shapes, "ops"),
                               ("--jobs", args.jobs, "model"), ("--window", args.window, "model")):
        if value not in (None, "") and suite not in suites:
            raise UserError(f"{flag} applies to --suite {suite}, which this run leaves out")
    # --ops / --shapes: left empty (the default), all of them.
    ops = _choose("--ops", args.ops, op_cases.BUILDERS, "op", all_hint=True) if args.ops else []
    shapes = _choose("--shapes", args.shapes, op_cases.SEQUENCES, "shape",
                     all_hint=True) if args.shapes else []
    jobs = _choose("--jobs", ",".join(model_cases.JOBS) if args.jobs is None else args.jobs,
                   model_cases.JOBS, "job", required="model" in suites)
    if args.window is not None and args.window < 2:
        raise UserError(f"--window must be >= 2 frames, got {args.window}")
    shapes = shapes or (["window-250"] if args.quick else None)
    if "ops" in suites and not op_cases.selected(device, ops, shapes):
        raise UserError(f"--ops {args.ops}: none of them runs at --shapes {','.join(shapes)} "
                        f"('large' is for {', '.join(op_cases.BANDWIDTH_OPS)} only)")
    for flag, path, suffix in (("--json", args.json, ".json"), ("--chart", args.chart, ".png")):
        if path:   # written at the end: a missing folder or a directory is refused now
            try:
                check_output_file(path, suffix)
            except UserError as exc:
                raise UserError(f"{flag} {exc}") from None
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    mode = providers.compile_mode(device, args.compile_mode)
    torch.manual_seed(0)
    name = runner.device_name(device)
    peak, peak_source = peak_gbps(device)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    compiled = f"torch.compile mode {mode or 'default'} — " if "compile" in wanted else ""
    precision = args.dtype + (" (TF32 products)" if args.tf32 else "")
    header = (f"disenttalk bench — {name} — {precision} — {compiled}{stamp}\n"
              f"memory bandwidth {peak:.1f} GB/s ({peak_source}); ratios are of medians against "
              f"the eager reference, the providers of a row timed in interleaved rounds")
    rows: list = []
    if "ops" in suites:
        for case in op_cases.op_cases(device, dtype, ops, shapes):
            rows += runner.run_case("op", case, device, wanted, args.budget, peak, mode,
                                    _progress, _warmed)
    if "model" in suites:
        for case in model_cases.model_cases(device, dtype, quick=args.quick, compile_mode=mode,
                                            jobs=jobs, window=args.window):
            rows += runner.run_case("model", case, device, wanted, args.budget, None, None,
                                    _progress, _warmed)
    print(report.format_table(rows, header))
    meta = {"device": name, "dtype": args.dtype, "tf32": args.tf32, "date": stamp,
            "peak_gbps": peak,
            "compile_mode": (mode or "default") if "compile" in wanted else None,
            "peak_gbps_source": peak_source,
            "torch": torch.__version__, "python": platform.python_version(),
            "command": "disenttalk bench " + " ".join(sys.argv[2:])}
    if args.json:
        report.save_json(rows, meta, args.json)
    if args.chart and not report.save_chart(rows, header.splitlines()[0], args.chart):
        from disenttalk_fast.cli import UserError

        raise UserError(f"{args.chart}: no chart written: no row has a speed-up over eager "
                        f"to draw (every case skipped or failed)")
    return 0
