"""Triton kernels of disenttalk_fast, installed as `disenttalk_fast._triton`.

Import the op modules lazily (they import triton); set TRITON_INTERPRET=1 *before* the first
import to run them on the CPU with Triton's interpreter.
"""
