"""Benchmarks that compare providers side by side in one run on the current device:
the eager reference, `torch.compile` of it, and the fused C++ / CUDA / Triton kernels.

Entry point: `disenttalk bench` (disenttalk_fast/commands/bench.py). The pytest-benchmark suites
in benchmarks/ reuse the cases defined here.
"""
