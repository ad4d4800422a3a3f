"""`disenttalk bench`: the table, JSON and chart it writes on this machine, the provider and job
filters, and one-line errors for bad arguments. Timings themselves are not judged here."""

import json

import pytest
import torch

from disenttalk_fast import _native
from disenttalk_fast.cli import main

pytestmark = pytest.mark.skipif(not _native.cpu_available(), reason="C++ kernels not built")


def test_ops_suite_writes_table_json_and_chart(tmp_path, capsys):
    out_json, chart = tmp_path / "ops.json", tmp_path / "ops.png"
    assert main(["bench", "--suite", "ops", "--ops", "film,local_dwconv", "--shapes",
                 "window-250", "--providers", "cpu", "--budget", "0.01", "--device", "cpu",
                 "--json", str(out_json), "--chart", str(chart)]) == 0
    printed = capsys.readouterr()
    assert "film" in printed.out and "of peak BW" in printed.out
    assert "film window-250 cpu:" in printed.err          # each row as it is measured
    assert "film window-250 eager: warmed up in" in printed.err
    data = json.loads(out_json.read_text())
    rows = data["rows"]
    # eager is always measured: every ratio is against it.
    assert [(r["name"], r["provider"]) for r in rows] == [
        ("film", "eager"), ("film", "cpu"), ("local_dwconv", "eager"), ("local_dwconv", "cpu")]
    assert all(r["status"] == "ok" and r["ms"] > 0 for r in rows)
    assert all(r["speedup_vs_eager"] == 1.0 for r in rows if r["provider"] == "eager")
    assert all(0 < r["bandwidth_fraction"] for r in rows)
    assert data["meta"]["compile_mode"] is None and data["meta"]["device"].endswith("threads")
    assert data["meta"]["tf32"] is False
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_unavailable_providers_are_reported_not_fatal(tmp_path, capsys):
    out_json = tmp_path / "ops.json"
    assert main(["bench", "--suite", "ops", "--ops", "film", "--shapes", "window-250",
                 "--providers", "eager,cuda", "--budget", "0.01", "--device", "cpu",
                 "--json", str(out_json)]) == 0
    rows = json.loads(out_json.read_text())["rows"]
    assert rows[1]["provider"] == "cuda" and rows[1]["status"].startswith("skipped: ")
    assert "skipped:" in capsys.readouterr().out


def test_a_chart_with_nothing_to_draw_is_an_error_not_a_missing_file(tmp_path, capsys,
                                                                    monkeypatch):
    """With no speed-up to draw (every case skipped or failed, eager too), --chart wrote nothing
    and the command still exited 0."""
    from disenttalk_fast.bench import report

    chart = tmp_path / "c.png"
    assert report.save_chart([], "nothing", str(chart)) is False and not chart.exists()
    monkeypatch.setattr(report, "save_chart", lambda rows, title, path: False)
    assert main(["bench", "--suite", "ops", "--ops", "film", "--shapes", "window-250",
                 "--providers", "eager", "--budget", "0.01", "--device", "cpu",
                 "--chart", str(chart)]) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]   # (after the progress rows)
    assert last.startswith(f"disenttalk bench: error: {chart}: no chart written")


def test_providers_are_timed_in_interleaved_rounds():
    """One call of each provider per round, so a burst of other work slows all of them alike;
    a provider that fails (at warm-up or later) is reported as its exception, the others go
    on."""
    from disenttalk_fast.bench.timing import Timing, measure_interleaved

    calls = []

    def provider(name, fail_at=None):
        def fn():
            calls.append(name)
            if fail_at is not None and calls.count(name) == fail_at:
                raise RuntimeError(f"{name} broke")
        return fn

    out = measure_interleaved({"eager": provider("eager"), "cpu": provider("cpu"),
                               "late": provider("late", fail_at=4),
                               "early": provider("early", fail_at=1)},
                              torch.device("cpu"), warmup=2, min_repeats=3, budget_s=0.0)
    assert isinstance(out["eager"], Timing) and out["eager"].repeats == 3
    assert isinstance(out["cpu"], Timing) and out["cpu"].repeats == 3
    assert 0 <= out["cpu"].min_ms <= out["cpu"].median_ms
    assert str(out["late"]) == "late broke" and str(out["early"]) == "early broke"
    timed = [c for c in calls[7:]]  # after the warm-ups (2 + 2 + 2, and early's one)
    assert timed == ["eager", "cpu", "late", "eager", "cpu", "late", "eager", "cpu"]
    assert list(out) == ["eager", "cpu", "late", "early"]


def test_model_suite_step_job(tmp_path, one_thread):
    out_json = tmp_path / "model.json"
    assert main(["bench", "--suite", "model", "--jobs", "step", "--quick", "--providers", "cpu",
                 "--budget", "0.01", "--device", "cpu", "--json", str(out_json)]) == 0
    rows = json.loads(out_json.read_text())["rows"]
    assert [(r["name"], r["shape"], r["provider"]) for r in rows] == [
        ("denoiser step +CFG", "B=2 L=250", "eager"), ("denoiser step +CFG", "B=2 L=250", "cpu")]
    assert all(r["status"] == "ok" for r in rows)


@pytest.mark.parametrize("args,message", [
    (["--jobs", "step,foo"], "--jobs: unknown job 'foo'"),
    (["--shapes", "big"], "--shapes: unknown shape 'big'"),
    (["--providers", "eager,gpu"], "--providers: unknown provider 'gpu'"),
    (["--suite", "all"], "--suite: unknown suite 'all'"),
    (["--ops", "conv"], "--ops: unknown op 'conv'"),
    (["--window", "1"], "--window must be >= 2 frames"),
    (["--threads", "0"], "--threads must be >= 1"),
    (["--budget", "-1"], "--budget must be a number of seconds > 0"),
    (["--tf32"], "--tf32: TF32 is a CUDA tensor-core format"),
    # Devices that would time nothing, or are no device at all: one short line.
    (["--device", "meta"], "the model runs on 'cpu' or 'cuda', got 'meta'"),
    (["--device", "foo"], "'foo' is not a device"),
    # Selections of nothing would print an empty table.
    (["--suite", ","], "--suite: no suite given"),
    (["--providers", " , "], "--providers: no provider given"),
    (["--jobs", ","], "--jobs: no job given"),
    (["--ops", ","], "--ops: no op given"),
    (["--shapes", ","], "--shapes: no shape given"),
    (["--suite", "ops", "--ops", "region_attention", "--shapes", "large"],
     "--ops region_attention: none of them runs at --shapes large"),
    # A flag of a suite left out would be ignored.
    (["--suite", "ops", "--jobs", "step"], "--jobs applies to --suite model"),
    (["--suite", "ops", "--window", "100"], "--window applies to --suite model"),
    (["--suite", "model", "--ops", "film"], "--ops applies to --suite ops"),
])
def test_bad_arguments_give_one_line_errors(args, message, capsys):
    threads, precision = torch.get_num_threads(), torch.get_float32_matmul_precision()
    try:
        assert main(["bench", "--device", "cpu", *args]) == 2
    finally:
        torch.set_num_threads(threads)
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err
    assert torch.get_float32_matmul_precision() == precision  # --tf32 puts the switch back


def test_outputs_are_checked_before_the_run(tmp_path, capsys):
    """--json / --chart are written at the end: a path that could not be written is refused
    before anything is measured (each of these ran the whole benchmark first)."""
    (tmp_path / "dir.json").mkdir()
    for args, message in [
            (["--json", "."], "--json .: the output is a .json file"),
            (["--json", str(tmp_path / "dir.json")], "is a directory"),
            (["--json", str(tmp_path / "none" / "x.json")], "does not exist"),
            (["--chart", str(tmp_path)], "the output is a .png file"),
            (["--chart", str(tmp_path / "none" / "x.png")], "does not exist")]:
        assert main(["bench", "--device", "cpu", "--suite", "ops", "--ops", "film", *args]) == 2
        printed = capsys.readouterr()
        assert message in printed.err and "\n" not in printed.err.strip(), args
        assert args[0] in printed.err and printed.out == ""
    assert [p.name for p in tmp_path.iterdir()] == ["dir.json"]


def test_unknown_compile_mode_is_an_argparse_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", "--compile-mode", "fastest"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'fastest'" in capsys.readouterr().err
